"""Voice activity: energy above an adaptive noise floor, checked by the spectrum's shape.

A frame is *voiced* when it is ``margin_db`` above the noise floor and its Hann spectrum is neither
one steady sine (tones, beeps: a 3-bin cluster holds ≥ ``tonal_share``) nor flat like white noise
(spectral flatness ≥ ``noise_flatness``). Loud flat frames (fricatives, breath) keep a running
segment alive but never start one. The floor drops fast to quiet frames and rises slowly
otherwise, so a steady line noise becomes the floor within a second or two.

Segments: speech starts when ``onset_frames`` of the last ``onset_window`` frames are voiced
(the start is back-dated to the first of them) and ends ``hangover_ms`` after the last active
frame (the end is back-dated to that frame).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from dialer.audio.levels import peak_share

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class VadParams:
    margin_db: float = 10.0
    min_level_dbm0: float = -50.0
    initial_floor_dbm0: float = -65.0
    min_floor_dbm0: float = -75.0  # digital silence must not sink the floor out of reach
    floor_fall: float = 0.5  # fraction of the way to a quieter frame, per frame
    floor_rise_db: float = 0.2  # per non-voiced frame (10 dB/s)
    floor_rise_flat_db: float = 0.5  # per loud noise-like frame: line noise becomes the floor fast
    floor_rise_voiced_db: float = 0.01  # per voiced frame, follows a changed line slowly
    tonal_share: float = 0.85
    noise_flatness: float = 0.5
    onset_frames: int = 3
    onset_window: int = 5
    hangover_ms: int = 200


@dataclass(frozen=True, slots=True)
class VadEvent:
    started: bool  # True: speech started at at_ms; False: ended at at_ms
    at_ms: int
    duration_ms: int = 0


def spectral_flatness(power: FloatArray) -> float:
    """Geometric over arithmetic mean of the power spectrum (1 = white, → 0 = peaky)."""
    p = power[1:] + 1e-3  # skip DC; the offset keeps log() finite on digital silence
    n = len(p)
    return math.exp(float(np.log(p).sum()) / n) / (float(p.sum()) / n)


class Vad:
    """Per-call voice activity detector; one frame per 20 ms slot."""

    def __init__(self, params: VadParams | None = None) -> None:
        self.params = params or VadParams()
        self.noise_floor_dbm0 = self.params.initial_floor_dbm0
        self.in_speech = False
        self.segment_start_ms = 0
        self.last_active_end_ms: int | None = None  # end of the latest voiced/active frame
        self.voiced_ms_total = 0
        self._recent: deque[tuple[bool, int]] = deque(maxlen=self.params.onset_window)
        self.last_frame_voiced = False
        self._first = True

    name = "energy"

    def push(
        self, power: FloatArray, level_dbm0: float, start_ms: int, samples: FloatArray | None = None
    ) -> list[VadEvent]:
        """One 20 ms slot: its power spectrum, level and start; ``samples`` (int16 units) are for
        detectors that read the waveform (:class:`dialer.audio.silero.SileroVad`), unused here."""
        p = self.params
        if self._first:
            self._first = False
            # start from the first frame's level unless it sounds like speech already
            if spectral_flatness(power) >= p.noise_flatness or level_dbm0 < self.noise_floor_dbm0:
                self.noise_floor_dbm0 = max(level_dbm0, p.min_floor_dbm0)
        loud = level_dbm0 >= p.min_level_dbm0 and level_dbm0 >= self.noise_floor_dbm0 + p.margin_db
        voiced, active, tonal, flat = self._judge(power, level_dbm0, loud, samples)
        self.last_frame_voiced = voiced
        self._update_floor(level_dbm0, voiced, tonal, flat)
        if voiced:
            self.voiced_ms_total += 20
        return self._segment(voiced, active, start_ms)

    def _judge(
        self, power: FloatArray, level_dbm0: float, loud: bool, samples: FloatArray | None
    ) -> tuple[bool, bool, bool, bool]:
        """``(voiced, active, tonal, flat)`` of one frame; the energy rule."""
        p = self.params
        tonal = False
        flat = False
        if loud:
            _, share = peak_share(power, 2, len(power) - 1)
            tonal = share >= p.tonal_share
            flat = spectral_flatness(power) >= p.noise_flatness
        # flat-but-loud keeps a segment going (active) but never starts one (voiced)
        return loud and not tonal and not flat, loud and not tonal, tonal, flat

    def hold(self, start_ms: int) -> list[VadEvent]:
        """A missing slot: neither voiced nor silent; only the clock moves on."""
        return self._segment(False, self.in_speech, start_ms, missing=True)

    def _update_floor(self, level: float, voiced: bool, tonal: bool, flat: bool) -> None:
        p = self.params
        if tonal:
            return  # tones are not the line's noise
        if level < self.noise_floor_dbm0:
            target = max(level, p.min_floor_dbm0)
            self.noise_floor_dbm0 += p.floor_fall * (target - self.noise_floor_dbm0)
        else:
            rise = p.floor_rise_voiced_db if voiced else p.floor_rise_flat_db if flat else p.floor_rise_db
            self.noise_floor_dbm0 += min(rise, level - self.noise_floor_dbm0)

    def _segment(self, voiced: bool, active: bool, start_ms: int, missing: bool = False) -> list[VadEvent]:
        p = self.params
        end_ms = start_ms + 20
        self._recent.append((voiced, start_ms))
        events: list[VadEvent] = []
        if not self.in_speech:
            hits = [t for v, t in self._recent if v]
            if len(hits) >= p.onset_frames:
                self.in_speech = True
                self.segment_start_ms = hits[0]
                self.last_active_end_ms = end_ms
                events.append(VadEvent(True, hits[0]))
        elif active and not missing:
            self.last_active_end_ms = end_ms
        elif self.last_active_end_ms is not None and end_ms - self.last_active_end_ms >= p.hangover_ms:
            self.in_speech = False
            self._recent.clear()
            events.append(VadEvent(False, self.last_active_end_ms, self.last_active_end_ms - self.segment_start_ms))
        return events
