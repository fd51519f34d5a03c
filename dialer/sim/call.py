"""One originated call through a ``Local/`` channel: ;1, ;2, the trunk channel and the far end.

Every transition emits its AMI events synchronously, in the order the real Asterisk did in the
transcripts recorded from Asterisk 22 (tests/asterisk/transcripts/: local/, audiosocket/,
handover/; the same as the first ones in ../shared/reference/ami/); the far end's script, the
;1 dialplan and the timers are tasks owned by the call. Event bursts of one transition are
written back-to-back, so per-channel order is exact and cross-channel order follows one real run.

Modelled (see the transcripts): Local originate with ``EarlyMedia`` (;1 goes Up and runs the
originate's context on progress, ``Reason: 4``), ;2 running ``Dial(<trunk>/<n>,<s>)`` then
``Hangup(${HANGUPCAUSE})``, control-frame busy/congestion vs. hangup causes, the Dial ring
timeout (DialEnd NOANSWER) vs. the Originate ``Timeout`` (no DialEnd, cause 19, Reason 3),
bridging on a real answer, hang-ups from either side, AMI Hangup/Redirect, AudioSocket (and its
2 s inactivity rule), the operators' queue after a Redirect (``dialer.sim.queue``), a Redirect to
a context that does not exist. Approximations (no transcript to copy): the caller-cancel path of
Dial (DialEnd CANCEL), the originate ring timeout through ``Local/``, an operator hanging up.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import re
import uuid as uuid_mod
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

from dialer.sim import scenarios as sc
from dialer.sim.channels import (
    Cause,
    Channel,
    ChannelEvents,
    ChannelState,
    DialStatus,
    Header,
    OriginateReason,
    Privilege,
    bridge_fields,
    dial_status_for_cause,
    dialstatus_variable_for_cause,
)
from dialer.sim.dialplan import DialContext, DialplanStep, Pbx, substitute
from dialer.sim.far_end import FarEnd
from dialer.sim.queue import QueueEntry, SimQueue

log = logging.getLogger(__name__)

# The direct transcript (03-no-answer) shows the Originate ring timeout firing ~0.98 s after
# Timeout ms: ast_dial checks it on its own poll cycle. Dial(…,30) fires on time, so it wins a tie.
ORIGINATE_TIMEOUT_SLACK_S = 0.978
DIAL_VARS_RESET = (
    "DIALSTATUS",
    "DIALEDPEERNUMBER",
    "DIALEDPEERNAME",
    "ANSWEREDTIME",
    "ANSWEREDTIME_MS",
    "DIALEDTIME",
    "DIALEDTIME_MS",
    "RINGTIME",
    "RINGTIME_MS",
    "PROGRESSTIME",
    "PROGRESSTIME_MS",
)


class Phase(enum.Enum):
    """Where the call's Dial() stands (;2 and the trunk)."""

    SETUP = enum.auto()  # ;2 runs the dial context; no trunk yet
    DIALLING = enum.auto()  # Dial() waits on the trunk: ring, progress, answer, rejection or timeout
    BRIDGED = enum.auto()  # the trunk answered: it and ;2 share a bridge
    ENDING = enum.auto()  # Dial() returned unanswered, or the bridge broke; the channels go down
    FINISHED = enum.auto()  # every channel gone, timers and tasks cancelled


class Origination(enum.Enum):
    """Where the Originate of ;1 stands."""

    PENDING = enum.auto()  # no OriginateResponse yet
    ANSWERED = enum.auto()  # answered (or early media): ;1 runs its dialplan
    FAILED = enum.auto()  # failed, or the call ended first


class CallHost(Protocol):
    """What a call needs from the simulator (SimAsterisk implements it)."""

    time_scale: float
    trunk_context: str
    dialplan: dict[str, list[DialplanStep]]
    audiosocket_addr: tuple[str, int] | None
    queues: dict[str, SimQueue]

    def emit(self, headers: list[Header]) -> None: ...
    def default_variables(self, exten: str) -> dict[str, str]: ...
    def new_uniqueid(self) -> str: ...
    def new_local_id(self) -> str: ...
    def new_trunk_name(self, tech: str, peer: str) -> str: ...
    def register(self, channel: Channel, call: SimCall) -> None: ...
    def unregister(self, channel: Channel) -> None: ...
    def call_finished(self, call: SimCall) -> None: ...
    def drop_ami_connections(self) -> None: ...
    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]: ...


@dataclass
class OriginateRequest:
    channel: str
    context: str = ""
    exten: str = ""
    priority: int = 1
    application: str = ""
    app_data: str = ""
    timeout_ms: int = 30000
    caller_id: tuple[str, str] | None = None  # (name, number)
    variables: list[tuple[str, str]] = field(default_factory=list)
    channel_id: str | None = None
    other_channel_id: str | None = None
    action_id: str | None = None
    is_async: bool = True
    early_media: bool = False
    account: str = ""


@dataclass
class OriginateResult:
    success: bool
    reason: OriginateReason


_LOCAL_RE = re.compile(r"^Local/(?P<exten>[^@/]+)@(?P<context>[^/]+)(?:/(?P<opts>.*))?$", re.IGNORECASE)


def parse_local(dial_string: str) -> tuple[str, str, str] | None:
    m = _LOCAL_RE.match(dial_string)
    if m is None:
        return None
    return m["exten"], m["context"], m["opts"] or ""


def parse_caller_id(value: str) -> tuple[str, str]:
    """``name <number>`` → (name, number); a bare number has an empty name."""
    m = re.match(r'^\s*"?([^"<]*?)"?\s*<([^>]*)>\s*$', value)
    if m:
        return m[1], m[2]
    return "", value.strip()


def trunk_parts(dial_target: str) -> tuple[str, str, str, str]:
    """``IAX2/carrier/7999`` → (tech, resource, peer, device); PJSIP ``7999@trunk`` → peer trunk."""
    tech, _, resource = dial_target.partition("/")
    if "@" in resource:
        peer = resource.rsplit("@", 1)[1]
    else:
        peer = resource.split("/", 1)[0]
    return tech, resource, peer, f"{tech}/{peer}"


class SimCall:
    """One call's channels and their transitions, each written as the AMI events Asterisk emits;
    the far end's script (:mod:`dialer.sim.far_end`) and the dialplan (:mod:`dialer.sim.dialplan`)
    drive it."""

    def __init__(
        self,
        host: CallHost,
        request: OriginateRequest,
        scenario: sc.Scenario,
        *,
        on_result: Callable[[OriginateResult], None] | None = None,
    ) -> None:
        local = parse_local(request.channel)
        if local is None:
            raise ValueError(f"the simulator dials only Local/<number>@<context> channels, got {request.channel!r}")
        self.host = host
        self.request = request
        self.scenario = scenario
        self.number, self.dial_context, opts = local
        self._on_result = on_result
        self.loop = asyncio.get_running_loop()
        self.started_at = self.loop.time()
        self.time_scale = host.time_scale

        local_id = host.new_local_id()
        base = f"Local/{self.number}@{self.dial_context}-{local_id}"
        uid1 = request.channel_id or host.new_uniqueid()
        if request.channel_id:
            host.new_uniqueid()  # Asterisk's counter moves on even when ids are given
        uid2 = request.other_channel_id or (f"{request.channel_id};2" if request.channel_id else host.new_uniqueid())
        if request.channel_id and not request.other_channel_id:
            host.new_uniqueid()
        self.l1 = Channel(base + ";1", uid1, uid1, self.dial_context, self.number, created_at=self.started_at)
        self.l2 = Channel(
            base + ";2", uid2, uid1, self.dial_context, self.number, ChannelState.RING, created_at=self.started_at
        )
        self.l1.accountcode = self.l2.accountcode = request.account
        self.local_device = f"Local/{self.number}@{self.dial_context}"
        self.local_optimization = "No" if "n" in opts else "Yes"
        self.trunk: Channel | None = None
        self.trunk_device = ""
        self.trunk_resource = ""
        self.bridge_id = ""

        self.phase = Phase.SETUP
        self.origination = Origination.PENDING
        self.local_inuse_sent = False
        self.dial_started_at = self.started_at
        self.answered_at = 0.0
        self.dial_status = ""
        self._dial_context = DialContext(self, [])  # read from the dialplan when the call starts
        self.pbx = Pbx(self)
        self.far_end = FarEnd(self, host, self.loop, self.time_scale)
        self.ev = ChannelEvents(host.emit, host.unregister)
        self._far_task: asyncio.Task[None] | None = None
        self._timers: list[asyncio.TimerHandle] = []
        self._queue: QueueEntry | None = None  # ;1 in the operators' queue after a Redirect

    @property
    def finished(self) -> bool:
        return self.phase is Phase.FINISHED

    @property
    def _in_pbx(self) -> bool:
        return self.origination is Origination.ANSWERED

    # ------------------------------------------------------------------ helpers
    def _bridge_fields(self, count: int) -> list[Header]:
        return bridge_fields(self.bridge_id, count)

    def elapsed(self, since: float) -> tuple[str, str]:
        """(seconds, milliseconds) of simulated time, as Asterisk's *TIME/*TIME_MS variables."""
        ms = max(0, round((self.loop.time() - since) / self.time_scale * 1000))
        return str(ms // 1000), str(ms)

    def later(self, delay_s: float, callback: Callable[[], None]) -> None:
        self._timers.append(self.loop.call_later(delay_s * self.time_scale, callback))

    def substitute(self, template: str, ch: Channel) -> str:
        values = {
            "EXTEN": ch.exten,
            "UNIQUEID": ch.uniqueid,
            "CHANNEL": ch.name,
            "HANGUPCAUSE": str(self.trunk.hangup_cause if self.trunk else 0),
            "CONTEXT": ch.context,
        }
        values.update(self.host.default_variables(self.number))
        values.update(ch.variables)
        return substitute(template, values)

    def channels(self) -> list[Channel]:
        return [c for c in (self.l1, self.l2, self.trunk) if c is not None and c.alive]

    # ------------------------------------------------------------------ start
    def start(self) -> None:
        """Phase A: channels created, ;2 starts Dial, the trunk channel is requested."""
        req, l1, l2 = self.request, self.l1, self.l2
        self.host.register(l1, self)
        self.host.register(l2, self)
        self.ev.channel_event("Newchannel", l1)
        self.ev.channel_event("Newchannel", l2)
        self.ev.newexten(l1, "AppDial2", "(Outgoing Line)")
        # Asterisk sets the Originate's variables on ;1 last-first and on ;2 in order (a list it
        # prepends to, then copies): seen with several Variable headers on Asterisk 22.
        for name, value in reversed(req.variables):
            self.ev.varset(l1, name, value)
        if req.caller_id is not None:
            cid_name, cid_num = req.caller_id
            l1.cid_num, l1.cid_name = cid_num or "<unknown>", cid_name or "<unknown>"
            self.ev.channel_event("NewCallerid", l1, ("CID-CallingPres", "0 (Presentation Allowed, Not Screened)"))
            l1.conn_num, l1.conn_name = l1.cid_num, l1.cid_name
            self.ev.channel_event("NewConnectedLine", l1)
        for name, value in req.variables:
            self.ev.varset(l2, name, value)
        if req.caller_id is not None:
            l2.cid_num, l2.cid_name = l1.cid_num, l1.cid_name
            l2.conn_num, l2.conn_name = l1.cid_num, l1.cid_name
            self.ev.channel_event("NewCallerid", l2, ("CID-CallingPres", "0 (Presentation Allowed, Not Screened)"))
            self.ev.channel_event("NewConnectedLine", l2)
        self.ev.emit(
            "LocalBridge",
            Privilege.CALL,
            l1.fields("LocalOne"),
            l2.fields("LocalTwo"),
            ("Context", self.dial_context),
            ("Exten", self.number),
            ("LocalOptimization", self.local_optimization),
        )
        dial_string = req.channel.split("/", 1)[1]
        self.ev.dial_event("DialBegin", None, l1, ("DialString", dial_string))
        self._timers.append(
            self.loop.call_later(
                (req.timeout_ms / 1000 + ORIGINATE_TIMEOUT_SLACK_S) * self.time_scale, self._originate_timeout
            )
        )
        self._dial_context = DialContext(self, list(self.host.dialplan.get(self.dial_context, [])))
        self._dial_context.run()

    def start_dial(self, data: str) -> None:
        """;2's Dial(<trunk>/<number>,<ring s>): the trunk channel rings and the far end's script starts."""
        l2 = self.l2
        target, _, rest = data.partition(",")
        ring_s_text = rest.split(",", 1)[0].strip()
        for var in DIAL_VARS_RESET:
            self.ev.varset(l2, var, "")
        tech, resource, peer, device = trunk_parts(target)
        self.trunk_resource, self.trunk_device = resource, device
        uid = self.host.new_uniqueid()
        trunk = Channel(
            self.host.new_trunk_name(tech, peer), uid, self.l1.linkedid, "default", "s", created_at=self.loop.time()
        )
        trunk.accountcode = self.request.account
        self.trunk = trunk
        self.host.register(trunk, self)
        self.ev.channel_event("Newchannel", trunk)
        trunk.context = ""
        self.ev.varset(trunk, "DIALEDPEERNUMBER", resource)
        trunk.cid_num, trunk.cid_name = self.number, l2.cid_name
        trunk.conn_num, trunk.conn_name = l2.cid_num, l2.cid_name
        trunk.exten = self.number
        self.ev.newexten(trunk, "AppDial", "(Outgoing Line)")
        self.ev.channel_event("NewCallerid", trunk, ("CID-CallingPres", "0 (Presentation Allowed, Not Screened)"))
        self.ev.channel_event("NewConnectedLine", trunk)
        trunk.context = self.host.trunk_context
        self.ev.newstate(trunk, ChannelState.RINGING)
        self.ev.newexten(trunk, "AppDial", "(Outgoing Line)")
        self.ev.device_state(device, "RINGING")
        self.ev.dial_event("DialBegin", l2, trunk, ("DialString", resource))
        self.phase = Phase.DIALLING
        self.dial_started_at = self.loop.time()
        if ring_s_text:
            with contextlib.suppress(ValueError):
                self.later(float(ring_s_text), self._dial_timeout)
        self._far_task = self.host.spawn(self.far_end.run(self.scenario.steps), f"sim-far-{self.l1.uniqueid}")

    def deliver(self, frame: bytes) -> None:
        """A far-end media frame: it reaches ;1 once ;1 runs its dialplan."""
        if self._in_pbx:
            self.pbx.deliver(frame)

    # ------------------------------------------------------------------ far end transitions
    def ring(self) -> None:
        if self.phase is not Phase.DIALLING or self.trunk is None:
            return
        l1, l2 = self.l1, self.l2
        if l1.state == ChannelState.DOWN:
            self.ev.newstate(l1, ChannelState.RINGING)
            self.ev.dial_event("DialState", None, l1, ("DialStatus", DialStatus.RINGING))
        secs, ms = self.elapsed(self.dial_started_at)
        self.ev.varset(l2, "RINGTIME", secs)
        self.ev.varset(l2, "RINGTIME_MS", ms)
        self.ev.dial_event("DialState", l2, self.trunk, ("DialStatus", DialStatus.RINGING))
        self._local_inuse()

    def _local_inuse(self) -> None:
        if not self.local_inuse_sent:
            self.local_inuse_sent = True
            self.ev.device_state(self.local_device, "INUSE")

    def progress(self) -> None:
        if self.phase is not Phase.DIALLING or self.trunk is None:
            return
        l1, l2 = self.l1, self.l2
        secs, ms = self.elapsed(self.dial_started_at)
        self.ev.varset(l2, "PROGRESSTIME", secs)
        self.ev.varset(l2, "PROGRESSTIME_MS", ms)
        if l1.state != ChannelState.UP:
            self.ev.dial_event("DialState", None, l1, ("DialStatus", DialStatus.PROGRESS))
        self.ev.dial_event("DialState", l2, self.trunk, ("DialStatus", DialStatus.PROGRESS))
        self.far_end.start_media()
        if l1.state != ChannelState.UP and self.request.early_media:
            self.ev.newstate(l1, ChannelState.UP)
            self._local_inuse()
            self.ev.dial_event("DialEnd", None, l1, ("DialStatus", DialStatus.ANSWER))
            self._originate_answered()

    def answer(self) -> None:
        if self.phase is not Phase.DIALLING or self.trunk is None:
            return
        l1, l2, trunk = self.l1, self.l2, self.trunk
        self.answered_at = self.loop.time()
        self.ev.newstate(trunk, ChannelState.UP)
        trunk.exten = ""  # the answered trunk leaves AppDial's extension (DialEnd DestExten is empty)
        self.ev.varset(l2, "DIALSTATUS", DialStatus.ANSWER)
        self.ev.varset(l2, "DIALEDPEERNAME", trunk.name)
        self.ev.varset(l2, "DIALEDPEERNUMBER", self.trunk_resource)
        self.ev.dial_event("DialEnd", l2, trunk, ("DialStatus", DialStatus.ANSWER))
        self.ev.device_state(self.trunk_device, "INUSE")
        self.ev.newstate(l2, ChannelState.UP)
        l1_was_up = l1.state == ChannelState.UP
        if not l1_was_up:
            self.ev.newstate(l1, ChannelState.UP)
            self.ev.dial_event("DialEnd", None, l1, ("DialStatus", DialStatus.ANSWER))
        self.bridge_id = str(uuid_mod.uuid4())
        self.ev.emit("BridgeCreate", Privilege.CALL, self._bridge_fields(0))
        self.local_inuse_sent = True
        self.ev.device_state(self.local_device, "INUSE")
        self.ev.device_state(self.local_device, "INUSE")
        self.far_end.start_media()
        if not l1_was_up:
            self._originate_answered()
        self.ev.newexten(trunk, "AppDial", "(Outgoing Line)", extension="")
        trunk.bridge_id = l2.bridge_id = self.bridge_id
        self.ev.emit("BridgeEnter", Privilege.CALL, self._bridge_fields(1), trunk.fields())
        self.ev.emit("BridgeEnter", Privilege.CALL, self._bridge_fields(2), l2.fields())
        self.ev.varset(trunk, "BRIDGEPEER", l2.name)
        self.ev.varset(l2, "BRIDGEPEER", trunk.name)
        self.phase = Phase.BRIDGED

    def reject_control(self, cause: int) -> None:
        """Busy/congestion signalled as a control frame: DialEnd first, then one HangupRequest."""
        if self.phase is not Phase.DIALLING or self.trunk is None:
            return
        self.phase = Phase.ENDING
        status = DialStatus.BUSY if cause == Cause.USER_BUSY else DialStatus.CONGESTION
        self.ev.dial_event("DialEnd", self.l2, self.trunk, ("DialStatus", status))
        self.ev.hangup_request(self.trunk, cause)
        self.ev.hangup(self.trunk, cause)
        self.ev.device_state(self.trunk_device, "UNKNOWN")
        self._after_dial(status)

    def far_hangup(self, cause: int) -> None:
        """The far end (trunk) hangs up with ``cause``: a rejection while ringing, or a hang-up."""
        trunk = self.trunk
        if trunk is None or not trunk.alive:
            return
        if self.phase is Phase.DIALLING:
            self.phase = Phase.ENDING
            self.ev.hangup_request(trunk, cause)
            self.ev.dial_event("DialEnd", self.l2, trunk, ("DialStatus", dial_status_for_cause(cause)))
            self.ev.hangup_request(trunk, cause)
            self.ev.hangup(trunk, cause)
            self.ev.device_state(self.trunk_device, "UNKNOWN")
            self._after_dial(dialstatus_variable_for_cause(cause))
        elif self.phase is Phase.BRIDGED:
            self._far_hangup_bridged(cause)

    def _after_dial(self, status: DialStatus) -> None:
        """Dial() returned without an answer: ;2 goes on in its dialplan (Hangup(${HANGUPCAUSE}))."""
        self.dial_status = status
        self.ev.varset(self.l2, "DIALSTATUS", status)
        self._dial_context.run()

    def l2_gone(self, cause: int) -> None:
        """;2 hung up after an unanswered Dial: the Local pair takes ;1 down with the same cause."""
        l1, l2 = self.l1, self.l2
        if l1.alive:
            self.ev.varset(l1, "CHANLOCALSTATUS", self.dial_status)
            self.ev.hangup_request(l1, cause)
        self.ev.hangup(l2, cause)
        self.ev.device_state(self.local_device, "NOT_INUSE")
        if l1.alive:
            if l1.state == ChannelState.UP:
                if self._in_pbx:
                    self.ev.hangup_request(l1, Cause.NORMAL_CLEARING, soft=True)
                self.ev.hangup(l1, cause)
            else:
                self.ev.dial_event("DialEnd", None, l1, ("DialStatus", dial_status_for_cause(cause)))
                self._originate_failed(OriginateReason.FAILURE)
                self.ev.hangup(l1, cause)
            self.ev.device_state(self.local_device, "NOT_INUSE")
        self._finish()

    def _answered_vars(self) -> None:
        secs, ms = self.elapsed(self.answered_at)
        self.ev.varset(self.l2, "ANSWEREDTIME", secs)
        self.ev.varset(self.l2, "ANSWEREDTIME_MS", ms)
        secs, ms = self.elapsed(self.dial_started_at)
        self.ev.varset(self.l2, "DIALEDTIME", secs)
        self.ev.varset(self.l2, "DIALEDTIME_MS", ms)
        self.ev.varset(self.l2, "DIALSTATUS", DialStatus.ANSWER)

    def _far_hangup_bridged(self, cause: int) -> None:
        l1, l2, trunk = self.l1, self.l2, self.trunk
        assert trunk is not None
        self.phase = Phase.ENDING
        self.ev.hangup_request(trunk, cause)
        self.ev.varset(trunk, "BRIDGEPEER", "")
        self.ev.varset(l2, "BRIDGEPEER", "")
        self.ev.emit("BridgeLeave", Privilege.CALL, self._bridge_fields(1), trunk.fields())
        self.ev.hangup_request(trunk, cause)
        self.ev.hangup(trunk, cause)
        self.ev.emit("BridgeLeave", Privilege.CALL, self._bridge_fields(0), l2.fields())
        self._answered_vars()
        self.ev.hangup_request(l2, Cause.NORMAL_CLEARING, soft=True)
        if l1.alive:
            self.ev.varset(l1, "CHANLOCALSTATUS", DialStatus.ANSWER)
            self.ev.hangup_request(l1, cause)
        self.ev.hangup(l2, cause)
        self.ev.emit("BridgeDestroy", Privilege.CALL, self._bridge_fields(0))
        if l1.alive:
            if self._queue is not None:
                self._queue.caller_leaving()
            if self._in_pbx:
                self.ev.hangup_request(l1, Cause.NORMAL_CLEARING, soft=True)
            self.ev.hangup(l1, cause)
        self.ev.device_state(self.trunk_device, "UNKNOWN")
        self.ev.device_state(self.local_device, "NOT_INUSE")
        self.ev.device_state(self.local_device, "NOT_INUSE")
        if self._queue is not None:
            self._queue.caller_gone()
        self._finish()

    # ------------------------------------------------------------------ our side
    def hangup_l1(
        self, cause: int = Cause.NORMAL_CLEARING, *, via_app: bool = False, peer_cause: int | None = None
    ) -> None:
        """;1 hangs up (dialplan Hangup(), AMI Hangup, end of dialplan, failed app). ``peer_cause``:
        the cause ;2 and the trunk end with when it differs from ;1's (a dialplan with nowhere to
        go ends ;1 with cause 0, the rest with 16)."""
        l1, l2, trunk = self.l1, self.l2, self.trunk
        if not l1.alive:
            return
        if via_app:
            self.ev.hangup_request(l1, Cause.NORMAL_CLEARING, soft=True)
        if self.phase is Phase.BRIDGED and trunk is not None:
            self.phase = Phase.ENDING
            self.ev.hangup_request(l2, cause)
            if self._queue is not None:
                self._queue.caller_leaving()
            self.ev.hangup(l1, cause)
            if self._queue is not None:
                self._queue.caller_gone()
            cause = cause if peer_cause is None else peer_cause
            self.ev.device_state(self.local_device, "NOT_INUSE")
            self.ev.varset(l2, "BRIDGEPEER", "")
            self.ev.varset(trunk, "BRIDGEPEER", "")
            self.ev.emit("BridgeLeave", Privilege.CALL, self._bridge_fields(1), l2.fields())
            self._answered_vars()
            self.ev.hangup_request(l2, Cause.NORMAL_CLEARING, soft=True)
            self.ev.emit("BridgeLeave", Privilege.CALL, self._bridge_fields(0), trunk.fields())
            self.ev.hangup(l2, cause)
            self.ev.emit("BridgeDestroy", Privilege.CALL, self._bridge_fields(0))
            self.ev.hangup_request(trunk, cause)
            self.ev.hangup(trunk, cause)
            self.ev.device_state(self.local_device, "NOT_INUSE")
            self.ev.device_state(self.trunk_device, "UNKNOWN")
            self._finish()
            return
        if l1.state != ChannelState.UP:
            self.ev.hangup(l1, cause)
            self._originate_failed(OriginateReason.HANGUP)
        else:
            self.ev.hangup(l1, cause)
        self.ev.device_state(self.local_device, "NOT_INUSE")
        self._cancel_l2(cause)

    def _cancel_l2(self, cause: int) -> None:
        """;1 is gone while ;2 still dials: ;2 gets the hang-up, Dial() cancels the trunk."""
        l2, trunk = self.l2, self.trunk
        if l2.alive:
            self.ev.hangup_request(l2, cause)
            if self.phase is Phase.DIALLING and trunk is not None and trunk.alive:
                self.phase = Phase.ENDING
                self.ev.dial_event("DialEnd", l2, trunk, ("DialStatus", DialStatus.CANCEL))
                self.ev.varset(l2, "DIALSTATUS", DialStatus.CANCEL)
                self.ev.hangup(trunk, cause)
                self.ev.device_state(self.trunk_device, "UNKNOWN")
            self.ev.hangup(l2, cause)
            self.ev.device_state(self.local_device, "NOT_INUSE")
        self._finish()

    def _originate_timeout(self) -> None:
        """Originate ``Timeout`` ran out before ;1 was answered: no DialEnd, cause 19, Reason 3."""
        l1 = self.l1
        if self.finished or not l1.alive or l1.state == ChannelState.UP:
            return
        cause = Cause.NO_ANSWER
        self.ev.hangup_request(l1, cause)
        self._originate_failed(OriginateReason.RING_TIMEOUT)
        self.ev.hangup(l1, cause)
        self.ev.device_state(self.local_device, "NOT_INUSE")
        self._cancel_l2(cause)

    def _dial_timeout(self) -> None:
        """Dial(…,<s>) ring time ran out: DialEnd NOANSWER, the trunk ends with cause 0."""
        trunk = self.trunk
        if self.phase is not Phase.DIALLING or trunk is None:
            return
        self.phase = Phase.ENDING
        self.ev.dial_event("DialEnd", self.l2, trunk, ("DialStatus", DialStatus.NOANSWER))
        self.ev.hangup_request(trunk, None)
        self.ev.hangup(trunk, Cause.NOT_DEFINED)
        self.ev.device_state(self.trunk_device, "UNKNOWN")
        self._after_dial(DialStatus.NOANSWER)

    # ------------------------------------------------------------------ originate outcome
    def _originate_response(self, success: bool, reason: OriginateReason, channel: str) -> None:
        if self.origination is not Origination.PENDING:
            return
        self.origination = Origination.ANSWERED if success else Origination.FAILED
        req = self.request
        if req.is_async:
            headers: list[Header] = [("Event", "OriginateResponse"), ("Privilege", Privilege.CALL.value)]
            if req.action_id is not None:
                headers.append(("ActionID", req.action_id))
            headers += [
                ("Response", "Success" if success else "Failure"),
                ("Channel", channel),
                ("Context", req.context),
                ("Exten", req.exten),
                ("Reason", str(int(reason))),
                ("Uniqueid", self.l1.uniqueid),
                ("CallerIDNum", self.l1.cid_num),
                ("CallerIDName", self.l1.cid_name),
            ]
            self.host.emit(headers)
        if self._on_result is not None:
            self._on_result(OriginateResult(success, reason))

    def _originate_failed(self, reason: OriginateReason) -> None:
        # Through Local/ a failure names the dial string, not the channel (transcripts 01–03, 09).
        self._originate_response(False, reason, self.request.channel)

    def _originate_answered(self) -> None:
        self._originate_response(True, OriginateReason.ANSWERED, self.l1.name)
        req = self.request
        if req.application:
            steps = [(req.application, req.app_data)]
            self.pbx.start("", "", 1, steps)
        else:
            self.pbx.start(req.context, req.exten, req.priority)

    def join_queue(self, queue: SimQueue) -> None:
        """;1's Queue() found its queue: the person waits for an operator."""
        self._queue = queue.join(self)

    # ------------------------------------------------------------------ AMI actions
    def redirect(self, channel: Channel, context: str, exten: str, priority: int) -> None:
        if channel is not self.l1:
            # Redirecting ;2 or the trunk is not part of the contract; move ;1 only.
            log.warning("sim: Redirect of %s is simulated as a no-op", channel.name)
            return
        if self.l1.state != ChannelState.UP:
            self.request.context, self.request.exten, self.request.priority = context, exten, priority
            return
        self.pbx.start(context, exten, priority)
        talk_s = self.scenario.operator_talk_s
        if self.phase is Phase.BRIDGED and talk_s is not None:
            if self._far_task is not None:
                self._far_task.cancel()
            steps: tuple[sc.Step, ...] = (sc.Silence(talk_s), sc.Hangup(16))
            self._far_task = self.host.spawn(self.far_end.run(steps), f"sim-far-op-{self.l1.uniqueid}")

    def ami_hangup(self, channel: Channel, cause: int) -> None:
        if self._queue is not None and channel in self._queue.channels:
            log.warning("sim: AMI Hangup of the operator's %s is not simulated", channel.name)
            return
        if channel is self.trunk:
            self.far_hangup(cause)
        else:
            self.hangup_l1(cause)

    # ------------------------------------------------------------------ end
    def _finish(self) -> None:
        if self.finished:
            return
        self.phase = Phase.FINISHED
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        if self._far_task is not None and self._far_task is not asyncio.current_task():
            self._far_task.cancel()
        self.pbx.cancel()
        for ch in (self.l1, self.l2, self.trunk, *(self._queue.channels if self._queue else ())):
            if ch is not None and ch.alive:
                ch.alive = False
                self.host.unregister(ch)
        self.pbx.close_leg()
        if self.origination is Origination.PENDING and self._on_result is not None:
            self.origination = Origination.FAILED
            self._on_result(OriginateResult(False, OriginateReason.FAILURE))
        self.host.call_finished(self)
