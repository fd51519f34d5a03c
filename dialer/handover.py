"""The call's context for the operators (issue 12): channel variables set with the Originate.

The person's ``;1`` is what the Redirect moves into the operators' queue, so variables set on it
at the Originate are on the channel at the hand-over without one more AMI round trip in the
moment a person is waiting (dead air). The double underscore makes Asterisk copy them to every
channel created from it — app_queue's call to the member (``ast_channel_inherit_variables``) and
the member's Local/PJSIP legs — so the queue's dialplan, an agent pop-up (``${DIALER_CONTACT}``
…) or the operator's phone can read them. AMI header values cannot carry line breaks and Asterisk
splits ``Variable`` on commas: the journal lines are joined with `` | `` and commas become ``;``.
"""

from __future__ import annotations

from dialer.storage.dialling import ClaimedContact

JOURNAL_LINES = 3  # the last lines of the comment journal an operator sees
MAX_VALUE_CHARS = 400  # keep one header short; the start of the newest lines matters most


def _clean(text: str) -> str:
    return " ".join(text.replace(",", ";").split())


def last_journal_lines(journal: str, n: int = JOURNAL_LINES) -> str:
    lines = [_clean(line) for line in journal.splitlines() if line.strip()]
    value = " | ".join(lines[-n:])
    return value[-MAX_VALUE_CHARS:] if len(value) > MAX_VALUE_CHARS else value


def handover_variables(claimed: ClaimedContact, campaign: str) -> dict[str, str]:
    """Variables of the Originate: the attempt number (as before) and the operators' context."""
    contact = claimed.contact
    return {
        "DIALER_ATTEMPT": str(claimed.attempt_no),
        "__DIALER_CONTACT": _clean(contact.external_id),
        "__DIALER_CONTACT_ID": str(contact.id),
        "__DIALER_CAMPAIGN": _clean(campaign),
        "__DIALER_ATTEMPT_NO": str(claimed.attempt_no),
        "__DIALER_JOURNAL": last_journal_lines(contact.journal),
    }
