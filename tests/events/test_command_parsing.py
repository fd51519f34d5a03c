"""Command validation and the transport-free processor: idempotency, error replies."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dialer.domain.model import ExclusionKind, ResultCode
from dialer.events.commands import (
    CommandProcessor,
    CommandRejected,
    DroppedCallback,
    ExclusionRequest,
    OperatorOutcome,
    OperatorResult,
    parse_command,
)

from .support import MemoryCommands, RecordingHandler

NOW = datetime(2025, 1, 4, 10, 0, tzinfo=UTC)


def raw(**fields: Any) -> bytes:
    return json.dumps(fields, ensure_ascii=False).encode()


def parse(ctype: str, body: bytes) -> Any:
    return parse_command(ctype, body, now=NOW)


@pytest.mark.parametrize(
    ("outcome", "result", "incorrect"),
    [
        ("refused", ResultCode.REFUSED, False),
        ("wrong_person", ResultCode.UNAVAILABLE, True),
        ("completed", ResultCode.COMPLETED, False),
    ],
)
def test_operator_results_map_to_card_results(outcome: str, result: ResultCode, incorrect: bool) -> None:
    cmd = parse("operator-result", raw(command_id="c1", campaign="to", contact="crm-1", result=outcome, comment="  x "))
    assert isinstance(cmd, OperatorResult)
    assert cmd.result is result and cmd.incorrect_contact is incorrect
    assert cmd.callback_at is None and cmd.comment == "x" and cmd.received_at == NOW


def test_operator_callback_keeps_the_agreed_time() -> None:
    cmd = parse(
        "operator-result",
        raw(
            command_id="c2",
            campaign="to",
            contact="crm-1",
            result="callback",
            callback_at="2025-01-05T18:30:00+03:00",
            attempt_id="7f1d8a3e-0000-4000-8000-000000000001",
        ),
    )
    assert isinstance(cmd, OperatorResult) and cmd.outcome is OperatorOutcome.CALLBACK
    assert cmd.callback_at == datetime(2025, 1, 5, 15, 30, tzinfo=UTC)
    assert cmd.result is ResultCode.CALLBACK and str(cmd.attempt_id).startswith("7f1d8a3e")


def test_dropped_call_gets_three_tries_one_two_three_minutes_after() -> None:
    cmd = parse(
        "dropped-callback",
        raw(command_id="d1", campaign="inbound", number="8 (916) 123-45-67", dropped_at="2025-01-04T09:59:00Z"),
    )
    assert isinstance(cmd, DroppedCallback)
    assert cmd.number == "+79161234567" and cmd.raw_number == "8 (916) 123-45-67"
    t = datetime(2025, 1, 4, 9, 59, tzinfo=UTC)
    assert cmd.tries_at == (t + timedelta(minutes=1), t + timedelta(minutes=2), t + timedelta(minutes=3))


def test_dropped_call_defaults_to_now() -> None:
    cmd = parse("dropped-callback", raw(command_id="d2", campaign="inbound", number="+7 916 123 45 67"))
    assert isinstance(cmd, DroppedCallback) and cmd.dropped_at == NOW
    assert cmd.tries_at[0] == NOW + timedelta(minutes=1)


@pytest.mark.parametrize("kind", list(ExclusionKind))
def test_exclusion_kinds(kind: ExclusionKind) -> None:
    cmd = parse("exclusion", raw(command_id="e1", number="+74951234567", kind=kind.value, requested_by="op7"))
    assert isinstance(cmd, ExclusionRequest) and cmd.kind is kind and cmd.number == "+74951234567"
    assert not cmd.not_a_client and cmd.requested_by == "op7"


def test_not_a_client_means_excluded_from_everything() -> None:
    cmd = parse("exclusion", raw(command_id="e2", number="+74951234567", not_a_client=True))
    assert isinstance(cmd, ExclusionRequest) and cmd.kind is ExclusionKind.ALL and cmd.not_a_client


@pytest.mark.parametrize(
    ("ctype", "body", "field", "message"),
    [
        ("exclusion", b"{not json", None, "not valid JSON"),
        ("exclusion", b"\xff\xfe", None, "not UTF-8"),
        ("exclusion", b"[1, 2]", None, "must be a JSON object, got array"),
        ("reboot", raw(command_id="x"), "type", "unknown command type 'reboot'"),
        ("exclusion", raw(number="+74951234567", kind="all"), "command_id", "missing required field 'command_id'"),
        ("exclusion", raw(command_id="x", kind="all"), "number", "missing required field 'number'"),
        ("exclusion", raw(command_id="x", number="+74951234567", kind="sms"), "kind", "expected one of calls"),
        ("exclusion", raw(command_id="x", number="12", kind="all"), "number", "not a valid phone number"),
        ("exclusion", raw(command_id="x", number="abc", kind="all"), "number", "not a phone number"),
        (
            "exclusion",
            raw(command_id="x", number="+74951234567", kind="calls", not_a_client=True),
            "kind",
            "must be 'all'",
        ),
        ("exclusion", raw(command_id="x", number="+74951234567", kind="all", colour="red"), "colour", "unknown"),
        ("exclusion", raw(command_id=5, number="+74951234567", kind="all"), "command_id", "must be a string"),
        ("exclusion", raw(command_id="x", type="operator-result"), "type", "came for 'exclusion'"),
        (
            "operator-result",
            raw(command_id="x", campaign="c", contact="1", result="callback"),
            "callback_at",
            "missing required field 'callback_at'",
        ),
        (
            "operator-result",
            raw(command_id="x", campaign="c", contact="1", result="callback", callback_at="завтра в 5"),
            "callback_at",
            "not an ISO 8601 time",
        ),
        (
            "operator-result",
            raw(command_id="x", campaign="c", contact="1", result="callback", callback_at="2025-01-05T18:30:00"),
            "callback_at",
            "no UTC offset",
        ),
        (
            "operator-result",
            raw(command_id="x", campaign="c", contact="1", result="callback", callback_at="2024-12-31T10:00:00Z"),
            "callback_at",
            "in the past",
        ),
        (
            "operator-result",
            raw(command_id="x", campaign="c", contact="1", result="refused", callback_at="2025-01-05T10:00:00Z"),
            "callback_at",
            "only allowed with result 'callback'",
        ),
        (
            "operator-result",
            raw(command_id="x", campaign="c", contact="1", result="refused", attempt_id="nope"),
            "attempt_id",
            "not a UUID",
        ),
        ("operator-result", raw(command_id="x", campaign="c", result="refused"), "contact", "missing"),
        (
            "dropped-callback",
            raw(command_id="x", campaign="c", number="+79161234567", dropped_at="2025-01-04T11:00:00Z"),
            "dropped_at",
            "in the future",
        ),
    ],
)
def test_malformed_commands_are_rejected_with_the_field_named(
    ctype: str, body: bytes, field: str | None, message: str
) -> None:
    with pytest.raises(CommandRejected, match=message) as info:
        parse(ctype, body)
    assert info.value.field == field


def test_rejection_keeps_command_id_when_readable() -> None:
    with pytest.raises(CommandRejected) as info:
        parse("exclusion", raw(command_id="keep-me", number="1", kind="all"))
    assert info.value.command_id == "keep-me"


# --- processor ---------------------------------------------------------------------------------


def processor(handler: RecordingHandler, store: MemoryCommands | None = None) -> CommandProcessor:
    return CommandProcessor(store or MemoryCommands(), handler, clock=lambda: NOW)


async def test_duplicate_command_is_applied_once_and_acked_as_duplicate() -> None:
    handler = RecordingHandler()
    proc = processor(handler)
    body = raw(command_id="op-1", campaign="to", contact="crm-1", result="refused")
    first = await proc.process("operator-result", body)
    second = await proc.process("operator-result", body)
    assert len(handler.applied) == 1
    assert first.ok and first.topic == "cmd/operator-result/ack"
    assert first.payload["status"] == "applied" and first.payload["detail"]["result"] == "refused"
    assert second.ok and second.payload["status"] == "duplicate" and second.payload["duplicate"] is True
    assert second.payload["command_id"] == "op-1"
    assert first.payload["event_id"] != second.payload["event_id"]


async def test_malformed_command_gets_error_reply_and_changes_nothing() -> None:
    handler = RecordingHandler()
    store = MemoryCommands()
    reply = await processor(handler, store).process("exclusion", raw(command_id="e-9", number="+7", kind="all"))
    assert not reply.ok and reply.topic == "cmd/exclusion/error"
    assert reply.payload["command_id"] == "e-9" and reply.payload["field"] == "number"
    assert "is not a phone number" in reply.payload["error"]
    assert handler.applied == [] and store.seen == {}  # not consumed: can be fixed and re-sent


async def test_unknown_type_with_unsafe_topic_level_is_answered_under_unknown() -> None:
    reply = await processor(RecordingHandler()).process("a/b", raw(command_id="z"))
    assert reply.topic == "cmd/unknown/error" and "unknown command type" in reply.payload["error"]


async def test_handler_input_error_becomes_error_reply() -> None:
    handler = RecordingHandler(known_contacts={"crm-1"})
    reply = await processor(handler).process(
        "operator-result", raw(command_id="op-2", campaign="to", contact="crm-404", result="completed")
    )
    assert not reply.ok and "no contact with external id 'crm-404'" in reply.payload["error"]


async def test_handler_bug_becomes_internal_error_reply_not_a_crash() -> None:
    reply = await processor(RecordingHandler(explode=True)).process(
        "exclusion", raw(command_id="e-1", number="+74951234567", kind="calls")
    )
    assert not reply.ok and reply.payload["error"] == "internal error (ZeroDivisionError)"
