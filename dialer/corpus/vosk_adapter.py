"""A synchronous Vosk recogniser for offline evaluation, behind the :class:`Recognizer` protocol.

The worker uses the ASR engine of :mod:`dialer.asr` (executor, shared model); offline we decode
in line. The model is loaded once per factory; each call gets its own recogniser restricted to a
grammar of the catalogue's words the model knows (plus ``[unk]``), as the issue asks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dialer.analysis.offline import RecognizerFactory, RecognizerUpdate
from dialer.asr.catalogue import Catalogue
from dialer.errors import AsrUnavailable


class VoskRecognizer:
    def __init__(self, model: Any, sample_rate: int, grammar: str) -> None:
        import vosk

        self._rec = vosk.KaldiRecognizer(model, sample_rate, grammar)
        self._partial = ""

    def accept(self, pcm: bytes) -> RecognizerUpdate | None:
        if self._rec.AcceptWaveform(pcm):
            text = str(json.loads(self._rec.Result()).get("text", ""))
            self._partial = ""
            return RecognizerUpdate(text, True) if text else None
        partial = str(json.loads(self._rec.PartialResult()).get("partial", ""))
        if partial == self._partial:
            return None
        self._partial = partial
        return RecognizerUpdate(partial, False)

    def finish(self) -> RecognizerUpdate | None:
        text = str(json.loads(self._rec.FinalResult()).get("text", ""))
        return RecognizerUpdate(text, True) if text else None


def grammar_words(model: Any, catalogue: Catalogue) -> list[str]:
    """Catalogue phrases cut to the words the model knows, plus ``[unk]``."""
    known: dict[str, bool] = {}

    def knows(word: str) -> bool:
        if word not in known:
            known[word] = model.vosk_model_find_word(word) >= 0
        return known[word]

    phrases = []
    for p in catalogue.phrases:
        kept = [w for w in p.words if knows(w)]
        if kept:
            phrases.append(" ".join(kept))
    out = sorted(set(phrases))
    # «[unk]» soaks up words outside the grammar, where the model has it (not every model does)
    return [*out, "[unk]"] if knows("[unk]") else out


def vosk_factory(model_path: Path, catalogue: Catalogue, sample_rate: int = 8000) -> RecognizerFactory:
    try:
        import vosk
    except ImportError:
        raise AsrUnavailable("the vosk package is not installed") from None
    vosk.SetLogLevel(-1)
    try:
        model = vosk.Model(str(model_path))
    except Exception as exc:  # vosk raises a bare Exception when the directory is not a model
        raise AsrUnavailable(f"{model_path}: cannot load the speech model ({exc})") from None
    grammar = json.dumps(grammar_words(model, catalogue), ensure_ascii=False)

    def make() -> VoskRecognizer:
        return VoskRecognizer(model, sample_rate, grammar)

    return make
