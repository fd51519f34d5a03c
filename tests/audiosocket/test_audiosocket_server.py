"""AudioSocketServer over real TCP on 127.0.0.1 (port 0)."""

from __future__ import annotations

import asyncio
import struct
import uuid
from collections.abc import AsyncIterator

import pytest

from dialer.audiosocket.protocol import HANGUP_FRAME, Kind, encode, encode_audio, encode_uuid
from dialer.audiosocket.server import AudioSocketServer, EndReason

FRAME = 320


class Sink:
    def __init__(self) -> None:
        self.frames: list[tuple[int, bytes]] = []
        self.dtmf: list[str] = []
        self.reasons: list[str] = []
        self.ended = asyncio.Event()
        self.got_frames = asyncio.Event()
        self.want_frames = 1

    def on_frame(self, pcm: bytes, frame_index: int) -> None:
        self.frames.append((frame_index, pcm))
        if len(self.frames) >= self.want_frames:
            self.got_frames.set()

    def on_dtmf(self, digit: str) -> None:
        self.dtmf.append(digit)

    def on_end(self, reason: str) -> None:
        self.reasons.append(reason)
        self.ended.set()


class Registry:
    def __init__(self) -> None:
        self.sinks: dict[uuid.UUID, Sink] = {}

    def add(self) -> tuple[uuid.UUID, Sink]:
        call_id, sink = uuid.uuid4(), Sink()
        self.sinks[call_id] = sink
        return call_id, sink

    def __call__(self, call_id: uuid.UUID) -> Sink | None:
        return self.sinks.get(call_id)


def pcm_frame(tag: int, size: int = FRAME) -> bytes:
    """Recognisable audio: every sample is ``tag``."""
    return struct.pack(f"<{size // 2}h", *([tag] * (size // 2)))


@pytest.fixture
async def setup() -> AsyncIterator[tuple[AudioSocketServer, Registry]]:
    registry = Registry()
    server = AudioSocketServer(registry, host="127.0.0.1", port=0, uuid_timeout_s=0.5)
    await server.start()
    yield server, registry
    await server.close()


async def connect(server: AudioSocketServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", server.port)


async def wait(event: asyncio.Event, timeout_s: float = 3.0) -> None:
    async with asyncio.timeout(timeout_s):
        await event.wait()


async def closed_by_server(reader: asyncio.StreamReader) -> bytes:
    async with asyncio.timeout(3):
        return await reader.read()  # until EOF


async def test_frames_arrive_as_20ms_and_end_when_asterisk_closes(
    setup: tuple[AudioSocketServer, Registry],
) -> None:
    server, registry = setup
    call_id, sink = registry.add()
    _, writer = await connect(server)
    payload = encode_uuid(call_id) + b"".join(encode_audio(pcm_frame(i)) for i in range(10))
    payload += encode_audio(pcm_frame(99, 88))  # Asterisk's short last frame
    writer.write(payload)
    await writer.drain()
    writer.close()
    await wait(sink.ended)
    assert sink.reasons == [EndReason.CLOSED_BY_ASTERISK]
    assert [i for i, _ in sink.frames] == list(range(11))
    assert all(len(pcm) == FRAME for _, pcm in sink.frames)
    assert [pcm for _, pcm in sink.frames[:10]] == [pcm_frame(i) for i in range(10)]
    assert sink.frames[10][1] == pcm_frame(99, 88) + bytes(FRAME - 88), "tail padded with silence"
    assert call_id not in server.active_calls


async def test_arbitrary_tcp_chunking_is_reassembled(setup: tuple[AudioSocketServer, Registry]) -> None:
    server, registry = setup
    call_id, sink = registry.add()
    _, writer = await connect(server)
    # Asterisk frames of 160 bytes (10 ms), written 7 bytes at a time.
    data = encode_uuid(call_id) + b"".join(encode_audio(pcm_frame(i, 160)) for i in range(8))
    for i in range(0, len(data), 7):
        writer.write(data[i : i + 7])
        await writer.drain()
    writer.close()
    await wait(sink.ended)
    assert len(sink.frames) == 4
    assert sink.frames[0][1] == pcm_frame(0, 160) + pcm_frame(1, 160)


async def test_hangup_sends_0x00_then_closes(setup: tuple[AudioSocketServer, Registry]) -> None:
    server, registry = setup
    call_id, sink = registry.add()
    reader, writer = await connect(server)
    writer.write(encode_uuid(call_id) + encode_audio(pcm_frame(1)))
    await writer.drain()
    await wait(sink.got_frames)
    assert await server.hangup(call_id) is True
    assert await closed_by_server(reader) == HANGUP_FRAME
    await wait(sink.ended)
    assert sink.reasons == [EndReason.HUNG_UP_BY_US]
    assert await server.hangup(call_id) is False
    writer.close()


async def test_dtmf_reaches_the_sink(setup: tuple[AudioSocketServer, Registry]) -> None:
    server, registry = setup
    call_id, sink = registry.add()
    _, writer = await connect(server)
    writer.write(encode_uuid(call_id) + encode(Kind.DTMF, b"5") + encode(Kind.DTMF, b"#"))
    writer.close()
    await wait(sink.ended)
    assert sink.dtmf == ["5", "#"]


@pytest.mark.parametrize(
    ("garbage", "reason"),
    [
        (b"\x42\x00\x02ab", "unknown message kind 0x42"),
        (encode(Kind.AUDIO, b"")[:1] + b"\xff\xff", "exceeds"),  # oversized length
        (encode_uuid(uuid.uuid4()), "second UUID"),
        (encode(Kind.AUDIO_16K, pcm_frame(1, 640)), "16000 Hz"),
        (encode(Kind.AUDIO, b"\x01\x02\x03"), "odd length"),
    ],
    ids=["unknown-kind", "oversized", "second-uuid", "wrong-rate", "odd-audio"],
)
async def test_broken_stream_closes_only_that_call(
    setup: tuple[AudioSocketServer, Registry], garbage: bytes, reason: str
) -> None:
    server, registry = setup
    bad_id, bad = registry.add()
    good_id, good = registry.add()
    good.want_frames = 2
    _, g_writer = await connect(server)
    g_writer.write(encode_uuid(good_id) + encode_audio(pcm_frame(1)))
    b_reader, b_writer = await connect(server)
    b_writer.write(encode_uuid(bad_id) + encode_audio(pcm_frame(7)))
    await b_writer.drain()
    await wait(bad.got_frames)
    # (Frames in the *same* read as the garbage are dropped with it: the codec raises before
    # returning the messages it had already cut.)
    b_writer.write(garbage + encode_audio(pcm_frame(8)))
    await b_writer.drain()
    assert await closed_by_server(b_reader) == b""
    await wait(bad.ended)
    assert len(bad.reasons) == 1 and reason in bad.reasons[0]
    assert [pcm for _, pcm in bad.frames] == [pcm_frame(7)], "audio before the garbage was kept"
    # the other call goes on
    g_writer.write(encode_audio(pcm_frame(2)))
    await g_writer.drain()
    await wait(good.got_frames)
    assert [pcm for _, pcm in good.frames] == [pcm_frame(1), pcm_frame(2)]
    assert server.rejected == 1 and good_id in server.active_calls
    g_writer.close()
    b_writer.close()


async def test_truncated_frame_is_reported(setup: tuple[AudioSocketServer, Registry]) -> None:
    server, registry = setup
    call_id, sink = registry.add()
    _, writer = await connect(server)
    writer.write(encode_uuid(call_id) + encode_audio(pcm_frame(3))[: 3 + 100])
    await writer.drain()
    writer.close()
    await wait(sink.ended)
    assert "stream ended inside a frame" in sink.reasons[0]
    assert sink.frames == []


@pytest.mark.parametrize(
    ("opening", "reason_part"),
    [
        (encode_audio(pcm_frame(1)), "AUDIO before the UUID"),
        (encode_uuid(uuid.UUID(int=12345)), "was not originated"),
        (b"\x01\x00\x05abcde", "UUID frame of 5 bytes"),
        (b"GET / HTTP/1.1\r\n\r\n", "unknown message kind"),
    ],
    ids=["audio-first", "unknown-uuid", "short-uuid", "http-garbage"],
)
async def test_bad_openings_are_refused(
    setup: tuple[AudioSocketServer, Registry], opening: bytes, reason_part: str, caplog: pytest.LogCaptureFixture
) -> None:
    server, _ = setup
    reader, writer = await connect(server)
    writer.write(opening)
    await writer.drain()
    assert await closed_by_server(reader) == b""
    assert server.rejected == 1 and not server.active_calls
    assert any(reason_part in r.getMessage() for r in caplog.records)
    writer.close()


async def test_silent_peer_without_uuid_is_dropped(setup: tuple[AudioSocketServer, Registry]) -> None:
    server, _ = setup
    reader, writer = await connect(server)
    assert await closed_by_server(reader) == b""  # uuid_timeout_s = 0.5
    assert server.rejected == 1
    writer.close()


async def test_second_connection_for_a_live_call_is_refused(setup: tuple[AudioSocketServer, Registry]) -> None:
    server, registry = setup
    call_id, sink = registry.add()
    _, w1 = await connect(server)
    w1.write(encode_uuid(call_id) + encode_audio(pcm_frame(1)))
    await w1.drain()
    await wait(sink.got_frames)
    r2, w2 = await connect(server)
    w2.write(encode_uuid(call_id))
    assert await closed_by_server(r2) == b""
    assert call_id in server.active_calls and not sink.ended.is_set()
    w1.close()
    w2.close()
    await wait(sink.ended)


async def test_many_concurrent_calls_keep_their_own_audio(setup: tuple[AudioSocketServer, Registry]) -> None:
    server, registry = setup
    n_calls, n_frames = 40, 25
    calls = [registry.add() for _ in range(n_calls)]

    async def play(k: int, call_id: uuid.UUID) -> None:
        _, writer = await connect(server)
        writer.write(encode_uuid(call_id))
        for i in range(n_frames):
            writer.write(encode_audio(pcm_frame(k * 100 + i)))
            if i % 5 == 0:
                await writer.drain()
                await asyncio.sleep(0)
        await writer.drain()
        writer.close()

    await asyncio.gather(*(play(k, cid) for k, (cid, _) in enumerate(calls)))
    for k, (_, sink) in enumerate(calls):
        await wait(sink.ended)
        assert [pcm for _, pcm in sink.frames] == [pcm_frame(k * 100 + i) for i in range(n_frames)]
        assert sink.reasons == [EndReason.CLOSED_BY_ASTERISK]
    assert server.rejected == 0 and not server.active_calls


async def test_close_ends_live_calls_and_awaits_their_tasks() -> None:
    registry = Registry()
    server = AudioSocketServer(registry, port=0)
    await server.start()
    call_id, sink = registry.add()
    reader, writer = await connect(server)
    writer.write(encode_uuid(call_id) + encode_audio(pcm_frame(1)))
    await writer.drain()
    await wait(sink.got_frames)
    await server.close()
    assert sink.reasons == [EndReason.SERVER_CLOSED]
    assert await closed_by_server(reader) == b""
    assert not server.active_calls
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", int(writer.get_extra_info("peername")[1]))
    writer.close()
