"""A planned call: every choice drawn at planning time (:mod:`dialer.corpus.plan`), so that
assembling it (:mod:`dialer.corpus.generate`) is deterministic."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dialer.corpus.audio import Codec, NoiseKind
from dialer.corpus.texts import DISC_MARK, PAUSE_MARK
from dialer.corpus.tts import Say, Voice
from dialer.domain.model import CallClass


def split_disc(marked: str) -> tuple[str, str | None]:
    """``"a b | c"`` → (``"a b c"``, ``"a b"``); no mark or a mark at the end → (text, None).
    Pause marks are dropped."""
    marked = marked.replace(PAUSE_MARK, " ")
    head, mark, tail = marked.partition(DISC_MARK)
    text = " ".join((head + " " + tail).split())
    if not mark or not tail.strip():
        return text, None
    return text, " ".join(head.split())


@dataclass(frozen=True, slots=True)
class Speech:
    """An utterance placed in a call: its text with marks (``|`` the discriminating point, ``/``
    an inner pause), the pauses' lengths, and an English tail said after it."""

    voice: Voice
    marked_text: str
    pauses_ms: tuple[int, ...] = ()  # one per "/"; missing ones are 400 ms
    tail_text: str | None = None  # English, said by espeak-ng after tail_gap_ms
    tail_gap_ms: int = 500

    @property
    def text(self) -> str:
        t = split_disc(self.marked_text)[0]
        return f"{t} {self.tail_text}" if self.tail_text else t

    @property
    def prefix(self) -> str | None:
        return split_disc(self.marked_text)[1]

    def parts(self) -> list[tuple[str, str | None]]:
        """``(part text, discriminating prefix within it or None)`` per pause-separated part;
        a prefix of ``""`` means the discriminating point is the start of the part."""
        out: list[tuple[str, str | None]] = []
        for raw in self.marked_text.split(PAUSE_MARK):
            head, mark, tail = raw.partition(DISC_MARK)
            text = " ".join((head + " " + tail).split())
            prefix = " ".join(head.split()) if mark and tail.strip() else None
            if text:
                out.append((text, prefix))
        return out

    def tail_voice(self) -> Voice:
        return Voice("espeak", 150, 50, "en")

    def requests(self) -> list[Say]:
        out: list[Say] = []
        for text, prefix in self.parts():
            out.append(Say(self.voice, text))
            if prefix:
                out.append(Say(self.voice, prefix))
        if self.tail_text:
            out.append(Say(self.tail_voice(), self.tail_text))
        return out


@dataclass(frozen=True, slots=True)
class Recipe:
    """Every choice for one call, drawn at planning time (so rendering is deterministic)."""

    call_id: str
    kind: str
    call_class: CallClass
    speech: Speech | None = None
    speech_level_dbm0: float = -20.0
    tone_level_dbm0: float = -10.0
    snr_db: float | None = None
    noise: NoiseKind = "white"
    silence_floor_dbm0: float = -60.0
    codec: Codec = "slin"
    lead: str = "none"  # none | ringback | sit  (before an announcement / before the answer)
    lead_cycles: int = 1  # ringback cycles before the answer / the announcement
    lead_gap_ms: int = 300  # silence between the lead and what follows
    repeat: str = "once"  # once | twice | cut
    cut_extra_ms: int = 300  # for "cut": audio kept after the discriminating word
    gap_ms: int = 800  # pause between repetitions / before the beep / after the answer
    tone_ms: int = 5000  # busy/congestion/ringback/SIT duration
    beep_hz: float = 1000.0
    beep_ms: int = 500
    tail_ms: int = 500
    cause: int | None = None
    dial_status: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
