"""The simulator's AudioSocket side against a recording server, compared with the real
tests/asterisk/transcripts/audiosocket/*.frames.log timing (scaled)."""

from __future__ import annotations

import asyncio
import itertools
import statistics
import uuid
from pathlib import Path

import pytest

from dialer.audiosocket.protocol import Kind
from dialer.sim import SimAsterisk
from dialer.sim import scenarios as sc

from .amiclient import RawAmi
from .fixtures import Received, RecordingAudioSocketServer, read_frames_log, reference_dir


def frame_facts(log: list[Received]) -> dict[str, float]:
    """The shape of one AudioSocket stream (times in the log's own seconds)."""
    assert log[0].kind is Kind.UUID and log[0].length == 16, "the UUID comes first"
    assert log[-1].kind is None, "the socket is closed by the Asterisk side"
    assert all(r.kind in (Kind.UUID, Kind.AUDIO, None) for r in log), "Asterisk never sends HANGUP/ERROR"
    audio = [r for r in log if r.kind is Kind.AUDIO]
    assert all(0 < r.length <= 320 for r in audio)
    gaps = [b.t - a.t for a, b in itertools.pairwise(audio)]
    # Pace from frame 30 on: the first frames may be flushed together when the socket attaches.
    steady = audio[30:]
    media_s = sum(r.length for r in steady[:-1]) / 16000
    return {
        "first_audio_after_uuid_s": audio[0].t - log[0].t,
        "median_gap_s": statistics.median(gaps),
        # wall time per second of audio: 1.0 = real-time pacing (robust to catch-up bursts)
        "pace": (steady[-1].t - steady[0].t) / media_s,
        "close_after_last_frame_s": log[-1].t - audio[-1].t,
        "short_frames": sum(1 for r in audio if r.length < 320),  # one per file playback
        "last_frame_short": float(audio[-1].length < 320),
        "frames": len(audio),
    }


SCALE = 0.1
CASES = {
    "04-early-announcement-cause20": "79990000004",
    "05-early-sit-announcement-cause1": "79990000005",
    "06-person-answers": "79990000006",
    "13-early-busy-announcement-cause17": "79990000013",
}


@pytest.mark.parametrize("stem", sorted(CASES))
async def test_frames_match_the_reference_log(stem: str) -> None:
    real = frame_facts(read_frames_log(reference_dir() / "audiosocket" / f"{stem}.frames.log"))
    server = RecordingAudioSocketServer()
    sim, ami, channel_id = await _call(CASES[stem], SCALE, server)
    try:
        await asyncio.wait_for(sim.wait_idle(), 10)
        conn = server.connections[0]
        await asyncio.wait_for(conn.done.wait(), 2)
        assert str(conn.uuid) == channel_id
        got = frame_facts(conn.log)
    finally:
        await _finish(sim, ami, server)
    assert got["short_frames"] == real["short_frames"]
    assert got["last_frame_short"] == real["last_frame_short"]
    assert real["median_gap_s"] == pytest.approx(0.020, abs=0.001)
    assert got["pace"] == pytest.approx(real["pace"] * SCALE, rel=0.1)
    # early media: within 20 ms; 06: after 0.5 s of nothing (scaled, plus event-loop slack)
    assert got["first_audio_after_uuid_s"] == pytest.approx(real["first_audio_after_uuid_s"] * SCALE, abs=0.015)
    assert got["close_after_last_frame_s"] < 0.02 + real["close_after_last_frame_s"] * SCALE


async def _call(
    number: str,
    scale: float,
    server: RecordingAudioSocketServer,
    number_map: dict[str, str | sc.Scenario] | None = None,
) -> tuple[SimAsterisk, RawAmi, str]:
    port = await server.start()
    sim = SimAsterisk(time_scale=scale, audiosocket_addr=("127.0.0.1", port), number_map=number_map)
    await sim.start()
    ami = await RawAmi.connect(sim.port)
    await ami.login()
    channel_id = str(uuid.uuid4())
    ami.send(
        ("Action", "Originate"),
        ("ActionID", "o"),
        ("Channel", f"Local/{number}@dialer-dial/n"),
        ("Context", "dialer-analyse"),
        ("Exten", "s"),
        ("Priority", "1"),
        ("Async", "true"),
        ("EarlyMedia", "true"),
        ("ChannelId", channel_id),
        ("CallerID", "dialer <74950000000>"),
    )
    await ami.wait_for(lambda m: m.event == "OriginateResponse", deadline_s=10)
    return sim, ami, channel_id


async def _finish(sim: SimAsterisk, ami: RawAmi, server: RecordingAudioSocketServer) -> None:
    await ami.close()
    await sim.stop()
    await server.stop()


async def test_answered_call_audio_starts_after_the_answer_and_worker_hangup_runs_next_priority() -> None:
    scale = 0.1
    server = RecordingAudioSocketServer(hangup_after_frames=30)
    sim, ami, channel_id = await _call("79990000006", scale, server)
    try:
        await asyncio.wait_for(sim.wait_idle(), 10)
        await ami.sync()
        conn = server.connections[0]
        await asyncio.wait_for(conn.done.wait(), 2)
        audio = [r for r in conn.log if r.kind is Kind.AUDIO]
        assert audio[0].t - conn.log[0].t == pytest.approx(0.5 * scale, abs=0.03)  # 0.5 s of nothing
        assert len(audio) >= 30 and conn.log[-1].kind is None
        l1 = [m for _t, m in ami.events() if m.get("Uniqueid") == channel_id]
        tail = [(m.event, m.get("Application")) for m in l1][-3:]
        # the AudioSocket app returned and ;1 went on to priority 2: Hangup()
        assert tail == [("Newexten", "Hangup"), ("SoftHangupRequest", None), ("Hangup", None)]
        assert l1[-1]["Cause"] == "16" and l1[-3]["Context"] == "dialer-analyse" and l1[-3]["Priority"] == "2"
        assert sim.live_channels() == []
    finally:
        await _finish(sim, ami, server)


async def test_worker_closing_the_socket_ends_the_app_too() -> None:
    server = RecordingAudioSocketServer(close_after_frames=5)
    sim, ami, channel_id = await _call("79990000004", 0.1, server)  # early media, cause 20 much later
    try:
        await asyncio.wait_for(sim.wait_idle(), 10)
        await ami.sync()
        hangups = {m["Uniqueid"]: m["Cause"] for _t, m in ami.events() if m.event == "Hangup"}
        # ended from our side while the trunk was still in early media: no cause 20 anywhere
        assert hangups[channel_id] == "16" and "20" not in hangups.values()
        dial_ends = [m["DialStatus"] for _t, m in ami.events() if m.event == "DialEnd" and "Channel" in m]
        assert dial_ends == ["CANCEL"]
    finally:
        await _finish(sim, ami, server)


async def test_two_seconds_without_traffic_end_the_app() -> None:
    quiet = sc.Scenario("quiet", "answers, sends nothing", (sc.Answer(), sc.Wait(30.0), sc.Hangup(16)), "99")
    server = RecordingAudioSocketServer()
    scale = 0.1  # idle limit 2 s → 0.2 s; the far end would hang up only after 3 s
    sim, ami, channel_id = await _call("70000000001", scale, server, {"70000000001": quiet})
    try:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await asyncio.wait_for(sim.wait_idle(), 5)
        assert loop.time() - t0 < 1.5
        await ami.sync()
        l1 = [m for _t, m in ami.events() if m.get("Uniqueid") == channel_id]
        assert l1[-1].event == "Hangup"
        # -1 from the app: the channel hangs up without running priority 2
        assert not [m for m in l1 if m.event == "Newexten" and m.get("Application") == "Hangup"]
    finally:
        await _finish(sim, ami, server)


async def test_no_audiosocket_server_listening_hangs_up_the_channel() -> None:
    server = RecordingAudioSocketServer()
    port = await server.start()
    await server.stop()  # the port is closed now
    sim = SimAsterisk(time_scale=0.05, audiosocket_addr=("127.0.0.1", port))
    await sim.start()
    ami = await RawAmi.connect(sim.port)
    try:
        await ami.login()
        ami.send(
            ("Action", "Originate"),
            ("ActionID", "o"),
            ("Channel", "Local/79990000007@dialer-dial/n"),
            ("Context", "dialer-analyse"),
            ("Exten", "s"),
            ("Async", "true"),
            ("EarlyMedia", "true"),
            ("ChannelId", str(uuid.uuid4())),
        )
        await ami.wait_for(lambda m: m.event == "OriginateResponse")
        await asyncio.wait_for(sim.wait_idle(), 5)
        assert sim.live_channels() == []
    finally:
        await ami.close()
        await sim.stop()


def test_clips_and_manifest_are_committed_and_small() -> None:
    data = Path(sc.__file__).parent / "data"
    total = sum(p.stat().st_size for p in data.iterdir())
    assert total < 1_500_000
    from dialer.sim.audio import clip, manifest

    for name, entry in manifest().items():
        c = clip(name)
        assert c.text == entry["text"] and c.cls and 0.5 < c.duration_s < 10
        assert len(c.pcm) % 2 == 0
