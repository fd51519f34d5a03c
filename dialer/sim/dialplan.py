"""The simulated dialplan: ``;2`` running the dial context, ``;1`` running the originate's context.

``;2`` runs synchronously until ``Dial()`` starts waiting on the trunk or it hangs up, and goes on
where it stopped when Dial returns (``Hangup(${HANGUPCAUSE})``). ``;1`` runs as a task after the
answer (or a Redirect): ``Wait``, ``AudioSocket`` (with its inactivity rule), ``Queue`` (the
operators, :mod:`dialer.sim.queue`), the holding applications, ``Hangup``. Applications the
simulator does not model are a NoOp on ``;2`` and hang ``;1`` up, with a warning.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import logging
import re
from typing import TYPE_CHECKING

from dialer.sim.audiosocket_client import AudioSocketLeg, EndReason
from dialer.sim.channels import Cause
from dialer.sim.queue import QUEUE_VARS_AT_START

if TYPE_CHECKING:
    from dialer.sim.call import SimCall

log = logging.getLogger(__name__)

DialplanStep = tuple[str, str]  # (application, data template)

# Frames that reach ;1 before the AudioSocket app reads them wait in the channel's read queue, as
# in Asterisk, which keeps the newest 96 voice frames (main/channel.c __ast_queue_frame; ~2 s).
PENDING_FRAMES_MAX = 96
_NOOP_APPS = ("noop", "set", "answer", "verbose", "log")
_NOOP_APPS_L1 = (*_NOOP_APPS, "progress", "ringing")
# Held until a hang-up or a redirect cancels the task (the operator is talking).
_HOLDING_APPS = ("playback", "echo", "musiconhold", "waitforsilence", "park")


def substitute(template: str, values: dict[str, str]) -> str:
    """``${NAME}`` → its value (empty when unknown), as the dialplan expands app data."""
    return re.sub(r"\$\{([A-Za-z0-9_]+)\}", lambda m: values.get(m[1], ""), template)


def hangup_cause(data: str) -> int:
    """The cause of ``Hangup(<data>)``: a positive number, else normal clearing."""
    text = data.strip()
    return int(text) if text.isdigit() and int(text) > 0 else Cause.NORMAL_CLEARING


class DialContext:
    """``;2`` in the dial context: resumable, synchronous."""

    def __init__(self, call: SimCall, steps: list[DialplanStep]) -> None:
        self._call = call
        self._steps = steps
        self._index = 0

    def run(self) -> None:
        """Run until Dial() starts waiting or ;2 hangs up (falling off the end hangs up too)."""
        call = self._call
        l2 = call.l2
        while self._index < len(self._steps):
            app, template = self._steps[self._index]
            self._index += 1
            l2.priority = self._index
            data = call.substitute(template, l2)
            call.ev.newexten(l2, app, data)
            low = app.lower()
            if low == "dial":
                call.start_dial(data)
                return
            if low == "hangup":
                call.ev.hangup_request(l2, Cause.NORMAL_CLEARING, soft=True)
                call.l2_gone(hangup_cause(data))
                return
            if low not in _NOOP_APPS:
                log.warning("sim: application %s in %s is not simulated; treated as NoOp", app, call.dial_context)
        trunk = call.trunk
        call.l2_gone(trunk.hangup_cause if trunk and trunk.hangup_cause else Cause.NORMAL_CLEARING)


class _Next(enum.Enum):
    """What ;1's dialplan does after an application."""

    CONTINUE = enum.auto()
    STOP = enum.auto()  # the application hung ;1 up (or the task ends)


class Pbx:
    """``;1`` running dialplan as a task, and its AudioSocket leg (media from the far end reaches
    the worker through it; frames that come before the leg is connected wait in a short queue)."""

    def __init__(self, call: SimCall) -> None:
        self._call = call
        self._task: asyncio.Task[None] | None = None
        self.leg: AudioSocketLeg | None = None
        self._pending_frames: collections.deque[bytes] = collections.deque(maxlen=PENDING_FRAMES_MAX)

    def start(self, context: str, exten: str, priority: int, steps: list[DialplanStep] | None = None) -> None:
        """Run (or, after a Redirect, re-run) ;1's dialplan at ``context,exten,priority`` — or
        ``steps`` (an Originate's Application)."""
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
        name = f"sim-pbx-{self._call.l1.uniqueid}"
        self._task = self._call.host.spawn(self._run(context, exten, priority, steps), name)

    def cancel(self) -> None:
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()

    def deliver(self, frame: bytes) -> None:
        """A far-end frame reaching ;1: to the worker, or queued until AudioSocket connects."""
        if self.leg is not None and self.leg.open:
            self.leg.send_audio(frame)
        elif self.leg is None:
            self._pending_frames.append(frame)  # the oldest go first once the queue is full

    def close_leg(self) -> None:
        """The call is over: close the AudioSocket leg in the background."""
        if self.leg is not None:
            leg, self.leg = self.leg, None
            self._call.host.spawn(leg.close(), f"sim-audiosocket-close-{self._call.l1.uniqueid}")

    async def _run(self, context: str, exten: str, priority: int, steps: list[DialplanStep] | None) -> None:
        call = self._call
        l1 = call.l1
        plan = steps if steps is not None else call.host.dialplan.get(context)
        if plan is None:
            # As Asterisk: the channel leaves its application, finds no extension there and is
            # hung up with cause 0; its Local peer and the trunk then end normally.
            log.warning(
                "sim: %s sent to %s,%s,%d which the simulated dialplan lacks", l1.name, context, exten, priority
            )
            call.ev.hangup_request(l1, Cause.NORMAL_CLEARING, soft=True)
            l1.context, l1.exten, l1.priority = context, exten, priority
            call.hangup_l1(Cause.NOT_DEFINED, peer_cause=Cause.NORMAL_CLEARING)
            return
        if context:
            l1.context, l1.exten = context, exten
        index = max(priority, 1) - 1
        while index < len(plan) and l1.alive:
            app, template = plan[index]
            l1.priority = index + 1
            data = call.substitute(template, l1)
            call.ev.newexten(l1, app, data)
            if await self._app(app.lower(), app, data) is _Next.STOP:
                return
            index += 1
        if l1.alive:
            call.hangup_l1(Cause.NORMAL_CLEARING)  # fell off the end of the dialplan

    async def _app(self, low: str, app: str, data: str) -> _Next:
        """Run one application on ;1."""
        call = self._call
        if low == "hangup":
            call.hangup_l1(hangup_cause(data), via_app=True)
            return _Next.STOP
        if low == "wait":
            with contextlib.suppress(ValueError):
                await asyncio.sleep(float(data or 0) * call.time_scale)
        elif low == "audiosocket":
            if not await self._audiosocket(data):
                call.hangup_l1(Cause.NORMAL_CLEARING)
                return _Next.STOP
        elif low == "queue":
            if self._queue(data):
                await asyncio.Event().wait()  # held in the queue, then with an operator
            # no such queue: Queue() returns at once, the dialplan goes on
        elif low in _HOLDING_APPS:
            await asyncio.Event().wait()
        elif low not in _NOOP_APPS_L1:
            log.warning("sim: application %s is not simulated; the channel hangs up", app)
            call.hangup_l1(Cause.NORMAL_CLEARING)
            return _Next.STOP
        return _Next.CONTINUE

    def _queue(self, data: str) -> bool:
        """Queue(<name>): True when ;1 joined the queue, False when there is no such queue."""
        call = self._call
        for var in QUEUE_VARS_AT_START:
            call.ev.varset(call.l1, var, "")
        queue = call.host.queues.get(data.split(",", 1)[0].strip())
        if queue is None:
            call.ev.varset(call.l1, "QUEUESTATUS", "UNKNOWN")
            return False
        call.join_queue(queue)
        return True

    async def _audiosocket(self, data: str) -> bool:
        """Returns True when the app ended normally (the dialplan goes on), False on -1."""
        call = self._call
        uuid_text, _, _app_addr = data.partition(",")
        if call.host.audiosocket_addr is None:
            await asyncio.Event().wait()  # no worker attached: play along silently until hangup
            return True
        # The simulator's configured address wins over the app data: in tests and the demo the
        # worker may advertise an address meant for a real Asterisk.
        host, port = call.host.audiosocket_addr
        leg = AudioSocketLeg(uuid=uuid_text.strip(), inactivity_s=self.idle_s())
        try:
            await leg.connect(host, port)
        except (OSError, ValueError) as exc:
            log.warning("sim: AudioSocket connect to %s:%s failed for %s: %s", host, port, call.l1.name, exc)
            await leg.close()
            return False
        self.leg = leg
        for frame in self._pending_frames:
            leg.send_audio(frame)
        self._pending_frames.clear()
        try:
            reason = await leg.ended
        finally:
            self.leg = None
            await self._shielded_close(leg)
        return reason in (EndReason.SERVER_HANGUP, EndReason.SERVER_CLOSED)

    def idle_s(self) -> float:
        idle = getattr(self._call.host, "audiosocket_idle_s", 2.0)
        # A floor keeps heavy time compression from ending AudioSocket on event-loop jitter.
        return max(float(idle) * self._call.time_scale, 0.2)

    async def _shielded_close(self, leg: AudioSocketLeg) -> None:
        task = self._call.host.spawn(leg.close(), f"sim-audiosocket-close-{self._call.l1.uniqueid}")
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(task)


__all__ = ["DialContext", "DialplanStep", "Pbx", "hangup_cause", "substitute"]
