"""The contact rule: how one outcome changes a contact, and which facts to announce — pure.

Every change of a contact's state, result, flag, journal, attempt counter and next call goes
through :func:`apply_outcome`; the storage reads the contact (:class:`ContactNow`), applies the
rule and persists the :class:`ContactChange` it returns together with the announcements (outbox
events, built outside the storage by its notifier: :mod:`dialer.storage.notify`). The outcomes:

* :class:`AttemptEnded` — an attempt finished (the rules' verdict, or ``aborted`` on recovery
  after a crash: :func:`aborted_verdict`);
* :class:`SettledBeforeDialling` — an import found the contact settled without dialling;
* :class:`OperatorSet` — an operator set a result (inbound command);
* :class:`CallbacksPlanned` — a dropped inbound call to call back (inbound command, docs/rules.md §6).

Attempt ended (docs/rules.md §6, dropped-call call-backs): an attempt that lost a person on the way to
an operator starts a dropped-call series — the contact is called back at the planned times
whatever the attempt counter says, then settled («Недоступен» when no try reached anybody). A
try of a series continues it; only an outcome that ends the series (:func:`ends_dropped_series`)
settles early. ``counts_as_attempt=False`` (our own failure) keeps the attempt counter and the
series' plan. A contact left open whose number is excluded (kind calls/all) waits as
``excluded``.

Operator result:

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

import enum
from dataclasses import dataclass, replace
from datetime import datetime

from dialer.domain.journal import append_line
from dialer.domain.model import AttemptKind, CallClass, ContactState, Evidence, Outcome, ResultCode
from dialer.errors import StorageError

__all__ = [
    "ABORTED_REASON",
    "PREDIAL_REASON",
    "AnnounceAttempt",
    "AnnounceOperatorConnected",
    "AnnounceOperatorResult",
    "AnnounceSettled",
    "Announcement",
    "AttemptEnded",
    "CallbacksPlanned",
    "ContactChange",
    "ContactNow",
    "ContactOutcome",
    "OperatorSet",
    "SettledBeforeDialling",
    "SettledBy",
    "aborted_verdict",
    "apply_outcome",
    "ends_dropped_series",
    "same_last_line",
]

ABORTED_REASON = "worker restarted; attempt closed without a verdict"
PREDIAL_REASON = "settled before dialling"


class SettledBy(enum.StrEnum):
    """Who decided a contact's final result (``source`` of contact_settled)."""

    DIALER = "dialer"  # the rules, after an attempt
    OPERATOR = "operator"  # an operator's result (inbound command)
    IMPORT = "import"  # known without dialling: no number, wrong number, «НЕ ЗВОНИТЬ»


# --------------------------------------------------------------------------------------------
# the contact before, the outcomes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContactNow:
    """The stored contact as the rule needs it."""

    state: ContactState
    result: ResultCode | None
    incorrect_contact: bool
    journal: str
    next_due_at: datetime | None
    attempts_made: int = 0
    callback_plan: tuple[datetime, ...] | None = None  # the dropped-call tries still to come
    number_blocked: bool = False  # an exclusion of kind calls/all holds the number


@dataclass(frozen=True, slots=True)
class AttemptEnded:
    attempt_no: int
    kind: AttemptKind
    evidence: Evidence
    outcome: Outcome  # the rules' verdict
    counts_as_attempt: bool = True
    dropped_callbacks: tuple[datetime, ...] = ()  # schedule.dropped_callback_times: a series starts


@dataclass(frozen=True, slots=True)
class SettledBeforeDialling:
    """An import settles the contact without dialling; the attempt row counts as its next one."""

    call_class: CallClass
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class OperatorSet:
    outcome: Outcome  # not settled: ``next_due_at`` is the call-back time
    verdict_incorrect: bool | None  # True/False: the result says the contact is wrong/right
    callback: bool = False  # an agreed call-back (attempt kind callback) rather than a retry


@dataclass(frozen=True, slots=True)
class CallbacksPlanned:
    """A dropped/held-and-lost call (docs/rules.md §6): call back at ``times`` (from
    ``schedule.dropped_callback_times``), no longer-term follow-up. The contact opens again
    whatever its state — except while it is being called: then nothing changes."""

    times: tuple[datetime, ...]

    def __post_init__(self) -> None:
        if not self.times:
            raise StorageError("no call-back times given")


ContactOutcome = AttemptEnded | SettledBeforeDialling | OperatorSet | CallbacksPlanned


def aborted_verdict(now: datetime) -> tuple[Evidence, Outcome]:
    """Recovery after a crash: the open attempt closes as ``aborted`` — not counted
    (``counts_as_attempt=False``), no journal line (the contact never heard a verdict) — and the
    contact is due again at once."""
    return Evidence(CallClass.ABORTED, 0.0, ABORTED_REASON), Outcome(
        False, None, False, now, "", CallClass.ABORTED.value
    )


# --------------------------------------------------------------------------------------------
# the change and what to announce
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AnnounceAttempt:
    """attempt_finished: what the attempt decided, as stored."""

    evidence: Evidence
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class AnnounceOperatorConnected:
    """operator_connected: which operator took the handed-over person (issue 12)."""

    operator: str
    queue_wait_ms: int | None


@dataclass(frozen=True, slots=True)
class AnnounceOperatorResult:
    outcome: Outcome  # as announced: no journal line when it was already there


@dataclass(frozen=True, slots=True)
class AnnounceSettled:
    """contact_settled: the contact has its final result."""

    source: SettledBy
    result: ResultCode | None
    incorrect_contact: bool
    attempts_made: int
    journal: str


Announcement = AnnounceAttempt | AnnounceOperatorConnected | AnnounceOperatorResult | AnnounceSettled


@dataclass(frozen=True, slots=True)
class ContactChange:
    """The contact after an outcome. ``next_attempt_kind`` None and ``callback_plan`` None with
    ``keeps_plan`` leave the stored ones as they are."""

    state: ContactState
    result: ResultCode | None
    incorrect_contact: bool
    journal: str
    attempts_made: int
    next_due_at: datetime | None
    next_attempt_kind: AttemptKind | None
    callback_plan: tuple[datetime, ...] | None
    keeps_plan: bool
    changed: bool  # False: a repeat, nothing to write or announce
    announce: tuple[Announcement, ...]
    line_appended: bool = True

    @property
    def settles(self) -> bool:
        return self.state is ContactState.SETTLED

    @property
    def attempt(self) -> AnnounceAttempt | None:
        """What the attempt row records: exactly what attempt_finished announces."""
        return next((a for a in self.announce if isinstance(a, AnnounceAttempt)), None)


def apply_outcome(now: ContactNow, outcome: ContactOutcome) -> ContactChange:
    """The contact after ``outcome`` and the facts to announce (see the module docstring)."""
    if isinstance(outcome, AttemptEnded):
        return _attempt_ended(now, outcome)
    if isinstance(outcome, SettledBeforeDialling):
        return _settled_before_dialling(now, outcome)
    if isinstance(outcome, CallbacksPlanned):
        return _callbacks_planned(now, outcome)
    return _operator_set(now, outcome)


# --------------------------------------------------------------------------------------------
# attempt ended
# --------------------------------------------------------------------------------------------


def ends_dropped_series(outcome: Outcome) -> bool:
    """Does this attempt's outcome end a dropped-call series (docs/rules.md §6) before its planned tries
    are used up? A person reached (handed over) or a number shown not to work does; a plain
    «Недоступен» does not: it only says the contact's attempts ran out, and a missing call-back
    counts as a critical error («Отсутствие перезвона расценивается как критическая ошибка»)."""
    if not outcome.settled:
        return False
    return outcome.result is not ResultCode.UNAVAILABLE or outcome.incorrect_contact


@dataclass(frozen=True, slots=True)
class _Next:
    """An attempt's effect on the series: settled or not, when and how to call next."""

    settled: bool
    due: datetime | None
    kind: AttemptKind
    plan: tuple[datetime, ...] | None
    result: ResultCode | None  # stored result
    announced: ResultCode | None  # the attempt's result while the contact stays open


def _next_after(now: ContactNow, ended: AttemptEnded) -> _Next:
    o, count = ended.outcome, ended.counts_as_attempt
    stored = o.result if o.result else now.result
    plan = now.callback_plan
    series = ended.kind is AttemptKind.DROPPED_CALLBACK
    if not series and ended.dropped_callbacks and count:
        # A person lost on the way to an operator: a dropped call (docs/rules.md §6) starts its series.
        series, plan = True, ended.dropped_callbacks
    if series and count and not ends_dropped_series(o):
        # docs/rules.md §6: only the planned +1/+2/+3 min tries, no longer-term follow-up.
        if plan:
            return _Next(False, plan[0], AttemptKind.DROPPED_CALLBACK, plan[1:], now.result, None)
        # An agreed call-back time is no result to settle with: the tries went unanswered.
        final = None if stored is ResultCode.CALLBACK else stored
        return _Next(True, None, AttemptKind.CAMPAIGN, None, final or ResultCode.UNAVAILABLE, o.result)
    kind = AttemptKind.DROPPED_CALLBACK if series and not count else AttemptKind.CAMPAIGN
    return _Next(o.settled, o.next_due_at, kind, plan, stored, o.result)


def _attempt_ended(now: ContactNow, ended: AttemptEnded) -> ContactChange:
    o, count = ended.outcome, ended.counts_as_attempt
    nxt = _next_after(now, ended)
    if nxt.settled:
        state, due, plan = ContactState.SETTLED, None, None
    else:
        state = ContactState.EXCLUDED if now.number_blocked else ContactState.PENDING
        due, plan = nxt.due, nxt.plan
        if due is None:
            raise StorageError("the attempt's outcome neither settles nor schedules")
    journal = append_line(now.journal, o.journal_line) if o.journal_line else now.journal
    incorrect = now.incorrect_contact or o.incorrect_contact
    attempts_made = ended.attempt_no if count else now.attempts_made
    # What this attempt decided, as stored: the effective settlement and next due time (a
    # dropped-call series may go on past the rules' settlement or end with its last try), the
    # final result once settled.
    decided = Outcome(
        nxt.settled,
        nxt.result if nxt.settled else nxt.announced,
        o.incorrect_contact,
        due,
        o.journal_line,
        o.rule,
        count,
    )
    announce: list[Announcement] = [AnnounceAttempt(ended.evidence, decided)]
    ev = ended.evidence
    if ev.operator is not None and ev.call_class is not CallClass.PERSON_LOST:
        # PACING (issue 12): which operator took which contact, for the agent pop-up.
        announce.append(AnnounceOperatorConnected(ev.operator, ev.queue_wait_ms))
    if nxt.settled:
        announce.append(AnnounceSettled(SettledBy.DIALER, nxt.result, incorrect, attempts_made, journal))
    return ContactChange(
        state=state,
        result=nxt.result,
        incorrect_contact=incorrect,
        journal=journal,
        attempts_made=attempts_made,
        next_due_at=due,
        next_attempt_kind=nxt.kind,
        callback_plan=plan,
        keeps_plan=False,
        changed=True,
        announce=tuple(announce),
    )


# --------------------------------------------------------------------------------------------
# settled before dialling
# --------------------------------------------------------------------------------------------


def _settled_before_dialling(now: ContactNow, predial: SettledBeforeDialling) -> ContactChange:
    o = predial.outcome
    attempts_made = now.attempts_made + 1
    journal = append_line(now.journal, o.journal_line)
    # A pre-dial case is settled whatever the rule says: it is never dialled. The attempt row
    # exists (it counts as the contact's attempt), so it is announced like any other attempt.
    final = Outcome(True, o.result, o.incorrect_contact, None, o.journal_line, o.rule)
    evidence = Evidence(predial.call_class, 1.0, PREDIAL_REASON)
    return ContactChange(
        state=ContactState.SETTLED,
        result=o.result,
        incorrect_contact=o.incorrect_contact,
        journal=journal,
        attempts_made=attempts_made,
        next_due_at=None,
        next_attempt_kind=None,
        callback_plan=None,
        keeps_plan=True,
        changed=True,
        announce=(
            AnnounceAttempt(evidence, final),
            AnnounceSettled(SettledBy.IMPORT, o.result, o.incorrect_contact, attempts_made, journal),
        ),
    )


# --------------------------------------------------------------------------------------------
# operator result
# --------------------------------------------------------------------------------------------


def _text_of(line: str) -> str:
    day, sep, text = line.strip().partition(" ")
    return text.strip() if sep and len(day) == 5 and day[2] == "/" else line.strip()


def same_last_line(journal: str, line: str) -> bool:
    """True when ``line``'s text (after ``DD/MM``) is the text of the journal's last line."""
    lines = [x for x in journal.splitlines() if x.strip()]
    return bool(lines) and _text_of(lines[-1]) == _text_of(line)


def _operator_set(now: ContactNow, op: OperatorSet) -> ContactChange:
    o = op.outcome
    if not o.settled and o.next_due_at is None:
        raise StorageError("an operator result that does not settle needs a call-back time")
    incorrect = now.incorrect_contact if op.verdict_incorrect is None else op.verdict_incorrect
    result = o.result if o.result is not None else now.result
    append = bool(o.journal_line) and not same_last_line(now.journal, o.journal_line)
    journal = append_line(now.journal, o.journal_line) if append else now.journal
    state: ContactState
    due: datetime | None
    if now.state is ContactState.IN_PROGRESS:
        state, due = now.state, now.next_due_at
    elif o.settled:
        state, due = ContactState.SETTLED, None
    else:
        state, due = ContactState.PENDING, o.next_due_at
    changed = append or (state, result, incorrect, due) != (
        now.state,
        now.result,
        now.incorrect_contact,
        now.next_due_at,
    )
    announced = o if append else replace(o, journal_line="")
    announce: list[Announcement] = [AnnounceOperatorResult(replace(announced, incorrect_contact=incorrect))]
    # contact_settled when this settles the contact or changes how it is settled: during a call
    # the contact stays in progress and the attempt's end announces the settlement.
    was = (now.state, now.result, now.incorrect_contact)
    if state is ContactState.SETTLED and was != (ContactState.SETTLED, result, incorrect):
        announce.append(AnnounceSettled(SettledBy.OPERATOR, result, incorrect, now.attempts_made, journal))
    kind = None
    if state is ContactState.PENDING:
        kind = AttemptKind.CALLBACK if op.callback else AttemptKind.CAMPAIGN
    return ContactChange(
        state=state,
        result=result,
        incorrect_contact=incorrect,
        journal=journal,
        attempts_made=now.attempts_made,
        next_due_at=due,
        next_attempt_kind=kind,
        callback_plan=None,
        keeps_plan=state is not ContactState.SETTLED,
        changed=changed,
        announce=tuple(announce) if changed else (),
        line_appended=append,
    )


# --------------------------------------------------------------------------------------------
# dropped-call call-backs planned
# --------------------------------------------------------------------------------------------


def _callbacks_planned(now: ContactNow, planned: CallbacksPlanned) -> ContactChange:
    live = now.state is ContactState.IN_PROGRESS
    return ContactChange(
        state=now.state if live else ContactState.PENDING,
        result=now.result,
        incorrect_contact=now.incorrect_contact,
        journal=now.journal,
        attempts_made=now.attempts_made,
        next_due_at=now.next_due_at if live else planned.times[0],
        next_attempt_kind=None if live else AttemptKind.DROPPED_CALLBACK,
        callback_plan=now.callback_plan if live else planned.times[1:],
        keeps_plan=live,
        changed=not live,
        announce=(),
        line_appended=False,
    )
