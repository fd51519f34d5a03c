"""The outbox relay: rows the storage wrote inside each state change's transaction are
published to MQTT, QoS 1, strictly in outbox id order, and marked published only after the
broker acknowledged them.

Rows are published exactly as stored: the storage builds every row with
:mod:`dialer.events.payloads`, so each payload already carries its envelope and its ``event_id``
(fixed when the row was written; a re-send repeats it). The relay adds nothing — there are no
rows of an older layout to patch, the outbox schema starts with this one.

Guarantees (docs/events.md): at least once — a crash or an outage between the broker's ack and
``mark_published`` re-sends a row, so consumers deduplicate on ``event_id``; in order per
contact — rows go out one by one in id order and the relay stops at the first failure, so a
later row is never acknowledged before an earlier one of the same contact is.

The relay is one owned task. ``notify()`` wakes it when new rows were committed; a slow safety
poll catches rows written by other processes. The broker being down never loses anything: rows
stay unpublished, one BrokerError line is logged per outage, and the relay reconnects with
jittered back-off.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

import aiomqtt

from dialer.config import MqttSettings
from dialer.errors import BrokerError, InputError
from dialer.events import payloads, topics
from dialer.events.broker import QOS_AT_LEAST_ONCE, Backoff, MqttLink, OutageLog, sleep_unless, utc_now

log = logging.getLogger(__name__)


class OutboxRowLike(Protocol):
    """What the relay reads of an outbox row (storage's ``OutboxRow`` fits structurally)."""

    @property
    def id(self) -> int: ...
    @property
    def topic(self) -> str: ...  # relative to the prefix, see dialer.events.topics
    @property
    def payload(self) -> Mapping[str, Any]: ...  # complete, envelope included (payloads.py)
    @property
    def key(self) -> str | None: ...
    @property
    def created_at(self) -> datetime: ...


class OutboxStore(Protocol):
    """The part of the storage repository the relay needs."""

    async def fetch_unpublished(self, limit: int, /) -> Sequence[OutboxRowLike]:
        """Unpublished rows, lowest id first."""
        ...

    async def mark_published(self, ids: Sequence[int], at: datetime, /) -> None: ...

    async def record_publish_error(self, row_id: int, error: str, /) -> None: ...


def encode(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


class OutboxPublisher:
    """Publishes the outbox, the retained campaign statuses and the worker heartbeat.

    ``worker_id`` names the health topic ``<prefix>/worker/<worker_id>/health``; its Last Will
    (retained ``offline``) tells consumers when the worker vanished without a clean stop.
    """

    def __init__(
        self,
        store: OutboxStore,
        settings: MqttSettings,
        *,
        worker_id: str,
        clock: Callable[[], datetime] = utc_now,
        batch_size: int = 200,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        poll_interval_s: float = 30.0,
        heartbeat_interval_s: float = 30.0,
        publish_timeout_s: float = 10.0,
        health_details: Callable[[], Mapping[str, Any]] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._store = store
        self._prefix = settings.topic_prefix
        self.worker_id = worker_id
        self._health_topic = topics.join(self._prefix, topics.worker_health(worker_id))
        self._clock = clock
        self._batch_size = batch_size
        self._poll_interval_s = poll_interval_s
        self._heartbeat_interval_s = heartbeat_interval_s
        self._health_details = health_details
        self._link = MqttLink(
            settings,
            role="publisher",
            logger=log,
            identifier=settings.client_id,
            clean_session=True,  # the outbox, not the broker session, holds what is unsent
            timeout_s=publish_timeout_s,
            backoff=Backoff(backoff_initial_s, backoff_max_s, rng or random.Random()),
        )
        self._stopping = self._link.stopping
        self._wake = asyncio.Event()
        # Rows the broker can never take (invalid topic, oversized): skipped for this process's
        # life after record_publish_error, so one bad row cannot block every later event.
        self._poisoned: set[int] = set()
        self._statuses: dict[str, Mapping[str, Any]] = {}  # campaign → latest status payload
        self._status_dirty: set[str] = set()
        self._status_sent: dict[str, Mapping[str, Any]] = {}
        self.published_total = 0

    # --- public API ---------------------------------------------------------------------------

    def health_from(self, details: Callable[[], Mapping[str, Any]]) -> None:
        """Where the health payload's details come from (the worker, built after the publisher
        because it notifies it)."""
        self._health_details = details

    def notify(self) -> None:
        """New outbox rows were committed: publish them now instead of at the next poll."""
        self._wake.set()

    def set_campaign_status(self, campaign: str, status: Mapping[str, Any]) -> None:
        """Publish ``status`` (see payloads.campaign_status) retained on
        ``<prefix>/campaign/<campaign>/status`` — only when it differs from the last one sent
        apart from the envelope. Statuses are snapshots, so only the latest is kept."""
        self._statuses[campaign] = status
        if _content(status) != _content(self._status_sent.get(campaign)):
            self._status_dirty.add(campaign)
            self._wake.set()

    @property
    def connected(self) -> bool:
        return self._link.up

    @property
    def last_error(self) -> BrokerError | None:
        """The current outage's error, None while the broker is reachable."""
        return self._link.outage.last_error

    async def wait_connected(self) -> None:
        await self._link.wait_up()

    @property
    def outage(self) -> OutageLog:
        """The link's state: ``failures``, ``last_error`` and a ``changed`` event."""
        return self._link.outage

    async def start(self) -> None:
        self._link.start(self._serve, task_name="outbox-publisher", will=self._will)

    async def stop(self, *, flush_deadline_s: float = 5.0) -> None:
        """Ordered shutdown: stop waiting, publish what is left while the broker answers and
        the deadline allows, announce ``offline``, then cancel whatever is still running.
        Rows not published stay in the outbox for the next start."""
        await self._link.stop(deadline_s=flush_deadline_s)

    # --- the relay ----------------------------------------------------------------------------

    def _will(self) -> aiomqtt.Will:
        body = payloads.worker_health(worker_id=self.worker_id, status=payloads.WorkerStatus.OFFLINE, occurred_at=None)
        body["reason"] = "connection lost"
        return aiomqtt.Will(self._health_topic, encode(body), qos=QOS_AT_LEAST_ONCE, retain=True)

    async def _serve(self, client: aiomqtt.Client) -> None:
        # aiomqtt's only public disconnect signal is its message iterator raising MqttError; the
        # publisher subscribes to nothing, so this watcher exists just to notice a dead
        # connection while idle (and let the Last Will / reconnect happen promptly).
        watcher = asyncio.get_running_loop().create_task(_until_disconnected(client), name="mqtt-watch")
        try:
            await self._serve_until_stopped(client, watcher)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await watcher

    async def _serve_until_stopped(self, client: aiomqtt.Client, watcher: asyncio.Task[None]) -> None:
        loop = asyncio.get_running_loop()
        await self._publish_health(client, payloads.WorkerStatus.ONLINE)
        next_heartbeat = loop.time() + self._heartbeat_interval_s
        link_backoff = self._link.backoff
        store_backoff = Backoff(link_backoff.initial_s, link_backoff.max_s, link_backoff.rng)
        while True:
            self._wake.clear()  # before draining: a notify() during the drain means "go again"
            try:
                await self._drain(client)
                store_backoff.reset()
            except aiomqtt.MqttError:
                raise
            except Exception:
                # The database, not the broker, failed: stay connected and try again later.
                log.exception("outbox read/mark failed; retrying")
                if await sleep_unless(self._stopping, store_backoff.next_delay_s()):
                    break
                continue
            await self._flush_statuses(client)
            if self._stopping.is_set():
                break
            now = loop.time()
            if now >= next_heartbeat:
                await self._publish_health(client, payloads.WorkerStatus.ONLINE)
                next_heartbeat = now + self._heartbeat_interval_s
            timeout = min(next_heartbeat - now, self._poll_interval_s)
            await _wait_any((self._wake, self._stopping), watcher, timeout)
            if watcher.done():
                watcher.result()  # raises the MqttError that ended the connection
                raise aiomqtt.MqttError("connection closed")
        await self._publish_health(client, payloads.WorkerStatus.OFFLINE, reason="stopped")

    async def _drain(self, client: aiomqtt.Client) -> None:
        while True:
            rows = [r for r in await self._store.fetch_unpublished(self._batch_size) if r.id not in self._poisoned]
            if not rows:
                return
            acked: list[int] = []
            try:
                for row in rows:
                    try:
                        topic = topics.join(self._prefix, row.topic)
                        body = encode(row.payload)
                    except (InputError, TypeError, ValueError) as exc:
                        await self._poison(row.id, f"cannot encode: {exc}")
                        continue
                    try:
                        await client.publish(topic, body, qos=QOS_AT_LEAST_ONCE, retain=topics.is_retained(row.topic))
                    except ValueError as exc:  # paho refuses the message itself (e.g. too large)
                        await self._poison(row.id, f"broker refused the message: {exc}")
                        continue
                    except aiomqtt.MqttError as exc:
                        # Stop at the first failure: later rows must not overtake this one.
                        with contextlib.suppress(Exception):
                            await self._store.record_publish_error(row.id, str(exc) or type(exc).__name__)
                        raise
                    acked.append(row.id)
            finally:
                if acked:
                    # Shielded: a stop/cancel mid-batch must not forget what the broker took.
                    await asyncio.shield(self._store.mark_published(acked, self._clock()))
                    self.published_total += len(acked)

    async def _poison(self, row_id: int, reason: str) -> None:
        log.error("outbox row %d can never be published, skipping it: %s", row_id, reason)
        self._poisoned.add(row_id)
        with contextlib.suppress(Exception):
            await self._store.record_publish_error(row_id, reason)

    async def _flush_statuses(self, client: aiomqtt.Client) -> None:
        for campaign in sorted(self._status_dirty):
            status = self._statuses[campaign]
            topic = topics.join(self._prefix, topics.campaign_status(campaign))
            await client.publish(topic, encode(status), qos=QOS_AT_LEAST_ONCE, retain=True)
            self._status_sent[campaign] = status
            if self._statuses[campaign] is status:  # not replaced while we awaited
                self._status_dirty.discard(campaign)

    async def _publish_health(
        self, client: aiomqtt.Client, status: payloads.WorkerStatus, *, reason: str | None = None
    ) -> None:
        details: dict[str, Any] = {}
        if self._health_details is not None and status is payloads.WorkerStatus.ONLINE:
            try:
                details.update(self._health_details())
            except Exception:
                log.exception("health details provider failed")
        if reason:
            details["reason"] = reason
        body = payloads.worker_health(
            worker_id=self.worker_id, status=status, occurred_at=self._clock(), details=details
        )
        await client.publish(self._health_topic, encode(body), qos=QOS_AT_LEAST_ONCE, retain=True)


def _content(status: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A status without its envelope, to tell a real change from a re-stamped copy."""
    if status is None:
        return None
    return {k: v for k, v in status.items() if k not in ("event_id", "occurred_at")}


async def _until_disconnected(client: aiomqtt.Client) -> None:
    async for _message in client.messages:
        pass


async def _wait_any(events: tuple[asyncio.Event, ...], watcher: asyncio.Task[None], timeout_s: float) -> None:
    """Return when one event is set, the watcher ends, or the timeout passes."""
    if any(e.is_set() for e in events) or watcher.done():
        return
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait([*waiters, watcher], timeout=max(timeout_s, 0.0), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
