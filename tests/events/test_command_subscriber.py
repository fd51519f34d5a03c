"""Inbound commands over the real broker: every message answered, malformed ones with an error
event, duplicates applied once, and the subscriber never stops."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from dialer.config import MqttSettings
from dialer.domain.model import ExclusionKind, ResultCode
from dialer.events.commands import (
    CommandProcessor,
    CommandSubscriber,
    DroppedCallback,
    ExclusionRequest,
    OperatorResult,
)

from .support import Collector, MemoryCommands, RecordingHandler, publish_raw

pytestmark = pytest.mark.mqtt


@pytest.fixture
async def worker(mqtt: MqttSettings) -> AsyncIterator[tuple[CommandSubscriber, RecordingHandler]]:
    handler = RecordingHandler(known_contacts={"crm-1", "crm-2"})
    sub = CommandSubscriber(CommandProcessor(MemoryCommands(), handler), mqtt, backoff_initial_s=0.05)
    await sub.start()
    await sub.wait_subscribed()
    try:
        yield sub, handler
    finally:
        await sub.stop()


async def send(mqtt: MqttSettings, ctype: str, body: dict[str, Any] | bytes) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    await publish_raw(mqtt.host, mqtt.port, f"{mqtt.topic_prefix}/cmd/{ctype}", raw)


REFUSED = {"command_id": "op-1", "campaign": "to", "contact": "crm-1", "result": "refused", "comment": "Не до вас"}
# Good and bad commands in one stream: each gets its own reply, in order.
MIXED_COMMANDS: list[tuple[str, dict[str, Any] | bytes]] = [
    ("operator-result", b"{this is not json"),
    ("shutdown", {"command_id": "evil-1"}),
    ("exclusion", {"command_id": "ex-bad", "kind": "all"}),
    ("operator-result", {**REFUSED, "command_id": "cb-bad", "result": "callback", "callback_at": "tomorrow"}),
    ("operator-result", REFUSED),
    ("operator-result", REFUSED),  # the same command again: changes nothing
    ("operator-result", {**REFUSED, "command_id": "op-2", "contact": "crm-404"}),
    ("exclusion", {"command_id": "ex-1", "number": "8 916 123-45-67", "kind": "online"}),
    ("dropped-callback", {"command_id": "dc-1", "campaign": "inbound", "number": "+79161234567"}),
    (
        "operator-result",
        {
            "command_id": "op-3",
            "campaign": "to",
            "contact": "crm-2",
            "result": "callback",
            "callback_at": "2099-01-05T18:30:00+03:00",
        },
    ),
]


async def test_commands_are_applied_acked_and_errors_reported(
    mqtt: MqttSettings, worker: tuple[CommandSubscriber, RecordingHandler]
) -> None:
    sub, handler = worker
    p = mqtt.topic_prefix
    async with Collector(mqtt.host, mqtt.port, f"{p}/cmd/+/+") as col:
        for ctype, body in MIXED_COMMANDS:
            await send(mqtt, ctype, body)
        await col.wait_for(lambda: len(col.messages) == len(MIXED_COMMANDS))

    replies = [(m.topic.removeprefix(f"{p}/cmd/"), m.body) for m in col.messages]
    kinds = [(t, b.get("command_id"), b.get("status")) for t, b in replies]
    assert kinds == [
        ("operator-result/error", None, None),
        ("shutdown/error", "evil-1", None),
        ("exclusion/error", "ex-bad", None),
        ("operator-result/error", "cb-bad", None),
        ("operator-result/ack", "op-1", "applied"),
        ("operator-result/ack", "op-1", "duplicate"),
        ("operator-result/error", "op-2", None),
        ("exclusion/ack", "ex-1", "applied"),
        ("dropped-callback/ack", "dc-1", "applied"),
        ("operator-result/ack", "op-3", "applied"),
    ]
    errors = [b["error"] for t, b in replies if t.endswith("/error")]
    assert "not valid JSON" in errors[0]
    assert "unknown command type 'shutdown'" in errors[1]
    assert "missing required field 'number'" in errors[2]
    assert "not an ISO 8601 time" in errors[3]
    assert "no contact with external id 'crm-404'" in errors[4]
    for _, body in replies:
        assert body["schema"] == 1 and body["event_id"] and body["occurred_at"].endswith("Z")

    applied = handler.applied
    assert [type(c) for c in applied] == [OperatorResult, ExclusionRequest, DroppedCallback, OperatorResult]
    first = applied[0]
    assert isinstance(first, OperatorResult) and first.result is ResultCode.REFUSED and first.comment == "Не до вас"
    excl = applied[1]
    assert isinstance(excl, ExclusionRequest) and excl.kind is ExclusionKind.ONLINE and excl.number == "+79161234567"
    dropped = applied[2]
    assert isinstance(dropped, DroppedCallback) and len(dropped.tries_at) == 3
    assert sub.handled_total == len(MIXED_COMMANDS)


async def test_replies_do_not_loop_back_as_commands(
    mqtt: MqttSettings, worker: tuple[CommandSubscriber, RecordingHandler]
) -> None:
    sub, _ = worker
    async with Collector(mqtt.host, mqtt.port, f"{mqtt.topic_prefix}/cmd/#") as col:
        await send(mqtt, "exclusion", {"command_id": "e", "number": "+74951234567", "kind": "all"})
        await col.wait_for(lambda: len(col.messages) == 2)  # the command and its ack
        # a second command proves the worker is idle, not busy answering its own replies
        await send(mqtt, "exclusion", {"command_id": "f", "number": "+74951234567", "kind": "calls"})
        await col.wait_for(lambda: len(col.messages) == 4)
    assert sub.handled_total == 2


async def test_stop_lets_the_command_in_hand_finish_and_answer(mqtt: MqttSettings) -> None:
    gate = asyncio.Event()
    handler = RecordingHandler(gate=gate)
    sub = CommandSubscriber(CommandProcessor(MemoryCommands(), handler), mqtt)
    await sub.start()
    await sub.wait_subscribed()
    async with Collector(mqtt.host, mqtt.port, f"{mqtt.topic_prefix}/cmd/+/+") as col:
        await send(mqtt, "exclusion", {"command_id": "slow", "number": "+74951234567", "kind": "all"})
        await handler.entered.wait()
        stopping = asyncio.create_task(sub.stop(deadline_s=5))
        await asyncio.sleep(0)  # stop() is now waiting for the command in hand
        assert not stopping.done()
        gate.set()
        await stopping
        await col.wait_for(lambda: len(col.messages) == 1)
    assert col.messages[0].body["status"] == "applied" and len(handler.applied) == 1
