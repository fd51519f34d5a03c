"""Structured logging for the worker: one line per call state change, secrets redacted.

``call_log(log, "answered", attempt_id, uniqueid, server="ami1")`` writes
``event=answered attempt=<uuid> uniqueid=<uid> server=ami1`` (or the same as one JSON object when
``configure_logging(json=True)``), so a call can be followed with one grep on its attempt id.

:class:`SecretFilter` is installed on the root handlers by :func:`configure_logging`; it rewrites
every record so that known secret values (registered with :func:`register_secret`) and the usual
``password=…``/``secret: …``/``scheme://user:pw@host`` patterns never reach a log sink, whichever
library emitted the record (panoramisk logs whole actions, the AMI Login included, on errors).
"""

from __future__ import annotations

import json as _json
import logging
import re
import sys
import threading
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from dialer.config import Secret

REDACTED = "***"

# key=value, key: value and "key": "value" forms, for the keys that carry credentials.
_KEY_PATTERN = re.compile(
    r"""(?P<key>["']?\b(?:password|passwd|secret|token|api[_-]?key)["']?\s*[:=]\s*["']?)(?P<value>[^\s"',;&}\]]+)""",
    re.IGNORECASE,
)
_URL_CREDS = re.compile(r"(?P<scheme>\b[a-z][a-z0-9+.\-]*://)(?P<user>[^\s:/@]*):(?P<pw>[^\s@/]+)@", re.I)

_known_lock = threading.Lock()
_known_secrets: set[str] = set()


def register_secret(value: str | Secret) -> None:
    """Remember a secret value so that any log line containing it is redacted.

    Reading an env-backed Secret that is not set is not an error here: there is nothing to hide.
    """
    if isinstance(value, Secret):
        try:
            value = value.get()
        except Exception:  # the variable is unset: nothing to redact
            return
    # Very short values would redact ordinary words; they are weak secrets anyway.
    if len(value) >= 4:
        with _known_lock:
            _known_secrets.add(value)


def redact(text: str) -> str:
    """Return ``text`` with known secrets and credential patterns replaced by ``***``."""
    with _known_lock:
        known = sorted(_known_secrets, key=len, reverse=True)
    for value in known:
        if value in text:
            text = text.replace(value, REDACTED)
    text = _KEY_PATTERN.sub(lambda m: m.group("key") + REDACTED, text)
    return _URL_CREDS.sub(lambda m: f"{m.group('scheme')}{m.group('user')}:{REDACTED}@", text)


class SecretFilter(logging.Filter):
    """Redacts the fully formatted message (and exception text) of every record it sees."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg = clean
            record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            record.fields = {k: redact(v) if isinstance(v, str) else v for k, v in fields.items()}
        return True


def _plain(value: Any) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' ="\n'):
        return _json.dumps(text, ensure_ascii=False)
    return text


class KeyValueFormatter(logging.Formatter):
    """``2026-11-23T07:23:20.594Z INFO dialer.worker event=answered attempt=… k=v``."""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            body = " ".join(f"{k}={_plain(v)}" for k, v in fields.items())
        else:
            body = record.getMessage()
        line = f"{ts} {record.levelname} {record.name} {body}"
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line += "\n" + record.exc_text
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg or the call fields."""

    def format(self, record: logging.LogRecord) -> str:
        obj: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            obj.update(fields)
        else:
            obj["msg"] = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            obj["exc"] = record.exc_text
        return _json.dumps(obj, ensure_ascii=False, default=str)


def configure_logging(level: int | str = logging.INFO, json: bool = False, stream: Any = None) -> None:
    """Install one stderr (or ``stream``) handler on the root logger with a SecretFilter.

    Calling it again replaces the handler it installed before, so tests and the CLI can reconfigure.
    """
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_dialer_handler", False):
            root.removeHandler(h)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler._dialer_handler = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter() if json else KeyValueFormatter())
    handler.addFilter(SecretFilter())
    root.addHandler(handler)
    root.setLevel(level)


def call_log(
    logger: logging.Logger,
    event: str,
    attempt_id: uuid.UUID | str | None,
    uniqueid: str | None = None,
    *,
    level: int = logging.INFO,
    **fields: Any,
) -> None:
    """One structured line for a call state change, always carrying attempt id and Uniqueid."""
    if not logger.isEnabledFor(level):
        return
    data: dict[str, Any] = {"event": event, "attempt": str(attempt_id) if attempt_id else "-"}
    data["uniqueid"] = uniqueid or "-"
    for k, v in fields.items():
        data[k] = v.value if hasattr(v, "value") and not isinstance(v, Mapping) else v
    # The plain message keeps the line readable under a foreign formatter too.
    msg = " ".join(f"{k}={_plain(v)}" for k, v in data.items())
    logger.log(level, "%s", msg, extra={"fields": data})
