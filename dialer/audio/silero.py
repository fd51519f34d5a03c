"""Voice activity by Silero VAD (``silero_vad.onnx`` on onnxruntime), and the choice of detector.

The model (Silero VAD 6.2.3, MIT; installed by ``dialer models pull silero-vad``) takes 256-sample
windows at 8 kHz (32 ms) plus the last 32 samples of the previous window as context, and carries
an LSTM state from window to window; it answers the probability that the window holds speech.

:class:`SileroModel` is the loaded model: one per process (loading reads the file: do it off the
event loop), shared by every call — the state lives in each call's :class:`SileroVad`, so one
session serves all. :class:`SileroVad` is a :class:`~dialer.audio.vad.Vad` whose per-frame speech
decision is the model's: our 20 ms slots (160 samples) are buffered into 32 ms windows (five
windows per eight slots) and each slot takes the latest window's probability, with hysteresis
(speech from ``threshold``, until below ``threshold − release``); a slot the energy rule calls
voiced also counts when the model gives it ``rescue_probability`` (quiet speech, on which the model
rises late). Everything else is the energy detector's: segments (onset, hangover, back-dating),
the noise floor the fusion reads (it follows the line faster: the model says what is not speech),
and steady tones (a beep is never speech). Pure after loading: samples in, events out.

:func:`choose_vad` turns ``[audio] vad`` (``energy`` | ``silero`` | ``auto``) into a
:class:`VadChoice`; a missing or unloadable model is one line of reason and the energy detector.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from dialer.asr.models import MODELS_DIR, SILERO_VAD_MODEL
from dialer.audio.frames import SAMPLE_RATE_HZ
from dialer.audio.levels import DBM0_PEAK
from dialer.audio.vad import FloatArray, Vad, VadEvent, VadParams
from dialer.errors import DialerError

F32 = npt.NDArray[np.float32]

MODEL_FILE = "silero_vad.onnx"
WINDOW = 256  # samples per model step at 8 kHz (32 ms)
CONTEXT = 32  # samples of the previous window the model sees again
VadName = Literal["energy", "silero"]


class VadModelUnavailable(DialerError):
    """The Silero model is not installed or cannot be loaded."""


def default_model_path(models_dir: Path = MODELS_DIR) -> Path:
    return models_dir / SILERO_VAD_MODEL / MODEL_FILE


class SileroModel:
    """The loaded ONNX model; stateless (each caller keeps its own state), one thread per run."""

    def __init__(self, session: Any, path: Path) -> None:
        self._session = session
        self.path = path
        self._sr = np.array(SAMPLE_RATE_HZ, dtype=np.int64)

    @classmethod
    def load(cls, path: Path) -> SileroModel:
        """Raises :class:`VadModelUnavailable` (one line) when the file or onnxruntime is missing
        or the file is not the model."""
        if not path.is_file():
            raise VadModelUnavailable(f"no Silero VAD model at {path} (install it: `dialer models pull silero-vad`)")
        try:
            import onnxruntime as ort
        except ImportError:
            raise VadModelUnavailable("onnxruntime is not installed (it comes with faster-whisper)") from None
        opts = ort.SessionOptions()
        # one call's step is tiny: threads would cost more than they save, and calls run side by side
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.log_severity_level = 3
        try:
            session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for a bad file
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise VadModelUnavailable(f"{path} is not a loadable Silero VAD model ({first})") from None
        names = {i.name for i in session.get_inputs()}
        if names != {"input", "state", "sr"}:
            raise VadModelUnavailable(f"{path} is not the Silero VAD model with a sample-rate input ({sorted(names)})")
        return cls(session, path)

    def new_state(self) -> F32:
        return np.zeros((2, 1, 128), dtype=np.float32)

    def step(self, window: F32, state: F32) -> tuple[float, F32]:
        """One window (shape (1, CONTEXT + WINDOW), float in [-1, 1]) → (speech probability, state)."""
        out, new_state = self._session.run(None, {"input": window, "state": state, "sr": self._sr})
        return float(out[0, 0]), new_state


@dataclass(frozen=True, slots=True)
class SileroParams:
    threshold: float = 0.5  # the model's documented default
    release: float = 0.15  # speech lasts until the probability drops below threshold − release
    # A frame the energy rule calls voiced counts when the model gives it at least this much: the
    # model is slow to rise on quiet speech (a −40 dBm0 «Да» of 150 ms was missed, bench_vad.py),
    # and the energy rule stops hearing coloured noise once the floor has followed it (below).
    rescue_probability: float = 0.15
    # Quieter windows are not shown to the model (probability 0, state kept): it costs nothing on
    # a silent line, and −40 dBm0 speech stays well above it.
    min_level_dbm0: float = -65.0


# The floor follows the line 1 dB per frame the model calls not speech (the energy rule alone
# rises 0.2 dB: it cannot tell noise that starts with the answer from a voice).
SILERO_VAD_PARAMS = VadParams(floor_rise_db=1.0, floor_rise_flat_db=1.0)


class SileroVad(Vad):
    """Per-call Silero voice activity with the energy detector's interface and segments."""

    name = "silero"

    def __init__(self, model: SileroModel, params: VadParams | None = None, silero: SileroParams | None = None) -> None:
        super().__init__(params or SILERO_VAD_PARAMS)
        self.model = model
        self.silero = silero or SileroParams()
        self.probability = 0.0  # the latest window's
        self._speaking = False
        self._state = model.new_state()
        # [context | window being filled]; the window is full at CONTEXT + WINDOW samples
        self._buf = np.zeros((1, CONTEXT + WINDOW), dtype=np.float32)
        self._fill = CONTEXT
        self._window_ms2 = 0.0  # sum of squares of the window so far (int16 units)
        self._window_untonal = False  # a slot that is no steady tone fed this window
        self._min_ms2 = WINDOW * (DBM0_PEAK * DBM0_PEAK / 2.0) * 10.0 ** (self.silero.min_level_dbm0 / 10.0)

    def _judge(
        self, power: FloatArray, level_dbm0: float, loud: bool, samples: FloatArray | None
    ) -> tuple[bool, bool, bool, bool]:
        energy_voiced, _, tonal, flat = super()._judge(power, level_dbm0, loud, samples)
        if samples is not None:
            self._advance(samples, tonal)
        s = self.silero
        p = self.probability
        self._speaking = p >= s.threshold or (self._speaking and p >= s.threshold - s.release)
        voiced = (self._speaking or (energy_voiced and p >= s.rescue_probability)) and not tonal
        return voiced, voiced, tonal, flat

    def hold(self, start_ms: int) -> list[VadEvent]:
        # a gap: the next window starts afresh (joining audio across a hole would be a click)
        self._fill = CONTEXT
        self._window_ms2 = 0.0
        self._window_untonal = False
        return super().hold(start_ms)

    def _advance(self, samples: FloatArray, tonal: bool) -> None:
        """Buffer one slot; run the model on each window completed. A window of quiet or of steady
        tone only (ringback: much of a call's audio) is not shown to the model: it could not be
        speech anyway (tonal slots are never voiced), and the state is kept."""
        self._window_untonal = self._window_untonal or not tonal
        x = samples.astype(np.float32) * np.float32(1.0 / 32768.0)
        i = 0
        while i < len(x):
            take = min(len(x) - i, CONTEXT + WINDOW - self._fill)
            part = x[i : i + take]
            self._buf[0, self._fill : self._fill + take] = part
            self._window_ms2 += float(samples[i : i + take] @ samples[i : i + take])
            self._fill += take
            i += take
            if self._fill == CONTEXT + WINDOW:
                if self._window_ms2 >= self._min_ms2 and self._window_untonal:
                    self.probability, self._state = self.model.step(self._buf, self._state)
                else:
                    self.probability = 0.0
                self._buf[0, :CONTEXT] = self._buf[0, WINDOW:]
                self._fill = CONTEXT
                self._window_ms2 = 0.0
                self._window_untonal = not tonal and i < len(x)  # the slot's rest opens the next window


@dataclass(frozen=True, slots=True)
class VadChoice:
    """Which detector every call of this process gets, and why (one line for the log)."""

    name: VadName
    reason: str
    model: SileroModel | None = None

    def new(self, params: VadParams | None = None) -> Vad:
        """A fresh detector for one call."""
        return SileroVad(self.model, params) if self.model is not None else Vad(params)


ENERGY_VAD = VadChoice("energy", "energy voice activity (spectral shape over an adaptive noise floor)")


def choose_vad(choice: str, model_path: Path | None = None) -> tuple[VadChoice, bool]:
    """``[audio] vad`` → the detector and whether that is a fallback the operator should see.

    ``energy``: the energy detector. ``silero``: the model, or — when it is missing or broken —
    the energy detector with the reason (a fallback). ``auto``: the model when it is installed,
    else the energy detector — also a fallback worth a warning, since persons in noise are heard
    far better with the model (bench/bench_vad.py). Never raises; loads the model, so call it
    once per process and off the event loop."""
    if choice == "energy":
        return ENERGY_VAD, False
    path = model_path or default_model_path()
    if choice == "auto" and not path.is_file():
        why = f"no Silero model at {path}: `dialer models pull silero-vad` hears persons in noise far better"
        return VadChoice("energy", f"energy voice activity ({why})"), True
    try:
        model = SileroModel.load(path)
    except VadModelUnavailable as exc:
        return VadChoice("energy", f"energy voice activity instead of Silero: {exc}"), True
    return VadChoice("silero", f"Silero voice activity ({path})", model), False
