"""The AudioSocket keepalive: silence after a quiet spell, never while audio flows.

Asterisk's AudioSocket() ends the call when neither side sent a frame for 2 s; the worker's
server answers a quiet line with 20 ms silence frames. Against the real Asterisk:
tests/asterisk/test_keepalive.py; against the simulator's model of the 2 s rule: below.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from dialer.audiosocket.protocol import HEADER, Kind, encode_audio, encode_uuid
from dialer.audiosocket.server import KEEPALIVE_S, MIN_KEEPALIVE_S, AudioSocketServer, keepalive_for
from dialer.sim import SimAsterisk
from dialer.sim import scenarios as sc
from tests.sim.amiclient import RawAmi

from .test_audiosocket_server import Registry, pcm_frame

QUIET_S = 0.2


@pytest.fixture
async def quiet() -> AsyncIterator[tuple[AudioSocketServer, Registry]]:
    registry = Registry()
    server = AudioSocketServer(registry, host="127.0.0.1", port=0, keepalive_s=QUIET_S)
    await server.start()
    try:
        yield server, registry
    finally:
        await server.close()


async def read_message(reader: asyncio.StreamReader, timeout_s: float) -> tuple[int, bytes]:
    head = await asyncio.wait_for(reader.readexactly(HEADER.size), timeout_s)
    kind, length = HEADER.unpack(head)
    return kind, await asyncio.wait_for(reader.readexactly(length), timeout_s)


async def test_a_quiet_line_gets_silence_frames(quiet: tuple[AudioSocketServer, Registry]) -> None:
    server, registry = quiet
    call_id, sink = registry.add()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(encode_uuid(call_id))
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        got = [await read_message(reader, 5.0) for _ in range(3)]
        elapsed = loop.time() - started
        assert [(kind, payload) for kind, payload in got] == [(Kind.AUDIO, bytes(320))] * 3
        assert elapsed >= 3 * QUIET_S * 0.9  # one per quiet period, not a burst
        assert server.keepalives_sent >= 3
        assert not sink.frames  # the keepalive is ours, never fed to the analysis
    finally:
        writer.close()
    await asyncio.wait_for(sink.ended.wait(), 5)


async def test_no_keepalive_while_audio_flows(quiet: tuple[AudioSocketServer, Registry]) -> None:
    server, registry = quiet
    call_id, sink = registry.add()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(encode_uuid(call_id))
    received: list[tuple[int, bytes]] = []
    first = asyncio.Event()

    async def collect() -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                received.append(await read_message(reader, 60.0))
                first.set()

    collector = asyncio.create_task(collect())
    try:
        # 1 s of audio in 20 ms frames, far more often than the 0.2 s quiet period.
        for i in range(50):
            writer.write(encode_audio(pcm_frame(i + 1)))
            await asyncio.sleep(0.02)
        sink.want_frames = 50
        await asyncio.wait_for(sink.got_frames.wait(), 5)
        assert received == []
        # then the line goes quiet: the keepalive starts
        await asyncio.wait_for(first.wait(), 5)
        assert received[0] == (Kind.AUDIO, bytes(320))
    finally:
        collector.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await collector
        writer.close()


async def test_no_keepalive_after_our_hangup(quiet: tuple[AudioSocketServer, Registry]) -> None:
    server, registry = quiet
    call_id, sink = registry.add()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(encode_uuid(call_id))
    writer.write(encode_audio(pcm_frame(7)))
    await asyncio.wait_for(sink.got_frames.wait(), 5)
    assert await server.hangup(call_id)
    rest = await asyncio.wait_for(reader.read(), 5)  # until the server closes
    assert rest == bytes(HEADER.pack(Kind.HANGUP, 0))
    assert server.keepalives_sent == 0
    writer.close()


async def test_keepalive_can_be_disabled() -> None:
    registry = Registry()
    server = AudioSocketServer(registry, host="127.0.0.1", port=0, keepalive_s=None)
    await server.start()
    call_id, _sink = registry.add()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(encode_uuid(call_id))
        with pytest.raises(TimeoutError):
            await read_message(reader, 3 * QUIET_S)
        assert server.keepalives_sent == 0
    finally:
        writer.close()
        await server.close()
    with pytest.raises(ValueError, match="keepalive_s"):
        AudioSocketServer(registry, keepalive_s=0)


def test_keepalive_scales_with_simulated_time_but_not_below_the_floor() -> None:
    assert keepalive_for(1.0) == KEEPALIVE_S < 2.0  # inside Asterisk's 2 s
    assert keepalive_for(0.5) == KEEPALIVE_S * 0.5
    assert keepalive_for(0.001) == MIN_KEEPALIVE_S


EARLY_GAP = sc.Scenario(
    name="early_media_gap",
    title="early media, 5 s of nothing, then an announcement",
    steps=(sc.Progress(), sc.Wait(5.0), sc.Play("unreachable"), sc.Hangup(20)),
    number="99",
)


@pytest.mark.parametrize("keepalive", [True, False], ids=["keepalive", "no-keepalive"])
async def test_simulator_early_media_gap_survives_only_with_keepalive(keepalive: bool) -> None:
    """The simulator models Asterisk's 2 s rule (scaled): without the keepalive the quiet early
    media ends the call from our side; with it the announcement arrives and the network ends it."""
    scale = 0.1
    registry = Registry()
    server = AudioSocketServer(
        registry, host="127.0.0.1", port=0, keepalive_s=keepalive_for(scale) if keepalive else None
    )
    await server.start()
    sim = SimAsterisk(
        time_scale=scale, audiosocket_addr=("127.0.0.1", server.port), number_map={"79990000099": EARLY_GAP}
    )
    await sim.start()
    ami = await RawAmi.connect(sim.port)
    try:
        await ami.login()
        call_id, sink = registry.add()
        ami.send(
            ("Action", "Originate"),
            ("Channel", "Local/79990000099@dialer-dial/n"),
            ("Context", "dialer-analyse"),
            ("Exten", "s"),
            ("Priority", "1"),
            ("Async", "true"),
            ("EarlyMedia", "true"),
            ("ChannelId", str(call_id)),
        )
        hangup = await ami.wait_for(lambda m: m.event == "Hangup" and m.get("Uniqueid") == str(call_id), deadline_s=10)
        await asyncio.wait_for(sink.ended.wait(), 5)
        speech = [pcm for _i, pcm in sink.frames if any(pcm)]
        if keepalive:
            assert hangup["Cause"] == "20"  # the network ended it after the announcement
            assert speech, "the announcement after the gap reached the analysis"
        else:
            assert hangup["Cause"] == "16"  # our side gave up after 2 s (scaled) of silence
            assert not speech
    finally:
        await ami.close()
        await sim.stop()
        await server.close()
