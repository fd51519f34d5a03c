"""Worker settings: one TOML file (config/dialer.toml) plus environment overrides.

Secrets never live in the file in production: each secret may be given inline (for the demo) or
through ``*_env`` naming an environment variable. Secrets are wrapped in :class:`Secret`, whose
repr/str never reveal the value, so a settings object can be logged safely.
"""

from __future__ import annotations

import difflib
import enum
import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

from dialer import paths
from dialer.audio.frames import SAMPLE_RATE_HZ
from dialer.domain.compliance import CALLER_ID, AttemptCaps, ComplianceConfig, ComplianceSettings
from dialer.domain.schedule import HolidayCalendar
from dialer.errors import ConfigError
from dialer.pacing.pacer import PacingMode, PacingSettings
from dialer.yamlload import load_yaml_file

DEFAULT_CONFIG_DIR = paths.default_config_dir()


class Secret:
    """A string that refuses to be printed."""

    __slots__ = ("_env", "_value")

    def __init__(self, value: str = "", *, env: str | None = None) -> None:
        self._value = value
        self._env = env

    def get(self) -> str:
        """The value; a secret named by an environment variable is read when first needed, so
        commands that never touch Asterisk or the broker do not require it."""
        if self._env is not None:
            value = os.environ.get(self._env)
            if value is None:
                raise ConfigError(f"environment variable {self._env} is not set (it holds a secret)")
            return value
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and (other._value, other._env) == (self._value, self._env)

    def __hash__(self) -> int:
        return hash((self._value, self._env))


def redact_url(url: str) -> str:
    """``postgresql+asyncpg://u:pw@h/db`` → ``postgresql+asyncpg://u:***@h/db``."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user, colon, _pw = creds.partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}@{host}"


@dataclass(frozen=True)
class AmiEndpoint:
    name: str
    host: str
    port: int
    username: str
    secret: Secret = field(repr=False)
    max_calls: int = 30
    action_timeout_s: float = 5.0
    ping_interval_s: float = 5.0
    reconnect_max_s: float = 30.0


@dataclass(frozen=True)
class DialSettings:
    # Local/ channel keeps early media apart from a real answer (README "Dialling through a Local channel").
    channel_template: str = "Local/{number}@dialer-dial/n"
    trunk_template: str = "PJSIP/{number}@trunk"
    analysis_context: str = "dialer-analyse"
    analysis_exten: str = "s"
    operator_context: str = "dialer-operator"
    operator_exten: str = "s"
    ring_timeout_s: float = 30.0
    caller_id: str = ""
    max_call_s: float = 90.0  # hard cap on analysis before a decision is forced


@dataclass(frozen=True)
class AudioSocketSettings:
    host: str = "127.0.0.1"
    port: int = 9099
    advertise: str = ""  # host:port Asterisk should connect to; defaults to host:port


@dataclass(frozen=True)
class MqttSettings:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 1883
    username: str = ""
    password: Secret = field(default_factory=lambda: Secret(""), repr=False)
    topic_prefix: str = "dialer"
    client_id: str = "dialer-worker"
    keepalive_s: int = 30


ASR_ENGINES = ("auto", "vosk", "whisper")


@dataclass(frozen=True)
class AsrSettings:
    """``[asr]``: which recognizer engine, its model, and the decoding threads.

    ``engine``: ``auto`` (Whisper when its model is installed, else Vosk when its model is, else
    none), ``whisper`` or ``vosk``. ``model_path`` is the Vosk model directory and
    ``whisper_model_path`` the CTranslate2 Whisper model directory; unset, each defaults to its
    model under ``asr_models/``. ``cpu_threads`` are the threads of one Whisper decode;
    ``max_workers`` the decodes run at once."""

    model_path: Path | None = None
    max_workers: int = 2
    sample_rate: int = SAMPLE_RATE_HZ
    engine: str = "auto"
    # Whisper's early decodes during continuous speech: the first after this much (None: the
    # engine's default, WhisperParams), then every early_every_ms
    early_decode_ms: int | None = None
    early_every_ms: int | None = None
    whisper_model_path: Path | None = None
    cpu_threads: int = 1


VAD_CHOICES = ("auto", "energy", "silero")


@dataclass(frozen=True)
class AudioSettings:
    """``[audio]``: the voice-activity detector of every call.

    ``vad``: ``auto`` (Silero when its model is installed, else energy with a warning), ``silero``
    (Silero; a missing or broken model is one warning and the energy detector) or ``energy``.
    ``vad_model_path``: the ``silero_vad.onnx`` file; unset, ``asr_models/silero-vad/``'s."""

    vad: str = "auto"
    vad_model_path: Path | None = None


class RecordUntil(enum.StrEnum):
    DECISION = "decision"  # audio until the call is decided
    HANGUP = "hangup"  # audio until the call ends (never after a hand-over to an operator)


@dataclass(frozen=True)
class RecordingSettings:
    """``[recording]``: call recordings for replay (dialer.session.recording)."""

    enabled: bool = False
    dir: Path = Path("recordings")
    until: RecordUntil = RecordUntil.DECISION
    keep_days: int = 14
    max_mb: int = 2048


@dataclass(frozen=True)
class MetricsSettings:
    """``[metrics]``: where the Prometheus endpoint listens (dialer.metrics); empty = no endpoint."""

    listen: str = ""  # "127.0.0.1:9108"

    @property
    def address(self) -> tuple[str, int] | None:
        if not self.listen:
            return None
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]") or "0.0.0.0", int(port)


@dataclass(frozen=True)
class LearnSettings:
    """``[learn]``: unknown announcements collected from call recordings, clustered, reviewed and
    approved into the fingerprint library (dialer.learn)."""

    dir: Path = Path("learn")
    max_segments: int = 2000  # segments kept (oldest go first; a cluster's clip stays)
    max_mb: int = 500  # their audio on disk
    # a temporary announcement the recognizer named on this many calls is approved without a
    # person (0: never); a not-working class is never approved automatically
    auto_approve_min_calls: int = 0
    stale_days: int = 30  # a library entry not heard for this long raises a drift event
    jump_factor: float = 3.0  # a carrier's unknown-announcement rate this many times its usual …
    jump_min_calls: int = 20  # … over at least this many announcement calls in a day
    serve_port: int = 8765  # `dialer announcements serve` (127.0.0.1 only)
    # The worker learns by itself: it records the calls that may hold an unknown announcement (into
    # ``dir``/incoming, unless [recording] is on, whose recordings are used) and collects them every
    # ``collect_every_s`` — no cron, no full call recording.
    live: bool = False
    collect_every_s: int = 600


@dataclass(frozen=True)
class CampaignDefaults:
    timezone: str = "Europe/Moscow"
    concurrency: int = 10
    weekday_window: str = "09:00-21:00"
    weekend_window: str = "10:00-20:00"
    region: str = "RU"


@dataclass(frozen=True)
class LeaseSettings:
    """Claims are leases (dialer.leases): the owner renews them every ``heartbeat_s``; a lease not
    renewed for ``lease_s`` has run out and any worker recovers the contact."""

    lease_s: float = 30.0
    heartbeat_s: float = 10.0
    # An expired claim whose Asterisk this worker cannot ask is closed after this long anyway
    # (since its attempt started): no worker may know that server any more.
    give_up_s: float = 3600.0


@dataclass(frozen=True)
class Settings:
    database_url: str
    campaign: CampaignDefaults
    ami: tuple[AmiEndpoint, ...]
    dial: DialSettings
    audiosocket: AudioSocketSettings
    mqtt: MqttSettings
    asr: AsrSettings
    rules_path: Path
    phrases_path: Path
    tones_path: Path
    own_numbers_path: Path
    region_zones_path: Path
    source: str = "<defaults>"
    # directory of known announcement recordings (announcements.yaml + audio); None = no library
    announcements_path: Path | None = None
    leases: LeaseSettings = field(default_factory=lambda: LeaseSettings())
    recording: RecordingSettings = field(default_factory=RecordingSettings)
    # [pacing] for every campaign and [[pacing_campaign]] overrides by name (dialer.pacing)
    pacing: PacingSettings = field(default_factory=PacingSettings)
    pacing_campaigns: dict[str, PacingSettings] = field(default_factory=dict)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    learn: LearnSettings = field(default_factory=LearnSettings)
    # [compliance] and [[compliance_campaign]] overrides by name (dialer.domain.compliance)
    compliance: ComplianceConfig = field(default_factory=ComplianceConfig)
    audio: AudioSettings = field(default_factory=AudioSettings)

    def __repr__(self) -> str:
        return (
            f"Settings(database_url={redact_url(self.database_url)!r}, ami={[a.name for a in self.ami]!r}, "
            f"mqtt={self.mqtt.host}:{self.mqtt.port}, source={self.source!r})"
        )


# ---- the schema of dialer.toml --------------------------------------------------------------------
#
# Every key a section may hold and its type. A key not listed is reported (a typo such as
# ``concurency`` must not silently mean "the default"); so is a value of the wrong type.

_STR, _INT, _FLOAT, _BOOL = "a string", "an integer", "a number", "true or false"

_PACING = {
    "mode": _STR,
    "queue": _STR,
    "max_abandon_rate": _FLOAT,
    "max_wait_s": _FLOAT,
    "window_s": _FLOAT,
    "min_samples": _INT,
}
_COMPLIANCE = {
    "max_attempts_per_day": _INT,
    "max_attempts_per_week": _INT,
    "max_attempts_per_month": _INT,
    "holidays": _STR,
    "on_holiday": _STR,
}
ON_HOLIDAY = ("weekend", "closed")
_SCHEMA: dict[str, dict[str, str]] = {
    "database": {"url": _STR},
    "campaign": {
        "timezone": _STR,
        "concurrency": _INT,
        "weekday_window": _STR,
        "weekend_window": _STR,
        "region": _STR,
    },
    "ami": {
        "name": _STR,
        "host": _STR,
        "port": _INT,
        "username": _STR,
        "secret": _STR,
        "secret_env": _STR,
        "max_calls": _INT,
        "action_timeout_s": _FLOAT,
        "ping_interval_s": _FLOAT,
        "reconnect_max_s": _FLOAT,
    },
    "dial": {
        "channel_template": _STR,
        "trunk_template": _STR,
        "analysis_context": _STR,
        "analysis_exten": _STR,
        "operator_context": _STR,
        "operator_exten": _STR,
        "ring_timeout_s": _FLOAT,
        "caller_id": _STR,
        "max_call_s": _FLOAT,
    },
    "audiosocket": {"host": _STR, "port": _INT, "advertise": _STR},
    "mqtt": {
        "enabled": _BOOL,
        "host": _STR,
        "port": _INT,
        "username": _STR,
        "password": _STR,
        "password_env": _STR,
        "topic_prefix": _STR,
        "client_id": _STR,
        "keepalive_s": _INT,
    },
    "asr": {
        "engine": _STR,
        "model_path": _STR,
        "whisper_model_path": _STR,
        "max_workers": _INT,
        "cpu_threads": _INT,
        "early_decode_ms": _INT,
        "early_every_ms": _INT,
    },
    "audio": {"vad": _STR, "vad_model_path": _STR},
    "paths": {
        "rules": _STR,
        "phrases": _STR,
        "tones": _STR,
        "own_numbers": _STR,
        "region_zones": _STR,
        "announcements": _STR,
    },
    "leases": {"lease_s": _FLOAT, "heartbeat_s": _FLOAT, "give_up_s": _FLOAT},
    "recording": {"enabled": _BOOL, "dir": _STR, "until": _STR, "keep_days": _INT, "max_mb": _INT},
    "pacing": _PACING,
    "pacing_campaign": {"campaign": _STR, **_PACING},
    "compliance": _COMPLIANCE,
    "compliance_campaign": {"campaign": _STR, **_COMPLIANCE, "caller_id": _STR},
    "metrics": {"listen": _STR},
    "learn": {
        "dir": _STR,
        "max_segments": _INT,
        "max_mb": _INT,
        "auto_approve_min_calls": _INT,
        "stale_days": _INT,
        "jump_factor": _FLOAT,
        "jump_min_calls": _INT,
        "serve_port": _INT,
        "live": _BOOL,
        "collect_every_s": _INT,
    },
}
_ARRAYS = frozenset({"ami", "pacing_campaign", "compliance_campaign"})  # [[ami]]: an array of tables
# Lower bounds of numbers (a port of 0 or a concurrency of -1 is a mistake, not a choice).
_MIN: dict[str, float] = {
    "campaign.concurrency": 1,
    "ami.port": 1,
    "ami.max_calls": 1,
    "ami.action_timeout_s": 0.1,
    "ami.ping_interval_s": 0.1,
    "ami.reconnect_max_s": 0.1,
    "dial.ring_timeout_s": 1,
    "dial.max_call_s": 1,
    "audiosocket.port": 0,
    "mqtt.port": 1,
    "mqtt.keepalive_s": 1,
    "asr.max_workers": 1,
    "asr.cpu_threads": 1,
    "asr.early_decode_ms": 300,
    "asr.early_every_ms": 200,
    "recording.keep_days": 1,
    "recording.max_mb": 1,
    "leases.lease_s": 0.1,
    "leases.heartbeat_s": 0.05,
    "leases.give_up_s": 1,
    **{
        f"{section}.{key}": low
        for section in ("pacing", "pacing_campaign")
        for key, low in (("max_abandon_rate", 0.0), ("max_wait_s", 0.0), ("window_s", 1), ("min_samples", 1))
    },
    **{
        f"{section}.max_attempts_per_{period}": 0
        for section in ("compliance", "compliance_campaign")
        for period in ("day", "week", "month")
    },
    "learn.max_segments": 1,
    "learn.max_mb": 1,
    "learn.auto_approve_min_calls": 0,
    "learn.stale_days": 1,
    "learn.jump_factor": 1,
    "learn.jump_min_calls": 1,
    "learn.serve_port": 1,
    "learn.collect_every_s": 10,
}
_MAX: dict[str, float] = {
    "ami.port": 65535,
    "audiosocket.port": 65535,
    "mqtt.port": 65535,
    "pacing.max_abandon_rate": 1.0,
    "pacing_campaign.max_abandon_rate": 1.0,
    "learn.serve_port": 65535,
}

_LISTEN = re.compile(
    r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]*):([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])$"
)
_TABLE_LINE = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?")
_KEY_LINE = re.compile(r"^\s*(\"[^\"]*\"|'[^']*'|[A-Za-z0-9_.-]+)\s*=")


def _key_lines(text: str) -> dict[tuple[str, ...], int]:
    """1-based line of each table header and key: ("campaign",), ("campaign", "concurrency"),
    ("ami", "2", "port") for the second [[ami]]. tomllib keeps no positions; this flat scan is
    enough for a settings file (no inline tables spanning lines)."""
    where: dict[tuple[str, ...], int] = {}
    section: tuple[str, ...] = ()
    arrays: dict[str, int] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        t = _TABLE_LINE.match(line)
        if t is not None:
            name = t.group(2).strip().strip("\"'")
            if t.group(1) == "[[":
                arrays[name] = arrays.get(name, 0) + 1
                section = (name, str(arrays[name]))
            else:
                section = (name,)
            where.setdefault(section, n)
            continue
        k = _KEY_LINE.match(line)
        if k is not None:
            where.setdefault((*section, k.group(1).strip("\"'")), n)
    return where


class _Checker:
    """Collects every problem of a settings file as ``file:line: key: problem``."""

    def __init__(self, source: str, text: str) -> None:
        self.source = source
        self.lines = _key_lines(text)
        self.problems: list[ConfigError] = []

    def line(self, *path: str) -> int | None:
        for n in range(len(path), 0, -1):
            found = self.lines.get(path[:n])
            if found is not None:
                return found
        return None

    def add(self, path: tuple[str, ...], key: str, problem: str) -> None:
        self.problems.append(ConfigError(f"{key}: {problem}", source=self.source, line=self.line(*path)))

    def check(self, data: dict[str, Any]) -> None:
        for section, body in data.items():
            fields = _SCHEMA.get(section)
            if fields is None:
                close = difflib.get_close_matches(section, list(_SCHEMA), n=1)
                hint = f" (did you mean [{close[0]}]?)" if close else f" (known: {', '.join(sorted(_SCHEMA))})"
                self.add((section,), section, f"unknown section{hint}")
                continue
            if section in _ARRAYS:
                if not isinstance(body, list):
                    self.add(
                        (section,),
                        section,
                        f"must be written [[{section}]] (one block per {'server' if section == 'ami' else 'campaign'})",
                    )
                    continue
                for i, table in enumerate(body, start=1):
                    self._table(section, (section, str(i)), table)
            elif not isinstance(body, dict):
                self.add((section,), section, f"must be a table [{section}], not a single value")
            else:
                self._table(section, (section,), body)

    def _table(self, section: str, path: tuple[str, ...], body: Any) -> None:
        fields = _SCHEMA[section]
        if not isinstance(body, dict):
            self.add(path, section, "must be a table")
            return
        for key, value in body.items():
            name = f"{section}.{key}"
            expected = fields.get(key)
            if expected is None:
                close = difflib.get_close_matches(key, list(fields), n=1)
                hint = f" (did you mean {close[0]}?)" if close else f" (known: {', '.join(fields)})"
                self.add((*path, key), name, f"unknown key{hint}")
                continue
            if not _is(value, expected):
                self.add((*path, key), name, f"expected {expected}, got {_describe(value)}")
                continue
            if expected in (_INT, _FLOAT):
                low, high = _MIN.get(name), _MAX.get(name)
                if low is not None and value < low:
                    self.add((*path, key), name, f"must be at least {low:g}, got {value!r}")
                elif high is not None and value > high:
                    self.add((*path, key), name, f"must be at most {high:g}, got {value!r}")

    def raise_if_any(self) -> None:
        if not self.problems:
            return
        first = self.problems[0]
        more = len(self.problems) - 1
        if more:
            others = "; ".join(
                f"line {p.line}: {str(p).split(': ', 1)[1]}" if p.line else str(p) for p in self.problems[1:4]
            )
            raise ConfigError(f"{first} (and {more} more: {others}{' …' if more > 3 else ''})")
        raise first


def _is(value: Any, expected: str) -> bool:
    if expected == _STR:
        return isinstance(value, str)
    if expected == _BOOL:
        return isinstance(value, bool)
    if expected == _INT:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, int | float) and not isinstance(value, bool)


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return repr(value)


def _secret(section: dict[str, Any], key: str) -> Secret:
    env_key = section.get(f"{key}_env")
    if env_key:
        return Secret(env=str(env_key))
    return Secret(str(section.get(key, "")))


def _path(base: Path, value: Any, default: str) -> Path:
    p = Path(str(value)) if value else Path(default)
    return p if p.is_absolute() else (base / p).resolve()


DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///../var/dialer.sqlite"
_SQLITE_PREFIX = re.compile(r"^(sqlite(?:\+\w+)?:///)(.*)$")


def resolve_sqlite_path(url: str, base: Path) -> str:
    """An SQLite URL whose file path is relative is made absolute against ``base`` (the settings
    file's directory): ``sqlite+aiosqlite:///../var/dialer.sqlite`` next to config/ means
    <repo>/var/dialer.sqlite whatever the current directory."""
    m = _SQLITE_PREFIX.match(url)
    if m is None:
        return url
    path, sep, query = m.group(2).partition("?")
    if not path or path == ":memory:" or path.startswith("/"):
        return url
    return f"{m.group(1)}{(base / path).resolve()}{sep}{query}"


def _choice(
    table: dict[str, Any],
    key: str,
    allowed: tuple[str, ...],
    default: str,
    where: tuple[str, str],
    source: str,
    text: str,
) -> str:
    value = str(table.get(key, default))
    if value not in allowed:
        raise ConfigError(
            f"{'.'.join(where)}: must be one of {', '.join(allowed)}, got {value!r}",
            source=source,
            line=_key_lines(text).get(where),
        )
    return value


def settings_path() -> Path:
    """The settings file when no ``--config`` is given: ``DIALER_CONFIG``, else
    /etc/dialer/dialer.toml when it exists, else the shipped defaults (config/dialer.toml)."""
    env = os.environ.get("DIALER_CONFIG")
    if env:
        return Path(env)
    if paths.SYSTEM_CONFIG.is_file():
        return paths.SYSTEM_CONFIG
    return DEFAULT_CONFIG_DIR / "dialer.toml"


def load_settings(path: Path | None = None) -> Settings:
    """Load settings from ``path`` (default: :func:`settings_path`).

    Every unknown key and every value of the wrong type is reported as ``file:line: key: problem``
    (ConfigError). Relative paths — data files, the model, an SQLite database file — are relative
    to the settings file. ``DIALER_DB_URL`` overrides the database URL (a relative SQLite path
    there is relative to the current directory), ``DIALER_MQTT_HOST``/``DIALER_MQTT_PORT`` the
    broker.
    """
    cfg_path = path or settings_path()
    source = str(cfg_path)
    data, text = _read_checked(cfg_path, explicit=path is not None or "DIALER_CONFIG" in os.environ)
    base = cfg_path.resolve().parent
    # The worker's own files (database, recordings, models) named relative to the shipped settings
    # ("../var/…") go under paths.state_root(): the repository, or for an installed package the
    # current directory — never inside site-packages.
    state_base = paths.state_root() / "config" if base == paths.PACKAGED_DEFAULTS.resolve() else base

    db = data.get("database", {})
    env_url = os.environ.get("DIALER_DB_URL")
    db_url = env_url or resolve_sqlite_path(str(db.get("url") or DEFAULT_DATABASE_URL), state_base)
    campaign = _campaign_defaults(data.get("campaign", {}))
    amis = _ami_endpoints(data.get("ami", []))
    dial = DialSettings(**data.get("dial", {}))
    audiosocket = AudioSocketSettings(**data.get("audiosocket", {}))
    mqtt = _mqtt(data.get("mqtt", {}))
    asr = _asr(data.get("asr", {}), state_base, source, text)
    audio = _audio(data.get("audio", {}), base, source, text)
    recording = _recording(data.get("recording", {}), state_base, source, text)
    learn = _learn(data.get("learn", {}), state_base)
    leases = _leases(data.get("leases", {}), source, text)
    pacing = _pacing(data.get("pacing", {}), PacingSettings(), ("pacing",), source, text)
    pacing_campaigns = _pacing_campaigns(data.get("pacing_campaign", []), pacing, source, text)
    compliance = _compliance(data, base, source, text)
    listen = _metrics_listen(data.get("metrics", {}), source, text)
    p = data.get("paths", {})
    return Settings(
        database_url=str(db_url),
        campaign=campaign,
        ami=amis,
        dial=dial,
        audiosocket=audiosocket,
        mqtt=mqtt,
        asr=asr,
        rules_path=_path(base, p.get("rules"), "rules.yaml"),
        phrases_path=_path(base, p.get("phrases"), "phrases.yaml"),
        tones_path=_path(base, p.get("tones"), "tones.yaml"),
        own_numbers_path=_path(base, p.get("own_numbers"), "own_numbers.txt"),
        region_zones_path=_path(base, p.get("region_zones"), "region_zones.yaml"),
        source=source,
        announcements_path=_path(base, p["announcements"], "") if p.get("announcements") else None,
        leases=leases,
        recording=recording,
        pacing=pacing,
        pacing_campaigns=pacing_campaigns,
        metrics=MetricsSettings(listen),
        learn=learn,
        compliance=compliance,
        audio=audio,
    )


def _read_checked(cfg_path: Path, *, explicit: bool) -> tuple[dict[str, Any], str]:
    """The settings file's tables and text, every unknown key and wrong type reported; no file
    gives empty tables (the defaults) unless it was named (``explicit``)."""
    source = str(cfg_path)
    if cfg_path.is_dir():
        raise ConfigError("is a directory, not a settings file", source=source)
    if not cfg_path.exists():
        if explicit:
            raise ConfigError("file not found", source=source)
        return {}, ""
    try:
        text = cfg_path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", source=source) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        raise ConfigError(str(exc).split(" (at line")[0], source=source, line=int(m.group(1)) if m else None) from None
    checker = _Checker(source, text)
    checker.check(data)
    checker.raise_if_any()
    return data, text


def _campaign_defaults(c: dict[str, Any]) -> CampaignDefaults:
    defaults = CampaignDefaults()
    return CampaignDefaults(
        timezone=c.get("timezone", defaults.timezone),
        concurrency=c.get("concurrency", defaults.concurrency),
        weekday_window=c.get("weekday_window", defaults.weekday_window),
        weekend_window=c.get("weekend_window", defaults.weekend_window),
        region=c.get("region", defaults.region),
    )


def _ami_endpoints(tables: list[dict[str, Any]]) -> tuple[AmiEndpoint, ...]:
    return tuple(
        AmiEndpoint(
            name=str(a.get("name", f"ami{i + 1}")),
            host=str(a.get("host", "127.0.0.1")),
            port=int(a.get("port", 5038)),
            username=str(a.get("username", "dialer")),
            secret=_secret(a, "secret"),
            max_calls=int(a.get("max_calls", 30)),
            action_timeout_s=float(a.get("action_timeout_s", 5.0)),
            ping_interval_s=float(a.get("ping_interval_s", 5.0)),
            reconnect_max_s=float(a.get("reconnect_max_s", 30.0)),
        )
        for i, a in enumerate(tables)
    )


def _mqtt(m: dict[str, Any]) -> MqttSettings:
    try:
        mqtt_port = int(os.environ.get("DIALER_MQTT_PORT") or m.get("port", 1883))
    except ValueError:
        raise ConfigError(f"DIALER_MQTT_PORT: expected an integer, got {os.environ['DIALER_MQTT_PORT']!r}") from None
    return MqttSettings(
        enabled=bool(m.get("enabled", True)),
        host=os.environ.get("DIALER_MQTT_HOST") or str(m.get("host", "127.0.0.1")),
        port=mqtt_port,
        username=str(m.get("username", "")),
        password=_secret(m, "password"),
        topic_prefix=str(m.get("topic_prefix", "dialer")),
        client_id=str(m.get("client_id", "dialer-worker")),
        keepalive_s=int(m.get("keepalive_s", 30)),
    )


def _asr(r: dict[str, Any], state_base: Path, source: str, text: str) -> AsrSettings:
    return AsrSettings(
        model_path=_path(state_base, r["model_path"], "") if r.get("model_path") else None,
        max_workers=int(r.get("max_workers", 2)),
        engine=_choice(r, "engine", ASR_ENGINES, "auto", ("asr", "engine"), source, text),
        whisper_model_path=_path(state_base, r["whisper_model_path"], "") if r.get("whisper_model_path") else None,
        cpu_threads=int(r.get("cpu_threads", 1)),
        early_decode_ms=int(r["early_decode_ms"]) if "early_decode_ms" in r else None,
        early_every_ms=int(r["early_every_ms"]) if "early_every_ms" in r else None,
    )


def _audio(au: dict[str, Any], base: Path, source: str, text: str) -> AudioSettings:
    return AudioSettings(
        vad=_choice(au, "vad", VAD_CHOICES, "auto", ("audio", "vad"), source, text),
        vad_model_path=_path(base, au["vad_model_path"], "") if au.get("vad_model_path") else None,
    )


def _recording(rec: dict[str, Any], state_base: Path, source: str, text: str) -> RecordingSettings:
    return RecordingSettings(
        enabled=bool(rec.get("enabled", False)),
        dir=_path(state_base, rec.get("dir"), "../var/recordings"),
        until=RecordUntil(_choice(rec, "until", tuple(RecordUntil), "decision", ("recording", "until"), source, text)),
        keep_days=int(rec.get("keep_days", 14)),
        max_mb=int(rec.get("max_mb", 2048)),
    )


def _learn(lr: dict[str, Any], state_base: Path) -> LearnSettings:
    defaults = LearnSettings()
    return LearnSettings(
        dir=_path(state_base, lr.get("dir"), "../var/learn"),
        max_segments=int(lr.get("max_segments", defaults.max_segments)),
        max_mb=int(lr.get("max_mb", defaults.max_mb)),
        auto_approve_min_calls=int(lr.get("auto_approve_min_calls", defaults.auto_approve_min_calls)),
        stale_days=int(lr.get("stale_days", defaults.stale_days)),
        jump_factor=float(lr.get("jump_factor", defaults.jump_factor)),
        jump_min_calls=int(lr.get("jump_min_calls", defaults.jump_min_calls)),
        serve_port=int(lr.get("serve_port", defaults.serve_port)),
        live=bool(lr.get("live", defaults.live)),
        collect_every_s=int(lr.get("collect_every_s", defaults.collect_every_s)),
    )


def _leases(table: dict[str, Any], source: str, text: str) -> LeaseSettings:
    leases = LeaseSettings(**{k: float(v) for k, v in table.items()})
    if leases.heartbeat_s >= leases.lease_s:
        raise ConfigError(
            f"leases.heartbeat_s: must be shorter than lease_s ({leases.lease_s:g} s), got {leases.heartbeat_s:g}",
            source=source,
            line=_key_lines(text).get(("leases", "heartbeat_s")),
        )
    return leases


def _pacing_campaigns(
    tables: list[dict[str, Any]], default: PacingSettings, source: str, text: str
) -> dict[str, PacingSettings]:
    """Each ``[[pacing_campaign]]`` over ``[pacing]``, by campaign name (each named once)."""
    out: dict[str, PacingSettings] = {}
    for i, table in enumerate(tables, start=1):
        name = str(table.get("campaign", ""))
        if not name or name in out:
            problem = "names no campaign" if not name else f"campaign {name!r} is given twice"
            raise ConfigError(
                f"pacing_campaign: {problem}", source=source, line=_key_lines(text).get(("pacing_campaign", str(i)))
            )
        out[name] = _pacing(table, default, ("pacing_campaign", str(i)), source, text)
    return out


def _metrics_listen(metrics: dict[str, Any], source: str, text: str) -> str:
    listen = str(metrics.get("listen", ""))
    if listen and not _LISTEN.match(listen):
        raise ConfigError(
            f"metrics.listen: expected host:port (e.g. 127.0.0.1:9108), got {listen!r}",
            source=source,
            line=_key_lines(text).get(("metrics", "listen")),
        )
    return listen


def _compliance(data: dict[str, Any], base: Path, source: str, text: str) -> ComplianceConfig:
    """``[compliance]`` over the defaults (all off), each ``[[compliance_campaign]]`` over it."""
    calendars: dict[Path, HolidayCalendar] = {}
    default = _compliance_table(
        data.get("compliance", {}), ComplianceSettings(), ("compliance",), base, source, text, calendars
    )
    campaigns: dict[str, ComplianceSettings] = {}
    for i, table in enumerate(data.get("compliance_campaign", []), start=1):
        where = ("compliance_campaign", str(i))
        name = str(table.get("campaign", ""))
        if not name or name in campaigns:
            problem = "names no campaign" if not name else f"campaign {name!r} is given twice"
            raise ConfigError(f"compliance_campaign: {problem}", source=source, line=_key_lines(text).get(where))
        campaigns[name] = _compliance_table(table, default, where, base, source, text, calendars)
    return ComplianceConfig(default, campaigns)


def _compliance_table(
    table: dict[str, Any],
    over: ComplianceSettings,
    where: tuple[str, ...],
    base: Path,
    source: str,
    text: str,
    calendars: dict[Path, HolidayCalendar],
) -> ComplianceSettings:
    def problem(key: str, message: str) -> ConfigError:
        return ConfigError(f"{where[0]}.{key}: {message}", source=source, line=_key_lines(text).get((*where, key)))

    caps = AttemptCaps(
        per_day=int(table.get("max_attempts_per_day", over.caps.per_day)),
        per_week=int(table.get("max_attempts_per_week", over.caps.per_week)),
        per_month=int(table.get("max_attempts_per_month", over.caps.per_month)),
    )
    calendar = over.calendar
    if "holidays" in table:
        path = str(table["holidays"])
        calendar = HolidayCalendar() if not path else _load_holidays(_path(base, path, ""), calendars)
    closed = calendar.closed
    if "on_holiday" in table:
        value = str(table["on_holiday"])
        if value not in ON_HOLIDAY:
            raise problem("on_holiday", f"must be one of {', '.join(ON_HOLIDAY)}, got {value!r}")
        closed = value == "closed"
    caller_id = over.caller_id
    if "caller_id" in table:
        caller_id = str(table["caller_id"])
        if caller_id and not CALLER_ID.match(caller_id):
            raise problem("caller_id", f"expected 3 to 15 digits with an optional leading +, got {caller_id!r}")
    return ComplianceSettings(caps=caps, calendar=replace(calendar, closed=closed), caller_id=caller_id)


def _load_holidays(path: Path, cache: dict[Path, HolidayCalendar]) -> HolidayCalendar:
    """A holiday calendar file: ``holidays:`` (non-working days) and ``workdays:`` (Saturdays or
    Sundays made working days), each a list of YYYY-MM-DD dates. Errors name the file and line."""
    if path in cache:
        return cache[path]
    root = load_yaml_file(path)
    root.check_keys({"holidays", "workdays"}, "a holiday calendar")
    found: dict[str, frozenset[date]] = {}
    for key in ("holidays", "workdays"):
        node = root.get(key)
        days: set[date] = set()
        for item in node.as_list(key) if node is not None and node.value is not None else []:
            value = item.value
            if isinstance(value, str):
                try:
                    value = date.fromisoformat(value.strip())
                except ValueError:
                    raise item.error(f"{key}: expected a date YYYY-MM-DD, got {item.value!r}") from None
            if isinstance(value, datetime) or not isinstance(value, date):
                raise item.error(f"{key}: expected a date YYYY-MM-DD, got {item.value!r}")
            days.add(value)
        found[key] = frozenset(days)
    both = sorted(found["holidays"] & found["workdays"])
    if both:
        raise root.key_error("workdays", f"{both[0]} is both a holiday and a working day")
    calendar = HolidayCalendar(holidays=found["holidays"], workdays=found["workdays"])
    cache[path] = calendar
    return calendar


def _pacing(
    table: dict[str, Any], base: PacingSettings, where: tuple[str, ...], source: str, text: str
) -> PacingSettings:
    """``[pacing]`` over the defaults, or one ``[[pacing_campaign]]`` over ``[pacing]``."""
    mode = base.mode
    if "mode" in table:
        value = str(table["mode"])
        if value not in tuple(PacingMode):
            raise ConfigError(
                f"{where[0]}.mode: must be one of {', '.join(PacingMode)}, got {value!r}",
                source=source,
                line=_key_lines(text).get((*where, "mode")),
            )
        mode = PacingMode(value)
    return replace(
        base,
        mode=mode,
        queue=str(table.get("queue", base.queue)),
        max_abandon_rate=float(table.get("max_abandon_rate", base.max_abandon_rate)),
        max_wait_s=float(table.get("max_wait_s", base.max_wait_s)),
        window_s=float(table.get("window_s", base.window_s)),
        min_samples=int(table.get("min_samples", base.min_samples)),
    )
