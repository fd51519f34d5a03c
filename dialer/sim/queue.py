"""The operators' queue (app_queue) as the simulator plays it after the worker's ``Redirect``.

Modelled on real Asterisk 22 transcripts (tests/asterisk/transcripts/handover/), recorded with
the deploy contract's queue (``strategy = leastrecent``, ``setinterfacevar = yes``) and
operators that are Local channels into a context that rings ``answer_after_s`` and answers:

- the person's ``;1`` joins: QueueCallerJoin; the longest-idle free member's Local pair is created
  and rung (DialBegin/DialState from ``;1``, AgentCalled, QueueMemberStatus);
- the operator answers: DialEnd ANSWER, QueueCallerLeave, AgentConnect, a bridge ``;1`` ↔ operator;
- the person hangs up: AgentComplete (``Reason: caller``), the operator's channels go;
- the person hangs up first: DialEnd CANCEL, QueueCallerAbandon, QueueCallerLeave;
- no such queue: Queue() sets ``QUEUESTATUS=UNKNOWN`` and the dialplan goes on (to Hangup).

People wait in order; a member rings one person at a time (``ringinuse = no``), and when it frees
up it is offered to the next person waiting. The device states ``Queue:<name>`` (people
waiting) and ``Queue:<name>_avail`` (a member free) are sent when they change.

Operators for pacing (issue 12): with ``talk_mean_s`` set, an operator ends each call after a talk
time drawn from a gamma distribution (mean ``talk_mean_s``, spread ``talk_sd_s``), and the person's
``;1`` leaves Queue() and hangs up (AgentComplete ``Reason: agent``). A member is paused and
unpaused by the AMI ``QueuePause`` action (QueueMemberPause, then QueueMemberStatus), and
``QueueStatus`` lists the members (QueueParams, QueueMember …, QueueStatusComplete) as
app_queue's manager_queues_status does. ``max_unserved`` is the most people ever waiting with no
operator ringing for them.
"""

from __future__ import annotations

import random
import re
import time
import uuid as uuid_mod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dialer.sim.channels import Cause, Channel, ChannelState, DialStatus, Header, Privilege, bridge_fields, event

if TYPE_CHECKING:
    from dialer.sim.call import SimCall

# app_queue's AST_DEVICE_* numbers in QueueMemberStatus
STATUS_NOT_INUSE = 1
STATUS_INUSE = 2
QUEUE_VARS_AT_START = ("ANSWEREDTIME", "ANSWEREDTIME_MS", "DIALEDTIME", "DIALEDTIME_MS", "QUEUEWAIT", "QUEUEWAIT_MS")
_LOCAL_MEMBER = re.compile(r"^Local/(?P<exten>[^@/]+)@(?P<context>[^/]+)(?:/(?P<opts>.*))?$", re.IGNORECASE)
OPERATOR_STAY_S = 600  # the operator's phone stays on the line (Wait(600)) until the person leaves


@dataclass(frozen=True)
class QueueMember:
    """One operator: ``Local/<exten>@<context>/n`` whose context rings, then answers."""

    interface: str
    name: str
    answer_after_s: float = 1.0

    @property
    def local(self) -> tuple[str, str]:
        m = _LOCAL_MEMBER.match(self.interface)
        if m is None:
            raise ValueError(f"the simulator's queue members are Local/<exten>@<context>/n, got {self.interface!r}")
        return m["exten"], m["context"]

    @property
    def device(self) -> str:
        exten, context = self.local
        return f"Local/{exten}@{context}"

    def dialplan(self) -> list[tuple[str, str]]:
        """The operator's phone as the real-Asterisk suite's pbx has it (Newexten of its ;2)."""
        wait = f"{self.answer_after_s:.3f}".rstrip("0").rstrip(".")
        return [("Ringing", ""), ("Wait", wait), ("Answer", ""), ("Wait", str(OPERATOR_STAY_S)), ("Hangup", "")]


@dataclass(frozen=True)
class QueueConfig:
    name: str
    members: tuple[QueueMember, ...]
    talk_mean_s: float | None = None  # None: the operator stays until the person hangs up
    talk_sd_s: float = 0.0
    seed: int | None = None


def default_queues(
    operators: int = 4,
    answer_after_s: float = 1.0,
    *,
    talk_mean_s: float | None = None,
    talk_sd_s: float = 0.0,
    seed: int | None = None,
) -> dict[str, QueueConfig]:
    """The ``operators`` queue of deploy/asterisk/queues_dialer.conf with ``operators`` members."""
    members = tuple(
        QueueMember(f"Local/op{i}@dialer-operators/n", f"op{i}", answer_after_s) for i in range(1, operators + 1)
    )
    return {"operators": QueueConfig("operators", members, talk_mean_s, talk_sd_s, seed)}


@dataclass
class _MemberState:
    member: QueueMember
    busy: bool = False  # ringing for someone or talking
    paused: bool = False
    paused_reason: str = ""
    last_pause: int = 0
    calls_taken: int = 0
    last_call: int = 0  # Unix time of the end of the last call


class SimQueue:
    """One queue's people and members (shared by every call of the simulator)."""

    def __init__(self, config: QueueConfig) -> None:
        self.config = config
        self.name = config.name
        self.members = [_MemberState(m) for m in config.members]
        self.waiting: list[QueueEntry] = []
        self.login_time = int(time.time())
        self._queue_state: str | None = None
        self._avail_state: str | None = None
        self._random = random.Random(config.seed)
        self.emit: Callable[[list[Header]], None] | None = None  # the server's, for events of no call
        self.max_unserved = 0  # the most people ever waiting with no operator ringing for them

    def talk_time_s(self) -> float | None:
        """One call's talk time (simulated seconds), None when the person decides."""
        mean, sd = self.config.talk_mean_s, self.config.talk_sd_s
        if mean is None:
            return None
        if sd <= 0:
            return mean
        shape = (mean / sd) ** 2
        return max(1.0, self._random.gammavariate(shape, mean / shape))

    def _note_unserved(self) -> None:
        unserved = sum(1 for e in self.waiting if e.member is None and not e.done)
        self.max_unserved = max(self.max_unserved, unserved)

    # -- device states -----------------------------------------------------------------------
    def queue_state(self, call: SimCall) -> None:
        state = "RINGING" if self.waiting else "NOT_INUSE"
        if state != self._queue_state:
            self._queue_state = state
            call.ev.device_state(f"Queue:{self.name}", state)

    def avail_state(self, call: SimCall) -> None:
        state = "NOT_INUSE" if any(not m.busy and not m.paused for m in self.members) else "INUSE"
        if state != self._avail_state:
            self._avail_state = state
            call.ev.device_state(f"Queue:{self.name}_avail", state)

    def _member_blob(self, st: _MemberState, status: int) -> list[Header]:
        """app_queue's queue_member_blob_create: every member event carries the whole state."""
        m = st.member
        return [
            ("Queue", self.name),
            ("MemberName", m.name),
            ("Interface", m.interface),
            ("StateInterface", m.interface),
            ("Membership", "static"),
            ("Penalty", "0"),
            ("CallsTaken", str(st.calls_taken)),
            ("LastCall", str(st.last_call)),
            ("LastPause", str(st.last_pause)),
            ("LoginTime", str(self.login_time)),
            ("InCall", "0"),
            ("Status", str(status)),
            ("Paused", "1" if st.paused else "0"),
            ("PausedReason", st.paused_reason),
            ("Ringinuse", "0"),
            ("Wrapuptime", "0"),
        ]

    def member_status(self, call: SimCall, st: _MemberState, status: int) -> None:
        call.ev.emit("QueueMemberStatus", Privilege.AGENT, self._member_blob(st, status))

    def _status_of(self, st: _MemberState) -> int:
        return STATUS_INUSE if st.busy else STATUS_NOT_INUSE

    def member(self, interface: str) -> _MemberState | None:
        for st in self.members:
            if interface in (st.member.interface, st.member.name):
                return st
        return None

    def pause(self, st: _MemberState, paused: bool, reason: str = "") -> None:
        """AMI QueuePause: the member is (un)paused; app_queue sends QueueMemberPause (the
        member's state) and the device-state QueueMemberStatus."""
        st.paused, st.paused_reason = paused, reason if paused else ""
        if paused:
            st.last_pause = int(time.time())
        if self.emit is not None:
            self.emit(event("QueueMemberPause", Privilege.AGENT, self._member_blob(st, self._status_of(st))))
            self.emit(event("QueueMemberStatus", Privilege.AGENT, self._member_blob(st, self._status_of(st))))
        if not paused:
            self.offer()

    def status_listing(self, action_id: str | None) -> list[list[Header]]:
        """``QueueStatus`` for this queue: QueueParams, QueueMember rows, QueueEntry rows."""
        tail: list[Header] = [("ActionID", action_id)] if action_id is not None else []
        rows: list[list[Header]] = [
            [
                ("Event", "QueueParams"),
                ("Queue", self.name),
                ("Max", "0"),
                ("Strategy", "leastrecent"),
                ("Calls", str(len(self.waiting))),
                ("Holdtime", "0"),
                ("TalkTime", "0"),
                ("Completed", str(sum(m.calls_taken for m in self.members))),
                ("Abandoned", "0"),
                ("ServiceLevel", "0"),
                ("ServicelevelPerf", "0.0"),
                ("ServicelevelPerf2", "0.0"),
                ("Weight", "0"),
                *tail,
            ]
        ]
        for st in self.members:
            m = st.member
            rows.append(
                [
                    ("Event", "QueueMember"),
                    ("Queue", self.name),
                    ("Name", m.name),
                    ("Location", m.interface),
                    ("StateInterface", m.interface),
                    ("Membership", "static"),
                    ("Penalty", "0"),
                    ("CallsTaken", str(st.calls_taken)),
                    ("LastCall", str(st.last_call)),
                    ("LastPause", str(st.last_pause)),
                    ("LoginTime", str(self.login_time)),
                    ("InCall", "0"),
                    ("Status", str(self._status_of(st))),
                    ("Paused", "1" if st.paused else "0"),
                    ("PausedReason", st.paused_reason),
                    ("Wrapuptime", "0"),
                    *tail,
                ]
            )
        for pos, entry in enumerate(self.waiting, start=1):
            rows.append(
                [
                    ("Event", "QueueEntry"),
                    ("Queue", self.name),
                    ("Position", str(pos)),
                    ("Channel", entry.call.l1.name),
                    ("Uniqueid", entry.call.l1.uniqueid),
                    *tail,
                ]
            )
        return rows

    # -- people --------------------------------------------------------------------------------
    def join(self, call: SimCall) -> QueueEntry:
        entry = QueueEntry(self, call, len(self.waiting) + 1)
        self.waiting.append(entry)
        self.queue_state(call)
        entry.queue_event(
            "QueueCallerJoin",
            ("Queue", self.name),
            ("Position", str(entry.position)),
            ("Count", str(len(self.waiting))),
        )
        self.offer()
        return entry

    def leave(self, entry: QueueEntry) -> None:
        if entry in self.waiting:
            self.waiting.remove(entry)

    def offer(self) -> None:
        """Ring free members for the people waiting, first come first served (leastrecent)."""
        for entry in list(self.waiting):
            if entry.member is not None or entry.done:
                continue
            free = [m for m in self.members if not m.busy and not m.paused]
            if not free:
                break
            entry.ring(min(free, key=lambda m: m.last_call))
        self._note_unserved()


@dataclass(eq=False)
class QueueEntry:
    """One person (a call's ``;1``) in the queue."""

    queue: SimQueue
    call: SimCall
    position: int
    member: _MemberState | None = None
    op1: Channel | None = None
    op2: Channel | None = None
    joined_at: float = 0.0
    rang_at: float = 0.0
    connected_at: float = 0.0
    connected: bool = False
    done: bool = False
    bridge_id: str = ""
    agent_ended: bool = False  # the operator hung up (Reason: agent)
    _op2_steps: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.joined_at = self.call.loop.time()

    # -- helpers -------------------------------------------------------------------------------
    def queue_event(self, name: str, *extra: Header, dest: Channel | None = None) -> None:
        parts: list[list[Header] | Header] = [self.call.l1.fields()]
        if dest is not None:
            parts.append(dest.fields("Dest"))
        parts.extend(extra)
        self.call.ev.emit(name, Privilege.AGENT, *parts)

    def _member_fields(self) -> list[Header]:
        assert self.member is not None
        return [
            ("Queue", self.queue.name),
            ("Interface", self.member.member.interface),
            ("MemberName", self.member.member.name),
        ]

    def _seconds(self, since: float) -> int:
        return int((self.call.loop.time() - since) / self.call.time_scale)

    def _op2_app(self, index: int) -> None:
        assert self.op2 is not None
        app, data = self._op2_steps[index]
        self.op2.priority = index + 1
        self.call.ev.newexten(self.op2, app, data)

    def _member_vars(self, ch: Channel) -> None:
        assert self.member is not None
        st = self.member
        for var, value in (
            ("MEMBERINTERFACE", st.member.interface),
            ("MEMBERNAME", st.member.name),
            ("MEMBERCALLS", str(st.calls_taken)),
            ("MEMBERLASTCALL", str(st.last_call)),
            ("MEMBERPENALTY", "0"),
            ("MEMBERDYNAMIC", "0"),
            ("MEMBERREALTIME", "0"),
        ):
            self.call.ev.varset(ch, var, value)

    # -- the operator's phone rings ------------------------------------------------------------
    def ring(self, st: _MemberState) -> None:
        call, host, l1 = self.call, self.call.host, self.call.l1
        st.busy = True
        self.member = st
        self.rang_at = call.loop.time()
        exten, context = st.member.local
        base = f"Local/{exten}@{context}-{host.new_local_id()}"
        op1 = Channel(base + ";1", host.new_uniqueid(), l1.linkedid, context, exten, created_at=self.rang_at)
        op2 = Channel(
            base + ";2", host.new_uniqueid(), l1.linkedid, context, exten, ChannelState.RING, created_at=self.rang_at
        )
        op1.accountcode = op2.accountcode = l1.accountcode
        self.op1, self.op2 = op1, op2
        self._op2_steps = st.member.dialplan()
        for ch in (op1, op2):
            host.register(ch, call)
        call.ev.channel_event("Newchannel", op1)
        call.ev.channel_event("Newchannel", op2)
        op1.cid_num, op1.cid_name = l1.cid_num, l1.cid_name
        call.ev.newexten(op1, "AppQueue", "(Outgoing Line)")
        call.ev.channel_event("NewCallerid", op1, ("CID-CallingPres", "0 (Presentation Allowed, Not Screened)"))
        dialed = f"{exten}@{context}/n"
        call.ev.varset(op1, "DIALEDPEERNUMBER", dialed)
        call.ev.varset(op2, "DIALEDPEERNUMBER", dialed)
        op2.cid_num, op2.cid_name = l1.cid_num, l1.cid_name
        op2.conn_num, op2.conn_name = l1.cid_num, l1.cid_name
        call.ev.channel_event("NewCallerid", op2, ("CID-CallingPres", "0 (Presentation Allowed, Not Screened)"))
        call.ev.channel_event("NewConnectedLine", op2)
        call.ev.emit(
            "LocalBridge",
            Privilege.CALL,
            op1.fields("LocalOne"),
            op2.fields("LocalTwo"),
            ("Context", context),
            ("Exten", exten),
            ("LocalOptimization", "No"),
        )
        self._op2_app(0)  # Ringing()
        call.ev.dial_event("DialBegin", l1, op1, ("DialString", st.member.interface))
        op1.exten = "s"
        op1.conn_num, op1.conn_name = l1.cid_num, l1.cid_name
        call.ev.newstate(op1, ChannelState.RINGING)
        self.queue_event("AgentCalled", *self._member_fields(), dest=op1)
        call.ev.newexten(op1, "AppQueue", "(Outgoing Line)")
        call.ev.channel_event("NewConnectedLine", op1)
        call.ev.dial_event("DialState", l1, op1, ("DialStatus", DialStatus.RINGING))
        self._op2_app(1)  # Wait(<ring>)
        call.ev.device_state(st.member.device, "INUSE")
        self.queue.member_status(call, st, STATUS_INUSE)
        self.queue.avail_state(call)
        call.later(st.member.answer_after_s, self.answer)

    # -- the operator answers -------------------------------------------------------------------
    def answer(self) -> None:
        call, l1, op1, op2, st = self.call, self.call.l1, self.op1, self.op2, self.member
        if self.done or op1 is None or op2 is None or st is None or not l1.alive:
            return
        self._op2_app(2)  # Answer()
        call.ev.newstate(op2, ChannelState.UP)
        call.ev.newstate(op1, ChannelState.UP)
        call.ev.dial_event("DialEnd", l1, op1, ("DialStatus", DialStatus.ANSWER))
        self._member_vars(l1)
        self._member_vars(op1)
        call.ev.device_state(st.member.device, "INUSE")
        call.ev.device_state(st.member.device, "INUSE")
        self.queue.leave(self)
        self.queue.queue_state(call)
        self.queue_event(
            "QueueCallerLeave",
            ("Queue", self.queue.name),
            ("Position", str(self.position)),
            ("Count", str(len(self.queue.waiting))),
        )
        hold_s = self._seconds(self.joined_at)
        call.ev.varset(l1, "QUEUEPOSITION", str(self.position))
        call.ev.varset(l1, "QUEUEWAIT", str(hold_s))
        call.ev.varset(l1, "QUEUEWAIT_MS", str(hold_s * 1000))
        self.queue_event(
            "AgentConnect",
            *self._member_fields(),
            ("HoldTime", str(hold_s)),
            ("RingTime", str(self._seconds(self.rang_at))),
            dest=op1,
        )
        self.connected, self.connected_at = True, call.loop.time()
        self.bridge_id = str(uuid_mod.uuid4())
        call.ev.emit("BridgeCreate", Privilege.CALL, self._bridge(0))
        op1.bridge_id = l1.bridge_id = self.bridge_id
        call.ev.emit("BridgeEnter", Privilege.CALL, self._bridge(1), op1.fields())
        call.ev.emit("BridgeEnter", Privilege.CALL, self._bridge(2), l1.fields())
        call.ev.varset(op1, "BRIDGEPEER", l1.name)
        call.ev.varset(l1, "BRIDGEPEER", op1.name)
        self._op2_app(3)  # Wait(600): the operator talks
        talk_s = self.queue.talk_time_s()
        if talk_s is not None:
            call.later(talk_s, self._operator_hangs_up)

    def _operator_hangs_up(self) -> None:
        """The operator ends the call: the bridge breaks, Queue() returns and ;1 hangs up."""
        if self.done or not self.call.l1.alive:
            return
        self.agent_ended = True
        self.call.hangup_l1(Cause.NORMAL_CLEARING, via_app=True)

    def _bridge(self, count: int) -> list[Header]:
        return bridge_fields(self.bridge_id, count)

    # -- the person goes -------------------------------------------------------------------------
    def caller_leaving(self) -> None:
        """The person's ;1 is being hung up (HangupRequest sent, its Hangup comes next)."""
        if self.done:
            return
        if self.connected:
            self._complete()
        else:
            self._abandon()

    def _complete(self) -> None:
        call, l1, op1 = self.call, self.call.l1, self.op1
        assert op1 is not None
        self.queue_event(
            "AgentComplete",
            *self._member_fields(),
            ("HoldTime", str(int((self.connected_at - self.joined_at) / call.time_scale))),
            ("TalkTime", str(self._seconds(self.connected_at))),
            ("Reason", "agent" if self.agent_ended else "caller"),
            dest=op1,
        )
        call.ev.varset(l1, "BRIDGEPEER", "")
        call.ev.varset(op1, "BRIDGEPEER", "")
        call.ev.emit("BridgeLeave", Privilege.CALL, self._bridge(1), l1.fields())
        secs, ms = call.elapsed(self.connected_at)
        call.ev.varset(l1, "ANSWEREDTIME", secs)
        call.ev.varset(l1, "ANSWEREDTIME_MS", ms)
        secs, ms = call.elapsed(l1.created_at)
        call.ev.varset(l1, "DIALEDTIME", secs)
        call.ev.varset(l1, "DIALEDTIME_MS", ms)

    def _abandon(self) -> None:
        call, l1, op1, op2 = self.call, self.call.l1, self.op1, self.op2
        if op1 is not None and op2 is not None:
            call.ev.dial_event("DialEnd", l1, op1, ("DialStatus", DialStatus.CANCEL))
            call.ev.dial_event("DialEnd", l1, op1, ("DialStatus", DialStatus.CANCEL))
            call.ev.hangup_request(op2, Cause.NOT_DEFINED)
            call.ev.hangup(op1, Cause.NOT_DEFINED)
        hold_s = self._seconds(self.joined_at)
        call.ev.varset(l1, "QUEUEWAIT", str(hold_s))
        call.ev.varset(l1, "QUEUEWAIT_MS", str(hold_s * 1000))
        secs, ms = call.elapsed(l1.created_at)
        call.ev.varset(l1, "DIALEDTIME", secs)
        call.ev.varset(l1, "DIALEDTIME_MS", ms)
        call.ev.varset(l1, "ANSWEREDTIME", "0")
        call.ev.varset(l1, "ANSWEREDTIME_MS", "0")
        call.ev.varset(l1, "ABANDONED", "TRUE")
        self.queue_event(
            "QueueCallerAbandon",
            ("Queue", self.queue.name),
            ("Position", str(self.position)),
            ("OriginalPosition", str(self.position)),
            ("HoldTime", str(hold_s)),
        )
        if self.member is not None:
            call.ev.device_state(self.member.member.device, "NOT_INUSE")
        self.queue.leave(self)
        self.queue.queue_state(call)
        if op2 is not None:
            call.ev.hangup_request(op2, Cause.NORMAL_CLEARING, soft=True)
            call.ev.hangup(op2, Cause.NOT_DEFINED)
        self.queue_event(
            "QueueCallerLeave",
            ("Queue", self.queue.name),
            ("Position", str(self.position)),
            ("Count", str(len(self.queue.waiting))),
        )
        call.ev.varset(l1, "QUEUEPOSITION", str(self.position))
        self.done = True
        if self.member is not None:
            self._free_member(calls_taken=False)

    def caller_gone(self) -> None:
        """After the person's ;1 hung up: the operator's channels go (a connected call)."""
        if self.done:
            return
        self.done = True
        call, op1, op2 = self.call, self.op1, self.op2
        if not self.connected or op1 is None or op2 is None:
            return
        call.ev.emit("BridgeLeave", Privilege.CALL, self._bridge(0), op1.fields())
        call.ev.emit("BridgeDestroy", Privilege.CALL, self._bridge(0))
        call.ev.hangup_request(op2, Cause.NORMAL_CLEARING)
        call.ev.hangup(op1, Cause.NORMAL_CLEARING)
        call.ev.hangup_request(op2, Cause.NORMAL_CLEARING, soft=True)
        call.ev.hangup(op2, Cause.NORMAL_CLEARING)
        self._free_member(calls_taken=True)

    def _free_member(self, *, calls_taken: bool) -> None:
        st, call = self.member, self.call
        assert st is not None
        if calls_taken:
            st.calls_taken += 1
            st.last_call = int(time.time())
        st.busy = False
        self.queue.member_status(call, st, STATUS_NOT_INUSE)
        call.ev.device_state(st.member.device, "NOT_INUSE")
        if calls_taken:
            call.ev.device_state(st.member.device, "NOT_INUSE")
        self.queue.avail_state(call)
        self.queue.offer()

    @property
    def channels(self) -> list[Channel]:
        return [c for c in (self.op1, self.op2) if c is not None and c.alive]
