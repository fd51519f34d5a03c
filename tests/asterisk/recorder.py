"""Recording real AMI transcripts in the reference format (the one dialer.ami.transcript reads).

A transcript is every AMI message one client received from its Login to shortly after the
call's last Hangup, each preceded by ``# t=S`` (seconds since the Originate was sent; messages
before it are stamped 0.000), the first block starting with the banner line. The recording
client logs in with the kit user (``read = all``, so VarSet/Newexten noise is included, as in
production) and sends the rig's actions itself, so their responses are part of the transcript.

A call is over when every channel whose Linkedid is the call's ChannelId has hung up and the
OriginateResponse has arrived; messages that arrive within ``LINGER_S`` after that (the last
DeviceStateChange) are kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from dialer.ami.protocol import AmiMessage, Header, Parser, serialize

LINGER_S = 0.5


@dataclass
class Recording:
    banner: str
    messages: list[tuple[float, AmiMessage]]

    def text(self) -> str:
        out: list[str] = []
        for i, (t, message) in enumerate(self.messages):
            out.append(f"# t={t:.3f}")
            if i == 0:
                out.append(self.banner)
            out.extend(f"{k}: {v}" for k, v in message.headers)
            out.append("")
        return "\n".join(out) + "\n"


@dataclass
class _Track:
    channel_id: str
    live: set[str] = field(default_factory=set)
    seen: bool = False
    originate_response: bool = False

    def note(self, m: AmiMessage) -> None:
        ev = m.event
        if ev == "OriginateResponse" and m.get("Uniqueid") == self.channel_id:
            self.originate_response = True
        if m.get("Linkedid") != self.channel_id:
            return
        uid = m.get("Uniqueid") or ""
        if ev == "Newchannel":
            self.live.add(uid)
            self.seen = True
        elif ev == "Hangup":
            self.live.discard(uid)

    @property
    def over(self) -> bool:
        return self.seen and not self.live and self.originate_response


class Recorder:
    """One recording AMI connection (kit user) for one call at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._parser = Parser(expect_banner=True)
        self._loop = asyncio.get_running_loop()
        self._t0: float | None = None
        self._ids = itertools.count(1)
        self.received: list[tuple[float, AmiMessage]] = []
        self._changed = asyncio.Condition()
        self._task = asyncio.create_task(self._read(), name="ami-recorder")
        self._closed = False

    @classmethod
    async def connect(cls, port: int, username: str, secret: str, *, booted: bool = True) -> Recorder:
        """Log in; with ``booted``, also wait for FullyBooted (sent only to users that may read
        "system" events, like the kit's; the dialer's least-rights user does not get it)."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        rec = cls(reader, writer)
        rec.send(("Action", "Login"), ("ActionID", "login"), ("Username", username), ("Secret", secret))
        login = await rec.wait_for(lambda m: m.action_id == "login" and m.response is not None)
        if login.response != "Success":
            raise ConnectionError(f"recording login refused: {login.to_dict()}")
        if booted:
            await rec.wait_for(lambda m: m.event == "FullyBooted")
        return rec

    async def _read(self) -> None:
        try:
            while True:
                data = await self._reader.read(65536)
                if not data:
                    break
                messages = self._parser.feed(data)
                now = self._loop.time()
                async with self._changed:
                    self.received.extend((now, m) for m in messages)
                    self._changed.notify_all()
        except (ConnectionError, OSError):
            pass
        finally:
            self._closed = True
            async with self._changed:
                self._changed.notify_all()

    def send(self, *pairs: Header) -> None:
        self._writer.write(serialize(pairs))

    def mark_originate(self) -> None:
        self._t0 = self._loop.time()

    async def wait_for(self, predicate, timeout_s: float = 10.0) -> AmiMessage:  # type: ignore[no-untyped-def]
        async def _wait() -> AmiMessage:
            checked = 0
            async with self._changed:
                while True:
                    for _t, m in self.received[checked:]:
                        if predicate(m):
                            return m
                    checked = len(self.received)
                    if self._closed:
                        raise ConnectionError("recording AMI connection closed")
                    await self._changed.wait()

        return await asyncio.wait_for(_wait(), timeout_s)

    async def wait_until(self, check: Callable[[], bool], timeout_s: float) -> None:
        """Until ``check()`` holds, re-evaluated whenever a message arrives."""

        async def _wait() -> None:
            async with self._changed:
                while not check():
                    if self._closed:
                        raise ConnectionError("recording AMI connection closed")
                    await self._changed.wait()

        await asyncio.wait_for(_wait(), timeout_s)

    async def action(self, name: str, *pairs: Header, action_id: str | None = None) -> AmiMessage:
        aid = action_id or f"rec-{next(self._ids)}"
        self.send(("Action", name), ("ActionID", aid), *pairs)
        return await self.wait_for(lambda m: m.action_id == aid and m.response is not None)

    async def wait_over(self, channel_id: str, timeout_s: float) -> None:
        """Until every channel of the call has hung up and its OriginateResponse is in."""
        track = _Track(channel_id)

        async def _wait() -> None:
            checked = 0
            async with self._changed:
                while True:
                    for _t, m in self.received[checked:]:
                        track.note(m)
                    checked = len(self.received)
                    if track.over:
                        return
                    if self._closed:
                        raise ConnectionError("recording AMI connection closed before the call ended")
                    await self._changed.wait()

        await asyncio.wait_for(_wait(), timeout_s)
        await asyncio.sleep(LINGER_S)

    def recording(self, since: int = 0) -> Recording:
        t0 = self._t0 if self._t0 is not None else 0.0
        picked = [(max(0.0, t - t0), m) for t, m in self.received[since:]]
        return Recording(self._parser.banner or "", picked)

    def events(self) -> list[tuple[float, AmiMessage]]:
        return [(t, m) for t, m in self.received if m.event is not None]

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            self.send(("Action", "Logoff"))
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.wait_closed()


def variables(pairs: Iterable[tuple[str, str]]) -> list[Header]:
    return [("Variable", f"{k}={v}") for k, v in pairs]
