"""Prometheus metrics of one worker (``[metrics] listen = "127.0.0.1:9108"``).

:class:`Metrics` owns a registry of its own (several workers in one test process never share
counters). Two kinds of numbers:

* **events**, counted when they happen — the worker calls :meth:`Metrics.attempt_finished`,
  :meth:`Metrics.originated`, :meth:`Metrics.claimed`; the speech service reports each decode
  through :meth:`Metrics.asr_decoded`;
* **state**, read when Prometheus scrapes — live calls by phase, AMI connection per server, the
  speech queue, the outbox backlog, recording disk use — from the sources the composition root
  hands to :meth:`Metrics.watch`. The endpoint is served on the event loop (no thread), so
  reading the worker's state needs no lock; only the outbox query and the disk walk wait.

Names and units follow Prometheus conventions: ``dialer_`` prefix, base units (seconds, bytes),
``_total`` for counters. docs/metrics.md lists them; deploy/grafana and deploy/prometheus use them.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dialer.domain.deciding import deciding_signal, decision_from_audio_ms
from dialer.domain.model import CallClass, Evidence, Outcome

log = logging.getLogger(__name__)

# Decision latencies: a machine hung up within a second or two is the goal; forced ones take 30 s+.
LATENCY_BUCKETS_S = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0, 34.0, 60.0)
DEAD_AIR_BUCKETS_S = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)
DECODE_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
CLAIM_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

SCRAPE_QUERY_TIMEOUT_S = 2.0


class SessionTiming(Protocol):
    """What the metrics read of a finished call's session (dialer.session.session.CallSession)."""

    decided_at_ms: int | None
    audio_offset_ms: int | None

    @property
    def trace(self) -> Iterable[Any]: ...  # Step(at_ms, kind, text)


def decision_latencies_ms(session: SessionTiming) -> tuple[int | None, int | None]:
    """(from the start of the audio, after the discriminating word) to the decision, in ms.

    The discriminating word is the first phrase match the session noted (an ``asr`` step saying
    "match"); None where there was no audio or no such match."""
    decided = session.decided_at_ms
    if decided is None:
        return None, None
    from_audio = decision_from_audio_ms(decided, session.audio_offset_ms)
    after_word = None
    for step in session.trace:
        if step.at_ms > decided:
            break
        if step.kind == "asr" and "match" in step.text and "no phrase matched" not in step.text:
            after_word = decided - step.at_ms
            break
    return from_audio, after_word


def outcome_label(outcome: Outcome) -> str:
    if not outcome.counts_as_attempt:
        return "not_counted"
    return "settled" if outcome.settled else "retry"


@dataclass
class Sources:
    """Where scrape-time state comes from (all optional: a test may watch only some)."""

    live_phases: Callable[[], Iterable[str]] | None = None  # the phase of each live call
    ami_states: Callable[[], Iterable[tuple[str, str]]] | None = None  # (server, connection state)
    asr_queue: Callable[[], int] | None = None  # decode jobs waiting or running
    outbox: Callable[[], Awaitable[tuple[int, datetime | None]]] | None = None  # (events, oldest created)
    recording_dir: Path | None = None
    clock: Callable[[], datetime] | None = None  # for the outbox's oldest age


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.attempts = Counter(
            "dialer_attempts", "Attempts finished, by call class and outcome", ["call_class", "outcome"], registry=r
        )
        self.decisions = Counter("dialer_decisions", "Attempts by the signal that decided them", ["signal"], registry=r)
        self.decision_latency = Histogram(
            "dialer_decision_latency_seconds",
            "Time to the decision, since the start of the audio or since the discriminating word",
            ["since"],
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.dead_air = Histogram(
            "dialer_dead_air_seconds",
            "Calls handed to operators: silence on the far end from its greeting's end to the hand-over",
            buckets=DEAD_AIR_BUCKETS_S,
            registry=r,
        )
        self.handovers = Counter(
            "dialer_handovers", "Persons handed to operators, by result (answered or lost)", ["result"], registry=r
        )
        self.asr_decode = Histogram(
            "dialer_asr_decode_seconds", "Wall time of one recognizer decode job", buckets=DECODE_BUCKETS_S, registry=r
        )
        self.originates = Counter(
            "dialer_originates", "Originate requests, by AMI server and result", ["server", "result"], registry=r
        )
        self.claim_latency = Histogram(
            "dialer_claim_latency_seconds",
            "Wall time of one claim of due contacts",
            buckets=CLAIM_BUCKETS_S,
            registry=r,
        )
        self.sources = Sources()
        self._state = _StateCollector(self)
        r.register(self._state)
        self._server: asyncio.Server | None = None

    # ---- events (called by the worker and the speech service) ----------------------------------

    def attempt_finished(self, evidence: Evidence, outcome: Outcome, session: SessionTiming | None) -> None:
        self.attempts.labels(evidence.call_class.value, outcome_label(outcome)).inc()
        self.decisions.labels(deciding_signal(evidence.call_class, evidence.reason, evidence.answered)).inc()
        if evidence.dead_air_ms is not None:
            self.dead_air.observe(evidence.dead_air_ms / 1000)
        if evidence.call_class is CallClass.PERSON_LOST:
            self.handovers.labels("lost").inc()
        elif evidence.queue_wait_ms is not None:
            self.handovers.labels("answered").inc()
        # From the start of the audio: the number the attempt row stores (evidence.decision_ms).
        if evidence.decision_ms is not None:
            self.decision_latency.labels("audio_start").observe(evidence.decision_ms / 1000)
        if session is not None:
            _, after_word = decision_latencies_ms(session)
            if after_word is not None:
                self.decision_latency.labels("discriminating_word").observe(after_word / 1000)

    def originated(self, server: str | None, *, ok: bool) -> None:
        self.originates.labels(server or "none", "ok" if ok else "failed").inc()

    def claimed(self, seconds: float) -> None:
        self.claim_latency.observe(seconds)

    def asr_decoded(self, seconds: float) -> None:
        self.asr_decode.observe(seconds)

    # ---- state ---------------------------------------------------------------------------------

    def watch(self, **sources: Any) -> None:
        """Name where scrape-time state comes from (fields of :class:`Sources`)."""
        for k, v in sources.items():
            if not hasattr(self.sources, k):
                raise TypeError(f"unknown metrics source {k!r}")
            setattr(self.sources, k, v)

    async def exposition(self) -> bytes:
        """The text format, after the state that needs waiting for (the database, the disk)."""
        await self._state.refresh()
        return generate_latest(self.registry)

    # ---- the endpoint --------------------------------------------------------------------------

    async def serve(self, host: str, port: int) -> int:
        """Listen for scrapes on the event loop; the port actually bound (0 = any free)."""
        self._server = await asyncio.start_server(self._handle, host, port)
        bound = int(self._server.sockets[0].getsockname()[1])
        log.info("metrics on http://%s:%d/metrics", host, bound)
        return bound

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
            parts = head.split(b"\r\n", 1)[0].split()
            path = parts[1].split(b"?")[0] if len(parts) >= 2 else b""
            if parts[:1] == [b"GET"] and path in (b"/metrics", b"/"):
                status, ctype, body = "200 OK", CONTENT_TYPE_LATEST, await self.exposition()
            else:
                status, ctype, body = "404 Not Found", "text/plain", b"try /metrics\n"
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass  # a client that went away or sent garbage gets nothing
        finally:
            writer.close()


class _StateCollector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics
        self._outbox: tuple[int, datetime | None] | None = None
        self._disk_bytes: int | None = None

    async def refresh(self) -> None:
        s = self._m.sources
        if s.outbox is not None:
            try:
                self._outbox = await asyncio.wait_for(s.outbox(), SCRAPE_QUERY_TIMEOUT_S)
            except Exception as exc:  # a scrape must not fail because the database is away
                log.debug("metrics: outbox backlog unavailable: %s", exc)
                self._outbox = None
        if s.recording_dir is not None:
            self._disk_bytes = await asyncio.to_thread(disk_bytes, s.recording_dir)

    def describe(self) -> Iterable[Metric]:
        return []  # state families vary with the sources; not checked at registration

    def collect(self) -> Iterator[Metric]:
        s = self._m.sources
        phases = GaugeMetricFamily("dialer_live_calls", "Live calls of this worker, by phase", labels=["phase"])
        counts: dict[str, int] = {}
        for phase in s.live_phases() if s.live_phases is not None else ():
            counts[phase] = counts.get(phase, 0) + 1
        for phase, n in sorted(counts.items()):
            phases.add_metric([phase], n)
        yield phases
        up = GaugeMetricFamily("dialer_ami_up", "1 while logged in to the AMI server, else 0", labels=["server"])
        for server, state in s.ami_states() if s.ami_states is not None else ():
            up.add_metric([server], 1.0 if state == "connected" else 0.0)
        yield up
        if s.asr_queue is not None:
            yield GaugeMetricFamily(
                "dialer_asr_queue_depth", "Recognizer decode jobs waiting or running", value=s.asr_queue()
            )
        if self._outbox is not None:
            events, oldest = self._outbox
            yield GaugeMetricFamily("dialer_outbox_backlog_events", "Events not yet published to MQTT", value=events)
            age = (s.clock() - oldest).total_seconds() if oldest is not None and s.clock is not None else 0.0
            yield GaugeMetricFamily(
                "dialer_outbox_oldest_age_seconds", "Age of the oldest unpublished event", value=max(0.0, age)
            )
        if self._disk_bytes is not None:
            yield GaugeMetricFamily(
                "dialer_recording_disk_bytes", "Bytes of call recordings on disk", value=self._disk_bytes
            )


def disk_bytes(root: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            try:
                total += os.stat(os.path.join(dirpath, name)).st_size
            except OSError:
                continue  # removed by retention meanwhile
    return total
