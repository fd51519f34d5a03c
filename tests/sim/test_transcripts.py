"""Per scenario, the simulator's AMI events match the real Asterisk transcript (see compare.py
for the exact equivalence), over a real TCP AMI connection, originated as the rig did.

The transcripts are re-recorded from the real Asterisk 22 by the real-Asterisk suite
(tests/asterisk/transcripts.py); that suite also runs these comparisons against a fresh
recording of its own, so a simulator that drifts from the real thing fails either way."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from dialer.ami.transcript import read_transcript
from dialer.sim import SCENARIOS, SimAsterisk

from .amiclient import RawAmi
from .compare import call_events, compare
from .fixtures import RIG_ORIGINATE_TIMEOUT_MS, RecordingAudioSocketServer, reference_dir, rig_dialplan

TIME_SCALE = 0.02  # 50× faster: the 30 s no-answer takes 0.6 s
# Events of different channels stamped within 10 ms of each other may come in either order:
# Asterisk publishes each channel's events from its own thread, and re-recordings on a busy
# machine interleave them differently by a few milliseconds from run to run.
TOLERANCE_S = 0.010

LOCAL = sorted(s.transcript for s in SCENARIOS.values() if s.transcript)
AUDIOSOCKET = [
    "04-early-announcement-cause20",
    "05-early-sit-announcement-cause1",
    "06-person-answers",
    "13-early-busy-announcement-cause17",
]


def _originate_params(path: Path) -> tuple[str, str, str]:
    """(number, ChannelId, context) the rig used, read back from the transcript."""
    transcript = read_transcript(path)
    first = next(m for _t, m in transcript.entries if m.event == "Newchannel")
    response = next(m for _t, m in transcript.entries if m.event == "OriginateResponse")
    return first["Exten"], first["Uniqueid"], response["Context"]


async def run_sim(path: Path, audiosocket_port: int | None) -> list:  # type: ignore[type-arg]
    """The simulator's call events for the call a transcript recorded (same number, ChannelId)."""
    number, channel_id, context = _originate_params(path)
    sim = SimAsterisk(
        time_scale=TIME_SCALE,
        audiosocket_addr=("127.0.0.1", audiosocket_port) if audiosocket_port else None,
        dialplan=rig_dialplan(audiosocket_port or 9099),
    )
    port = await sim.start()
    client = await RawAmi.connect(port)
    try:
        assert (await client.login())["Message"] == "Authentication accepted"
        client.send(
            ("Action", "Originate"),
            ("ActionID", "orig-1"),
            ("Channel", f"Local/{number}@rig-dial/n"),
            ("Context", context),
            ("Exten", "s"),
            ("Priority", "1"),
            ("Async", "true"),
            ("EarlyMedia", "true"),
            ("ChannelId", channel_id),
            ("Timeout", str(RIG_ORIGINATE_TIMEOUT_MS)),
            ("CallerID", "dialer <74950000000>"),
            ("Variable", "DIALER_ATTEMPT=1"),
        )
        queued = await client.wait_for(lambda m: m.action_id == "orig-1" and m.response is not None)
        assert queued["Message"] == "Originate successfully queued"
        await asyncio.wait_for(sim.wait_idle(), 10)
        await client.sync()
        return [m for _t, m in call_events(client.received)]
    finally:
        await client.close()
        await sim.stop()


def assert_same(path: Path, sim_events: list, tolerance_s: float = TOLERANCE_S) -> None:  # type: ignore[type-arg]
    real = call_events(list(read_transcript(path).entries))
    result = compare(real, sim_events, tolerance_s)
    assert result.ok, f"{path.name}:\n" + "\n".join(result.problems[:12])


@pytest.mark.parametrize("stem", LOCAL)
async def test_local_transcript(stem: str) -> None:
    path = reference_dir() / "local" / f"{stem}.txt"
    assert_same(path, await run_sim(path, None))


@pytest.mark.parametrize("stem", AUDIOSOCKET)
async def test_audiosocket_transcript(stem: str) -> None:
    path = reference_dir() / "audiosocket" / f"{stem}.ami.txt"
    server = RecordingAudioSocketServer()
    port = await server.start()
    try:
        events = await run_sim(path, port)
    finally:
        await server.stop()
    assert_same(path, events)
    assert len(server.connections) == 1
    _number, channel_id, _ctx = _originate_params(path)
    assert str(server.connections[0].uuid) == channel_id


def test_every_local_transcript_has_a_scenario() -> None:
    stems = {p.stem for p in (reference_dir() / "local").glob("*.txt")}
    assert stems == set(LOCAL)
