"""After a real answer: who is on the line, from the shape of the speech alone.

- PERSON: a short greeting («Алло», «Да, слушаю» — at most ``person_max_greeting_ms``), then a
  pause left for us (``person_pause_ms``). Decided that pause after the greeting ends, so a
  person is handed over within ~0.4 s.
- VOICEMAIL: a monologue longer than ``machine_min_monologue_ms`` with no pause for us, or a
  beep after speech. A long monologue may also be an organisation's IVR: the reason says so and
  the phrase catalogue decides later.
- SILENCE: nothing said for ``initial_silence_ms`` after the answer.
- UNSURE (with the reason) for everything in between: a greeting too long for a person and too
  short for a machine, or no pattern within ``max_analysis_ms``. The caller hands UNSURE calls to
  an operator: we never hang up on someone because a threshold was close.

A dropped call is the caller's to see (the stream ends); this module only classifies audio.
"""

from __future__ import annotations

from dataclasses import dataclass

from dialer.domain.model import SpeechVerdict


@dataclass(frozen=True, slots=True)
class SpeechParams:
    person_max_greeting_ms: int = 2000
    person_pause_ms: int = 360
    machine_min_monologue_ms: int = 3000
    initial_silence_ms: int = 4000
    max_analysis_ms: int = 8000
    min_greeting_ms: int = 100  # a shorter burst (a click, a cough) is no greeting yet


@dataclass(frozen=True, slots=True)
class PatternDecision:
    verdict: SpeechVerdict
    at_ms: int
    reason: str
    confidence: float


def _s(ms: int) -> str:
    return f"{ms / 1000:.1f} s"


class SpeechPatternClassifier:
    """Decides once; a later beep may refine an earlier verdict to VOICEMAIL."""

    def __init__(self, answered_at_ms: int, params: SpeechParams | None = None) -> None:
        self.params = params or SpeechParams()
        self.answered_at_ms = answered_at_ms
        self.verdict: PatternDecision | None = None
        self._greeting_start_ms: int | None = None  # first speech after the answer
        self._beep_refined = False

    def tick(
        self, now_ms: int, in_speech: bool, segment_start_ms: int, last_active_end_ms: int | None
    ) -> PatternDecision | None:
        """Called once per slot with the VAD's state at the end of that slot (``now_ms``)."""
        if self.verdict is not None:
            return None
        p = self.params
        since_answer = now_ms - self.answered_at_ms
        if in_speech and self._greeting_start_ms is None:
            self._greeting_start_ms = max(segment_start_ms, self.answered_at_ms)
        start = self._greeting_start_ms
        if start is None:
            if since_answer >= p.initial_silence_ms:
                return self._decide(
                    SpeechVerdict.SILENCE, now_ms, f"no speech for {_s(since_answer)} after the answer", 0.8
                )
            return None
        if in_speech:
            span = now_ms - start
            if span >= p.machine_min_monologue_ms:
                return self._decide(
                    SpeechVerdict.VOICEMAIL,
                    now_ms,
                    f"monologue of {_s(span)} without a pause for us (voicemail or IVR: phrases decide)",
                    0.7,
                )
        elif last_active_end_ms is not None and now_ms - last_active_end_ms >= p.person_pause_ms:
            greeting = last_active_end_ms - start
            pause = now_ms - last_active_end_ms
            if greeting < p.min_greeting_ms:
                self._greeting_start_ms = None  # a click: wait for a real greeting
            elif greeting <= p.person_max_greeting_ms:
                return self._decide(
                    SpeechVerdict.PERSON, now_ms, f"greeting of {_s(greeting)} then a {_s(pause)} pause for us", 0.8
                )
            elif greeting >= p.machine_min_monologue_ms:
                return self._decide(
                    SpeechVerdict.VOICEMAIL,
                    now_ms,
                    f"monologue of {_s(greeting)} (voicemail or IVR: phrases decide)",
                    0.7,
                )
            else:
                return self._decide(
                    SpeechVerdict.UNSURE,
                    now_ms,
                    f"greeting of {_s(greeting)}: longer than a person's "
                    f"(≤ {_s(p.person_max_greeting_ms)}), shorter than a machine's "
                    f"(≥ {_s(p.machine_min_monologue_ms)})",
                    0.5,
                )
        if since_answer >= p.max_analysis_ms:
            return self._decide(SpeechVerdict.UNSURE, now_ms, f"no clear speech pattern in {_s(since_answer)}", 0.4)
        return None

    def beep(self, at_ms: int, frequency_hz: float) -> PatternDecision | None:
        """A steady beep after speech: the recording prompt of a voicemail."""
        if self._beep_refined or self._greeting_start_ms is None:
            return None
        self._beep_refined = True
        spoken = at_ms - self._greeting_start_ms
        before = f" (earlier: {self.verdict.verdict})" if self.verdict is not None else ""
        self.verdict = PatternDecision(
            SpeechVerdict.VOICEMAIL, at_ms, f"beep of {frequency_hz:.0f} Hz after {_s(spoken)} of speech{before}", 0.9
        )
        return self.verdict

    def _decide(self, verdict: SpeechVerdict, at_ms: int, reason: str, confidence: float) -> PatternDecision:
        self.verdict = PatternDecision(verdict, at_ms, reason, confidence)
        return self.verdict
