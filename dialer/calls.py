"""Live calls: the registry that AudioSocket and AMI look calls up in, and the live driver of one
call's :class:`~dialer.session.CallSession`.

The composition root builds one :class:`CallRegistry` and hands it to the AudioSocket server (audio
by attempt id), the AMI pool (every event, through the correlator) and the worker (which registers
each call it originates). A :class:`LiveCall` stamps every input with the call's clock, records it
(when recording is on), feeds the session, sends recognizer commands to the call's
:class:`~dialer.asr.service.RecognizerChannel`, hands the other commands to the worker and arms one
timer for the session's next deadline.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from dialer.ami.client import AmiEvent
from dialer.ami.pool import ServerUp
from dialer.ami.signals import Correlator
from dialer.asr.service import RecognizerChannel
from dialer.audiosocket.server import AudioSink
from dialer.logging import call_log
from dialer.session.inputs import (
    NETWORK_INPUTS,
    Answered,
    AudioEnded,
    AudioFrame,
    CloseRecognizer,
    Command,
    FlushRecognizer,
    Gone,
    Input,
    OriginateRejected,
    Recognize,
    Recognized,
    RecognizerFlushed,
    RedirectFailed,
    StopRequested,
    Tick,
)
from dialer.session.recording import CallRecording
from dialer.session.session import CallPhase, CallSession

log = logging.getLogger(__name__)

LATE_TIMER_WARN_MS = 250  # real ms: half the hand-over budget gone to a busy loop is worth a line


class CallEffects(Protocol):
    """What a live call asks of the worker."""

    def carry_out(self, call: LiveCall, commands: Sequence[Command]) -> None:
        """Carry out the session's call commands (hang up, hand to an operator, record)."""

    def observe(self, call: LiveCall, inp: Input) -> None:
        """A network input the session has taken (the worker frees slots, arms checks)."""


@dataclass(frozen=True, slots=True)
class CallClock:
    """Loop time → the call's clock (ms since the originate); the simulator may run time faster."""

    t0: float
    time_scale: float = 1.0

    def now_ms(self, loop_time: float) -> int:
        return int((loop_time - self.t0) * 1000 / self.time_scale)

    def loop_time(self, call_ms: int) -> float:
        return self.t0 + call_ms / 1000 * self.time_scale


class LiveCall(AudioSink):
    """One call being dialled or analysed by this worker."""

    def __init__(
        self,
        session: CallSession,
        clock: CallClock,
        effects: CallEffects,
        *,
        context: Any = None,
        recording: CallRecording | None = None,
        record_until_decision: bool = True,
    ) -> None:
        self.session = session
        self.attempt_id = session.attempt_id
        self.clock = clock
        self.context = context  # the worker's own data about the call (claimed contact, campaign …)
        self.recording = recording
        self.asr: RecognizerChannel | None = None
        self.server: str | None = None
        self.uniqueid: str | None = None
        self.gone = False  # Asterisk has no channel of this call any more
        self.finished = asyncio.Event()  # the verdict is stored
        self.verdict_started = False  # the verdict is being stored
        self._effects = effects
        self._record_until_decision = record_until_decision
        self._timer: asyncio.TimerHandle | None = None
        self.originate_check: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()

    def now_ms(self) -> int:
        return self.clock.now_ms(self._loop.time())

    # -- inputs --------------------------------------------------------------------------------

    def on_ami(self, headers: Mapping[str, Any], inputs: Sequence[Input]) -> None:
        now = self.now_ms()
        self._catch_up(now)
        if self.recording is not None:
            self.recording.ami(now, headers)
        for inp in inputs:
            if isinstance(inp, Gone):
                self.gone = True
            self._feed(inp, now)

    def feed(self, inp: Input) -> None:
        """An input the worker, AudioSocket or the recognizer made (AMI goes through on_ami)."""
        now = self.now_ms()
        self._catch_up(now)
        if self.recording is not None:
            self._record(inp, now)
        if isinstance(inp, Gone | OriginateRejected):
            self.gone = True
        self._feed(inp, now)

    def on_frame(self, pcm: bytes, frame_index: int) -> None:
        self.feed(AudioFrame(pcm, frame_index))

    def on_dtmf(self, digit: str) -> None:
        log.debug("attempt %s: DTMF %s ignored", self.attempt_id, digit)

    def on_end(self, reason: str) -> None:
        call_log(log, "audio_end", self.attempt_id, self.uniqueid, reason=reason)
        self.feed(AudioEnded(reason))

    def _record(self, inp: Input, now: int) -> None:
        rec = self.recording
        assert rec is not None
        match inp:
            case AudioFrame(pcm=pcm, index=index):
                rec.frame(now, index, pcm)
            case Recognized(hypothesis=h):
                rec.hypothesis(now, h)
            case RecognizerFlushed():
                rec.mark(now, "flushed")
            case AudioEnded(reason=reason):
                rec.mark(now, "audio_end", reason=reason)
            case Answered():
                rec.mark(now, "in", type="answered")
            case Gone(cause=cause, dial_status=status, forced=forced):
                rec.mark(now, "in", type="gone", cause=cause, dial_status=status, forced=forced)
            case OriginateRejected(reason=reason):
                rec.mark(now, "in", type="originate_rejected", reason=reason)
            case StopRequested():
                rec.mark(now, "in", type="stop")
            case RedirectFailed(reason=reason):
                rec.mark(now, "in", type="redirect_failed", reason=reason)
            case Tick():
                rec.mark(now, "tick")

    def _feed(self, inp: Input, now: int) -> None:
        s = self.session
        before, decided_before = s.phase, s.decision is not None
        commands = s.feed(inp, now)
        if s.phase is not before:
            call_log(log, "state", self.attempt_id, self.uniqueid, phase=s.phase.value, was=before.value)
        if s.decision is not None and not decided_before and self.recording is not None:
            if self._record_until_decision or s.phase is CallPhase.HANDING_OVER:
                self.recording.stop_audio()  # never a person's conversation
        calls: list[Command] = []
        for cmd in commands:
            if isinstance(cmd, Recognize | FlushRecognizer | CloseRecognizer):
                if self.asr is not None:
                    self.asr.submit(cmd)
            else:
                calls.append(cmd)
        if calls:
            self._effects.carry_out(self, calls)
        if isinstance(inp, NETWORK_INPUTS):
            self._effects.observe(self, inp)
        self._arm_timer()

    def _arm_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline_ms = self.session.next_deadline_ms()
        if deadline_ms is not None:
            self._timer = self._loop.call_at(self.clock.loop_time(deadline_ms), self._on_timer, deadline_ms)

    def _on_timer(self, deadline_ms: int) -> None:
        self._timer = None
        now = self.now_ms()
        late_real_ms = (now - deadline_ms) * self.clock.time_scale
        if late_real_ms >= LATE_TIMER_WARN_MS:
            log.warning("attempt %s: the event loop ran a call deadline %d ms late (overloaded?)",
                        self.attempt_id, round(late_real_ms))  # fmt: skip
        if not self._catch_up(max(now, deadline_ms)):
            self._arm_timer()  # the deadline moved meanwhile

    def _catch_up(self, now: int) -> bool:
        """Feed every deadline the session reached by ``now`` as a :class:`Tick` at its own time,
        before the input at ``now`` (a deadline at the input's own time first, as a replay does).
        A timer runs late when the loop is busy; were the input fed first, the live decision would
        depend on the load, and a replay of the recording would not reproduce it."""
        fed: int | None = None
        while (due := self.session.next_deadline_ms()) is not None and due <= now and (fed is None or due > fed):
            fed = due
            if self.recording is not None:
                self._record(Tick(), due)
            self._feed(Tick(), due)
        return fed is not None

    # -- end -------------------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        """The verdict is stored and Asterisk is done with the call. A call with the operators
        stays registered until it ends: it holds a slot on its server until then."""
        return self.finished.is_set() and (self.gone or self.session.phase is CallPhase.ENDED)

    def release(self) -> None:
        """Stop the timers and close the recording (the recognizer is closed by the session's
        command, or by :meth:`aclose_asr`)."""
        for handle in (self._timer, self.originate_check):
            if handle is not None:
                handle.cancel()
        self._timer = self.originate_check = None
        if self.recording is not None:
            self.recording.close(decision_summary(self.session))
            self.recording = None

    async def aclose_asr(self) -> None:
        if self.asr is not None:
            await self.asr.aclose()


def decision_summary(session: CallSession) -> dict[str, Any] | None:
    d = session.decision
    if d is None:
        return None
    ev = d.evidence
    return {
        "call_class": ev.call_class.value,
        "action": d.action.value,
        "confidence": ev.confidence,
        "reason": ev.reason,
        "decided_at_ms": session.decided_at_ms,
        "hangup_cause": ev.hangup_cause,
        "dial_status": ev.dial_status,
        "answered": ev.answered,
        "asr_text": ev.asr_text,
        # the known recording that decided it (the learning recorder keeps calls none decided)
        "by_fingerprint": fp.name if (fp := session.listening.fingerprint) is not None else None,
    }


class CallRegistry:
    """The worker's live calls: what AudioSocket and AMI look up."""

    def __init__(self) -> None:
        self.correlator = Correlator()
        self._calls: dict[uuid.UUID, LiveCall] = {}
        self.server_ups: asyncio.Queue[ServerUp] = asyncio.Queue()  # the worker reconciles each
        self._unrouted: list[Callable[[AmiEvent], None]] = []

    def add(self, call: LiveCall) -> None:
        self._calls[call.attempt_id] = call
        self.correlator.track(call.attempt_id, asyncio.get_running_loop().time())

    def remove(self, call: LiveCall) -> None:
        self._calls.pop(call.attempt_id, None)
        if call.gone:
            self.correlator.forget(call.attempt_id)

    def get(self, attempt_id: uuid.UUID) -> LiveCall | None:
        return self._calls.get(attempt_id)

    def __len__(self) -> int:
        return len(self._calls)

    def __iter__(self) -> Iterator[LiveCall]:
        return iter(list(self._calls.values()))

    def __contains__(self, attempt_id: object) -> bool:
        return attempt_id in self._calls

    # -- adapters' entry points -----------------------------------------------------------------

    def audio_sink(self, attempt_id: uuid.UUID) -> AudioSink | None:
        """AudioSocket: the sink of a call still being analysed (None: nobody is listening)."""
        call = self._calls.get(attempt_id)
        if call is None or call.session.phase is CallPhase.ENDED:
            return None
        return call

    def on_ami_event(self, event: AmiEvent) -> None:
        routed = self.correlator.feed(event.headers, asyncio.get_running_loop().time())
        call = self._calls.get(routed.attempt_id) if routed is not None else None
        if call is not None and routed is not None:
            call.on_ami(event.headers, routed.inputs)
            return
        for listener in self._unrouted:
            listener(event)

    def subscribe_unrouted(self, listener: Callable[[AmiEvent], None]) -> None:
        """Events of no registered call go to ``listener`` too (calls adopted from a dead worker)."""
        self._unrouted.append(listener)

    def on_server_up(self, up: ServerUp) -> None:
        self.server_ups.put_nowait(up)
