"""AudioSocket server (asyncio streams): Asterisk connects per call and streams slin audio.

Per connection: the first message must be the UUID (``AudioSocket(${UNIQUEID},…)`` on the ``;1``
half, i.e. the attempt id); ``on_connect(uuid)`` returns the sink of that attempt, or None for a
UUID nobody originated. Audio is re-cut into exact 20 ms frames (320 bytes of 8 kHz slin) for the
analysis, whatever sizes Asterisk sends; the last short frame is padded with silence.

A broken peer (unknown kind, oversized or truncated frame, audio before the UUID, a second UUID,
an unknown UUID, a rate other than 8 kHz) gets its connection closed with a logged reason; the
server and every other call go on. The sink hears ``on_end(reason)`` exactly once.

Keepalive: Asterisk's AudioSocket() application gives up when neither side has sent a frame for
2 s (``MAX_WAIT_TIMEOUT_MSEC`` in apps/app_audiosocket.c) and hangs the channel up: early media
without RTP (a carrier that signals progress and plays nothing yet) would end the call. So once
a connection has had no traffic either way for ``keepalive_s`` (0.5 s), the server sends one
20 ms frame of silence, and again every ``keepalive_s`` while the line stays quiet. Asterisk
plays it into the channel, which nobody hears. It costs nothing while audio flows, and it leaves
1.5 s of margin for an event loop that is late under load.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from dialer.audiosocket.protocol import (
    AUDIO_RATES_HZ,
    HANGUP_FRAME,
    MAX_PAYLOAD_BYTES,
    SLIN8K_FRAME_BYTES,
    Decoder,
    Kind,
    Message,
    encode_audio,
)
from dialer.errors import AudioSocketError
from dialer.logging import call_log

log = logging.getLogger(__name__)

READ_CHUNK_BYTES = 4096
KEEPALIVE_S = 0.5  # well inside Asterisk's 2 s of allowed silence on an AudioSocket connection
MIN_KEEPALIVE_S = 0.05
SILENCE_FRAME = encode_audio(bytes(SLIN8K_FRAME_BYTES))


def keepalive_for(time_scale: float) -> float:
    """The keepalive period when time runs ``time_scale`` times as fast (the simulator scales
    Asterisk's 2 s as well); floored so that a compressed demo does not flood the socket."""
    return max(KEEPALIVE_S * time_scale, MIN_KEEPALIVE_S)


class AudioSink(Protocol):
    """Where one call's audio goes (the worker's per-call audio pipeline)."""

    def on_frame(self, pcm: bytes, frame_index: int) -> None:
        """320 bytes of 16-bit LE 8 kHz mono; ``frame_index`` × 20 ms = offset from the start."""

    def on_dtmf(self, digit: str) -> None: ...

    def on_end(self, reason: str) -> None:
        """The stream is over (Asterisk closed it, we hung up, or it was broken)."""


OnConnect = Callable[[uuid.UUID], AudioSink | None]


class EndReason:
    """Reasons given to ``on_end`` and the log (stable strings, greppable)."""

    CLOSED_BY_ASTERISK = "closed by asterisk"
    HUNG_UP_BY_US = "hung up by us"
    SERVER_CLOSED = "server closed"
    PEER_ERROR = "asterisk sent an error"
    PEER_HANGUP = "asterisk sent hangup"
    SINK_FAILED = "audio sink failed"


@dataclass(eq=False)
class _Conn:
    peer: str
    writer: asyncio.StreamWriter
    call_id: uuid.UUID | None = None
    sink: AudioSink | None = None
    frames: int = 0
    pending: bytearray = field(default_factory=bytearray)
    hangup_sent: bool = False
    ended: bool = False
    last_traffic: float = 0.0  # loop time of the last message either way (keepalive)
    keepalive: asyncio.TimerHandle | None = None
    keepalives_sent: int = 0


class AudioSocketServer:
    """Owns one listening socket and one task per connection; :meth:`close` ends them all."""

    def __init__(
        self,
        on_connect: OnConnect,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        uuid_timeout_s: float = 2.0,
        max_payload_bytes: int = MAX_PAYLOAD_BYTES,
        keepalive_s: float | None = KEEPALIVE_S,
    ) -> None:
        """``keepalive_s``: silence is sent after this long without traffic either way (None: never)."""
        if keepalive_s is not None and keepalive_s <= 0:
            raise ValueError("keepalive_s must be positive (or None to disable the keepalive)")
        self._on_connect = on_connect
        self._host = host
        self._port = port
        self._uuid_timeout_s = uuid_timeout_s
        self._max_payload = max_payload_bytes
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._by_call: dict[uuid.UUID, _Conn] = {}
        self._closing = False
        self._keepalive_s = keepalive_s
        self.rejected = 0  # connections closed for a protocol problem (metrics/tests)
        self.keepalives_sent = 0  # silence frames sent to keep quiet calls alive (metrics/tests)

    @property
    def port(self) -> int:
        if self._server is None:
            raise AudioSocketError("AudioSocket server not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def address(self) -> str:
        return f"{self._host}:{self.port}"

    @property
    def active_calls(self) -> frozenset[uuid.UUID]:
        return frozenset(self._by_call)

    async def start(self) -> int:
        self._closing = False
        self._server = await asyncio.start_server(self._accept, self._host, self._port)
        log.info("AudioSocket listening on %s", self.address)
        return self.port

    async def close(self) -> None:
        """Stop accepting, end every connection (their sinks hear ``server closed``), await."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def hangup(self, call_id: uuid.UUID, timeout_s: float = 1.0) -> bool:
        """Send the 0x00 HANGUP message and close: Asterisk's AudioSocket() returns and the
        dialplan goes on (to Hangup). False if that call has no connection."""
        conn = self._by_call.get(call_id)
        if conn is None or conn.writer.is_closing():
            return False
        conn.hangup_sent = True
        self._stop_keepalive(conn)
        conn.writer.write(HANGUP_FRAME)
        with contextlib.suppress(ConnectionError, TimeoutError):
            await asyncio.wait_for(conn.writer.drain(), timeout_s)
        conn.writer.close()
        return True

    async def send_audio(self, call_id: uuid.UUID, pcm: bytes) -> bool:
        """Play slin audio to the call (Asterisk plays it at once, unpaced)."""
        conn = self._by_call.get(call_id)
        if conn is None or conn.writer.is_closing():
            return False
        for i in range(0, len(pcm), SLIN8K_FRAME_BYTES):
            conn.writer.write(encode_audio(pcm[i : i + SLIN8K_FRAME_BYTES]))
        conn.last_traffic = asyncio.get_running_loop().time()
        await conn.writer.drain()
        return True

    # -- per connection ------------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if self._closing:
            writer.close()
            return
        self._tasks.add(task)
        peer = writer.get_extra_info("peername")
        conn = _Conn(peer=f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer), writer=writer)
        reason = EndReason.CLOSED_BY_ASTERISK
        try:
            reason = await self._serve(conn, reader)
        except asyncio.CancelledError:
            reason = EndReason.SERVER_CLOSED
            if not self._closing:
                raise
        except AudioSocketError as exc:
            reason = str(exc)
            self.rejected += 1
            log.warning("AudioSocket %s (call %s): closing: %s", conn.peer, conn.call_id or "-", exc)
        except ConnectionError as exc:
            reason = f"connection error: {exc}"
        finally:
            writer.close()
            self._finish(conn, reason)
            self._tasks.discard(task)
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(self, conn: _Conn, reader: asyncio.StreamReader) -> str:
        decoder = Decoder(self._max_payload)
        try:
            first = await asyncio.wait_for(self._read_until_message(reader, decoder), self._uuid_timeout_s)
        except TimeoutError:
            raise AudioSocketError(f"no UUID within {self._uuid_timeout_s}s") from None
        if first is None:
            raise AudioSocketError("connection closed before the UUID")
        messages = first
        if messages[0].kind is not Kind.UUID:
            raise AudioSocketError(f"{messages[0].kind.name} before the UUID")
        self._bind(conn, messages[0].uuid)
        self._traffic(conn)
        messages = messages[1:]
        while True:
            for msg in messages:
                end = self._handle(conn, msg)
                if end is not None:
                    return end
            decoder.raise_if_failed()  # good frames before a broken one were delivered above
            data = await reader.read(READ_CHUNK_BYTES)
            if not data:
                decoder.close()  # raises on a truncated frame
                return EndReason.HUNG_UP_BY_US if conn.hangup_sent else EndReason.CLOSED_BY_ASTERISK
            self._traffic(conn)
            messages = decoder.feed(data)

    async def _read_until_message(self, reader: asyncio.StreamReader, decoder: Decoder) -> list[Message] | None:
        while True:
            data = await reader.read(READ_CHUNK_BYTES)
            if not data:
                decoder.close()
                return None
            messages = decoder.feed(data)
            if messages:
                return messages

    def _bind(self, conn: _Conn, call_id: uuid.UUID) -> None:
        if call_id in self._by_call:
            raise AudioSocketError(f"a second connection for call {call_id}")
        sink = self._on_connect(call_id)
        if sink is None:
            raise AudioSocketError(f"UUID {call_id} was not originated by this worker")
        conn.call_id, conn.sink = call_id, sink
        self._by_call[call_id] = conn
        call_log(log, "audio_connected", call_id, str(call_id), peer=conn.peer)

    def _handle(self, conn: _Conn, msg: Message) -> str | None:
        kind = msg.kind
        if kind is Kind.AUDIO:
            if len(msg.payload) % 2:
                raise AudioSocketError(f"audio payload of odd length {len(msg.payload)}")
            conn.pending += msg.payload
            while len(conn.pending) >= SLIN8K_FRAME_BYTES:
                frame = bytes(conn.pending[:SLIN8K_FRAME_BYTES])
                del conn.pending[:SLIN8K_FRAME_BYTES]
                self._deliver(conn, frame)
            return None
        if kind in AUDIO_RATES_HZ:
            raise AudioSocketError(f"audio at {AUDIO_RATES_HZ[kind]} Hz; the analysis expects 8000 Hz slin")
        if kind is Kind.UUID:
            raise AudioSocketError("a second UUID on the same connection")
        if kind is Kind.DTMF:
            digit = msg.payload.decode("ascii", "replace")[:1]
            if conn.sink is not None and digit:
                self._call_sink(conn, lambda s: s.on_dtmf(digit))
            return None
        if kind is Kind.ERROR:
            log.warning("AudioSocket call %s: Asterisk reported an error %r", conn.call_id, msg.payload[:32])
            return EndReason.PEER_ERROR
        if kind is Kind.HANGUP:
            return EndReason.PEER_HANGUP
        raise AudioSocketError(f"unexpected message kind {kind.name}")

    def _deliver(self, conn: _Conn, frame: bytes) -> None:
        index = conn.frames
        conn.frames += 1
        self._call_sink(conn, lambda s: s.on_frame(frame, index))

    def _call_sink(self, conn: _Conn, fn: Callable[[AudioSink], None]) -> None:
        assert conn.sink is not None
        try:
            fn(conn.sink)
        except Exception as exc:
            log.exception("AudioSocket call %s: sink failed", conn.call_id)
            raise AudioSocketError(f"{EndReason.SINK_FAILED}: {exc!r}") from exc

    # -- keepalive ----------------------------------------------------------------------------------

    def _traffic(self, conn: _Conn) -> None:
        """Something came from Asterisk: the quiet period starts again."""
        conn.last_traffic = asyncio.get_running_loop().time()
        if conn.keepalive is None and self._keepalive_s is not None and not conn.hangup_sent:
            self._arm_keepalive(conn)

    def _arm_keepalive(self, conn: _Conn) -> None:
        assert self._keepalive_s is not None
        loop = asyncio.get_running_loop()
        conn.keepalive = loop.call_at(conn.last_traffic + self._keepalive_s, self._keepalive, conn)

    def _keepalive(self, conn: _Conn) -> None:
        conn.keepalive = None
        if conn.ended or conn.hangup_sent or conn.writer.is_closing() or self._keepalive_s is None:
            return
        now = asyncio.get_running_loop().time()
        # A timer armed before the last traffic fires early: re-arm from the last traffic instead.
        if now - conn.last_traffic >= self._keepalive_s * 0.95:
            conn.writer.write(SILENCE_FRAME)
            conn.keepalives_sent += 1
            self.keepalives_sent += 1
            conn.last_traffic = now
        self._arm_keepalive(conn)

    def _stop_keepalive(self, conn: _Conn) -> None:
        if conn.keepalive is not None:
            conn.keepalive.cancel()
            conn.keepalive = None

    def _finish(self, conn: _Conn, reason: str) -> None:
        if conn.ended:
            return
        conn.ended = True
        self._stop_keepalive(conn)
        if conn.call_id is not None and self._by_call.get(conn.call_id) is conn:
            del self._by_call[conn.call_id]
        if conn.sink is None:
            return
        if conn.pending:
            # The last frame Asterisk sends is short; pad it so every frame is 20 ms.
            tail = bytes(conn.pending) + bytes(SLIN8K_FRAME_BYTES - len(conn.pending))
            conn.pending.clear()
            with contextlib.suppress(AudioSocketError):
                self._deliver(conn, tail)
        call_log(
            log,
            "audio_ended",
            conn.call_id,
            str(conn.call_id),
            reason=reason,
            frames=conn.frames,
            keepalives=conn.keepalives_sent,
        )
        try:
            conn.sink.on_end(reason)
        except Exception:
            log.exception("AudioSocket call %s: sink on_end failed", conn.call_id)
