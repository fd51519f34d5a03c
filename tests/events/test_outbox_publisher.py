"""The outbox relay against the real Mosquitto (shared broker, random prefix per test; a
private broker where the test must stop or start it)."""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest

from dialer.config import MqttSettings
from dialer.domain.model import ResultCode
from dialer.events import payloads
from dialer.events.publisher import OutboxPublisher
from dialer.storage.outbox import OutboxEvent

from .support import Collector, MemoryOutbox, Mosquitto, free_port, settings_for, wait_until

pytestmark = pytest.mark.mqtt

T0 = datetime(2025, 1, 4, 10, 0, tzinfo=UTC)


def event(n: int, contact: int = 1, campaign: str = "c1") -> OutboxEvent:
    return payloads.contact_settled(
        campaign=campaign,
        contact_id=contact,
        external_id=f"crm-{contact}",
        e164="+79161234567",
        result=ResultCode.COMPLETED,
        incorrect_contact=False,
        attempts_made=n,
        journal=f"line {n}",
        occurred_at=T0 + timedelta(seconds=n),
    )


def has_count(col: Collector, n: int) -> bool:
    return len(col.messages) == n


@asynccontextmanager
async def running(pub: OutboxPublisher, flush_deadline_s: float = 5.0) -> AsyncIterator[OutboxPublisher]:
    await pub.start()
    try:
        yield pub
    finally:
        await pub.stop(flush_deadline_s=flush_deadline_s)


def publisher(store: MemoryOutbox, mqtt: MqttSettings, **kw: object) -> OutboxPublisher:
    # A safety poll of an hour: if notify() did not wake the relay, these tests would time out.
    opts: dict[str, object] = {
        "worker_id": "w1",
        "poll_interval_s": 3600.0,
        "heartbeat_interval_s": 3600.0,
        "backoff_initial_s": 0.05,
        "backoff_max_s": 0.2,
        "publish_timeout_s": 2.0,
    }
    opts.update(kw)
    return OutboxPublisher(store, mqtt, **opts)  # type: ignore[arg-type]


async def test_rows_are_published_in_id_order_and_marked_after_ack(mqtt: MqttSettings) -> None:
    store = MemoryOutbox()
    async with Collector(mqtt.host, mqtt.port, f"{mqtt.topic_prefix}/#") as col:
        async with running(publisher(store, mqtt, batch_size=3)) as pub:
            rows = [store.add(event(n, contact=n % 3)) for n in range(10)]
            pub.notify()
            await col.wait_for(lambda: len(col.bodies("/contact")) == 10)
            await wait_until(lambda: not store.unpublished(), store.changed)
        got = col.bodies("/contact")
        assert [b["event_id"] for b in got] == [r.payload["event_id"] for r in rows]
        assert got[0] == rows[0].payload  # payload intact through JSON
        topics = {m.topic for m in col.messages if m.topic.endswith("/contact")}
        assert topics == {f"{mqtt.topic_prefix}/campaign/c1/contact"}
        assert not any(m.retain for m in col.messages if m.topic.endswith("/contact"))
        assert set(store.published) == {r.id for r in rows} and store.errors == []
        assert pub.published_total == 10


async def test_rows_written_later_are_woken_by_notify(mqtt: MqttSettings) -> None:
    store = MemoryOutbox()
    async with Collector(mqtt.host, mqtt.port, f"{mqtt.topic_prefix}/campaign/#") as col:
        async with running(publisher(store, mqtt)) as pub:
            await pub.wait_connected()
            for n in range(1, 4):
                store.add(event(n))
                pub.notify()
                await col.wait_for(partial(has_count, col, n), timeout_s=5)
    assert [b["attempts_made"] for b in col.bodies()] == [1, 2, 3]


async def test_health_online_retained_then_offline_on_stop(mqtt: MqttSettings) -> None:
    store = MemoryOutbox()
    health = f"{mqtt.topic_prefix}/worker/w1/health"
    pub = publisher(store, mqtt, health_details=lambda: {"live_calls": 3})
    async with Collector(mqtt.host, mqtt.port, health) as col:
        async with running(pub):
            await col.wait_for(lambda: len(col.messages) >= 1)
        await col.wait_for(lambda: len(col.messages) >= 2)
    online, offline = col.bodies()[:2]
    assert online["status"] == "online" and online["live_calls"] == 3 and online["worker_id"] == "w1"
    assert offline["status"] == "offline" and offline["reason"] == "stopped"
    # Retained: a consumer arriving later still learns the worker's state.
    async with Collector(mqtt.host, mqtt.port, health) as late:
        await late.wait_for(lambda: len(late.messages) == 1)
    assert late.messages[0].retain and late.messages[0].body["status"] == "offline"


async def test_heartbeat_repeats(mqtt: MqttSettings) -> None:
    store = MemoryOutbox()
    health = f"{mqtt.topic_prefix}/worker/w1/health"
    async with Collector(mqtt.host, mqtt.port, health) as col:
        async with running(publisher(store, mqtt, heartbeat_interval_s=0.05)):
            await col.wait_for(lambda: len(col.messages) >= 3)
    assert [b["status"] for b in col.bodies()[:3]] == ["online"] * 3


async def test_last_will_says_offline_when_the_connection_dies(mqtt: MqttSettings) -> None:
    store = MemoryOutbox()
    health = f"{mqtt.topic_prefix}/worker/w1/health"
    pub = publisher(store, mqtt)
    async with Collector(mqtt.host, mqtt.port, health) as col:
        async with running(pub):
            await col.wait_for(lambda: len(col.messages) >= 1)
            # Sever the TCP connection under the client, as a crash or network loss would.
            client = pub._link.client  # the live connection, reached on purpose
            assert client is not None
            sock = client._client.socket()
            assert isinstance(sock, socket.socket)
            sock.shutdown(socket.SHUT_RDWR)
            await col.wait_for(lambda: any(b["status"] == "offline" for b in col.bodies()))
            # …and the relay reconnects by itself and says online again.
            await col.wait_for(lambda: col.bodies()[-1]["status"] == "online")
    statuses = [b["status"] for b in col.bodies()]
    will = next(b for b in col.bodies() if b["status"] == "offline")
    assert will["reason"] == "connection lost" and will["occurred_at"] is None
    assert statuses[:3] == ["online", "offline", "online"]


async def test_campaign_status_is_retained_and_sent_only_on_change(mqtt: MqttSettings) -> None:
    store = MemoryOutbox()
    status_topic = f"{mqtt.topic_prefix}/campaign/Опрос ТО/status"

    def status(pending: int, at: datetime) -> dict[str, object]:
        return payloads.campaign_status(campaign="Опрос ТО", occurred_at=at, contacts={"pending": pending})

    async with Collector(mqtt.host, mqtt.port, f"{mqtt.topic_prefix}/campaign/+/status") as col:
        async with running(publisher(store, mqtt)) as pub:
            pub.set_campaign_status("Опрос ТО", status(5, T0))
            await col.wait_for(lambda: len(col.messages) == 1)
            pub.set_campaign_status("Опрос ТО", status(5, T0 + timedelta(seconds=1)))  # same content
            pub.set_campaign_status("Опрос ТО", status(4, T0 + timedelta(seconds=2)))
            await col.wait_for(lambda: len(col.messages) == 2)
            # a marker row proves the relay went round its loop after the unchanged status
            store.add(event(1))
            pub.notify()
            await wait_until(lambda: not store.unpublished(), store.changed)
    assert [b["contacts"]["pending"] for b in col.bodies()] == [5, 4]
    assert col.messages[0].topic == status_topic
    async with Collector(mqtt.host, mqtt.port, status_topic) as late:
        await late.wait_for(lambda: len(late.messages) == 1)
    assert late.messages[0].retain and late.messages[0].body["contacts"] == {"pending": 4}


async def test_unpublishable_row_is_recorded_and_skipped(mqtt: MqttSettings) -> None:
    store = MemoryOutbox()
    good1 = store.add(event(1))
    bad = store.add_raw("campaign/#/attempt", {"event_id": "x"}, "contact:1")
    good2 = store.add(event(2))
    async with Collector(mqtt.host, mqtt.port, f"{mqtt.topic_prefix}/campaign/#") as col:
        async with running(publisher(store, mqtt)):
            await col.wait_for(lambda: len(col.messages) == 2)
            await wait_until(lambda: set(store.published) == {good1.id, good2.id}, store.changed)
    assert [e[0] for e in store.errors] == [bad.id] and "invalid MQTT topic" in store.errors[0][1]
    assert store.unpublished() == [bad.id]


async def test_database_failure_is_retried_without_losing_rows(mqtt: MqttSettings) -> None:
    store = MemoryOutbox()
    store.fetch_failures = 2
    row = store.add(event(1))
    async with running(publisher(store, mqtt)):
        await wait_until(lambda: row.id in store.published, store.changed)
    assert store.fetch_calls >= 3


async def test_unreachable_broker_logs_once_and_events_wait(
    tmp_path: Path, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing listens on the port at first: one ERROR line (the BrokerError), rows stay; then a
    broker appears on that port and the rows go out, with one INFO line saying so."""
    caplog.set_level(logging.DEBUG, logger="dialer.events")
    port = free_port()
    mqtt = settings_for("127.0.0.1", port, prefix)
    store = MemoryOutbox()
    rows = [store.add(event(n)) for n in range(3)]
    pub = publisher(store, mqtt, backoff_initial_s=0.02, backoff_max_s=0.05)
    async with running(pub):
        await wait_until(lambda: pub.outage.failures >= 4, pub.outage.changed)
        assert pub.last_error is not None and not pub.connected
        assert store.unpublished() == [r.id for r in rows]
        errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(errors) == 1, [r.getMessage() for r in errors]
        msg = errors[0].getMessage()
        assert f"MQTT broker 127.0.0.1:{port} unreachable" in msg and "events wait in the outbox" in msg
        broker = Mosquitto(tmp_path, port)
        await broker.start()
        try:
            await wait_until(lambda: not store.unpublished(), store.changed)
            assert pub.connected and pub.last_error is None
        finally:
            await pub.stop(flush_deadline_s=2)
            await broker.stop()
    assert sum("reachable again" in r.getMessage() for r in caplog.records) == 1
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1


async def test_stop_during_outage_is_prompt_and_keeps_rows(prefix: str) -> None:
    mqtt = settings_for("127.0.0.1", free_port(), prefix)
    store = MemoryOutbox()
    store.add(event(1))
    pub = publisher(store, mqtt, backoff_initial_s=5.0, backoff_max_s=5.0)
    await pub.start()
    loop = asyncio.get_running_loop()
    await wait_until(lambda: pub.last_error is not None, pub.outage.changed)
    started = loop.time()
    await pub.stop(flush_deadline_s=3.0)
    assert loop.time() - started < 1.0  # the back-off sleep is cut short by stop()
    assert store.unpublished() == [1]


async def test_worker_id_with_slash_cannot_leak_into_other_topics(mqtt: MqttSettings) -> None:
    pub = OutboxPublisher(MemoryOutbox(), mqtt, worker_id=f"host/{uuid.uuid4().hex[:4]}")
    assert pub._health_topic.startswith(f"{mqtt.topic_prefix}/worker/host%2F")
