"""Call-progress tones rendered from the same tone plans the detector reads (config/tones.yaml,
Asterisk indications.conf syntax), so the corpus and the detector cannot disagree about a cadence."""

from __future__ import annotations

import math

import numpy as np

from dialer.audio.toneplan import ToneSpec, shipped_plan
from dialer.corpus.audio import FloatArray, ms_to_samples, sine


def cadence_ms(spec: ToneSpec) -> tuple[int, ...]:
    """The durations (ms) of the repeating parts of ``spec`` (e.g. busy 350, 350)."""
    return tuple(s.duration_ms or 0 for s in spec.segments if not s.once)


def render_tone(spec: ToneSpec, total_ms: int, level_dbm0: float) -> FloatArray:
    """``total_ms`` of ``spec``: the once-only parts first, then the cadence repeated (a part
    without a duration lasts to the end). Each frequency of a dual tone gets an equal share of
    the level."""
    out = np.zeros(ms_to_samples(total_ms))
    pos = 0
    once = [s for s in spec.segments if s.once]
    loop = [s for s in spec.segments if not s.once]
    seq = iter(once)
    if not any(s.duration_ms for s in loop):
        loop = [s for s in loop if s.duration_ms is None]  # no cadence: one lasting part at most
    while pos < len(out):
        seg = next(seq, None)
        if seg is None:
            if not loop:
                break
            seq = iter(loop)
            seg = next(seq)
        n = len(out) - pos if seg.duration_ms is None else ms_to_samples(seg.duration_ms)
        n = min(n, len(out) - pos)
        if seg.freqs_hz:
            share = level_dbm0 - 10.0 * math.log10(len(seg.freqs_hz))
            out[pos : pos + n] = sum(sine(f, n, share) for f in seg.freqs_hz)
        pos += n
        if seg.duration_ms is None:
            break
    return out


def tone(name: str, total_ms: int, level_dbm0: float, country: str | None = None) -> FloatArray:
    """``total_ms`` of the plan's tone ``name`` (busy, congestion, ring, info …)."""
    return render_tone(shipped_plan(country).tone(name), total_ms, level_dbm0)


def sit(cycles: int, level_dbm0: float, country: str | None = None) -> FloatArray:
    """``cycles`` whole cycles of the plan's SIT (``info``) tone."""
    spec = shipped_plan(country).tone("info")
    period = sum(s.duration_ms or 0 for s in spec.segments)
    return render_tone(spec, cycles * period, level_dbm0)


def sit_triplet_ms(country: str | None = None) -> int:
    """The sounding part of one SIT cycle (the three segments, without the pause)."""
    return sum(s.duration_ms or 0 for s in shipped_plan(country).tone("info").segments if s.freqs_hz)


def cadence(freq_hz: float, on_ms: int, off_ms: int, total_ms: int, level_dbm0: float) -> FloatArray:
    """An on/off tone of ``total_ms`` starting with the tone (a one-frequency cadence given by
    hand; plan tones come from :func:`tone`)."""
    out = np.zeros(ms_to_samples(total_ms))
    for start_ms in range(0, total_ms, on_ms + off_ms):
        a = ms_to_samples(start_ms)
        b = min(len(out), ms_to_samples(start_ms + on_ms))
        out[a:b] = sine(freq_hz, b - a, level_dbm0)
    return out
