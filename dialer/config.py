"""Worker settings: one TOML file (config/dialer.toml) plus environment overrides.

Secrets never live in the file in production: each secret may be given inline (for the demo) or
through ``*_env`` naming an environment variable. Secrets are wrapped in :class:`Secret`, whose
repr/str never reveal the value, so a settings object can be logged safely.
"""

from __future__ import annotations

import enum
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dialer.errors import ConfigError

DEFAULT_CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"


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
    # Local/ channel keeps early media apart from a real answer (DESIGN §3).
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
    sample_rate: int = 8000
    engine: str = "auto"
    whisper_model_path: Path | None = None
    cpu_threads: int = 1


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
class CampaignDefaults:
    timezone: str = "Europe/Moscow"
    concurrency: int = 10
    weekday_window: str = "09:00-21:00"
    weekend_window: str = "10:00-20:00"
    region: str = "RU"


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
    recording: RecordingSettings = field(default_factory=RecordingSettings)

    def __repr__(self) -> str:
        return (
            f"Settings(database_url={redact_url(self.database_url)!r}, ami={[a.name for a in self.ami]!r}, "
            f"mqtt={self.mqtt.host}:{self.mqtt.port}, source={self.source!r})"
        )


def _secret(section: dict[str, Any], key: str) -> Secret:
    env_key = section.get(f"{key}_env")
    if env_key:
        return Secret(env=str(env_key))
    return Secret(str(section.get(key, "")))


def _path(base: Path, value: Any, default: str) -> Path:
    p = Path(str(value)) if value else Path(default)
    return p if p.is_absolute() else (base / p).resolve()


def _recording(base: Path, r: dict[str, Any]) -> RecordingSettings:
    until = str(r.get("until", RecordUntil.DECISION.value))
    if until not in RecordUntil.__members__.values():
        raise ValueError(f"[recording] until must be one of {', '.join(RecordUntil)}, got {until!r}")
    return RecordingSettings(
        enabled=bool(r.get("enabled", False)),
        dir=_path(base, r.get("dir"), "../var/recordings"),
        until=RecordUntil(until),
        keep_days=int(r.get("keep_days", 14)),
        max_mb=int(r.get("max_mb", 2048)),
    )


def load_settings(path: Path | None = None) -> Settings:
    """Load settings from ``path`` (default: config/dialer.toml beside the package).

    ``DIALER_DB_URL`` overrides the database URL, ``DIALER_MQTT_HOST``/``DIALER_MQTT_PORT`` the broker.
    """
    cfg_path = path or Path(os.environ.get("DIALER_CONFIG", DEFAULT_CONFIG_DIR / "dialer.toml"))
    source = str(cfg_path)
    data: dict[str, Any] = {}
    if cfg_path.exists():
        try:
            data = tomllib.loads(cfg_path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(str(exc), source=source) from None
    elif path is not None:
        raise ConfigError("file not found", source=source)
    base = cfg_path.resolve().parent

    try:
        db = data.get("database", {})
        db_url = os.environ.get("DIALER_DB_URL") or db.get("url") or "sqlite+aiosqlite:///var/dialer.sqlite"
        c = data.get("campaign", {})
        campaign = CampaignDefaults(
            timezone=str(c.get("timezone", "Europe/Moscow")),
            concurrency=int(c.get("concurrency", 10)),
            weekday_window=str(c.get("weekday_window", "09:00-21:00")),
            weekend_window=str(c.get("weekend_window", "10:00-20:00")),
            region=str(c.get("region", "RU")),
        )
        amis = []
        for i, a in enumerate(data.get("ami", [])):
            amis.append(
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
            )
        d = data.get("dial", {})
        dial = DialSettings(**{k: v for k, v in d.items() if k in DialSettings.__dataclass_fields__})
        s = data.get("audiosocket", {})
        audiosocket = AudioSocketSettings(
            **{k: v for k, v in s.items() if k in AudioSocketSettings.__dataclass_fields__}
        )
        m = data.get("mqtt", {})
        mqtt = MqttSettings(
            enabled=bool(m.get("enabled", True)),
            host=os.environ.get("DIALER_MQTT_HOST") or str(m.get("host", "127.0.0.1")),
            port=int(os.environ.get("DIALER_MQTT_PORT") or m.get("port", 1883)),
            username=str(m.get("username", "")),
            password=_secret(m, "password"),
            topic_prefix=str(m.get("topic_prefix", "dialer")),
            client_id=str(m.get("client_id", "dialer-worker")),
            keepalive_s=int(m.get("keepalive_s", 30)),
        )
        r = data.get("asr", {})
        asr_engine = str(r.get("engine", "auto"))
        if asr_engine not in ASR_ENGINES:
            raise ConfigError(
                f"[asr] engine must be one of {', '.join(ASR_ENGINES)}, got {asr_engine!r}", source=source
            )
        asr = AsrSettings(
            model_path=_path(base, r["model_path"], "") if r.get("model_path") else None,
            max_workers=int(r.get("max_workers", 2)),
            engine=asr_engine,
            whisper_model_path=_path(base, r["whisper_model_path"], "") if r.get("whisper_model_path") else None,
            cpu_threads=max(1, int(r.get("cpu_threads", 1))),
        )
        p = data.get("paths", {})
        return Settings(
            database_url=str(db_url),
            campaign=campaign,
            ami=tuple(amis),
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
            recording=_recording(base, data.get("recording", {})),
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"bad value: {exc}", source=source) from None
