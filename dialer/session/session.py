"""One call, decided: the :class:`CallSession`.

The session owns everything decided about one attempt: the call's phase, the network facts, the
audio analysis (tones, SIT, VAD, speech pattern, fingerprints — :mod:`dialer.session.listening`),
the recognised phrases (:mod:`dialer.session.phrases`), the recognizer's life, and the fusion
(:func:`dialer.domain.fusion.fuse`). Inputs come in with ``now_ms`` (milliseconds since the
originate); commands come out. Nothing here reads a clock or does I/O.

Drivers: the worker (live, :mod:`dialer.calls`), the replay of a recorded call and ``dialer eval``
(:mod:`dialer.session.replay`). They feed the same inputs and execute the same commands, so what is
measured is what runs.

Rules of the road:

* Exactly one :class:`Record` per call, whatever order the inputs come in.
* The session asks the fusion after every input and acts on the first decision that is not WAIT.
* When the audio ends (the network hung up, or the stream closed) while a recognizer is decoding,
  the session flushes it and waits for its last words (:class:`RecognizerFlushed`, or
  ``flush_timeout_ms``) before its final decision — live as in replay.
* :meth:`CallSession.next_deadline_ms` tells the driver when to feed a :class:`Tick` if nothing else
  happens, so the driver arms one timer instead of polling.
* A step log (:attr:`CallSession.trace`) says when each signal arrived and what the session
  concluded, for ``dialer replay --explain``.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from dialer.asr.matcher import PhraseMatcher
from dialer.audio import BeepDetected, Observation, SitDetected, SpeechEnded, SpeechPattern, ToneDetected, TonePlan
from dialer.audio.fingerprint import FingerprintLibrary
from dialer.audio.frames import FRAME_MS, SAMPLE_RATE_HZ, frame_slots
from dialer.audio.silero import ENERGY_VAD, VadChoice
from dialer.audio.speech import SpeechParams
from dialer.domain.deciding import decision_from_audio_ms
from dialer.domain.fusion import Action, AudioFacts, Decision, FusionConfig, NetworkFacts, PhraseFacts, fuse
from dialer.domain.model import CallClass, Evidence
from dialer.domain.q850 import Cause
from dialer.session.inputs import (
    Answered,
    AudioEnded,
    AudioFrame,
    ChannelRole,
    CloseRecognizer,
    Command,
    DialEnded,
    FlushRecognizer,
    Gone,
    HandToOperator,
    Hangup,
    HungUp,
    Input,
    OperatorAnswered,
    OriginateRejected,
    OriginateResult,
    Progress,
    QueueAbandoned,
    QueueJoined,
    Recognize,
    Recognized,
    RecognizerFlushed,
    Record,
    RedirectFailed,
    Ringing,
    SendDigits,
    StopRequested,
    Tick,
)
from dialer.session.listening import Listening
from dialer.session.phrases import DEFAULT_CONFIRM_PARTIALS, PhraseTracker

TRACE_MAX_STEPS = 400  # a call's step log is for people; keep it bounded
_UNINFORMATIVE_CAUSES = (None, Cause.NOT_DEFINED, Cause.NORMAL_CLEARING)


class CallPhase(enum.StrEnum):
    ORIGINATING = "originating"
    RINGING = "ringing"
    EARLY_MEDIA = "early_media"
    ANSWERED = "answered"
    HANGING_UP = "hanging_up"  # we decided "machine" and asked Asterisk to hang up
    HANDING_OVER = "handing_over"  # redirected to the operator context; no operator has answered yet
    WITH_OPERATOR = "with_operator"  # an operator answered: the hand-over is confirmed
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """Settings of the call decision (per process)."""

    fusion: FusionConfig = field(default_factory=FusionConfig)
    max_call_ms: int = 90_000  # a decision is forced by then
    hangup_grace_ms: int = 5_000  # Asterisk should confirm a hangup within this
    audio_drain_ms: int = 1_000  # after the hang-up, wait this long for audio still in flight to end
    flush_timeout_ms: int = 3_000  # at the end of audio, wait this long for the recognizer's last words
    handover_max_wait_ms: int = 300_000  # no operator answered by then: the person counts as lost
    confirm_partials: int = DEFAULT_CONFIRM_PARTIALS
    # … in early media (None: as after the answer): nobody there can be hung up on, and a
    # «Некорректный контакт» class still needs two agreeing decodes (the fusion)
    confirm_partials_early: int | None = None
    speech: SpeechParams | None = None

    def stretched(self, time_scale: float) -> SessionConfig:
        """For simulated time running ``1 / time_scale`` times faster than real time: CPU and
        sockets do not speed up. A decode's wait (the recognizer's last words, a monologue's words)
        and audio still in flight after a hang-up (socket buffers, a loaded event loop) keep their
        real-time length; each ends at once when what it waits for comes."""
        if time_scale >= 1.0:
            return self
        return replace(
            self,
            flush_timeout_ms=int(self.flush_timeout_ms / time_scale),
            audio_drain_ms=int(self.audio_drain_ms / time_scale),
            fusion=replace(self.fusion, decode_wait_ms=int(self.fusion.decode_wait_ms / time_scale)),
        )


@dataclass(frozen=True)
class SessionSetup:
    """What every call of a process shares: the settings and the data loaded once (tone plan,
    phrase matcher, known recordings)."""

    plan: TonePlan
    config: SessionConfig = field(default_factory=SessionConfig)
    matcher: PhraseMatcher | None = None  # matches the recognizer's text (when one decodes)
    fingerprints: FingerprintLibrary | None = None
    sample_rate: int = SAMPLE_RATE_HZ
    vad: VadChoice = ENERGY_VAD  # the voice-activity detector every call gets (its model loaded once)

    def describe(self) -> dict[str, Any]:
        """The settings, as stored with a recording (replay compares them with its own)."""
        return {
            "tone_plan": self.plan.country,
            "sample_rate": self.sample_rate,
            "vad": self.vad.name,
            "session": asdict(self.config),
            "catalogue": self.matcher.catalogue.source if self.matcher is not None else None,
            "fingerprints": [r.name for r in self.fingerprints.recordings] if self.fingerprints else [],
        }

    def session(
        self, attempt_id: uuid.UUID, *, decoding: bool = False, audio: bool = True, extension: str | None = None
    ) -> CallSession:
        """A new call. ``decoding``: a recognizer is attached (the session sends it audio);
        ``audio``: the call's audio reaches the worker at all (AudioSocket); ``extension``: digits
        to dial when an organisation's IVR answers («доб. 123»)."""
        return CallSession(attempt_id, self, decoding=decoding, audio=audio, extension=extension)


@dataclass(frozen=True, slots=True)
class Step:
    """One line of the session's step log: what arrived or what was concluded, on the call clock."""

    at_ms: int
    kind: str  # net | audio | asr | fingerprint | flush | decision | phase
    text: str


class CallSession:
    """Everything decided about one call. Feed inputs with :meth:`feed`; execute the commands."""

    def __init__(
        self, attempt_id: uuid.UUID, setup: SessionSetup, *, decoding: bool, audio: bool, extension: str | None = None
    ) -> None:
        cfg = setup.config
        self._setup = setup
        self.extension = extension or None  # still to dial when an IVR answers (None once dialled)
        self.extension_dialled_at_ms: int | None = None
        self.attempt_id = attempt_id
        self.config = cfg
        self.phase = CallPhase.ORIGINATING
        self.net = NetworkFacts()
        self.audio_available = audio
        self.listening = Listening(
            setup.plan,
            sample_rate=setup.sample_rate,
            fingerprints=setup.fingerprints,
            speech_params=cfg.speech,
            vad=setup.vad.new(),
        )
        matcher = setup.matcher if decoding else None
        self.phrases = PhraseTracker(matcher, decoding=decoding, confirm_partials=cfg.confirm_partials)
        self.decision: Decision | None = None
        self.decided_at_ms: int | None = None
        self.recorded = False  # the one Record command was given
        self.queue_joined = False
        self.operator_answered = False
        self.trace: list[Step] = []
        self.history: list[tuple[int, str]] = []  # (ms, phase)
        self.audio_offset_ms: int | None = None  # call time of the stream's t=0 (first frame)
        self._sample_rate = setup.sample_rate
        self._decoding = decoding and matcher is not None
        self._last_final_ms: int | None = None  # when the recognizer last gave a final result
        self._asr_fed = False  # the recognizer has been given audio
        self._flush_deadline_ms: int | None = None  # set while waiting for the recognizer's last words
        self._flushed = False
        self._audio_started = False
        self._audio_ended = False
        self._drain_deadline_ms: int | None = None  # set while waiting for the stream to end after a hang-up
        self._phrase_facts: PhraseFacts | None = None  # cache, invalidated when the text or a match changes
        self._now_ms = 0  # the latest time fed: deadlines at or before it have been seen

    # -- public -----------------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        """The verdict is recorded (the call may live on with an operator)."""
        return self.recorded

    @property
    def evidence(self) -> Evidence | None:
        return self.decision.evidence if self.decision is not None else None

    def feed(self, event: Input, now_ms: int) -> list[Command]:
        if self.phase is CallPhase.ENDED:
            return []
        due = self.next_deadline_ms()  # a deadline reached by this input counts, tick or not
        self._now_ms = max(self._now_ms, now_ms)
        out: list[Command] = []
        if isinstance(event, AudioFrame):
            # Before the answer the fusion reads only what the analysers observe (tones, SIT,
            # phrases) and deadlines: a frame that observed nothing cannot change its answer.
            observed = self._frame(event.pcm, event.index, now_ms, out)
            if not (observed or self.net.answered or (due is not None and now_ms >= due)):
                return out
        else:
            self._absorb(event, now_ms, out)
        if isinstance(event, StopRequested):
            out += self._stop(now_ms)
        elif self.decision is not None:
            out += self._after_decision(event, now_ms)
        elif self._waiting_for_flush(event, now_ms, out):
            pass
        else:
            out += self._decide(now_ms)
        return out

    def next_deadline_ms(self) -> int | None:
        """When the driver should feed a :class:`Tick` if nothing else happens: the earliest
        deadline still ahead of the latest time fed (one already passed has been seen)."""
        if self.phase is CallPhase.ENDED or self.phase is CallPhase.WITH_OPERATOR:
            return None
        if self.phase is CallPhase.HANGING_UP:
            return self._phase_since_ms + self.config.hangup_grace_ms
        if self.phase is CallPhase.HANDING_OVER:
            if self.recorded or self.decided_at_ms is None:
                return None
            return self.decided_at_ms + self.config.handover_max_wait_ms
        f = self.config.fusion
        candidates = [self.config.max_call_ms]
        for pending in (self._drain_deadline_ms, self._flush_deadline_ms):
            if pending is not None:
                candidates.append(pending)
        if self.net.answered and self.net.answered_at_ms is not None:
            a = self.net.answered_at_ms
            candidates += [
                a + f.audio_wait_ms,
                a + f.silence_after_answer_ms,
                a + f.unsure_max_ms,
            ]
        elif self.net.progress:
            candidates.append(f.early_media_max_ms)
        ahead = [c for c in candidates if c > self._now_ms]
        return min(ahead) if ahead else None

    @property
    def dead_air_ms(self) -> int | None:
        """For a call handed to an operator: the silence on the far end's side from the end of
        its greeting to the hand-over (0 when it was still speaking); None when no greeting was
        heard after the answer or the call was not handed over."""
        d = self.decision
        if d is None or d.action is not Action.HAND_TO_OPERATOR or self.decided_at_ms is None:
            return None
        if d.evidence.dead_air_ms is not None:
            return d.evidence.dead_air_ms
        answered = self.listening.answered_at_ms
        facts = self.listening.facts()
        if facts.speaking:
            return 0
        end = self.listening.last_speech_end_ms
        if end is None or answered is None or end < answered:
            return None
        return max(0, self.decided_at_ms - self.to_call_ms(end))

    def audio_facts(self) -> AudioFacts:
        if not self.audio_available:
            return AudioFacts(available=False)
        facts = self.listening.facts()
        return replace(facts, stream_ended=True) if self._audio_ended else facts

    def phrase_facts(self) -> PhraseFacts:
        if self._phrase_facts is None:
            self._phrase_facts = self.phrases.facts(self.listening.fingerprint)
        return self._phrase_facts

    @property
    def decision_ms(self) -> int | None:
        """From the start of the call's audio to the decision (stored with the attempt)."""
        return decision_from_audio_ms(self.decided_at_ms, self.audio_offset_ms)

    def to_call_ms(self, stream_ms: int) -> int:
        """A time on the audio stream's clock → the call's clock."""
        return stream_ms + (self.audio_offset_ms or 0)

    # -- inputs -----------------------------------------------------------------------------------

    def _absorb(self, event: Input, now_ms: int, out: list[Command]) -> None:
        match event:
            case Recognized(hypothesis=hyp):
                if hyp.final:
                    self._last_final_ms = now_ms
                changed = self.phrases.update(hyp, confirm=self._partials_to_confirm())
                self._phrase_facts = None
                facts = self.phrase_facts()
                if changed and facts.call_class is not None:
                    kind = "final" if facts.final else "confirmed partial"
                    what = f"{kind} match {facts.call_class.value} «{facts.phrase}» ({facts.score:.2f})"
                    self._note(now_ms, "asr", f"{what} in «{facts.text}»")
                elif hyp.final and hyp.text:
                    self._note(now_ms, "asr", f"heard «{hyp.text}» (no phrase matched)")
            case RecognizerFlushed():
                self._flushed = True
                self._note(now_ms, "flush", "recognizer flushed")
            case AudioEnded(reason=reason):
                self._audio_ended = True
                self._drain_deadline_ms = None
                self._note(now_ms, "audio", f"audio ended ({reason})" if reason else "audio ended")
            case Tick() | StopRequested():
                pass
            case _:
                self._network(event, now_ms)

    def _partials_to_confirm(self) -> int | None:
        """The early-media count before the answer; None: the tracker's own (``confirm_partials``)."""
        return None if self.net.answered else self.config.confirm_partials_early

    def _network(self, event: Input, now_ms: int) -> None:
        n = self.net
        match event:
            case Ringing() | Progress() | Answered():
                self._call_progress(event, now_ms)
            case DialEnded(dial_status=status):
                self.net = replace(n, dial_status=status)
            case HungUp(role=role, cause=cause):
                # The trunk's cause is what the network said; keep the first meaningful one.
                if role is ChannelRole.TRUNK and n.hangup_cause in _UNINFORMATIVE_CAUSES and cause is not None:
                    self.net = replace(n, hangup_cause=cause)
            case OriginateResult(reason=reason):
                self.net = replace(n, originate_reason=reason if reason is not None else -1)
            case OriginateRejected():
                self.net = replace(n, originate_failed=True, ended=True, ended_at_ms=now_ms)
            case QueueJoined():
                self.queue_joined = True
            case OperatorAnswered():
                self.operator_answered = True
            case Gone(cause=cause, dial_status=status):
                if status:
                    n = replace(n, dial_status=status)
                if n.hangup_cause in _UNINFORMATIVE_CAUSES and cause is not None:
                    n = replace(n, hangup_cause=cause)
                self.net = replace(n, ended=True, ended_at_ms=now_ms)
        self._note(now_ms, "net", _describe_network(event))

    def _call_progress(self, event: Ringing | Progress | Answered, now_ms: int) -> None:
        """Ringing, early media, answer: the network's facts, and the phase while undecided."""
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
                    self.listening.mark_answered()
                if live:
                    self._set_phase(CallPhase.ANSWERED, now_ms)

    def _frame(self, pcm: bytes, index: int, now_ms: int, out: list[Command]) -> bool:
        """Analyse one frame; True when the analysers observed something."""
        if self.decision is not None or not self.audio_available:
            return False  # decided: the analysis has stopped
        if self.audio_offset_ms is None:
            self.audio_offset_ms = now_ms - (index + frame_slots(len(pcm), self._sample_rate)) * FRAME_MS
        self._audio_started = True
        obs, found = self.listening.feed(pcm, index)
        for o in obs:
            self._note_observation(o)
        if found is not None:
            self._phrase_facts = None
            what = f"known recording {found.name} ({found.call_class.value}, score {found.score:.2f})"
            self._note(now_ms, "fingerprint", what)
        if self._decoding and self._flush_deadline_ms is None and not self._flushed:
            self._asr_fed = True
            out.append(Recognize(pcm, self.listening.voiced))
        return bool(obs) or found is not None

    # -- the end of audio ---------------------------------------------------------------------------

    def _waiting_for_flush(self, event: Input, now_ms: int, out: list[Command]) -> bool:
        """True while the final decision must wait for the rest of the audio.

        After the hang-up the stream's last frames may still be in flight (AudioSocket and AMI are
        two sockets): wait for the stream to end, up to ``audio_drain_ms``. Then, if a recognizer is
        decoding, flush it and wait for its last words, up to ``flush_timeout_ms``."""
        if self._draining(now_ms):
            return True
        if self._flush_deadline_ms is not None:
            if self._flushed or now_ms >= self._flush_deadline_ms:
                if not self._flushed:
                    self._note(now_ms, "flush", "recognizer did not answer in time; deciding without it")
                self._flush_deadline_ms = None
                self._flushed = True
                self._close_recognizer(out)
                return False
            return True
        audio_over = self._audio_ended or self.net.ended
        if audio_over and self._decoding and self._asr_fed and not self._flushed:
            self._flush_deadline_ms = now_ms + self.config.flush_timeout_ms
            self._note(now_ms, "flush", "audio over: flushing the recognizer before deciding")
            out.append(FlushRecognizer())
            return True
        return False

    def _draining(self, now_ms: int) -> bool:
        if not (self.net.ended and self._audio_started and not self._audio_ended and self.audio_available):
            return False
        if self._drain_deadline_ms is None:
            self._drain_deadline_ms = now_ms + self.config.audio_drain_ms
            self._note(now_ms, "audio", "hung up: waiting for the audio still in flight")
        if now_ms < self._drain_deadline_ms:
            return True
        self._audio_ended = True  # gave up waiting: decide with what was heard
        self._drain_deadline_ms = None
        return False

    def _close_recognizer(self, out: list[Command]) -> None:
        if self._decoding:
            self._decoding = False
            out.append(CloseRecognizer())

    # -- decisions --------------------------------------------------------------------------------

    def _decide(self, now_ms: int) -> list[Command]:
        audio, phrase = self.audio_facts(), self.phrase_facts()
        if self._decoding and not audio.speaking and audio.speech_ms > 0:
            # a final result later than the speech's end answers for it; before that, it is decoding
            speech_end_ms = now_ms - audio.quiet_ms
            if self._last_final_ms is None or self._last_final_ms < speech_end_ms:
                phrase = replace(phrase, awaiting_words=True)
        d = fuse(self.net, audio, phrase, now_ms, self.config.fusion)
        if d.action is Action.WAIT and now_ms >= self.config.max_call_ms:
            d = self._forced_decision(now_ms)
        if d.action is Action.WAIT:
            return []
        if d.evidence.call_class is CallClass.IVR and d.action is Action.HANGUP and self.extension:
            return self._dial_extension(now_ms)
        return self._act(d, now_ms)

    def _dial_extension(self, now_ms: int) -> list[Command]:
        """An IVR asks for an extension we know: dial it and listen afresh to what answers — the
        speech pattern and the phrases start over; a person reached that way goes to an operator,
        the IVR again (or a machine) is hung up as usual."""
        digits, self.extension = self.extension or "", None
        self.extension_dialled_at_ms = now_ms
        self.net = replace(self.net, answered_at_ms=now_ms)  # the fusion's clock after an answer restarts
        self._note(now_ms, "decision", f"organisation IVR: dialling the extension {digits} and listening again")
        self.listening.restart_speech_pattern()
        matcher = self._setup.matcher if self._decoding else None
        self.phrases = PhraseTracker(matcher, decoding=self._decoding, confirm_partials=self.config.confirm_partials)
        self._phrase_facts = None
        # the IVR's own recording is known now: a fingerprint of it must not decide the next part
        self.listening.forget_fingerprint()
        return [SendDigits(digits)]

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
        ev = d.evidence
        self._note(now_ms, "decision", f"{d.action.value}: {ev.call_class.value} ({ev.confidence:.2f}) — {ev.reason}")
        out: list[Command] = []
        self._close_recognizer(out)
        if d.action is Action.RECORD:
            self._set_phase(CallPhase.ENDED, now_ms)
            return [*out, self._record(ev)]
        if d.action is Action.HAND_TO_OPERATOR:
            # The verdict waits for an operator to answer (or for the person to be lost on the way).
            self.decision = replace(d, evidence=replace(ev, dead_air_ms=self.dead_air_ms))
            self._set_phase(CallPhase.HANDING_OVER, now_ms)
            return [*out, HandToOperator(self.decision.evidence)]
        self._set_phase(CallPhase.HANGING_UP, now_ms)
        if self.net.ended:
            self._set_phase(CallPhase.ENDED, now_ms)
            return [*out, self._record(ev)]
        return [*out, Hangup(ev)]

    def _record(self, ev: Evidence) -> Record:
        self.recorded = True
        return Record(ev)

    def _after_decision(self, event: Input, now_ms: int) -> list[Command]:
        assert self.decision is not None
        if self.phase is CallPhase.HANDING_OVER:
            return self._handing_over(event, now_ms)
        if self.phase is CallPhase.WITH_OPERATOR:
            if isinstance(event, Gone):
                self._set_phase(CallPhase.ENDED, now_ms)
            return []
        if self.phase is not CallPhase.HANGING_UP:
            return []
        grace_over = now_ms >= self._phase_since_ms + self.config.hangup_grace_ms
        if not (isinstance(event, Gone) or grace_over):
            return []
        self._set_phase(CallPhase.ENDED, now_ms)
        if self.recorded:
            return []
        ev = self.decision.evidence
        if grace_over and not self.net.ended:
            ev = replace(ev, reason=ev.reason + "; hangup not confirmed by Asterisk")
        return [self._record(ev)]

    def _handing_over(self, event: Input, now_ms: int) -> list[Command]:
        """After the Redirect: only an operator answering confirms the hand-over; a person lost on
        the way is recorded as such (and called back, docs/rules.md §6)."""
        assert self.decision is not None and self.decided_at_ms is not None
        ev = self.decision.evidence
        waited = now_ms - self.decided_at_ms
        if isinstance(event, Gone):
            self._set_phase(CallPhase.ENDED, now_ms)
        if self.recorded:
            return []
        match event:
            case OperatorAnswered(operator=who):
                self._set_phase(CallPhase.WITH_OPERATOR, now_ms)
                reason = f"{ev.reason}; an operator answered after {waited / 1000:.1f} s"
                return [self._record(replace(ev, reason=reason, queue_wait_ms=waited, operator=who or None))]
            case QueueAbandoned(hold_s=hold):
                held = f"{hold} s" if hold is not None else f"{waited / 1000:.1f} s"
                return [self._lost(f"hung up after {held} in the operators' queue", waited)]
            case Gone():
                why = f"the call ended {waited / 1000:.1f} s after the hand-over, before an operator answered"
                if not self.queue_joined:
                    why += " (it never joined the operators' queue: is the operator context and its queue there?)"
                return [self._lost(why, waited)]
            case RedirectFailed(reason=reason):
                # Nobody will take the call and the person hears silence: end it, call back at once.
                # Asterisk confirms the hang-up within the grace, or the call ends unconfirmed (its
                # events may have been lost with the AMI connection that failed the Redirect).
                self._set_phase(CallPhase.HANGING_UP, now_ms)
                return [self._lost(f"hand-over failed: {reason}", waited), Hangup(ev)]
            case StopRequested():
                why = f"{ev.reason}; worker stopped before an operator answered (not confirmed)"
                return [self._record(replace(ev, reason=why, queue_wait_ms=waited))]
        if waited >= self.config.handover_max_wait_ms:
            return [self._lost(f"no operator answered in {waited / 1000:.0f} s", waited)]
        return []

    def _lost(self, why: str, waited: int) -> Record:
        assert self.decision is not None
        ev = self.decision.evidence
        return self._record(
            replace(ev, call_class=CallClass.PERSON_LOST, reason=f"{ev.reason}; lost: {why}", queue_wait_ms=waited)
        )

    def _stop(self, now_ms: int) -> list[Command]:
        """Shutdown deadline: end what is still undecided, never dropping a possible person."""
        if self.decision is not None:
            return self._after_decision(StopRequested() if self.phase is CallPhase.HANDING_OVER else Tick(), now_ms)
        cause, status = self.net.hangup_cause, self.net.dial_status
        if self.net.answered and not self.net.ended:
            why = "worker stopping; answered call handed to an operator undecided"
            ev = Evidence(CallClass.UNSURE_ANSWERED, 0.3, why, cause, status, answered=True)
            return self._act(Decision(Action.HAND_TO_OPERATOR, ev), now_ms)
        ev = Evidence(CallClass.ABORTED, 0.0, "worker stopping before a verdict", cause, status)
        return self._act(Decision(Action.RECORD if self.net.ended else Action.HANGUP, ev), now_ms)

    # -- step log ---------------------------------------------------------------------------------

    @property
    def _phase_since_ms(self) -> int:
        """When the current phase began (a hang-up's grace runs from there)."""
        return self.history[-1][0] if self.history else 0

    def _set_phase(self, phase: CallPhase, now_ms: int) -> None:
        if phase is not self.phase:
            self.phase = phase
            self.history.append((now_ms, phase.value))
            self._note(now_ms, "phase", phase.value)

    def _note(self, at_ms: int, kind: str, text: str) -> None:
        if len(self.trace) < TRACE_MAX_STEPS:
            self.trace.append(Step(at_ms, kind, text))

    def _note_observation(self, o: Observation) -> None:
        at = self.to_call_ms(o.at_ms)
        match o:
            case ToneDetected(kind=kind, confidence=c):
                self._note(at, "audio", f"{kind.value} tone ({c:.2f})")
            case SitDetected(confidence=c):
                self._note(at, "audio", f"SIT tone ({c:.2f})")
            case BeepDetected(frequency_hz=hz):
                self._note(at, "audio", f"beep of {hz:.0f} Hz")
            case SpeechEnded(duration_ms=d):
                self._note(at, "audio", f"speech ended after {d / 1000:.2f} s")
            case SpeechPattern(verdict=v, reason=why):
                self._note(at, "audio", f"speech pattern: {v.value} — {why}")
            case _:
                self._note(at, "audio", "speech started")


def _describe_network(event: Input) -> str:
    match event:
        case DialEnded(dial_status=s):
            return f"DialEnd {s}"
        case HungUp(role=role, cause=cause, cause_txt=txt):
            return f"Hangup of the {role.value} leg, cause {cause}" + (f" ({txt})" if txt else "")
        case OriginateResult(reason=reason, response=resp):
            return f"OriginateResponse {resp}, reason {reason}"
        case OriginateRejected(reason=reason):
            return f"originate rejected: {reason}"
        case QueueJoined(queue=q, position=pos):
            return f"joined the queue {q} at position {pos}"
        case OperatorAnswered(operator=who):
            return f"operator {who} answered" if who else "an operator answered"
        case QueueAbandoned(queue=q, hold_s=hold):
            return f"hung up in the queue {q} after {hold} s"
        case RedirectFailed(reason=reason):
            return f"hand-over failed: {reason}"
        case Gone(cause=cause, dial_status=status, forced=forced):
            return f"every channel gone (cause {cause}, DialStatus {status})" + (" [forced]" if forced else "")
        case _:
            return type(event).__name__


__all__ = ["CallPhase", "CallSession", "SessionConfig", "SessionSetup", "Step"]
