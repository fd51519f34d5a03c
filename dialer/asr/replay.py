"""Run a recognizer over recorded audio the way the call session feeds it: 20 ms frames, each with
the project's voice-activity flag — the VAD's speech state after the frame
(:attr:`dialer.audio.vad.Vad.in_speech`: onset over a few voiced frames, 200 ms hangover), as the
session's ``listening.voiced`` is. For engine-level tests, benchmarks and evaluation; the live path
is the call session's."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from dialer.asr.port import Hypothesis, Recognizer
from dialer.audio.frames import FRAME_MS, SAMPLE_RATE_HZ, frame_bytes, slin_to_float
from dialer.audio.levels import level_dbm0, power_spectrum
from dialer.audio.vad import Vad


def voiced_frames(
    pcm: bytes, sample_rate: int = SAMPLE_RATE_HZ, vad: Vad | None = None
) -> Iterator[tuple[bytes, bool]]:
    """``(frame, voiced)`` for every 20 ms frame of ``pcm`` (the last one may be short); ``vad``:
    a fresh detector (the session's choice, :class:`dialer.audio.silero.VadChoice`), else energy."""
    vad = vad if vad is not None else Vad()
    step = frame_bytes(sample_rate)
    for k in range(0, len(pcm), step):
        frame = pcm[k : k + step]
        x = slin_to_float(frame)
        if len(x) == 0:
            break
        energy = float(x @ x)
        vad.push(power_spectrum(x), level_dbm0(energy / len(x)), (k // step) * FRAME_MS, x)
        yield frame, vad.in_speech


@dataclass(frozen=True, slots=True)
class Heard:
    """A hypothesis and the audio position (ms) of the frame that produced it."""

    hypothesis: Hypothesis
    at_ms: int


def run_recognizer(
    rec: Recognizer, pcm: bytes, sample_rate: int = SAMPLE_RATE_HZ, *, flush: bool = True
) -> list[Heard]:
    """Feed ``pcm`` frame by frame; every hypothesis with where it came out (the flush's at the end)."""
    out: list[Heard] = []
    at = 0
    for frame, voiced in voiced_frames(pcm, sample_rate):
        at += len(frame) * 1000 // (2 * sample_rate)
        out.extend(Heard(h, at) for h in rec.accept(frame, voiced))
    if flush:
        out.extend(Heard(h, at) for h in rec.flush())
    return out


def final_text(heard: list[Heard]) -> str:
    """The call's text: every final hypothesis joined (a trailing partial one too)."""
    parts = [h.hypothesis.text for h in heard if h.hypothesis.final and h.hypothesis.text]
    if heard and not heard[-1].hypothesis.final and heard[-1].hypothesis.text:
        parts.append(heard[-1].hypothesis.text)
    return " ".join(parts)


def silence(ms: int, sample_rate: int = SAMPLE_RATE_HZ) -> bytes:
    return np.zeros(ms * sample_rate // 1000, dtype="<i2").tobytes()
