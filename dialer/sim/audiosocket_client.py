"""The Asterisk side of AudioSocket (apps/app_audiosocket.c), as the simulator plays it.

Connects to the worker's AudioSocket server, sends the UUID first, then whatever audio the
channel reads (20 ms slin frames, paced by the caller); audio the server sends back is read and
discarded. It never sends HANGUP itself: on channel hangup it just closes the socket. The app
returns when the server sends HANGUP, closes, or when nothing moved either way for 2 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import uuid as uuid_mod

from dialer.audiosocket.protocol import Decoder, Kind, encode_audio, encode_uuid
from dialer.errors import AudioSocketError

log = logging.getLogger(__name__)

INACTIVITY_S = 2.0


class EndReason(enum.StrEnum):
    SERVER_HANGUP = "server sent HANGUP"
    SERVER_CLOSED = "server closed the socket"
    INACTIVITY = "no traffic for 2 s"
    PROTOCOL = "bad message from the server"
    CHANNEL_HANGUP = "channel hung up"


class AudioSocketLeg:
    """One AudioSocket connection for one channel."""

    def __init__(self, *, uuid: str, inactivity_s: float = INACTIVITY_S) -> None:
        self.uuid = uuid
        self._inactivity_s = inactivity_s
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._loop = asyncio.get_running_loop()
        self._last_activity = self._loop.time()
        self.ended: asyncio.Future[EndReason] = self._loop.create_future()

    async def connect(self, host: str, port: int) -> None:
        """Open the socket and send the UUID (raises OSError when nobody listens)."""
        value = uuid_mod.UUID(self.uuid)  # ChannelId must be a UUID for AudioSocket
        self._reader, self._writer = await asyncio.open_connection(host, port)
        self._writer.write(encode_uuid(value))
        self._touch()
        self._tasks.append(asyncio.create_task(self._read_loop(), name=f"audiosocket-read-{self.uuid}"))
        self._tasks.append(asyncio.create_task(self._watchdog(), name=f"audiosocket-idle-{self.uuid}"))

    @property
    def open(self) -> bool:
        return self._writer is not None and not self.ended.done()

    def send_audio(self, pcm: bytes) -> None:
        if self._writer is None or self.ended.done() or self._writer.is_closing():
            return
        self._writer.write(encode_audio(pcm))
        self._touch()

    def _touch(self) -> None:
        self._last_activity = self._loop.time()

    def _end(self, reason: EndReason) -> None:
        if not self.ended.done():
            self.ended.set_result(reason)

    async def _read_loop(self) -> None:
        assert self._reader is not None
        decoder = Decoder()
        try:
            while True:
                data = await self._reader.read(4096)
                if not data:
                    self._end(EndReason.SERVER_CLOSED)
                    return
                self._touch()
                for message in decoder.feed(data):
                    if message.kind is Kind.HANGUP:
                        self._end(EndReason.SERVER_HANGUP)
                        return
                    # Audio from the worker is played to the far end at once; here: discarded.
        except AudioSocketError as exc:
            log.warning("audiosocket %s: %s", self.uuid, exc)
            self._end(EndReason.PROTOCOL)
        except (ConnectionError, OSError):
            self._end(EndReason.SERVER_CLOSED)

    async def _watchdog(self) -> None:
        # A deadline re-armed by traffic: wakes at most once per inactivity period.
        while not self.ended.done():
            remaining = self._last_activity + self._inactivity_s - self._loop.time()
            if remaining <= 0:
                self._end(EndReason.INACTIVITY)
                return
            await asyncio.sleep(remaining)

    async def close(self) -> None:
        """Close the socket from the Asterisk side (no HANGUP message, as Asterisk does)."""
        self._end(EndReason.CHANNEL_HANGUP)
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        for task in self._tasks:
            if task is not current:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._tasks.clear()
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await self._writer.wait_closed()
