"""Pre-dial checks and the application of the rules to one attempt: rules + schedule + journal.

Everything here is pure: ``now`` is an argument, nothing is read or written. Storage applies the
returned :class:`~dialer.domain.model.Outcome` (and appends ``journal_line`` with
:func:`dialer.domain.journal.append_line`).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dialer.domain.compliance import AttemptCaps, cap_release
from dialer.domain.journal import format_line
from dialer.domain.model import (
    INCORRECT_CONTACT_RU,
    RESULT_TITLES_RU,
    CallClass,
    CardFlag,
    Contact,
    ContactState,
    NumberProblem,
    Outcome,
    ResultCode,
)
from dialer.domain.phone import PROBLEM_TITLES_RU, normalise
from dialer.domain.rules import OperatorResult, RuleDecision, RulesTable
from dialer.domain.schedule import CallingWindows, next_allowed, zone
from dialer.errors import ConfigError, InputError

__all__ = [
    "OperatorResult",
    "PlanAction",
    "PlanEntry",
    "apply_attempt",
    "apply_operator_result",
    "counts_as_attempt",
    "has_do_not_call_mark",
    "load_own_numbers",
    "parse_own_numbers",
    "plan",
    "predial_check",
    "usable_number",
]


def usable_number(contact: Contact, region: str = "RU") -> tuple[str | None, NumberProblem | None]:
    """The contact's dialable E.164 number or why there is none.

    Trusts what the importer stored; a contact with neither (built by hand) is normalised here.
    """
    if contact.number_problem is not None:
        return None, contact.number_problem
    if contact.e164:
        return contact.e164, None
    n = normalise(contact.raw_number, region)
    return n.e164, n.problem


_MARK_WORDS = ("НЕ", "ЗВОНИТЬ", "КЛИЕНТУ")


def has_do_not_call_mark(text: str) -> bool:
    """Does ``text`` (a card's comments) carry «ВНИМАНИЕ, НЕ ЗВОНИТЬ КЛИЕНТУ!» in any case or
    punctuation? Importers use it to set CardFlag.DO_NOT_CALL; predial_check also looks."""
    words = re.findall(r"[A-Za-zА-Яа-яЁё]+", text.upper().replace("Ё", "Е"))
    n = len(_MARK_WORDS)
    return any(tuple(words[i : i + n]) == _MARK_WORDS for i in range(len(words) - n + 1))


def predial_check(contact: Contact, own_numbers: frozenset[str]) -> CallClass | None:
    """The class a contact settles as without dialling, or None when it may be dialled.

    Order: the «НЕ ЗВОНИТЬ» mark first (the card flag, or the mark written in the comments as
    on the example card of docs/rules.md §3.2) (such a card is never dialled, whatever its number; the
    rules file gives a card without a usable number the seed's «Недоступен» + «Некорректный контакт» and
    a card with one the result «Не звонить»), then a missing number, an unusable number, and
    finally one of the company's own numbers.
    """
    e164, problem = usable_number(contact)
    if CardFlag.DO_NOT_CALL in contact.flags or has_do_not_call_mark(contact.journal):
        return CallClass.DO_NOT_CALL
    if problem is NumberProblem.MISSING:
        return CallClass.NO_NUMBER
    if e164 is None:
        return CallClass.INVALID_NUMBER
    if e164 in own_numbers:
        return CallClass.OWN_NUMBER
    return None


def parse_own_numbers(text: str, source: str) -> frozenset[str]:
    """One number per line in any usual spelling; ``#`` starts a comment; blank lines ignored."""
    out: set[str] = set()
    for line_no, line in enumerate(text.splitlines(), start=1):
        body = line.split("#", 1)[0].strip()
        if not body:
            continue
        n = normalise(body)
        if n.e164 is None:
            why = PROBLEM_TITLES_RU.get(n.problem, "") if n.problem else ""
            raise ConfigError(f"not a valid phone number {body!r} ({n.problem}: {why})", source=source, line=line_no)
        out.add(n.e164)
    return frozenset(out)


def load_own_numbers(path: Path) -> frozenset[str]:
    """The company's own numbers (config/own_numbers.txt) as normalised E.164."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError("file not found", source=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", source=str(path)) from None
    return parse_own_numbers(text, str(path))


def _local_date_line(now: datetime, tz: str, text: str) -> str:
    return format_line(now.astimezone(zone(tz)).date(), text)


def _outcome(decision: RuleDecision, text: str, now: datetime, windows: CallingWindows, tz: str) -> Outcome:
    line = _local_date_line(now, tz, text)
    if decision.settled:
        return Outcome(True, decision.result, decision.incorrect_contact, None, line, decision.rule)
    assert decision.retry_delay is not None  # validated by RulesTable: a retrying rule has a delay
    due = next_allowed(now + decision.retry_delay, tz, windows)
    return Outcome(False, None, False, due, line, decision.rule, counts_as_attempt=decision.counts_as_attempt)


def _check_now(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be timezone-aware (UTC), got naive {now!r}")


def apply_attempt(
    contact: Contact,
    call_class: CallClass,
    attempt_no: int,
    now: datetime,
    rules: RulesTable,
    windows: CallingWindows,
    tz: str,
) -> Outcome:
    """Apply the rules to attempt ``attempt_no`` (1-based) that ended as ``call_class`` at ``now``.

    The journal line carries the contact's local date; a retry is due after the rule's delay,
    moved into the calling window of ``tz``. Classes whose rule has ``counts_as_attempt: false``
    (originate_failed, aborted) are reported by :func:`counts_as_attempt`.
    """
    _check_now(now)
    e164, problem = usable_number(contact)
    decision = rules.decide(call_class, attempt_no, contact.owner_kind, has_number=e164 is not None)
    text = decision.journal_text
    if call_class is CallClass.INVALID_NUMBER and problem is not None and problem in PROBLEM_TITLES_RU:
        text = f"{text}: {PROBLEM_TITLES_RU[problem]}"
    return _outcome(decision, text, now, windows, tz)


def counts_as_attempt(rules: RulesTable, call_class: CallClass, contact: Contact) -> bool:
    """Whether an attempt ending as ``call_class`` advances the contact's attempt counter."""
    e164, _ = usable_number(contact)
    return rules.spec(call_class, contact.owner_kind, has_number=e164 is not None).counts_as_attempt


def apply_operator_result(
    contact: Contact,
    result: OperatorResult,
    attempt_no: int,
    now: datetime,
    rules: RulesTable,
    windows: CallingWindows,
    tz: str,
    *,
    callback_at: datetime | None = None,
    comment: str | None = None,
) -> Outcome:
    """Apply what an operator set after a human-answered call (attempt ``attempt_no``).

    ``comment`` (the operator's own words) replaces the rule's journal text. A CALLBACK needs
    ``callback_at``; it is kept as agreed when inside the calling window and otherwise moved to
    the window's next opening (the window is the campaign's promise about calling hours); a time
    in the past means "as soon as allowed". The contact stays pending with result CALLBACK.
    """
    _check_now(now)
    decision = rules.decide_operator(result, attempt_no, contact.owner_kind)
    text = comment.strip() if comment and comment.strip() else decision.journal_text
    if result is OperatorResult.CALLBACK:
        if callback_at is None:
            raise InputError("a call-back result needs the agreed call-back time")
        if callback_at.tzinfo is None or callback_at.utcoffset() is None:
            raise InputError(f"call-back time {callback_at.isoformat()} has no time zone")
        due = next_allowed(max(callback_at, now), tz, windows)
        return Outcome(False, ResultCode.CALLBACK, False, due, _local_date_line(now, tz, text), decision.rule)
    if callback_at is not None:
        raise InputError(f"a call-back time makes sense only with the result {OperatorResult.CALLBACK.value!r}")
    return _outcome(decision, text, now, windows, tz)


# --- the plan: what would happen to each contact ---------------------------------------------------


class PlanAction(enum.StrEnum):
    SETTLE = "settle"  # settled without dialling
    DIAL = "dial"  # will be dialled at dial_at
    SKIP = "skip"  # already settled, excluded or in progress


@dataclass(frozen=True)
class PlanEntry:
    contact_id: int
    external_id: str
    action: PlanAction
    tz: str
    call_class: CallClass | None = None  # SETTLE: the pre-dial class
    outcome: Outcome | None = None  # SETTLE: what would be recorded
    dial_at: datetime | None = None  # DIAL: aware UTC
    reason: str = ""  # SKIP: why

    @property
    def dial_at_local(self) -> datetime | None:
        return self.dial_at.astimezone(zone(self.tz)) if self.dial_at else None

    def describe(self) -> str:
        """One human line, e.g. for ``dialer plan``."""
        if self.action is PlanAction.SETTLE and self.outcome is not None:
            o = self.outcome
            title = RESULT_TITLES_RU.get(o.result, str(o.result)) if o.result else "?"
            if o.incorrect_contact:
                title += f" + {INCORRECT_CONTACT_RU}"
            return f"settled without dialling: {title}; journal «{o.journal_line}» (rule {o.rule})"
        if self.action is PlanAction.DIAL and self.dial_at_local is not None:
            why = f" ({self.reason})" if self.reason else ""
            return f"first dial at {self.dial_at_local:%Y-%m-%d %H:%M} {self.tz} local{why}"
        return f"skipped: {self.reason}"


def plan(
    contacts: Iterable[Contact],
    now: datetime,
    rules: RulesTable,
    windows: CallingWindows,
    own_numbers: frozenset[str],
    *,
    default_tz: str = "Europe/Moscow",
    caps: AttemptCaps | None = None,
    counted: Mapping[int, Sequence[datetime]] | None = None,
) -> list[PlanEntry]:
    """For each contact: settled without dialling (and how), or when it would first be dialled —
    past its attempt caps (``counted``: contact id → start times of its attempts that count,
    as the claim reads them) and into its calling window."""
    _check_now(now)
    now = now.astimezone(UTC)
    out: list[PlanEntry] = []
    for c in contacts:
        tz = c.timezone or default_tz
        if c.state in (ContactState.SETTLED, ContactState.EXCLUDED, ContactState.IN_PROGRESS):
            out.append(PlanEntry(c.id, c.external_id, PlanAction.SKIP, tz, reason=c.state.value))
            continue
        check = predial_check(c, own_numbers)
        if check is not None:
            outcome = apply_attempt(c, check, c.attempts_made + 1, now, rules, windows, tz)
            out.append(PlanEntry(c.id, c.external_id, PlanAction.SETTLE, tz, call_class=check, outcome=outcome))
            continue
        earliest = max(now, c.next_due_at) if c.next_due_at is not None else now
        capped = cap_release((counted or {}).get(c.id, ()), earliest, tz, caps) if caps is not None else None
        out.append(
            PlanEntry(
                c.id,
                c.external_id,
                PlanAction.DIAL,
                tz,
                dial_at=next_allowed(capped or earliest, tz, windows),
                reason="past an attempt cap" if capped is not None else "",
            )
        )
    return out
