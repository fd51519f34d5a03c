"""How an operator's result changes a contact that may already be settled — a pure rule, kept out
of the SQL (issue 15 moves contact-update rules into the domain; this one is ready for it).

1. «Некорректный контакт» follows what the operator learnt: a result that shows the contact is
   right (completed, refused, callback, inconvenient) clears the flag — the operator spoke with the
   right person, whatever a check before dialling said; a wrong-contact result (wrong_person,
   not_responsible, company_employee) sets it; bad_line says nothing about it and keeps it.
2. The operator's result replaces the stored one, on a settled contact too (the operator spoke
   with the person; the dialer's verdict was a guess). A result that settles keeps the contact
   settled; one that does not (callback, inconvenient before the last attempt) opens it again,
   due at the agreed or scheduled time. A contact being called right now keeps its state: the
   attempt's end schedules it.
3. A journal line is never written twice: a line whose text (after ``DD/MM``) is the contact's
   last line already is not appended again.
4. A repeat — nothing would change (same result, flag, state and due time, and the line is
   already there) — changes nothing and announces nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dialer.domain.journal import append_line
from dialer.domain.model import ContactState, Outcome, ResultCode

__all__ = ["ContactNow", "OperatorUpdate", "operator_update", "same_last_line"]


@dataclass(frozen=True, slots=True)
class ContactNow:
    state: ContactState
    result: ResultCode | None
    incorrect_contact: bool
    journal: str
    next_due_at: datetime | None


@dataclass(frozen=True, slots=True)
class OperatorUpdate:
    state: ContactState
    result: ResultCode | None
    incorrect_contact: bool
    journal: str
    next_due_at: datetime | None
    line_appended: bool
    changed: bool  # False: a repeat (rule 4), nothing to write or announce

    @property
    def settles(self) -> bool:
        return self.state is ContactState.SETTLED


def _text_of(line: str) -> str:
    day, sep, text = line.strip().partition(" ")
    return text.strip() if sep and len(day) == 5 and day[2] == "/" else line.strip()


def same_last_line(journal: str, line: str) -> bool:
    """True when ``line``'s text (after ``DD/MM``) is the text of the journal's last line."""
    lines = [x for x in journal.splitlines() if x.strip()]
    return bool(lines) and _text_of(lines[-1]) == _text_of(line)


def operator_update(now: ContactNow, outcome: Outcome, verdict_incorrect: bool | None) -> OperatorUpdate:
    """The contact after an operator's ``outcome``; ``verdict_incorrect``: True/False when the
    result says the contact is wrong/right, None when it says nothing about it (rule 1)."""
    incorrect = now.incorrect_contact if verdict_incorrect is None else verdict_incorrect
    result = outcome.result if outcome.result is not None else now.result
    line = outcome.journal_line
    append = bool(line) and not same_last_line(now.journal, line)
    journal = append_line(now.journal, line) if append else now.journal
    state: ContactState
    due: datetime | None
    if now.state is ContactState.IN_PROGRESS:
        state, due = now.state, now.next_due_at
    elif outcome.settled:
        state, due = ContactState.SETTLED, None
    else:
        state, due = ContactState.PENDING, outcome.next_due_at
    changed = (state, result, incorrect, due) != (now.state, now.result, now.incorrect_contact, now.next_due_at)
    return OperatorUpdate(state, result, incorrect, journal, due, append, changed or append)
