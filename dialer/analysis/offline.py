"""Call analysis over simulated time: audio frames (+ recognised text) → AudioFacts/PhraseFacts,
and the offline driver that replays a labelled call through the fusion.

:class:`CallAnalysis` holds one call's analysers and turns their observations into the
:class:`~dialer.domain.fusion.AudioFacts` and :class:`~dialer.domain.fusion.PhraseFacts` that
:func:`~dialer.domain.fusion.fuse` reads. It is pure apart from the optional recogniser: the worker
feeds it live frames with :meth:`CallAnalysis.feed_audio` and hands recogniser results (decoded in
an executor) to :meth:`CallAnalysis.feed_text`; offline, :meth:`CallAnalysis.feed_frame` does both
in line.

:func:`analyse_call` replays one call: 20 ms frames on the call clock, the network script's
progress/answer/hangup applied at their times, :func:`fuse` called after every frame, and the
first decision that is not WAIT returned with the time it was taken.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from dialer.asr.catalogue import Catalogue
from dialer.asr.matcher import Match, PhraseMatcher
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
from dialer.audio.frames import FRAME_MS, frame_bytes
from dialer.corpus.labels import NetworkScript
from dialer.domain.fusion import (
    Action,
    AudioFacts,
    Decision,
    FusionConfig,
    NetworkFacts,
    PhraseFacts,
    SpeechVerdict,
    Tone,
    fuse,
)
from dialer.domain.model import CallClass
from dialer.domain.q850 import DialStatus


@dataclass(frozen=True, slots=True)
class RecognizerUpdate:
    """What a streaming recogniser says after some audio: the current utterance's text so far
    (``final=False``) or a finished utterance (``final=True``)."""

    text: str
    final: bool


class Recognizer(Protocol):
    """One streaming recogniser per call (e.g. a Vosk recogniser restricted to the catalogue)."""

    def accept(self, pcm: bytes) -> RecognizerUpdate | None:
        """Decode ``pcm`` (slin 8 kHz); the new partial/final text, or None when nothing changed."""
        ...

    def finish(self) -> RecognizerUpdate | None:
        """The call's audio is over: the final text of the last utterance, if any."""
        ...


RecognizerFactory = Callable[[], Recognizer]

# Consecutive partial results (200 ms chunks) a partial match must survive before it counts; the
# ASR engine uses the same rule.
DEFAULT_CONFIRM_PARTIALS = 3


class PhraseTracker:
    """Recognised text of one call → the best phrase-catalogue match, as PhraseFacts. Pure.

    Finished utterances accumulate; the current partial text is matched after them. A match
    found on final text stays unless a later final match scores higher: the second repetition
    of an announcement must not erase what the first one said.

    A match on partial text counts only once it has named the same class on ``confirm_partials``
    consecutive partial results (the engine's rule: partials of a shared model vary from run to
    run, so one stray partial must not decide a call). Final results count at once.
    """

    def __init__(
        self, matcher: PhraseMatcher | None, available: bool = True, *, confirm_partials: int = DEFAULT_CONFIRM_PARTIALS
    ) -> None:
        self._matcher = matcher
        self.available = available and matcher is not None
        self._confirm = max(1, confirm_partials)
        self._streak_class: CallClass | None = None
        self._streak = 0
        self._finals: list[str] = []
        self._partial = ""
        self._final_match: Match | None = None
        self._partial_match: Match | None = None
        self._last_final_flag = False

    @property
    def text(self) -> str:
        return " ".join(t for t in [*self._finals, self._partial] if t)

    def update(self, text: str, final: bool) -> PhraseFacts:
        text = text.strip()
        if final:
            self._partial = ""
            self._partial_match = None
            self._streak_class, self._streak = None, 0
            if text:
                self._finals.append(text)
            if self._matcher is not None and text:
                m = self._matcher.best_match(self.text, partial=False)
                if m is not None and (self._final_match is None or m.confidence >= self._final_match.confidence):
                    self._final_match = m
        elif text != self._partial:
            self._partial = text
            candidate = (
                self._matcher.best_match(self.text, partial=True) if self._matcher is not None and text else None
            )
            cls = candidate.call_class if candidate is not None else None
            self._streak = self._streak + 1 if cls is not None and cls is self._streak_class else 1
            self._streak_class = cls
            self._partial_match = candidate if cls is not None and self._streak >= self._confirm else None
        return self.facts()

    def facts(self) -> PhraseFacts:
        if not self.available:
            return PhraseFacts(available=False)
        best, final = self._final_match, True
        p = self._partial_match
        if p is not None and (best is None or p.confidence > best.confidence):
            best, final = p, False
        if best is None:
            return PhraseFacts(available=True, text=self.text)
        return PhraseFacts(
            available=True,
            call_class=best.call_class,
            score=best.confidence,
            phrase=best.phrase,
            text=self.text,
            final=final,
        )


_TONES = {t.value: t for t in Tone}
_VERDICTS = {v.value: v for v in SpeechVerdict}


class CallAnalysis:
    """One call's audio analyser (+ recogniser and phrase matcher when a model is loaded)."""

    def __init__(
        self,
        plan: TonePlan,
        catalogue: Catalogue | None = None,
        recognizer_factory: RecognizerFactory | None = None,
        *,
        sample_rate: int = 8000,
        matcher: PhraseMatcher | None = None,
        asr_available: bool | None = None,
        fingerprints: FingerprintLibrary | None = None,
    ) -> None:
        """``asr_available``: a speech model decodes this call. Default: there is something to
        match text against (a catalogue or matcher) — the worker decodes in an executor and hands
        text to :meth:`feed_text`; offline, a recogniser factory decodes in line.

        ``fingerprints``: known recordings to recognise in the audio (an empty library is none)."""
        self.analyzer = CallAudioAnalyzer(plan, sample_rate)
        self._fingerprints = FingerprintMatcher(fingerprints, sample_rate=sample_rate) if fingerprints else None
        self.fingerprint: FingerprintMatch | None = None
        if matcher is None and catalogue is not None:
            matcher = PhraseMatcher(catalogue)
        if recognizer_factory is not None and matcher is None:
            raise ValueError("a recogniser needs a phrase catalogue (or matcher) to match its text against")
        self._recognizer: Recognizer | None = recognizer_factory() if recognizer_factory is not None else None
        available = matcher is not None if asr_available is None else asr_available
        self.phrases = PhraseTracker(matcher, available)
        self.observations: list[Observation] = []
        self._last_index: int | None = None
        self._tone: Tone | None = None
        self._tone_at_ms: int | None = None
        self._sit = False
        self._beep = False
        self._pattern: SpeechPattern | None = None
        self._speech_done_ms = 0
        self._speech_open_ms: int | None = None
        self._last_speech_end_ms: int | None = None

    # --- input --------------------------------------------------------------------------------
    @property
    def asr_active(self) -> bool:
        return self._recognizer is not None

    def mark_answered(self, frame_index: int) -> None:
        self.analyzer.mark_answered(frame_index)

    def feed_audio(self, pcm: bytes, frame_index: int) -> list[Observation]:
        """Tone/VAD/speech-pattern analysis (and fingerprint matching) of one payload starting at
        slot ``frame_index``."""
        obs = self.analyzer.feed(pcm, frame_index)
        if self._fingerprints is not None:
            found = self._fingerprints.feed(pcm, frame_index)
            if found is not None:
                self.fingerprint = found
            if self._fingerprints.done:
                self._fingerprints = None  # decided (or nothing to match): no more work per frame
        n_slots = max(1, -(-len(pcm) // frame_bytes(self.analyzer.sample_rate)))
        last = frame_index + n_slots - 1
        if self._last_index is None or last > self._last_index:
            self._last_index = last
        for o in obs:
            self._observe(o)
        self.observations.extend(obs)
        return obs

    def feed_text(self, text: str, final: bool) -> PhraseFacts:
        """A recogniser result (the worker decodes off the event loop and hands results here)."""
        return self.phrases.update(text, final)

    def feed_frame(self, pcm: bytes, frame_index: int) -> list[Observation]:
        """Audio analysis and, when a recogniser is attached, decoding in line (offline use)."""
        obs = self.feed_audio(pcm, frame_index)
        if self._recognizer is not None:
            upd = self._recognizer.accept(pcm)
            if upd is not None:
                self.feed_text(upd.text, upd.final)
        return obs

    def finish(self) -> None:
        """The audio is over (hang-up): flush the recogniser's last utterance."""
        if self._recognizer is not None:
            upd = self._recognizer.finish()
            if upd is not None:
                self.feed_text(upd.text, True)
            self._recognizer = None

    def stop_asr(self) -> None:
        """The call is decided: stop decoding (the recogniser is dropped)."""
        self._recognizer = None

    def _observe(self, o: Observation) -> None:
        if isinstance(o, ToneDetected):
            self._tone = _TONES.get(o.kind.value)
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
            self._last_speech_end_ms = o.at_ms
        elif isinstance(o, SpeechPattern):
            self._pattern = o

    # --- facts --------------------------------------------------------------------------------
    @property
    def audio_clock_ms(self) -> int:
        """End of the last slot fed (0 before any audio)."""
        return 0 if self._last_index is None else (self._last_index + 1) * FRAME_MS

    def audio_facts(self, now_ms: int | None = None) -> AudioFacts:
        now = self.audio_clock_ms if now_ms is None else now_ms
        answered = self.analyzer.answered_at_ms
        after_answer = 0 if answered is None else max(0, self.audio_clock_ms - answered)
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
            speech=_VERDICTS.get(p.verdict.value) if p is not None else None,
            speech_reason=p.reason if p is not None else "",
            speech_at_ms=p.at_ms if p is not None else None,
            speech_ms=speech_ms,
            speaking=self._speech_open_ms is not None,
            quiet_ms=self._quiet_ms(now, answered),
        )

    def _quiet_ms(self, now: int, answered: int | None) -> int:
        if self._speech_open_ms is not None:
            return 0
        since = self._last_speech_end_ms
        if since is None or (answered is not None and since < answered):
            since = answered if answered is not None else 0
        return max(0, now - since)

    def phrase_facts(self) -> PhraseFacts:
        """The recognised text's best match, or a known recording's fingerprint match.

        A fingerprint match is a whole recording recognised: it counts as a final result with
        the matcher's score (≥ 0.9 by construction, so «Некорректный контакт» classes may act on
        it). The ASR facts are kept instead only when they are final and score higher; the text
        recognised so far is carried either way."""
        asr = self.phrases.facts()
        m = self.fingerprint
        if m is None or (asr.call_class is not None and asr.final and asr.score > m.score):
            return asr
        return PhraseFacts(
            available=True,
            call_class=m.call_class,
            score=m.score,
            phrase=f"recording {m.name}",
            text=asr.text,
            final=True,
        )


# --- offline replay ---------------------------------------------------------------------------------
def network_facts_at(script: NetworkScript, now_ms: int) -> NetworkFacts:
    """What AMI would have told the worker by ``now_ms``."""
    progress = script.progress_ms is not None and now_ms >= script.progress_ms
    answered = script.answered_ms is not None and now_ms >= script.answered_ms
    ended = script.hangup_ms is not None and now_ms >= script.hangup_ms
    status: str | None = None
    if ended:
        status = script.dial_status
    elif answered:
        status = DialStatus.ANSWER.value
    return NetworkFacts(
        progress=progress,
        answered=answered,
        ended=ended,
        dial_status=status,
        hangup_cause=script.cause if ended else None,
        answered_at_ms=script.answered_ms if answered else None,
        ended_at_ms=script.hangup_ms if ended else None,
    )


@dataclass(slots=True)
class OfflineResult:
    decision: Decision | None  # None: still WAIT when the audio ran out
    decided_at_ms: int | None
    audio_ms: int
    asr: bool
    text: str = ""
    observations: Sequence[Observation] = field(default_factory=list)

    @property
    def action(self) -> Action | None:
        return self.decision.action if self.decision is not None else None


def analyse_call(
    samples: npt.NDArray[np.int16] | bytes,
    script: NetworkScript,
    plan: TonePlan,
    *,
    catalogue: Catalogue | None = None,
    recognizer_factory: RecognizerFactory | None = None,
    matcher: PhraseMatcher | None = None,
    fusion: FusionConfig | None = None,
    sample_rate: int = 8000,
    fingerprints: FingerprintLibrary | None = None,
) -> OfflineResult:
    """Replay one call (8 kHz slin from the originate on) and return the first non-WAIT decision.

    Per 20 ms slot ``i``: the answer is marked if it falls in the slot, the slot is analysed
    (and decoded), then :func:`fuse` runs at the slot's end. The network's hang-up ends the audio:
    the recogniser is flushed and the fusion runs once more at the hang-up time.
    """
    pcm = samples if isinstance(samples, bytes) else np.asarray(samples, dtype="<i2").tobytes()
    cfg = fusion or FusionConfig()
    call = CallAnalysis(
        plan, catalogue, recognizer_factory, sample_rate=sample_rate, matcher=matcher, fingerprints=fingerprints
    )
    per = frame_bytes(sample_rate)
    n_slots = -(-len(pcm) // per)
    audio_ms = round(len(pcm) / 2 * 1000 / sample_rate)
    hangup = script.hangup_ms
    answered_slot = None if script.answered_ms is None else script.answered_ms // FRAME_MS

    def decide(now_ms: int) -> Decision | None:
        d = fuse(network_facts_at(script, now_ms), call.audio_facts(now_ms), call.phrase_facts(), now_ms, cfg)
        return None if d.action is Action.WAIT else d

    asr = call.asr_active

    def result(d: Decision | None, at: int | None) -> OfflineResult:
        return OfflineResult(d, at, audio_ms, asr, call.phrases.text, call.observations)

    for i in range(n_slots):
        start_ms = i * FRAME_MS
        if hangup is not None and start_ms >= hangup:
            break
        if answered_slot is not None and i == answered_slot:
            call.mark_answered(i)
        call.feed_frame(pcm[i * per : (i + 1) * per], i)
        now = (i + 1) * FRAME_MS
        if hangup is not None and now >= hangup:
            break  # the hang-up path below flushes the recogniser before deciding
        d = decide(now)
        if d is not None:
            return result(d, now)
    call.finish()
    if hangup is None:
        return result(None, None)  # the audio ran out and nobody ended the call: undecided
    # the hang-up may come after the audio (a silent tail not recorded): the fusion runs at it
    return result(decide(max(hangup, 0)), hangup)
