"""Slin frames as they arrive from AudioSocket, and the frame clock.

AudioSocket (kind 0x10) carries signed 16-bit little-endian mono at 8 kHz, usually 320 bytes =
20 ms per message; Asterisk sends a shorter last frame, and an occasional short frame mid-stream
(tests/asterisk/transcripts/audiosocket/06-person-answers.frames.log has a 260-byte one at 3.245 s).

Time inside the analysis is *never* the wall clock: frame ``i`` covers
``[i·20 ms, (i+1)·20 ms)`` of the call's audio. The caller numbers the 20 ms slots; a slot it never
delivers (lost, or arriving after a later one) is a gap the detectors bridge.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from dialer.errors import AudioSocketError

FRAME_MS = 20
SAMPLE_RATE_HZ = 8000  # the project's one audio rate: AudioSocket slin, the corpus, the simulator
FloatArray = npt.NDArray[np.float64]
Int16Array = npt.NDArray[np.int16]


def samples_per_frame(sample_rate: int) -> int:
    """Samples in one 20 ms slot (160 at 8 kHz)."""
    if sample_rate <= 0 or sample_rate % 50:
        raise ValueError(f"sample rate {sample_rate} Hz does not give whole 20 ms frames")
    return sample_rate // 50


def frame_bytes(sample_rate: int = SAMPLE_RATE_HZ) -> int:
    """Bytes of slin in one 20 ms slot (320 at 8 kHz)."""
    return 2 * samples_per_frame(sample_rate)


def frame_slots(n_bytes: int, sample_rate: int = SAMPLE_RATE_HZ) -> int:
    """How many 20 ms slots a payload of ``n_bytes`` covers (a short frame still takes one)."""
    per = frame_bytes(sample_rate)
    return max(1, -(-n_bytes // per))


def slin_to_int16(pcm: bytes | bytearray | memoryview) -> Int16Array:
    """Signed 16-bit little-endian bytes → int16 samples (a copy-free view where possible)."""
    if len(pcm) % 2:
        raise AudioSocketError(f"slin payload of {len(pcm)} bytes is not a whole number of 16-bit samples")
    return np.frombuffer(pcm, dtype="<i2").astype(np.int16, copy=False)


def slin_to_float(pcm: bytes | bytearray | memoryview) -> FloatArray:
    """Slin bytes → float64 samples in int16 units (no rescaling: levels stay comparable to dBm0)."""
    return slin_to_int16(pcm).astype(np.float64)


def split_frames(samples: npt.NDArray[np.generic], sample_rate: int = SAMPLE_RATE_HZ) -> list[FloatArray]:
    """Cut a sample array into 20 ms slots; the last may be short."""
    per = samples_per_frame(sample_rate)
    arr = np.asarray(samples, dtype=np.float64)
    return [arr[i : i + per] for i in range(0, len(arr), per)]


class FrameClock:
    """Orders the slots of one call: says which are new, which were skipped, which came late.

    ``admit(frame_index)`` returns the number of slots skipped since the last admitted one
    (0 for the next slot in order), or ``None`` when the slot is late/duplicate and must be
    dropped: the analysis has already moved past it, and replaying old audio would corrupt the
    cadence timing.
    """

    __slots__ = ("gap_slots", "last_index", "late_slots")

    def __init__(self) -> None:
        self.last_index: int | None = None
        self.gap_slots = 0
        self.late_slots = 0

    def admit(self, frame_index: int, n_slots: int = 1) -> int | None:
        if frame_index < 0:
            raise ValueError(f"frame index must be ≥ 0, got {frame_index}")
        if self.last_index is not None and frame_index <= self.last_index:
            self.late_slots += n_slots
            return None
        # audio before the first slot is not a loss: the stream simply started there
        gap = 0 if self.last_index is None else frame_index - self.last_index - 1
        self.gap_slots += gap
        self.last_index = frame_index + n_slots - 1
        return gap
