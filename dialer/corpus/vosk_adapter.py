"""A synchronous Vosk recogniser for offline evaluation, behind the :class:`Recognizer` protocol.

The worker decodes through :mod:`dialer.asr.engine` (executor, back-pressure); offline we decode
in line but reuse its pieces so the evaluation measures what the worker does: the same
process-wide model (:func:`~dialer.asr.engine.load_model`), the same grammar of catalogue words
the model knows (:func:`~dialer.asr.engine.build_grammar`) and the same decoding chunk
(:data:`~dialer.asr.engine.DEFAULT_CHUNK_MS`), which sets how often partial text appears.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dialer.analysis.offline import RecognizerFactory, RecognizerUpdate
from dialer.asr.catalogue import Catalogue
from dialer.asr.vosk_engine import BYTES_PER_SAMPLE, DEFAULT_CHUNK_MS, UNK, build_grammar, load_model
from dialer.errors import AsrUnavailable


class VoskRecognizer:
    def __init__(self, model: Any, sample_rate: int, grammar_json: str, chunk_ms: int = DEFAULT_CHUNK_MS) -> None:
        import vosk

        self._rec = vosk.KaldiRecognizer(model, float(sample_rate), grammar_json)
        self._chunk = max(BYTES_PER_SAMPLE, sample_rate * BYTES_PER_SAMPLE * chunk_ms // 1000)
        self._buf = bytearray()
        self._partial = ""

    def accept(self, pcm: bytes) -> RecognizerUpdate | None:
        self._buf.extend(pcm)
        if len(self._buf) < self._chunk:
            return None
        chunk = bytes(self._buf)
        self._buf.clear()
        if self._rec.AcceptWaveform(chunk):
            self._partial = ""
            text = str(json.loads(self._rec.Result()).get("text", ""))
            return RecognizerUpdate(text, True) if text else None
        partial = str(json.loads(self._rec.PartialResult()).get("partial", ""))
        if partial == self._partial:
            return None
        self._partial = partial
        return RecognizerUpdate(partial, False)

    def finish(self) -> RecognizerUpdate | None:
        if self._buf:
            self._rec.AcceptWaveform(bytes(self._buf))
            self._buf.clear()
        text = str(json.loads(self._rec.FinalResult()).get("text", ""))
        return RecognizerUpdate(text, True) if text else None


def vosk_factory(model_path: Path, catalogue: Catalogue, sample_rate: int = 8000) -> RecognizerFactory:
    """Load the model once (blocking, seconds); each call of the factory makes a recogniser."""
    model = load_model(model_path)
    grammar, _dropped = build_grammar(model, catalogue.grammar_phrases())
    if not [g for g in grammar if g != UNK]:
        raise AsrUnavailable(f"none of the words of {catalogue.source} is known to the model at {model_path}")
    grammar_json = json.dumps(grammar, ensure_ascii=False)

    def make() -> VoskRecognizer:
        return VoskRecognizer(model, sample_rate, grammar_json)

    return make
