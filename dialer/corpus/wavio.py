"""WAV files of a corpus: 8 kHz (the project's one sample rate) 16-bit mono."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np

from dialer.audio.frames import SAMPLE_RATE_HZ
from dialer.corpus.audio import CorpusError, Int16Array


def write_wav(path: Path, pcm: Int16Array) -> None:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE_HZ)
        w.writeframes(pcm.astype("<i2").tobytes())
    path.write_bytes(buf.getvalue())


def read_wav(path: Path) -> Int16Array:
    """An 8 kHz 16-bit mono WAV as int16 samples; anything else is an error naming the file."""
    with wave.open(str(path), "rb") as w:
        if (w.getnchannels(), w.getsampwidth(), w.getframerate()) != (1, 2, SAMPLE_RATE_HZ):
            raise CorpusError(
                f"{path}: want {SAMPLE_RATE_HZ} Hz 16-bit mono, got {w.getframerate()} Hz "
                f"{8 * w.getsampwidth()}-bit {w.getnchannels()} channel(s)"
            )
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)
