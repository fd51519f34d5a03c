"""Test signal synthesis: tones from a tone plan, codecs, noise, frame loss, espeak-ng speech."""

from __future__ import annotations

import shutil
import subprocess
import wave
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from dialer.audio import g711
from dialer.audio.analyzer import CallAudioAnalyzer, Observation
from dialer.audio.frames import SAMPLE_RATE_HZ
from dialer.audio.levels import sine_peak_for_dbm0
from dialer.audio.toneplan import ToneSpec

RATE = SAMPLE_RATE_HZ  # the project's one line rate (dialer.audio.frames)
FRAME = 160
FloatArray = npt.NDArray[np.float64]
Int16Array = npt.NDArray[np.int16]


def render_tone(spec: ToneSpec, duration_ms: int, level_dbm0: float, rate: int = RATE) -> FloatArray:
    """Play a tone spec like Asterisk's PlayTones: parts in a loop (``!`` parts only once), each
    frequency of a dual tone at ``level_dbm0`` − 3 dB so the sum has the given power."""
    n_total = duration_ms * rate // 1000
    out = np.zeros(n_total)
    pos = 0
    first = True
    while pos < n_total:
        progressed = False
        for seg in spec.segments:
            if seg.once and not first:
                continue
            n = n_total - pos if seg.duration_ms is None else seg.duration_ms * rate // 1000
            n = min(n, n_total - pos)
            if n <= 0:
                break
            progressed = True
            if seg.freqs_hz:
                peak = sine_peak_for_dbm0(level_dbm0 - 10 * np.log10(len(seg.freqs_hz)))
                t = np.arange(pos, pos + n) / rate
                for f in seg.freqs_hz:
                    out[pos : pos + n] += peak * np.sin(2 * np.pi * f * t)
            pos += n
        first = False
        if not progressed:
            break
    return out


def sine(freq_hz: float, duration_ms: int, level_dbm0: float, rate: int = RATE) -> FloatArray:
    t = np.arange(duration_ms * rate // 1000) / rate
    return sine_peak_for_dbm0(level_dbm0) * np.sin(2 * np.pi * freq_hz * t)


def silence(duration_ms: int, rate: int = RATE) -> FloatArray:
    return np.zeros(duration_ms * rate // 1000)


def rms_dbm0_scale(x: FloatArray, level_dbm0: float) -> FloatArray:
    """Scale a signal so its RMS over the non-silent part is ``level_dbm0``."""
    active = x[np.abs(x) > 1e-9]
    if not len(active):
        return x
    rms = float(np.sqrt(np.mean(active**2)))
    target = float(sine_peak_for_dbm0(level_dbm0) / np.sqrt(2))
    return x * (target / rms)


def add_noise(x: FloatArray, snr_db: float, ref_level_dbm0: float, rng: np.random.Generator) -> FloatArray:
    """White noise ``snr_db`` below a signal of ``ref_level_dbm0``."""
    noise_rms = sine_peak_for_dbm0(ref_level_dbm0 - snr_db) / np.sqrt(2)
    return x + rng.normal(0.0, noise_rms, len(x))


def to_int16(x: FloatArray) -> Int16Array:
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def codec(x: Int16Array, name: str) -> Int16Array:
    if name == "none":
        return x
    if name == "ulaw":
        return g711.ulaw_roundtrip(x)
    if name == "alaw":
        return g711.alaw_roundtrip(x)
    raise ValueError(name)


def frames_of(x: Int16Array, frame: int = FRAME) -> list[bytes]:
    return [x[i : i + frame].astype("<i2").tobytes() for i in range(0, len(x), frame)]


def feed(
    analyzer: CallAudioAnalyzer,
    x: Int16Array,
    *,
    drop: Iterable[int] = (),
    late: Sequence[tuple[int, int]] = (),
) -> list[Observation]:
    """Feed 20 ms frames; ``drop``: indices never delivered; ``late``: (index, delay in frames)
    delivered after the later frames (so the analyser must drop them)."""
    dropped = set(drop)
    delayed = dict(late)
    pending: dict[int, list[tuple[int, bytes]]] = {}
    out: list[Observation] = []
    for i, pcm in enumerate(frames_of(x)):
        if i in delayed:
            pending.setdefault(i + delayed[i], []).append((i, pcm))
        elif i not in dropped:
            out.extend(analyzer.feed(pcm, i))
        for j, old in pending.pop(i, []):
            out.extend(analyzer.feed(old, j))
    return out


def random_drops(n_frames: int, fraction: float, rng: np.random.Generator) -> set[int]:
    return {i for i in range(n_frames) if rng.random() < fraction}


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def espeak_ru(text: str, path: Path, speed_wpm: int = 160, pitch: int = 50) -> FloatArray:
    """Russian speech from espeak-ng, resampled to 8 kHz (sox when present, else numpy)."""
    raw = path.with_suffix(".raw.wav")
    subprocess.run(
        ["espeak-ng", "-v", "ru", "-s", str(speed_wpm), "-p", str(pitch), "-w", str(raw), text],
        check=True,
        capture_output=True,
    )
    if shutil.which("sox"):
        subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(path)], check=True)
        return read_wav(path)
    data, rate = read_wav_rate(raw)
    n = int(len(data) * RATE / rate)
    return np.interp(np.arange(n) * rate / RATE, np.arange(len(data)), data)


def read_wav_rate(path: Path) -> tuple[FloatArray, int]:
    with wave.open(str(path), "rb") as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
        return data, w.getframerate()


def read_wav(path: Path) -> FloatArray:
    data, rate = read_wav_rate(path)
    assert rate == RATE
    return data


def trim(x: FloatArray, threshold: float = 100.0) -> FloatArray:
    """Cut leading/trailing near-silence (espeak pads its output)."""
    idx = np.flatnonzero(np.abs(x) > threshold)
    return x[idx[0] : idx[-1] + 1] if len(idx) else x[:0]


def synthetic_voice(duration_ms: int, rng: np.random.Generator, f0_hz: float = 120.0) -> FloatArray:
    """A crude speech stand-in: voiced syllables (harmonics shaped by moving formants, wobbling
    pitch) with short gaps and fricative noise. Used where espeak-ng is not installed."""
    out: list[FloatArray] = []
    total = 0
    while total < duration_ms:
        syl_ms = int(rng.uniform(120, 260))
        t = np.arange(syl_ms * RATE // 1000) / RATE
        f0 = f0_hz * (1 + 0.08 * np.sin(2 * np.pi * rng.uniform(2, 5) * t)) * rng.uniform(0.9, 1.1)
        phase = 2 * np.pi * np.cumsum(f0) / RATE
        f1, f2 = rng.uniform(300, 800), rng.uniform(900, 2200)
        syl = np.zeros_like(t)
        for h in range(1, 30):
            fh = h * f0_hz
            if fh > 3600:
                break
            gain = np.exp(-(((fh - f1) / 150) ** 2)) + 0.6 * np.exp(-(((fh - f2) / 200) ** 2)) + 0.05
            syl += gain / h**0.5 * np.sin(h * phase)
        syl *= np.hanning(len(t))
        if rng.random() < 0.3:  # a fricative
            syl = np.concatenate([0.3 * rng.normal(0, 1, RATE * 60 // 1000), syl])
        gap = np.zeros(int(rng.uniform(20, 90)) * RATE // 1000)
        out += [syl, gap]
        total += (len(syl) + len(gap)) * 1000 // RATE
    return np.concatenate(out)[: duration_ms * RATE // 1000]
