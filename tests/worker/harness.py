"""Run the real worker (dialer.app) against the built-in Asterisk simulator on a fresh database."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dialer import app
from dialer.commands.demo import DemoClock
from dialer.config import AmiEndpoint, AudioSettings, Secret, Settings, load_settings
from dialer.csvio import CsvContact
from dialer.domain.model import CardFlag, Evidence, OwnerKind
from dialer.domain.policy import load_own_numbers
from dialer.domain.rules import RulesTable
from dialer.events.notifier import EventNotifier
from dialer.sim import SimAsterisk
from dialer.storage.campaigns import CampaignSettings
from dialer.storage.db import Database
from dialer.storage.dialling import ClaimedContact
from dialer.storage.ingest import ContactPreparer
from dialer.storage.migrate import upgrade
from dialer.storage.repo import Repository
from dialer.worker import WorkerStats

START = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # Monday 10:00 Moscow
TIME_SCALE = 0.02


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Finished:
    attempt_id: uuid.UUID
    number: str
    attempt_no: int
    evidence: Evidence


@dataclass
class Harness:
    settings: Settings
    sim: SimAsterisk
    clock: DemoClock
    time_scale: float = TIME_SCALE
    finished: list[Finished] = field(default_factory=list)
    event: asyncio.Event = field(default_factory=asyncio.Event)

    def on_finished(self, attempt_id: uuid.UUID, claimed: ClaimedContact, ev: Evidence) -> None:
        self.finished.append(Finished(attempt_id, claimed.contact.e164 or "", claimed.attempt_no, ev))
        self.event.set()

    async def wait_finished(self, n: int, timeout_s: float = 20.0) -> None:
        async def _wait() -> None:
            while len(self.finished) < n:
                self.event.clear()
                await self.event.wait()

        await asyncio.wait_for(_wait(), timeout_s)

    def options(self, ami_port: int, as_port: int, **kw: object) -> app.RunOptions:
        opts = app.RunOptions(
            worker_id="test-worker",
            campaigns=("t",),
            mqtt=False,
            time_scale=self.time_scale,
            ami_endpoints=[AmiEndpoint("sim", "127.0.0.1", ami_port, "dialer", Secret("sim"), max_calls=20)],
            audiosocket_bind=("127.0.0.1", as_port),
            drain_s=5.0,
            clock=self.clock,
            on_call_finished=self.on_finished,
            asr_engine=None,  # whatever models are installed: a test that wants speech says which
        )
        for k, v in kw.items():
            setattr(opts, k, v)
        return opts


async def seed(settings: Settings, numbers: list[str], now: datetime, *, owner: OwnerKind = OwnerKind.PERSON) -> None:
    db = Database(settings.database_url)
    try:
        await upgrade(db)
        repo = await Repository.open(db, EventNotifier())
        campaign = CampaignSettings(name="t", timezone="Europe/Moscow", concurrency=20)
        await repo.ensure_campaign(campaign, now)
        prep = ContactPreparer(
            campaign, RulesTable.load(settings.rules_path), load_own_numbers(settings.own_numbers_path)
        )
        rows = [
            prep.prepare(CsvContact(i + 2, f"c{i}", n, owner, f"owner {i}", frozenset[CardFlag](), ""), now)
            for i, n in enumerate(numbers)
        ]
        await repo.import_contacts(campaign, rows, now)
    finally:
        await db.dispose()


@asynccontextmanager
async def harness(
    tmp_path: Path, db_url: str | None = None, *, time_scale: float = TIME_SCALE, **sim_options: Any
) -> AsyncIterator[tuple[Harness, int, int]]:
    """The simulator and settings on a fresh database. ``time_scale``: how fast simulated time runs
    (0.02 = 50× real time); calls whose audio the worker must analyse in full (fingerprints) need
    a gentler pace, or a loaded machine falls behind the audio."""
    base = load_settings()
    url = db_url or f"sqlite+aiosqlite:///{tmp_path / 'w.sqlite'}"
    # The energy detector, whatever is installed: simulated time runs 10–50× real time here, and
    # Silero's ≈ 140 µs a slot would tie these tests to the machine's load and to whether the model
    # happens to be in asr_models/ (tests/audio/test_silero.py drives the session with Silero).
    settings = replace(base, database_url=url, audio=AudioSettings("energy"))
    as_port = free_port()
    sim = SimAsterisk(audiosocket_addr=("127.0.0.1", as_port), time_scale=time_scale, secret="sim", **sim_options)
    ami_port = await sim.start()
    h = Harness(settings, sim, DemoClock(START, time_scale), time_scale=time_scale)
    try:
        yield h, ami_port, as_port
    finally:
        await sim.stop()


async def run_until(h: Harness, opts: app.RunOptions, n_finished: int, timeout_s: float = 30.0) -> WorkerStats:
    rt = await app.build(h.settings, opts)
    stop = asyncio.Event()
    task = asyncio.create_task(app.run(rt, stop))
    try:
        await h.wait_finished(n_finished, timeout_s)
    finally:
        stop.set()
        stats = await asyncio.wait_for(task, 30)
    return stats
