"""Scenario audio: tones synthesised like Asterisk's indications, speech from committed clips.

All audio is signed 16-bit little-endian mono at 8 kHz (what AudioSocket carries). Tones use
Asterisk's amplitude 7219 and the Russian plan of indications.conf (425 Hz): busy 350/350 ms,
congestion 175/175 ms, ringback 1 s on / 4 s off; SIT 950/1400/1800 Hz × 330 ms; a ~1 kHz beep
for voicemail. Speech clips live in ``data/`` with a manifest (regenerate: ``make_audio.py``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

SAMPLE_RATE_HZ = 8000
FRAME_BYTES = 320  # 20 ms of slin 8 kHz
FRAME_S = 0.020
TONE_AMPLITUDE = 7219
DATA_DIR = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class ToneStep:
    freqs_hz: tuple[float, ...]  # empty = silence
    duration_s: float


@dataclass(frozen=True)
class TonePlan:
    name: str
    steps: tuple[ToneStep, ...]


TONES: dict[str, TonePlan] = {
    "busy": TonePlan("busy", (ToneStep((425,), 0.35), ToneStep((), 0.35))),
    "congestion": TonePlan("congestion", (ToneStep((425,), 0.175), ToneStep((), 0.175))),
    "ringback": TonePlan("ringback", (ToneStep((425,), 1.0), ToneStep((), 4.0))),
    "sit": TonePlan(
        "sit",
        (ToneStep((950,), 0.33), ToneStep((1400,), 0.33), ToneStep((1800,), 0.33), ToneStep((), 1.0)),
    ),
    "beep": TonePlan("beep", (ToneStep((1000,), 0.5),)),
    "dial": TonePlan("dial", (ToneStep((425,), 1.0),)),
}


def _samples(seconds: float) -> int:
    return round(seconds * SAMPLE_RATE_HZ)


def tone(name: str, duration_s: float | None = None) -> bytes:
    """The tone plan repeated to ``duration_s`` (one cycle when None), phase-continuous per step."""
    return b"".join(tone_chunks(name, duration_s))


def tone_duration_s(name: str, duration_s: float | None = None) -> float:
    return sum(s.duration_s for s in TONES[name].steps) if duration_s is None else duration_s


def tone_chunks(name: str, duration_s: float | None = None) -> Iterator[bytes]:
    """The tone lazily, one cycle at a time (an hour of ringback is never held in memory)."""
    cycle = _tone_cycle(name)
    total = len(cycle) if duration_s is None else 2 * _samples(duration_s)
    while total > 0:
        piece = cycle[:total]
        total -= len(piece)
        yield piece


@cache
def _tone_cycle(name: str) -> bytes:
    plan = TONES[name]
    cycle: list[np.ndarray] = []
    for step in plan.steps:
        n = _samples(step.duration_s)
        if not step.freqs_hz:
            cycle.append(np.zeros(n))
            continue
        t = np.arange(n) / SAMPLE_RATE_HZ
        wave = sum(np.sin(2 * np.pi * f * t) for f in step.freqs_hz) / len(step.freqs_hz)
        cycle.append(np.asarray(wave) * TONE_AMPLITUDE)
    return bytes(np.round(np.concatenate(cycle)).astype("<i2").tobytes())


def silence(duration_s: float) -> bytes:
    return bytes(2 * _samples(duration_s))


_SILENT_SECOND = bytes(2 * SAMPLE_RATE_HZ)


def silence_chunks(duration_s: float) -> Iterator[bytes]:
    """Silence lazily, a second at a time (20 s of it per call would cost 320 kB each)."""
    total = 2 * _samples(duration_s)
    while total > 0:
        piece = _SILENT_SECOND[:total]
        total -= len(piece)
        yield piece


@dataclass(frozen=True)
class Clip:
    name: str
    text: str
    cls: str
    pcm: bytes

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / 2 / SAMPLE_RATE_HZ


@cache
def manifest() -> dict[str, dict[str, object]]:
    data: dict[str, dict[str, object]] = json.loads((DATA_DIR / "manifest.json").read_text("utf-8"))
    return data


@cache
def clip(name: str) -> Clip:
    entry = manifest().get(name)
    if entry is None:
        raise KeyError(f"no audio clip {name!r} in {DATA_DIR / 'manifest.json'}")
    pcm = (DATA_DIR / str(entry["file"])).read_bytes()
    return Clip(name=name, text=str(entry["text"]), cls=str(entry["class"]), pcm=pcm)


class FrameChunker:
    """Cuts a continuous media stream into 320-byte frames across segment boundaries.

    ``flush()`` returns the remainder as the shorter last frame Asterisk sends before it closes
    the socket (tests/asterisk/transcripts/audiosocket/*.frames.log: 104–260 bytes).
    """

    def __init__(self, frame_bytes: int = FRAME_BYTES) -> None:
        self._frame = frame_bytes
        self._rest = b""

    def feed(self, pcm: bytes) -> Iterator[bytes]:
        data = self._rest + pcm
        whole = len(data) - len(data) % self._frame
        for i in range(0, whole, self._frame):
            yield data[i : i + self._frame]
        self._rest = data[whole:]

    def flush(self) -> bytes:
        rest, self._rest = self._rest, b""
        return rest
