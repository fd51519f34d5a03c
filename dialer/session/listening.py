"""What one call's audio says: tones, SIT, beeps, voice activity, the speech pattern after the
answer, and known recordings by fingerprint — folded into the fusion's :class:`AudioFacts`.

Pure: frames in (with the index of their 20 ms slot on the stream's own clock), facts out. The
session owns one :class:`Listening` per call and maps the stream's clock onto the call's clock.
"""

from __future__ import annotations

from dialer.audio import (
    BeepDetected,
    CallAudioAnalyzer,
    Observation,
    SitDetected,
    SpeechEnded,
    SpeechPattern,
    SpeechStarted,
    ToneDetected,
    TonePlan,
)
from dialer.audio.fingerprint import FingerprintLibrary, FingerprintMatch, FingerprintMatcher
from dialer.audio.frames import FRAME_MS, frame_slots
from dialer.audio.speech import SpeechParams
from dialer.audio.vad import Vad
from dialer.domain.fusion import AudioFacts
from dialer.domain.model import ToneKind


class Listening:
    """One call's audio analysers and what they observed so far."""

    def __init__(
        self,
        plan: TonePlan,
        *,
        sample_rate: int,
        fingerprints: FingerprintLibrary | None = None,
        speech_params: SpeechParams | None = None,
        vad: Vad | None = None,
    ) -> None:
        self.analyzer = CallAudioAnalyzer(plan, sample_rate, speech_params=speech_params, vad=vad)
        self._fingerprints = FingerprintMatcher(fingerprints, sample_rate=sample_rate) if fingerprints else None
        self.fingerprint: FingerprintMatch | None = None
        self.observations: list[Observation] = []
        self._sample_rate = sample_rate
        self._last_index: int | None = None
        self._tone: ToneKind | None = None
        self._tone_at_ms: int | None = None
        self._sit = False
        self._beep = False
        self._pattern: SpeechPattern | None = None
        self._speech_done_ms = 0
        self._speech_open_ms: int | None = None
        self.last_speech_end_ms: int | None = None  # stream clock

    @property
    def voiced(self) -> bool:
        """Voice activity after the last frame (what the recognizer is told)."""
        return self.analyzer.in_speech

    @property
    def clock_ms(self) -> int:
        """End of the last slot fed, on the stream's clock (0 before any audio)."""
        return 0 if self._last_index is None else (self._last_index + 1) * FRAME_MS

    @property
    def answered_at_ms(self) -> int | None:
        return self.analyzer.answered_at_ms

    def restart_speech_pattern(self) -> None:
        """Listen to what comes next as if it had just answered (an extension was dialled)."""
        self.analyzer.restart_answer(self.clock_ms // FRAME_MS)
        self._pattern = None
        self._beep = False

    def forget_fingerprint(self) -> None:
        self.fingerprint = None

    def mark_answered(self) -> None:
        """The far end answered now: the speech pattern starts at the current stream position."""
        self.analyzer.mark_answered(self.clock_ms // FRAME_MS)

    def feed(self, pcm: bytes, index: int) -> tuple[list[Observation], FingerprintMatch | None]:
        """Analyse one payload; the observations it produced and a fingerprint match it decided."""
        obs = self.analyzer.feed(pcm, index)
        found: FingerprintMatch | None = None
        if self._fingerprints is not None:
            found = self._fingerprints.feed(pcm, index)
            if found is not None:
                self.fingerprint = found
            if self._fingerprints.done:
                self._fingerprints = None  # decided (or nothing left to match): no more work per frame
        last = index + frame_slots(len(pcm), self._sample_rate) - 1
        if self._last_index is None or last > self._last_index:
            self._last_index = last
        for o in obs:
            self._observe(o)
        if obs:
            self.observations.extend(obs)
        return obs, found

    def _observe(self, o: Observation) -> None:
        if isinstance(o, ToneDetected):
            self._tone = o.kind
            self._tone_at_ms = o.at_ms
        elif isinstance(o, SitDetected):
            self._sit = True
            self._tone_at_ms = self._tone_at_ms if self._tone is not None else o.at_ms
        elif isinstance(o, BeepDetected):
            self._beep = True
        elif isinstance(o, SpeechStarted):
            self._speech_open_ms = o.at_ms
        elif isinstance(o, SpeechEnded):
            self._speech_open_ms = None
            self._speech_done_ms += o.duration_ms
            self.last_speech_end_ms = o.at_ms
        elif isinstance(o, SpeechPattern):
            self._pattern = o

    def facts(self) -> AudioFacts:
        now = self.clock_ms
        answered = self.analyzer.answered_at_ms
        after_answer = 0 if answered is None else max(0, now - answered)
        speech_ms = self._speech_done_ms
        if self._speech_open_ms is not None:
            speech_ms += max(0, now - self._speech_open_ms)
        p = self._pattern
        return AudioFacts(
            available=True,
            frames_after_answer_ms=after_answer,
            tone=self._tone,
            tone_at_ms=self._tone_at_ms,
            sit=self._sit,
            beep=self._beep,
            speech=p.verdict if p is not None else None,
            speech_reason=p.reason if p is not None else "",
            speech_at_ms=p.at_ms if p is not None else None,
            speech_ms=speech_ms,
            speaking=self._speech_open_ms is not None,
            quiet_ms=self._quiet_ms(now, answered),
            noise_dbm0=self.analyzer.noise_floor_dbm0,
        )

    def _quiet_ms(self, now: int, answered: int | None) -> int:
        if self._speech_open_ms is not None:
            return 0
        since = self.last_speech_end_ms
        if since is None or (answered is not None and since < answered):
            since = answered if answered is not None else 0
        return max(0, now - since)
