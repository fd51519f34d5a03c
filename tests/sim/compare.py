"""Comparison of a simulated AMI event stream with a real transcript (tests/asterisk/transcripts/).

Equivalence, precisely:

1. Events are compared after ``normalize()``: every header, in order, except values that differ
   between any two runs of the same call — the Local channel's 8-hex sequence number, the IAX2
   call number, the trunk Uniqueid ``<epoch>.<n>``, the bridge UUID, the AudioSocket port, and
   the timing variables (RINGTIME*, PROGRESSTIME*, ANSWEREDTIME*, DIALEDTIME*: only "is a
   non-negative integer" is kept). Uniqueid/Linkedid of ;1/;2 are compared literally (the test
   originates with the transcript's ChannelId), so their relations are checked exactly.
2. Events are grouped by *role*: the channel they are about (;1, ;2, trunk; after a hand-over
   also each operator's Local pair), the dial they describe (``dial>L1:…`` for the originate's
   own dial), the device (DeviceStateChange), the queue member, the bridge, OriginateResponse.
   Within a role the sequences must be identical. Queue durations (HoldTime, TalkTime, RingTime,
   QUEUEWAIT) and Unix times (LoginTime, LastCall) are compared as "an integer".
3. Across roles the order is free only where the real stamps are within ``tolerance_s``
   (the recorder stamps with 1 ms rounding, Asterisk publishes each channel's events from its
   own thread, and how those threads interleave varies by milliseconds with the machine's load).
   If real event A is stamped more than ``tolerance_s`` before real event B, the
   simulator must send A before B. OriginateResponse is a role like the others, so its position
   is free only among events stamped (nearly) the same as it, as in the real traces where it
   lands before or after Hangup/DialEnd. DeviceStateChange events are exempt from this order:
   the device-state thread publishes them up to hundreds of milliseconds late under load.
   Nor are the originate's own dial events (``dial>``): the originate's thread publishes them
   when it reads ;1's frames, after ;2 and the trunk have moved on (RINGING 1 s after ;2's
   RINGTIME once, on a loaded machine); their own sequence is still compared exactly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dialer.ami.protocol import AmiMessage

# Not compared: the AMI session's own events; AgentComplete, which app_queue publishes after the
# call, with the caller's channel snapshot when it is still there and without it when it is not —
# seen both ways in real recordings of the same call; and QueueMemberStatus, app_queue's answer to
# the operator device's state changes from the device-state thread: fresh real recordings of one
# call differ from each other in how many there are, where they fall (with the queue's ring or
# only with the operator's answer, 3 s later) and their InCall (0 or 1) — 4 of 9 fresh runs on
# 2026-11-30. The pacing's operator tracker reads them: tests/pacing on their shapes,
# tests/asterisk/test_campaign.py on a real Asterisk.
SESSION_EVENTS = {"FullyBooted", "SuccessfulAuth", "AgentComplete", "QueueMemberStatus"}
TIMING_VARS = {
    "RINGTIME",
    "RINGTIME_MS",
    "PROGRESSTIME",
    "PROGRESSTIME_MS",
    "ANSWEREDTIME",
    "ANSWEREDTIME_MS",
    "DIALEDTIME",
    "DIALEDTIME_MS",
    "QUEUEWAIT",
    "QUEUEWAIT_MS",
}
# Queue/Agent event fields that are durations in whole seconds or Unix times.
TIMING_FIELDS = {"HoldTime", "RingTime", "TalkTime"}
EPOCH_FIELDS = {"LoginTime", "LastCall", "LastPause"}
# Fields real Asterisk fills differently from run to run (seen both ways in recordings of the same
# call): AgentCalled snapshots the operator's channel while it is being rung (Down or Ringing).
RACY_FIELDS = {("AgentCalled", "DestChannelState"), ("AgentCalled", "DestChannelStateDesc")}
# The queue's DialBegin towards an operator snapshots the operator's Local channel while app_queue
# is still setting it up (Down or Ringing, exten s or the member's), and an operator device's first
# state change races the queue's ring (INUSE or NOT_INUSE first): both seen both ways in real runs.
RACY_OPERATOR_DIAL_FIELDS = {
    "DestChannelState",
    "DestChannelStateDesc",
    "DestConnectedLineNum",
    "DestConnectedLineName",
    "DestExten",
}
_SUBS = [
    (re.compile(r"(Local/[^@;\s]+@[\w-]+)-[0-9a-f]{8};([12])"), r"\1-<seq>;\2"),
    (re.compile(r"\b(IAX2/[\w-]+)-\d+\b"), r"\1-<callno>"),
    (re.compile(r"\b((?:PJSIP|SIP)/[\w-]+)-[0-9a-f]{8}\b"), r"\1-<seq>"),
    (re.compile(r"^\d{9,11}\.\d+$"), "<epoch.n>"),
    (re.compile(r"127\.0\.0\.1:\d+"), "127.0.0.1:<port>"),
]
Sig = tuple[tuple[str, str], ...]
# Device states come from Asterisk's device-state thread, late by anything up to a few hundred
# milliseconds on a loaded machine, and the originate's DialState/DialEnd from the originate's
# thread, late by up to a second: their own sequence counts, not their place among the rest.
UNORDERED_ROLES = ("dev:", "dial>")


def _norm_value(value: str) -> str:
    for rx, repl in _SUBS:
        value = rx.sub(repl, value)
    return value


def normalize(m: AmiMessage) -> Sig:
    out: list[tuple[str, str]] = []
    timing = m.event == "VarSet" and m.get("Variable") in TIMING_VARS and (m.get("Value") or "") != ""
    operator_dial = m.event == "DialBegin" and _is_operator_leg(m.get("DestChannel") or "")
    operator_device = m.event == "DeviceStateChange" and _is_operator_leg(m.get("Device") or "")
    for key, value in m.headers:
        if key == "BridgeUniqueid":
            value = "<bridge>"
        elif (
            (m.event, key) in RACY_FIELDS
            or (operator_dial and key in RACY_OPERATOR_DIAL_FIELDS)
            or (operator_device and key == "State")
        ):
            value = "<racy>"
        elif (timing and key == "Value") or key in TIMING_FIELDS:
            value = "<int>" if value.isdigit() else f"<not an integer: {value}>"
        elif key in EPOCH_FIELDS and value != "0":
            value = "<epoch>" if value.isdigit() else f"<not an integer: {value}>"
        else:
            value = _norm_value(value)
        out.append((key, value))
    return tuple(out)


_LOCAL_SEQ = re.compile(r"-[0-9a-f]{8};([12])$")


def _is_operator_leg(name: str) -> bool:
    """An operator's Local channel or device (the queue's members), not the originated pair."""
    return name.startswith("Local/") and "@dialer-dial" not in name


def _chan_role(name: str) -> str:
    """``L1``/``L2`` and the Local channel's ``<exten>@<context>`` (the originated pair and, after
    a hand-over, each operator's pair are roles of their own); ``T`` for the trunk."""
    if name.startswith("Local/"):
        m = _LOCAL_SEQ.search(name)
        half = "L1" if name.endswith(";1") else "L2"
        return f"{half}:{name[len('Local/') : m.start()] if m else name}"
    return "T"


def role(m: AmiMessage) -> str:
    ev = m.event or ""
    if ev == "OriginateResponse":
        return "OR"
    if ev in ("BridgeCreate", "BridgeDestroy"):
        return "bridge"
    if ev == "DeviceStateChange":
        device = m.get("Device") or ""
        return "dev:" + (device if device.startswith(("Local/", "Queue:")) else "trunk")
    if ev == "LocalBridge":
        return "localbridge:" + _chan_role(m.get("LocalOneChannel") or "")
    if ev == "QueueMemberStatus":
        return f"member:{m.get('MemberName')}"
    if ev.startswith(("Queue", "Agent")):
        # app_queue publishes these from its own threads: their place among the channel's other
        # events is as free as any other thread's (the stamps decide), their own order is not.
        return "queue>" + _chan_role(m.get("Channel") or "")
    channel = m.get("Channel")
    if channel is not None:
        return _chan_role(channel)
    dest = m.get("DestChannel")
    if dest is not None:
        return "dial>" + _chan_role(dest)
    return ev


@dataclass
class Comparison:
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def call_events(messages: list[tuple[float, AmiMessage]]) -> list[tuple[float, AmiMessage]]:
    return [(t, m) for t, m in messages if m.event is not None and m.event not in SESSION_EVENTS]


def _fmt(sig: Sig) -> str:
    d = dict(sig)
    keys = (
        "Event",
        "Channel",
        "DestChannel",
        "ChannelStateDesc",
        "DialStatus",
        "Cause",
        "Reason",
        "Variable",
        "Value",
        "Application",
        "AppData",
        "State",
    )
    return " ".join(f"{k}={d[k]}" for k in keys if k in d)


def compare(real: list[tuple[float, AmiMessage]], sim: list[AmiMessage], tolerance_s: float) -> Comparison:
    problems: list[str] = []
    real_items = [(t, role(m), normalize(m)) for t, m in real]
    sim_items = [(role(m), normalize(m)) for m in sim]
    roles = sorted({r for _t, r, _s in real_items} | {r for r, _s in sim_items})
    for r in roles:
        want = [s for _t, rr, s in real_items if rr == r]
        got = [s for rr, s in sim_items if rr == r]
        if want != got:
            for i in range(max(len(want), len(got))):
                w = want[i] if i < len(want) else None
                g = got[i] if i < len(got) else None
                if w != g:
                    problems.append(
                        f"role {r}, event #{i}:\n  real: {_fmt(w) if w else '—'}\n  sim:  {_fmt(g) if g else '—'}"
                    )
                    if w and g and dict(w).get("Event") == dict(g).get("Event"):
                        diff = [(k, v, dict(g).get(k)) for k, v in w if dict(g).get(k) != v]
                        problems.append(f"  differing fields (real, sim): {diff}")
                    break
    if problems:
        return Comparison(problems)
    # cross-role order
    positions: dict[tuple[str, int], int] = {}
    counters: dict[str, int] = {}
    for pos, (r, _s) in enumerate(sim_items):
        k = counters.get(r, 0)
        positions[(r, k)] = pos
        counters[r] = k + 1
    keyed: list[tuple[float, str, int, Sig]] = []
    counters.clear()
    for t, r, s in real_items:
        k = counters.get(r, 0)
        keyed.append((t, r, positions[(r, k)], s))
        counters[r] = k + 1
    for i, (ti, ri, pi, si) in enumerate(keyed):
        if ri.startswith(UNORDERED_ROLES):
            continue
        for tj, rj, pj, sj in keyed[i + 1 :]:
            if ri != rj and not rj.startswith(UNORDERED_ROLES) and tj - ti > tolerance_s and pj < pi:
                problems.append(
                    f"order: real has [{_fmt(si)}] at t={ti:.3f} before [{_fmt(sj)}] at t={tj:.3f}, "
                    "the simulator sent them the other way round"
                )
    return Comparison(problems)
