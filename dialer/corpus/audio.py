"""Signal pieces of a generated call: levels in dBm0, a timeline, noise of several colours, the
G.711 round trip through sox, and the external-tool runner. Float samples at
:data:`~dialer.audio.frames.SAMPLE_RATE_HZ` (the one sample rate of the project's audio).

Levels use the G.711 reference: 0 dBm0 is a sine of peak 22 656 in int16 units.
"""

from __future__ import annotations

import math
import subprocess
from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt

from dialer.audio.frames import SAMPLE_RATE_HZ
from dialer.errors import DialerError

FloatArray = npt.NDArray[np.float64]
Int16Array = npt.NDArray[np.int16]

DBM0_PEAK = 22656.0  # ITU-T G.711: +3.17 dBm0 is full scale
DBM0_RMS = DBM0_PEAK / math.sqrt(2.0)

Codec = Literal["slin", "ulaw", "alaw"]
NoiseKind = Literal["white", "pink", "brown", "babble", "street"]


class CorpusError(DialerError):
    """A tool the generator needs is missing or failed."""


def run_tool(cmd: Sequence[str], data: bytes | None = None, what: str = "") -> bytes:
    """Run an external tool (sox, espeak-ng, festival); its stdout, or a :class:`CorpusError`."""
    try:
        proc = subprocess.run(list(cmd), input=data, capture_output=True, check=False)
    except FileNotFoundError:
        raise CorpusError(f"{cmd[0]} is not installed (apt install espeak-ng sox festival festvox-ru)") from None
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip()[:300]
        raise CorpusError(f"{cmd[0]} failed{' for ' + what if what else ''} (exit {proc.returncode}): {err}")
    return proc.stdout


def ms_to_samples(ms: float) -> int:
    return round(ms * SAMPLE_RATE_HZ / 1000.0)


def dbm0_to_rms(level_dbm0: float) -> float:
    return float(DBM0_RMS * 10.0 ** (level_dbm0 / 20.0))


def rms_to_dbm0(rms: float) -> float:
    return -100.0 if rms <= 0.0 else 20.0 * math.log10(rms / DBM0_RMS)


def sine(freq_hz: float, n: int, level_dbm0: float, phase0: float = 0.0) -> FloatArray:
    t = np.arange(n, dtype=np.float64) / SAMPLE_RATE_HZ
    peak: float = DBM0_PEAK * 10.0 ** (level_dbm0 / 20.0)
    return peak * np.sin(2.0 * math.pi * freq_hz * t + phase0)  # type: ignore[no-any-return]


def voiced_bounds(pcm: npt.NDArray[np.generic], rel_db: float = -40.0, step: int = 80) -> tuple[int, int]:
    """(first, end) sample of the voiced part: 10 ms blocks within ``rel_db`` of the loudest."""
    x = np.asarray(pcm, dtype=np.float64)
    n = len(x) // step
    if n == 0:
        return 0, len(x)
    ms = (x[: n * step].reshape(n, step) ** 2).mean(axis=1)
    peak = float(ms.max())
    if peak <= 0.0:
        return 0, 0
    loud = np.nonzero(ms >= peak * 10.0 ** (rel_db / 10.0))[0]
    return int(loud[0]) * step, (int(loud[-1]) + 1) * step


def active_rms(x: FloatArray, rel_db: float = -30.0, step: int = 160) -> float:
    """RMS over the 20 ms blocks within ``rel_db`` of the loudest block (speech active level)."""
    n = len(x) // step
    if n == 0:
        return float(np.sqrt(np.mean(x * x))) if len(x) else 0.0  # short clip: plain RMS
    ms = (x[: n * step].reshape(n, step) ** 2).mean(axis=1)
    peak = float(ms.max())
    if peak <= 0.0:
        return 0.0
    return float(np.sqrt(ms[ms >= peak * 10.0 ** (rel_db / 10.0)].mean()))


def scaled_to(x: FloatArray, level_dbm0: float) -> FloatArray:
    """``x`` scaled so that its active level is ``level_dbm0``."""
    rms = active_rms(x)
    return x * (dbm0_to_rms(level_dbm0) / rms) if rms > 0 else x


class Timeline:
    """Appends pieces of audio and remembers where things happened (ms)."""

    def __init__(self) -> None:
        self.parts: list[FloatArray] = []
        self.n = 0

    @property
    def now_ms(self) -> int:
        return round(self.n * 1000 / SAMPLE_RATE_HZ)

    def add(self, x: FloatArray) -> int:
        """Append; return the start (ms) of the piece."""
        at = self.now_ms
        self.parts.append(x)
        self.n += len(x)
        return at

    def silence(self, ms: int) -> int:
        return self.add(np.zeros(ms_to_samples(ms)))

    def audio(self) -> FloatArray:
        return np.concatenate(self.parts) if self.parts else np.zeros(0)


# --- noise ------------------------------------------------------------------------------------------


def _coloured(n: int, rng: np.random.Generator, exponent: float) -> FloatArray:
    """Gaussian noise whose power falls as 1/f**exponent (0 white, 1 pink, 2 brown), unit RMS,
    above 50 Hz (a telephone line passes nothing lower)."""
    if n == 0:
        return np.zeros(0)
    spec = np.fft.rfft(rng.normal(0.0, 1.0, n))
    f = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE_HZ)
    gain = np.zeros_like(f)
    band = f >= 50.0
    gain[band] = f[band] ** (-exponent / 2.0)
    x = np.fft.irfft(spec * gain, n)
    rms = float(np.sqrt(np.mean(x * x)))
    return x / rms if rms > 0 else x


def babble(n: int, rng: np.random.Generator, voices: Sequence[FloatArray], talkers: int = 6) -> FloatArray:
    """A crowd far off: ``talkers`` voices at random offsets, looped, summed; unit RMS."""
    if n == 0 or not voices:
        return np.zeros(n)
    out = np.zeros(n)
    for k in range(talkers):
        v = voices[int(rng.integers(len(voices)))] if k >= len(voices) else voices[k]
        v = v / max(1e-9, float(np.sqrt(np.mean(v * v))))
        reps = n // max(1, len(v)) + 2
        looped = np.tile(np.concatenate([v, np.zeros(int(rng.integers(400, 4000)))]), reps)
        start = int(rng.integers(len(looped) - n))
        out += looped[start : start + n] * float(rng.uniform(0.5, 1.0))
    out = np.convolve(out, np.ones(3) / 3.0, mode="same")  # far off: a little duller
    rms = float(np.sqrt(np.mean(out * out)))
    return out / rms if rms > 0 else out


def street(n: int, rng: np.random.Generator) -> FloatArray:
    """Traffic: brown rumble whose loudness swells as cars pass, over pink hiss; unit RMS."""
    rumble = _coloured(n, rng, 2.0)
    t = np.arange(n) / SAMPLE_RATE_HZ
    swell = np.ones(n)
    for _ in range(max(1, n // (SAMPLE_RATE_HZ * 3))):
        centre, width = float(rng.uniform(0, t[-1] if n else 1)), float(rng.uniform(0.5, 2.0))
        swell += 1.0 * np.exp(-(((t - centre) / width) ** 2))
    x = rumble * swell + 0.3 * _coloured(n, rng, 1.0)
    rms = float(np.sqrt(np.mean(x * x)))
    return x / rms if rms > 0 else x


def noise(kind: NoiseKind, n: int, rng: np.random.Generator, voices: Sequence[FloatArray] = ()) -> FloatArray:
    """Unit-RMS noise of ``kind`` (babble needs ``voices``: speech clips to mix)."""
    if kind == "white":
        return rng.normal(0.0, 1.0, n)
    if kind == "pink":
        return _coloured(n, rng, 1.0)
    if kind == "brown":
        return _coloured(n, rng, 2.0)
    if kind == "babble":
        return babble(n, rng, voices)
    return street(n, rng)


# --- codec ------------------------------------------------------------------------------------------


def codec_roundtrip(pcm: Int16Array, codec: Codec) -> Int16Array:
    """Encode to G.711 and back with sox (an implementation independent of dialer.audio)."""
    if codec == "slin":
        return pcm
    enc = "u-law" if codec == "ulaw" else "a-law"
    raw_fmt = ["-t", "raw", "-r", str(SAMPLE_RATE_HZ), "-c", "1"]
    coded = run_tool(
        ["sox", "-D", *raw_fmt, "-e", "signed-integer", "-b", "16", "-", *raw_fmt, "-e", enc, "-b", "8", "-"],
        pcm.astype("<i2").tobytes(),
        f"{codec} encode",
    )
    back = run_tool(
        ["sox", "-D", *raw_fmt, "-e", enc, "-b", "8", "-", *raw_fmt, "-e", "signed-integer", "-b", "16", "-"],
        coded,
        f"{codec} decode",
    )
    return np.frombuffer(back, dtype="<i2").astype(np.int16)


def to_int16(x: FloatArray) -> Int16Array:
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)
