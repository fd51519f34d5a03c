"""Issue 13 in storage, on SQLite and PostgreSQL: every attempt keeps its decision latency
(``decision_ms``: from the start of the call's audio to the decision) — stored by the finish path,
exported as the last column, announced in ``attempt_finished``, read by the report's query — and
migration 0005 goes down and up again on a database holding attempts."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from datetime import timedelta
from pathlib import Path

from dialer.cli import main
from dialer.commands.contacts import EXPORT_COLUMNS
from dialer.domain.model import CallClass, Evidence
from dialer.domain.rules import RulesTable
from dialer.storage import migrate
from dialer.storage.repo import Repository
from dialer.storage.stats import campaign_facts

from .conftest import CAMPAIGN, NOW
from .helpers import csv_row, mobile, outcome_for, prepare
from .test_storage_events_contract import check_row, documented_events, documented_titles

ANN_MS = 2450  # an announcement recognised 2.45 s into its audio


def evidence(call_class: CallClass) -> Evidence:
    """An announcement heard on early media carries a latency; a busy signal had no audio."""
    if call_class is CallClass.ANN_SWITCHED_OFF:
        return Evidence(call_class, 0.9, "ASR: «абонент выключен»", decision_ms=ANN_MS)
    return Evidence(call_class, 0.9, f"test: {call_class.value}")


async def call(repo: Repository, rules: RulesTable, external_id: str, cls: CallClass) -> None:
    batch = await repo.claim_due("autumn", "w", NOW, 10)
    (claimed,) = [c for c in batch if c.contact.external_id == external_id]
    for other in batch:
        if other is not claimed:
            await repo.release(other, NOW)
    aid = uuid.uuid4()
    await repo.start_attempt(claimed, aid, NOW)
    end = NOW + timedelta(seconds=20)
    _ev, out = outcome_for(rules, claimed, cls, end)
    await repo.finish_attempt(aid, evidence(cls), out, end, counts_as_attempt=out.counts_as_attempt)


async def _two_calls(repo: Repository, rules: RulesTable, *more: str) -> None:
    rows = [
        csv_row("ann", mobile(1)),
        csv_row("busy", mobile(2)),
        *(csv_row(x, mobile(3 + i)) for i, x in enumerate(more)),
    ]
    await repo.import_contacts(CAMPAIGN, prepare(rules, rows, NOW), NOW)
    await call(repo, rules, "ann", CallClass.ANN_SWITCHED_OFF)
    await call(repo, rules, "busy", CallClass.BUSY)


async def test_decision_latency_is_stored_exported_announced_and_reported(repo: Repository, rules: RulesTable) -> None:
    await _two_calls(repo, rules, "never")
    (a,) = await repo.attempts_of((await repo.get_contact("autumn", "ann")).id)
    (b,) = await repo.attempts_of((await repo.get_contact("autumn", "busy")).id)
    assert (a.call_class, a.decision_ms) == (CallClass.ANN_SWITCHED_OFF, ANN_MS)
    assert (b.call_class, b.decision_ms) == (CallClass.BUSY, None)

    export = {x.external_id: x async for page in repo.iter_export("autumn") for x in page}
    assert (export["ann"].decision_ms, export["busy"].decision_ms, export["never"].decision_ms) == (str(ANN_MS), "", "")

    events = [e for e in await repo.fetch_unpublished(100) if e.payload["type"] == "attempt_finished"]
    docs, titles = documented_events(), documented_titles()
    e164_of = {x: (await repo.get_contact("autumn", x)).e164 for x in ("ann", "busy")}
    for e in events:
        check_row(e, docs, titles, e164_of)  # decision_ms is documented, in its documented place
    by_contact = {e.payload["external_id"]: e.payload for e in events}
    assert (by_contact["ann"]["decision_ms"], by_contact["busy"]["decision_ms"]) == (ANN_MS, None)

    facts = {f.call_class: f.decision_ms for f in (await campaign_facts(repo.db, "autumn")).attempts}
    assert facts == {"ann_switched_off": ANN_MS, "busy": None}


async def test_export_command_ends_with_the_decision_latency(
    repo: Repository, rules: RulesTable, db_url: str, tmp_path: Path
) -> None:
    await _two_calls(repo, rules)
    target = tmp_path / "out.csv"
    assert await asyncio.to_thread(main, ["--db", db_url, "export", "--campaign", "autumn", "-o", str(target)]) == 0
    table = list(csv.reader(io.StringIO(target.read_bytes().decode("utf-8-sig")), delimiter=";"))
    assert tuple(table[0]) == EXPORT_COLUMNS and table[0][-1] == "decision_ms"
    by_id = {row[0]: dict(zip(table[0], row, strict=True)) for row in table[1:]}
    assert (by_id["ann"]["decision_ms"], by_id["busy"]["decision_ms"]) == (str(ANN_MS), "")


async def test_migration_0005_goes_down_and_up_with_attempts(repo: Repository, rules: RulesTable) -> None:
    """Down to 0004 drops the column (the hand-over figures stay), up again adds it empty: rows of
    older versions have no latency, and the repository and the report's query read them."""
    await _two_calls(repo, rules)
    try:
        await migrate.downgrade(repo.db, "0004")
        assert await migrate.current_revision(repo.db) == "0004"
    finally:
        await migrate.upgrade(repo.db)
    assert await migrate.current_revision(repo.db) == migrate.head_revision() == "0005"
    (a,) = await repo.attempts_of((await repo.get_contact("autumn", "ann")).id)
    assert a.call_class is CallClass.ANN_SWITCHED_OFF and a.decision_ms is None
    facts = (await campaign_facts(repo.db, "autumn")).attempts
    assert len(facts) == 2 and all(f.decision_ms is None for f in facts)
