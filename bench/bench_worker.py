"""Worker throughput against the built-in Asterisk simulator: originates per second, AMI events
per second the worker consumes, and memory per live call.

    .venv/bin/python bench/bench_worker.py [--calls 400] [--concurrency 50] [--live 200]

Phase 1 dials ``--calls`` busy numbers (the shortest scenario) with ``--concurrency`` calls in
flight and reports originates/s and AMI events/s over the whole run (the simulator, the worker and
SQLite share the machine: these are end-to-end numbers, not the AMI parser alone).
Phase 2 holds ``--live`` ringing calls at once and reports the worker's memory growth per live call
(tracemalloc, Python allocations of the worker process; the simulator runs in the same process, so
its channel objects are measured separately and subtracted).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import socket
import tempfile
import time
import tracemalloc
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from dialer import app
from dialer.commands.demo import DemoClock
from dialer.config import AmiEndpoint, Secret, load_settings
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

START = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def seed(url: str, numbers: list[str], concurrency: int) -> None:
    settings = load_settings()
    db = Database(url)
    await upgrade(db)
    repo = await Repository.open(db, EventNotifier())
    camp = CampaignSettings(name="bench", timezone="Europe/Moscow", concurrency=concurrency)
    await repo.ensure_campaign(camp, START)
    prep = ContactPreparer(camp, RulesTable.load(settings.rules_path), load_own_numbers(settings.own_numbers_path))
    rows = [
        prep.prepare(CsvContact(i, f"b{i}", n, OwnerKind.PERSON, "", frozenset[CardFlag](), ""), START)
        for i, n in enumerate(numbers)
    ]
    await repo.import_contacts(camp, rows, START)
    await db.dispose()


async def phase(
    numbers: list[str], concurrency: int, time_scale: float, *, until_live: int | None = None
) -> tuple[float, int, int, app.Runtime, SimAsterisk, asyncio.Event, asyncio.Task[WorkerStats]]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-worker-"))
    url = f"sqlite+aiosqlite:///{tmp / 'b.sqlite'}"
    await seed(url, numbers, concurrency)
    settings = replace(load_settings(), database_url=url)
    as_port = free_port()
    sim = SimAsterisk(audiosocket_addr=("127.0.0.1", as_port), time_scale=time_scale, secret="b")
    ami_port = await sim.start()
    done = asyncio.Event()
    finished = 0

    def on_finished(_a: uuid.UUID, _c: ClaimedContact, _e: Evidence) -> None:
        nonlocal finished
        finished += 1
        if finished >= len(numbers):
            done.set()

    opts = app.RunOptions(
        worker_id="bench",
        campaigns=("bench",),
        mqtt=False,
        time_scale=time_scale,
        ami_endpoints=[AmiEndpoint("sim", "127.0.0.1", ami_port, "dialer", Secret("b"), max_calls=concurrency)],
        audiosocket_bind=("127.0.0.1", as_port),
        clock=DemoClock(START, time_scale),
        on_call_finished=on_finished,
        drain_s=0.0,
    )
    rt = await app.build(settings, opts)
    stop = asyncio.Event()
    t0 = time.perf_counter()
    task = asyncio.create_task(app.run(rt, stop))
    if until_live is None:
        await done.wait()
    else:
        # The simulator has no "channel created" hook; a bench may sample its state.
        while len(sim.live_channels()) < until_live * 3 and not task.done():  # noqa: ASYNC110  (;1, ;2, trunk)
            await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - t0
    return elapsed, finished, rt.worker.registry.correlator.stats.events, rt, sim, stop, task


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=400)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--live", type=int, default=200)
    args = ap.parse_args()

    busy = [f"+7999{i:05d}01" for i in range(args.calls)]  # last two digits 01: the busy scenario
    elapsed, finished, events, rt, sim, stop, task = await phase(busy, args.concurrency, 0.01)
    stop.set()
    await task
    await sim.stop()
    print(f"phase 1: {finished} calls (busy) with {args.concurrency} in flight in {elapsed:.2f} s")
    print(f"  originates per second      {finished / elapsed:8.1f}")
    print(f"  AMI events per second      {events / elapsed:8.1f}  ({events} events consumed)")

    ringing = [f"+7999{i:05d}03" for i in range(args.live)]  # 03: rings until the timeout
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.take_snapshot()
    # Slowed down 20×: the calls keep ringing while the snapshot is taken.
    elapsed, _f, _e, rt, sim, stop, task = await phase(ringing, args.live, 20.0, until_live=args.live)
    gc.collect()
    snap = tracemalloc.take_snapshot()
    live = rt.worker.live_calls
    stats = snap.compare_to(base, "filename")
    total = sum(s.size_diff for s in stats)
    sim_bytes = sum(s.size_diff for s in stats if "/dialer/sim/" in str(s.traceback))
    tracemalloc.stop()
    stop.set()
    await task
    await sim.stop()
    worker_bytes = total - sim_bytes
    print(f"phase 2: {live} live ringing calls after {elapsed:.2f} s")
    print(f"  memory per live call       {worker_bytes / max(1, live) / 1024:8.1f} KiB (worker side, Python heap)")
    print(f"  (simulator side            {sim_bytes / max(1, live) / 1024:8.1f} KiB per call, not counted)")


if __name__ == "__main__":
    asyncio.run(main())
