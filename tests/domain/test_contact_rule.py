"""The contact rule, table-driven: a stored contact and an outcome → the contact change and the
facts announced (dialer.domain.contact_rule). One row per case; the columns are the contact
before, the outcome, and what the rule must give."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from dialer.domain.contact_rule import (
    AnnounceAttempt,
    AnnounceOperatorConnected,
    AnnounceOperatorResult,
    AnnounceSettled,
    AttemptEnded,
    CallbacksPlanned,
    ContactChange,
    ContactNow,
    ContactOutcome,
    OperatorSet,
    SettledBeforeDialling,
    SettledBy,
    aborted_verdict,
    apply_outcome,
)
from dialer.domain.model import AttemptKind, CallClass, ContactState, Evidence, Outcome, ResultCode
from dialer.errors import StorageError

NOW = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)
T1, T2, T3 = (NOW + timedelta(minutes=m) for m in (1, 2, 3))
LATER = NOW + timedelta(hours=4)

C, P, S, X = ContactState.IN_PROGRESS, ContactState.PENDING, ContactState.SETTLED, ContactState.EXCLUDED
U, H, CB, R, DNC = (
    ResultCode.UNAVAILABLE,
    ResultCode.HANDED_TO_OPERATOR,
    ResultCode.CALLBACK,
    ResultCode.REFUSED,
    ResultCode.DO_NOT_CALL,
)
CAMPAIGN, DROPPED = AttemptKind.CAMPAIGN, AttemptKind.DROPPED_CALLBACK

BUSY = Evidence(CallClass.BUSY, 0.9, "busy")
PERSON = Evidence(CallClass.PERSON, 0.9, "person", answered=True, operator="SIP/101", queue_wait_ms=800)
LOST = Evidence(CallClass.PERSON_LOST, 0.9, "lost", answered=True, operator="SIP/101", queue_wait_ms=9000)


def live(
    journal: str = "",
    attempts: int = 0,
    plan: tuple[datetime, ...] | None = None,
    result: ResultCode | None = None,
    blocked: bool = False,
    incorrect: bool = False,
) -> ContactNow:
    return ContactNow(C, result, incorrect, journal, None, attempts, plan, blocked)


def retry(line: str = "18/11 Занято", at: datetime = LATER) -> Outcome:
    return Outcome(False, None, False, at, line, "busy")


def settle(result: ResultCode, line: str = "18/11 Итог", incorrect: bool = False) -> Outcome:
    return Outcome(True, result, incorrect, None, line, result.value)


def ended(
    outcome: Outcome,
    evidence: Evidence = BUSY,
    no: int = 1,
    kind: AttemptKind = CAMPAIGN,
    count: bool = True,
    dropped: tuple[datetime, ...] = (),
) -> AttemptEnded:
    return AttemptEnded(no, kind, evidence, outcome, count, dropped)


@dataclass(frozen=True)
class Want:
    """The expected change; ``announced`` names the facts in order (attempt, connected,
    operator_result, settled)."""

    state: ContactState
    result: ResultCode | None
    attempts: int
    due: datetime | None
    kind: AttemptKind | None
    plan: tuple[datetime, ...] | None
    journal: str
    announced: tuple[str, ...]
    incorrect: bool = False
    attempt_result: ResultCode | None = None  # what the attempt_finished fact says


NAMES = {
    AnnounceAttempt: "attempt",
    AnnounceOperatorConnected: "connected",
    AnnounceOperatorResult: "operator_result",
    AnnounceSettled: "settled",
}

ROWS: list[tuple[str, ContactNow, ContactOutcome, Want]] = [
    (
        "busy is retried later, journal line appended",
        live("17/11 Не отвечает", attempts=1),
        ended(retry(), no=2),
        Want(P, None, 2, LATER, CAMPAIGN, None, "17/11 Не отвечает\n18/11 Занято", ("attempt",)),
    ),
    (
        "a retry of an excluded number waits as excluded",
        live(blocked=True),
        ended(retry()),
        Want(X, None, 1, LATER, CAMPAIGN, None, "18/11 Занято", ("attempt",)),
    ),
    (
        "a settling verdict settles and announces the settlement",
        live(attempts=2),
        ended(settle(U, "18/11 Недоступен"), no=3),
        Want(S, U, 3, None, CAMPAIGN, None, "18/11 Недоступен", ("attempt", "settled"), attempt_result=U),
    ),
    (
        "a handed-over person announces the operator who answered",
        live(),
        ended(settle(H, "18/11 Передан оператору"), PERSON),
        Want(
            S,
            H,
            1,
            None,
            CAMPAIGN,
            None,
            "18/11 Передан оператору",
            ("attempt", "connected", "settled"),
            attempt_result=H,
        ),
    ),
    (
        "our own failure keeps the counter and writes no line",
        live("j", attempts=1),
        ended(Outcome(False, None, False, T1, "", "originate_failed"), no=2, count=False),
        Want(P, None, 1, T1, CAMPAIGN, None, "j", ("attempt",)),
    ),
    (
        "recovery: an aborted attempt is not counted and due at once",
        live("j", attempts=1),
        AttemptEnded(2, CAMPAIGN, *aborted_verdict(NOW), counts_as_attempt=False),
        Want(P, None, 1, NOW, CAMPAIGN, None, "j", ("attempt",)),
    ),
    (
        "the incorrect-contact flag is never cleared by an attempt",
        live(incorrect=True),
        ended(retry()),
        Want(P, None, 1, LATER, CAMPAIGN, None, "18/11 Занято", ("attempt",), incorrect=True),
    ),
    (
        "a person lost starts a dropped-call series past the rules' settlement",
        live(),
        ended(settle(U, "18/11 Сброс"), LOST, dropped=(T1, T2, T3)),
        Want(P, None, 1, T1, DROPPED, (T2, T3), "18/11 Сброс", ("attempt",)),
    ),
    (
        "a try of a series takes the next planned time",
        live(attempts=1, plan=(T2, T3)),
        ended(retry(), no=2, kind=DROPPED),
        Want(P, None, 2, T2, DROPPED, (T3,), "18/11 Занято", ("attempt",)),
    ),
    (
        "the last try of a series settles «Недоступен»",
        live(attempts=3, plan=()),
        ended(retry(), no=4, kind=DROPPED),
        Want(S, U, 4, None, CAMPAIGN, None, "18/11 Занято", ("attempt", "settled"), attempt_result=U),
    ),
    (
        "a series ending on an agreed call-back settles «Недоступен», not call-back",
        live(attempts=3, plan=(), result=CB),
        ended(retry(), no=4, kind=DROPPED),
        Want(S, U, 4, None, CAMPAIGN, None, "18/11 Занято", ("attempt", "settled"), attempt_result=U),
    ),
    (
        "a series' try that hands a person over ends the series",
        live(attempts=1, plan=(T2, T3)),
        ended(settle(H, "18/11 Передан"), PERSON, no=2, kind=DROPPED),
        Want(S, H, 2, None, CAMPAIGN, None, "18/11 Передан", ("attempt", "connected", "settled"), attempt_result=H),
    ),
    (
        "a failed try of a series keeps the series and its plan",
        live(attempts=1, plan=(T3,)),
        ended(Outcome(False, None, False, T2, "", "originate_failed"), no=2, kind=DROPPED, count=False),
        Want(P, None, 1, T2, DROPPED, (T3,), "", ("attempt",)),
    ),
    (
        "pre-dial settlement counts an attempt and is announced by the import",
        ContactNow(P, None, False, "Звонил сам", None, 0),
        SettledBeforeDialling(CallClass.ORIGINATE_FAILED, settle(DNC, "18/11 НЕ ЗВОНИТЬ")),
        Want(S, DNC, 1, None, None, None, "Звонил сам\n18/11 НЕ ЗВОНИТЬ", ("attempt", "settled"), attempt_result=DNC),
    ),
    (
        "an operator's refusal settles a pending contact",
        ContactNow(P, None, False, "", LATER, 1),
        OperatorSet(settle(R, "18/11 Отказ"), False),
        Want(S, R, 1, None, None, None, "18/11 Отказ", ("operator_result", "settled")),
    ),
    (
        "an operator's call-back reopens a settled contact (attempt kind callback)",
        ContactNow(S, U, False, "", None, 2),
        OperatorSet(Outcome(False, CB, False, LATER, "18/11 Перезвонить", "cb"), False, callback=True),
        Want(P, CB, 2, LATER, AttemptKind.CALLBACK, None, "18/11 Перезвонить", ("operator_result",)),
    ),
    (
        "an operator's result during a call keeps the contact in progress",
        live(),
        OperatorSet(settle(R, "18/11 Отказ"), False),
        Want(C, R, 0, None, None, None, "18/11 Отказ", ("operator_result",)),
    ),
    (
        "dropped-call call-backs reopen a settled contact with their plan",
        ContactNow(S, U, True, "j", None, 3),
        CallbacksPlanned((T1, T2, T3)),
        Want(P, U, 3, T1, DROPPED, (T2, T3), "j", (), incorrect=True),
    ),
    (
        "dropped-call call-backs leave a contact being called as it is",
        live("j", attempts=1, plan=(T3,)),
        CallbacksPlanned((T1, T2)),
        Want(C, None, 1, None, None, (T3,), "j", ()),
    ),
    (
        "an operator's repeat announces nothing",
        ContactNow(S, R, False, "18/11 Отказ", None, 1),
        OperatorSet(settle(R, "19/11 Отказ"), False),
        Want(S, R, 1, None, None, None, "18/11 Отказ", ()),
    ),
]


@pytest.mark.parametrize(("before", "outcome", "want"), [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_contact_rule(before: ContactNow, outcome: ContactOutcome, want: Want) -> None:
    change = apply_outcome(before, outcome)
    got = Want(
        change.state,
        change.result,
        change.attempts_made,
        change.next_due_at,
        change.next_attempt_kind,
        change.callback_plan,
        change.journal,
        tuple(NAMES[type(a)] for a in change.announce),
        change.incorrect_contact,
        _attempt_result(change),
    )
    assert got == want


def _attempt_result(change: ContactChange) -> ResultCode | None:
    facts = [a for a in change.announce if isinstance(a, AnnounceAttempt)]
    return facts[0].outcome.result if facts else None


def test_settlement_facts_carry_the_source_and_the_stored_journal() -> None:
    dialer = apply_outcome(live("j", attempts=2), ended(settle(U, "18/11 Недоступен"), no=3))
    assert dialer.announce[-1] == AnnounceSettled(SettledBy.DIALER, U, False, 3, "j\n18/11 Недоступен")
    imported = apply_outcome(
        ContactNow(P, None, False, "", None, 1), SettledBeforeDialling(CallClass.ORIGINATE_FAILED, settle(DNC, "x"))
    )
    assert imported.announce[-1] == AnnounceSettled(SettledBy.IMPORT, DNC, False, 2, "x")
    assert imported.announce[0] == AnnounceAttempt(
        Evidence(CallClass.ORIGINATE_FAILED, 1.0, "settled before dialling"), settle(DNC, "x")
    )


def test_the_attempt_fact_says_what_was_decided_not_what_the_rules_said() -> None:
    started = apply_outcome(live(), ended(settle(U, "18/11 Сброс"), LOST, dropped=(T1, T2, T3)))
    fact = started.announce[0]
    assert isinstance(fact, AnnounceAttempt)
    assert (fact.outcome.settled, fact.outcome.result, fact.outcome.next_due_at) == (False, None, T1)
    cont = apply_outcome(live(result=U, plan=(T2,)), ended(retry(), no=2, kind=DROPPED))
    fact = cont.announce[0]
    assert isinstance(fact, AnnounceAttempt) and fact.outcome.result is None and cont.result is U


def test_an_operator_line_already_there_is_announced_without_it() -> None:
    change = apply_outcome(
        ContactNow(P, None, False, "18/11 Перезвонить", LATER), OperatorSet(settle(R, "19/11 Перезвонить"), False)
    )
    fact = change.announce[0]
    assert isinstance(fact, AnnounceOperatorResult) and fact.outcome.journal_line == "" and not change.line_appended


def test_outcomes_that_neither_settle_nor_schedule_are_refused() -> None:
    with pytest.raises(StorageError):
        apply_outcome(live(), ended(Outcome(False, None, False, None, "", "x")))
    with pytest.raises(StorageError):
        apply_outcome(live(), OperatorSet(Outcome(False, CB, False, None, "", "cb"), False))
    with pytest.raises(StorageError, match="no call-back times"):
        CallbacksPlanned(())


def test_call_backs_for_a_contact_being_called_change_nothing() -> None:
    assert not apply_outcome(live(), CallbacksPlanned((T1,))).changed
    assert apply_outcome(ContactNow(P, None, False, "", LATER), CallbacksPlanned((T1,))).changed
