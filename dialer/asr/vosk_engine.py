"""The Vosk engine behind the recognizer port (:mod:`dialer.asr.port`): streaming grammar decoding.

* One ``vosk.Model`` per process and path (:func:`load_model`), loaded once (seconds, hundreds of
  MB) by :meth:`VoskEngine.load`, which the caller runs off the event loop.
* Each call gets its own ``KaldiRecognizer`` built with a grammar of the catalogue's words the
  model knows (:func:`build_grammar`; ``[unk]`` added only where the model has it). The grammar
  is fixed at construction: ``SetGrammar`` on a recognizer in mid-utterance aborts the whole
  process, so it is never called.
* Audio is decoded in chunks of :data:`DEFAULT_CHUNK_MS` (fewer hops, still ~5 partials a
  second); a changed partial text is a ``final=False`` hypothesis, the recognizer's utterance end
  a ``final=True`` one, and :meth:`VoskRecognizer.flush` takes ``FinalResult``.

Decoding only: no phrase matching, no confirmation, no decision (the call session does those).
The ``voiced`` flag is ignored: Vosk has its own endpointing and grammar decoding is cheap.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from dialer.asr.catalogue import Catalogue
from dialer.asr.port import Hypothesis
from dialer.audio.frames import SAMPLE_RATE_HZ
from dialer.errors import AsrUnavailable

log = logging.getLogger(__name__)

UNK = "[unk]"
BYTES_PER_SAMPLE = 2  # signed 16-bit little-endian mono PCM (AudioSocket slin)
DEFAULT_CHUNK_MS = 200  # audio handed to the decoder at once

_models: dict[str, Any] = {}
_models_lock = threading.Lock()


def load_model(path: Path) -> Any:
    """The process-wide ``vosk.Model`` for ``path``, loaded on first use. Blocking (seconds):
    call it off the event loop. Raises :class:`AsrUnavailable` with the reason."""
    key = str(Path(path).resolve())
    with _models_lock:
        model = _models.get(key)
        if model is not None:
            return model
        p = Path(key)
        if not p.is_dir():
            raise AsrUnavailable(f"Vosk model not found at {p} (install one: `dialer models pull {p.name}`)")
        if not (p / "am").is_dir() or not (p / "conf").is_dir():
            raise AsrUnavailable(f"Vosk model at {p} is incomplete: no am/ or conf/ directory")
        try:
            import vosk
        except ImportError as exc:  # pragma: no cover - vosk is a dependency
            raise AsrUnavailable(f"the vosk package cannot be imported: {exc}") from None
        vosk.SetLogLevel(-1)
        try:
            model = vosk.Model(model_path=key)  # a str: vosk rejects Path objects
        except Exception as exc:  # vosk raises a bare Exception("Failed to create a model")
            raise AsrUnavailable(f"Vosk model at {p} cannot be loaded: {exc}") from None
        _models[key] = model
        return model


def build_grammar(model: Any, phrases: list[str]) -> tuple[list[str], list[str]]:
    """The recognizer grammar for ``phrases`` restricted to ``model``'s vocabulary, and the words
    left out. A word missing as written is tried with «ё» spelt «е». ``[unk]`` is appended only
    when the model has it (a grammar naming an absent word would only produce warnings)."""
    known: dict[str, str | None] = {}

    def resolve(word: str) -> str | None:
        if word not in known:
            found: str | None = None
            for cand in dict.fromkeys((word, word.replace("ё", "е"))):
                if model.vosk_model_find_word(cand) >= 0:
                    found = cand
                    break
            known[word] = found
        return known[word]

    grammar: list[str] = []
    for phrase in phrases:
        kept = [w for w in (resolve(w) for w in phrase.split()) if w]
        text = " ".join(kept)
        if text and text not in grammar:
            grammar.append(text)
    dropped = sorted(w for w, found in known.items() if found is None)
    if model.vosk_model_find_word(UNK) >= 0:
        grammar.append(UNK)
    return grammar, dropped


class VoskRecognizer:
    """One call's streaming recognizer (see the port). Not thread-safe: one caller at a time."""

    def __init__(self, rec: Any, sample_rate: int, chunk_ms: int) -> None:
        self._rec: Any = rec
        self._rate = sample_rate
        self._chunk = max(BYTES_PER_SAMPLE, sample_rate * BYTES_PER_SAMPLE * chunk_ms // 1000)
        self._buf = bytearray()
        self._partial = ""  # the last partial text reported in the current utterance
        self._bytes = 0  # audio handed to the decoder
        self.chunks = 0  # decoder calls (tests and benches see that decoding stopped)

    @property
    def audio_ms(self) -> int:
        return self._bytes * 1000 // (BYTES_PER_SAMPLE * self._rate)

    def accept(self, pcm: bytes, voiced: bool) -> Sequence[Hypothesis]:
        if self._rec is None:
            return ()
        self._buf.extend(pcm)
        if len(self._buf) < self._chunk:
            return ()
        chunk = bytes(self._buf)
        self._buf.clear()
        return self._decode(chunk)

    def _decode(self, chunk: bytes) -> list[Hypothesis]:
        self.chunks += 1
        self._bytes += len(chunk)
        if self._rec.AcceptWaveform(chunk):
            return self._final(str(json.loads(self._rec.Result()).get("text", "")))
        partial = str(json.loads(self._rec.PartialResult()).get("partial", ""))
        if partial == self._partial:
            return []
        self._partial = partial
        return [Hypothesis(partial, False, None, self.audio_ms)]

    def _final(self, text: str) -> list[Hypothesis]:
        # An empty utterance end is reported only when a partial text is outstanding, so the
        # session learns that the words it saw were withdrawn.
        had_partial = bool(self._partial)
        self._partial = ""
        if text or had_partial:
            return [Hypothesis(text, True, None, self.audio_ms)]
        return []

    def flush(self) -> Sequence[Hypothesis]:
        if self._rec is None:
            return ()
        if self._buf:
            self.chunks += 1
            self._bytes += len(self._buf)
            self._rec.AcceptWaveform(bytes(self._buf))
            self._buf.clear()
        return self._final(str(json.loads(self._rec.FinalResult()).get("text", "")))

    def close(self) -> None:
        self._rec = None
        self._buf.clear()


class VoskEngine:
    """Vosk grammar decoding with one shared model (see the module notes)."""

    name = "vosk"

    def __init__(
        self,
        model_path: Path,
        catalogue: Catalogue,
        *,
        sample_rate: int = SAMPLE_RATE_HZ,
        chunk_ms: int = DEFAULT_CHUNK_MS,
        model_loader: Callable[[Path], Any] = load_model,
    ) -> None:
        self.model_path = model_path
        self.catalogue = catalogue
        self.sample_rate = sample_rate
        self.chunk_ms = chunk_ms
        self._loader = model_loader
        self._model: Any = None
        self._grammar_json = ""
        self.grammar: list[str] = []

    def load(self) -> None:
        if self._model is not None:
            return
        model = self._loader(self.model_path)
        grammar, dropped = build_grammar(model, self.catalogue.grammar_phrases())
        if not [g for g in grammar if g != UNK]:
            raise AsrUnavailable(
                f"none of the words of {self.catalogue.source} is known to the Vosk model at {self.model_path}"
            )
        if dropped:
            log.warning(
                "ASR: %d catalogue words unknown to the model are left out of the grammar: %s",
                len(dropped),
                ", ".join(dropped[:20]),
            )
        self.grammar = grammar
        self._grammar_json = json.dumps(grammar, ensure_ascii=False)
        self._model = model

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def open(self) -> VoskRecognizer:
        if self._model is None:
            raise AsrUnavailable("the Vosk engine is not loaded")
        import vosk

        rec = vosk.KaldiRecognizer(self._model, float(self.sample_rate), self._grammar_json)
        return VoskRecognizer(rec, self.sample_rate, self.chunk_ms)

    def describe(self) -> str:
        return f"vosk {self.model_path.name} ({len(self.grammar)} grammar phrases)"
