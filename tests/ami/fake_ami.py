"""A small fake AMI *server* that records what it is sent (tests only).

Speaks the wire format of main/manager.c through the package's one codec (dialer.ami.protocol):
banner, ``Key: Value`` lines closed by an empty line.
Login ok/bad (bad: ``Response: Error`` then close), Ping (can be silenced to fake a half-open
link), Originate (queued → channel events + OriginateResponse), Hangup, Redirect, PlayDTMF,
CoreShowChannels, Logoff; connections can be dropped on demand.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from dialer.ami.protocol import Parser, serialize

Action = dict[str, str | list[str]]


def render(headers: dict[str, str]) -> bytes:
    return serialize(headers.items())


@dataclass
class _Exchange:
    """One received action and the connection to answer it on."""

    msg: Action
    writer: asyncio.StreamWriter

    def get(self, key: str, default: str = "") -> str:
        return str(self.msg.get(key, default))

    def _base(self) -> dict[str, str]:
        aid = self.get("ActionID")
        return {"Response": "Success", "ActionID": aid} if aid else {"Response": "Success"}

    def reply(self, **fields: str) -> None:
        self.writer.write(render({**self._base(), **fields}))

    def error(self, message: str) -> None:
        self.writer.write(render({**self._base(), "Response": "Error", "Message": message}))


@dataclass
class FakeCall:
    attempt: str
    number: str
    action_id: str
    channels: dict[str, str] = field(default_factory=dict)  # uniqueid → channel name


class FakeAmi:
    def __init__(self, username: str = "dialer", secret: str = "s3cret-pw") -> None:
        self.username = username
        self.secret = secret
        self.actions: list[Action] = []
        self.answer_pings = True
        self.silent_actions: set[str] = set()  # action names never answered
        self.refuse_originate = False
        self.originate_response_delay_s = 0.0
        self.connections = 0
        self.logins = 0
        self.calls: dict[str, FakeCall] = {}
        self.extra_channels: list[dict[str, str]] = []  # CoreShowChannels additions
        self._writers: set[asyncio.StreamWriter] = set()
        self._authed: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._counter = 0
        self.port = 0

    async def start(self, port: int = 0) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self.drop()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def drop(self) -> None:
        for w in list(self._writers):
            w.close()
        self._writers.clear()
        self._authed.clear()

    def actions_named(self, name: str) -> list[Action]:
        return [a for a in self.actions if str(a.get("Action", "")).lower() == name.lower()]

    # -- events towards logged-in clients ---------------------------------------------------

    def broadcast(self, headers: dict[str, str]) -> None:
        data = render(headers)
        for w in list(self._authed):
            if not w.is_closing():
                w.write(data)

    def write_raw(self, data: bytes) -> None:
        """Bytes exactly as given to every logged-in client (malformed or split traffic)."""
        for w in list(self._authed):
            if not w.is_closing():
                w.write(data)

    def channel_event(self, event: str, call: FakeCall, uid: str, **extra: str) -> None:
        self.broadcast(
            {
                "Event": event,
                "Privilege": "call,all",
                "Channel": call.channels.get(uid, f"PJSIP/trunk-{uid}"),
                "Uniqueid": uid,
                "Linkedid": call.attempt,
                **extra,
            }
        )

    def hangup_call(self, attempt: str, cause: int = 16) -> None:
        call = self.calls.pop(attempt, None)
        if call is None:
            return
        for uid in reversed(list(call.channels)):
            self.channel_event("Hangup", call, uid, Cause=str(cause), **{"Cause-txt": "Normal Clearing"})

    # -- protocol -------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        writer.write(b"Asterisk Call Manager/13.0.0\r\n")
        parser = Parser()
        try:
            while data := await reader.read(65536):
                for message in parser.feed(data):
                    msg = message.to_multidict()
                    self.actions.append(msg)
                    await self._dispatch(_Exchange(msg, writer))
                    if writer.is_closing():
                        return
        except ConnectionError:
            return
        finally:
            self._writers.discard(writer)
            self._authed.discard(writer)
            writer.close()

    async def _dispatch(self, ex: _Exchange) -> None:
        action = ex.get("Action").lower()
        if action == "login":
            await self._login(ex)
        elif ex.writer not in self._authed:
            ex.error("Permission denied")
        elif action not in self.silent_actions:
            handler = self._handlers().get(action)
            if handler is None:
                ex.error("Invalid/unknown command")
            else:
                await handler(ex)

    def _handlers(self) -> dict[str, Callable[[_Exchange], Awaitable[None]]]:
        return {
            "ping": self._ping,
            "logoff": self._logoff,
            "originate": self._originate,
            "hangup": self._hangup,
            "redirect": self._redirect,
            "playdtmf": self._play_dtmf,
            "coreshowchannels": self._core_show_channels,
        }

    async def _login(self, ex: _Exchange) -> None:
        if ex.msg.get("Username") == self.username and ex.msg.get("Secret") == self.secret:
            self.logins += 1
            self._authed.add(ex.writer)
            ex.reply(Message="Authentication accepted")
            ex.writer.write(render({"Event": "FullyBooted", "Privilege": "system,all", "Status": "Fully Booted"}))
        else:
            await asyncio.sleep(0.05)  # Asterisk waits ~1 s; keep tests fast
            ex.error("Authentication failed")
            await ex.writer.drain()
            ex.writer.close()

    async def _ping(self, ex: _Exchange) -> None:
        if self.answer_pings:
            ex.reply(Ping="Pong", Timestamp="1795418600.000000")

    async def _logoff(self, ex: _Exchange) -> None:
        ex.reply(Response="Goodbye", Message="Thanks for all the fish.")
        await ex.writer.drain()
        ex.writer.close()

    async def _hangup(self, ex: _Exchange) -> None:
        call = self._find(ex.get("Channel"))
        if call is None:
            ex.error("No such channel")
        else:
            ex.reply(Message="Channel Hungup")
            self.hangup_call(call.attempt, int(ex.get("Cause", "16")))

    async def _redirect(self, ex: _Exchange) -> None:
        target = ex.get("Channel")
        if self._find(target) is None:
            ex.error(f"Channel does not exist: {target}")
        else:
            ex.reply(Message="Redirect successful")

    async def _play_dtmf(self, ex: _Exchange) -> None:
        if self._find(ex.get("Channel")) is None:
            ex.error("Channel not found")
        else:
            ex.reply(Message="DTMF successfully queued")

    async def _core_show_channels(self, ex: _Exchange) -> None:
        aid = ex.get("ActionID")
        ex.reply(EventList="start", Message="Channels will follow")
        rows = [
            {"Channel": name, "Uniqueid": uid, "Linkedid": call.attempt}
            for call in self.calls.values()
            for uid, name in call.channels.items()
        ]
        rows += self.extra_channels
        for row in rows:
            ex.writer.write(render({"Event": "CoreShowChannel", "ActionID": aid, **row}))
        ex.writer.write(
            render(
                {
                    "Event": "CoreShowChannelsComplete",
                    "ActionID": aid,
                    "EventList": "Complete",
                    "ListItems": str(len(rows)),
                }
            )
        )

    def _find(self, target: str) -> FakeCall | None:
        for call in self.calls.values():
            if target in call.channels or target in call.channels.values():
                return call
        return None

    async def _originate(self, ex: _Exchange) -> None:
        if self.refuse_originate:
            ex.error("Originate failed")
            return
        ex.reply(Message="Originate successfully queued")
        msg = ex.msg
        attempt = str(msg.get("ChannelId", "")) or str(uuid.uuid4())
        channel = str(msg.get("Channel", ""))
        number = channel.removeprefix("Local/").split("@", 1)[0]
        self._counter += 1
        call = FakeCall(attempt, number, str(msg.get("ActionID", "")))
        call.channels[attempt] = f"Local/{number}@dialer-dial-{self._counter:08x};1"
        call.channels[f"{attempt};2"] = f"Local/{number}@dialer-dial-{self._counter:08x};2"
        self.calls[attempt] = call
        for uid in call.channels:
            self.channel_event("Newchannel", call, uid, ChannelState="0", ChannelStateDesc="Down")
        task = asyncio.get_running_loop().create_task(self._originate_response(call))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _originate_response(self, call: FakeCall) -> None:
        if self.originate_response_delay_s:
            await asyncio.sleep(self.originate_response_delay_s)
        with contextlib.suppress(KeyError):
            self.channel_event("Newstate", call, call.attempt, ChannelState="6", ChannelStateDesc="Up")
        self.broadcast(
            {
                "Event": "OriginateResponse",
                "Privilege": "call,all",
                "ActionID": call.action_id,
                "Response": "Success",
                "Channel": call.channels[call.attempt],
                "Context": "dialer-analyse",
                "Exten": "s",
                "Reason": "4",
                "Uniqueid": call.attempt,
            }
        )
