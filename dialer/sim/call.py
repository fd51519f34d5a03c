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
import collections
import contextlib
import logging
import re
import uuid as uuid_mod
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from dialer.sim import scenarios as sc
from dialer.sim.audio import FRAME_S, FrameChunker, clip, silence_chunks, tone_chunks, tone_duration_s
from dialer.sim.audiosocket_client import AudioSocketLeg, EndReason
from dialer.sim.channels import (
    Cause,
    Channel,
    ChannelState,
    DialStatus,
    Header,
    OriginateReason,
    Privilege,
    bridge_fields,
    cause_text,
    dial_status_for_cause,
    dialstatus_variable_for_cause,
    event,
)
from dialer.sim.queue import QUEUE_VARS_AT_START, QueueEntry, SimQueue

log = logging.getLogger(__name__)

# The direct transcript (03-no-answer) shows the Originate ring timeout firing ~0.98 s after
# Timeout ms: ast_dial checks it on its own poll cycle. Dial(…,30) fires on time, so it wins a tie.
ORIGINATE_TIMEOUT_SLACK_S = 0.978
# Frames that reach ;1 before the AudioSocket app reads them wait in the channel's read queue, as
# in Asterisk, which keeps the newest 96 voice frames (main/channel.c __ast_queue_frame; ~2 s).
PENDING_FRAMES_MAX = 96
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

DialplanStep = tuple[str, str]  # (application, data template)


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
        self._loop = asyncio.get_running_loop()
        self.started_at = self._loop.time()
        self._scale = host.time_scale

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

        # state
        self.dial_active = False
        self.bridged = False
        self.l1_in_pbx = False
        self.originate_done = False
        self.finished = False
        self.local_inuse_sent = False
        self.dial_started_at = self.started_at
        self.answered_at = 0.0
        self.dial_status = ""
        self._l2_steps: list[DialplanStep] = []
        self._l2_index = 0

        self._far_task: asyncio.Task[None] | None = None
        self._pbx_task: asyncio.Task[None] | None = None
        self._timers: list[asyncio.TimerHandle] = []
        self._leg: AudioSocketLeg | None = None
        self._queue: QueueEntry | None = None  # ;1 in the operators' queue after a Redirect
        self._pending_frames: collections.deque[bytes] = collections.deque(maxlen=PENDING_FRAMES_MAX)
        self._media_flowing = False
        self._chunker = FrameChunker()
        self._next_frame_at = 0.0
        # The far end's script runs on absolute deadlines so that loop lateness never piles up
        # from step to step (a loaded test box must not reorder a hang-up and a dialplan Wait).
        self._script_at = 0.0
        self._closing: list[asyncio.Task[None]] = []

    # ------------------------------------------------------------------ helpers
    def _emit(self, name: str, priv: Privilege, *parts: list[Header] | Header) -> None:
        self.host.emit(event(name, priv, *parts))

    def _ch(self, name: str, ch: Channel, *extra: Header, priv: Privilege = Privilege.CALL) -> None:
        self._emit(name, priv, ch.fields(), *extra)

    def _newexten(self, ch: Channel, app: str, data: str, extension: str | None = None) -> None:
        ch.application, ch.app_data = app, data
        self._ch(
            "Newexten",
            ch,
            ("Extension", ch.exten if extension is None else extension),
            ("Application", app),
            ("AppData", data),
            priv=Privilege.DIALPLAN,
        )

    def _varset(self, ch: Channel, var: str, value: str) -> None:
        ch.variables[var] = value
        self._ch("VarSet", ch, ("Variable", var), ("Value", value), priv=Privilege.DIALPLAN)

    def _newstate(self, ch: Channel, state: ChannelState) -> None:
        ch.state = state
        self._ch("Newstate", ch)

    def _dsc(self, device: str, state: str) -> None:
        self._emit("DeviceStateChange", Privilege.CALL, ("Device", device), ("State", state))

    def _dial_event(self, name: str, caller: Channel | None, dest: Channel, *extra: Header) -> None:
        parts: list[list[Header] | Header] = []
        if caller is not None:
            parts.append(caller.fields())
        parts.append(dest.fields("Dest"))
        parts.extend(extra)
        self._emit(name, Privilege.CALL, *parts)

    def _hangup_request(self, ch: Channel, cause: int | None, soft: bool = False) -> None:
        extra: list[Header] = [] if cause is None else [("Cause", str(cause))]
        self._ch("SoftHangupRequest" if soft else "HangupRequest", ch, *extra)

    def _hangup(self, ch: Channel, cause: int) -> None:
        ch.hangup_cause = cause
        ch.alive = False
        self._ch("Hangup", ch, ("Cause", str(cause)), ("Cause-txt", cause_text(cause)))
        self.host.unregister(ch)

    def _bridge_fields(self, count: int) -> list[Header]:
        return bridge_fields(self.bridge_id, count)

    def _elapsed(self, since: float) -> tuple[str, str]:
        """(seconds, milliseconds) of simulated time, as Asterisk's *TIME/*TIME_MS variables."""
        ms = max(0, round((self._loop.time() - since) / self._scale * 1000))
        return str(ms // 1000), str(ms)

    def _later(self, delay_s: float, callback: Callable[[], None]) -> None:
        self._timers.append(self._loop.call_later(delay_s * self._scale, callback))

    def _substitute(self, template: str, ch: Channel) -> str:
        values = {
            "EXTEN": ch.exten,
            "UNIQUEID": ch.uniqueid,
            "CHANNEL": ch.name,
            "HANGUPCAUSE": str(self.trunk.hangup_cause if self.trunk else 0),
            "CONTEXT": ch.context,
        }
        values.update(self.host.default_variables(self.number))
        values.update(ch.variables)
        return re.sub(r"\$\{([A-Za-z0-9_]+)\}", lambda m: values.get(m[1], ""), template)

    def channels(self) -> list[Channel]:
        return [c for c in (self.l1, self.l2, self.trunk) if c is not None and c.alive]

    # ------------------------------------------------------------------ start
    def start(self) -> None:
        """Phase A: channels created, ;2 starts Dial, the trunk channel is requested."""
        req, l1, l2 = self.request, self.l1, self.l2
        self.host.register(l1, self)
        self.host.register(l2, self)
        self._ch("Newchannel", l1)
        self._ch("Newchannel", l2)
        self._newexten(l1, "AppDial2", "(Outgoing Line)")
        # Asterisk sets the Originate's variables on ;1 last-first and on ;2 in order (a list it
        # prepends to, then copies): seen with several Variable headers on Asterisk 22.
        for name, value in reversed(req.variables):
            self._varset(l1, name, value)
        if req.caller_id is not None:
            cid_name, cid_num = req.caller_id
            l1.cid_num, l1.cid_name = cid_num or "<unknown>", cid_name or "<unknown>"
            self._ch("NewCallerid", l1, ("CID-CallingPres", "0 (Presentation Allowed, Not Screened)"))
            l1.conn_num, l1.conn_name = l1.cid_num, l1.cid_name
            self._ch("NewConnectedLine", l1)
        for name, value in req.variables:
            self._varset(l2, name, value)
        if req.caller_id is not None:
            l2.cid_num, l2.cid_name = l1.cid_num, l1.cid_name
            l2.conn_num, l2.conn_name = l1.cid_num, l1.cid_name
            self._ch("NewCallerid", l2, ("CID-CallingPres", "0 (Presentation Allowed, Not Screened)"))
            self._ch("NewConnectedLine", l2)
        self._emit(
            "LocalBridge",
            Privilege.CALL,
            l1.fields("LocalOne"),
            l2.fields("LocalTwo"),
            ("Context", self.dial_context),
            ("Exten", self.number),
            ("LocalOptimization", self.local_optimization),
        )
        dial_string = req.channel.split("/", 1)[1]
        self._dial_event("DialBegin", None, l1, ("DialString", dial_string))
        self._timers.append(
            self._loop.call_later(
                (req.timeout_ms / 1000 + ORIGINATE_TIMEOUT_SLACK_S) * self._scale, self._originate_timeout
            )
        )
        self._l2_steps = list(self.host.dialplan.get(self.dial_context, []))
        self._l2_index = 0
        self._run_l2_dialplan()

    def _run_l2_dialplan(self) -> None:
        """;2 runs the dial context synchronously until Dial() starts waiting or it hangs up."""
        l2 = self.l2
        while self._l2_index < len(self._l2_steps):
            app, template = self._l2_steps[self._l2_index]
            self._l2_index += 1
            l2.priority = self._l2_index
            data = self._substitute(template, l2)
            self._newexten(l2, app, data)
            low = app.lower()
            if low == "dial":
                self._start_dial(data)
                return
            if low == "hangup":
                cause = int(data) if data.strip().isdigit() and int(data) > 0 else Cause.NORMAL_CLEARING
                self._hangup_request(l2, Cause.NORMAL_CLEARING, soft=True)
                self._l2_gone(cause)
                return
            if low not in ("noop", "set", "answer", "verbose", "log"):
                log.warning("sim: application %s in %s is not simulated; treated as NoOp", app, self.dial_context)
        self._l2_gone(self.trunk.hangup_cause if self.trunk and self.trunk.hangup_cause else 16)

    def _start_dial(self, data: str) -> None:
        l2 = self.l2
        target, _, rest = data.partition(",")
        ring_s_text = rest.split(",", 1)[0].strip()
        for var in DIAL_VARS_RESET:
            self._varset(l2, var, "")
        tech, resource, peer, device = trunk_parts(target)
        self.trunk_resource, self.trunk_device = resource, device
        uid = self.host.new_uniqueid()
        trunk = Channel(
            self.host.new_trunk_name(tech, peer), uid, self.l1.linkedid, "default", "s", created_at=self._loop.time()
        )
        trunk.accountcode = self.request.account
        self.trunk = trunk
        self.host.register(trunk, self)
        self._ch("Newchannel", trunk)
        trunk.context = ""
        self._varset(trunk, "DIALEDPEERNUMBER", resource)
        trunk.cid_num, trunk.cid_name = self.number, l2.cid_name
        trunk.conn_num, trunk.conn_name = l2.cid_num, l2.cid_name
        trunk.exten = self.number
        self._newexten(trunk, "AppDial", "(Outgoing Line)")
        self._ch("NewCallerid", trunk, ("CID-CallingPres", "0 (Presentation Allowed, Not Screened)"))
        self._ch("NewConnectedLine", trunk)
        trunk.context = self.host.trunk_context
        self._newstate(trunk, ChannelState.RINGING)
        self._newexten(trunk, "AppDial", "(Outgoing Line)")
        self._dsc(device, "RINGING")
        self._dial_event("DialBegin", l2, trunk, ("DialString", resource))
        self.dial_active = True
        self.dial_started_at = self._loop.time()
        if ring_s_text:
            with contextlib.suppress(ValueError):
                self._later(float(ring_s_text), self._dial_timeout)
        self._far_task = self.host.spawn(self._far_end(self.scenario.steps), f"sim-far-{self.l1.uniqueid}")

    # ------------------------------------------------------------------ far end script
    async def _far_end(self, steps: tuple[sc.Step, ...]) -> None:
        self._script_at = self._loop.time()
        for step in steps:
            if self.finished:
                return
            if isinstance(step, sc.Ring):
                self.ring()
            elif isinstance(step, sc.Progress):
                self.progress()
            elif isinstance(step, sc.Answer):
                self.answer()
            elif isinstance(step, sc.Wait):
                await self._sleep_script(step.seconds)
                self._next_frame_at = self._script_at
            elif isinstance(step, sc.Silence):
                await self._stream(silence_chunks(step.seconds), step.seconds)
            elif isinstance(step, sc.Tone):
                await self._stream(tone_chunks(step.name, step.seconds), tone_duration_s(step.name, step.seconds))
            elif isinstance(step, sc.Play):
                pcm = clip(step.clip).pcm
                for _ in range(step.times):
                    await self._stream(iter((pcm,)), len(pcm) / 16000, playback=True)
            elif isinstance(step, sc.Busy):
                self.reject_control(Cause.USER_BUSY)
            elif isinstance(step, sc.Congestion):
                self.reject_control(Cause.NORMAL_CIRCUIT_CONGESTION)
            elif isinstance(step, sc.Hangup):
                self._flush_media()
                self.far_hangup(step.cause)
            elif isinstance(step, sc.DropAmi):
                self.host.drop_ami_connections()

    async def _stream(self, chunks: Iterator[bytes], duration_s: float, *, playback: bool = False) -> None:
        """Media at the real pace (scaled); before progress/answer nothing flows, time passes.

        A file playback ends with its own short frame (frames.log 04: 88 bytes between the two
        announcements); generated tones and silence come in whole 20 ms frames.
        """
        if not self._media_flowing or self.host.audiosocket_addr is None:
            # Nobody can hear it: let the time pass in one sleep instead of 50 wake-ups a second.
            await self._sleep_script(duration_s)
            return
        for pcm in chunks:
            for frame in self._chunker.feed(pcm):
                if not await self._send_paced(frame):
                    return
        if playback:
            rest = self._chunker.flush()
            if rest:
                await self._send_paced(rest)
        self._script_at = self._next_frame_at

    async def _sleep_script(self, seconds: float) -> None:
        self._script_at = max(self._script_at, 0.0) + seconds * self._scale
        delay = self._script_at - self._loop.time()
        if delay > 0:
            await asyncio.sleep(delay)

    async def _send_paced(self, frame: bytes) -> bool:
        delay = self._next_frame_at - self._loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if self.finished:
            return False
        self._deliver(frame)
        self._next_frame_at += len(frame) / 16000 * self._scale  # the frame's own duration
        return True

    def _start_media(self) -> None:
        if not self._media_flowing:
            self._media_flowing = True
            self._next_frame_at = max(self._script_at, self._loop.time() - FRAME_S * self._scale)

    def _flush_media(self) -> None:
        if self._media_flowing:
            rest = self._chunker.flush()
            if rest:
                self._deliver(rest)

    def _deliver(self, frame: bytes) -> None:
        if self._leg is not None and self._leg.open:
            self._leg.send_audio(frame)
        elif self._leg is None and self.l1_in_pbx:
            self._pending_frames.append(frame)  # the oldest go first once the queue is full

    # ------------------------------------------------------------------ far end transitions
    def ring(self) -> None:
        if not self.dial_active or self.trunk is None:
            return
        l1, l2 = self.l1, self.l2
        if l1.state == ChannelState.DOWN:
            self._newstate(l1, ChannelState.RINGING)
            self._dial_event("DialState", None, l1, ("DialStatus", DialStatus.RINGING))
        secs, ms = self._elapsed(self.dial_started_at)
        self._varset(l2, "RINGTIME", secs)
        self._varset(l2, "RINGTIME_MS", ms)
        self._dial_event("DialState", l2, self.trunk, ("DialStatus", DialStatus.RINGING))
        self._local_inuse()

    def _local_inuse(self) -> None:
        if not self.local_inuse_sent:
            self.local_inuse_sent = True
            self._dsc(self.local_device, "INUSE")

    def progress(self) -> None:
        if not self.dial_active or self.trunk is None:
            return
        l1, l2 = self.l1, self.l2
        secs, ms = self._elapsed(self.dial_started_at)
        self._varset(l2, "PROGRESSTIME", secs)
        self._varset(l2, "PROGRESSTIME_MS", ms)
        if l1.state != ChannelState.UP:
            self._dial_event("DialState", None, l1, ("DialStatus", DialStatus.PROGRESS))
        self._dial_event("DialState", l2, self.trunk, ("DialStatus", DialStatus.PROGRESS))
        self._start_media()
        if l1.state != ChannelState.UP and self.request.early_media:
            self._newstate(l1, ChannelState.UP)
            self._local_inuse()
            self._dial_event("DialEnd", None, l1, ("DialStatus", DialStatus.ANSWER))
            self._originate_answered()

    def answer(self) -> None:
        if not self.dial_active or self.trunk is None:
            return
        l1, l2, trunk = self.l1, self.l2, self.trunk
        self.dial_active = False
        self.answered_at = self._loop.time()
        self._newstate(trunk, ChannelState.UP)
        trunk.exten = ""  # the answered trunk leaves AppDial's extension (DialEnd DestExten is empty)
        self._varset(l2, "DIALSTATUS", DialStatus.ANSWER)
        self._varset(l2, "DIALEDPEERNAME", trunk.name)
        self._varset(l2, "DIALEDPEERNUMBER", self.trunk_resource)
        self._dial_event("DialEnd", l2, trunk, ("DialStatus", DialStatus.ANSWER))
        self._dsc(self.trunk_device, "INUSE")
        self._newstate(l2, ChannelState.UP)
        l1_was_up = l1.state == ChannelState.UP
        if not l1_was_up:
            self._newstate(l1, ChannelState.UP)
            self._dial_event("DialEnd", None, l1, ("DialStatus", DialStatus.ANSWER))
        self.bridge_id = str(uuid_mod.uuid4())
        self._emit("BridgeCreate", Privilege.CALL, self._bridge_fields(0))
        self.local_inuse_sent = True
        self._dsc(self.local_device, "INUSE")
        self._dsc(self.local_device, "INUSE")
        self._start_media()
        if not l1_was_up:
            self._originate_answered()
        self._newexten(trunk, "AppDial", "(Outgoing Line)", extension="")
        trunk.bridge_id = l2.bridge_id = self.bridge_id
        self._emit("BridgeEnter", Privilege.CALL, self._bridge_fields(1), trunk.fields())
        self._emit("BridgeEnter", Privilege.CALL, self._bridge_fields(2), l2.fields())
        self._varset(trunk, "BRIDGEPEER", l2.name)
        self._varset(l2, "BRIDGEPEER", trunk.name)
        self.bridged = True

    def reject_control(self, cause: int) -> None:
        """Busy/congestion signalled as a control frame: DialEnd first, then one HangupRequest."""
        if not self.dial_active or self.trunk is None:
            return
        self.dial_active = False
        status = DialStatus.BUSY if cause == Cause.USER_BUSY else DialStatus.CONGESTION
        self._dial_event("DialEnd", self.l2, self.trunk, ("DialStatus", status))
        self._hangup_request(self.trunk, cause)
        self._hangup(self.trunk, cause)
        self._dsc(self.trunk_device, "UNKNOWN")
        self._after_dial(status)

    def far_hangup(self, cause: int) -> None:
        """The far end (trunk) hangs up with ``cause``: a rejection while ringing, or a hang-up."""
        trunk = self.trunk
        if trunk is None or not trunk.alive:
            return
        if self.dial_active:
            self.dial_active = False
            self._hangup_request(trunk, cause)
            self._dial_event("DialEnd", self.l2, trunk, ("DialStatus", dial_status_for_cause(cause)))
            self._hangup_request(trunk, cause)
            self._hangup(trunk, cause)
            self._dsc(self.trunk_device, "UNKNOWN")
            self._after_dial(dialstatus_variable_for_cause(cause))
        elif self.bridged:
            self._far_hangup_bridged(cause)

    def _after_dial(self, status: DialStatus) -> None:
        """Dial() returned without an answer: ;2 goes on in its dialplan (Hangup(${HANGUPCAUSE}))."""
        self.dial_status = status
        self._varset(self.l2, "DIALSTATUS", status)
        self._run_l2_dialplan()

    def _l2_gone(self, cause: int) -> None:
        """;2 hung up after an unanswered Dial: the Local pair takes ;1 down with the same cause."""
        l1, l2 = self.l1, self.l2
        if l1.alive:
            self._varset(l1, "CHANLOCALSTATUS", self.dial_status)
            self._hangup_request(l1, cause)
        self._hangup(l2, cause)
        self._dsc(self.local_device, "NOT_INUSE")
        if l1.alive:
            if l1.state == ChannelState.UP:
                if self.l1_in_pbx:
                    self._hangup_request(l1, Cause.NORMAL_CLEARING, soft=True)
                self._hangup(l1, cause)
            else:
                self._dial_event("DialEnd", None, l1, ("DialStatus", dial_status_for_cause(cause)))
                self._originate_failed(OriginateReason.FAILURE)
                self._hangup(l1, cause)
            self._dsc(self.local_device, "NOT_INUSE")
        self._finish()

    def _answered_vars(self) -> None:
        secs, ms = self._elapsed(self.answered_at)
        self._varset(self.l2, "ANSWEREDTIME", secs)
        self._varset(self.l2, "ANSWEREDTIME_MS", ms)
        secs, ms = self._elapsed(self.dial_started_at)
        self._varset(self.l2, "DIALEDTIME", secs)
        self._varset(self.l2, "DIALEDTIME_MS", ms)
        self._varset(self.l2, "DIALSTATUS", DialStatus.ANSWER)

    def _far_hangup_bridged(self, cause: int) -> None:
        l1, l2, trunk = self.l1, self.l2, self.trunk
        assert trunk is not None
        self.bridged = False
        self._hangup_request(trunk, cause)
        self._varset(trunk, "BRIDGEPEER", "")
        self._varset(l2, "BRIDGEPEER", "")
        self._emit("BridgeLeave", Privilege.CALL, self._bridge_fields(1), trunk.fields())
        self._hangup_request(trunk, cause)
        self._hangup(trunk, cause)
        self._emit("BridgeLeave", Privilege.CALL, self._bridge_fields(0), l2.fields())
        self._answered_vars()
        self._hangup_request(l2, Cause.NORMAL_CLEARING, soft=True)
        if l1.alive:
            self._varset(l1, "CHANLOCALSTATUS", DialStatus.ANSWER)
            self._hangup_request(l1, cause)
        self._hangup(l2, cause)
        self._emit("BridgeDestroy", Privilege.CALL, self._bridge_fields(0))
        if l1.alive:
            if self._queue is not None:
                self._queue.caller_leaving()
            if self.l1_in_pbx:
                self._hangup_request(l1, Cause.NORMAL_CLEARING, soft=True)
            self._hangup(l1, cause)
        self._dsc(self.trunk_device, "UNKNOWN")
        self._dsc(self.local_device, "NOT_INUSE")
        self._dsc(self.local_device, "NOT_INUSE")
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
            self._hangup_request(l1, Cause.NORMAL_CLEARING, soft=True)
        if self.bridged and trunk is not None:
            self.bridged = False
            self._hangup_request(l2, cause)
            if self._queue is not None:
                self._queue.caller_leaving()
            self._hangup(l1, cause)
            if self._queue is not None:
                self._queue.caller_gone()
            cause = cause if peer_cause is None else peer_cause
            self._dsc(self.local_device, "NOT_INUSE")
            self._varset(l2, "BRIDGEPEER", "")
            self._varset(trunk, "BRIDGEPEER", "")
            self._emit("BridgeLeave", Privilege.CALL, self._bridge_fields(1), l2.fields())
            self._answered_vars()
            self._hangup_request(l2, Cause.NORMAL_CLEARING, soft=True)
            self._emit("BridgeLeave", Privilege.CALL, self._bridge_fields(0), trunk.fields())
            self._hangup(l2, cause)
            self._emit("BridgeDestroy", Privilege.CALL, self._bridge_fields(0))
            self._hangup_request(trunk, cause)
            self._hangup(trunk, cause)
            self._dsc(self.local_device, "NOT_INUSE")
            self._dsc(self.trunk_device, "UNKNOWN")
            self._finish()
            return
        if l1.state != ChannelState.UP:
            self._hangup(l1, cause)
            self._originate_failed(OriginateReason.HANGUP)
        else:
            self._hangup(l1, cause)
        self._dsc(self.local_device, "NOT_INUSE")
        self._cancel_l2(cause)

    def _cancel_l2(self, cause: int) -> None:
        """;1 is gone while ;2 still dials: ;2 gets the hang-up, Dial() cancels the trunk."""
        l2, trunk = self.l2, self.trunk
        if l2.alive:
            self._hangup_request(l2, cause)
            if self.dial_active and trunk is not None and trunk.alive:
                self.dial_active = False
                self._dial_event("DialEnd", l2, trunk, ("DialStatus", DialStatus.CANCEL))
                self._varset(l2, "DIALSTATUS", DialStatus.CANCEL)
                self._hangup(trunk, cause)
                self._dsc(self.trunk_device, "UNKNOWN")
            self._hangup(l2, cause)
            self._dsc(self.local_device, "NOT_INUSE")
        self._finish()

    def _originate_timeout(self) -> None:
        """Originate ``Timeout`` ran out before ;1 was answered: no DialEnd, cause 19, Reason 3."""
        l1 = self.l1
        if self.finished or not l1.alive or l1.state == ChannelState.UP:
            return
        cause = Cause.NO_ANSWER
        self._hangup_request(l1, cause)
        self._originate_failed(OriginateReason.RING_TIMEOUT)
        self._hangup(l1, cause)
        self._dsc(self.local_device, "NOT_INUSE")
        self._cancel_l2(cause)

    def _dial_timeout(self) -> None:
        """Dial(…,<s>) ring time ran out: DialEnd NOANSWER, the trunk ends with cause 0."""
        trunk = self.trunk
        if self.finished or not self.dial_active or trunk is None:
            return
        self.dial_active = False
        self._dial_event("DialEnd", self.l2, trunk, ("DialStatus", DialStatus.NOANSWER))
        self._hangup_request(trunk, None)
        self._hangup(trunk, Cause.NOT_DEFINED)
        self._dsc(self.trunk_device, "UNKNOWN")
        self._after_dial(DialStatus.NOANSWER)

    # ------------------------------------------------------------------ originate outcome
    def _originate_response(self, success: bool, reason: OriginateReason, channel: str) -> None:
        if self.originate_done:
            return
        self.originate_done = True
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
            self._start_pbx("", "", 1, steps)
        else:
            self._start_pbx(req.context, req.exten, req.priority)

    # ------------------------------------------------------------------ ;1 dialplan
    def _start_pbx(self, context: str, exten: str, priority: int, steps: list[DialplanStep] | None = None) -> None:
        self.l1_in_pbx = True
        if self._pbx_task is not None and self._pbx_task is not asyncio.current_task():
            self._pbx_task.cancel()
        self._pbx_task = self.host.spawn(self._pbx(context, exten, priority, steps), f"sim-pbx-{self.l1.uniqueid}")

    async def _pbx(self, context: str, exten: str, priority: int, steps: list[DialplanStep] | None) -> None:
        l1 = self.l1
        plan = steps if steps is not None else self.host.dialplan.get(context)
        if plan is None:
            # As Asterisk: the channel leaves its application, finds no extension there and is
            # hung up with cause 0; its Local peer and the trunk then end normally.
            log.warning(
                "sim: %s sent to %s,%s,%d which the simulated dialplan lacks", l1.name, context, exten, priority
            )
            self._hangup_request(l1, Cause.NORMAL_CLEARING, soft=True)
            l1.context, l1.exten, l1.priority = context, exten, priority
            self.hangup_l1(Cause.NOT_DEFINED, peer_cause=Cause.NORMAL_CLEARING)
            return
        if context:
            l1.context, l1.exten = context, exten
        index = max(priority, 1) - 1
        while index < len(plan) and l1.alive:
            app, template = plan[index]
            l1.priority = index + 1
            data = self._substitute(template, l1)
            self._newexten(l1, app, data)
            low = app.lower()
            if low == "hangup":
                text = data.strip()
                self.hangup_l1(int(text) if text.isdigit() and int(text) > 0 else Cause.NORMAL_CLEARING, via_app=True)
                return
            if low == "wait":
                try:
                    await asyncio.sleep(float(data or 0) * self._scale)
                except ValueError:
                    pass
            elif low == "audiosocket":
                if not await self._app_audiosocket(data):
                    self.hangup_l1(Cause.NORMAL_CLEARING)
                    return
            elif low == "queue":
                if not self._app_queue(data):
                    index += 1
                    continue  # no such queue: Queue() returns at once, the dialplan goes on
                await asyncio.Event().wait()  # held in the queue, then with an operator
            elif low in ("playback", "echo", "musiconhold", "waitforsilence", "park"):
                # Held until a hang-up or a redirect cancels this task (the operator is talking).
                await asyncio.Event().wait()
            elif low not in ("noop", "set", "answer", "verbose", "log", "progress", "ringing"):
                log.warning("sim: application %s is not simulated; the channel hangs up", app)
                self.hangup_l1(Cause.NORMAL_CLEARING)
                return
            index += 1
        if l1.alive:
            self.hangup_l1(Cause.NORMAL_CLEARING)  # fell off the end of the dialplan

    def _app_queue(self, data: str) -> bool:
        """Queue(<name>): True when ;1 joined the queue, False when there is no such queue."""
        l1 = self.l1
        for var in QUEUE_VARS_AT_START:
            self._varset(l1, var, "")
        queue = self.host.queues.get(data.split(",", 1)[0].strip())
        if queue is None:
            self._varset(l1, "QUEUESTATUS", "UNKNOWN")
            return False
        self._queue = queue.join(self)
        return True

    async def _app_audiosocket(self, data: str) -> bool:
        """Returns True when the app ended normally (the dialplan goes on), False on -1."""
        uuid_text, _, _app_addr = data.partition(",")
        if self.host.audiosocket_addr is None:
            await asyncio.Event().wait()  # no worker attached: play along silently until hangup
            return True
        # The simulator's configured address wins over the app data: in tests and the demo the
        # worker may advertise an address meant for a real Asterisk.
        host, port = self.host.audiosocket_addr
        leg = AudioSocketLeg(uuid=uuid_text.strip(), inactivity_s=self.idle_s())
        try:
            await leg.connect(host, port)
        except (OSError, ValueError) as exc:
            log.warning("sim: AudioSocket connect to %s:%s failed for %s: %s", host, port, self.l1.name, exc)
            await leg.close()
            return False
        self._leg = leg
        for frame in self._pending_frames:
            leg.send_audio(frame)
        self._pending_frames.clear()
        try:
            reason = await leg.ended
        finally:
            self._leg = None
            await self._shielded_close(leg)
        return reason in (EndReason.SERVER_HANGUP, EndReason.SERVER_CLOSED)

    def idle_s(self) -> float:
        idle = getattr(self.host, "audiosocket_idle_s", 2.0)
        # A floor keeps heavy time compression from ending AudioSocket on event-loop jitter.
        return max(float(idle) * self._scale, 0.2)

    async def _shielded_close(self, leg: AudioSocketLeg) -> None:
        task = self.host.spawn(leg.close(), f"sim-audiosocket-close-{self.l1.uniqueid}")
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(task)

    # ------------------------------------------------------------------ AMI actions
    def redirect(self, channel: Channel, context: str, exten: str, priority: int) -> None:
        if channel is not self.l1:
            # Redirecting ;2 or the trunk is not part of the contract; move ;1 only.
            log.warning("sim: Redirect of %s is simulated as a no-op", channel.name)
            return
        if self.l1.state != ChannelState.UP:
            self.request.context, self.request.exten, self.request.priority = context, exten, priority
            return
        self._start_pbx(context, exten, priority)
        talk_s = self.scenario.operator_talk_s
        if self.bridged and talk_s is not None:
            if self._far_task is not None:
                self._far_task.cancel()
            steps: tuple[sc.Step, ...] = (sc.Silence(talk_s), sc.Hangup(16))
            self._far_task = self.host.spawn(self._far_end(steps), f"sim-far-op-{self.l1.uniqueid}")

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
        self.finished = True
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        current = asyncio.current_task()
        for task in (self._far_task, self._pbx_task):
            if task is not None and task is not current:
                task.cancel()
        for ch in (self.l1, self.l2, self.trunk, *(self._queue.channels if self._queue else ())):
            if ch is not None and ch.alive:
                ch.alive = False
                self.host.unregister(ch)
        if self._leg is not None:
            leg, self._leg = self._leg, None
            self.host.spawn(leg.close(), f"sim-audiosocket-close-{self.l1.uniqueid}")
        if not self.originate_done and self._on_result is not None:
            self.originate_done = True
            self._on_result(OriginateResult(False, OriginateReason.FAILURE))
        self.host.call_finished(self)
