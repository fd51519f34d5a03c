"""What one call's recognised speech says: the recognizer's hypotheses matched against the phrase
catalogue, confirmed, and merged with a known recording's fingerprint into the fusion's
:class:`PhraseFacts`. Pure: hypotheses in, facts out. Matching and confirmation happen here and
nowhere else (engines only decode).
"""

from __future__ import annotations

from dialer.asr.matcher import Match, PhraseMatcher
from dialer.asr.port import Hypothesis
from dialer.audio.fingerprint import FingerprintMatch
from dialer.domain.fusion import PhraseFacts
from dialer.domain.model import CallClass

# Consecutive partial hypotheses (Vosk: 200 ms chunks) a partial match must survive before it
# counts: partials of a small model flicker from run to run.
DEFAULT_CONFIRM_PARTIALS = 3


class PhraseTracker:
    """Recognised text of one call → the best phrase-catalogue match.

    Finished utterances accumulate; the current partial text is matched after them. A match found
    on final text stays unless a later final match scores at least as high: the second repetition
    of an announcement must not erase what the first one said. A match on partial text counts only
    once it has named the same class on ``confirm_partials`` consecutive partial hypotheses. Final
    hypotheses count at once; the engine's confidence of the one that produced the best final match
    travels with the facts (the fusion asks more of «Некорректный контакт» classes).
    """

    def __init__(
        self, matcher: PhraseMatcher | None, *, decoding: bool, confirm_partials: int = DEFAULT_CONFIRM_PARTIALS
    ) -> None:
        self._matcher = matcher
        self.available = decoding and matcher is not None
        self._confirm = max(1, confirm_partials)
        self._streak_class: CallClass | None = None
        self._streak = 0
        self._finals: list[str] = []
        self._partial = ""
        self._final_match: Match | None = None
        self._final_confidence: float | None = None
        self._partial_match: Match | None = None
        # decodes that say how sure they are (Whisper's, not a grammar recognizer's flickering
        # partials) counted per class their text named: two that agree are evidence of their own
        self._agreeing: dict[CallClass, int] = {}

    @property
    def text(self) -> str:
        return " ".join(t for t in [*self._finals, self._partial] if t)

    def update(self, hyp: Hypothesis, *, confirm: int | None = None) -> bool:
        """Take one hypothesis; True when the best match changed. ``confirm``: how many
        consecutive partial hypotheses must name a class for this one to count (default: the
        tracker's own ``confirm_partials``)."""
        before = (self._final_match, self._partial_match)
        text = hyp.text.strip()
        if hyp.final:
            self._final(text, hyp.confidence)
        elif text != self._partial:
            self._partial_text(text, self._confirm if confirm is None else max(1, confirm))
        if hyp.confidence is not None and text and self._matcher is not None:
            named = self._matcher.best_match(text, partial=not hyp.final)  # this decode on its own
            if named is not None:
                self._agreeing[named.call_class] = self._agreeing.get(named.call_class, 0) + 1
        return (self._final_match, self._partial_match) != before

    def _final(self, text: str, confidence: float | None) -> None:
        self._partial = ""
        self._partial_match = None
        self._streak_class, self._streak = None, 0
        if not text:
            return
        self._finals.append(text)
        if self._matcher is None:
            return
        m = self._matcher.best_match(self.text, partial=False)
        if m is not None and (self._final_match is None or m.confidence >= self._final_match.confidence):
            self._final_match = m
            self._final_confidence = confidence

    def _partial_text(self, text: str, confirm: int) -> None:
        self._partial = text
        candidate = self._matcher.best_match(self.text, partial=True) if self._matcher is not None and text else None
        cls = candidate.call_class if candidate is not None else None
        self._streak = self._streak + 1 if cls is not None and cls is self._streak_class else 1
        self._streak_class = cls
        self._partial_match = candidate if cls is not None and self._streak >= confirm else None

    def facts(self, fingerprint: FingerprintMatch | None = None) -> PhraseFacts:
        """The best match of the text, or a known recording's fingerprint match.

        A fingerprint match is a whole recording recognised: it counts as a final result with the
        matcher's score (≥ 0.9 by construction, so «Некорректный контакт» classes may act on it).
        A final ASR match replaces it only when it scores higher; the text is carried either way."""
        best, final, confidence = self._final_match, True, self._final_confidence
        p = self._partial_match
        if p is not None and (best is None or p.confidence > best.confidence):
            best, final, confidence = p, False, None
        if fingerprint is not None and (best is None or not final or best.confidence <= fingerprint.score):
            return PhraseFacts(
                available=True,
                call_class=fingerprint.call_class,
                score=fingerprint.score,
                phrase=f"recording {fingerprint.name}",
                text=self.text,
                final=True,
            )
        if not self.available:
            return PhraseFacts(available=False)
        if best is None:
            return PhraseFacts(available=True, text=self.text)
        return PhraseFacts(
            available=True,
            call_class=best.call_class,
            score=best.confidence,
            phrase=best.phrase,
            text=self.text,
            final=final,
            asr_confidence=confidence,
            agreeing_decodes=self._agreeing.get(best.call_class, 0),
        )
