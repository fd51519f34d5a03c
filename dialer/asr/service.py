"""The worker's speech service: one engine (loaded once, off the loop), decoding in a bounded
executor, one :class:`RecognizerChannel` per call that carries the session's recognizer commands
in order and feeds the hypotheses back on the event loop.

* Back-pressure: an ``asyncio.Semaphore`` bounds the decode jobs running or queued in the pool, so
  busy calls wait instead of piling unbounded work on it.
* A call's frames wait in a bounded buffer; when decoding falls behind by more than
  ``max_buffer_frames`` the oldest audio is dropped (and counted) rather than letting one call
  queue unbounded work — the session then leans on its other signals.
* Consecutive frames are decoded in one job (fewer hops across threads; same order, same result).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from dialer.asr.port import Hypothesis, Recognizer, RecognizerEngine
from dialer.errors import AsrUnavailable
from dialer.session.inputs import (
    CloseRecognizer,
    FlushRecognizer,
    Input,
    Recognize,
    Recognized,
    RecognizerFlushed,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
# 4 s of audio per call: a Whisper decode of a long stretch takes up to a second or so of CPU on a
# busy machine, and the frames that arrive meanwhile must wait, not be dropped
DEFAULT_MAX_BUFFER_FRAMES = 200
RecognizerCommand = Recognize | FlushRecognizer | CloseRecognizer


class AsrService:
    """``await start()`` loads the engine; then :meth:`open_channel` per call while :attr:`ready`."""

    def __init__(
        self,
        engine: RecognizerEngine,
        *,
        max_workers: int = 2,
        max_pending: int | None = None,
        max_buffer_frames: int = DEFAULT_MAX_BUFFER_FRAMES,
    ) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self.engine = engine
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="asr")
        self._slots = asyncio.Semaphore(max_pending if max_pending is not None else 2 * max_workers)
        self.ready = False
        self._closed = False
        self.dropped_frames = 0
        self.max_buffer_frames = max_buffer_frames
        self.jobs = 0  # METRICS: decode jobs waiting or running (dialer_asr_queue_depth)
        self.on_decode_s: Callable[[float], None] | None = None  # METRICS: each decode's wall time

    async def start(self) -> bool:
        """Load the model in the executor. False (said once in the log) when it cannot be used:
        the calls then go on without speech recognition."""
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self.engine.load)
        except AsrUnavailable as exc:
            log.warning("speech recognition disabled: %s", exc)
            return False
        self.ready = True
        log.info("speech recognition ready: %s engine", self.engine.name)
        return True

    def open_channel(
        self, on_input: Callable[[Input], None], *, name: str, max_buffer_frames: int | None = None
    ) -> RecognizerChannel:
        if not self.ready or self._closed:
            raise AsrUnavailable("the speech service is not ready")
        frames = max_buffer_frames if max_buffer_frames is not None else self.max_buffer_frames
        return RecognizerChannel(self, self.engine.open(), on_input, name=name, max_buffer_frames=frames)

    async def run(self, fn: Callable[[], T]) -> T:
        self.jobs += 1
        try:
            async with self._slots:
                return await asyncio.get_running_loop().run_in_executor(self._executor, self._timed, fn)
        finally:
            self.jobs -= 1

    def _timed(self, fn: Callable[[], T]) -> T:
        """In the executor thread: the decode, timed for the metrics."""
        started = time.perf_counter()
        try:
            return fn()
        finally:
            if self.on_decode_s is not None:
                self.on_decode_s(time.perf_counter() - started)

    async def aclose(self) -> None:
        """Stop taking work and wait for running jobs."""
        self._closed = True
        await asyncio.to_thread(self._executor.shutdown, True)


class RecognizerChannel:
    """One call's recognizer, driven from the event loop. :meth:`submit` never blocks; the
    channel's own task decodes in the service's executor and calls ``on_input`` with each
    :class:`Recognized` (and :class:`RecognizerFlushed` after a flush)."""

    def __init__(
        self,
        service: AsrService,
        recognizer: Recognizer,
        on_input: Callable[[Input], None],
        *,
        name: str,
        max_buffer_frames: int,
    ) -> None:
        self._service = service
        self._rec = recognizer
        self._on_input = on_input
        self._pending: deque[RecognizerCommand] = deque()
        self._frames_pending = 0
        self._max_frames = max_buffer_frames
        self._wake = asyncio.Event()
        self._closing = False
        self._broken = False  # the decoder raised: no more decoding, flushes answer at once
        self.dropped_frames = 0
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"asr-{name}")

    def submit(self, cmd: RecognizerCommand) -> None:
        if self._closing:
            return
        if isinstance(cmd, Recognize):
            if self._frames_pending >= self._max_frames:
                self._drop_oldest_frame()
            self._frames_pending += 1
        elif isinstance(cmd, CloseRecognizer):
            self._closing = True
        self._pending.append(cmd)
        self._wake.set()

    def _drop_oldest_frame(self) -> None:
        for i, queued in enumerate(self._pending):
            if isinstance(queued, Recognize):
                del self._pending[i]
                self._frames_pending -= 1
                self.dropped_frames += 1
                self._service.dropped_frames += 1
                return

    async def aclose(self) -> None:
        """Close the recognizer (after what is queued) and wait for the channel's task."""
        self.submit(CloseRecognizer())
        await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        try:
            while True:
                if not self._pending:
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                cmd = self._pending.popleft()
                if isinstance(cmd, CloseRecognizer):
                    return
                if isinstance(cmd, FlushRecognizer):
                    self._deliver(await self._decode(self._rec.flush))
                    self._on_input(RecognizerFlushed())
                    continue
                batch = [cmd]
                while self._pending and isinstance(self._pending[0], Recognize):
                    batch.append(self._pending.popleft())  # type: ignore[arg-type]
                self._frames_pending -= len(batch)
                self._deliver(await self._decode(functools.partial(_accept_all, self._rec, batch)))
        finally:
            self._rec.close()  # cheap, and no decode job of this channel is running any more

    async def _decode(self, fn: Callable[[], Sequence[Hypothesis]]) -> Sequence[Hypothesis]:
        if self._broken:
            return ()
        try:
            return await self._service.run(fn)
        except Exception:  # a broken decoder must not take the call down: the session decides without it
            log.exception("recognizer failed; the call goes on without speech recognition")
            self._broken = True
            return ()

    def _deliver(self, hyps: Sequence[Hypothesis]) -> None:
        for h in hyps:
            self._on_input(Recognized(h))


def _accept_all(rec: Recognizer, batch: list[Recognize]) -> list[Hypothesis]:
    out: list[Hypothesis] = []
    for cmd in batch:
        out.extend(rec.accept(cmd.pcm, cmd.voiced))
    return out
