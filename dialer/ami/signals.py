"""Per-attempt call signals from raw AMI events: pure, no I/O, time passed in.

The worker originates ``Local/<number>@dialer-dial/n`` with ``ChannelId`` = the attempt id, so
(tests/asterisk/transcripts/local/):

- the ``;1`` half has Uniqueid ``<attempt>``: it goes Up on *progress* (early media) or after the
  real answer, and runs the analysis context;
- the ``;2`` half has Uniqueid ``<attempt>;2``: it runs ``Dial(<trunk>)`` and goes Up only on a real
  answer; its DialEnd towards the trunk carries the DialStatus (none on a ring timeout);
- the trunk channel has its own Uniqueid and ``Linkedid`` = the attempt id; it is told apart from
  an operator's channel by who dials it (``;2`` → trunk, ``;1`` in the operator Queue → operator).

Events arrive in whatever order Asterisk publishes them (OriginateResponse travels outside the
channel stream, before or after the Hangups). Facts are therefore accumulated per channel and the
summary (:class:`CallFacts`) is computed from all of them, never from arrival order.
"""

from __future__ import annotations

import enum
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dialer.domain.q850 import Cause, DialStatus, OriginateReason
from dialer.session.inputs import (
    Answered,
    ChannelRole,
    DialEnded,
    Gone,
    HungUp,
    NetworkInput,
    OperatorAnswered,
    OriginateResult,
    Progress,
    QueueAbandoned,
    QueueJoined,
    Ringing,
)

__all__ = [
    "CallFacts",
    "Cause",
    "ChannelRole",
    "Correlator",
    "DialState",
    "DialStatus",
    "OriginateReason",
    "Routed",
    "answered_attempts",
    "parse_attempt_uid",
]

# --- vocabulary -------------------------------------------------------------------------------


class DialState(enum.StrEnum):
    """DialStatus values seen only on DialState (in progress), not on DialEnd."""

    RINGING = "RINGING"
    PROCEEDING = "PROCEEDING"
    PROGRESS = "PROGRESS"


class ChannelStateNum(enum.IntEnum):
    DOWN = 0
    RSRVD = 1
    OFFHOOK = 2
    DIALING = 3
    RING = 4
    RINGING = 5
    UP = 6
    BUSY = 7


@dataclass(frozen=True, slots=True)
class Routed:
    """What one AMI event told about one attempt: the call session's inputs (often none — a
    DialBegin only names the trunk channel for later events). ``at`` is the time it was fed."""

    attempt_id: uuid.UUID
    at: float
    inputs: tuple[NetworkInput, ...] = ()


@dataclass(frozen=True)
class CallFacts:
    attempt_id: uuid.UUID
    started_at: float | None = None
    ringing: bool = False
    ringing_at: float | None = None
    progress: bool = False  # early media reached ;1 before any answer
    progress_at: float | None = None
    answered: bool = False  # the real answer of the far end
    answered_at: float | None = None
    dial_status: str | None = None  # from the ;2 → trunk DialEnd (None on ring timeout)
    cause: int | None = None  # the meaningful hangup cause (trunk first)
    cause_txt: str = ""
    causes: Mapping[ChannelRole, int] = field(default_factory=dict)
    originate_reason: int | None = None
    originate_response: str | None = None
    operator_answered: bool = False
    uniqueids: Mapping[ChannelRole, str] = field(default_factory=dict)
    channels_live: int = 0
    ended_at: float | None = None
    gone: bool = False
    forced: bool = False  # finish() was called before Asterisk reported everything

    @property
    def trunk_uniqueid(self) -> str | None:
        return self.uniqueids.get(ChannelRole.TRUNK)


# --- helpers -------------------------------------------------------------------------------


def normalise(event: Mapping[str, Any]) -> dict[str, str]:
    """Lower-cased keys, string values; the first of repeated headers wins (as in Asterisk)."""
    out: dict[str, str] = {}
    for k, v in event.items():
        key = str(k).lower()
        if key in out:
            continue
        if isinstance(v, list | tuple):
            v = v[0] if v else ""
        out[key] = "" if v is None else str(v)
    return out


def _int(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        return None


def parse_attempt_uid(uniqueid: str) -> tuple[uuid.UUID, ChannelRole] | None:
    """``<uuid>`` → (uuid, LOCAL1); ``<uuid>;2`` → (uuid, LOCAL2); anything else → None."""
    base, sep, suffix = uniqueid.partition(";")
    if sep and suffix != "2":
        return None
    if len(base) != 36:  # fast reject of Asterisk's own "1795418600.2" ids
        return None
    try:
        value = uuid.UUID(base)
    except ValueError:
        return None
    return value, (ChannelRole.LOCAL2 if sep else ChannelRole.LOCAL1)


def answered_attempts(channels: Iterable[Mapping[str, str]]) -> set[uuid.UUID]:
    """Attempts whose far end is Up in a ``CoreShowChannels`` listing (reconcile after a
    reconnect: the events of an answer sent while we were away are lost)."""
    answered: set[uuid.UUID] = set()
    for ch in channels:
        fields = {k.lower(): v for k, v in ch.items()}
        up = fields.get("channelstatedesc", "").lower() == "up" or fields.get("channelstate") == "6"
        if not up:
            continue
        parsed = parse_attempt_uid(fields.get("uniqueid", ""))
        if parsed is not None and parsed[1] is ChannelRole.LOCAL2:
            answered.add(parsed[0])
        linked = parse_attempt_uid(fields.get("linkedid", ""))
        if parsed is None and linked is not None:
            answered.add(linked[0])  # the trunk leg is Up: the far end answered
    return answered


ORIGINATE_ACTION_PREFIX = "dialer-orig/"
_QUEUE_EVENTS = frozenset({"queuecallerjoin", "agentconnect", "queuecallerabandon"})


def originate_action_id(attempt_id: uuid.UUID) -> str:
    """ActionID the client uses for an Originate, so a response without Uniqueid still maps."""
    return f"{ORIGINATE_ACTION_PREFIX}{attempt_id}"


@dataclass
class _Chan:
    uniqueid: str
    role: ChannelRole
    channel: str = ""
    hung_up: bool = False
    cause: int | None = None
    cause_txt: str = ""


@dataclass
class _Call:
    attempt_id: uuid.UUID
    started_at: float | None
    chans: dict[str, _Chan] = field(default_factory=dict)
    ringing_at: float | None = None
    progress_at: float | None = None
    answered_at: float | None = None
    dial_status: str | None = None
    originate_reason: int | None = None
    originate_response: str | None = None
    operator_answered: bool = False
    queued: bool = False  # joined the operators' queue: its AgentConnect names who answered
    ended_at: float | None = None
    forced: bool = False

    def chan(self, uniqueid: str, role: ChannelRole) -> _Chan:
        c = self.chans.get(uniqueid)
        if c is None:
            c = self.chans[uniqueid] = _Chan(uniqueid, role)
        elif role is not ChannelRole.LINKED and c.role is ChannelRole.LINKED:
            c.role = role  # a DialBegin told us who this linked channel is
        return c

    def live(self) -> int:
        return sum(1 for c in self.chans.values() if not c.hung_up)

    def facts(self) -> CallFacts:
        causes: dict[ChannelRole, int] = {}
        texts: dict[ChannelRole, str] = {}
        uids: dict[ChannelRole, str] = {}
        for c in self.chans.values():
            uids.setdefault(c.role, c.uniqueid)
            if c.hung_up and c.cause is not None:
                causes.setdefault(c.role, c.cause)
                texts.setdefault(c.role, c.cause_txt)
        # The trunk's cause is what the network said; the Local halves only echo it (or say 16
        # for their own teardown), and a trunk cause of 0 (Dial timeout) says nothing.
        cause: int | None = None
        cause_txt = ""
        for role in (ChannelRole.TRUNK, ChannelRole.LOCAL1, ChannelRole.LOCAL2):
            value = causes.get(role)
            if value is not None and value != Cause.NOT_DEFINED:
                cause, cause_txt = value, texts.get(role, "")
                break
        else:
            for role in (ChannelRole.TRUNK, ChannelRole.LOCAL1, ChannelRole.LOCAL2):
                if role in causes:
                    cause, cause_txt = causes[role], texts.get(role, "")
                    break
        return CallFacts(
            attempt_id=self.attempt_id,
            started_at=self.started_at,
            ringing=self.ringing_at is not None,
            ringing_at=self.ringing_at,
            progress=self.progress_at is not None,
            progress_at=self.progress_at,
            answered=self.answered_at is not None,
            answered_at=self.answered_at,
            dial_status=self.dial_status,
            cause=cause,
            cause_txt=cause_txt,
            causes=causes,
            originate_reason=self.originate_reason,
            originate_response=self.originate_response,
            operator_answered=self.operator_answered,
            uniqueids=uids,
            channels_live=self.live(),
            ended_at=self.ended_at,
            gone=self.ended_at is not None,
            forced=self.forced,
        )


@dataclass
class CorrelatorStats:
    events: int = 0
    unrelated: int = 0  # no channel ids at all (FullyBooted, DeviceStateChange, BridgeCreate …)
    unknown_attempt: int = 0  # carries ids, but of no attempt we track
    late: int = 0  # for an attempt already gone


class Correlator:
    """Feed raw AMI events (any case-insensitive or plain mapping), get the call session's
    inputs per attempt (:class:`Routed`).

    ``track(attempt_id, at)`` before the Originate (or after a reconnect for calls that are still
    live); events of attempts not tracked are ignored and counted. An attempt is dropped from
    memory when its :class:`Gone` is emitted; its final facts stay readable through :meth:`facts`
    for the ``recent_gone`` most recent attempts.
    """

    def __init__(self, recent_gone: int = 1024) -> None:
        self._calls: dict[uuid.UUID, _Call] = {}
        self._uid_index: dict[str, uuid.UUID] = {}
        self._gone: OrderedDict[uuid.UUID, CallFacts] = OrderedDict()
        self._recent_gone = recent_gone
        self.stats = CorrelatorStats()

    # -- registry --------------------------------------------------------------------------

    def track(self, attempt_id: uuid.UUID, at: float | None = None) -> None:
        if attempt_id not in self._calls:
            self._calls[attempt_id] = _Call(attempt_id, at)
            self._gone.pop(attempt_id, None)

    def is_tracked(self, attempt_id: uuid.UUID) -> bool:
        return attempt_id in self._calls

    @property
    def tracked(self) -> frozenset[uuid.UUID]:
        return frozenset(self._calls)

    def facts(self, attempt_id: uuid.UUID) -> CallFacts:
        """The facts so far of a tracked attempt, or the final facts of a recently gone one."""
        call = self._calls.get(attempt_id)
        if call is not None:
            return call.facts()
        gone = self._gone.get(attempt_id)
        if gone is None:
            raise KeyError(f"attempt {attempt_id} is not tracked")
        return gone

    def finish(self, attempt_id: uuid.UUID, at: float) -> Gone | None:
        """Force the end of an attempt (its channels vanished while we were disconnected, or the
        OriginateResponse never came). Returns the final input, None if not tracked."""
        call = self._calls.get(attempt_id)
        if call is None:
            return None
        call.forced = call.live() > 0 or call.originate_response is None
        return self._gone_signal(call, at)

    def forget(self, attempt_id: uuid.UUID) -> None:
        call = self._calls.pop(attempt_id, None)
        if call is not None:
            self._drop_index(call)

    # -- feeding ---------------------------------------------------------------------------

    def feed(self, event: Mapping[str, Any], at: float) -> Routed | None:
        """The attempt this event belongs to and the session inputs it carries; None when it
        belongs to no tracked attempt."""
        self.stats.events += 1
        ev = normalise(event)
        name = ev.get("event", "").lower()
        if not name:
            self.stats.unrelated += 1
            return None
        if name == "originateresponse":
            return self._originate_response(ev, at)

        uid = ev.get("uniqueid", "")
        dest_uid = ev.get("destuniqueid", "")
        if not uid and not dest_uid:
            self.stats.unrelated += 1
            return None

        located = self._locate(uid, ev.get("linkedid", "")) if uid else None
        if located is None and name.startswith("dial") and dest_uid:
            # Originate's own pseudo-dial of ;1 has no Channel/Uniqueid, only Dest* fields.
            dest = self._locate(dest_uid, ev.get("destlinkedid", ""))
            if dest is not None:
                return Routed(dest[0].attempt_id, at)  # says nothing the ;1/;2 events do not say better
        if located is None:
            self._count_miss(uid or dest_uid, ev.get("linkedid", ""))
            return None
        call, chan = located
        if ev.get("channel"):
            chan.channel = ev["channel"]

        inputs: list[NetworkInput] = []
        if name == "newstate":
            inputs = self._newstate(call, chan, ev, at)
        elif name in ("dialbegin", "dialstate", "dialend"):
            inputs = self._dial(call, chan, name, ev, at)
        elif name == "hangup":
            inputs = self._hangup(call, chan, ev, at)
        elif name in _QUEUE_EVENTS and chan.role is ChannelRole.LOCAL1:
            inputs = self._queue(call, name, ev)
        return Routed(call.attempt_id, at, tuple(inputs))

    # -- event handlers ----------------------------------------------------------------------

    def _newstate(self, call: _Call, chan: _Chan, ev: dict[str, str], at: float) -> list[NetworkInput]:
        state = _int(ev.get("channelstate"))
        out: list[NetworkInput] = []
        if state == ChannelStateNum.UP:
            if chan.role is ChannelRole.LOCAL1:
                if call.answered_at is None and call.progress_at is None:
                    call.progress_at = at
                    out.append(Progress())
            elif chan.role in (ChannelRole.TRUNK, ChannelRole.LOCAL2):
                out += self._answer(call, at)
        elif state == ChannelStateNum.RINGING and chan.role in (
            ChannelRole.TRUNK,
            ChannelRole.LOCAL1,
            ChannelRole.LINKED,  # the trunk rings before ;2's DialBegin names it
        ):
            out += self._ring(call, at)
        return out

    def _dial(self, call: _Call, chan: _Chan, name: str, ev: dict[str, str], at: float) -> list[NetworkInput]:
        dest_uid = ev.get("destuniqueid", "")
        status = ev.get("dialstatus", "").upper()
        out: list[NetworkInput] = []
        if chan.role is ChannelRole.LOCAL2:
            if dest_uid:
                self._adopt(call, dest_uid, ChannelRole.TRUNK, ev.get("destchannel", ""))
            if name == "dialstate" and status == DialState.RINGING:
                out += self._ring(call, at)
            elif name == "dialend" and status:
                if call.dial_status is None:
                    call.dial_status = status
                    out.append(DialEnded(status))
                if status == DialStatus.ANSWER:
                    out += self._answer(call, at)
        elif chan.role is ChannelRole.LOCAL1 and dest_uid:
            self._adopt(call, dest_uid, ChannelRole.OPERATOR, ev.get("destchannel", ""))
            if name == "dialend" and status == DialStatus.ANSWER and not call.queued:
                # A queue says who answered in its AgentConnect (MemberName), right after this
                # DialEnd (tests/asterisk/transcripts/handover); a plain Dial says it only here.
                out += self._operator(call, ev.get("destchannel", ""))
        return out

    def _operator(self, call: _Call, who: str) -> list[NetworkInput]:
        if call.operator_answered:
            return []  # the DialEnd ANSWER and AgentConnect of one hand-over: the first says it
        call.operator_answered = True
        return [OperatorAnswered(who)]

    def _queue(self, call: _Call, name: str, ev: dict[str, str]) -> list[NetworkInput]:
        """The operator context's Queue (deploy/asterisk): the caller is ;1 after the Redirect."""
        queue = ev.get("queue", "")
        if name == "queuecallerjoin":
            call.queued = True
            return [QueueJoined(queue, _int(ev.get("position")))]
        if name == "agentconnect":
            return self._operator(call, ev.get("membername") or ev.get("interface") or ev.get("destchannel", ""))
        return [QueueAbandoned(queue, _int(ev.get("holdtime")))]

    def _hangup(self, call: _Call, chan: _Chan, ev: dict[str, str], at: float) -> list[NetworkInput]:
        if chan.hung_up:
            return []
        chan.hung_up = True
        chan.cause = _int(ev.get("cause"))
        chan.cause_txt = ev.get("cause-txt", "")
        out: list[NetworkInput] = [HungUp(chan.role, chan.cause, chan.cause_txt, chan.channel, chan.uniqueid)]
        out += self._maybe_gone(call, at)
        return out

    def _originate_response(self, ev: dict[str, str], at: float) -> Routed | None:
        attempt: uuid.UUID | None = None
        parsed = parse_attempt_uid(ev.get("uniqueid", ""))
        if parsed is not None:
            attempt = parsed[0]
        else:
            action_id = ev.get("actionid", "")
            if action_id.startswith(ORIGINATE_ACTION_PREFIX):
                try:
                    attempt = uuid.UUID(action_id[len(ORIGINATE_ACTION_PREFIX) :])
                except ValueError:
                    attempt = None
        call = self._calls.get(attempt) if attempt is not None else None
        if call is None:
            self._count_miss(ev.get("uniqueid", ""), "", attempt)
            return None
        if call.originate_response is not None:
            return Routed(call.attempt_id, at)  # a duplicate (the client surfaces it once; be safe anyway)
        call.originate_reason = _int(ev.get("reason"))
        call.originate_response = ev.get("response", "")
        out: list[NetworkInput] = [OriginateResult(call.originate_reason, call.originate_response)]
        out += self._maybe_gone(call, at)
        return Routed(call.attempt_id, at, tuple(out))

    # -- internals -----------------------------------------------------------------------------

    def _ring(self, call: _Call, at: float) -> list[NetworkInput]:
        if call.ringing_at is None and call.answered_at is None:
            call.ringing_at = at
            return [Ringing()]
        return []

    def _answer(self, call: _Call, at: float) -> list[NetworkInput]:
        if call.answered_at is None:
            call.answered_at = at
            return [Answered()]
        return []

    def _maybe_gone(self, call: _Call, at: float) -> list[NetworkInput]:
        if call.originate_response is None or call.ended_at is not None:
            return []
        if call.live() > 0:
            return []
        if not call.chans:
            # The OriginateResponse overtook the channel events (it is sent outside the channel
            # stream): channels are still to be reported. A call that never made a channel is
            # ended by the caller's grace timer through finish().
            return []
        return [self._gone_signal(call, at)]

    def _gone_signal(self, call: _Call, at: float) -> Gone:
        call.ended_at = at
        facts = call.facts()
        self._calls.pop(call.attempt_id, None)
        self._drop_index(call)
        self._gone[call.attempt_id] = facts
        while len(self._gone) > self._recent_gone:
            self._gone.popitem(last=False)
        return Gone(facts.cause, facts.dial_status, facts.forced)

    def _drop_index(self, call: _Call) -> None:
        for uid in call.chans:
            if self._uid_index.get(uid) == call.attempt_id:
                del self._uid_index[uid]

    def _adopt(self, call: _Call, uniqueid: str, role: ChannelRole, channel: str) -> _Chan:
        chan = call.chan(uniqueid, role)
        if channel and not chan.channel:
            chan.channel = channel
        self._uid_index[uniqueid] = call.attempt_id
        return chan

    def _locate(self, uid: str, linkedid: str) -> tuple[_Call, _Chan] | None:
        parsed = parse_attempt_uid(uid)
        if parsed is not None and parsed[0] in self._calls:
            call = self._calls[parsed[0]]
            return call, call.chan(uid, parsed[1])
        attempt = self._uid_index.get(uid)
        if attempt is not None and attempt in self._calls:
            call = self._calls[attempt]
            return call, call.chan(uid, ChannelRole.LINKED)
        linked = parse_attempt_uid(linkedid) if linkedid else None
        if linked is not None and linked[0] in self._calls and linked[1] is ChannelRole.LOCAL1:
            call = self._calls[linked[0]]
            return call, self._adopt(call, uid, ChannelRole.LINKED, "")
        return None

    def _count_miss(self, uid: str, linkedid: str, attempt: uuid.UUID | None = None) -> None:
        if attempt is None:
            for candidate in (uid, linkedid):
                parsed = parse_attempt_uid(candidate) if candidate else None
                if parsed is not None:
                    attempt = parsed[0]
                    break
        if attempt is not None and attempt in self._gone:
            self.stats.late += 1
        else:
            self.stats.unknown_attempt += 1
