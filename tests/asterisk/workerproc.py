"""``dialer`` as a user runs it, against the real instances: a settings file, ``dialer db upgrade``,
``dialer import``, ``dialer run`` as a subprocess (JSON log lines read as they come), SIGTERM.

The campaign's time zone is picked so that it is midday there now: the calling windows are open
whenever the suite runs, without touching the rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import os
import secrets
import signal
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from dialer.config import load_settings
from dialer.csvio import CsvContact
from dialer.domain.model import OwnerKind
from dialer.domain.policy import load_own_numbers
from dialer.domain.rules import RulesTable
from dialer.events.notifier import EventNotifier
from dialer.storage.campaigns import CampaignSettings
from dialer.storage.db import Database
from dialer.storage.ingest import ContactPreparer
from dialer.storage.migrate import upgrade
from dialer.storage.repo import Repository

from .kit import REPO_ROOT, free_port

CONFIG_DIR = REPO_ROOT / "config"
SIM_ANNOUNCEMENTS = REPO_ROOT / "dialer" / "sim" / "data"
SECRET_ENV = "DIALER_TEST_AMI_SECRET"
CAMPAIGN = "real"


def midday_zone(now: datetime | None = None) -> str:
    """An IANA zone where it is about 12:00 now (Etc/GMT-N is UTC+N)."""
    hour = (now or datetime.now(UTC)).hour
    offset = 12 - hour
    if offset == 0:
        return "Etc/UTC"
    return f"Etc/GMT-{offset}" if offset > 0 else f"Etc/GMT+{-offset}"


def mqtt_address() -> tuple[str, int]:
    host, _, port = os.environ.get("DIALER_TEST_MQTT", "127.0.0.1:1883").partition(":")
    return host, int(port or 1883)


@dataclass(frozen=True)
class Contact:
    external_id: str
    number: str  # digits, as the carrier routes them
    organisation: bool = False


def contacts_csv(contacts: Iterable[Contact]) -> str:
    out = io.StringIO()
    w = csv.writer(out, delimiter=";", lineterminator="\n")
    w.writerow(["ID", "Телефон", "Тип владельца", "Владелец", "Отметки", "Комментарий"])
    for c in contacts:
        kind = "юр. лицо" if c.organisation else "физ. лицо"
        w.writerow([c.external_id, f"+{c.number}", kind, f"Владелец {c.external_id}", "", ""])
    return out.getvalue()


@dataclass
class WorkerSetup:
    """One worker's settings file and database, pointed at one pbx (through ``ami_port``)."""

    base: Path
    ami_port: int
    secret: str
    ring_timeout_s: int = 8
    max_call_s: float = 60.0
    operator_context: str = "dialer-operator"
    mqtt_prefix: str = field(default_factory=lambda: f"dtest-real-{secrets.token_hex(4)}")
    audiosocket_port: int = field(default_factory=free_port)
    audiosocket_advertise: str = ""  # host:port Asterisk connects to (a proxy); default: the port above
    concurrency: int = 40
    timezone: str = field(default_factory=midday_zone)

    @property
    def config(self) -> Path:
        return self.base / "dialer.toml"

    @property
    def db_url(self) -> str:
        return f"sqlite+aiosqlite:///{self.base / 'dialer.sqlite'}"

    def write(self) -> Path:
        self.base.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            "# written by tests/asterisk/workerproc.py\n" + self._dialling_toml() + "\n" + self._services_toml(),
            encoding="utf-8",
        )
        return self.config

    def _dialling_toml(self) -> str:
        """[database], [campaign], [[ami]], [dial], [audiosocket]."""
        return f"""[database]
url = "{self.db_url}"

[campaign]
timezone = "{self.timezone}"
concurrency = {self.concurrency}

[[ami]]
name = "pbx"
host = "127.0.0.1"
port = {self.ami_port}
username = "dialer"
secret_env = "{SECRET_ENV}"
max_calls = 40
action_timeout_s = 5
ping_interval_s = 2
reconnect_max_s = 2

[dial]
channel_template = "Local/{{number}}@dialer-dial/n"
trunk_template = "IAX2/carrier/{{number}}"
analysis_context = "dialer-analyse"
operator_context = "{self.operator_context}"
ring_timeout_s = {self.ring_timeout_s}
caller_id = "Dialer <74950000000>"
max_call_s = {self.max_call_s}

[audiosocket]
host = "127.0.0.1"
port = {self.audiosocket_port}
advertise = "{self.audiosocket_advertise}"
"""

    def _services_toml(self) -> str:
        """[mqtt], [asr], [audio], [paths]."""
        host, port = mqtt_address()
        return f"""[mqtt]
enabled = true
host = "{host}"
port = {port}
topic_prefix = "{self.mqtt_prefix}"

[asr]
engine = "vosk"
model_path = "{self.base / "no-speech-model"}"

[audio]
# the energy detector, whether or not another test installed Silero's model: the suite's
# expectations were measured with it (Silero in noise: tests/audio/test_silero.py, bench_vad)
vad = "energy"

[paths]
rules = "{CONFIG_DIR / "rules.yaml"}"
phrases = "{CONFIG_DIR / "phrases.yaml"}"
tones = "{CONFIG_DIR / "tones.yaml"}"
own_numbers = "{CONFIG_DIR / "own_numbers.txt"}"
region_zones = "{CONFIG_DIR / "region_zones.yaml"}"
announcements = "{SIM_ANNOUNCEMENTS}"
"""

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env[SECRET_ENV] = self.secret
        env.pop("DIALER_DB_URL", None)
        env.pop("DIALER_CONFIG", None)
        return env

    async def cli(self, *args: str, timeout_s: float = 60.0) -> str:
        """One ``dialer`` command; its stdout. A non-zero exit fails with stderr."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "dialer",
            "--config",
            str(self.config),
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self.env(),
        )
        out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
        if proc.returncode != 0:
            raise AssertionError(f"dialer {' '.join(args)} exited {proc.returncode}:\n{err.decode()}")
        return out.decode()

    async def seed(self, contacts: Iterable[Contact]) -> None:
        """The same as :meth:`prepare` in this process (a ``dialer`` start costs seconds): the
        schema through the migrations, the contacts through the importer's preparer."""
        self.write()
        settings = load_settings(self.config)
        now = datetime.now(UTC)
        db = Database(settings.database_url)
        try:
            await upgrade(db)
            repo = await Repository.open(db, EventNotifier())
            c = settings.campaign
            campaign = CampaignSettings(CAMPAIGN, self.timezone, c.weekday_window, c.weekend_window, self.concurrency)
            await repo.ensure_campaign(campaign, now)
            prep = ContactPreparer(
                campaign, RulesTable.load(settings.rules_path), load_own_numbers(settings.own_numbers_path)
            )
            rows = []
            for line, contact in enumerate(contacts, start=2):
                kind = OwnerKind.ORGANISATION if contact.organisation else OwnerKind.PERSON
                raw = CsvContact(
                    line, contact.external_id, f"+{contact.number}", kind, contact.external_id, frozenset(), ""
                )
                rows.append(prep.prepare(raw, now))
            await repo.import_contacts(campaign, rows, now)
        finally:
            await db.dispose()

    async def prepare(self, contacts: Iterable[Contact]) -> None:
        """Settings file, ``dialer db upgrade`` and ``dialer import`` of the contacts as a CSV."""
        self.write()
        await self.cli("db", "upgrade")
        csv_path = self.base / "contacts.csv"
        csv_path.write_text(contacts_csv(contacts), encoding="utf-8")
        await self.cli(
            "import",
            str(csv_path),
            "--campaign",
            CAMPAIGN,
            "--timezone",
            self.timezone,
            "--concurrency",
            str(self.concurrency),
        )


class WorkerProcess:
    """``dialer run --log-json`` as a subprocess; every log line is kept, parsed when it is JSON."""

    def __init__(self, setup: WorkerSetup, proc: asyncio.subprocess.Process) -> None:
        self.setup = setup
        self.proc = proc
        self.lines: list[dict[str, object]] = []
        self.raw: list[str] = []  # lines that are not JSON (a traceback would land here)
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read(), name="worker-log")

    @classmethod
    async def start(cls, setup: WorkerSetup, worker_id: str = "real-worker", drain_s: float = 15.0) -> WorkerProcess:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "dialer",
            "--config",
            str(setup.config),
            "run",
            "--campaign",
            CAMPAIGN,
            "--worker-id",
            worker_id,
            "--log-json",
            "--drain-s",
            str(drain_s),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=setup.env(),
        )
        return cls(setup, proc)

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        while raw := await self.proc.stderr.readline():
            text = raw.decode("utf-8", "replace").rstrip("\n")
            async with self._changed:
                try:
                    obj = json.loads(text)
                except ValueError:
                    obj = None
                if isinstance(obj, dict):
                    self.lines.append(obj)
                else:
                    self.raw.append(text)
                self._changed.notify_all()
        async with self._changed:
            self._changed.notify_all()

    def events(self, name: str) -> list[dict[str, object]]:
        return [line for line in self.lines if line.get("event") == name]

    @property
    def finished(self) -> list[dict[str, object]]:
        return self.events("finished")

    def log_text(self, last: int = 60) -> str:
        rendered = [json.dumps(line, ensure_ascii=False) for line in self.lines[-last:]]
        return "\n".join(rendered + self.raw[-last:])

    async def wait_until(self, predicate, timeout_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
        async def _wait() -> None:
            async with self._changed:
                while not predicate(self):
                    if self._reader.done():
                        raise AssertionError(f"the worker exited (rc={self.proc.returncode}) before {what}")
                    await self._changed.wait()

        try:
            await asyncio.wait_for(_wait(), timeout_s)
        except TimeoutError:
            raise AssertionError(f"no {what} within {timeout_s:.0f} s; worker log:\n{self.log_text()}") from None

    async def wait_finished(self, n: int, timeout_s: float) -> None:
        await self.wait_until(lambda w: len(w.finished) >= n, timeout_s, f"{n} finished attempts")

    async def stop(self, timeout_s: float = 60.0) -> int:
        """SIGTERM (the graceful stop) and wait; returns the exit status."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = await asyncio.wait_for(self.proc.wait(), timeout_s)
        except TimeoutError:
            self.proc.kill()
            rc = await self.proc.wait()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        return rc
