"""Fingerprints of known announcements (signal 3 of README "Decisions, cheapest signal first").

Carriers play the same recordings every time, so a robust fingerprint of each recording an ops
engineer adds is strong evidence, with or without a speech model.

The fingerprint (after Haitsma & Kalker): 8 kHz audio is cut into 64 ms Hann windows every 16 ms;
each window's energy in 33 logarithmically spaced bands of the telephone band (300–3400 Hz) is
taken, and a 32-bit *sub-fingerprint* per window holds the signs of the band-energy differences
across frequency, differenced again across time::

    bit m of window n = (E[n,m] − E[n,m+1]) − (E[n−1,m] − E[n−1,m+1]) > 0

Signs of differences do not care about the level (−30…0 dBm0) and survive G.711 and moderate
noise; the heavy window overlap makes a few milliseconds of misalignment harmless.

Matching (:class:`FingerprintMatcher`) is streaming and exhaustive: every position of every known
recording is a hypothesis "the sub-fingerprint just heard is this one". Each new sub-fingerprint
shifts every hypothesis one step along its recording and adds its bit errors; a hypothesis is
reset at the start of its recording, so the network may start mid-announcement (hypotheses begin
at every position with the first audio) or repeat it. Windows that touch a lost frame are not
compared, nor are the reference's own pauses. A hypothesis is accepted once it has compared
enough speech (1.2–1.5 s, less for a recording shorter than that; 1 s for a temporary
announcement the library tells apart from every recording of another class sooner — misreading
one costs a retry, never a hang-up as an incorrect contact) at a bit error rate below
``max_ber``. The errors are counted from the hypothesis' start, so a recording whose words are
only a tail of what is heard («номер заблокирован» inside «номер временно заблокирован») carries
the mismatching head with it.

Pure: frames in, a match out; time is the frame index. :func:`load_library` is the one loader
(announcements.yaml + recordings; WAV 8/16 kHz mono PCM or raw slin, resampled with numpy).
"""

from __future__ import annotations

import math
import wave
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

from dialer.audio.frames import FRAME_MS, SAMPLE_RATE_HZ, samples_per_frame, slin_to_float
from dialer.audio.levels import DBM0_PEAK
from dialer.domain.fusion import ANNOUNCEMENT_CLASSES, NOT_WORKING_CLASSES
from dialer.domain.model import CallClass
from dialer.errors import ConfigError

FloatArray = npt.NDArray[np.float64]
UInt32Array = npt.NDArray[np.uint32]
BoolArray = npt.NDArray[np.bool_]

N_BANDS = 33  # → 32 bits
MIN_SPEECH_MS = 400  # a recording with less sound than this cannot be told from other audio


@dataclass(frozen=True, slots=True)
class FingerprintParams:
    window_samples: int = 512  # 64 ms at 8 kHz
    hop_samples: int = 128  # 16 ms
    low_hz: float = 300.0
    high_hz: float = 3400.0
    pause_below_peak_db: float = 24.0  # reference windows this far below its loudest are pauses …
    floor_dbm0: float = -60.0  # … and so is anything this quiet
    # the reference is fingerprinted at this many sub-hop offsets, so that a query whose windows
    # fall between two reference windows still meets one close by
    reference_phases: int = 2
    reliable_bits: int = 12  # of 32 per reference sub-fingerprint: those with the largest margins

    @property
    def hop_ms(self) -> float:
        return self.hop_samples * 1000 / SAMPLE_RATE_HZ


DEFAULT_PARAMS = FingerprintParams()


def _band_matrix(p: FingerprintParams) -> FloatArray:
    """(bins × bands) 0/1 matrix summing FFT power bins into the bands (each band ≥ 1 bin)."""
    n_bins = p.window_samples // 2 + 1
    freqs = np.arange(n_bins) * SAMPLE_RATE_HZ / p.window_samples
    edges = np.geomspace(p.low_hz, p.high_hz, N_BANDS + 1)
    m = np.zeros((n_bins, N_BANDS))
    for b in range(N_BANDS):
        sel = (freqs >= edges[b]) & (freqs < edges[b + 1])
        if not sel.any():
            sel = np.abs(freqs - (edges[b] + edges[b + 1]) / 2) == np.min(np.abs(freqs - (edges[b] + edges[b + 1]) / 2))
        m[sel, b] = 1.0
    return m


@dataclass(frozen=True)
class _Spectrum:
    """Cached per-parameter constants: the window and the band matrix."""

    window: FloatArray
    bands: FloatArray

    dbm0_energy: float  # in-band energy of a window of a 0 dBm0 1 kHz sine

    @staticmethod
    @cache
    def of(p: FingerprintParams) -> _Spectrum:
        s = _Spectrum(np.hanning(p.window_samples), _band_matrix(p), 1.0)
        ref = DBM0_PEAK * np.sin(2 * np.pi * 1000 * np.arange(p.window_samples) / SAMPLE_RATE_HZ)
        return _Spectrum(s.window, s.bands, float(s.energies(ref[None, :]).sum()))

    def energies(self, windows: FloatArray) -> FloatArray:
        """(n × window) samples → (n × bands) band energies."""
        spec = np.fft.rfft(windows * self.window, axis=1)
        power = spec.real**2 + spec.imag**2
        out: FloatArray = power @ self.bands
        return out


_BIT_WEIGHTS = (np.uint32(1) << np.arange(N_BANDS - 1, dtype=np.uint32)).astype(np.uint32)


def _margins(prev: FloatArray, cur: FloatArray) -> FloatArray:
    """Band energies of consecutive windows (n × bands each) → (n × 32) bit margins; bit = margin > 0."""
    d_prev = prev[:, :-1] - prev[:, 1:]
    d_cur = cur[:, :-1] - cur[:, 1:]
    out: FloatArray = d_cur - d_prev
    return out


def _pack(on: BoolArray) -> UInt32Array:
    out: UInt32Array = (on.astype(np.uint32) * _BIT_WEIGHTS).sum(axis=1, dtype=np.uint32)
    return out


def _bits(prev: FloatArray, cur: FloatArray) -> UInt32Array:
    """Band energies of consecutive windows (n × bands each) → n sub-fingerprints."""
    return _pack(_margins(prev, cur) > 0)


def _reliable(margins: FloatArray, keep: int) -> UInt32Array:
    """Per sub-fingerprint, the ``keep`` bits with the largest margins: the ones noise flips least."""
    if keep >= N_BANDS - 1:
        return np.full(len(margins), 0xFFFFFFFF, dtype=np.uint32)
    order = np.argsort(-np.abs(margins), axis=1)[:, :keep]
    on = np.zeros(margins.shape, dtype=bool)
    np.put_along_axis(on, order, True, axis=1)
    return _pack(on)


def _windows(x: FloatArray, start: int, p: FingerprintParams) -> FloatArray:
    n = 0 if len(x) - start < p.window_samples else 1 + (len(x) - start - p.window_samples) // p.hop_samples
    if n == 0:
        return np.zeros((0, p.window_samples))
    view = np.lib.stride_tricks.sliding_window_view(x[start:], p.window_samples)[:: p.hop_samples]
    return np.asarray(view[:n], dtype=np.float64)


@dataclass(frozen=True)
class Fingerprint:
    """Sub-fingerprints of one recording at one phase, with the windows worth comparing."""

    bits: UInt32Array
    active: BoolArray  # not a pause of the recording
    reliable: UInt32Array  # the bits worth comparing (largest margins)

    def __len__(self) -> int:
        return len(self.bits)


def fingerprint(samples: npt.ArrayLike, params: FingerprintParams = DEFAULT_PARAMS, *, offset: int = 0) -> Fingerprint:
    """Fingerprint 8 kHz samples (int16 units), windows starting at ``offset``."""
    x = np.asarray(samples, dtype=np.float64)
    spectrum = _Spectrum.of(params)
    e = spectrum.energies(_windows(x, offset, params))
    if len(e) < 2:
        return Fingerprint(np.zeros(0, np.uint32), np.zeros(0, bool), np.zeros(0, np.uint32))
    level = 10 * np.log10(np.maximum(e.sum(axis=1), 1e-12) / spectrum.dbm0_energy)
    loud = (level >= float(level.max()) - params.pause_below_peak_db) & (level >= params.floor_dbm0)
    active = loud[1:] & loud[:-1]
    margins = _margins(e[:-1], e[1:])
    return Fingerprint(_pack(margins > 0), active, _reliable(margins, params.reliable_bits))


# --- the library ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KnownRecording:
    """One recording an ops engineer added: what it means and its fingerprints (one per phase)."""

    name: str
    call_class: CallClass
    text: str
    prints: tuple[Fingerprint, ...] = field(repr=False)
    duration_ms: int
    speech_ms: int  # the part that is compared (not the recording's pauses)
    params: FingerprintParams = DEFAULT_PARAMS
    note: str = ""

    @classmethod
    def from_samples(
        cls,
        name: str,
        call_class: CallClass,
        samples: npt.ArrayLike,
        *,
        sample_rate: int = SAMPLE_RATE_HZ,
        text: str = "",
        note: str = "",
        params: FingerprintParams = DEFAULT_PARAMS,
    ) -> KnownRecording:
        x = resample(np.asarray(samples, dtype=np.float64), sample_rate, SAMPLE_RATE_HZ)
        phases = max(1, params.reference_phases)
        prints = tuple(fingerprint(x, params, offset=k * params.hop_samples // phases) for k in range(phases))
        speech_ms = round(int(prints[0].active.sum()) * params.hop_ms)
        return cls(name, call_class, text, prints, round(len(x) * 1000 / SAMPLE_RATE_HZ), speech_ms, params, note)


@dataclass(frozen=True)
class FingerprintLibrary:
    """The known recordings, fingerprinted once per process and shared by every call's matcher."""

    recordings: tuple[KnownRecording, ...] = ()
    params: FingerprintParams = DEFAULT_PARAMS
    source: str = "<memory>"
    # the matcher's tables per matcher configuration, laid out once and shared read-only by every
    # call (the speech each recording needs compares it with every other: not per call)
    _tables: dict[MatcherConfig, _Tables] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.recordings)

    def tables(self, cfg: MatcherConfig) -> _Tables:
        t = self._tables.get(cfg)
        if t is None:
            t = self._tables[cfg] = _Tables.of(self, cfg)
        return t

    def __bool__(self) -> bool:
        return bool(self.recordings)

    @classmethod
    def build(
        cls,
        recordings: Iterable[KnownRecording],
        *,
        params: FingerprintParams = DEFAULT_PARAMS,
        source: str = "<memory>",
    ) -> FingerprintLibrary:
        recs = tuple(recordings)
        names = [r.name for r in recs]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"recordings named twice in the fingerprint library: {', '.join(dup)}")
        odd = [r.name for r in recs if r.params != params]
        if odd:
            raise ValueError(f"recordings fingerprinted with other parameters: {', '.join(odd)}")
        return cls(recs, params, source)


# Misreading one of these for another costs a retry at most (people-first: not a hang-up as an
# incorrect contact), so they may decide on less voice (MatcherConfig.min_distinct_speech_ms).
_QUICK_CLASSES = frozenset(ANNOUNCEMENT_CLASSES - NOT_WORKING_CLASSES)


# --- matching ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FingerprintMatch:
    name: str
    call_class: CallClass
    score: float  # 0..1; 0.9 at the acceptance threshold, 1.0 for a bit-exact copy
    at_ms: int  # call clock when the match was decided (end of the frame that decided it)
    matched_ms: int  # how long the hypothesis ran along the recording (audio compared, with its pauses)
    ber: float = 0.0  # bit error rate over the compared windows
    worst_recent_ber: float = 0.0  # the worst stretch along the hypothesis (see MatcherConfig)


@dataclass(frozen=True, slots=True)
class MatcherConfig:
    max_ber: float = 0.13  # accept a hypothesis whose bit error rate is at most this …
    max_recent_ber: float = 0.38  # … and no stretch of about half a second along it above this …
    max_current_ber: float = 0.22  # … and the stretch just heard matching well: a shared opening
    # followed by other words is refused while the words differ, not accepted on the opening
    recent_ms: float = 500.0  # time constant of the "recent" error rate
    # How much of the recording's speech a hypothesis must have run through before it decides:
    # announcements share words («номер абонента …», «здравствуйте, вы позвонили …»), and the
    # word that tells them apart may come last. At least this much speech …
    min_speech_ms: float = 1200.0
    share_of_recording: float = 0.5  # … or this share of a long recording's speech …
    max_speech_ms: float = 1500.0  # … but never more than this …
    share_of_short_recording: float = 1.0  # … and of a short one, all of it.
    # A recording whose misreading costs only a retry (not a not-working class) decides on less
    # voice once the library shows no recording of another class within ``distinct_ber`` of its
    # opening at any alignment — but never on less than ``min_distinct_speech_ms``. A not-working
    # recording keeps the full rule: an unknown temporary sibling spliced from the same words
    # («номер абонента …») must not be hung up on as an incorrect contact.
    min_distinct_speech_ms: float = 1000.0
    distinct_ber: float = 0.3
    # of that speech, at least this share really compared: a lost 20 ms frame spoils the ~6
    # windows over it, so 5 % frame loss leaves a short recording with ~70 % on average
    compared_share: float = 0.35


@dataclass
class _Tables:
    """The library laid out as one array of hypothesis positions (every phase of every recording)."""

    ref: UInt32Array
    mask: UInt32Array  # reliable bits of active windows (0 for a pause: nothing compared)
    nbits: npt.NDArray[np.int32]  # bits compared at each position
    active: npt.NDArray[np.int32]  # 1 where the reference window is not a pause
    starts: npt.NDArray[np.intp]
    owner: npt.NDArray[np.intp]  # position → recording index
    min_count: npt.NDArray[np.int32]  # per position: speech windows to run through before deciding

    @staticmethod
    def of(lib: FingerprintLibrary, cfg: MatcherConfig) -> _Tables:
        refs: list[UInt32Array] = []
        masks: list[UInt32Array] = []
        starts: list[int] = []
        owner: list[npt.NDArray[np.intp]] = []
        need: list[npt.NDArray[np.int32]] = []
        pos = 0
        hop_ms = lib.params.hop_ms
        quick = distinct_speech_windows(lib, cfg)
        for i, rec in enumerate(lib.recordings):
            for fp in rec.prints:
                if not len(fp):
                    continue
                refs.append(fp.bits)
                masks.append(np.where(fp.active, fp.reliable, np.uint32(0)).astype(np.uint32))
                starts.append(pos)
                owner.append(np.full(len(fp), i, dtype=np.intp))
                have_ms = int(fp.active.sum()) * hop_ms
                n = min(
                    max(cfg.min_speech_ms, cfg.share_of_recording * have_ms),
                    cfg.max_speech_ms,
                    cfg.share_of_short_recording * have_ms,
                )
                full = max(1, math.ceil(n / hop_ms))
                q = quick[i]
                need.append(np.full(len(fp), full if q is None else min(full, q), dtype=np.int32))
                pos += len(fp)
        if not refs:
            empty = np.zeros(0, np.int32)
            return _Tables(
                np.zeros(0, np.uint32),
                np.zeros(0, np.uint32),
                empty,
                empty,
                np.zeros(0, np.intp),
                np.zeros(0, np.intp),
                empty,
            )
        mask = np.concatenate(masks)
        return _Tables(
            np.concatenate(refs),
            mask,
            np.bitwise_count(mask).astype(np.int32),
            (mask != 0).astype(np.int32),
            np.asarray(starts, dtype=np.intp),
            np.concatenate(owner),
            np.concatenate(need),
        )


def distinct_speech_windows(lib: FingerprintLibrary, cfg: MatcherConfig) -> list[int | None]:
    """Per recording, the speech windows after which the library shows it apart from every
    recording of another class — for temporary announcements only (None for the rest)."""
    floor = max(1, math.ceil(cfg.min_distinct_speech_ms / lib.params.hop_ms))
    cap = max(1, math.ceil(cfg.max_speech_ms / lib.params.hop_ms))
    out: list[int | None] = []
    for rec in lib.recordings:
        if rec.call_class not in _QUICK_CLASSES or not rec.prints:
            out.append(None)
            continue
        others = [o.prints[0] for o in lib.recordings if o.call_class != rec.call_class and o.prints]
        out.append(max(floor, _distinct_after(rec.prints[0], others, cap, cfg.distinct_ber)))
    return out


def _distinct_after(ref: Fingerprint, others: Sequence[Fingerprint], full: int, min_ber: float) -> int:
    """Speech windows of ``ref`` after which, up to ``full`` of them, every alignment of every other
    recording (looped, as carriers play them) differs from its opening by more than ``min_ber``.

    ``full`` when no shorter count is safe. Clean prints: a call's noise only adds errors to a
    wrong hypothesis' comparison as much as to the right one's."""
    active_cum = np.cumsum(ref.active)
    k_full = int(np.searchsorted(active_cum, full)) + 1  # reference windows to pass ``full`` speech
    k_full = min(k_full, len(ref))
    mask = np.where(ref.active, ref.reliable, np.uint32(0)).astype(np.uint32)[:k_full]
    bits_cum = np.maximum(np.cumsum(np.bitwise_count(mask)), 1)
    worst = np.ones(k_full)  # per prefix length: the closest other alignment's error rate
    for other in others:
        if not len(other):
            continue
        looped = np.concatenate([other.bits] * (1 + -(-k_full // len(other)) + 1))
        views = np.lib.stride_tricks.sliding_window_view(looped, k_full)[: len(other)]
        errs = np.bitwise_count((views ^ ref.bits[:k_full]) & mask)
        ber = np.cumsum(errs, axis=1) / bits_cum
        np.minimum(worst, ber.min(axis=0), out=worst)
    close = np.flatnonzero(worst <= min_ber)
    if not len(close):
        return int(active_cum[0]) if len(active_cum) else full
    k = int(close[-1]) + 1  # the first prefix past the last close one
    if k >= k_full:
        return full
    return min(full, int(active_cum[k]))


class FingerprintMatcher:
    """One call's streaming matcher against a :class:`FingerprintLibrary`.

    ``feed(pcm, frame_index)`` takes the call's 20 ms slots in order (a skipped index is lost audio;
    a late or repeated one is ignored) and returns the match the first time one is decided. After
    that it stops working (the call is decided) and :attr:`match` keeps the result.
    """

    def __init__(
        self,
        library: FingerprintLibrary,
        config: MatcherConfig | None = None,
        *,
        sample_rate: int = SAMPLE_RATE_HZ,
    ) -> None:
        if sample_rate != SAMPLE_RATE_HZ:
            raise ValueError(f"fingerprints are matched on {SAMPLE_RATE_HZ} Hz audio, not {sample_rate} Hz")
        self.library = library
        self.config = config or MatcherConfig()
        self._p = library.params
        self._spec = _Spectrum.of(self._p)
        self._per_frame = samples_per_frame(sample_rate)
        self._t = library.tables(self.config)
        n = len(self._t.ref)
        self._err = np.zeros(n, dtype=np.int32)  # bit errors since the hypothesis started
        self._bits = np.zeros(n, dtype=np.int32)  # bits compared since then
        self._cnt = np.zeros(n, dtype=np.int32)  # windows compared
        self._seen = np.zeros(n, dtype=np.int32)  # speech windows of the recording passed (lost ones too)
        self._min_compared = np.ceil(self._t.min_count * self.config.compared_share).astype(np.int32)
        self._span = np.zeros(n, dtype=np.int32)  # windows since it started (lost ones too)
        self._r_err = np.zeros(n, dtype=np.float64)  # the same, decaying: the recent error rate
        self._r_bits = np.zeros(n, dtype=np.float64)
        self._decay = math.exp(-self._p.hop_ms / self.config.recent_ms)
        # the worst recent error rate along the hypothesis, once the average holds enough bits
        self._worst = np.zeros(n, dtype=np.float64)
        self._settled_bits = self.config.recent_ms / 2 / self._p.hop_ms * self._p.reliable_bits
        # samples not yet fully windowed, and whether each really arrived
        self._buf = np.zeros(0, dtype=np.float64)
        self._ok = np.zeros(0, dtype=bool)
        self._buf_start = 0  # absolute sample index of _buf[0]
        self._next_window = 0  # absolute sample index where the next window starts
        self._prev: FloatArray | None = None  # band energies of the previous window
        self._prev_ok = False
        self._last_index: int | None = None
        self.match: FingerprintMatch | None = None

    @property
    def done(self) -> bool:
        return self.match is not None or not len(self._t.ref)

    def feed(self, pcm: bytes, frame_index: int) -> FingerprintMatch | None:
        if self.done:
            return None
        if self._last_index is not None and frame_index <= self._last_index:
            return None  # late or duplicate: the windows past it are already computed
        x = slin_to_float(pcm)
        start = frame_index * self._per_frame
        end_of_buf = self._buf_start + len(self._buf)
        if self._last_index is None:
            self._buf_start = self._next_window = start
            end_of_buf = start
        gap = start - end_of_buf
        parts_x = [self._buf]
        parts_ok = [self._ok]
        if gap > 0:  # lost audio: the windows over it are not compared (concealing it did worse)
            parts_x.append(np.zeros(gap))
            parts_ok.append(np.zeros(gap, dtype=bool))
        parts_x.append(x)
        parts_ok.append(np.ones(len(x), dtype=bool))
        self._buf = np.concatenate(parts_x)
        self._ok = np.concatenate(parts_ok)
        self._last_index = frame_index + max(1, -(-len(x) // self._per_frame)) - 1
        at_ms = (self._last_index + 1) * FRAME_MS
        return self._windows_ready(at_ms)

    def _windows_ready(self, at_ms: int) -> FingerprintMatch | None:
        p = self._p
        rel = self._next_window - self._buf_start
        wins = _windows(self._buf, rel, p)
        if len(wins):
            # a window is compared only if every one of its samples really arrived
            views = np.lib.stride_tricks.sliding_window_view(self._ok[rel:], p.window_samples)[:: p.hop_samples]
            oks: BoolArray = np.asarray(views[: len(wins)].all(axis=1), dtype=bool)
            energies = self._spec.energies(wins)
            self._next_window += len(wins) * p.hop_samples
            drop = self._next_window - self._buf_start
            self._buf = self._buf[drop:]
            self._ok = self._ok[drop:]
            self._buf_start = self._next_window
            if self._prev is not None:
                prev_e = np.vstack([self._prev, energies[:-1]])
                prev_ok = np.concatenate([[self._prev_ok], oks[:-1]])
                bits, valid = _bits(prev_e, energies), prev_ok & oks
            else:
                bits, valid = _bits(energies[:-1], energies[1:]), oks[:-1] & oks[1:]
            self._prev, self._prev_ok = energies[-1:], bool(oks[-1])
            for q, ok in zip(bits.tolist(), valid.tolist(), strict=True):
                found = self._step(int(q), bool(ok), at_ms)
                if found is not None:
                    self.match = found
                    return found
        return None

    def _step(self, q: int, ok: bool, at_ms: int) -> FingerprintMatch | None:
        t = self._t
        for arr in (self._err, self._bits, self._cnt, self._seen, self._span, self._r_err, self._r_bits, self._worst):
            arr[1:] = arr[:-1]
            arr[t.starts] = 0
        self._span += 1
        self._seen += t.active
        if not ok:
            return None
        errs = np.bitwise_count((t.ref ^ np.uint32(q)) & t.mask).astype(np.int32)
        self._err += errs
        self._bits += t.nbits
        self._cnt += t.active
        self._r_err *= self._decay
        self._r_err += errs
        self._r_bits *= self._decay
        self._r_bits += t.nbits
        recent = self._r_err / np.maximum(self._r_bits, 1.0)
        settled = self._r_bits >= self._settled_bits
        np.maximum(self._worst, np.where(settled, recent, 0.0), out=self._worst)
        ready = self._ready()
        if not ready.any():
            return None
        idx = np.flatnonzero(ready)
        ber = self._err[idx] / np.maximum(self._bits[idx], 1)
        # the stretch just heard counts even before the running average has settled
        worst = np.maximum(self._worst[idx], recent[idx])
        ok_now = (worst <= self.config.max_recent_ber) & (recent[idx] <= self.config.max_current_ber)
        ber = np.where(ok_now, ber, 1.0)
        k = int(np.argmin(ber))
        best = float(ber[k])
        if best > self.config.max_ber:
            return None
        pos = int(idx[k])
        rec = self.library.recordings[int(t.owner[pos])]
        score = 1.0 - 0.1 * best / self.config.max_ber
        return FingerprintMatch(
            name=rec.name,
            call_class=rec.call_class,
            score=round(score, 3),
            at_ms=at_ms,
            matched_ms=round(int(self._span[pos]) * self._p.hop_ms),
            ber=round(best, 4),
            worst_recent_ber=round(float(worst[k]), 4),
        )

    def _ready(self) -> BoolArray:
        t = self._t
        out: BoolArray = (self._seen >= t.min_count) & (self._cnt >= self._min_compared)
        return out

    def closest(self) -> tuple[float, float] | None:
        """(bit error rate, worst recent rate) of the hypothesis that is closest to deciding now —
        among those that ran through enough of their recording (diagnostics; margins in tests)."""
        ready = self._ready()
        if not len(ready) or not ready.any():
            return None
        idx = np.flatnonzero(ready)
        ber = self._err[idx] / np.maximum(self._bits[idx], 1)
        worst = np.maximum(self._worst[idx], self._r_err[idx] / np.maximum(self._r_bits[idx], 1.0))
        k = int(np.argmin(np.maximum(ber, worst * self.config.max_ber / self.config.max_recent_ber)))
        return float(ber[k]), float(worst[k])


# --- audio helpers and the loader ---------------------------------------------------------------------
def resample(x: FloatArray, from_hz: int, to_hz: int) -> FloatArray:
    """Resample with numpy: a windowed-sinc low-pass below the lower Nyquist, then interpolation.

    Good enough for fingerprints (band energies up to 3.4 kHz); not a studio resampler."""
    if from_hz == to_hz:
        return x
    if from_hz <= 0 or to_hz <= 0:
        raise ValueError(f"bad sample rates {from_hz} → {to_hz}")
    if to_hz < from_hz:
        cutoff = 0.5 * to_hz / from_hz * 0.95  # cycles per input sample
        taps = 63
        n = np.arange(taps) - (taps - 1) / 2
        h = 2 * cutoff * np.sinc(2 * cutoff * n) * np.hamming(taps)
        x = np.convolve(x, h / h.sum(), mode="same")
    n_out = int(len(x) * to_hz / from_hz)
    out: FloatArray = np.interp(np.arange(n_out) * from_hz / to_hz, np.arange(len(x)), x)
    return out


def read_audio(path: Path) -> tuple[FloatArray, int]:
    """A recording from disk: WAV (16-bit PCM mono, any rate) or raw slin 8 kHz (.sl/.slin/.raw)."""
    suffix = path.suffix.lower()
    if suffix in (".sl", ".slin", ".raw", ".sln"):
        data = path.read_bytes()
        if len(data) % 2:
            raise ConfigError("raw slin file has an odd number of bytes", source=str(path))
        return np.frombuffer(data, dtype="<i2").astype(np.float64), SAMPLE_RATE_HZ
    if suffix == ".wav":
        try:
            with wave.open(str(path), "rb") as w:
                if w.getsampwidth() != 2 or w.getnchannels() != 1:
                    raise ConfigError(
                        f"WAV must be 16-bit PCM mono (got {8 * w.getsampwidth()}-bit, {w.getnchannels()} channels)",
                        source=str(path),
                    )
                rate = w.getframerate()
                raw = w.readframes(w.getnframes())
        except (wave.Error, EOFError) as exc:
            raise ConfigError(f"not a PCM WAV file: {exc}", source=str(path)) from None
        return np.frombuffer(raw, dtype="<i2").astype(np.float64), rate
    raise ConfigError("unknown audio format (use .wav 16-bit PCM mono, or raw slin 8 kHz .sl)", source=str(path))


@dataclass(frozen=True, slots=True)
class LibraryEntry:
    """One line of announcements.yaml, before its audio is read."""

    file: Path
    call_class: CallClass
    text: str
    note: str = ""
    line: int = 0
    name: str = field(default="")


_ENTRY_KEYS = frozenset({"file", "class", "text", "note", "name"})


def parse_index(path: Path) -> list[LibraryEntry]:
    """announcements.yaml → entries (validated: known keys, a CallClass value, the file exists)."""
    from dialer.yamlload import load_yaml_file  # the YAML layer stays out of the pure code above

    root = load_yaml_file(path)
    if root.value is None:
        return []
    if root.is_mapping:
        node = root.get("announcements")
        if node is None:
            raise root.error("expected a list of recordings under `announcements:`")
        if node.value is None:
            return []
        items = node.as_list("announcements")
    else:
        items = root.as_list("announcements.yaml")
    classes = {c.value: c for c in CallClass}
    out: list[LibraryEntry] = []
    seen: dict[str, int] = {}
    for item in items:
        m = item.as_mapping("a recording entry")
        unknown = sorted(set(m) - _ENTRY_KEYS)
        if unknown:
            raise item.key_error(unknown[0], f"unknown key {unknown[0]!r} (known: {', '.join(sorted(_ENTRY_KEYS))})")
        f = m.get("file")
        if f is None:
            raise item.error("a recording entry needs `file:`")
        c = m.get("class")
        if c is None:
            raise item.error("a recording entry needs `class:` (a call class, e.g. ann_not_in_service)")
        cls_name = c.as_str("class")
        if cls_name not in classes:
            raise c.error(f"unknown call class {cls_name!r}")
        file = (path.parent / f.as_str("file")).resolve()
        if not file.is_file():
            raise f.error(f"recording {f.value!r} not found (looked at {file})")
        t = m.get("text")
        text = t.as_str("text", allow_empty=True) if t is not None else ""
        n = m.get("note")
        note = n.as_str("note", allow_empty=True) if n is not None else ""
        nm = m.get("name")
        name = nm.as_str("name") if nm is not None else Path(str(f.value)).stem
        if name in seen:
            raise item.error(f"recording name {name!r} already used at line {seen[name]}")
        seen[name] = item.line
        out.append(LibraryEntry(file, classes[cls_name], text, note, item.line, name))
    return out


def load_library(directory: Path, index_name: str = "announcements.yaml") -> FingerprintLibrary:
    """Read a library directory: its index and every recording it names, fingerprinted once."""
    index = directory / index_name
    if not index.is_file():
        raise ConfigError("no announcements index here", source=str(index))
    recs: list[KnownRecording] = []
    for e in parse_index(index):
        try:
            samples, rate = read_audio(e.file)
        except ConfigError as exc:
            raise ConfigError(f"recording of entry at line {e.line}: {exc}", source=str(index), line=e.line) from None
        rec = KnownRecording.from_samples(e.name, e.call_class, samples, sample_rate=rate, text=e.text, note=e.note)
        if rec.speech_ms < MIN_SPEECH_MS:
            raise ConfigError(
                f"recording {e.file.name} holds almost no sound ({rec.speech_ms} ms): nothing to fingerprint",
                source=str(index),
                line=e.line,
            )
        recs.append(rec)
    return FingerprintLibrary.build(recs, source=str(index))
