"""The simulator's AMI server: what the worker (panoramisk) talks to instead of Asterisk.

Speaks the wire format of main/manager.c (see dialer.ami.protocol): banner, Login (good → Success
+ FullyBooted, bad → Error after ~1 s and close), Ping, Logoff, Originate (Async or not), Hangup,
Redirect, CoreShowChannels, Setvar/Getvar; anything else → ``Invalid/unknown command``. Events go
to every logged-in connection. Fault injection for tests: ``drop_ami_connections()``,
``pause_pings()``, bad credentials, and ``actions`` (every action received, in order), like a
fake AMI peer that records what it was asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import logging
import random
import time
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dialer.ami.protocol import AmiMessage, Header, Parser, serialize
from dialer.sim.call import OriginateRequest, OriginateResult, SimCall, parse_caller_id, parse_local
from dialer.sim.channels import Channel, Privilege
from dialer.sim.dialplan import DialplanStep
from dialer.sim.queue import QueueConfig, SimQueue, default_queues
from dialer.sim.scenarios import Scenario, scenario_for_number
from dialer.tasks import OwnedTasks

log = logging.getLogger(__name__)

BAD_LOGIN_DELAY_S = 1.0  # manager.c sleeps a second before refusing credentials


def default_dialplan(
    *,
    dial_context: str = "dialer-dial",
    analysis_context: str = "dialer-analyse",
    operator_context: str = "dialer-operator",
    queue: str = "operators",
) -> dict[str, list[DialplanStep]]:
    """deploy/asterisk/extensions_dialer.conf, as the simulator runs it.

    The worker passes DIALER_DIALSTRING, DIALER_RING_S and DIALER_AUDIOSOCKET as Originate
    variables; a client that does not gets the simulator's own trunk template, ring time and
    AudioSocket address (``SimAsterisk.default_variables``).
    """
    return {
        dial_context: [("Dial", "${DIALER_DIALSTRING},${DIALER_RING_S}"), ("Hangup", "${HANGUPCAUSE}")],
        analysis_context: [("AudioSocket", "${UNIQUEID},${DIALER_AUDIOSOCKET}"), ("Hangup", "")],
        operator_context: [("Queue", queue), ("Hangup", "")],
    }


@dataclass
class RecordedAction:
    """One action as received: for tests asserting what the worker asked (secrets redacted)."""

    at: float
    session: int
    message: AmiMessage
    name: str = field(init=False)

    def __post_init__(self) -> None:
        self.name = (self.message.action or "").lower()

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.message.get(key, default)


class _Session:
    def __init__(self, sim: SimAsterisk, sid: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.sim = sim
        self.sid = sid
        self.reader = reader
        self.writer = writer
        self.authenticated = False
        self.closed = False
        self.username = ""

    def send(self, headers: Sequence[Header]) -> None:
        if self.closed or self.writer.is_closing():
            return
        self.writer.write(serialize(headers))

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.writer.close()


class OriginateRefused(Exception):
    """An Originate Asterisk refuses up front (``Response: Error`` with this message)."""


def _is_true(value: str | None) -> bool:
    return (value or "").lower() in ("true", "yes", "1", "on")


def _originate_variables(message: AmiMessage) -> list[tuple[str, str]]:
    """``Variable: a=1,b=2`` headers (any number of them) in order."""
    variables: list[tuple[str, str]] = []
    for raw in message.get_all("Variable"):
        for item in raw.split(","):
            name, eq, value = item.partition("=")
            if eq and name.strip():
                variables.append((name.strip(), value))
    return variables


def parse_originate(message: AmiMessage) -> OriginateRequest:
    """An Originate action as a request, checked as Asterisk checks it before any channel exists."""
    channel = (message.get("Channel") or "").strip()
    if not channel:
        raise OriginateRefused("Channel not specified")
    exten = message.get("Exten") or ""
    application = message.get("Application") or ""
    if not application and not exten:
        raise OriginateRefused("Exten not specified")
    channel_id = message.get("ChannelId") or None
    if channel_id is not None and len(channel_id) > 149:
        raise OriginateRefused("Uniqueid length exceeds maximum of 149")
    try:
        timeout_ms = int(message.get("Timeout") or 30000)
        priority = int(message.get("Priority") or 1)
    except ValueError:
        raise OriginateRefused("Invalid timeout or priority") from None
    caller = message.get("CallerID")
    return OriginateRequest(
        channel=channel,
        context=message.get("Context") or "",
        exten=exten,
        priority=priority,
        application=application,
        app_data=message.get("Data") or "",
        timeout_ms=timeout_ms,
        caller_id=parse_caller_id(caller) if caller else None,
        variables=_originate_variables(message),
        channel_id=channel_id,
        other_channel_id=message.get("OtherChannelId") or None,
        action_id=message.action_id,
        is_async=_is_true(message.get("Async")),
        early_media=_is_true(message.get("EarlyMedia")),
        account=message.get("Account") or "",
    )


class SimAsterisk:
    """An Asterisk stand-in: AMI server + calls that play scenarios + AudioSocket client."""

    def __init__(
        self,
        *,
        username: str = "dialer",
        secret: str = "sim",
        audiosocket_addr: tuple[str, int] | None = None,
        time_scale: float = 1.0,
        trunk_template: str = "IAX2/carrier/{number}",
        version: str = "11.0.0",
        number_map: Mapping[str, str | Scenario] | None = None,
        dialplan: Mapping[str, Sequence[DialplanStep]] | None = None,
        trunk_context: str = "from-carrier",
        ring_s: int = 30,
        audiosocket_idle_s: float = 2.0,
        seed: int | None = None,
        queues: Mapping[str, QueueConfig] | None = None,
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.username = username
        self._secret = secret
        self.audiosocket_addr = audiosocket_addr
        self.time_scale = time_scale
        self.trunk_template = trunk_template
        self.version = version
        self.number_map: dict[str, str | Scenario] = dict(number_map or {})
        self.trunk_context = trunk_context
        self.audiosocket_idle_s = audiosocket_idle_s
        self.ring_s = ring_s
        base = default_dialplan()
        if dialplan is not None:
            base.update({k: list(v) for k, v in dialplan.items()})
        self.dialplan: dict[str, list[DialplanStep]] = base
        self.queues: dict[str, SimQueue] = {
            name: SimQueue(cfg) for name, cfg in (default_queues() if queues is None else queues).items()
        }
        for q in self.queues.values():
            q.emit = self.emit  # member events of no call (QueuePause)
        self.actions: list[RecordedAction] = []
        self.calls: list[SimCall] = []  # live calls
        self.finished_calls = 0
        self._random = random.Random(seed)
        self._sessions: dict[int, _Session] = {}
        self._session_ids = itertools.count(1)
        self._server: asyncio.base_events.Server | None = None
        self._tasks = OwnedTasks(log, "sim task")
        self._channels: dict[str, tuple[Channel, SimCall]] = {}
        self._by_uniqueid: dict[str, tuple[Channel, SimCall]] = {}
        self._uniqueid_epoch = int(time.time())
        self._uniqueid_counter = itertools.count(0)
        self._local_counter = itertools.count(0)
        self._trunk_counter = itertools.count(1)
        self._pings_paused = False
        self._started_at = 0.0
        self.port = 0
        self._all_idle = asyncio.Event()
        self._all_idle.set()

    # ------------------------------------------------------------------ lifecycle
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._started_at = asyncio.get_running_loop().time()
        self._server = await asyncio.start_server(self._handle, host, port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        """Close the listener and every session, end every task (calls vanish, no events)."""
        if self._server is not None:
            self._server.close()
        for session in list(self._sessions.values()):
            session.close()
        await self._tasks.cancel_all()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None

    async def __aenter__(self) -> SimAsterisk:
        if self._server is None:
            await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ fault injection / inspection
    def drop_ami_connections(self) -> None:
        """Close every AMI socket at once (calls go on, as when a network path breaks)."""
        for session in list(self._sessions.values()):
            session.close()

    def pause_pings(self, paused: bool = True) -> None:
        """Half-open connection: stop answering Ping (everything else still works)."""
        self._pings_paused = paused

    def live_channels(self) -> list[Channel]:
        return [ch for ch, _call in self._channels.values()]

    def assign(self, number: str, scenario: str | Scenario) -> None:
        """Make ``number`` play ``scenario`` (a key of SCENARIOS, or a custom Scenario)."""
        self.number_map[number] = scenario

    def scenario_for(self, number: str) -> Scenario:
        return scenario_for_number(number, self.number_map)

    async def wait_idle(self) -> None:
        """Until no call is live (tests: let the last hang-up events go out)."""
        await self._all_idle.wait()

    # ------------------------------------------------------------------ CallHost
    def default_variables(self, exten: str) -> dict[str, str]:
        """Dialplan variables a client did not set (the contract's, from this simulator's config)."""
        host, port = self.audiosocket_addr or ("127.0.0.1", 9099)
        return {
            "DIALER_DIALSTRING": self.trunk_template.format(number=exten),
            "DIALER_RING_S": str(self.ring_s),
            "DIALER_AUDIOSOCKET": f"{host}:{port}",
        }

    def emit(self, headers: list[Header]) -> None:
        data = serialize(headers)
        for session in self._sessions.values():
            if session.authenticated and not session.closed and not session.writer.is_closing():
                session.writer.write(data)

    def new_uniqueid(self) -> str:
        return f"{self._uniqueid_epoch}.{next(self._uniqueid_counter)}"

    def new_local_id(self) -> str:
        return f"{next(self._local_counter):08x}"

    def new_trunk_name(self, tech: str, peer: str) -> str:
        if tech.upper() == "IAX2":
            # IAX2 call numbers are random but unique among live calls.
            while True:
                name = f"{tech}/{peer}-{self._random.randint(1, 16383)}"
                if name not in self._channels:
                    return name
        return f"{tech}/{peer}-{next(self._trunk_counter):08x}"

    def register(self, channel: Channel, call: SimCall) -> None:
        self._channels[channel.name] = (channel, call)
        self._by_uniqueid[channel.uniqueid] = (channel, call)

    def unregister(self, channel: Channel) -> None:
        self._channels.pop(channel.name, None)
        self._by_uniqueid.pop(channel.uniqueid, None)

    def call_finished(self, call: SimCall) -> None:
        with contextlib.suppress(ValueError):
            self.calls.remove(call)
        self.finished_calls += 1
        if not self.calls:
            self._all_idle.set()

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        return self._tasks.spawn(coro, name=name)

    # ------------------------------------------------------------------ sessions
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sid = next(self._session_ids)
        session = _Session(self, sid, reader, writer)
        self._sessions[sid] = session
        writer.write(f"Asterisk Call Manager/{self.version}\r\n".encode())
        parser = Parser()
        try:
            while not session.closed:
                data = await reader.read(65536)
                if not data:
                    break
                for message in parser.feed(data):
                    await self._dispatch(session, message)
                    if session.closed:
                        break
                if parser.garbage:
                    for bad in parser.garbage:
                        log.warning("sim AMI session %d: %s: %r", sid, bad.reason, bad.line)
                    parser.garbage.clear()
        except (ConnectionError, OSError):
            pass
        finally:
            session.close()
            self._sessions.pop(sid, None)

    def _reply(self, session: _Session, message: AmiMessage, response: str, *headers: Header) -> None:
        out: list[Header] = [("Response", response)]
        action_id = message.action_id
        if action_id is not None:
            out.append(("ActionID", action_id))
        out.extend(headers)
        session.send(out)

    def _error(self, session: _Session, message: AmiMessage, text: str) -> None:
        self._reply(session, message, "Error", ("Message", text))

    async def _dispatch(self, session: _Session, message: AmiMessage) -> None:
        action = (message.action or "").strip()
        low = action.lower()
        recorded = message
        if low == "login" and message.get("Secret") is not None:
            recorded = AmiMessage(tuple((k, "***" if k.lower() == "secret" else v) for k, v in message.headers))
        self.actions.append(RecordedAction(asyncio.get_running_loop().time(), session.sid, recorded))
        if not action:
            self._error(session, message, "Missing action in request")
            return
        if low == "login":
            await self._login(session, message)
            return
        if low == "logoff":
            self._reply(session, message, "Goodbye", ("Message", "Thanks for all the fish."))
            session.close()
            return
        if not session.authenticated:
            self._error(session, message, "Permission denied")
            return
        handler = {
            "ping": self._ping,
            "originate": self._originate,
            "hangup": self._hangup,
            "redirect": self._redirect,
            "coreshowchannels": self._core_show_channels,
            "setvar": self._setvar,
            "getvar": self._getvar,
            "queuestatus": self._queue_status,
            "queuepause": self._queue_pause,
        }.get(low)
        if handler is None:
            self._error(session, message, "Invalid/unknown command")
            return
        handler(session, message)

    async def _login(self, session: _Session, message: AmiMessage) -> None:
        if session.authenticated:
            self._reply(session, message, "Success", ("Message", "Already authenticated"))
            return
        if message.get("Username") != self.username or message.get("Secret") != self._secret:
            await asyncio.sleep(BAD_LOGIN_DELAY_S * self.time_scale)
            self._error(session, message, "Authentication failed")
            session.close()
            return
        session.authenticated = True
        session.username = self.username
        self._reply(session, message, "Success", ("Message", "Authentication accepted"))
        uptime = str(int(asyncio.get_running_loop().time() - self._started_at))
        session.send(
            [
                ("Event", "FullyBooted"),
                ("Privilege", Privilege.SYSTEM.value),
                ("Uptime", uptime),
                ("LastReload", uptime),
                ("Status", "Fully Booted"),
            ]
        )
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
        local = session.writer.get_extra_info("sockname") or ("127.0.0.1", 0)
        remote = session.writer.get_extra_info("peername") or ("127.0.0.1", 0)
        session.send(
            [
                ("Event", "SuccessfulAuth"),
                ("Privilege", Privilege.SECURITY.value),
                ("EventTV", now),
                ("Severity", "Informational"),
                ("Service", "AMI"),
                ("EventVersion", "1"),
                ("AccountID", self.username),
                ("SessionID", f"0x{id(session):x}"),
                ("LocalAddress", f"IPV4/TCP/{local[0]}/{local[1]}"),
                ("RemoteAddress", f"IPV4/TCP/{remote[0]}/{remote[1]}"),
                ("UsingPassword", "0"),
                ("SessionTV", now),
            ]
        )

    def _ping(self, session: _Session, message: AmiMessage) -> None:
        if self._pings_paused:
            return
        self._reply(session, message, "Success", ("Ping", "Pong"), ("Timestamp", f"{time.time():.6f}"))

    # ------------------------------------------------------------------ Originate
    def _originate(self, session: _Session, message: AmiMessage) -> None:
        try:
            request = parse_originate(message)
        except OriginateRefused as exc:
            self._error(session, message, str(exc))
            return
        for uid in (request.channel_id, request.other_channel_id):
            if uid is not None and uid in self._by_uniqueid:
                self._error(session, message, f"Uniqueid {uid} already in use")
                return
        local = parse_local(request.channel)
        if local is None or local[1] not in self.dialplan:
            # Asterisk refuses to create the channel: no channel events at all.
            log.warning("sim: cannot originate %s (only Local/<n>@<known dial context>)", request.channel)
            self._originate_unroutable(session, message, request)
            return
        scenario = self.scenario_for(local[0])

        def on_result(result: OriginateResult) -> None:
            if not request.is_async:
                if result.success:
                    self._reply(session, message, "Success", ("Message", "Originate successfully queued"))
                else:
                    self._error(session, message, "Originate failed")

        call = SimCall(self, request, scenario, on_result=on_result)
        self.calls.append(call)
        self._all_idle.clear()
        if request.is_async:
            self._reply(session, message, "Success", ("Message", "Originate successfully queued"))
        # The channels appear right after the queued reply, from the originate thread.
        self.spawn(self._start_call(call), f"sim-originate-{call.l1.uniqueid}")

    async def _start_call(self, call: SimCall) -> None:
        call.start()

    def _originate_unroutable(self, session: _Session, message: AmiMessage, request: OriginateRequest) -> None:
        if not request.is_async:
            self._error(session, message, "Originate failed")
            return
        self._reply(session, message, "Success", ("Message", "Originate successfully queued"))
        headers: list[Header] = [("Event", "OriginateResponse"), ("Privilege", Privilege.CALL.value)]
        if request.action_id is not None:
            headers.append(("ActionID", request.action_id))
        name, num = request.caller_id or ("", "")
        headers += [
            ("Response", "Failure"),
            ("Channel", request.channel),
            ("Context", request.context),
            ("Exten", request.exten),
            ("Reason", "0"),
            ("Uniqueid", "<null>"),
            ("CallerIDNum", num or "<unknown>"),
            ("CallerIDName", name or "<unknown>"),
        ]
        self.emit(headers)

    # ------------------------------------------------------------------ other actions
    def _find(self, name: str) -> tuple[Channel, SimCall] | None:
        return self._channels.get(name) or self._by_uniqueid.get(name)

    def _hangup(self, session: _Session, message: AmiMessage) -> None:
        name = (message.get("Channel") or "").strip()
        if not name:
            self._error(session, message, "No channel specified")
            return
        found = self._find(name)
        if found is None:
            self._error(session, message, "No such channel")
            return
        cause_text = (message.get("Cause") or "").strip()
        cause = int(cause_text) if cause_text.isdigit() and int(cause_text) > 0 else 16
        self._reply(session, message, "Success", ("Message", "Channel Hungup"))
        channel, call = found
        call.ami_hangup(channel, cause)

    def _redirect(self, session: _Session, message: AmiMessage) -> None:
        name = (message.get("Channel") or "").strip()
        if not name:
            self._error(session, message, "Channel not specified")
            return
        found = self._find(name)
        if found is None:
            self._error(session, message, f"Channel does not exist: {name}")
            return
        context = message.get("Context") or ""
        exten = message.get("Exten") or ""
        try:
            priority = int(message.get("Priority") or 1)
        except ValueError:
            self._error(session, message, "Invalid priority")
            return
        # As Asterisk: a context that does not exist is accepted; the channel finds nothing there
        # and hangs up (dialplan.Pbx).
        channel, call = found
        self._reply(session, message, "Success", ("Message", "Redirect successful"))
        call.redirect(channel, context, exten, priority)

    def _core_show_channels(self, session: _Session, message: AmiMessage) -> None:
        self._reply(session, message, "Success", ("EventList", "start"), ("Message", "Channels will follow"))
        now = asyncio.get_running_loop().time()
        count = 0
        for channel, _call in list(self._channels.values()):
            seconds = int((now - channel.created_at) / self.time_scale)
            headers: list[Header] = [("Event", "CoreShowChannel")]
            if message.action_id is not None:
                headers.append(("ActionID", message.action_id))
            headers += channel.fields()
            headers += [
                ("Application", channel.application),
                ("ApplicationData", channel.app_data),
                ("Duration", f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"),
                ("BridgeId", channel.bridge_id),
            ]
            session.send(headers)
            count += 1
        tail: list[Header] = [("Event", "CoreShowChannelsComplete")]
        if message.action_id is not None:
            tail.append(("ActionID", message.action_id))
        tail += [("EventList", "Complete"), ("ListItems", str(count))]
        session.send(tail)

    def _queue_status(self, session: _Session, message: AmiMessage) -> None:
        """app_queue's manager_queues_status: the listing, then QueueStatusComplete."""
        wanted = message.get("Queue") or ""
        self._reply(session, message, "Success", ("EventList", "start"), ("Message", "Queue status will follow"))
        count = 0
        for queue in self.queues.values():
            if wanted and queue.name != wanted:
                continue
            for row in queue.status_listing(message.action_id):
                session.send(row)
                count += 1
        tail: list[Header] = [("Event", "QueueStatusComplete")]
        if message.action_id is not None:
            tail.append(("ActionID", message.action_id))
        tail += [("EventList", "Complete"), ("ListItems", str(count))]
        session.send(tail)

    def _queue_pause(self, session: _Session, message: AmiMessage) -> None:
        interface = message.get("Interface") or ""
        paused = (message.get("Paused") or "").lower() in ("1", "true", "yes")
        wanted = message.get("Queue") or ""
        found = False
        for queue in self.queues.values():
            st = queue.member(interface) if not wanted or queue.name == wanted else None
            if st is not None:
                queue.pause(st, paused, message.get("Reason") or "")
                found = True
        if not found:
            self._error(session, message, "Interface not found")
            return
        self._reply(
            session,
            message,
            "Success",
            ("Message", "Interface paused successfully" if paused else "Interface unpaused successfully"),
        )

    def _setvar(self, session: _Session, message: AmiMessage) -> None:
        name = message.get("Variable") or ""
        if not name:
            self._error(session, message, "No variable specified")
            return
        channel_name = message.get("Channel")
        if channel_name:
            found = self._find(channel_name)
            if found is None:
                self._error(session, message, "No such channel")
                return
            found[0].variables[name] = message.get("Value") or ""
        self._reply(session, message, "Success", ("Message", "Variable Set"))

    def _getvar(self, session: _Session, message: AmiMessage) -> None:
        name = message.get("Variable") or ""
        if not name:
            self._error(session, message, "No variable specified")
            return
        value = ""
        channel_name = message.get("Channel")
        if channel_name:
            found = self._find(channel_name)
            if found is None:
                self._error(session, message, "No such channel")
                return
            value = found[0].variables.get(name, "")
        self._reply(session, message, "Success", ("Variable", name), ("Value", value))
