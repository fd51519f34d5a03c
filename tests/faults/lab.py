"""A fault-injection lab: real ``dialer run`` processes against simulated Asterisk processes
(``python -m dialer.sim``), a database (SQLite file or a PostgreSQL database), optionally a private
Mosquitto — and the figures that say whether anything was lost.

Used by the fault tests (tests/faults/, small sizes) and by bench/bench_faults.py and
bench/bench_soak.py (full sizes). Nothing here reaches into a worker: faults are what an operator
would see — ``kill -9``, a broker or a database going away, AMI connections dropping — and the
verdict comes from the database (attempts, leases) and from an AMI observer on each simulator that
follows every live call (two live calls to one number at the same time is a double dial).

The figures:

* lost — contacts with no verdict of their own (every attempt of theirs closed as our own failure,
  or none) and no due time either when the run is over (one whose originate failed on our side and
  is due again in a few minutes is counted apart: ``retry_later``);
* duplicate — a number called twice at the same time (overlapping attempts in the database, or two
  live calls seen by the observer), or one attempt number counted twice for a contact;
* stuck — contacts still in progress whose lease has run out (recovery left them behind).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from dialer.ami.client import AmiClient, AmiEvent
from dialer.config import AmiEndpoint, Secret, load_settings
from dialer.csvio import CsvContact
from dialer.domain.model import CallClass, CardFlag, ContactState, OwnerKind
from dialer.domain.policy import load_own_numbers
from dialer.domain.rules import RulesTable
from dialer.events.notifier import EventNotifier
from dialer.storage.campaigns import CampaignSettings
from dialer.storage.db import Database
from dialer.storage.ingest import ContactPreparer
from dialer.storage.migrate import upgrade
from dialer.storage.repo import Repository
from dialer.storage.tables import attempts, contacts

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config"
PG_URL = os.environ.get("DIALER_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
OUR_FAILURES = frozenset({CallClass.ABORTED.value, CallClass.ORIGINATE_FAILED.value})
SIM_SECRET = "sim"
_T = TypeVar("_T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def midday_zone(now: datetime | None = None) -> str:
    """An IANA zone where it is about noon now, so calling windows never get in the way of a run."""
    hour = (now or datetime.now(UTC)).hour
    offset = 12 - hour  # local = UTC + offset
    return "Etc/UTC" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"


# ---- processes ---------------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    proc: asyncio.subprocess.Process
    log: Path
    _pump: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc.returncode is None

    def kill9(self) -> None:
        """kill -9: no drain, no goodbye, nothing recorded."""
        if self.running:
            self.proc.send_signal(signal.SIGKILL)

    async def stop(self, timeout_s: float = 60.0) -> int:
        """SIGTERM (the graceful stop), then wait; SIGKILL if it hangs."""
        if self.running:
            self.proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(timeout_s):
                rc = await self.proc.wait()
        except TimeoutError:
            self.proc.kill()
            rc = await self.proc.wait()
        if self._pump is not None:
            await asyncio.gather(self._pump, return_exceptions=True)
        return rc

    def log_lines(self) -> list[str]:
        return self.log.read_text(encoding="utf-8", errors="replace").splitlines() if self.log.exists() else []


async def _spawn(name: str, argv: Sequence[str], log: Path, *, ready: str | None, timeout_s: float = 60.0) -> Proc:
    """Start a process; with ``ready``, wait until a line of its output contains it."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=str(ROOT),
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    seen = asyncio.Event()

    async def pump() -> None:
        assert proc.stdout is not None
        with log.open("ab") as out:
            async for line in proc.stdout:
                out.write(line)
                out.flush()
                if ready is not None and ready.encode() in line:
                    seen.set()

    p = Proc(name, proc, log)
    p._pump = asyncio.create_task(pump(), name=f"pump-{name}")
    if ready is not None:
        waiter = asyncio.create_task(seen.wait())
        died = asyncio.create_task(proc.wait())
        done, _ = await asyncio.wait({waiter, died}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        for t in (waiter, died):
            t.cancel()
        if waiter not in done:
            tail = "\n".join(p.log_lines()[-20:])
            raise RuntimeError(f"{name} did not become ready ({ready!r}); rc={proc.returncode}; log tail:\n{tail}")
    return p


@dataclass
class Sim:
    name: str
    port: int
    proc: Proc


async def start_sim(
    workdir: Path, name: str, *, time_scale: float, audiosocket: str | None, port: int | None = None
) -> Sim:
    port = port or free_port()
    argv = [sys.executable, "-m", "dialer.sim", "--ami-port", str(port), "--time-scale", str(time_scale)]
    argv += ["--secret", SIM_SECRET]
    if audiosocket:
        argv += ["--audiosocket", audiosocket]
    proc = await _spawn(name, argv, workdir / f"{name}.log", ready="simulated Asterisk: AMI on")
    return Sim(name, port, proc)


@dataclass
class MqttTarget:
    host: str
    port: int
    prefix: str


def write_config(
    path: Path,
    *,
    db_url: str,
    sims: Sequence[Sim],
    audiosocket_port: int,
    mqtt: MqttTarget | None = None,
    lease_s: float = 3.0,
    heartbeat_s: float = 1.0,
    max_calls: int = 200,
    ring_timeout_s: float = 30.0,
) -> Path:
    """A dialer.toml as an ops engineer would write it for this lab (inline simulator secrets)."""
    lines = [
        "[database]",
        f'url = "{db_url}"',
        "[campaign]",
        "concurrency = 200",
    ]
    for sim in sims:
        lines += [
            "[[ami]]",
            f'name = "{sim.name}"',
            'host = "127.0.0.1"',
            f"port = {sim.port}",
            'username = "dialer"',
            f'secret = "{SIM_SECRET}"',
            f"max_calls = {max_calls}",
            "ping_interval_s = 1.0",
            "reconnect_max_s = 2.0",
        ]
    lines += [
        "[dial]",
        'trunk_template = "IAX2/carrier/{number}"',
        f"ring_timeout_s = {ring_timeout_s}",
        "[audiosocket]",
        'host = "127.0.0.1"',
        f"port = {audiosocket_port}",
        "[mqtt]",
        f"enabled = {'true' if mqtt else 'false'}",
    ]
    if mqtt is not None:
        lines += [f'host = "{mqtt.host}"', f"port = {mqtt.port}", f'topic_prefix = "{mqtt.prefix}"']
    lines += [
        "[paths]",
        f'rules = "{CONFIG / "rules.yaml"}"',
        f'phrases = "{CONFIG / "phrases.yaml"}"',
        f'tones = "{CONFIG / "tones.yaml"}"',
        f'own_numbers = "{CONFIG / "own_numbers.txt"}"',
        f'region_zones = "{CONFIG / "region_zones.yaml"}"',
        # hundreds of calls at several times real time: the cheap detector (Silero is ≈ 140 µs a slot)
        "[audio]",
        'vad = "energy"',
        "[leases]",
        f"lease_s = {lease_s}",
        f"heartbeat_s = {heartbeat_s}",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    load_settings(path)  # the lab writes only what the dialer accepts
    return path


async def start_worker(
    workdir: Path, config: Path, *, worker_id: str | None = None, name: str | None = None, mqtt: bool = False
) -> Proc:
    """``dialer --config CFG run`` exactly as the README shows it (no --worker-id unless given)."""
    argv = [sys.executable, "-m", "dialer", "--config", str(config), "run", "--log-json", "--drain-s", "5"]
    if worker_id is not None:
        argv += ["--worker-id", worker_id]
    if not mqtt:
        argv.append("--no-mqtt")
    label = name or worker_id or f"worker-{uuid.uuid4().hex[:4]}"
    # ready once it dials: logged in to Asterisk is not enough (the speech model may still load)
    return await _spawn(label, argv, workdir / f"{label}.log", ready="dialling (campaigns:")


# ---- databases ------------------------------------------------------------------------------------


def _asyncpg_dsn(url: str, database: str | None = None) -> str:
    u = make_url(url)
    if database is not None:
        u = u.set(database=database)
    return u.set(drivername="postgresql").render_as_string(hide_password=False)


@contextlib.asynccontextmanager
async def database(kind: str, workdir: Path, base_url: str = PG_URL) -> AsyncIterator[str]:
    """A fresh, migrated database: an SQLite file, or a PostgreSQL database created for the run
    (and dropped after it) on the server of ``base_url``."""
    if kind == "sqlite":
        url = f"sqlite+aiosqlite:///{workdir / 'lab.sqlite'}"
        db = Database(url)
        await upgrade(db)
        await db.dispose()
        yield url
        return
    name = f"dialer_lab_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(_asyncpg_dsn(base_url), timeout=10)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = make_url(base_url).set(database=name).render_as_string(hide_password=False)
    try:
        db = Database(url)
        await upgrade(db)
        await db.dispose()
        yield url
    finally:
        with contextlib.suppress(OSError, asyncpg.PostgresError):
            conn = await asyncpg.connect(_asyncpg_dsn(base_url), timeout=10)
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await conn.close()


async def seed(url: str, numbers: Sequence[str], *, campaign: str = "lab", concurrency: int = 100) -> CampaignSettings:
    """Contacts for ``numbers`` in a campaign whose calling window is open now."""
    settings = load_settings(CONFIG / "dialer.toml")
    now = datetime.now(UTC)
    camp = CampaignSettings(
        name=campaign,
        timezone=midday_zone(now),
        weekday_window="00:00-23:59",
        weekend_window="00:00-23:59",
        concurrency=concurrency,
    )
    db = Database(url)
    try:
        repo = await Repository.open(db, EventNotifier())
        await repo.ensure_campaign(camp, now)
        prep = ContactPreparer(camp, RulesTable.load(settings.rules_path), load_own_numbers(settings.own_numbers_path))
        rows = [
            prep.prepare(CsvContact(i + 2, f"lab-{i}", n, OwnerKind.PERSON, "", frozenset[CardFlag](), ""), now)
            for i, n in enumerate(numbers)
        ]
        for i in range(0, len(rows), 2000):
            await repo.import_contacts(camp, rows[i : i + 2000], now)
    finally:
        await db.dispose()
    return camp


def numbers_for(endings: Sequence[str], n: int, *, start: int = 0) -> list[str]:
    """``n`` distinct valid Russian mobiles whose last two digits cycle through ``endings`` (the
    simulator's scenario per number, dialer/sim/scenarios.py)."""
    out = []
    for i in range(n):
        ending = endings[i % len(endings)]
        out.append(f"+7999{start + i:05d}{ending}")
    return out


@dataclass
class Snapshot:
    at: datetime
    by_state: dict[str, int]
    in_progress_attempts: int
    contacts: int
    attempts: list[dict[str, Any]]
    stuck: int  # in progress with a lease that ran out (at ``at`` minus a grace)
    lost: list[int] = field(default_factory=list)  # no verdict of their own and not scheduled either
    retry_later: list[int] = field(default_factory=list)  # no verdict yet: our own failure, due again later
    duplicates: list[str] = field(default_factory=list)

    @property
    def without_verdict(self) -> list[int]:
        return sorted(self.lost + self.retry_later)


async def snapshot(url: str, *, stuck_grace_s: float = 0.0) -> Snapshot:
    now = datetime.now(UTC)
    db = Database(url, create=False)
    try:
        async with db.read() as conn:
            by_state = {
                str(k): int(v)
                for k, v in await conn.execute(sa.select(contacts.c.state, sa.func.count()).group_by(contacts.c.state))
            }
            rows = await _attempt_rows(conn)
            stuck = await _stuck(conn, now - timedelta(seconds=stuck_grace_s))
            ids = [int(i) for i in (await conn.execute(sa.select(contacts.c.id))).scalars()]
            scheduled = await _scheduled(conn)
    finally:
        await db.dispose()
    snap = Snapshot(now, by_state, sum(1 for a in rows if a["state"] == "in_progress"), len(ids), rows, stuck)
    verdicts = {a["contact_id"] for a in rows if a["state"] == "finished" and a["call_class"] not in OUR_FAILURES}
    undecided = set(ids) - verdicts
    snap.lost = sorted(undecided - scheduled)
    snap.retry_later = sorted(undecided & scheduled)
    snap.duplicates = duplicate_calls(rows)
    return snap


async def _attempt_rows(conn: AsyncConnection) -> list[dict[str, Any]]:
    """Every attempt, with its contact's number."""
    result = await conn.execute(
        sa.select(
            attempts.c.id,
            attempts.c.contact_id,
            attempts.c.attempt_no,
            attempts.c.state,
            attempts.c.call_class,
            attempts.c.started_at,
            attempts.c.ended_at,
            attempts.c.worker_id,
            attempts.c.reason,
            contacts.c.e164,
        ).join(contacts)
    )
    return [dict(r) for r in result.mappings()]


async def _stuck(conn: AsyncConnection, expired_before: datetime) -> int:
    """Contacts in progress whose lease is missing or ran out before ``expired_before``."""
    query = (
        sa.select(sa.func.count())
        .select_from(contacts)
        .where(
            contacts.c.state == ContactState.IN_PROGRESS.value,
            sa.or_(contacts.c.lease_expires_at.is_(None), contacts.c.lease_expires_at < expired_before),
        )
    )
    return int((await conn.execute(query)).scalar_one())


async def _scheduled(conn: AsyncConnection) -> set[int]:
    """Pending contacts with a time to be dialled again."""
    query = sa.select(contacts.c.id).where(
        contacts.c.state == ContactState.PENDING.value, contacts.c.next_due_at.is_not(None)
    )
    return {int(i) for i in (await conn.execute(query)).scalars()}


async def progress(url: str) -> tuple[int, int]:
    """(contacts with a finished attempt, attempts in progress): a cheap poll for long runs."""
    db = Database(url, create=False)
    try:
        async with db.read() as conn:
            decided = (
                await conn.execute(
                    sa.select(sa.func.count(sa.distinct(attempts.c.contact_id))).where(attempts.c.state == "finished")
                )
            ).scalar_one()
            live = (
                await conn.execute(
                    sa.select(sa.func.count()).select_from(attempts).where(attempts.c.state == "in_progress")
                )
            ).scalar_one()
    finally:
        await db.dispose()
    return int(decided), int(live)


def duplicate_calls(rows: Iterable[dict[str, Any]]) -> list[str]:
    """Numbers called twice at the same time (overlapping attempts), and contacts with one
    counted attempt number twice."""
    problems: list[str] = []
    by_number: dict[str, list[tuple[datetime, datetime, Any]]] = defaultdict(list)
    counted: dict[tuple[int, int], int] = defaultdict(int)
    far = datetime.now(UTC) + timedelta(days=1)
    for a in rows:
        by_number[a["e164"]].append((a["started_at"], a["ended_at"] or far, a["id"]))
        if a["state"] == "finished" and a["call_class"] not in OUR_FAILURES:
            counted[(a["contact_id"], a["attempt_no"])] += 1
    for number, spans in by_number.items():
        spans.sort()
        end, last = spans[0][1], spans[0][2]
        for start, stop, attempt_id in spans[1:]:
            if start < end:
                problems.append(f"{number}: attempts {last} and {attempt_id} overlap")
            if stop > end:
                end, last = stop, attempt_id
    problems += [f"contact {c}: attempt {n} counted {k} times" for (c, n), k in counted.items() if k > 1]
    return problems


async def wait_until(
    check: Callable[[], Awaitable[_T | None]], timeout_s: float, what: str, every_s: float = 0.25
) -> _T:
    """Sample ``check()`` (a coroutine function) until it returns something truthy; that."""
    deadline = time.monotonic() + timeout_s
    while True:
        got = await check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        await asyncio.sleep(every_s)


# ---- the AMI observer -------------------------------------------------------------------------------


class CallObserver:
    """Follows every live call on each simulator through its own AMI session: a number with two
    live calls at the same moment is a double dial. After a reconnect it re-reads the channels."""

    def __init__(self, sims: Sequence[Sim]) -> None:
        self.live: dict[str, dict[str, set[str]]] = {s.name: defaultdict(set) for s in sims}
        self.double_dials: list[str] = []
        self.originated: dict[str, int] = defaultdict(int)
        self.max_live = 0
        self._clients = [
            AmiClient(
                AmiEndpoint(s.name, "127.0.0.1", s.port, "dialer", Secret(SIM_SECRET), ping_interval_s=1.0),
                on_event=self._event,
                on_state=self._state,
            )
            for s in sims
        ]
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        for c in self._clients:
            await c.connect(10)

    async def close(self) -> None:
        for c in self._clients:
            await c.close()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @staticmethod
    def _number(channel: str) -> str | None:
        """The dialled number of an originated call's ;1 (the operators' legs the queue rings after
        a hand-over are Local channels too, in their own context: not calls to a number)."""
        if not channel.startswith("Local/") or not channel.endswith(";1") or "@dialer-dial-" not in channel:
            return None
        return channel[len("Local/") :].split("@", 1)[0]

    def _event(self, ev: AmiEvent) -> None:
        number = self._number(ev.get("Channel"))
        if number is None:
            return
        calls = self.live[ev.server][number]
        uid = ev.get("Uniqueid")
        if ev.name == "Newchannel":
            calls.add(uid)
            self.originated[number] += 1
            total = sum(len(v) for per in self.live.values() for k, v in per.items() if k == number)
            if total > 1:
                self.double_dials.append(f"{number}: {total} live calls at once ({ev.server})")
            self.max_live = max(self.max_live, sum(len(v) for per in self.live.values() for v in per.values()))
        elif ev.name == "Hangup":
            calls.discard(uid)

    def _state(self, client: AmiClient, state: Any) -> None:
        if str(state) == "connected" and client.epoch > 1:
            task = asyncio.get_running_loop().create_task(self._resync(client))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _resync(self, client: AmiClient) -> None:
        with contextlib.suppress(Exception):
            channels = await client.core_show_channels()
            fresh: dict[str, set[str]] = defaultdict(set)
            for ch in channels:
                number = self._number(ch.get("Channel", ""))
                if number is not None:
                    fresh[number].add(ch.get("Uniqueid", ""))
            self.live[client.name] = fresh

    def live_calls(self) -> int:
        return sum(len(v) for per in self.live.values() for v in per.values())


# ---- MQTT ----------------------------------------------------------------------------------------


class EventCollector:
    """Subscribes ``<prefix>/#`` with a persistent session (QoS 1): events published while it is
    connected or while the broker keeps its session are all delivered, across broker restarts."""

    def __init__(self, host: str, port: int, prefix: str) -> None:
        self.host, self.port, self.prefix = host, port, prefix
        self.events: list[dict[str, Any]] = []
        self.changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.subscribed = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="collector")
        await asyncio.wait_for(self.subscribed.wait(), 20)

    async def _run(self) -> None:
        import aiomqtt

        while True:
            try:
                async with aiomqtt.Client(
                    self.host, self.port, identifier=f"{self.prefix}-collector", clean_session=False
                ) as client:
                    await client.subscribe(f"{self.prefix}/#", qos=1)
                    self.subscribed.set()
                    async for msg in client.messages:
                        with contextlib.suppress(ValueError):
                            self.events.append(json.loads(bytes(msg.payload)))  # type: ignore[arg-type]
                        self.changed.set()
            except aiomqtt.MqttError:
                self.subscribed.clear()
                await asyncio.sleep(0.5)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def attempt_ids(self) -> set[str]:
        return {str(e.get("attempt_id")) for e in self.events if e.get("type") == "attempt_finished"}


def worker_json_lines(proc: Proc) -> list[dict[str, Any]]:
    out = []
    for line in proc.log_lines():
        with contextlib.suppress(ValueError):
            out.append(json.loads(line))
    return out
