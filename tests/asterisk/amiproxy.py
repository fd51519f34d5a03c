"""A TCP proxy between the worker and the pbx's AMI: it records every action the worker sends (the
assertions on "the AMI actions sent") and every event the worker's own AMI user receives (what
its least rights let through), and can cut every connection at once (an AMI drop while the
calls go on, as the simulator's ``DropAmi`` step does).

While the pbx is down, a new client connection is closed at once (connection refused, as
the worker would see without the proxy).
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass

from dialer.ami.protocol import AmiMessage, Parser

from .proxy import LoopbackProxy


@dataclass(frozen=True)
class SentAction:
    at: float  # loop time
    session: int
    message: AmiMessage

    @property
    def name(self) -> str:
        return (self.message.action or "").lower()

    def get(self, key: str) -> str | None:
        return self.message.get(key)


class AmiProxy(LoopbackProxy):
    def __init__(self, upstream_port: int) -> None:
        super().__init__(upstream_port)
        self.actions: list[SentAction] = []
        self.received: list[SentAction] = []  # what the pbx sent to the worker (events, replies)
        self.refused = 0  # client connections closed because the pbx was down
        self._ids = itertools.count(1)
        self._writers: set[asyncio.StreamWriter] = set()

    def of(self, name: str) -> list[SentAction]:
        return [a for a in self.actions if a.name == name.lower()]

    def events(self, name: str) -> list[AmiMessage]:
        """Events of that name the worker's connection received."""
        return [r.message for r in self.received if r.message.event == name]

    def drop_all(self) -> int:
        """Close every connection (both sides) at once; returns how many were open."""
        open_writers = [w for w in self._writers if not w.is_closing()]
        for w in open_writers:
            w.close()
        return len(open_writers)

    async def close(self) -> None:
        self.drop_all()
        await super().close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            self.refused += 1
            writer.close()
            return
        session = next(self._ids)
        self._writers |= {writer, up_writer}
        loop = asyncio.get_running_loop()
        parser = Parser()

        async def client_to_pbx() -> None:
            while data := await reader.read(65536):
                now = loop.time()
                self.actions.extend(SentAction(now, session, m) for m in parser.feed(data))
                up_writer.write(data)

        back = Parser(expect_banner=True)

        async def pbx_to_client() -> None:
            while data := await up_reader.read(65536):
                now = loop.time()
                self.received.extend(SentAction(now, session, m) for m in back.feed(data))
                writer.write(data)

        try:
            await self._pump(client_to_pbx(), pbx_to_client())
        finally:
            for w in (writer, up_writer):
                w.close()
                self._writers.discard(w)
