"""Structured call logging and secret redaction (dialer.logging)."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator

import pytest

from dialer.ami.client import AmiClient
from dialer.config import AmiEndpoint, MqttSettings, Secret
from dialer.logging import SecretFilter, call_log, configure_logging, redact, register_secret


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    buf = io.StringIO()
    yield buf
    configure_logging(logging.WARNING)


def test_call_log_is_one_key_value_line_with_attempt_and_uniqueid(stream: io.StringIO) -> None:
    configure_logging(logging.INFO, json=False, stream=stream)
    attempt = uuid.uuid4()
    call_log(logging.getLogger("dialer.worker"), "answered", attempt, str(attempt), server="pbx1", note="a b")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert f"event=answered attempt={attempt} uniqueid={attempt} server=pbx1 " in lines[0]
    assert 'note="a b"' in lines[0]


def test_call_log_json(stream: io.StringIO) -> None:
    configure_logging(logging.INFO, json=True, stream=stream)
    attempt = uuid.uuid4()
    call_log(logging.getLogger("dialer.worker"), "hung_up", attempt, "1795418600.2", cause=17)
    obj = json.loads(stream.getvalue())
    assert obj["event"] == "hung_up" and obj["attempt"] == str(attempt)
    assert obj["uniqueid"] == "1795418600.2" and obj["cause"] == 17 and obj["level"] == "INFO"


def test_known_secrets_and_patterns_are_redacted(stream: io.StringIO) -> None:
    configure_logging(logging.DEBUG, json=False, stream=stream)
    register_secret(Secret("Very-Secret-Value-42"))
    log = logging.getLogger("some.library")
    log.info("sending %r", {"Action": "Login", "Username": "dialer", "Secret": "Very-Secret-Value-42"})
    log.info("password=hunter2xyz and secret: abcd1234 token=tok_9999")
    log.info("db postgresql+asyncpg://dialer:pg-pass-77@db/dialer")
    try:
        raise RuntimeError("login failed with Very-Secret-Value-42")
    except RuntimeError:
        log.exception("boom")
    out = stream.getvalue()
    for leaked in ("Very-Secret-Value-42", "hunter2xyz", "abcd1234", "tok_9999", "pg-pass-77"):
        assert leaked not in out, leaked
    assert "postgresql+asyncpg://dialer:***@db/dialer" in out
    assert "boom" in out and "RuntimeError" in out


def test_redact_leaves_ordinary_text_alone() -> None:
    assert redact("event=answered attempt=abc cause=17") == "event=answered attempt=abc cause=17"


def test_filter_redacts_call_fields() -> None:
    register_secret("field-secret-123")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    record.fields = {"event": "x", "detail": "uses field-secret-123"}
    SecretFilter().filter(record)
    assert record.__dict__["fields"]["detail"] == "uses ***"  # an extra, as logging stores it


def test_reprs_never_show_secrets() -> None:
    ep = AmiEndpoint("pbx1", "127.0.0.1", 5038, "dialer", Secret("ami-secret-xyz"))
    client = AmiClient(ep)
    mqtt = MqttSettings(password=Secret("mqtt-secret-xyz"))
    for text in (repr(ep), str(ep), repr(client), repr(mqtt)):
        assert "ami-secret-xyz" not in text and "mqtt-secret-xyz" not in text
