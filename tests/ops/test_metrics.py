"""Prometheus metrics (issue 13): the recorder's arithmetic, the endpoint, and a running worker
against the simulator scraped twice — the numbers move with the calls."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from dialer import app
from dialer.domain.deciding import SIGNALS, deciding_signal, decision_from_audio_ms
from dialer.domain.model import CallClass, Evidence, Outcome
from dialer.metrics import Metrics, decision_latencies_ms
from dialer.storage.db import Database
from dialer.storage.tables import attempts

from ..worker.harness import harness, seed


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def total(values: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (n, lab), v in values.items() if n == name and want <= set(lab))


@dataclass
class Step:
    at_ms: int
    kind: str
    text: str


@dataclass
class FakeSession:
    decided_at_ms: int | None
    audio_offset_ms: int | None
    trace: list[Step] = field(default_factory=list)


def test_decision_latencies_from_audio_start_and_after_the_word() -> None:
    s = FakeSession(
        2300,
        500,
        [Step(100, "net", "progress"), Step(1900, "asr", "confirmed partial match ann_switched_off «выключен»")],
    )
    assert decision_latencies_ms(s) == (1800, 400)
    assert decision_latencies_ms(FakeSession(2300, None, [Step(10, "asr", "heard «алло» (no phrase matched)")])) == (
        None,
        None,
    )
    assert decision_latencies_ms(FakeSession(None, 0)) == (None, None)
    # the audio-start figure is the one attempts store (decision_ms): never negative, None without audio
    assert decision_from_audio_ms(2300, 500) == 1800
    assert decision_from_audio_ms(400, 500) == 0
    assert decision_from_audio_ms(2300, None) is None and decision_from_audio_ms(None, 500) is None


def test_deciding_signal_groups_reasons() -> None:
    assert deciding_signal(CallClass.ANN_SWITCHED_OFF, "announcement «выключен» recognised in early media") == "phrase"
    assert deciding_signal(CallClass.BUSY, "busy tone in early media") == "tone"
    assert deciding_signal(CallClass.BUSY, "DialEnd BUSY, cause 17 (User busy)") == "network"
    assert deciding_signal(CallClass.NO_NUMBER, "") == "before_dialling"
    assert deciding_signal(CallClass.UNSURE_ANSWERED, "no decision after 90 s", True) == "timeout"
    assert deciding_signal(CallClass.PERSON, "person: short greeting then a pause", True) == "speech_pattern"
    assert deciding_signal("no_such_class", "x") in SIGNALS


def test_attempt_finished_counts_class_outcome_signal_dead_air_and_handover() -> None:
    m = Metrics()
    ev = Evidence(
        CallClass.PERSON, 0.9, "person: hello", answered=True, dead_air_ms=250, queue_wait_ms=1200, decision_ms=1000
    )
    out = Outcome(True, None, False, None, "29/11 x", "person")
    m.attempt_finished(ev, out, FakeSession(1250, 250))
    lost = Evidence(CallClass.PERSON_LOST, 0.9, "person: hello; lost: caller hung up", answered=True)
    m.attempt_finished(lost, Outcome(False, None, False, None, "", "person_lost"), None)
    v = samples(generate(m))
    assert total(v, "dialer_attempts_total", call_class="person", outcome="settled") == 1
    assert total(v, "dialer_attempts_total", call_class="person_lost", outcome="retry") == 1
    assert total(v, "dialer_decisions_total", signal="speech_pattern") == 2
    assert total(v, "dialer_dead_air_seconds_sum") == 0.25
    assert total(v, "dialer_handovers_total", result="answered") == 1
    assert total(v, "dialer_handovers_total", result="lost") == 1
    assert total(v, "dialer_decision_latency_seconds_count", since="audio_start") == 1
    assert total(v, "dialer_decision_latency_seconds_sum", since="audio_start") == 1.0


def generate(m: Metrics) -> str:
    return asyncio.run(m.exposition()).decode()


async def test_state_is_read_at_scrape_time(tmp_path: Path) -> None:
    m = Metrics()
    phases = ["ringing", "answered", "answered"]
    now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)

    async def outbox() -> tuple[int, datetime | None]:
        return 7, now - timedelta(seconds=42)

    (tmp_path / "rec").mkdir()
    (tmp_path / "rec" / "a.pcm").write_bytes(b"x" * 1000)
    m.watch(
        live_phases=lambda: phases,
        ami_states=lambda: [("pbx1", "connected"), ("pbx2", "connecting")],
        asr_queue=lambda: 3,
        outbox=outbox,
        clock=lambda: now,
        recording_dir=tmp_path / "rec",
    )
    v = samples((await m.exposition()).decode())
    assert total(v, "dialer_live_calls", phase="answered") == 2
    assert total(v, "dialer_ami_up", server="pbx1") == 1 and total(v, "dialer_ami_up", server="pbx2") == 0
    assert total(v, "dialer_asr_queue_depth") == 3
    assert total(v, "dialer_outbox_backlog_events") == 7
    assert total(v, "dialer_outbox_oldest_age_seconds") == 42
    assert total(v, "dialer_recording_disk_bytes") == 1000
    phases.clear()
    v = samples((await m.exposition()).decode())
    assert total(v, "dialer_live_calls") == 0


async def http_get(port: int, path: str = "/metrics") -> tuple[str, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    head, _, body = data.decode().partition("\r\n\r\n")
    return head.split("\r\n")[0], body


async def test_endpoint_serves_metrics_and_404() -> None:
    m = Metrics()
    port = await m.serve("127.0.0.1", 0)
    try:
        status, body = await http_get(port)
        assert status == "HTTP/1.1 200 OK"
        assert "dialer_attempts_total" in body or "# TYPE dialer_attempts counter" in body
        status, _ = await http_get(port, "/other")
        assert status.startswith("HTTP/1.1 404")
    finally:
        await m.aclose()


BUSY, NO_ANSWER, PERSON, UNALLOC = "+79990000001", "+79990000003", "+79990000006", "+79990000009"


async def test_running_worker_scraped_values_move(tmp_path: Path) -> None:
    async with harness(tmp_path) as (h, ami_port, as_port):
        numbers = [BUSY, NO_ANSWER, PERSON, UNALLOC]
        await seed(h.settings, numbers, h.clock.now())
        rt = await app.build(h.settings, h.options(ami_port, as_port, metrics_listen=("127.0.0.1", 0)))
        stop = asyncio.Event()
        task = asyncio.create_task(app.run(rt, stop))
        try:
            await h.wait_finished(1, 30)  # the busy number: at once; no answer rings for 30 simulated s
            assert rt.metrics_port is not None
            _, body = await http_get(rt.metrics_port)
            first = samples(body)
            await h.wait_finished(len(numbers), 30)
            _, body = await http_get(rt.metrics_port)
            last = samples(body)
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
    assert 1 <= total(first, "dialer_attempts_total") < len(numbers)
    assert total(last, "dialer_attempts_total") == len(numbers)
    assert total(last, "dialer_attempts_total", call_class="busy") == 1
    assert total(last, "dialer_originates_total", server="sim", result="ok") == len(numbers)
    assert total(last, "dialer_decisions_total") == len(numbers)
    assert total(last, "dialer_ami_up", server="sim") == 1
    assert total(last, "dialer_claim_latency_seconds_count") > total(first, "dialer_claim_latency_seconds_count")
    # no MQTT in this run: the attempts' events wait in the outbox
    assert total(last, "dialer_outbox_backlog_events") > total(first, "dialer_outbox_backlog_events")
    # the audio-start latency histogram observes exactly what the attempts store (decision_ms)
    db = Database(h.settings.database_url)
    try:
        async with db.read() as conn:
            stored = [r[0] for r in await conn.execute(sa.select(attempts.c.decision_ms))]
    finally:
        await db.dispose()
    with_audio = [ms for ms in stored if ms is not None]
    assert len(stored) == len(numbers) and with_audio  # the person and the announcement had audio
    assert total(last, "dialer_decision_latency_seconds_count", since="audio_start") == len(with_audio)
    assert total(last, "dialer_decision_latency_seconds_sum", since="audio_start") == pytest.approx(
        sum(with_audio) / 1000
    )


async def test_asr_service_reports_each_decode_and_its_queue() -> None:
    from dialer.asr.service import AsrService

    decodes: list[float] = []
    service = AsrService(object(), max_workers=1)  # type: ignore[arg-type]  # the engine is not used by run()
    service.on_decode_s = decodes.append
    seen_jobs: list[int] = []

    def job() -> int:
        seen_jobs.append(service.jobs)
        return 7

    try:
        assert await service.run(job) == 7
    finally:
        await service.aclose()
    assert len(decodes) == 1 and decodes[0] >= 0
    assert seen_jobs == [1] and service.jobs == 0


async def test_metrics_port_taken_is_one_config_error(tmp_path: Path) -> None:
    import socket

    import pytest

    from dialer.errors import ConfigError

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        async with harness(tmp_path) as (h, ami_port, as_port):
            await seed(h.settings, [BUSY], h.clock.now())
            rt = await app.build(h.settings, h.options(ami_port, as_port, metrics_listen=("127.0.0.1", port)))
            with pytest.raises(ConfigError, match=f"metrics.listen: cannot listen on 127.0.0.1:{port}"):
                await app.run(rt, asyncio.Event())
