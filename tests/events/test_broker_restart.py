"""A private Mosquitto killed (kill -9) mid-campaign and restarted on the same port: every
event reaches the subscriber, in id order per contact, none missing (duplicates allowed)."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from dialer.domain.model import ResultCode
from dialer.events import payloads
from dialer.events.commands import CommandProcessor, CommandSubscriber
from dialer.events.publisher import OutboxPublisher

from .support import (
    Collector,
    MemoryCommands,
    MemoryOutbox,
    Mosquitto,
    RecordingHandler,
    publish_raw,
    settings_for,
    wait_until,
)

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]

T0 = datetime(2025, 1, 4, 10, 0, tzinfo=UTC)
CONTACTS = 5


async def produce(store: MemoryOutbox, pub: OutboxPublisher, seq: itertools.count[int], n: int) -> None:
    """Write ``n`` events round-robin over the contacts, as finished attempts would."""
    for _ in range(n):
        i = next(seq)
        contact = i % CONTACTS
        store.add(
            payloads.contact_settled(
                campaign="restart",
                contact_id=contact,
                external_id=f"crm-{contact}",
                e164=None,
                result=ResultCode.UNAVAILABLE,
                incorrect_contact=False,
                attempts_made=i,  # doubles as a global sequence number
                journal="",
                occurred_at=T0 + timedelta(seconds=i),
            )
        )
        pub.notify()
        await asyncio.sleep(0.002)  # events trickle in over the campaign, not all at once


async def test_broker_killed_mid_campaign_loses_nothing_and_keeps_order(own_broker: Mosquitto, prefix: str) -> None:
    mqtt = settings_for("127.0.0.1", own_broker.port, prefix)
    store = MemoryOutbox()
    pub = OutboxPublisher(
        store,
        mqtt,
        worker_id="w1",
        poll_interval_s=3600.0,
        heartbeat_interval_s=3600.0,
        backoff_initial_s=0.05,
        backoff_max_s=0.3,
        publish_timeout_s=2.0,
        batch_size=7,
    )
    seq = itertools.count()
    async with Collector("127.0.0.1", own_broker.port, f"{prefix}/campaign/+/contact", persistent=True) as col:
        await pub.start()
        try:
            await produce(store, pub, seq, 30)
            await col.wait_for(lambda: len(col.messages) >= 30)
            await wait_until(lambda: len(store.published) == 30, store.changed)

            # the collector's session is on disk, as with a production broker's persistent store
            assert (own_broker.workdir / "mosquitto.db").exists()
            await own_broker.kill()
            await produce(store, pub, seq, 30)  # the campaign goes on while the broker is down
            # the relay notices the loss (its watcher or a failed publish)
            await wait_until(lambda: not pub.connected, pub.outage.changed)
            assert len(store.unpublished()) > 0
            assert pub.last_error is not None

            await own_broker.start()
            await produce(store, pub, seq, 30)
            await wait_until(lambda: not store.unpublished(), store.changed, timeout_s=20)
            expected = {r.payload["event_id"] for r in store.rows.values()}
            await col.wait_for(lambda: expected <= {b["event_id"] for b in col.bodies()}, timeout_s=20)
        finally:
            await pub.stop(flush_deadline_s=2)

    rows = sorted(store.rows.values(), key=lambda r: r.id)
    assert len(rows) == 90
    first_seen: dict[str, list[int]] = defaultdict(list)
    seen: set[str] = set()
    for body in col.bodies():
        if body["event_id"] not in seen:
            seen.add(body["event_id"])
            first_seen[body["external_id"]].append(body["attempts_made"])
    for contact in range(CONTACTS):
        expected_seq = [r.payload["attempts_made"] for r in rows if r.key == f"contact:{contact}"]
        assert first_seen[f"crm-{contact}"] == expected_seq  # complete and in outbox order
    duplicates = len(col.messages) - len(seen)
    assert duplicates >= 0
    print(f"\n90 events, {duplicates} duplicate deliveries across the restart")


async def test_command_subscriber_resubscribes_after_broker_restart(own_broker: Mosquitto, prefix: str) -> None:
    mqtt = settings_for("127.0.0.1", own_broker.port, prefix)
    handler = RecordingHandler()
    sub = CommandSubscriber(
        CommandProcessor(MemoryCommands(), handler),
        mqtt,
        backoff_initial_s=0.05,
        backoff_max_s=0.2,
    )
    body = json.dumps({"command_id": "x1", "number": "+74951234567", "kind": "calls"}).encode()
    await sub.start()
    try:
        async with asyncio.timeout(10):
            await sub.wait_subscribed()
        await own_broker.kill()
        await wait_until(lambda: not sub.subscribed, sub.outage.changed)
        own_broker.workdir.joinpath("mosquitto.db").unlink(missing_ok=True)  # a broker that lost every session
        await own_broker.start()
        async with asyncio.timeout(10):
            await sub.wait_subscribed()
        async with Collector("127.0.0.1", own_broker.port, f"{prefix}/cmd/+/+") as col:
            await publish_raw("127.0.0.1", own_broker.port, f"{prefix}/cmd/exclusion", body)
            await col.wait_for(lambda: len(col.messages) == 1)
    finally:
        await sub.stop()
    assert col.messages[0].topic == f"{prefix}/cmd/exclusion/ack"
    assert len(handler.applied) == 1
