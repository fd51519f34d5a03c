"""Per-attempt call signals from raw AMI events: pure, no I/O, time passed in.

The worker originates ``Local/<number>@dialer-dial/n`` with ``ChannelId`` = the attempt id, so
(reference/ami/local/):

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
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dialer.domain.q850 import Cause, DialStatus, OriginateReason

__all__ = [
    "Answered",
    "CallFacts",
    "CallGone",
    "Cause",
    "ChannelRole",
    "Correlator",
    "DialEnded",
    "DialState",
    "DialStatus",
    "HungUp",
    "OperatorAnswered",
    "OriginateReason",
    "OriginateResult",
    "Progress",
    "Ringing",
    "Signal",
    "describe",
    "parse_attempt_uid",
]

# --- vocabulary -------------------------------------------------------------------------------


class DialState(enum.StrEnum):
    """DialStatus values seen only on DialState (in progress), not on DialEnd."""

    RINGING = "RINGING"
    PROCEEDING = "PROCEEDING"
    PROGRESS = "PROGRESS"


class ChannelRole(enum.StrEnum):
    LOCAL1 = "local1"  # Local ;1: the originated half, runs the analysis/operator contexts
    LOCAL2 = "local2"  # Local ;2: runs Dial(<trunk>)
    TRUNK = "trunk"  # the far end, dialled by ;2
    OPERATOR = "operator"  # dialled by ;1 from the operator Queue
    LINKED = "linked"  # linked to the attempt, role not known yet


class ChannelStateNum(enum.IntEnum):
    DOWN = 0
    RSRVD = 1
    OFFHOOK = 2
    DIALING = 3
    RING = 4
    RINGING = 5
    UP = 6
    BUSY = 7


# --- signals -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Signal:
    attempt_id: uuid.UUID
    at: float


@dataclass(frozen=True, slots=True)
class Ringing(Signal):
    """The far end is ringing (trunk Ringing or ;2 DialState RINGING)."""


@dataclass(frozen=True, slots=True)
class Progress(Signal):
    """;1 went Up before the far end answered: early media is flowing into the analysis context."""


@dataclass(frozen=True, slots=True)
class Answered(Signal):
    """The far end really answered (trunk Up, ;2 Up or ;2→trunk DialEnd ANSWER)."""


@dataclass(frozen=True, slots=True)
class DialEnded(Signal):
    dial_status: str


@dataclass(frozen=True, slots=True)
class HungUp(Signal):
    role: ChannelRole
    uniqueid: str
    channel: str
    cause: int | None
    cause_txt: str


@dataclass(frozen=True, slots=True)
class OriginateResult(Signal):
    reason: int | None
    response: str  # Success | Failure

    @property
    def success(self) -> bool:
        return self.response.lower() == "success"


@dataclass(frozen=True, slots=True)
class OperatorAnswered(Signal):
    """The operator Queue (dialled from ;1 after a Redirect) connected someone."""


@dataclass(frozen=True, slots=True)
class CallGone(Signal):
    """Final: every channel of the attempt has hung up and the OriginateResponse is in (or the
    caller forced the end with :meth:`Correlator.finish`)."""

    facts: CallFacts


def describe(signal: Signal) -> tuple[str, str | None, dict[str, object]]:
    """(event name, Uniqueid, fields) of a signal, for one structured log line per state change:
    ``event, uid, fields = describe(s); call_log(log, event, s.attempt_id, uid, **fields)``."""
    uid: str | None = str(signal.attempt_id)
    fields: dict[str, object] = {}
    if isinstance(signal, HungUp):
        uid = signal.uniqueid
        fields = {
            "role": signal.role.value,
            "channel": signal.channel,
            "cause": signal.cause,
            "cause_txt": signal.cause_txt,
        }
    elif isinstance(signal, DialEnded):
        fields = {"dial_status": signal.dial_status}
    elif isinstance(signal, OriginateResult):
        fields = {"reason": signal.reason, "response": signal.response}
    elif isinstance(signal, CallGone):
        f = signal.facts
        uid = f.trunk_uniqueid or uid
        fields = {
            "answered": f.answered,
            "progress": f.progress,
            "dial_status": f.dial_status,
            "cause": f.cause,
            "originate_reason": f.originate_reason,
            "forced": f.forced,
        }
    name = "".join("_" + c.lower() if c.isupper() else c for c in type(signal).__name__).lstrip("_")
    return name, uid, fields


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


ORIGINATE_ACTION_PREFIX = "dialer-orig/"


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
    """Feed raw AMI events (any case-insensitive or plain mapping), get typed per-attempt signals.

    ``track(attempt_id, at)`` before the Originate (or after a reconnect for calls that are still
    live); events of attempts not tracked are ignored and counted. An attempt is dropped from
    memory when its :class:`CallGone` is emitted; the facts travel with that signal.
    """

    def __init__(self, recent_gone: int = 1024) -> None:
        self._calls: dict[uuid.UUID, _Call] = {}
        self._uid_index: dict[str, uuid.UUID] = {}
        self._gone: OrderedDict[uuid.UUID, None] = OrderedDict()
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
        call = self._calls.get(attempt_id)
        if call is None:
            raise KeyError(f"attempt {attempt_id} is not tracked")
        return call.facts()

    def finish(self, attempt_id: uuid.UUID, at: float) -> CallGone | None:
        """Force the end of an attempt (its channels vanished while we were disconnected, or the
        OriginateResponse never came). Returns the final signal, None if not tracked."""
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

    def feed(self, event: Mapping[str, Any], at: float) -> list[Signal]:
        self.stats.events += 1
        ev = normalise(event)
        name = ev.get("event", "").lower()
        if not name:
            self.stats.unrelated += 1
            return []
        if name == "originateresponse":
            return self._originate_response(ev, at)

        uid = ev.get("uniqueid", "")
        dest_uid = ev.get("destuniqueid", "")
        if not uid and not dest_uid:
            self.stats.unrelated += 1
            return []

        located = self._locate(uid, ev.get("linkedid", "")) if uid else None
        if located is None and name.startswith("dial") and dest_uid:
            # Originate's own pseudo-dial of ;1 has no Channel/Uniqueid, only Dest* fields.
            dest = self._locate(dest_uid, ev.get("destlinkedid", ""))
            if dest is not None:
                return []  # says nothing the ;1/;2 channel events do not say better
        if located is None:
            self._count_miss(uid or dest_uid, ev.get("linkedid", ""))
            return []
        call, chan = located
        if ev.get("channel"):
            chan.channel = ev["channel"]

        if name == "newstate":
            return self._newstate(call, chan, ev, at)
        if name in ("dialbegin", "dialstate", "dialend"):
            return self._dial(call, chan, name, ev, at)
        if name == "hangup":
            return self._hangup(call, chan, ev, at)
        return []

    # -- event handlers ----------------------------------------------------------------------

    def _newstate(self, call: _Call, chan: _Chan, ev: dict[str, str], at: float) -> list[Signal]:
        state = _int(ev.get("channelstate"))
        out: list[Signal] = []
        if state == ChannelStateNum.UP:
            if chan.role is ChannelRole.LOCAL1:
                if call.answered_at is None and call.progress_at is None:
                    call.progress_at = at
                    out.append(Progress(call.attempt_id, at))
            elif chan.role in (ChannelRole.TRUNK, ChannelRole.LOCAL2):
                out += self._answer(call, at)
        elif state == ChannelStateNum.RINGING and chan.role in (
            ChannelRole.TRUNK,
            ChannelRole.LOCAL1,
            ChannelRole.LINKED,  # the trunk rings before ;2's DialBegin names it
        ):
            out += self._ring(call, at)
        return out

    def _dial(self, call: _Call, chan: _Chan, name: str, ev: dict[str, str], at: float) -> list[Signal]:
        dest_uid = ev.get("destuniqueid", "")
        status = ev.get("dialstatus", "").upper()
        out: list[Signal] = []
        if chan.role is ChannelRole.LOCAL2:
            if dest_uid:
                self._adopt(call, dest_uid, ChannelRole.TRUNK, ev.get("destchannel", ""))
            if name == "dialstate" and status == DialState.RINGING:
                out += self._ring(call, at)
            elif name == "dialend" and status:
                if call.dial_status is None:
                    call.dial_status = status
                    out.append(DialEnded(call.attempt_id, at, status))
                if status == DialStatus.ANSWER:
                    out += self._answer(call, at)
        elif chan.role is ChannelRole.LOCAL1 and dest_uid:
            self._adopt(call, dest_uid, ChannelRole.OPERATOR, ev.get("destchannel", ""))
            if name == "dialend" and status == DialStatus.ANSWER and not call.operator_answered:
                call.operator_answered = True
                out.append(OperatorAnswered(call.attempt_id, at))
        return out

    def _hangup(self, call: _Call, chan: _Chan, ev: dict[str, str], at: float) -> list[Signal]:
        if chan.hung_up:
            return []
        chan.hung_up = True
        chan.cause = _int(ev.get("cause"))
        chan.cause_txt = ev.get("cause-txt", "")
        out: list[Signal] = [
            HungUp(call.attempt_id, at, chan.role, chan.uniqueid, chan.channel, chan.cause, chan.cause_txt)
        ]
        out += self._maybe_gone(call, at)
        return out

    def _originate_response(self, ev: dict[str, str], at: float) -> list[Signal]:
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
            return []
        if call.originate_response is not None:
            return []  # a duplicate (the client surfaces it once; be safe anyway)
        call.originate_reason = _int(ev.get("reason"))
        call.originate_response = ev.get("response", "")
        out: list[Signal] = [OriginateResult(call.attempt_id, at, call.originate_reason, call.originate_response)]
        out += self._maybe_gone(call, at)
        return out

    # -- internals -----------------------------------------------------------------------------

    def _ring(self, call: _Call, at: float) -> list[Signal]:
        if call.ringing_at is None and call.answered_at is None:
            call.ringing_at = at
            return [Ringing(call.attempt_id, at)]
        return []

    def _answer(self, call: _Call, at: float) -> list[Signal]:
        if call.answered_at is None:
            call.answered_at = at
            return [Answered(call.attempt_id, at)]
        return []

    def _maybe_gone(self, call: _Call, at: float) -> list[Signal]:
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

    def _gone_signal(self, call: _Call, at: float) -> CallGone:
        call.ended_at = at
        facts = call.facts()
        self._calls.pop(call.attempt_id, None)
        self._drop_index(call)
        self._gone[call.attempt_id] = None
        while len(self._gone) > self._recent_gone:
            self._gone.popitem(last=False)
        return CallGone(call.attempt_id, at, facts)

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
