"""The Whisper engine behind the recognizer port (:mod:`dialer.asr.port`): faster-whisper's
CTranslate2 model decoding stretches of speech.

Whisper is not a streaming recognizer and writes text on anything («Редактор субтитров …» on
silence, «СПОКОЙНАЯ МУЗЫКА» on tones), so:

* **only speech is decoded**: audio is buffered only while the session's voice-activity flag says
  *voiced* — the VAD's speech state with its onset and hangover (``Vad.in_speech``), with
  :attr:`WhisperParams.pre_roll_ms` of audio before it so the first syllable is whole; a stretch
  flagged for less than :attr:`WhisperParams.min_voiced_ms` (a click) is dropped undecoded;
  silence, tones and noise the VAD rejects never reach the model;
* a stretch is decoded when it ends (:attr:`WhisperParams.end_pause_ms` of unvoiced frames: a
  ``final`` hypothesis) and early during long speech (after :attr:`WhisperParams.early_decode_ms`
  of it, then every :attr:`WhisperParams.early_every_ms`: a partial hypothesis of the stretch so
  far), so a long announcement is read before it ends; a stretch longer than
  :attr:`WhisperParams.max_segment_ms` is settled and a new one begun;
* the encoder sees the audio's length (plus :attr:`WhisperParams.pad_ms` of padding), not the
  library's fixed 30 s window: ctranslate2 ≥ 4 accepts shorter mel features, which cuts the CPU of
  a decode several times (bench/bench_asr.py measures it);
* decoding is deterministic and unbiased: beam 5, temperature 0 (no fallback), no prompt, no
  hotwords (a catalogue prompt turns hallucinations into catalogue words), language fixed,
  without timestamps;
* every result carries a confidence from the average log-probability and the no-speech
  probability; text the model itself calls no speech (Whisper's own rule: no-speech probability
  > 0.6 and average log-probability < −1) is dropped, and so are its sound annotations
  («СПОКОЙНАЯ МУЗЫКА») and text under :attr:`WhisperParams.min_confidence` (what it invents on
  noise that got past the VAD).

One model per process and path (:func:`load_whisper`), loaded by :meth:`WhisperEngine.load`, which
the caller runs off the event loop; decodes run in the caller's thread (the session's bounded
executor); the model serves ``num_workers`` decodes at once.

Decoding only: no phrase matching, no confirmation, no decision (the call session does those).
"""

from __future__ import annotations

import math
import os
import threading
import zlib
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from dialer.asr.models import is_whisper_model
from dialer.asr.port import Hypothesis
from dialer.audio.frames import SAMPLE_RATE_HZ
from dialer.errors import AsrUnavailable

FloatArray = npt.NDArray[np.float32]

WHISPER_RATE_HZ = 16000
BYTES_PER_SAMPLE = 2
_MEL_HOP = 160  # samples of 16 kHz audio per mel frame (10 ms)
_NO_SPEECH_THRESHOLD = 0.6  # Whisper's own silence rule: no-speech probability above this …
_LOGPROB_THRESHOLD = -1.0  # … and average log-probability below this → no text
_COMPRESSION_LIMIT = 2.4  # zlib ratio above which a text is a repetition loop


@dataclass(frozen=True, slots=True)
class WhisperParams:
    language: str = "ru"
    beam_size: int = 5
    max_new_tokens: int = 128  # faster-whisper 1.2.1 truncates below 64
    pre_roll_ms: int = 200
    end_pause_ms: int = 100  # unvoiced frames that end a stretch (after the VAD's own hangover)
    # Continuous speech before the first early decode, and between the next ones (the session
    # stops us once decided). Measured on the CI corpus (natural-voice announcements): 2500/1000
    # read 31 of 36, 1000/500 read 33 of 36 (a short announcement is read before the network hangs
    # up) at about twice the decode CPU of an announcement call; [asr] early_decode_ms / _every_ms.
    early_decode_ms: int = 1000
    early_every_ms: int = 500
    min_voiced_ms: int = 300  # a stretch flagged voiced for less (hangover included) is a click
    max_segment_ms: int = 10000  # a longer stretch is settled and a new one begun
    pad_ms: int = 1000  # silence the encoder sees after the audio (text ends cleanly)
    min_window_ms: int = 3000  # shortest encoder window (very short words read better)
    min_confidence: float = 0.3  # text below this is what Whisper invents on noise: dropped


@dataclass(frozen=True, slots=True)
class Decoded:
    """One decode: the text and what the model thinks of it."""

    text: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float

    @property
    def confidence(self) -> float:
        """0..1: the mean token probability, lowered (to half at most) as the model leans to "no
        speech" beyond an even chance — real words under noise or clipping often get 0.6-0.9, so
        it is a weak witness — and halved for a repetition loop."""
        c = math.exp(min(0.0, self.avg_logprob))
        c *= 1.0 - 0.5 * max(0.0, self.no_speech_prob - 0.5) / 0.5
        if self.compression_ratio > _COMPRESSION_LIMIT:
            c *= 0.5
        return round(max(0.0, min(1.0, c)), 3)


def is_sound_annotation(text: str) -> bool:
    """Whisper's subtitle habits for what is not speech: «СПОКОЙНАЯ МУЗЫКА» (capitals),
    «(музыка)», «[аплодисменты]», «*смех*»."""
    t = text.strip()
    if t[:1] in "([*♪" and t[-1:] in ")]*♪":
        return True
    letters = [ch for ch in t if ch.isalpha()]
    return len(letters) >= 4 and all(ch.isupper() for ch in letters)


# --- 8 kHz → 16 kHz ------------------------------------------------------------------------------


def _halfband_taps(half_width: int = 32, beta: float = 8.0) -> FloatArray:
    """A Kaiser-windowed sinc low-pass at a quarter of the output rate (the input's Nyquist),
    gain 2 for the zero-stuffed samples."""
    n = np.arange(-half_width, half_width + 1, dtype=np.float64)
    h = np.sinc(n / 2.0) * np.kaiser(len(n), beta)
    return h.astype(np.float32)


_TAPS = _halfband_taps()


def upsample_2x(x: FloatArray) -> FloatArray:
    """Double the sample rate: zero-stuff, then low-pass (no images of the 0–4 kHz band above
    4 kHz, where the model would hear them as hiss)."""
    if len(x) == 0:
        return np.zeros(0, dtype=np.float32)
    y = np.zeros(2 * len(x), dtype=np.float32)
    y[::2] = x
    return np.convolve(y, _TAPS, mode="same").astype(np.float32)


def pcm_to_float16k(pcm: bytes, sample_rate: int) -> FloatArray:
    """slin (s16le mono) at 8 or 16 kHz → float32 at 16 kHz in −1..1."""
    x = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float32) / 32768.0
    if sample_rate == WHISPER_RATE_HZ:
        return x
    if sample_rate == WHISPER_RATE_HZ // 2:
        return upsample_2x(x)
    raise ValueError(f"the Whisper engine takes 8000 or 16000 Hz audio, not {sample_rate}")


# --- the model ------------------------------------------------------------------------------------

_models: dict[tuple[str, int, int], Any] = {}
_models_lock = threading.Lock()


def load_whisper(path: Path, cpu_threads: int = 1, num_workers: int = 1) -> Any:
    """The process-wide ``faster_whisper.WhisperModel`` for ``path`` (int8 on the CPU), loaded on
    first use. Blocking (about a second): call it off the event loop. Raises
    :class:`AsrUnavailable` with the reason."""
    key = (str(Path(path).resolve()), cpu_threads, num_workers)
    with _models_lock:
        model = _models.get(key)
        if model is not None:
            return model
        p = Path(key[0])
        if not p.is_dir():
            raise AsrUnavailable(f"Whisper model not found at {p} (install it: `dialer models pull whisper-base`)")
        if not is_whisper_model(p):
            raise AsrUnavailable(f"Whisper model at {p} is incomplete: model.bin, config.json, tokenizer.json needed")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never ask a hub: the model is on disk
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:  # pragma: no cover - faster-whisper is a dependency
            raise AsrUnavailable(f"the faster-whisper package cannot be imported: {exc}") from None
        try:
            model = WhisperModel(
                str(p),
                device="cpu",
                compute_type="int8",
                cpu_threads=cpu_threads,
                num_workers=num_workers,
                local_files_only=True,
            )
        except Exception as exc:  # ctranslate2 raises RuntimeError/ValueError on bad files
            raise AsrUnavailable(f"Whisper model at {p} cannot be loaded: {exc}") from None
        _models[key] = model
        return model


class WhisperEngine:
    """Whisper decoding of voiced stretches (see the module notes)."""

    name = "whisper"

    def __init__(
        self,
        model_path: Path,
        *,
        cpu_threads: int = 1,
        num_workers: int = 1,
        sample_rate: int = SAMPLE_RATE_HZ,
        params: WhisperParams | None = None,
        model_loader: Callable[[Path, int, int], Any] = load_whisper,
    ) -> None:
        if sample_rate not in (WHISPER_RATE_HZ // 2, WHISPER_RATE_HZ):
            raise ValueError(f"the Whisper engine takes 8000 or 16000 Hz audio, not {sample_rate}")
        self.model_path = model_path
        self.cpu_threads = max(1, cpu_threads)
        self.num_workers = max(1, num_workers)
        self.sample_rate = sample_rate
        self.params = params or WhisperParams()
        self._loader = model_loader
        self._model: Any = None
        self._prompt: list[int] = []
        self._tokenizer: Any = None
        self.decodes = 0  # decodes run by every recognizer of this engine (benches read it)

    def load(self) -> None:
        if self._model is not None:
            return
        model = self._loader(self.model_path, self.cpu_threads, self.num_workers)
        from faster_whisper.tokenizer import Tokenizer

        if not model.model.is_multilingual:
            raise AsrUnavailable(f"the Whisper model at {self.model_path} is English-only")
        tokenizer = Tokenizer(model.hf_tokenizer, True, task="transcribe", language=self.params.language)
        # no prompt, no timestamps: the start-of-transcript sequence and nothing else
        self._prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
        self._tokenizer = tokenizer
        self._model = model

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def open(self) -> WhisperRecognizer:
        if self._model is None:
            raise AsrUnavailable("the Whisper engine is not loaded")
        return WhisperRecognizer(self)

    def describe(self) -> str:
        return f"whisper {self.model_path.name} (int8, {self.cpu_threads} thread(s), beam {self.params.beam_size})"

    def decode(self, audio16k: FloatArray) -> Decoded:
        """Decode one stretch of 16 kHz float audio (blocking; thread-safe)."""
        if self._model is None:
            raise AsrUnavailable("the Whisper engine is not loaded")
        p = self.params
        model = self._model
        features = model.feature_extractor(audio16k)  # (n_mels, frames) of the audio only
        frames = features.shape[-1] + p.pad_ms // 10
        frames = max(frames, p.min_window_ms // 10)
        frames = min(frames + frames % 2, model.feature_extractor.nb_max_frames)
        window = np.zeros((features.shape[0], frames), dtype=np.float32)
        n = min(frames, features.shape[-1])
        window[:, :n] = features[:, :n]
        encoded = model.encode(window)
        # room for the words of this much speech (about 6 tokens a second) and no more: a
        # repetition loop stops early instead of running to the cap
        seconds = len(audio16k) / WHISPER_RATE_HZ
        max_new = min(p.max_new_tokens, max(48, int(12 * seconds) + 24))
        result = model.model.generate(
            encoded,
            [self._prompt],
            beam_size=p.beam_size,
            max_length=len(self._prompt) + max_new,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=[-1],
        )[0]
        self.decodes += 1
        tokens = [t for t in result.sequences_ids[0] if t < self._tokenizer.eot]
        # ctranslate2's score is the sum of log-probabilities over the length (penalty 1)
        avg_logprob = float(result.scores[0]) * len(tokens) / (len(tokens) + 1) if tokens else -10.0
        text = self._tokenizer.decode(tokens).strip()
        data = text.encode("utf-8")
        ratio = len(data) / len(zlib.compress(data)) if data else 0.0
        decoded = Decoded(text, avg_logprob, float(result.no_speech_prob), ratio)
        if decoded.no_speech_prob > _NO_SPEECH_THRESHOLD and decoded.avg_logprob < _LOGPROB_THRESHOLD:
            return Decoded("", avg_logprob, decoded.no_speech_prob, ratio)
        if (
            not any(ch.isalnum() for ch in text)
            or is_sound_annotation(text)
            or decoded.confidence < self.params.min_confidence
        ):
            # what it writes on noise the VAD let through: «СПОКОЙНАЯ МУЗЫКА», «Блин!» (confidence
            # 0.1-0.3 here; real words of the corpus 0.33 and up, bench/bench_asr.py)
            return Decoded("", avg_logprob, decoded.no_speech_prob, ratio)
        return decoded


class WhisperRecognizer:
    """One call's recognizer: buffers voiced stretches and decodes them (see the module notes).
    Not thread-safe: one caller at a time."""

    def __init__(self, engine: WhisperEngine) -> None:
        self._engine: WhisperEngine | None = engine
        self._p = engine.params
        self._bytes_per_ms = engine.sample_rate * BYTES_PER_SAMPLE // 1000
        self._pre: deque[bytes] = deque()
        self._pre_ms = 0
        self._seg: list[bytes] = []
        self._seg_ms = 0
        self._voiced_ms = 0
        self._trailing_ms = 0  # unvoiced audio at the end of the stretch
        self._next_early_ms = self._p.early_decode_ms
        self._audio_ms = 0
        self.decodes = 0  # decodes of this call

    @property
    def in_speech(self) -> bool:
        return bool(self._seg)

    def accept(self, pcm: bytes, voiced: bool) -> Sequence[Hypothesis]:
        if self._engine is None or not pcm:
            return ()
        ms = len(pcm) // self._bytes_per_ms
        self._audio_ms += ms
        if not self._seg:
            if not voiced:
                self._pre.append(pcm)
                self._pre_ms += ms
                while self._pre and self._pre_ms - len(self._pre[0]) // self._bytes_per_ms >= self._p.pre_roll_ms:
                    self._pre_ms -= len(self._pre.popleft()) // self._bytes_per_ms
                return ()
            self._seg = [*self._pre, pcm]
            self._seg_ms = self._pre_ms + ms
            self._pre.clear()
            self._pre_ms = 0
            self._voiced_ms = ms
            self._trailing_ms = 0
            self._next_early_ms = self._p.early_decode_ms
            return ()
        self._seg.append(pcm)
        self._seg_ms += ms
        if voiced:
            self._voiced_ms += ms
            self._trailing_ms = 0
        else:
            self._trailing_ms += ms
        if self._trailing_ms >= self._p.end_pause_ms:
            return self._finish()
        if self._seg_ms >= self._p.max_segment_ms:
            return self._finish()
        if voiced and self._seg_ms - self._trailing_ms >= self._next_early_ms:
            # long continuous speech: read what has been said so far
            self._next_early_ms += self._p.early_every_ms
            return self._decode(final=False)
        return ()

    def _finish(self) -> list[Hypothesis]:
        out = self._decode(final=True) if self._voiced_ms >= self._p.min_voiced_ms else []
        self._seg = []
        self._seg_ms = self._voiced_ms = self._trailing_ms = 0
        return out

    def _decode(self, *, final: bool) -> list[Hypothesis]:
        assert self._engine is not None
        # the stretch without most of its closing pause (a little of it helps the last word)
        keep_ms = self._seg_ms - max(0, self._trailing_ms - 100)
        pcm = b"".join(self._seg)[: keep_ms * self._bytes_per_ms]
        audio = pcm_to_float16k(pcm, self._engine.sample_rate)
        d = self._engine.decode(audio)
        self.decodes += 1
        # a stretch's final result is always given, empty or not (the session waits for the words
        # of a monologue until it comes); an empty partial text says nothing
        if not d.text and not final:
            return []
        return [Hypothesis(d.text, final, d.confidence, self._audio_ms)]

    def flush(self) -> Sequence[Hypothesis]:
        if self._engine is None or not self._seg:
            return ()
        return self._finish()

    def close(self) -> None:
        self._engine = None
        self._seg = []
        self._pre.clear()
