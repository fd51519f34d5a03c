"""A TCP proxy between Asterisk's AudioSocket() and the worker's AudioSocket server that can cut
one call's connection mid-call (both directions at once, as a broken network path would)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from dialer.audiosocket.protocol import Decoder, Kind

from .proxy import LoopbackProxy


@dataclass
class Link:
    call_id: uuid.UUID | None = None
    audio_frames: int = 0
    cut: bool = False
    closed: asyncio.Event = field(default_factory=asyncio.Event)


class AudioSocketProxy(LoopbackProxy):
    """``cut_after(call_id)`` → after how many audio frames from Asterisk to cut that call (None:
    never); asked once the call's UUID has gone through."""

    def __init__(self, upstream_port: int, cut_after: Callable[[uuid.UUID], int | None]) -> None:
        super().__init__(upstream_port)
        self._cut_after = cut_after
        self.links: list[Link] = []
        self.cut_done = asyncio.Event()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link = Link()
        self.links.append(link)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            link.closed.set()
            return
        decoder = Decoder()
        limit: list[int | None] = [None]

        async def from_asterisk() -> None:
            while data := await reader.read(4096):
                for message in decoder.feed(data):
                    if message.kind is Kind.UUID:
                        link.call_id = message.uuid
                        limit[0] = self._cut_after(message.uuid)
                    elif message.kind is Kind.AUDIO:
                        link.audio_frames += 1
                up_writer.write(data)
                if limit[0] is not None and link.audio_frames >= limit[0]:
                    link.cut = True
                    return

        async def from_worker() -> None:
            while data := await up_reader.read(4096):
                writer.write(data)

        try:
            await self._pump(from_asterisk(), from_worker())
        finally:
            for w in (writer, up_writer):
                if link.cut:
                    # A broken path: reset, no orderly close.
                    transport = w.transport
                    with contextlib.suppress(Exception):
                        transport.abort()
                w.close()
            link.closed.set()
            if link.cut:
                self.cut_done.set()
