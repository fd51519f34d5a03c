"""Repository behaviour on SQLite and PostgreSQL (every test runs on both backends)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from dialer.csvio import CsvContact
from dialer.domain.model import (
    AttemptKind,
    CallClass,
    CardFlag,
    ContactState,
    ExclusionKind,
    Outcome,
    OwnerKind,
    ResultCode,
)
from dialer.domain.rules import RulesTable
from dialer.domain.schedule import dropped_callback_times
from dialer.errors import StorageError
from dialer.events.notifier import EventNotifier
from dialer.storage import tables
from dialer.storage.contacts import ImportCounts, NewContact
from dialer.storage.db import Database
from dialer.storage.exclusions import AddExclusionResult
from dialer.storage.numbering import NumberingRangeRow
from dialer.storage.outbox import OutboxEvent
from dialer.storage.repo import Repository

from .conftest import CAMPAIGN, NOW, count_rows
from .helpers import csv_row, mobile, outcome_for, prepare


async def _import(repo: Repository, rules: RulesTable, rows: list[CsvContact], now: datetime = NOW) -> ImportCounts:
    return await repo.import_contacts(CAMPAIGN, prepare(rules, rows, now), now)


async def test_refuses_unmigrated_database(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'empty.sqlite'}")
    try:
        with pytest.raises(StorageError, match="dialer db upgrade"):
            await Repository.open(db, EventNotifier())
    finally:
        await db.dispose()


async def test_import_settles_predial_cases_and_is_idempotent(repo: Repository, rules: RulesTable) -> None:
    rows = [
        csv_row("ok", "8 (916) 000-00-01", journal="01/11 Оператор: перезвонить\n"),
        csv_row("none", ""),
        csv_row("short", "8916123"),
        csv_row("dnc", "", flags=frozenset({CardFlag.DO_NOT_CALL})),
        csv_row("own", "+7 (495) 7304487"),
    ]
    counts = await _import(repo, rules, rows)
    assert (counts.inserted, counts.settled_without_dialling) == (5, 4)

    ok = await repo.get_contact("autumn", "ok")
    assert ok.state is ContactState.PENDING and ok.e164 == "+79160000001"
    assert ok.next_due_at == NOW  # inside the Moscow window already
    assert ok.journal == "01/11 Оператор: перезвонить\n"

    for ext, cls in (
        ("none", CallClass.NO_NUMBER),
        ("short", CallClass.INVALID_NUMBER),
        ("dnc", CallClass.DO_NOT_CALL),
        ("own", CallClass.OWN_NUMBER),
    ):
        c = await repo.get_contact("autumn", ext)
        assert c.state is ContactState.SETTLED, ext
        assert c.result is ResultCode.UNAVAILABLE and c.incorrect_contact, ext
        assert c.attempts_made == 1
        assert c.journal.startswith("18/11 "), c.journal
        (attempt,) = await repo.attempts_of(c.id)
        assert attempt.call_class is cls and attempt.kind is AttemptKind.CAMPAIGN
        assert attempt.journal_line == c.journal

    events = await repo.fetch_unpublished(100)
    settled_events = [e for e in events if e.topic == "campaign/autumn/contact"]
    assert sorted(e.payload["external_id"] for e in settled_events) == ["dnc", "none", "own", "short"]
    assert all(e.payload["source"] == "import" for e in settled_events)
    # The pre-dial attempt row is announced too, so its class reaches the CRM.
    classes = {
        e.payload["external_id"]: e.payload["call_class"] for e in events if e.topic == "campaign/autumn/attempt"
    }
    assert classes == {"none": "no_number", "short": "invalid_number", "dnc": "do_not_call", "own": "own_number"}

    # Re-import: nothing duplicated, nothing reset (even after an attempt was made).
    (claimed,) = await repo.claim_due("autumn", "w1", NOW, 10)
    aid = uuid.uuid4()
    await repo.start_attempt(claimed, aid, NOW)
    ev, out = outcome_for(rules, claimed, CallClass.BUSY, NOW)
    await repo.finish_attempt(aid, ev, out, NOW)
    before = await repo.get_contact("autumn", "ok")
    again = await _import(repo, rules, rows, NOW + timedelta(days=1))
    assert again.inserted == 0 and again.unchanged == 5
    after = await repo.get_contact("autumn", "ok")
    assert after == before
    assert await count_rows(repo.db, "contacts") == 5
    assert await count_rows(repo.db, "attempts") == 5


async def test_reimport_updates_owner_and_settles_new_do_not_call(repo: Repository, rules: RulesTable) -> None:
    await _import(repo, rules, [csv_row("a", mobile(1), name="Иванов", journal="старое")])
    counts = await _import(
        repo,
        rules,
        [
            csv_row(
                "a",
                mobile(1),
                name="Иванов И.",
                owner_kind=OwnerKind.ORGANISATION,
                flags=frozenset({CardFlag.DO_NOT_CALL}),
            )
        ],
    )
    assert counts.updated == 1 and counts.settled_without_dialling == 1
    c = await repo.get_contact("autumn", "a")
    assert c.owner_name == "Иванов И." and c.owner_kind is OwnerKind.ORGANISATION
    assert c.state is ContactState.SETTLED and c.result is ResultCode.DO_NOT_CALL
    assert c.journal.startswith("старое\n18/11 ")
    assert await repo.claim_due("autumn", "w", NOW, 10) == []


async def test_claim_due_respects_time_exclusions_and_cap(repo: Repository, rules: RulesTable) -> None:
    rows = [csv_row(f"c{i}", mobile(i)) for i in range(12)]
    await _import(repo, rules, rows)
    await repo.add_exclusion(mobile(0), ExclusionKind.CALLS, NOW)
    await repo.add_exclusion(mobile(1), ExclusionKind.ALL, NOW)
    await repo.add_exclusion(mobile(2), ExclusionKind.ONLINE, NOW)  # online only: calls allowed

    assert await repo.claim_due("autumn", "w", NOW - timedelta(seconds=1), 50) == []  # not due yet
    first = await repo.claim_due("autumn", "w1", NOW, 50, concurrency_cap=4)
    assert len(first) == 4
    more = await repo.claim_due("autumn", "w2", NOW, 50, concurrency_cap=6)
    assert len(more) == 2  # 4 already in progress
    rest = await repo.claim_due("autumn", "w3", NOW, 50)  # stored cap: 10
    got = {c.contact.external_id for c in first + more + rest}
    assert len(got) == len(first) + len(more) + len(rest) == 10
    assert "c0" not in got and "c1" not in got and "c2" in got
    assert all(c.attempt_no == 1 and c.attempt_kind is AttemptKind.CAMPAIGN for c in first)
    c0 = await repo.get_contact("autumn", "c0")
    assert c0.state is ContactState.EXCLUDED


async def test_claim_puts_back_contacts_outside_their_window(repo: Repository, rules: RulesTable) -> None:
    await _import(repo, rules, [csv_row("msk", mobile(1)), csv_row("vl", mobile(2))])
    # Vladivostok (UTC+10): make its contact due, then claim at 12:00 UTC = 22:00 local (closed)
    # while Moscow is at 15:00 (open).
    async with repo.db.write() as conn:
        await conn.execute(
            sa.update(tables.contacts).where(tables.contacts.c.external_id == "vl").values(timezone="Asia/Vladivostok")
        )
    late = NOW.replace(hour=12)
    claimed = await repo.claim_due("autumn", "w", late, 10)
    assert [c.contact.external_id for c in claimed] == ["msk"]
    vl = await repo.get_contact("autumn", "vl")
    assert vl.state is ContactState.PENDING
    # next morning 09:00 Vladivostok = 23:00 UTC the same day
    assert vl.next_due_at == NOW.replace(hour=23)


async def test_finish_attempt_is_atomic_idempotent_and_keeps_journal(repo: Repository, rules: RulesTable) -> None:
    odd = "  03/11 Звонил   клиент \r\n\tЁлка  «тест»  \r\n\r\nпоследняя строка без перевода"
    await _import(repo, rules, [csv_row("a", mobile(7), journal=odd)])
    now = NOW
    for attempt_no in (1, 2, 3):
        (claimed,) = await repo.claim_due("autumn", "w", now, 1)
        assert claimed.attempt_no == attempt_no
        aid = uuid.uuid4()
        await repo.start_attempt(claimed, aid, now, server_name="pbx1")
        ev, out = outcome_for(rules, claimed, CallClass.NO_ANSWER, now)
        res = await repo.finish_attempt(aid, ev, out, now)
        assert not res.already_finished
        again = await repo.finish_attempt(aid, ev, out, now + timedelta(minutes=5))
        assert again.already_finished and again.state is res.state
        c = await repo.get_contact("autumn", "a")
        assert c.journal.startswith(odd)  # byte for byte
        assert c.journal.count("Не отвечает") == attempt_no  # the repeat added nothing
        if attempt_no < 3:
            assert c.state is ContactState.PENDING and c.next_due_at is not None
            now = c.next_due_at
    assert c.state is ContactState.SETTLED and c.result is ResultCode.UNAVAILABLE and not c.incorrect_contact
    assert c.journal == odd + "\r\n18/11 Не отвечает" * 3
    events = await repo.fetch_unpublished(100)
    assert [e.topic for e in events].count("campaign/autumn/attempt") == 3
    settled = [e for e in events if e.topic == "campaign/autumn/contact"]
    assert len(settled) == 1 and settled[0].payload["result_title"] == "Недоступен"
    assert settled[0].payload["journal"] == c.journal and settled[0].payload["attempts_made"] == 3
    assert {e.key for e in events} == {f"contact:{c.id}"}
    attempts = await repo.attempts_of(c.id)
    assert [a.state for a in attempts] == ["finished"] * 3 and [a.attempt_no for a in attempts] == [1, 2, 3]


async def test_start_attempt_refuses_stale_claim(repo: Repository, rules: RulesTable) -> None:
    await _import(repo, rules, [csv_row("a", mobile(1))])
    (claimed,) = await repo.claim_due("autumn", "w", NOW, 1)
    assert await repo.release(claimed, NOW)
    with pytest.raises(StorageError, match="no longer claimed"):
        await repo.start_attempt(claimed, uuid.uuid4(), NOW)


async def test_recover_in_progress_closes_open_attempts_without_counting(repo: Repository, rules: RulesTable) -> None:
    await _import(repo, rules, [csv_row("a", mobile(1)), csv_row("b", mobile(2)), csv_row("c", mobile(3))])
    claimed = await repo.claim_due("autumn", "w1", NOW, 2)
    other = await repo.claim_due("autumn", "w2", NOW, 1)
    aid = uuid.uuid4()
    await repo.start_attempt(claimed[0], aid, NOW)
    later = NOW + timedelta(minutes=3)
    recovered = await repo.recover_in_progress("w1", later)
    assert {(x.contact_id, x.attempt_id) for x in recovered} == {
        (claimed[0].contact.id, aid),
        (claimed[1].contact.id, None),
    }
    a = await repo.get_contact("autumn", claimed[0].contact.external_id)
    assert a.state is ContactState.PENDING and a.attempts_made == 0 and a.next_due_at == later
    (row,) = await repo.attempts_of(a.id)
    assert row.state == "finished" and row.call_class is CallClass.ABORTED
    still = await repo.get_contact("autumn", other[0].contact.external_id)
    assert still.state is ContactState.IN_PROGRESS  # another worker's claim is left alone
    assert len(await repo.recover_in_progress(None, later)) == 1


async def test_exclusions_notify_and_block(repo: Repository, rules: RulesTable) -> None:
    await _import(repo, rules, [csv_row("a", mobile(1)), csv_row("b", mobile(2))])
    res = await repo.add_exclusion(mobile(1), ExclusionKind.CALLS, NOW, source="operator 7", reason="просит")
    assert res == AddExclusionResult(True, 1)
    assert (await repo.add_exclusion(mobile(1), ExclusionKind.CALLS, NOW)).new is False
    await repo.add_exclusion(mobile(2), ExclusionKind.ONLINE, NOW)
    notices = [
        (e.topic, e.key, e.payload["number"], e.payload["notify"])
        for e in await repo.fetch_unpublished(100)
        if e.topic.startswith("exclusion")
    ]
    assert notices == [  # one notice per new exclusion, naming everyone who must act
        ("exclusion", f"number:{mobile(1)}", mobile(1), ["survey_coordinator"]),
        ("exclusion", f"number:{mobile(2)}", mobile(2), ["survey_coordinator", "sms_manager"]),
    ]
    listed = await repo.list_exclusions()
    assert [(x.number, x.kind) for x in listed] == [(mobile(1), ExclusionKind.CALLS), (mobile(2), ExclusionKind.ONLINE)]
    claimed = await repo.claim_due("autumn", "w", NOW, 10)
    assert [c.contact.external_id for c in claimed] == ["b"]
    assert await repo.remove_exclusion(mobile(1), ExclusionKind.CALLS, NOW)
    assert not await repo.remove_exclusion(mobile(1), ExclusionKind.CALLS, NOW)
    (removed,) = [e for e in await repo.fetch_unpublished(100) if e.topic == "exclusion/removed"]
    assert removed.key == f"number:{mobile(1)}"
    assert removed.payload["calls_allowed"] is True and removed.payload["contacts_released"] == 1
    assert (await repo.get_contact("autumn", "a")).state is ContactState.PENDING
    assert [c.contact.external_id for c in await repo.claim_due("autumn", "w", NOW, 10)] == ["a"]
    new, old = await repo.import_exclusions(
        [(mobile(3), ExclusionKind.ALL, "file", ""), (mobile(2), ExclusionKind.ONLINE, "file", "")], NOW
    )
    assert (new, old) == (1, 1)


async def test_exclusion_during_call_leaves_contact_excluded(repo: Repository, rules: RulesTable) -> None:
    await _import(repo, rules, [csv_row("a", mobile(1))])
    (claimed,) = await repo.claim_due("autumn", "w", NOW, 1)
    aid = uuid.uuid4()
    await repo.start_attempt(claimed, aid, NOW)
    await repo.add_exclusion(mobile(1), ExclusionKind.ALL, NOW)
    ev, out = outcome_for(rules, claimed, CallClass.BUSY, NOW)
    res = await repo.finish_attempt(aid, ev, out, NOW)
    assert res.state is ContactState.EXCLUDED


async def test_outbox_publish_bookkeeping_and_commands(repo: Repository) -> None:
    first = OutboxEvent("t/1", {"n": 1}, "k")
    second = OutboxEvent("t/2", {"n": 2, "ru": "Недоступен"}, None)
    await repo.add_event(first, NOW)
    await repo.add_event(second, NOW)
    rows = await repo.fetch_unpublished(10)
    assert [OutboxEvent(x.topic, x.payload, x.key) for x in rows] == [first, second]
    assert rows[0].id < rows[1].id
    await repo.record_publish_error(rows[0].id, "broker down")
    await repo.mark_published([rows[1].id], NOW)
    assert [x.id for x in await repo.fetch_unpublished(10)] == [rows[0].id]
    assert await repo.remember_command("cmd-1", NOW, "f1") == "new"
    assert await repo.remember_command("cmd-1", NOW, "f1") == "duplicate"
    assert await repo.remember_command("cmd-1", NOW, "f2") == "conflict"  # the id reused for other content
    await repo.forget_command("cmd-1")
    assert await repo.remember_command("cmd-1", NOW, "f2") == "new"  # a failed command may come again
    await repo.set_command_result("cmd-1", {"ok": True})
    assert await repo.command_result("cmd-1") == {"ok": True}


async def test_operator_callback_and_dropped_callbacks(repo: Repository, rules: RulesTable) -> None:
    await _import(repo, rules, [csv_row("a", mobile(1)), csv_row("b", mobile(2))])
    a = await repo.get_contact("autumn", "a")
    cb = NOW + timedelta(hours=2)
    await repo.record_operator_result(
        a.id,
        Outcome(False, ResultCode.CALLBACK, False, cb, "18/11 Перезвонить в 14:00", "operator:callback"),
        NOW,
        operator="op1",
        callback=True,
    )
    a = await repo.get_contact("autumn", "a")
    assert a.next_due_at == cb and a.result is ResultCode.CALLBACK and a.journal.endswith("Перезвонить в 14:00")
    assert await repo.claim_due("autumn", "w", NOW + timedelta(hours=1), 10) != []  # b only
    (claimed,) = await repo.claim_due("autumn", "w", cb, 10)
    assert claimed.contact.external_id == "a" and claimed.attempt_kind is AttemptKind.CALLBACK

    b = await repo.get_contact("autumn", "b")
    await repo.recover_in_progress(None, NOW)  # release b
    times = dropped_callback_times(NOW)
    await repo.schedule_dropped_callbacks(b.id, times, NOW)
    for i, t in enumerate(times):
        (c,) = [x for x in await repo.claim_due("autumn", "w", t, 10) if x.contact.external_id == "b"]
        assert c.attempt_kind is AttemptKind.DROPPED_CALLBACK
        aid = uuid.uuid4()
        await repo.start_attempt(c, aid, t)
        ev, out = outcome_for(rules, c, CallClass.NO_ANSWER, t)
        res = await repo.finish_attempt(aid, ev, out, t)
        b = await repo.get_contact("autumn", "b")
        if i < 2:
            assert b.next_due_at == times[i + 1] and not res.settled
    assert b.state is ContactState.SETTLED and b.result is ResultCode.UNAVAILABLE


async def test_status_and_export(repo: Repository, rules: RulesTable) -> None:
    await _import(repo, rules, [csv_row("a", mobile(1), journal="j1"), csv_row("b", ""), csv_row("c", "x")])
    (st,) = await repo.status("autumn", NOW)
    assert st.total == 3 and st.by_state == {"pending": 1, "settled": 2}
    assert st.by_result == {"none": 1, "unavailable": 2} and st.by_attempts == {0: 1, 1: 2}
    assert st.incorrect_contact == 2 and st.due_now == 1
    rows = [row async for page in repo.iter_export("autumn", page=2) for row in page]
    assert [x.external_id for x in rows] == ["a", "b", "c"]
    assert rows[1].result == "Недоступен" and rows[1].incorrect_contact == "Некорректный контакт"
    assert rows[1].last_call_class == "no_number" and rows[0].journal == "j1"
    with pytest.raises(StorageError, match="no campaign"):
        await repo.status("nope", NOW)


async def test_numbering_replace(repo: Repository) -> None:
    rng = [NumberingRangeRow(916, 0, 999999, "МТС", "Москва", "г. Москва", "7740000076")]
    assert await repo.replace_numbering(rng, "DEF-9xx.csv", NOW) == 1
    rng2 = [
        NumberingRangeRow(916, 0, 499999, "МТС", "Москва", "", ""),
        NumberingRangeRow(916, 500000, 999999, "МТС", "Москва", "", ""),
    ]
    await repo.replace_numbering(rng2, "DEF-9xx.csv", NOW)
    assert await repo.numbering_ranges() == rng2


async def test_predial_settlement_needs_number_or_outcome(repo: Repository) -> None:
    bad = NewContact("x", "", None, None, "unknown", None, None, OwnerKind.PERSON, "", frozenset(), "", None)
    with pytest.raises(StorageError, match="neither"):
        await repo.import_contacts(CAMPAIGN, [bad], NOW)
    assert await count_rows(repo.db, "contacts") == 0  # the batch was rolled back
