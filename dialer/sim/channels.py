"""Simulated Asterisk channels and the exact AMI field sets their events carry.

Field names, their order and the values for unknown caller ids follow the real transcripts in
tests/asterisk/transcripts/ (Asterisk 22.10.1, AMI 11.0.0; the same as the first recordings in
../shared/reference/ami/, Asterisk master).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field

from dialer.domain.q850 import CAUSE_TEXT, Cause, DialStatus, OriginateReason

__all__ = ["CAUSE_TEXT", "Cause", "Channel", "ChannelState", "DialStatus", "Header", "OriginateReason", "Privilege"]

Header = tuple[str, str]

UNKNOWN = "<unknown>"


class ChannelState(enum.IntEnum):
    DOWN = 0
    RING = 4
    RINGING = 5
    UP = 6
    BUSY = 7

    @property
    def desc(self) -> str:
        return {0: "Down", 4: "Ring", 5: "Ringing", 6: "Up", 7: "Busy"}[int(self)]


class Privilege(enum.StrEnum):
    CALL = "call,all"
    DIALPLAN = "dialplan,all"
    AGENT = "agent,all"
    SYSTEM = "system,all"
    SECURITY = "security,all"


def cause_text(cause: int) -> str:
    return CAUSE_TEXT.get(cause, "Unknown")


def dial_status_for_cause(cause: int) -> DialStatus:
    """DialEnd status when the dialled channel hangs up (ast_hangup_cause_to_dial_status)."""
    if cause == Cause.USER_BUSY:
        return DialStatus.BUSY
    if cause == Cause.NORMAL_CIRCUIT_CONGESTION:
        return DialStatus.CONGESTION
    if cause in (Cause.NO_ROUTE_DESTINATION, Cause.SUBSCRIBER_ABSENT):
        return DialStatus.CHANUNAVAIL
    return DialStatus.NOANSWER


def dialstatus_variable_for_cause(cause: int) -> DialStatus:
    """``${DIALSTATUS}`` after Dial() saw its only callee hang up (app_dial handle_cause)."""
    if cause == Cause.USER_BUSY:
        return DialStatus.BUSY
    if cause == Cause.NORMAL_CIRCUIT_CONGESTION:
        return DialStatus.CONGESTION
    if cause in (Cause.NORMAL_CLEARING, Cause.NO_ANSWER, Cause.NOT_DEFINED):
        return DialStatus.NOANSWER
    return DialStatus.CHANUNAVAIL


CHANNEL_KEYS = (
    "Channel",
    "ChannelState",
    "ChannelStateDesc",
    "CallerIDNum",
    "CallerIDName",
    "ConnectedLineNum",
    "ConnectedLineName",
    "Language",
    "AccountCode",
    "Context",
    "Exten",
    "Priority",
    "Uniqueid",
    "Linkedid",
)


@dataclass(eq=False)
class Channel:
    name: str
    uniqueid: str
    linkedid: str
    context: str
    exten: str
    state: ChannelState = ChannelState.DOWN
    priority: int = 1
    cid_num: str = UNKNOWN
    cid_name: str = UNKNOWN
    conn_num: str = UNKNOWN
    conn_name: str = UNKNOWN
    language: str = "en"
    accountcode: str = ""
    variables: dict[str, str] = field(default_factory=dict)
    hangup_cause: int = 0
    application: str = ""
    app_data: str = ""
    created_at: float = 0.0  # loop time, for CoreShowChannel Duration
    bridge_id: str = ""
    alive: bool = True

    def fields(self, prefix: str = "") -> list[Header]:
        values = (
            self.name,
            str(int(self.state)),
            self.state.desc,
            self.cid_num,
            self.cid_name,
            self.conn_num,
            self.conn_name,
            self.language,
            self.accountcode,
            self.context,
            self.exten,
            str(self.priority),
            self.uniqueid,
            self.linkedid,
        )
        return [(prefix + k, v) for k, v in zip(CHANNEL_KEYS, values, strict=True)]


def event(name: str, privilege: Privilege, *parts: list[Header] | Header) -> list[Header]:
    """``Event``/``Privilege`` then the given header groups, in order."""
    out: list[Header] = [("Event", name), ("Privilege", privilege.value)]
    for part in parts:
        if isinstance(part, tuple):
            out.append(part)
        else:
            out.extend(part)
    return out


def bridge_fields(bridge_id: str, count: int) -> list[Header]:
    """A basic two-party bridge's snapshot as Bridge* events carry it (main/manager_bridges.c)."""
    return [
        ("BridgeUniqueid", bridge_id),
        ("BridgeType", "basic"),
        ("BridgeTechnology", "simple_bridge"),
        ("BridgeCreator", "<unknown>"),
        ("BridgeName", "<unknown>"),
        ("BridgeNumChannels", str(count)),
        ("BridgeVideoSourceMode", "none"),
    ]


class ChannelEvents:
    """Changes to channels, each written as the AMI event(s) Asterisk emits for it."""

    def __init__(self, emit: Callable[[list[Header]], None], unregister: Callable[[Channel], None]) -> None:
        self._emit = emit
        self._unregister = unregister  # a hung-up channel leaves the simulator's channel table

    def emit(self, name: str, priv: Privilege, *parts: list[Header] | Header) -> None:
        self._emit(event(name, priv, *parts))

    def channel_event(self, name: str, ch: Channel, *extra: Header, priv: Privilege = Privilege.CALL) -> None:
        self.emit(name, priv, ch.fields(), *extra)

    def newexten(self, ch: Channel, app: str, data: str, extension: str | None = None) -> None:
        ch.application, ch.app_data = app, data
        self.channel_event(
            "Newexten",
            ch,
            ("Extension", ch.exten if extension is None else extension),
            ("Application", app),
            ("AppData", data),
            priv=Privilege.DIALPLAN,
        )

    def varset(self, ch: Channel, var: str, value: str) -> None:
        ch.variables[var] = value
        self.channel_event("VarSet", ch, ("Variable", var), ("Value", value), priv=Privilege.DIALPLAN)

    def newstate(self, ch: Channel, state: ChannelState) -> None:
        ch.state = state
        self.channel_event("Newstate", ch)

    def device_state(self, device: str, state: str) -> None:
        self.emit("DeviceStateChange", Privilege.CALL, ("Device", device), ("State", state))

    def dial_event(self, name: str, caller: Channel | None, dest: Channel, *extra: Header) -> None:
        parts: list[list[Header] | Header] = []
        if caller is not None:
            parts.append(caller.fields())
        parts.append(dest.fields("Dest"))
        parts.extend(extra)
        self.emit(name, Privilege.CALL, *parts)

    def hangup_request(self, ch: Channel, cause: int | None, soft: bool = False) -> None:
        extra: list[Header] = [] if cause is None else [("Cause", str(cause))]
        self.channel_event("SoftHangupRequest" if soft else "HangupRequest", ch, *extra)

    def hangup(self, ch: Channel, cause: int) -> None:
        ch.hangup_cause = cause
        ch.alive = False
        self.channel_event("Hangup", ch, ("Cause", str(cause)), ("Cause-txt", cause_text(cause)))
        self._unregister(ch)
