"""A small fake AMI *server* that records what it is sent (tests only).

Speaks the wire format of main/manager.c: banner, ``Key: Value`` lines closed by an empty line.
Login ok/bad (bad: ``Response: Error`` then close), Ping (can be silenced to fake a half-open
link), Originate (queued → channel events + OriginateResponse), Hangup, Redirect, PlayDTMF,
CoreShowChannels, Logoff; connections can be dropped on demand.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass, field

CRLF = "\r\n"


def render(headers: dict[str, str]) -> bytes:
    return ("".join(f"{k}: {v}{CRLF}" for k, v in headers.items()) + CRLF).encode()


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
        self.actions: list[dict[str, str | list[str]]] = []
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

    def actions_named(self, name: str) -> list[dict[str, str | list[str]]]:
        return [a for a in self.actions if str(a.get("Action", "")).lower() == name.lower()]

    # -- events towards logged-in clients ---------------------------------------------------

    def broadcast(self, headers: dict[str, str]) -> None:
        data = render(headers)
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
        try:
            while True:
                msg = await self._read_message(reader)
                if msg is None:
                    return
                self.actions.append(msg)
                await self._dispatch(msg, writer)
                if writer.is_closing():
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self._writers.discard(writer)
            self._authed.discard(writer)
            writer.close()

    async def _read_message(self, reader: asyncio.StreamReader) -> dict[str, str | list[str]] | None:
        msg: dict[str, str | list[str]] = {}
        while True:
            line = await reader.readline()
            if not line:
                return None
            text = line.decode().rstrip("\r\n")
            if not text:
                if msg:
                    return msg
                continue
            key, _, value = text.partition(":")
            key, value = key.strip(), value.strip()
            if key in msg:
                prev = msg[key]
                msg[key] = [*prev, value] if isinstance(prev, list) else [prev, value]
            else:
                msg[key] = value

    async def _dispatch(self, msg: dict[str, str | list[str]], writer: asyncio.StreamWriter) -> None:
        action = str(msg.get("Action", "")).lower()
        aid = str(msg.get("ActionID", ""))
        base = {"Response": "Success", "ActionID": aid} if aid else {"Response": "Success"}

        def reply(**fields: str) -> None:
            writer.write(render({**base, **fields}))

        def error(message: str) -> None:
            writer.write(render({**base, "Response": "Error", "Message": message}))

        if action == "login":
            if msg.get("Username") == self.username and msg.get("Secret") == self.secret:
                self.logins += 1
                self._authed.add(writer)
                reply(Message="Authentication accepted")
                writer.write(render({"Event": "FullyBooted", "Privilege": "system,all", "Status": "Fully Booted"}))
            else:
                await asyncio.sleep(0.05)  # Asterisk waits ~1 s; keep tests fast
                error("Authentication failed")
                await writer.drain()
                writer.close()
            return
        if writer not in self._authed:
            error("Permission denied")
            return
        if action in self.silent_actions:
            return
        if action == "ping":
            if self.answer_pings:
                reply(Ping="Pong", Timestamp="1795418600.000000")
        elif action == "logoff":
            writer.write(render({**base, "Response": "Goodbye", "Message": "Thanks for all the fish."}))
            await writer.drain()
            writer.close()
        elif action == "originate":
            self._originate(msg, reply, error)
        elif action == "hangup":
            target = str(msg.get("Channel", ""))
            call = self._find(target)
            if call is None:
                error("No such channel")
            else:
                reply(Message="Channel Hungup")
                self.hangup_call(call.attempt, int(str(msg.get("Cause", "16"))))
        elif action == "redirect":
            target = str(msg.get("Channel", ""))
            if self._find(target) is None:
                error(f"Channel does not exist: {target}")
            else:
                reply(Message="Redirect successful")
        elif action == "playdtmf":
            if self._find(str(msg.get("Channel", ""))) is None:
                error("Channel not found")
            else:
                reply(Message="DTMF successfully queued")
        elif action == "coreshowchannels":
            reply(EventList="start", Message="Channels will follow")
            n = 0
            for call in self.calls.values():
                for uid, name in call.channels.items():
                    n += 1
                    writer.write(
                        render(
                            {
                                "Event": "CoreShowChannel",
                                "ActionID": aid,
                                "Channel": name,
                                "Uniqueid": uid,
                                "Linkedid": call.attempt,
                            }
                        )
                    )
            for extra in self.extra_channels:
                n += 1
                writer.write(render({"Event": "CoreShowChannel", "ActionID": aid, **extra}))
            writer.write(
                render(
                    {"Event": "CoreShowChannelsComplete", "ActionID": aid, "EventList": "Complete", "ListItems": str(n)}
                )
            )
        else:
            error("Invalid/unknown command")

    def _find(self, target: str) -> FakeCall | None:
        for call in self.calls.values():
            if target in call.channels or target in call.channels.values():
                return call
        return None

    def _originate(self, msg: dict[str, str | list[str]], reply: object, error: object) -> None:
        assert callable(reply) and callable(error)
        if self.refuse_originate:
            error("Originate failed")
            return
        reply(Message="Originate successfully queued")
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
