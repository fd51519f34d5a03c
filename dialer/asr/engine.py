"""Vosk adapter: one model per process, one grammar recognizer per call, decoding off the loop.

* The model (hundreds of MB, seconds to load) is loaded once per process, in the executor, and
  shared by every call (:func:`load_model`).
* Each call gets its own ``KaldiRecognizer`` built with a grammar of the catalogue's words that
  the model knows (``[unk]`` added only where the model has it). The grammar is fixed at
  construction: ``SetGrammar`` on a recognizer in mid-utterance aborts the whole process, so it
  is never called.
* Decoding (and matching, which is CPU work too) runs in a bounded ``ThreadPoolExecutor``; an
  ``asyncio.Semaphore`` bounds the jobs in flight or queued so busy calls wait (back-pressure)
  instead of piling unbounded work on the pool. A recognizer is used by one job at a time.
* Partial results are matched as they come; once a match is decisive the recognizer is freed and
  further audio is ignored (decoding stops).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from dialer.analysis.offline import DEFAULT_CONFIRM_PARTIALS, RecognizerUpdate
from dialer.asr.catalogue import Catalogue
from dialer.asr.matcher import Match, PhraseMatcher

# The model cache and the grammar live with the port's Vosk engine; this legacy engine (replaced
# by the call session) shares them so a process never loads a model twice.
from dialer.asr.vosk_engine import BYTES_PER_SAMPLE, DEFAULT_CHUNK_MS, UNK, build_grammar, load_model
from dialer.config import AsrSettings
from dialer.domain.model import CallClass
from dialer.errors import AsrUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class AsrEvent:
    """What the recognizer made of the audio so far.

    ``text`` is the whole call's text (finished utterances plus the current partial one).
    ``match`` is set when the text decides the call (the recognizer has then been freed): a
    partial match must have held for ``confirm_partials`` chunks in a row;
    ``guess`` is the best final-mode match at an utterance end or at :meth:`CallRecognizer.finish`
    — evidence for the fusion, not a decision. ``audio_s`` is how much audio had been decoded.
    """

    text: str
    final: bool
    match: Match | None
    guess: Match | None
    audio_s: float
    utterance: str = ""  # the recognizer's own text for the current (or just finished) utterance


class AsrEngine:
    """Shared ASR service of a worker process. ``await start()`` before :meth:`open_call`."""

    def __init__(
        self,
        model_path: Path,
        matcher: PhraseMatcher,
        *,
        max_workers: int = 2,
        sample_rate: int = 8000,
        max_pending: int | None = None,
        chunk_ms: int = DEFAULT_CHUNK_MS,
        confirm_partials: int = DEFAULT_CONFIRM_PARTIALS,
        model_loader: Callable[[Path], Any] = load_model,
    ) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self.model_path = model_path
        self.matcher = matcher
        self.sample_rate = sample_rate
        self.confirm_partials = max(1, confirm_partials)
        self.max_workers = max_workers
        self.chunk_bytes = max(BYTES_PER_SAMPLE, sample_rate * BYTES_PER_SAMPLE * chunk_ms // 1000)
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="asr")
        # Jobs running plus waiting in the pool's queue; beyond that feed() waits.
        self._slots = asyncio.Semaphore(max_pending if max_pending is not None else 2 * max_workers)
        self._loader = model_loader
        self._model: Any = None
        self._grammar_json = ""
        self.grammar: list[str] = []
        self.dropped_words: list[str] = []
        self._closed = False

    @classmethod
    def from_settings(cls, settings: AsrSettings, matcher: PhraseMatcher) -> AsrEngine:
        if settings.model_path is None:
            raise AsrUnavailable("no speech model configured ([asr] model_path in dialer.toml)")
        return cls(settings.model_path, matcher, max_workers=settings.max_workers, sample_rate=settings.sample_rate)

    async def start(self) -> None:
        """Load the shared model (in the executor) and build the grammar. Raises
        :class:`AsrUnavailable`; the caller logs it once and carries on without ASR."""
        loop = asyncio.get_running_loop()
        self._model = await loop.run_in_executor(self._executor, self._loader, self.model_path)
        self.grammar, self.dropped_words = build_grammar(self._model, self.matcher.catalogue.grammar_phrases())
        if not [g for g in self.grammar if g != UNK]:
            raise AsrUnavailable(
                f"none of the words of {self.matcher.catalogue.source} is known to the model at {self.model_path}"
            )
        if self.dropped_words:
            log.warning(
                "ASR: %d catalogue words unknown to the model are left out of the grammar: %s",
                len(self.dropped_words),
                ", ".join(self.dropped_words[:20]),
            )
        self._grammar_json = json.dumps(self.grammar, ensure_ascii=False)

    @property
    def started(self) -> bool:
        return self._model is not None

    def open_call(self, call_id: str = "") -> CallRecognizer:
        if self._model is None or self._closed:
            raise AsrUnavailable("the ASR engine is not started")
        return CallRecognizer(self, call_id)

    async def aclose(self) -> None:
        """Stop taking work and wait for running jobs (the model stays cached for the process)."""
        self._closed = True
        await asyncio.to_thread(self._executor.shutdown, True)

    async def __aenter__(self) -> AsrEngine:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- used by CallRecognizer ----------------------------------------------------------------

    def _new_recognizer(self) -> Any:
        import vosk

        return vosk.KaldiRecognizer(self._model, float(self.sample_rate), self._grammar_json)

    async def _run(self, fn: Callable[[], T]) -> T:
        async with self._slots:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn)


@dataclass(frozen=True, slots=True)
class _Decoded:
    text: str
    final: bool
    match: Match | None
    guess: Match | None


class CallRecognizer:
    """Streaming recognition of one call. Feed it PCM (s16le mono at the engine's rate) in any
    pieces; it decodes whole chunks. Not shared between tasks: one call, one consumer."""

    def __init__(self, engine: AsrEngine, call_id: str) -> None:
        self.engine = engine
        self.call_id = call_id
        self._rec: Any = None
        self._buf = bytearray()
        self._finals: list[str] = []
        self._bytes_decoded = 0
        self._lock = asyncio.Lock()
        self.decision: Match | None = None
        self._streak_class: CallClass | None = None
        self._streak = 0
        self.closed = False
        self.jobs = 0  # decode jobs run (lets tests and benches see that decoding stopped)

    @property
    def audio_s(self) -> float:
        return self._bytes_decoded / (BYTES_PER_SAMPLE * self.engine.sample_rate)

    @property
    def text(self) -> str:
        return " ".join(self._finals)

    async def feed(self, pcm: bytes) -> AsrEvent | None:
        """Add audio. Returns an event when a chunk was decoded, None while buffering or once the
        call is decided/closed (audio is then dropped: decoding has stopped)."""
        if self.closed:
            return None
        self._buf.extend(pcm)
        if len(self._buf) < self.engine.chunk_bytes:
            return None
        chunk = bytes(self._buf)
        self._buf.clear()
        return await self._decode(chunk, last=False)

    async def finish(self) -> AsrEvent | None:
        """End of audio: decode what is buffered and take the recognizer's final result; the
        event's ``guess`` is the final-mode match of the whole text. Frees the recognizer."""
        if self.closed:
            return None
        chunk = bytes(self._buf)
        self._buf.clear()
        try:
            return await self._decode(chunk, last=True)
        finally:
            self.close()

    def close(self) -> None:
        """Stop decoding and free the recognizer (a job still running keeps its own reference
        and the recognizer is freed when it returns)."""
        self.closed = True
        self._rec = None
        self._buf.clear()

    def _confirm(self, decoded: _Decoded) -> Match | None:
        """Partial hypotheses of a small model flicker: a partial match decides only after the
        same class came out of ``confirm_partials`` chunks in a row. An utterance end or the end
        of audio is the recognizer's settled result and decides at once."""
        m = decoded.match
        if m is None:
            self._streak_class, self._streak = None, 0
            return None
        if decoded.final:
            return m
        if m.call_class == self._streak_class:
            self._streak += 1
        else:
            self._streak_class, self._streak = m.call_class, 1
        return m if self._streak >= self.engine.confirm_partials else None

    async def _decode(self, chunk: bytes, *, last: bool) -> AsrEvent | None:
        async with self._lock:
            if self.closed:
                return None
            engine = self.engine
            finals = list(self._finals)
            rec = self._rec

            def job() -> tuple[Any, _Decoded]:
                r = rec if rec is not None else engine._new_recognizer()
                utterance_end = bool(r.AcceptWaveform(chunk)) if chunk else False
                if last:
                    text, final = json.loads(r.FinalResult()).get("text", ""), True
                elif utterance_end:
                    text, final = json.loads(r.Result()).get("text", ""), True
                else:
                    text, final = json.loads(r.PartialResult()).get("partial", ""), False
                whole = " ".join([*finals, text]).strip()
                # An utterance end is not the end of the call («вызываемый абонент недоступен …
                # ваш звонок переадресован»): only finish() matches in final mode.
                match = engine.matcher.best_match(whole, partial=not last) if whole else None
                guess = engine.matcher.best_match(whole, partial=False) if final and whole else None
                return r, _Decoded(text, final, match, guess)

            r, decoded = await engine._run(job)
            self.jobs += 1
            self._bytes_decoded += len(chunk)
            if not self.closed:
                self._rec = r
            del r
            if decoded.final and decoded.text:
                self._finals.append(decoded.text)
            whole = " ".join([*self._finals, "" if decoded.final else decoded.text]).strip()
            match = self._confirm(decoded)
            if match is not None:
                self.decision = match
                self.close()  # decided: free the recognizer, ignore further audio
            return AsrEvent(
                text=whole,
                final=decoded.final,
                match=match,
                guess=decoded.guess,
                audio_s=self.audio_s,
                utterance=decoded.text,
            )


async def start_engine(
    settings: AsrSettings, matcher: PhraseMatcher, logger: logging.Logger | None = None
) -> AsrEngine | None:
    """The worker's entry point: a started engine, or None after logging once why there is no
    ASR (the other signals still classify calls)."""
    lg = logger or log
    try:
        engine = AsrEngine.from_settings(settings, matcher)
    except AsrUnavailable as exc:
        lg.warning("ASR disabled: %s", exc)
        return None
    try:
        await engine.start()
    except AsrUnavailable as exc:
        lg.warning("ASR disabled: %s", exc)
        await engine.aclose()
        return None
    lg.info("ASR ready: model %s, %d grammar phrases", engine.model_path, len(engine.grammar))
    return engine


class _LiveRecognizer:
    """One call's recognizer in the shape the live pipeline wants (dialer.pipeline.AsyncRecognizer):
    ``accept(pcm)`` → the utterance text so far / finished, ``close()``."""

    def __init__(self, shared: _SharedEngine) -> None:
        self._shared = shared
        self._call: CallRecognizer | None = None
        self._unavailable = False

    async def accept(self, pcm: bytes) -> RecognizerUpdate | None:
        if self._unavailable:
            return None
        if self._call is None:
            engine = await self._shared.get()
            if engine is None:
                self._unavailable = True
                return None
            self._call = engine.open_call()
        ev = await self._call.feed(pcm)
        if ev is None or not ev.utterance:
            return None
        return RecognizerUpdate(ev.utterance, ev.final)

    async def close(self) -> None:
        if self._call is not None:
            self._call.close()


class _SharedEngine:
    """Starts the engine on first use (model loaded in the executor), once; a failure is logged
    once and the calls go on without ASR."""

    def __init__(self, engine: AsrEngine) -> None:
        self._engine = engine
        self._lock = asyncio.Lock()
        self._state: bool | None = None  # None: not tried; True: started; False: unavailable

    async def get(self) -> AsrEngine | None:
        async with self._lock:
            if self._state is None:
                try:
                    await self._engine.start()
                    self._state = True
                except AsrUnavailable as exc:
                    log.warning("ASR disabled: %s", exc)
                    self._state = False
        return self._engine if self._state else None


def live_recognizer_factory(
    model_path: Path, catalogue: Catalogue, *, max_workers: int = 2, sample_rate: int = 8000
) -> Callable[[], _LiveRecognizer]:
    """A per-call recognizer factory for dialer.pipeline over one shared engine (model loaded on
    the first call, in the executor)."""
    shared = _SharedEngine(
        AsrEngine(model_path, PhraseMatcher(catalogue), max_workers=max_workers, sample_rate=sample_rate)
    )
    return lambda: _LiveRecognizer(shared)
