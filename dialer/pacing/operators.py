"""Operator availability from app_queue's AMI events: pure, time passed in.

The events are the source of truth (Asterisk 22 apps/app_queue.c):

- ``QueueMemberStatus`` / ``QueueMemberAdded`` / ``QueueMemberPause`` (one member's whole state:
  ``Queue``, ``MemberName``, ``Interface``, ``Status``, ``Paused``, ``InCall`` …) and
  ``QueueMemberRemoved``;
- the ``QueueStatus`` listing asked for at start and after every reconnect (events sent while
  disconnected are lost): ``QueueMember`` rows (``Name``, ``Location`` instead of ``MemberName``,
  ``Interface``) and ``QueueStatusComplete`` — members not listed are gone;
- ``QueueSummary`` (``LoggedIn``, ``Available``): counts only, used while no member is known.

A member is free as app_queue itself counts ``Available``: device state NOT_INUSE (1) or UNKNOWN
(0), not paused — and not ``InCall``. Members whose device is UNAVAILABLE (5) or INVALID (4) are not
logged in. The time each member spends busy (ring + talk) is measured from the transitions.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dialer.pacing.pacer import OperatorSupply

__all__ = ["MemberState", "OperatorTracker"]

AST_DEVICE_UNKNOWN = 0
AST_DEVICE_NOT_INUSE = 1
AST_DEVICE_INVALID = 4
AST_DEVICE_UNAVAILABLE = 5
_MEMBER_EVENTS = frozenset({"queuememberstatus", "queuememberadded", "queuememberpause", "queuemember"})
_HANDLE_SAMPLES = 200  # busy periods kept for the mean handle time


@dataclass(slots=True)
class MemberState:
    queue: str
    interface: str
    name: str
    status: int
    paused: bool
    in_call: bool
    busy_since_s: float | None = None

    @property
    def logged_in(self) -> bool:
        return self.status not in (AST_DEVICE_UNAVAILABLE, AST_DEVICE_INVALID)

    @property
    def free(self) -> bool:
        return self.status in (AST_DEVICE_NOT_INUSE, AST_DEVICE_UNKNOWN) and not self.paused and not self.in_call

    @property
    def busy(self) -> bool:
        return self.logged_in and not self.paused and not self.free


def _fields(event: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in event.items():
        key = str(k).lower()
        if key not in out:
            out[key] = str(v[0] if isinstance(v, list | tuple) and v else v if v is not None else "")
    return out


def _int(value: str | None, default: int = 0) -> int:
    try:
        return int(value) if value else default
    except ValueError:
        return default


class OperatorTracker:
    """Members of the watched queues, per Asterisk server (a queue lives on each server)."""

    def __init__(self, queues: frozenset[str]) -> None:
        self.queues = queues
        self._members: dict[tuple[str, str, str], MemberState] = {}  # (server, queue, interface)
        self._summary: dict[tuple[str, str], OperatorSupply] = {}
        self._listing: dict[str, set[tuple[str, str, str]]] = {}  # server → members seen in a listing
        self._handle_s: deque[float] = deque(maxlen=_HANDLE_SAMPLES)
        self._known: set[tuple[str, str]] = set()  # (server, queue) whose members we have heard of
        self.events = 0

    # -- feeding -----------------------------------------------------------------------------

    def feed(self, event: Mapping[str, Any], at_s: float, server: str = "") -> bool:
        """One AMI event; True when a queue's free operators may have changed."""
        ev = _fields(event)
        name = ev.get("event", "").lower()
        queue = ev.get("queue", "")
        if name == "queuestatuscomplete":
            return self._listing_done(server, at_s)
        if queue not in self.queues:
            return False
        self._known.add((server, queue))
        if name in _MEMBER_EVENTS:
            self.events += 1
            return self._member(server, queue, ev, at_s, listed=name == "queuemember")
        if name == "queuememberremoved":
            self.events += 1
            key = (server, queue, ev.get("interface", ""))
            return self._members.pop(key, None) is not None
        if name == "queuesummary":
            self.events += 1
            self._summary[(server, queue)] = OperatorSupply(
                free=_int(ev.get("available")),
                busy=max(0, _int(ev.get("loggedin")) - _int(ev.get("available"))),
            )
            return True
        return False

    def begin_listing(self, server: str) -> None:
        """A ``QueueStatus`` was sent to ``server``: members it does not list are gone."""
        self._listing[server] = set()

    def _member(self, server: str, queue: str, ev: dict[str, str], at_s: float, *, listed: bool) -> bool:
        interface = ev.get("interface") or ev.get("location") or ev.get("stateinterface", "")
        if not interface:
            return False
        key = (server, queue, interface)
        if listed and server in self._listing:
            self._listing[server].add(key)
        old = self._members.get(key)
        was_free = old.free if old is not None else False
        state = MemberState(
            queue=queue,
            interface=interface,
            name=ev.get("membername") or ev.get("name") or interface,
            status=_int(ev.get("status"), AST_DEVICE_UNKNOWN),
            paused=ev.get("paused", "0") == "1",
            in_call=ev.get("incall", "0") == "1",
            busy_since_s=old.busy_since_s if old is not None else None,
        )
        if state.busy and state.busy_since_s is None:
            state.busy_since_s = at_s
        elif not state.busy and state.busy_since_s is not None:
            if state.free and not listed:  # a listing after a reconnect did not see the end
                self._handle_s.append(max(0.0, at_s - state.busy_since_s))
            state.busy_since_s = None
        self._members[key] = state
        return state.free != was_free or old is None

    def _listing_done(self, server: str, at_s: float) -> bool:
        seen = self._listing.pop(server, None)
        if seen is None:
            return False
        self._known.update((server, q) for q in self.queues)
        gone = [k for k in self._members if k[0] == server and k not in seen]
        for k in gone:
            del self._members[k]
        return True

    # -- reading -----------------------------------------------------------------------------

    def supply(self, queue: str, now_s: float | None = None) -> OperatorSupply | None:
        """Free and busy operators of ``queue`` over every server; None when nothing is known.
        With ``now_s``, how long each busy member has been busy (not for QueueSummary counts)."""
        members = [m for m in self._members.values() if m.queue == queue and m.logged_in]
        if not any(q == queue for _srv, q in self._known):
            return None
        servers_with_members = {k[0] for k, m in self._members.items() if m.queue == queue}
        summaries = [s for (srv, q), s in self._summary.items() if q == queue and srv not in servers_with_members]
        free = sum(1 for m in members if m.free) + sum(s.free for s in summaries)
        busy = sum(1 for m in members if m.busy) + sum(s.busy for s in summaries)
        busy_for: tuple[float, ...] = ()
        if now_s is not None and not summaries:
            busy_for = tuple(now_s - m.busy_since_s for m in members if m.busy and m.busy_since_s is not None)
        return OperatorSupply(free=free, busy=busy, busy_for_s=busy_for if len(busy_for) == busy else ())

    def members(self, queue: str) -> list[MemberState]:
        return [m for m in self._members.values() if m.queue == queue]

    @property
    def handle_samples_s(self) -> tuple[float, ...]:
        return tuple(self._handle_s)

    @property
    def handle_s(self) -> float | None:
        """Mean time an operator was busy with one call (ringing + talking), None before any."""
        return sum(self._handle_s) / len(self._handle_s) if self._handle_s else None

    def forget_server(self, server: str) -> None:
        """``server`` is disconnected: what we knew of its operators may be stale."""
        for k in [k for k in self._members if k[0] == server]:
            del self._members[k]
        for s in [s for s in self._summary if s[0] == server]:
            del self._summary[s]
        self._known = {k for k in self._known if k[0] != server}
