"""One analyser per call: slin frames in, observations out.

``CallAudioAnalyzer.feed(pcm, frame_index)`` takes one AudioSocket audio payload and the index of
its first 20 ms slot on the call's audio clock (slot ``i`` starts at ``i·20`` ms; the caller counts
slots, a payload longer than 320 bytes covers several). Skipped indices are missing audio, bridged
by the detectors; an index at or before one already fed is late and dropped. Nothing here reads a
clock or does I/O: ``at_ms`` values are on the audio clock.

``at_ms`` is the decision time (end of the slot that completed the evidence) for ToneDetected,
SitDetected, BeepDetected and SpeechPattern — latency is measured from it — and the time the
speech started/ended for SpeechStarted/SpeechEnded (those are reported up to ``hangover_ms`` later).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dialer.audio.frames import FRAME_MS, SAMPLE_RATE_HZ, FrameClock, frame_bytes, slin_to_float
from dialer.audio.levels import level_dbm0, power_spectrum
from dialer.audio.speech import PatternDecision, SpeechParams, SpeechPatternClassifier
from dialer.audio.toneplan import TonePlan
from dialer.audio.tones import CadenceDetector, SteadyToneDetector, ToneParams
from dialer.audio.vad import Vad, VadParams
from dialer.domain.model import SpeechVerdict, ToneKind


@dataclass(frozen=True, slots=True)
class ToneDetected:
    kind: ToneKind  # BUSY, CONGESTION or RINGBACK
    at_ms: int
    confidence: float
    started_ms: int = 0  # start of the matched cadence


@dataclass(frozen=True, slots=True)
class SitDetected:
    at_ms: int
    confidence: float
    started_ms: int = 0

    @property
    def kind(self) -> ToneKind:
        return ToneKind.SIT


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    at_ms: int


@dataclass(frozen=True, slots=True)
class SpeechEnded:
    at_ms: int
    duration_ms: int


@dataclass(frozen=True, slots=True)
class SpeechPattern:
    verdict: SpeechVerdict
    at_ms: int
    reason: str
    confidence: float


@dataclass(frozen=True, slots=True)
class BeepDetected:
    at_ms: int
    started_ms: int = 0
    frequency_hz: float = 0.0

    @property
    def kind(self) -> ToneKind:
        return ToneKind.BEEP


Observation = ToneDetected | SitDetected | SpeechStarted | SpeechEnded | SpeechPattern | BeepDetected


@dataclass(slots=True)
class AnalyzerStats:
    slots: int = 0  # slots analysed
    missing_slots: int = 0  # bridged gaps
    late_slots: int = 0  # dropped: arrived after a later slot
    short_frames: int = 0  # payloads shorter than one slot


class CallAudioAnalyzer:
    """Tones (busy, congestion, ringback, SIT) all call long; VAD; after the answer the speech
    pattern (person / voicemail / silence / unsure) and voicemail beeps."""

    def __init__(
        self,
        plan: TonePlan,
        sample_rate: int = SAMPLE_RATE_HZ,
        answered_at_ms: int | None = None,
        *,
        tone_params: ToneParams | None = None,
        vad_params: VadParams | None = None,
        speech_params: SpeechParams | None = None,
        vad: Vad | None = None,
    ) -> None:
        self.plan = plan
        self.sample_rate = sample_rate
        self._frame_bytes = frame_bytes(sample_rate)
        self._tones = CadenceDetector(plan, sample_rate, tone_params)
        self._tone_params = tone_params
        self._beeps = SteadyToneDetector.beep(sample_rate, tone_params)
        self._fax: SteadyToneDetector | None = SteadyToneDetector.fax(sample_rate, tone_params)
        self._vad = vad if vad is not None else Vad(vad_params)  # vad: this call's own detector
        self._speech_params = speech_params
        self._clock = FrameClock()
        self._speech: SpeechPatternClassifier | None = None
        self._heard_speech_after_answer = False
        self.stats = AnalyzerStats()
        self.answered_at_ms: int | None = None
        if answered_at_ms is not None:
            self._answer(answered_at_ms)

    def mark_answered(self, frame_index: int) -> None:
        """The far end really answered at the start of slot ``frame_index`` (first call wins)."""
        if self.answered_at_ms is None:
            self._answer(frame_index * FRAME_MS)

    def restart_answer(self, frame_index: int) -> None:
        """The speech pattern starts over at slot ``frame_index`` (what answers after an extension
        was dialled); tones and voice activity go on."""
        self.answered_at_ms = frame_index * FRAME_MS
        self._speech = SpeechPatternClassifier(self.answered_at_ms, self._speech_params)
        self._heard_speech_after_answer = False
        self._beeps = SteadyToneDetector.beep(self.sample_rate, self._tone_params)

    def _answer(self, at_ms: int) -> None:
        self.answered_at_ms = at_ms
        self._speech = SpeechPatternClassifier(at_ms, self._speech_params)

    @property
    def noise_floor_dbm0(self) -> float:
        """The line's background level as the voice-activity detector tracks it."""
        return self._vad.noise_floor_dbm0

    @property
    def in_speech(self) -> bool:
        """The voice-activity detector's state after the last slot (hang-over included)."""
        return self._vad.in_speech

    @property
    def verdict(self) -> PatternDecision | None:
        """The latest speech-pattern decision, if any."""
        return self._speech.verdict if self._speech is not None else None

    def feed(self, pcm: bytes | bytearray | memoryview, frame_index: int) -> list[Observation]:
        samples = slin_to_float(pcm)
        per = self._frame_bytes // 2
        n_slots = max(1, -(-len(samples) // per))
        gap = self._clock.admit(frame_index, n_slots)
        if gap is None:
            self.stats.late_slots += n_slots
            return []
        out: list[Observation] = []
        for i in range(gap):
            self._missing(frame_index - gap + i, out)
        if len(samples) == 0:
            self._missing(frame_index, out)
            return out
        for k in range(n_slots):
            x = samples[k * per : (k + 1) * per]
            if len(x) < per:
                self.stats.short_frames += 1
            self._slot(x, frame_index + k, out)
        return out

    # -- one slot ---------------------------------------------------------------------------------

    def _slot(self, x: np.ndarray, index: int, out: list[Observation]) -> None:  # type: ignore[type-arg]
        self.stats.slots += 1
        start_ms = index * FRAME_MS
        energy = float(x @ x)
        level = level_dbm0(energy / len(x))
        for m in self._tones.push(x, energy, level, start_ms):
            out.append(self._tone_obs(m.kind, m.at_ms, m.confidence, m.started_ms))
        power = power_spectrum(x)
        vad_events = self._vad.push(power, level, start_ms, x)
        self._vad_obs(vad_events, out)
        if self._speech is not None and start_ms >= self._speech.answered_at_ms:
            fax = self._fax.push(power, level, start_ms, len(x)) if self._fax is not None else None
            if fax is not None:
                out.append(ToneDetected(ToneKind.FAX, fax.at_ms, 0.9, fax.started_ms))
                self._fax = None  # once per call
            if self._heard_speech_after_answer:
                beep = self._beeps.push(power, level, start_ms, len(x))
                if beep is not None:
                    out.append(BeepDetected(beep.at_ms, beep.started_ms, beep.frequency_hz))
                    self._pattern(self._speech.beep(beep.at_ms, beep.frequency_hz), out)
            self._tick(start_ms + FRAME_MS, out)

    def _missing(self, index: int, out: list[Observation]) -> None:
        self.stats.missing_slots += 1
        start_ms = index * FRAME_MS
        for m in self._tones.hold(start_ms):
            out.append(self._tone_obs(m.kind, m.at_ms, m.confidence, m.started_ms))
        self._vad_obs(self._vad.hold(start_ms), out)
        if self._speech is not None and start_ms >= self._speech.answered_at_ms:
            if self._fax is not None:
                self._fax.hold(start_ms)
            if self._heard_speech_after_answer:
                beep = self._beeps.hold(start_ms)
                if beep is not None:
                    out.append(BeepDetected(beep.at_ms, beep.started_ms, beep.frequency_hz))
                    self._pattern(self._speech.beep(beep.at_ms, beep.frequency_hz), out)
            self._tick(start_ms + FRAME_MS, out)

    def _tick(self, now_ms: int, out: list[Observation]) -> None:
        assert self._speech is not None
        vad = self._vad
        if vad.in_speech:
            self._heard_speech_after_answer = True
        self._pattern(self._speech.tick(now_ms, vad.in_speech, vad.segment_start_ms, vad.last_active_end_ms), out)

    @staticmethod
    def _pattern(decision: PatternDecision | None, out: list[Observation]) -> None:
        if decision is not None:
            out.append(SpeechPattern(decision.verdict, decision.at_ms, decision.reason, decision.confidence))

    @staticmethod
    def _tone_obs(kind: ToneKind, at_ms: int, confidence: float, started_ms: int) -> Observation:
        if kind is ToneKind.SIT:
            return SitDetected(at_ms, confidence, started_ms)
        return ToneDetected(kind, at_ms, confidence, started_ms)

    @staticmethod
    def _vad_obs(events: list, out: list[Observation]) -> None:  # type: ignore[type-arg]
        for e in events:
            out.append(SpeechStarted(e.at_ms) if e.started else SpeechEnded(e.at_ms, e.duration_ms))
