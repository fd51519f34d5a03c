"""The recognizer port: what every speech engine implements (Vosk, Whisper, test doubles).

An engine does **decoding only**: audio in, text hypotheses out. Matching the text against the
phrase catalogue, confirming partial matches and deciding the call happen once, in the call
session (:mod:`dialer.session`), live and in replay alike.

The methods are blocking. The worker runs them in the ASR service's bounded executor, one job at
a time per call; replay and ``dialer eval`` call them in line. Either way the session sees the same
sequence of hypotheses for the same audio.

Life of one call's recognizer::

    rec = engine.open()
    rec.accept(pcm, voiced)  # every 20 ms frame the session forwards, in order
    rec.flush()              # end of audio (hang-up): decode what is buffered, settle the text
    rec.close()              # always, decided or not: free the decoder

``voiced`` is the session's voice-activity flag for the frame. A streaming engine (Vosk) may
ignore it; a segment engine (Whisper) decodes only voiced audio, at the end of a voiced stretch
(or early, during a long one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Hypothesis:
    """What the engine made of the audio of one utterance so far.

    ``text`` is this utterance only (the session joins utterances). ``final`` is True when the
    utterance is settled (a pause, the engine's endpoint, or a flush); a later hypothesis then
    starts a new utterance. ``confidence`` is 0..1 where the engine can tell (Whisper: from the
    average log-probability and the no-speech probability), None where it cannot (Vosk grammar
    decoding). ``audio_ms`` is how much of the call's audio the engine had consumed when it
    produced this (for latency accounting).
    """

    text: str
    final: bool
    confidence: float | None = None
    audio_ms: int = 0


class Recognizer(Protocol):
    """One call's recognizer. Not thread-safe: one caller at a time."""

    def accept(self, pcm: bytes, voiced: bool) -> Sequence[Hypothesis]:
        """Take one frame of slin (signed 16-bit LE mono at the engine's rate); return the new
        hypotheses it produced (often none)."""
        ...

    def flush(self) -> Sequence[Hypothesis]:
        """The audio is over: decode whatever is buffered and return the settled (final) text."""
        ...

    def close(self) -> None:
        """Free the decoder. Further calls are ignored (return nothing)."""
        ...


class RecognizerEngine(Protocol):
    """A loaded model shared by every call of a process."""

    @property
    def name(self) -> str:
        """Short engine name for logs and reasons: ``vosk``, ``whisper``."""
        ...

    def load(self) -> None:
        """Load the model (blocking, seconds; call it off the event loop, once). Raises
        :class:`dialer.errors.AsrUnavailable` with the reason."""
        ...

    def open(self) -> Recognizer:
        """A fresh recognizer for one call (after :meth:`load`)."""
        ...
