"""Scenario audio: tones synthesised like Asterisk's indications, speech from committed clips.

All audio is signed 16-bit little-endian mono at 8 kHz (what AudioSocket carries). Tones use
Asterisk's amplitude 7219 and the cadences of the shipped default tone plan (config/tones.yaml,
the Russian plan of indications.conf: 425 Hz busy 350/350 ms, congestion 175/175 ms, ringback
1 s on / 4 s off; SIT 950/1400/1800 Hz × 330 ms); a 1 kHz beep for voicemail. Speech clips live
in ``data/`` with a manifest (regenerate: ``make_audio.py``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from dialer.audio.frames import SAMPLE_RATE_HZ
from dialer.audio.toneplan import ToneSegment, ToneSpec, parse_tone, shipped_plan

FRAME_BYTES = 320  # 20 ms of slin 8 kHz
FRAME_S = 0.020
TONE_AMPLITUDE = 7219
DATA_DIR = Path(__file__).resolve().parent / "data"


#: The carrier's indications by the scenario's names: the shipped default plan's tones
#: (config/tones.yaml, as the detector reads them), and a voicemail beep, which is no indication.
_PLAN_TONES = {"busy": "busy", "congestion": "congestion", "ringback": "ring", "sit": "info", "dial": "dial"}
# A tone without a cadence (dial: "425") is generated in cycles of this length.
_UNTIMED_CYCLE_MS = 1000
BEEP = parse_tone("beep", "1000/500")


def tone_spec(name: str) -> ToneSpec:
    """The tone a scenario's ``Tone(name)`` plays (busy, congestion, ringback, sit, dial, beep)."""
    if name == BEEP.name:
        return BEEP
    try:
        return shipped_plan().tone(_PLAN_TONES[name])
    except KeyError:
        raise KeyError(f"no simulator tone {name!r} (known: {', '.join([*_PLAN_TONES, BEEP.name])})") from None


def _samples(seconds: float) -> int:
    return round(seconds * SAMPLE_RATE_HZ)


def tone(name: str, duration_s: float | None = None) -> bytes:
    """The tone plan repeated to ``duration_s`` (one cycle when None), phase-continuous per step."""
    return b"".join(tone_chunks(name, duration_s))


def tone_duration_s(name: str, duration_s: float | None = None) -> float:
    return _cycle_ms(tone_spec(name)) / 1000 if duration_s is None else duration_s


def _cycle_ms(spec: ToneSpec) -> int:
    return sum(_part_ms(s) for s in spec.segments)


def _part_ms(part: ToneSegment) -> int:
    return _UNTIMED_CYCLE_MS if part.duration_ms is None else part.duration_ms


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
    cycle: list[np.ndarray] = []
    spec = tone_spec(name)
    if any(s.once for s in spec.segments) or (
        len(spec.segments) > 1 and any(s.duration_ms is None for s in spec.segments)
    ):
        raise ValueError(f"simulator tone {name!r} must be a cadence of timed parts or one steady part")
    for step in spec.segments:
        n = _samples(_part_ms(step) / 1000)
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
