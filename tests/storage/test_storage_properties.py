"""Property (hypothesis, SQLite): whatever the contacts, exclusions, clock moves, claims and
attempt outcomes, a claim never yields a number excluded from calls, never a contact outside
its calling window in its own time zone, and never a number that is already live."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialer.domain.model import CallClass, ExclusionKind
from dialer.domain.rules import RulesTable
from dialer.domain.schedule import in_window
from dialer.events.notifier import EventNotifier
from dialer.storage import tables
from dialer.storage.db import Database
from dialer.storage.dialling import ClaimedContact
from dialer.storage.repo import Repository

from .conftest import CAMPAIGN, NOW, RULES_PATH, WINDOWS
from .helpers import csv_row, mobile, outcome_for, prepare

ZONES = ["Europe/Moscow", "Asia/Vladivostok", "Europe/Kaliningrad", "Asia/Yekaterinburg", "Asia/Kamchatka"]
CLASSES = [CallClass.BUSY, CallClass.NO_ANSWER, CallClass.ANN_DOES_NOT_EXIST, CallClass.PERSON, CallClass.IVR]
RULES = RulesTable.load(RULES_PATH)

contact_st = st.tuples(st.sampled_from(ZONES), st.integers(0, 30))  # (zone, number index; repeats share)
op_st = st.one_of(
    st.tuples(st.just("advance"), st.integers(1, 60 * 30)),  # minutes
    st.tuples(st.just("claim"), st.integers(1, 8)),
    st.tuples(st.just("exclude"), st.integers(0, 30), st.sampled_from(list(ExclusionKind))),
    st.tuples(st.just("unexclude"), st.integers(0, 30), st.sampled_from(list(ExclusionKind))),
    st.tuples(st.just("finish"), st.sampled_from(CLASSES)),
)


async def _scenario(path: Path, contacts: list[tuple[str, int]], ops: list[tuple[object, ...]]) -> int:
    db = Database(f"sqlite+aiosqlite:///{path}")
    checked = 0
    try:
        repo = await Repository.open(db, EventNotifier())
        rows = [csv_row(f"c{i}", mobile(n)) for i, (_, n) in enumerate(contacts)]
        await repo.import_contacts(CAMPAIGN, prepare(RULES, rows, NOW), NOW)
        async with db.write() as conn:
            for i, (tz, _) in enumerate(contacts):
                await conn.execute(
                    sa.update(tables.contacts).where(tables.contacts.c.external_id == f"c{i}").values(timezone=tz)
                )
        now = NOW
        blocked: set[tuple[str, ExclusionKind]] = set()
        live: list[tuple[ClaimedContact, uuid.UUID]] = []
        for op in ops:
            if op[0] == "advance":
                assert isinstance(op[1], int)
                now += timedelta(minutes=op[1])
            elif op[0] == "exclude":
                assert isinstance(op[1], int) and isinstance(op[2], ExclusionKind)
                await repo.add_exclusion(mobile(op[1]), op[2], now)
                blocked.add((mobile(op[1]), op[2]))
            elif op[0] == "unexclude":
                assert isinstance(op[1], int) and isinstance(op[2], ExclusionKind)
                await repo.remove_exclusion(mobile(op[1]), op[2], now)
                blocked.discard((mobile(op[1]), op[2]))
            elif op[0] == "claim":
                assert isinstance(op[1], int)
                for c in await repo.claim_due(CAMPAIGN.name, "w", now, op[1]):
                    number = c.contact.e164
                    assert number is not None
                    assert not any((number, k) in blocked for k in ExclusionKind if k.blocks_calls), number
                    tz = c.contact.timezone or CAMPAIGN.timezone
                    assert in_window(now, tz, WINDOWS), (now, tz)
                    checked += 1
                    # one live call per number: contacts share numbers here (index repeats)
                    assert number not in {x.contact.e164 for x, _ in live}, number
                    aid = uuid.uuid4()
                    await repo.start_attempt(c, aid, now)
                    live.append((c, aid))
            elif op[0] == "finish" and live:
                c, aid = live.pop(0)
                assert isinstance(op[1], CallClass)
                ev, out = outcome_for(RULES, c, op[1], now)
                await repo.finish_attempt(aid, ev, out, now)
        return checked
    finally:
        await db.dispose()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(contacts=st.lists(contact_st, min_size=1, max_size=10), ops=st.lists(op_st, min_size=1, max_size=25))
def test_claims_never_excluded_never_outside_window(
    sqlite_template: Path, contacts: list[tuple[str, int]], ops: list[tuple[object, ...]]
) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "p.sqlite"
        shutil.copyfile(sqlite_template, path)
        asyncio.run(_scenario(path, contacts, ops))


def test_property_scenario_claims_something(sqlite_template: Path) -> None:
    """Guard against a vacuous property: a plain scenario does claim and check contacts."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "p.sqlite"
        shutil.copyfile(sqlite_template, path)
        checked = asyncio.run(
            _scenario(
                path,
                [("Europe/Moscow", 1), ("Asia/Vladivostok", 2), ("Europe/Moscow", 3)],
                [("exclude", 3, ExclusionKind.CALLS), ("claim", 5), ("advance", 60 * 14), ("claim", 5)],
            )
        )
        assert checked == 2  # Moscow and Vladivostok (19:00 there); the excluded number never
