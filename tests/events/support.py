"""Test doubles and broker helpers for the events tests: an in-memory outbox and command store
that satisfy the Protocols, a recording command handler, an MQTT collector that survives broker
restarts, and a private Mosquitto process on a free loopback port."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt

from dialer.config import MqttSettings
from dialer.errors import InputError
from dialer.events.commands import CommandSeen, DroppedCallback, ExclusionRequest, OperatorResult
from dialer.storage.outbox import OutboxEvent


def shared_broker() -> tuple[str, int]:
    host, _, port = os.environ.get("DIALER_TEST_MQTT", "127.0.0.1:1883").rpartition(":")
    return host or "127.0.0.1", int(port)


def settings_for(host: str, port: int, prefix: str) -> MqttSettings:
    return MqttSettings(
        host=host, port=port, topic_prefix=prefix, client_id=f"dialer-test-{uuid.uuid4().hex[:12]}", keepalive_s=5
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_until(predicate: Callable[[], bool], changed: asyncio.Event, timeout_s: float = 10.0) -> None:
    """Wait for ``predicate`` to hold, re-checking whenever ``changed`` fires (no sleeping)."""
    async with asyncio.timeout(timeout_s):
        while not predicate():
            changed.clear()
            if predicate():
                return
            await changed.wait()


# --- in-memory storage -------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    id: int
    topic: str
    payload: dict[str, Any]
    key: str | None
    created_at: datetime


class MemoryOutbox:
    """OutboxStore in memory; ``fetch_failures`` makes the next fetches raise."""

    def __init__(self) -> None:
        self.rows: dict[int, Row] = {}
        self.published: dict[int, datetime] = {}
        self.errors: list[tuple[int, str]] = []
        self.fetch_failures = 0
        self.fetch_calls = 0
        self.changed = asyncio.Event()
        self._next = 1

    def add(self, event: OutboxEvent) -> Row:
        return self.add_raw(event.topic, event.payload, event.key)

    def add_raw(self, topic: str, payload: dict[str, Any], key: str | None) -> Row:
        row = Row(self._next, topic, payload, key, datetime.now(UTC))
        self.rows[row.id] = row
        self._next += 1
        return row

    async def fetch_unpublished(self, limit: int, /) -> Sequence[Row]:
        self.fetch_calls += 1
        if self.fetch_failures:
            self.fetch_failures -= 1
            raise RuntimeError("database is locked (injected)")
        ids = sorted(i for i in self.rows if i not in self.published)[:limit]
        return [self.rows[i] for i in ids]

    async def mark_published(self, ids: Sequence[int], at: datetime, /) -> None:
        for i in ids:
            self.published.setdefault(i, at)
        self.changed.set()

    async def record_publish_error(self, row_id: int, error: str, /) -> None:
        self.errors.append((row_id, error))
        self.changed.set()

    def unpublished(self) -> list[int]:
        return sorted(i for i in self.rows if i not in self.published)


class MemoryCommands:
    def __init__(self) -> None:
        self.seen: dict[str, str] = {}

    async def remember_command(self, command_id: str, now: datetime, fingerprint: str, /) -> CommandSeen:
        if command_id in self.seen:
            return "duplicate" if self.seen[command_id] == fingerprint else "conflict"
        self.seen[command_id] = fingerprint
        return "new"

    async def forget_command(self, command_id: str, /) -> None:
        self.seen.pop(command_id, None)


@dataclass
class RecordingHandler:
    """CommandHandler that records what it applied; ``known_contacts`` None accepts any."""

    known_contacts: set[str] | None = None
    applied: list[OperatorResult | DroppedCallback | ExclusionRequest] = field(default_factory=list)
    explode: bool = False
    gate: asyncio.Event | None = None  # when given, applying waits for it (after setting entered)
    entered: asyncio.Event = field(default_factory=asyncio.Event)

    async def _check(self, external_id: str | None) -> None:
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.explode:
            raise ZeroDivisionError("handler bug")
        if external_id and self.known_contacts is not None and external_id not in self.known_contacts:
            raise InputError(f"no contact with external id {external_id!r} in the campaign")

    async def apply_operator_result(self, command: OperatorResult, /) -> Mapping[str, Any]:
        await self._check(command.external_id)
        self.applied.append(command)
        return {"result": command.result.value, "incorrect_contact": command.incorrect_contact}

    async def request_dropped_callback(self, command: DroppedCallback, /) -> Mapping[str, Any]:
        await self._check(command.external_id)
        self.applied.append(command)
        return {"tries_at": [t.isoformat() for t in command.tries_at]}

    async def apply_exclusion(self, command: ExclusionRequest, /) -> Mapping[str, Any]:
        await self._check(command.external_id)
        self.applied.append(command)
        return {"number": command.number, "kind": command.kind.value}


# --- MQTT helpers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    topic: str
    body: Any  # decoded JSON
    retain: bool


class Collector:
    """Subscribes ``topic_filter`` and records every message, reconnecting (quickly) when the
    broker goes away. ``persistent`` keeps a broker session so nothing published while it is
    reconnecting is lost."""

    def __init__(self, host: str, port: int, topic_filter: str, *, persistent: bool = False) -> None:
        self.host, self.port, self.topic_filter = host, port, topic_filter
        self.persistent = persistent
        self.client_id = f"collector-{uuid.uuid4().hex[:12]}"
        self.messages: list[Received] = []
        self.changed = asyncio.Event()
        self.subscribed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Collector:
        self._task = asyncio.get_running_loop().create_task(self._run())
        async with asyncio.timeout(10):
            await self.subscribed.wait()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        while True:
            client = aiomqtt.Client(
                self.host, self.port, identifier=self.client_id, clean_session=not self.persistent, timeout=5
            )
            try:
                async with client:
                    await client.subscribe(self.topic_filter, qos=1)
                    self.subscribed.set()
                    async for m in client.messages:
                        assert isinstance(m.payload, bytes)
                        try:
                            body: Any = json.loads(m.payload)
                        except ValueError:
                            body = m.payload
                        self.messages.append(Received(m.topic.value, body, m.retain))
                        self.changed.set()
            except aiomqtt.MqttError:
                self.subscribed.clear()
                await asyncio.sleep(0.05)

    def bodies(self, suffix: str = "") -> list[Any]:
        return [m.body for m in self.messages if m.topic.endswith(suffix)]

    async def wait_for(self, predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
        await wait_until(predicate, self.changed, timeout_s)


async def publish_raw(host: str, port: int, topic: str, payload: bytes) -> None:
    async with aiomqtt.Client(host, port, identifier=f"sender-{uuid.uuid4().hex[:8]}") as c:
        await c.publish(topic, payload, qos=1)


class Mosquitto:
    """A private broker on a loopback port, for tests that stop and restart it. Persistence
    saved on every change keeps subscriber sessions across a kill -9, like a production broker
    with a persistent store."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.workdir = workdir
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            + "allow_anonymous true\n"
            # as root, mosquitto drops to user "mosquitto", which cannot write into pytest's
            # private tmp dir; staying root keeps persistence (and the log) working
            + ("user root\n" if os.geteuid() == 0 else "")
            + "persistence true\n"
            + f"persistence_location {workdir}/\n"
            + "autosave_on_changes true\n"
            + "autosave_interval 1\n"
            + f"log_dest file {workdir}/mosquitto.log\n"
        )
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        assert self.proc is None
        self.proc = await asyncio.create_subprocess_exec(
            "mosquitto", "-c", str(self.conf), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        async with asyncio.timeout(10):
            while True:
                if self.proc.returncode is not None:
                    raise RuntimeError(f"mosquitto exited with {self.proc.returncode}")
                try:
                    _, w = await asyncio.open_connection("127.0.0.1", self.port)
                except OSError:
                    await asyncio.sleep(0.02)
                    continue
                w.close()
                await w.wait_closed()
                return

    async def kill(self) -> None:
        """kill -9: no clean shutdown, no goodbye to clients."""
        assert self.proc is not None
        self.proc.kill()
        await self.proc.wait()
        self.proc = None

    async def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                async with asyncio.timeout(5):
                    await self.proc.wait()
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
            self.proc = None
