"""A Vosk recognizer behind the recognizer port (:mod:`dialer.asr.port`), decoding only, for
``dialer eval --model``: the same process-wide model (:func:`~dialer.asr.engine.load_model`), the
same grammar of catalogue words the model knows (:func:`~dialer.asr.engine.build_grammar`) and the
same decoding chunk (:data:`~dialer.asr.engine.DEFAULT_CHUNK_MS`) as the live engine.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dialer.asr.catalogue import Catalogue
from dialer.asr.engine import BYTES_PER_SAMPLE, DEFAULT_CHUNK_MS, UNK, build_grammar, load_model
from dialer.asr.port import Hypothesis
from dialer.errors import AsrUnavailable


class VoskRecognizer:
    def __init__(self, model: Any, sample_rate: int, grammar_json: str, chunk_ms: int = DEFAULT_CHUNK_MS) -> None:
        import vosk

        self._rec: Any = vosk.KaldiRecognizer(model, float(sample_rate), grammar_json)
        self._chunk = max(BYTES_PER_SAMPLE, sample_rate * BYTES_PER_SAMPLE * chunk_ms // 1000)
        self._rate = sample_rate
        self._buf = bytearray()
        self._partial = ""
        self._decoded = 0

    def _audio_ms(self) -> int:
        return self._decoded * 1000 // (BYTES_PER_SAMPLE * self._rate)

    def accept(self, pcm: bytes, voiced: bool) -> list[Hypothesis]:
        if self._rec is None:
            return []
        self._buf.extend(pcm)
        if len(self._buf) < self._chunk:
            return []
        chunk = bytes(self._buf)
        self._buf.clear()
        self._decoded += len(chunk)
        if self._rec.AcceptWaveform(chunk):
            self._partial = ""
            text = str(json.loads(self._rec.Result()).get("text", ""))
            return [Hypothesis(text, True, None, self._audio_ms())] if text else []
        partial = str(json.loads(self._rec.PartialResult()).get("partial", ""))
        if partial == self._partial:
            return []
        self._partial = partial
        return [Hypothesis(partial, False, None, self._audio_ms())]

    def flush(self) -> list[Hypothesis]:
        if self._rec is None:
            return []
        if self._buf:
            self._rec.AcceptWaveform(bytes(self._buf))
            self._decoded += len(self._buf)
            self._buf.clear()
        text = str(json.loads(self._rec.FinalResult()).get("text", ""))
        return [Hypothesis(text, True, None, self._audio_ms())] if text else []

    def close(self) -> None:
        self._rec = None


class VoskEngine:
    """One Vosk model (loaded once) and a grammar recognizer per call."""

    name = "vosk"

    def __init__(self, model_path: Path, catalogue: Catalogue, sample_rate: int = 8000) -> None:
        self._path = model_path
        self._catalogue = catalogue
        self._rate = sample_rate
        self._model: Any = None
        self._grammar_json = ""

    def load(self) -> None:
        model = load_model(self._path)
        grammar, _dropped = build_grammar(model, self._catalogue.grammar_phrases())
        if not [g for g in grammar if g != UNK]:
            raise AsrUnavailable(f"none of the words of {self._catalogue.source} is known to the model at {self._path}")
        self._model, self._grammar_json = model, json.dumps(grammar, ensure_ascii=False)

    def open(self) -> VoskRecognizer:
        if self._model is None:
            raise AsrUnavailable("the Vosk engine is not loaded")
        return VoskRecognizer(self._model, self._rate, self._grammar_json)
