"""A minimal raw AMI client for the simulator's tests (no panoramisk quirks in the way)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools

from dialer.ami.protocol import AmiMessage, Parser, serialize


class RawAmi:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.parser = Parser(expect_banner=True)
        self.received: list[tuple[float, AmiMessage]] = []
        self._ids = itertools.count(1)
        self._new = asyncio.Condition()
        self._task = asyncio.create_task(self._read())
        self.closed = asyncio.Event()

    @classmethod
    async def connect(cls, port: int) -> RawAmi:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                data = await self.reader.read(65536)
                if not data:
                    break
                messages = self.parser.feed(data)
                async with self._new:
                    self.received.extend((loop.time(), m) for m in messages)
                    self._new.notify_all()
        except (ConnectionError, OSError):
            pass
        finally:
            self.closed.set()
            async with self._new:
                self._new.notify_all()

    def send(self, *pairs: tuple[str, str]) -> None:
        self.writer.write(serialize(pairs))

    async def wait_for(self, predicate, deadline_s: float = 5.0) -> AmiMessage:  # type: ignore[no-untyped-def]
        async def _wait() -> AmiMessage:
            checked = 0
            async with self._new:
                while True:
                    for _t, m in self.received[checked:]:
                        if predicate(m):
                            return m
                    checked = len(self.received)
                    if self.closed.is_set():
                        raise ConnectionError("AMI connection closed while waiting")
                    await self._new.wait()

        return await asyncio.wait_for(_wait(), deadline_s)

    async def action(self, name: str, *pairs: tuple[str, str], deadline_s: float = 5.0) -> AmiMessage:
        action_id = f"t-{next(self._ids)}"
        self.send(("Action", name), ("ActionID", action_id), *pairs)
        return await self.wait_for(lambda m: m.action_id == action_id and m.response is not None, deadline_s=deadline_s)

    async def login(self, username: str = "dialer", secret: str = "sim") -> AmiMessage:
        self.send(("Action", "Login"), ("ActionID", "login"), ("Username", username), ("Secret", secret))
        return await self.wait_for(lambda m: m.action_id == "login")

    async def sync(self) -> None:
        """Every event sent before now has arrived (a Ping's reply follows them on the wire)."""
        await self.action("Ping")

    def events(self) -> list[tuple[float, AmiMessage]]:
        return [(t, m) for t, m in self.received if m.event is not None]

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()
