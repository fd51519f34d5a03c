"""Issue 9 in storage, on SQLite and PostgreSQL: every attempt keeps what its hand-over to the
operators took (dead air, queue wait, who answered) — stored, exported, announced — and a person
lost on the way to an operator is called back by the dropped-call rule of docs/rules.md §6 (3 tries at +1, +2,
+3 minutes after the loss), through the repository's one dropped-call continuation."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from dialer.cli import main
from dialer.commands.contacts import EXPORT_COLUMNS
from dialer.domain.model import AttemptKind, CallClass, ContactState, Evidence, ResultCode
from dialer.domain.rules import RulesTable
from dialer.domain.schedule import dropped_callback_times
from dialer.storage import migrate
from dialer.storage.dialling import FinishResult
from dialer.storage.repo import Repository

from .conftest import CAMPAIGN, NOW
from .helpers import csv_row, mobile, outcome_for, prepare
from .test_storage_events_contract import check_row, documented_events, documented_titles

CALL_S = 20  # how long each call lasts: the call-backs count from the loss, not from the dial
LOST_JOURNAL = "18/11 Сорвался до ответа оператора"  # config/rules.yaml person_lost


def evidence(call_class: CallClass) -> Evidence:
    """What the session records: a hand-over's figures for people (found or lost), none else."""
    if call_class is CallClass.PERSON:
        return Evidence(
            call_class,
            0.9,
            "person; an operator answered",
            answered=True,
            dead_air_ms=180,
            queue_wait_ms=4020,
            operator="op1",
        )
    if call_class is CallClass.PERSON_LOST:
        return Evidence(
            call_class, 0.9, "person; lost: hung up in the queue", answered=True, dead_air_ms=240, queue_wait_ms=7500
        )
    return Evidence(call_class, 0.9, f"test: {call_class.value}")


@dataclass(frozen=True)
class Step:
    due_at: datetime  # when the contact was due (and is claimed)
    kind: AttemptKind
    ended_at: datetime
    result: FinishResult


async def call(repo: Repository, rules: RulesTable, external_id: str, at: datetime, cls: CallClass) -> Step:
    """Claim the contact at ``at`` and finish its attempt as ``cls`` CALL_S later, the way the
    worker's finish path does (a person lost starts the dropped-call series)."""
    batch = await repo.claim_due("autumn", "w", at, 10)
    (claimed,) = [c for c in batch if c.contact.external_id == external_id]
    for other in batch:
        if other is not claimed:
            await repo.release(other, at)
    aid = uuid.uuid4()
    await repo.start_attempt(claimed, aid, at)
    end = at + timedelta(seconds=CALL_S)
    _ev, out = outcome_for(rules, claimed, cls, end)
    lost = cls is CallClass.PERSON_LOST
    res = await repo.finish_attempt(
        aid,
        evidence(cls),
        out,
        end,
        counts_as_attempt=out.counts_as_attempt,
        dropped_callbacks=dropped_callback_times(end) if lost else (),
    )
    return Step(at, claimed.attempt_kind, end, res)


async def test_handover_figures_are_stored_exported_and_announced(repo: Repository, rules: RulesTable) -> None:
    rows = [csv_row("person", mobile(1)), csv_row("busy", mobile(2)), csv_row("never", mobile(3))]
    await repo.import_contacts(CAMPAIGN, prepare(rules, rows, NOW), NOW)
    await call(repo, rules, "person", NOW, CallClass.PERSON)
    await call(repo, rules, "busy", NOW, CallClass.BUSY)

    person = await repo.get_contact("autumn", "person")
    assert person.state is ContactState.SETTLED and person.result is ResultCode.HANDED_TO_OPERATOR
    (a,) = await repo.attempts_of(person.id)
    assert (a.dead_air_ms, a.queue_wait_ms, a.operator) == (180, 4020, "op1")
    (b,) = await repo.attempts_of((await repo.get_contact("autumn", "busy")).id)
    assert (b.dead_air_ms, b.queue_wait_ms, b.operator) == (None, None, None)

    export = {x.external_id: x async for page in repo.iter_export("autumn") for x in page}
    assert (export["person"].dead_air_ms, export["person"].queue_wait_ms, export["person"].operator) == (
        "180",
        "4020",
        "op1",
    )
    assert (export["busy"].dead_air_ms, export["busy"].queue_wait_ms, export["busy"].operator) == ("", "", "")
    assert export["never"].last_call_class == "" and export["never"].dead_air_ms == ""

    events = [e for e in await repo.fetch_unpublished(100) if e.payload["type"] == "attempt_finished"]
    docs, titles = documented_events(), documented_titles()
    e164_of = {x: (await repo.get_contact("autumn", x)).e164 for x in ("person", "busy")}
    for e in events:
        check_row(e, docs, titles, e164_of)  # the documented fields, in the documented order
    by_contact = {e.payload["external_id"]: e.payload for e in events}
    p = by_contact["person"]
    assert (p["dead_air_ms"], p["queue_wait_ms"], p["operator"]) == (180, 4020, "op1")
    assert p["result"] == "handed_to_operator" and p["settled"] is True
    busy = by_contact["busy"]
    assert (busy["dead_air_ms"], busy["queue_wait_ms"], busy["operator"]) == (None, None, None)


async def test_export_command_shows_the_last_attempts_handover(
    repo: Repository, rules: RulesTable, db_url: str, tmp_path: Path
) -> None:
    rows = [csv_row("person", mobile(1)), csv_row("busy", mobile(2))]
    await repo.import_contacts(CAMPAIGN, prepare(rules, rows, NOW), NOW)
    await call(repo, rules, "person", NOW, CallClass.PERSON)
    await call(repo, rules, "busy", NOW, CallClass.BUSY)
    target = tmp_path / "out.csv"
    assert await asyncio.to_thread(main, ["--db", db_url, "export", "--campaign", "autumn", "-o", str(target)]) == 0
    table = list(csv.reader(io.StringIO(target.read_bytes().decode("utf-8-sig")), delimiter=";"))
    assert tuple(table[0]) == EXPORT_COLUMNS and table[0][-4:-1] == ["dead_air_ms", "queue_wait_ms", "operator"]
    by_id = {row[0]: dict(zip(table[0], row, strict=True)) for row in table[1:]}
    assert (by_id["person"]["dead_air_ms"], by_id["person"]["queue_wait_ms"], by_id["person"]["operator"]) == (
        "180",
        "4020",
        "op1",
    )
    assert by_id["person"]["result"] == "Передан оператору"
    assert (by_id["busy"]["dead_air_ms"], by_id["busy"]["queue_wait_ms"], by_id["busy"]["operator"]) == ("", "", "")


# --- docs/rules.md §6: a person lost on the way to an operator is called back ----------------------

N, L, H, X = CallClass.NO_ANSWER, CallClass.PERSON_LOST, CallClass.PERSON, CallClass.ANN_NOT_IN_SERVICE

SERIES = [
    # id, classes of the attempts in order, index of the loss that starts the series, final result
    pytest.param([L, N, N, N], 0, ResultCode.UNAVAILABLE, False, id="lost-then-three-unanswered-call-backs"),
    pytest.param([L, L, L, L], 0, ResultCode.UNAVAILABLE, False, id="lost-again-on-every-call-back"),
    pytest.param([L, H], 0, ResultCode.HANDED_TO_OPERATOR, False, id="call-back-reaches-person-operator-answers"),
    pytest.param([L, N, L, H], 0, ResultCode.HANDED_TO_OPERATOR, False, id="third-try-reaches-person"),
    pytest.param(
        [CallClass.BUSY, CallClass.BUSY, L, N, N, N], 2, ResultCode.UNAVAILABLE, False, id="lost-on-attempt-3"
    ),
    pytest.param([L, X], 0, ResultCode.UNAVAILABLE, True, id="call-back-finds-the-number-not-in-service"),
]


@pytest.mark.parametrize(("classes", "lost_at", "result", "incorrect"), SERIES)
async def test_a_person_lost_is_called_back_at_one_two_three_minutes(
    repo: Repository,
    rules: RulesTable,
    classes: list[CallClass],
    lost_at: int,
    result: ResultCode,
    incorrect: bool,
) -> None:
    await repo.import_contacts(CAMPAIGN, prepare(rules, [csv_row("a", mobile(1))], NOW), NOW)
    due = NOW
    steps: list[Step] = []
    for i, cls in enumerate(classes):
        step = await call(repo, rules, "a", due, cls)
        steps.append(step)
        c = await repo.get_contact("autumn", "a")
        if i == len(classes) - 1:
            break
        assert not step.result.settled and c.state is ContactState.PENDING, f"attempt {i + 1} settled"
        assert c.next_due_at is not None
        if i >= lost_at:
            # +1, +2, +3 minutes after the loss, whatever the rules would have waited
            loss = steps[lost_at].ended_at
            assert c.next_due_at == loss + timedelta(minutes=i - lost_at + 1), f"attempt {i + 1}"
        due = c.next_due_at

    # Each try after the loss is a dropped-call call-back; before it, campaign attempts.
    kinds = [s.kind for s in steps]
    expected_kinds = [AttemptKind.CAMPAIGN] * (lost_at + 1) + [AttemptKind.DROPPED_CALLBACK] * (
        len(classes) - lost_at - 1
    )
    assert kinds == expected_kinds
    c = await repo.get_contact("autumn", "a")
    assert steps[-1].result.settled and c.state is ContactState.SETTLED and c.next_due_at is None
    assert c.result is result and c.incorrect_contact is incorrect
    assert c.attempts_made == len(classes)
    assert c.journal.count(LOST_JOURNAL) == classes.count(L)

    attempts = await repo.attempts_of(c.id)
    assert [a.call_class for a in attempts] == classes
    lost = attempts[lost_at]
    assert lost.journal_line == LOST_JOURNAL and lost.result is None  # not settled: called back
    assert (lost.dead_air_ms, lost.queue_wait_ms, lost.operator) == (240, 7500, None)
    assert [a.result for a in attempts[:-1]] == [None] * (len(classes) - 1)
    assert attempts[-1].result is result

    events = await repo.fetch_unpublished(100)
    finished = [e.payload for e in events if e.payload["type"] == "attempt_finished"]
    first = finished[lost_at]
    assert first["call_class"] == "person_lost" and first["settled"] is False and first["result"] is None
    assert first["next_due_at"] == (steps[lost_at].ended_at + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert first["journal_line"] == LOST_JOURNAL and first["queue_wait_ms"] == 7500
    assert all(p["settled"] is False and p["result"] is None for p in finished[:-1])
    settled = [e.payload for e in events if e.payload["type"] == "contact_settled"]
    assert len(settled) == 1 and settled[0]["result"] == result.value


async def test_a_series_plans_three_tries_in_all_and_no_more(repo: Repository, rules: RulesTable) -> None:
    """The call-backs of a loss are not restarted by a loss during a call-back (3 tries in all),
    and nothing is planned after the series (no longer-term follow-up)."""
    await repo.import_contacts(CAMPAIGN, prepare(rules, [csv_row("a", mobile(1))], NOW), NOW)
    first = await call(repo, rules, "a", NOW, L)
    times = dropped_callback_times(first.ended_at)
    due_times = []
    due = (await repo.get_contact("autumn", "a")).next_due_at
    for _ in range(3):
        assert due is not None
        due_times.append(due)
        await call(repo, rules, "a", due, L)
        due = (await repo.get_contact("autumn", "a")).next_due_at
    assert due_times == times and due is None
    assert await repo.claim_due("autumn", "w", times[-1] + timedelta(days=1), 10) == []


async def test_an_aborted_call_back_keeps_the_series(repo: Repository, rules: RulesTable) -> None:
    """Our own failure during a call-back (not counted) tries the same call-back again after the
    rules' delay and keeps the tries still planned."""
    await repo.import_contacts(CAMPAIGN, prepare(rules, [csv_row("a", mobile(1))], NOW), NOW)
    first = await call(repo, rules, "a", NOW, L)
    times = dropped_callback_times(first.ended_at)
    aborted = await call(repo, rules, "a", times[0], CallClass.ABORTED)
    assert aborted.kind is AttemptKind.DROPPED_CALLBACK and not aborted.result.settled
    c = await repo.get_contact("autumn", "a")
    assert c.attempts_made == 1 and c.next_due_at is not None
    again = await call(repo, rules, "a", c.next_due_at, N)
    assert again.kind is AttemptKind.DROPPED_CALLBACK
    c = await repo.get_contact("autumn", "a")
    assert c.state is ContactState.PENDING and c.next_due_at == times[1] and c.attempts_made == 2


async def test_the_migration_adds_nullable_columns_and_goes_back(repo: Repository, rules: RulesTable) -> None:
    """0004 down and up again on a database holding attempts: rows of older versions have none
    of the figures, and the repository reads them."""
    await repo.import_contacts(CAMPAIGN, prepare(rules, [csv_row("a", mobile(1))], NOW), NOW)
    await call(repo, rules, "a", NOW, H)
    try:
        await migrate.downgrade(repo.db, "0003")
        assert await migrate.current_revision(repo.db) == "0003"
    finally:
        await migrate.upgrade(repo.db)
    assert await migrate.current_revision(repo.db) == migrate.head_revision()
    (a,) = await repo.attempts_of((await repo.get_contact("autumn", "a")).id)
    assert a.call_class is CallClass.PERSON and (a.dead_air_ms, a.queue_wait_ms, a.operator) == (None, None, None)
