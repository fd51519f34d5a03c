"""One state machine per call: AMI signals and audio/phrase observations in, commands out.

Pure: every input carries ``now_ms`` (milliseconds since the originate was sent); the machine never
reads a clock. It asks :func:`dialer.domain.fusion.fuse` after every input and turns the decision
into commands for the worker (hang up, redirect to operators, stop analysis, record the attempt).
:meth:`CallMachine.next_deadline_ms` tells the worker when to wake it if nothing happens, so the
worker arms one timer instead of polling.

Exactly one :class:`Finish` is emitted per call, whatever order the inputs come in.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field, replace

from dialer.domain.fusion import (
    Action,
    AudioFacts,
    Decision,
    FusionConfig,
    NetworkFacts,
    PhraseFacts,
    fuse,
)
from dialer.domain.model import CallClass, Evidence


class CallPhase(enum.StrEnum):
    ORIGINATING = "originating"
    RINGING = "ringing"
    EARLY_MEDIA = "early_media"
    ANSWERED = "answered"
    HANGING_UP = "hanging_up"  # we decided "machine" and asked Asterisk to hang up
    WITH_OPERATOR = "with_operator"  # redirected to the operator context
    ENDED = "ended"


# ---- inputs -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ringing:
    pass


@dataclass(frozen=True, slots=True)
class Progress:
    """Early media: the analysis half went Up while the far end has not answered."""


@dataclass(frozen=True, slots=True)
class Answered:
    pass


@dataclass(frozen=True, slots=True)
class DialEnded:
    dial_status: str


@dataclass(frozen=True, slots=True)
class HungUp:
    cause: int | None


@dataclass(frozen=True, slots=True)
class OriginateResult:
    reason: int
    success: bool


@dataclass(frozen=True, slots=True)
class OriginateRejected:
    """The originate action itself failed (Response: Error, timeout, server down)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Gone:
    """Every channel of the attempt has hung up."""


@dataclass(frozen=True, slots=True)
class AudioUpdate:
    facts: AudioFacts


@dataclass(frozen=True, slots=True)
class PhraseUpdate:
    facts: PhraseFacts


@dataclass(frozen=True, slots=True)
class Tick:
    """A deadline armed through next_deadline_ms() passed."""


@dataclass(frozen=True, slots=True)
class StopRequested:
    """The worker is shutting down and the drain deadline passed."""


CallInput = (
    Ringing
    | Progress
    | Answered
    | DialEnded
    | HungUp
    | OriginateResult
    | OriginateRejected
    | Gone
    | AudioUpdate
    | PhraseUpdate
    | Tick
    | StopRequested
)

# ---- outputs ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HangupCall:
    attempt_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class RedirectToOperator:
    attempt_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class StopAnalysis:
    attempt_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class Finish:
    attempt_id: uuid.UUID
    evidence: Evidence


Command = HangupCall | RedirectToOperator | StopAnalysis | Finish


@dataclass(frozen=True, slots=True)
class MachineConfig:
    fusion: FusionConfig = field(default_factory=FusionConfig)
    ring_timeout_ms: int = 30_000
    max_call_ms: int = 90_000  # a decision is forced by then
    hangup_grace_ms: int = 5_000  # Asterisk should confirm a hangup within this


@dataclass
class CallMachine:
    attempt_id: uuid.UUID
    config: MachineConfig = field(default_factory=MachineConfig)
    phase: CallPhase = CallPhase.ORIGINATING
    net: NetworkFacts = field(default_factory=NetworkFacts)
    audio: AudioFacts = field(default_factory=AudioFacts)
    phrase: PhraseFacts = field(default_factory=PhraseFacts)
    decision: Decision | None = None
    decided_at_ms: int | None = None
    finished: bool = False
    history: list[tuple[int, str]] = field(default_factory=list)  # (ms, phase) for the logs

    # -- public ---------------------------------------------------------------------------------

    def feed(self, event: CallInput, now_ms: int) -> list[Command]:
        if self.finished and self.phase is CallPhase.ENDED:
            return []
        self._absorb(event, now_ms)
        if isinstance(event, StopRequested):
            return self._stop(now_ms)
        if self.decision is not None:
            return self._after_decision(event, now_ms)
        return self._decide(now_ms, forced=isinstance(event, Tick))

    def next_deadline_ms(self) -> int | None:
        """When the worker should feed a Tick if nothing else happens."""
        if self.phase is CallPhase.ENDED:
            return None
        if self.phase is CallPhase.HANGING_UP and self.decided_at_ms is not None:
            return self.decided_at_ms + self.config.hangup_grace_ms
        if self.phase is CallPhase.WITH_OPERATOR:
            return None
        f = self.config.fusion
        candidates = [self.config.max_call_ms]
        if self.net.answered and self.net.answered_at_ms is not None:
            a = self.net.answered_at_ms
            candidates += [
                a + f.audio_wait_ms,
                a + f.silence_after_answer_ms,
                a + f.unsure_after_answer_ms,
                a + f.unsure_max_ms,
            ]
        elif self.net.progress:
            candidates.append(f.early_media_max_ms)
        return min(candidates)

    # -- internals ------------------------------------------------------------------------------

    def _set_phase(self, phase: CallPhase, now_ms: int) -> None:
        if phase is not self.phase:
            self.phase = phase
            self.history.append((now_ms, phase.value))

    def _absorb(self, event: CallInput, now_ms: int) -> None:
        n = self.net
        live = self.decision is None
        match event:
            case Ringing():
                if live and self.phase is CallPhase.ORIGINATING:
                    self._set_phase(CallPhase.RINGING, now_ms)
            case Progress():
                self.net = replace(n, progress=True)
                if live and self.phase in (CallPhase.ORIGINATING, CallPhase.RINGING):
                    self._set_phase(CallPhase.EARLY_MEDIA, now_ms)
            case Answered():
                if not n.answered:
                    self.net = replace(n, answered=True, answered_at_ms=now_ms)
                if live:
                    self._set_phase(CallPhase.ANSWERED, now_ms)
            case DialEnded(dial_status=status):
                self.net = replace(n, dial_status=status)
            case HungUp(cause=cause):
                # Keep the first meaningful cause: the correlator already prefers the trunk's.
                if n.hangup_cause in (None, 0, 16) and cause not in (None,):
                    self.net = replace(n, hangup_cause=cause)
            case OriginateResult(reason=reason):
                self.net = replace(n, originate_reason=reason)
            case OriginateRejected():
                self.net = replace(n, originate_failed=True, ended=True, ended_at_ms=now_ms)
            case Gone():
                self.net = replace(n, ended=True, ended_at_ms=now_ms)
            case AudioUpdate(facts=facts):
                self.audio = facts
            case PhraseUpdate(facts=facts):
                self.phrase = facts
            case Tick() | StopRequested():
                pass

    def _decide(self, now_ms: int, *, forced: bool) -> list[Command]:
        d = fuse(self.net, self.audio, self.phrase, now_ms, self.config.fusion)
        if d.action is Action.WAIT and forced and now_ms >= self.config.max_call_ms:
            d = self._forced_decision(now_ms)
        if d.action is Action.WAIT:
            return []
        return self._act(d, now_ms)

    def _forced_decision(self, now_ms: int) -> Decision:
        cause, status = self.net.hangup_cause, self.net.dial_status
        if self.net.answered:
            # Never hang up on a possible person: an operator takes it.
            why = f"no decision after {now_ms / 1000:.0f} s"
            ev = Evidence(CallClass.UNSURE_ANSWERED, 0.3, why, cause, status, answered=True)
            return Decision(Action.HAND_TO_OPERATOR, ev)
        cls = CallClass.NO_ANSWER if not self.net.progress else CallClass.NO_CONNECTION
        ev = Evidence(cls, 0.5, f"no answer and no verdict after {now_ms / 1000:.0f} s", cause, status)
        return Decision(Action.HANGUP, ev)

    def _act(self, d: Decision, now_ms: int) -> list[Command]:
        self.decision = d
        self.decided_at_ms = now_ms
        aid = self.attempt_id
        if d.action is Action.RECORD:
            self._set_phase(CallPhase.ENDED, now_ms)
            self.finished = True
            return [StopAnalysis(aid), Finish(aid, d.evidence)]
        if d.action is Action.HAND_TO_OPERATOR:
            # The attempt's verdict is final now; the call lives on with the operator.
            self._set_phase(CallPhase.WITH_OPERATOR, now_ms)
            self.finished = True
            return [StopAnalysis(aid), RedirectToOperator(aid), Finish(aid, d.evidence)]
        self._set_phase(CallPhase.HANGING_UP, now_ms)
        if self.net.ended:
            self._set_phase(CallPhase.ENDED, now_ms)
            self.finished = True
            return [StopAnalysis(aid), Finish(aid, d.evidence)]
        return [StopAnalysis(aid), HangupCall(aid)]

    def _after_decision(self, event: CallInput, now_ms: int) -> list[Command]:
        assert self.decision is not None
        if self.phase is CallPhase.WITH_OPERATOR:
            if isinstance(event, Gone):
                self._set_phase(CallPhase.ENDED, now_ms)
            return []
        if self.phase is CallPhase.HANGING_UP:
            grace_over = (
                isinstance(event, Tick)
                and self.decided_at_ms is not None
                and (now_ms >= self.decided_at_ms + self.config.hangup_grace_ms)
            )
            if isinstance(event, Gone) or grace_over:
                self._set_phase(CallPhase.ENDED, now_ms)
                if not self.finished:
                    self.finished = True
                    ev = self.decision.evidence
                    if grace_over and not self.net.ended:
                        ev = replace(ev, reason=ev.reason + "; hangup not confirmed by Asterisk")
                    return [Finish(self.attempt_id, ev)]
        return []

    def _stop(self, now_ms: int) -> list[Command]:
        """Shutdown deadline: end what is still undecided, never dropping a possible person."""
        if self.decision is not None:
            return self._after_decision(Tick(), now_ms)
        if self.net.answered and not self.net.ended:
            ev = Evidence(
                CallClass.UNSURE_ANSWERED,
                0.3,
                "worker stopping; answered call handed to an operator undecided",
                hangup_cause=self.net.hangup_cause,
                dial_status=self.net.dial_status,
                answered=True,
            )
            return self._act(Decision(Action.HAND_TO_OPERATOR, ev), now_ms)
        ev = Evidence(
            CallClass.ABORTED,
            0.0,
            "worker stopping before a verdict",
            hangup_cause=self.net.hangup_cause,
            dial_status=self.net.dial_status,
        )
        return self._act(Decision(Action.RECORD if self.net.ended else Action.HANGUP, ev), now_ms)
