"""Signal levels and the per-frame spectrum shared by the detectors.

Level reference (ITU-T G.711): the largest μ-law sine is +3.17 dBm0. Its peak in 14-bit μ-law units
is 8159, i.e. 32636 in 16-bit linear, so **0 dBm0 is a sine of peak 22 656** (RMS 16 020) in
int16 samples. We use this one reference for A-law too (A-law's own is 3.14 dB below full scale:
0.03 dB apart). Asterisk generates tones at amplitude 7219 ≈ −9.9 dBm0.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

DBM0_PEAK = 22656.0
DBM0_MEAN_SQUARE = DBM0_PEAK * DBM0_PEAK / 2.0
#: Level reported for digital silence instead of −∞.
FLOOR_DBM0 = -100.0


def level_dbm0(mean_square: float) -> float:
    """Mean square of int16-scaled samples → level in dBm0."""
    if mean_square <= 0.0:
        return FLOOR_DBM0
    return max(FLOOR_DBM0, 10.0 * math.log10(mean_square / DBM0_MEAN_SQUARE))


def sine_peak_for_dbm0(level: float) -> float:
    """Peak amplitude (int16 units) of a sine at ``level`` dBm0; composite tones split it."""
    return DBM0_PEAK * math.pow(10.0, level / 20.0)


@lru_cache(maxsize=16)
def _dft_matrix(n: int) -> FloatArray:
    """Hann-windowed real DFT as one matrix: a small matmul beats rfft's call overhead at n=160."""
    window = np.hanning(n + 2)[1:-1]  # no zero end points
    k = np.arange(n // 2 + 1)[:, None]
    arg = 2.0 * np.pi * k * np.arange(n)[None, :] / n
    matrix = np.ascontiguousarray(np.vstack([np.cos(arg) * window, np.sin(arg) * window]))
    matrix.setflags(write=False)
    return matrix


def power_spectrum(x: FloatArray) -> FloatArray:
    """Hann-windowed power spectrum of one frame (bins of sample_rate/len(x) Hz)."""
    y = _dft_matrix(len(x)) @ x
    y *= y
    half = len(y) // 2
    out: FloatArray = y[:half] + y[half:]
    return out


def peak_share(power: FloatArray, lo_bin: int, hi_bin: int) -> tuple[int, float]:
    """Bin of the strongest 3-bin cluster in [lo_bin, hi_bin) and its share of all power.

    A steady sine puts ~98 % of a Hann-windowed frame's power into 3 bins, speech far less.
    """
    total = float(power.sum())
    if total <= 0.0 or hi_bin - lo_bin < 1:
        return lo_bin, 0.0
    tri = power[:-2] + power[1:-1] + power[2:]  # tri[i] = bins i..i+2, centred on i+1
    lo = max(lo_bin - 1, 0)
    hi = min(hi_bin - 1, len(tri))
    if hi <= lo:
        return lo_bin, 0.0
    i = lo + int(np.argmax(tri[lo:hi]))
    return i + 1, float(tri[i]) / total
