"""Call-progress tones over 20 ms frames: busy, congestion, ringback, SIT, and a generic beep.

Per frame, the energy of the frame is projected onto the (cos, sin) subspace of each frequency
group of the tone plan (one 425 Hz group for RU, 480+620 and 440+480 for US, 950/1400/1800 for
SIT). This is a Goertzel filter bank done as one small matrix product; orthonormalising each
group's basis keeps close pairs such as 440+480 Hz (one DFT bin apart in 20 ms) exact. A frame whose
energy sits ≥ ``min_purity`` in one group is that group's *symbol*; otherwise it is SILENT (well
below the last tone) or OTHER (speech, noise). Runs of equal symbols are matched against each
tone's cadence with a tolerance, so the decision needs two complete segments plus the start of the
next one — e.g. RU busy 350 on + 350 off + 40 ms of the next burst ≈ 0.74 s from the tone's start.

Missing frames are bridged by holding the current symbol for up to ``max_hold_frames`` slots;
longer gaps break the cadence (UNKNOWN) rather than guess.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from dialer.audio.frames import SAMPLE_RATE_HZ
from dialer.audio.levels import peak_share
from dialer.audio.toneplan import TonePlan, ToneSpec
from dialer.domain.model import ToneKind

FloatArray = npt.NDArray[np.float64]

SILENT = -1  # quiet: an "off" part of a cadence
OTHER = -2  # sound that is no tone of the plan (speech, noise)
UNKNOWN = -3  # audio missing for longer than we dare bridge


#: Which indications.conf tone each detected kind comes from.
PLAN_TONE_NAMES: dict[ToneKind, str] = {
    ToneKind.BUSY: "busy",
    ToneKind.CONGESTION: "congestion",
    ToneKind.RINGBACK: "ring",
    ToneKind.SIT: "info",
}


@dataclass(frozen=True, slots=True)
class ToneParams:
    min_tone_level_dbm0: float = -42.0  # spec: tones down to −30 dBm0; 12 dB margin
    min_purity: float = 0.6  # share of frame energy inside one tone group
    min_component_share: float = 0.15  # each half of a dual tone (when resolvable)
    silence_margin_db: float = 12.0  # "off" = this far below the last tone burst
    silence_floor_dbm0: float = -60.0  # always quiet enough to be "off"
    tolerance_ms: int = 60  # segment length tolerance: max(tolerance_ms, tolerance_frac·len)
    tolerance_frac: float = 0.2
    min_open_ms: int = 40  # the segment after the matched ones must have begun this long ago
    min_evidence_ms: int = 650  # matched audio needed (besides ≥ 2 whole segments)
    max_hold_frames: int = 2  # missing slots bridged by holding the current symbol
    min_frame_samples_frac: float = 0.5  # shorter frames are treated as missing
    # beep (voicemail): one steady sine in the band, long enough
    beep_low_hz: float = 400.0
    beep_high_hz: float = 2000.0
    beep_min_ms: int = 200
    beep_min_share: float = 0.85
    beep_min_level_dbm0: float = -45.0
    # fax: the answering machine's CED, 2100 Hz (ITU-T V.25 / T.30); phase reversals every 450 ms
    # may break a frame, so a shorter steady stretch suffices in this narrow band
    fax_low_hz: float = 2050.0
    fax_high_hz: float = 2150.0
    fax_min_ms: int = 400


@dataclass(frozen=True, slots=True)
class ToneMatch:
    kind: ToneKind
    at_ms: int  # decision time: end of the frame that completed the evidence
    started_ms: int  # start of the first matched segment
    confidence: float


@dataclass(frozen=True, slots=True)
class _Step:
    symbol: int
    duration_ms: int | None  # None: any length


@dataclass(slots=True)
class _Run:
    symbol: int
    start_ms: int
    duration_ms: int
    max_level_dbm0: float
    held_ms: int = 0  # part of the duration bridged over missing frames

    @property
    def heard_ms(self) -> int:
        return self.duration_ms - self.held_ms


@dataclass(frozen=True, slots=True)
class _Chain:
    segments: int
    evidence_ms: int
    next_pos: int
    started_ms: int
    deviation: float  # mean |measured − expected| / tolerance over the matched segments


_NO_CHAIN = _Chain(0, 0, 0, 0, 1.0)


class _GroupBank:
    """Orthonormal projections of a frame onto each frequency group, cached per frame length."""

    def __init__(self, groups: list[tuple[float, ...]], sample_rate: int, min_component_share: float) -> None:
        self.groups = groups
        self.sample_rate = sample_rate
        self.min_component_share = min_component_share
        self._cache: dict[int, tuple[FloatArray, npt.NDArray[np.intp], list[tuple[int, int, int]]]] = {}

    def _build(self, n: int) -> tuple[FloatArray, npt.NDArray[np.intp], list[tuple[int, int, int]]]:
        t = np.arange(n, dtype=np.float64) / self.sample_rate
        rows: list[FloatArray] = []
        starts: list[int] = []

        def add(freqs: tuple[float, ...]) -> int:
            basis = np.column_stack([fn(2 * math.pi * f * t) for f in freqs for fn in (np.cos, np.sin)])
            q, _ = np.linalg.qr(basis)
            starts.append(sum(len(r) for r in rows))
            rows.append(q.T)
            return len(starts) - 1

        components: list[tuple[int, int, int]] = []  # (group, first component, second component)
        for g in self.groups:
            add(g)
        for gi, g in enumerate(self.groups):
            # a dual tone whose halves a 20 ms frame can resolve must show both halves
            if len(g) == 2 and abs(g[0] - g[1]) >= 2.0 * self.sample_rate / n:
                components.append((gi, add((g[0],)), add((g[1],))))
        matrix = np.ascontiguousarray(np.vstack(rows))
        return matrix, np.asarray(starts, dtype=np.intp), components

    def purities(self, x: FloatArray, energy: float) -> tuple[FloatArray, FloatArray]:
        """(share of energy per group, share per group after the dual-tone component check)."""
        n = len(x)
        built = self._cache.get(n)
        if built is None:
            built = self._cache[n] = self._build(n)
        matrix, starts, components = built
        y = matrix @ x
        shares = np.add.reduceat(y * y, starts) / energy
        groups = shares[: len(self.groups)].copy()
        checked = groups.copy()
        for gi, a, b in components:
            g = groups[gi]
            if g <= 0.0 or min(shares[a], shares[b]) < self.min_component_share * g:
                checked[gi] = 0.0
        return groups, checked


class CadenceDetector:
    """Busy, congestion, ringback and SIT of one tone plan, fed one 20 ms frame at a time."""

    def __init__(self, plan: TonePlan, sample_rate: int = SAMPLE_RATE_HZ, params: ToneParams | None = None) -> None:
        self.params = params or ToneParams()
        self.plan = plan
        self._frame_samples = sample_rate // 50
        groups: list[tuple[float, ...]] = []
        self._patterns: dict[ToneKind, list[_Step]] = {}
        for kind, name in PLAN_TONE_NAMES.items():
            spec = plan.tone(name)
            for seg in spec.segments:
                g = tuple(sorted(seg.freqs_hz))
                if g and g not in groups:
                    groups.append(g)
            self._patterns[kind] = self._compile(spec, groups)
        self._bank = _GroupBank(groups, sample_rate, self.params.min_component_share)
        self._runs: deque[_Run] = deque(maxlen=16)
        self._open: _Run | None = None
        self._chains: dict[ToneKind, _Chain] = {k: _NO_CHAIN for k in self._patterns}
        self._emitted: set[ToneKind] = set()
        self._held = 0
        self._tone_level_dbm0: float | None = None  # loudest frame of the latest tone burst

    @staticmethod
    def _compile(spec: ToneSpec, groups: list[tuple[float, ...]]) -> list[_Step]:
        steps: list[_Step] = []
        for seg in spec.segments:
            symbol = groups.index(tuple(sorted(seg.freqs_hz))) if seg.freqs_hz else SILENT
            if steps and steps[-1].symbol == symbol:  # adjacent equal parts are one run on the wire
                prev = steps[-1]
                total = (
                    None
                    if prev.duration_ms is None or seg.duration_ms is None
                    else (prev.duration_ms + seg.duration_ms)
                )
                steps[-1] = _Step(symbol, total)
            else:
                steps.append(_Step(symbol, seg.duration_ms))
        if len(steps) > 1 and steps[0].symbol == steps[-1].symbol:  # wraps around: merge too
            first, last = steps[0], steps.pop()
            total = (
                None
                if first.duration_ms is None or last.duration_ms is None
                else (first.duration_ms + last.duration_ms)
            )
            steps[0] = _Step(first.symbol, total)
        return steps

    # -- per-frame input ----------------------------------------------------------------------

    def push(self, x: FloatArray, energy: float, level_dbm0: float, start_ms: int) -> list[ToneMatch]:
        """One frame of samples (int16 scale, float64) starting at ``start_ms``."""
        p = self.params
        if len(x) < p.min_frame_samples_frac * self._frame_samples:
            return self.hold(start_ms)
        self._held = 0
        symbol = self._symbol(x, energy, level_dbm0)
        return self._advance(symbol, start_ms, level_dbm0)

    def hold(self, start_ms: int) -> list[ToneMatch]:
        """A slot with no audio: bridge it by holding the current symbol, for a while."""
        self._held += 1
        if self._open is not None and self._held <= self.params.max_hold_frames:
            self._open.held_ms += 20
            return self._advance(self._open.symbol, start_ms, self._open.max_level_dbm0)
        return self._advance(UNKNOWN, start_ms, -math.inf)

    def _symbol(self, x: FloatArray, energy: float, level: float) -> int:
        p = self.params
        if energy > 0.0 and level >= p.min_tone_level_dbm0:
            _, checked = self._bank.purities(x, energy)
            best = int(np.argmax(checked))
            if checked[best] >= p.min_purity:
                return best
        quiet = p.silence_floor_dbm0
        if self._tone_level_dbm0 is not None:
            quiet = max(quiet, self._tone_level_dbm0 - p.silence_margin_db)
        return SILENT if level < quiet else OTHER

    def _advance(self, symbol: int, start_ms: int, level: float) -> list[ToneMatch]:
        run = self._open
        if run is not None and run.symbol == symbol:
            run.duration_ms = start_ms + 20 - run.start_ms
            run.max_level_dbm0 = max(run.max_level_dbm0, level)
        elif run is not None and run.heard_ms <= 20 and self._runs and self._runs[-1].symbol == symbol:
            # one odd frame inside a run (a click, a codec glitch): the run goes on
            run = self._open = self._runs.pop()
            run.duration_ms = start_ms + 20 - run.start_ms
            run.max_level_dbm0 = max(run.max_level_dbm0, level)
            self._rematch()
        elif run is not None and run.heard_ms <= 20 and run.symbol == OTHER and self._runs:
            # a frame straddling a change (tone → silence, 950 → 1400 Hz) fits neither side:
            # it belongs to the segment that starts in it
            run.symbol = symbol
            run.duration_ms = start_ms + 20 - run.start_ms
            run.max_level_dbm0 = level
            run.held_ms = 0
        else:
            if run is not None:
                self._runs.append(run)
                self._rematch()
            run = self._open = _Run(symbol, start_ms, 20, level)
        if symbol >= 0:
            self._tone_level_dbm0 = run.max_level_dbm0
        return self._decide(start_ms + 20)

    # -- cadence matching -----------------------------------------------------------------------

    def _tolerance(self, expected_ms: int) -> float:
        return max(float(self.params.tolerance_ms), self.params.tolerance_frac * expected_ms)

    def _fits(self, run: _Run, step: _Step) -> float | None:
        """Deviation in tolerances (0 = exact) or None when the run does not fit the step."""
        if run.symbol != step.symbol:
            return None
        if step.duration_ms is None:
            return 0.0 if run.duration_ms >= self.params.min_open_ms else None
        tol = self._tolerance(step.duration_ms)
        dev = abs(run.duration_ms - step.duration_ms) / tol
        return dev if dev <= 1.0 else None

    def _rematch(self) -> None:
        runs = list(self._runs)
        for kind, pattern in self._patterns.items():
            best = _NO_CHAIN
            n = len(pattern)
            for pos in range(n):
                devs: list[float] = []
                evidence = 0
                started = 0
                for j, run in enumerate(reversed(runs)):
                    dev = self._fits(run, pattern[(pos - j) % n])
                    if dev is None:
                        break
                    devs.append(dev)
                    evidence += run.duration_ms
                    started = run.start_ms
                if len(devs) > best.segments:
                    best = _Chain(len(devs), evidence, (pos + 1) % n, started, sum(devs) / len(devs))
            self._chains[kind] = best

    def _decide(self, now_ms: int) -> list[ToneMatch]:
        run = self._open
        assert run is not None
        out: list[ToneMatch] = []
        for kind, chain in self._chains.items():
            if kind in self._emitted or chain.segments < 2:
                continue
            step = self._patterns[kind][chain.next_pos]
            if run.symbol != step.symbol or run.duration_ms < self.params.min_open_ms:
                continue
            if step.duration_ms is not None and run.duration_ms > step.duration_ms + self._tolerance(step.duration_ms):
                continue
            if chain.evidence_ms + run.duration_ms < self.params.min_evidence_ms:
                continue
            self._emitted.add(kind)
            # more matched segments and closer timing → more sure; never 1.0 from tones alone
            confidence = min(0.97, 0.6 + 0.1 * chain.segments) * (1.0 - 0.3 * chain.deviation)
            out.append(ToneMatch(kind, now_ms, chain.started_ms, round(confidence, 3)))
        return out


@dataclass(frozen=True, slots=True)
class BeepMatch:
    at_ms: int
    started_ms: int
    frequency_hz: float


class SteadyToneDetector:
    """A single steady sine inside a band lasting long enough: a voicemail's record beep
    (400–2000 Hz, ≥ 200 ms: :meth:`beep`) or a fax machine's answer tone (2100 Hz: :meth:`fax`)."""

    def __init__(
        self,
        sample_rate: int = SAMPLE_RATE_HZ,
        params: ToneParams | None = None,
        *,
        band_hz: tuple[float, float] | None = None,
        min_ms: int | None = None,
    ) -> None:
        self.params = params or ToneParams()
        self._low_hz, self._high_hz = band_hz or (self.params.beep_low_hz, self.params.beep_high_hz)
        self._min_ms = min_ms if min_ms is not None else self.params.beep_min_ms
        self._sample_rate = sample_rate
        self._start_ms: int | None = None
        self._bin = 0
        self._bin_hz = 0.0
        self._reported = False
        self._held = 0

    def push(self, power: FloatArray, level_dbm0: float, start_ms: int, n_samples: int) -> BeepMatch | None:
        p = self.params
        bin_hz = self._sample_rate / n_samples
        lo = max(1, int(self._low_hz / bin_hz))
        hi = math.ceil(self._high_hz / bin_hz) + 1
        peak, share = peak_share(power, lo, hi)
        steady = share >= p.beep_min_share and level_dbm0 >= p.beep_min_level_dbm0
        self._held = 0
        if not steady:
            self._start_ms = None
            self._reported = False
            return None
        if self._start_ms is None or abs(peak * bin_hz - self._bin * self._bin_hz) > 1.5 * bin_hz:
            self._start_ms, self._bin, self._bin_hz, self._reported = start_ms, peak, bin_hz, False
        return self._check(start_ms + 20)

    def hold(self, start_ms: int) -> BeepMatch | None:
        self._held += 1
        if self._start_ms is None or self._held > self.params.max_hold_frames:
            self._start_ms = None
            return None
        return self._check(start_ms + 20)

    def _check(self, now_ms: int) -> BeepMatch | None:
        assert self._start_ms is not None
        if self._reported or now_ms - self._start_ms < self._min_ms:
            return None
        self._reported = True
        return BeepMatch(now_ms, self._start_ms, self._bin * self._bin_hz)

    @classmethod
    def beep(cls, sample_rate: int = SAMPLE_RATE_HZ, params: ToneParams | None = None) -> SteadyToneDetector:
        return cls(sample_rate, params)

    @classmethod
    def fax(cls, sample_rate: int = SAMPLE_RATE_HZ, params: ToneParams | None = None) -> SteadyToneDetector:
        p = params or ToneParams()
        return cls(sample_rate, p, band_hz=(p.fax_low_hz, p.fax_high_hz), min_ms=p.fax_min_ms)
