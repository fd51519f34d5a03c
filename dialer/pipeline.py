"""The live per-call audio pipeline the worker feeds from AudioSocket.

Tone/VAD analysis and fingerprint matching against the known recordings run in line (a few
Goertzel filters and an FFT or two per 20 ms frame: cheap); speech
recognition, when a model is loaded, runs in the ASR engine's bounded executor and hands its text
back through :meth:`CallAnalysis.feed_text`, then pokes the worker with ``on_change``. Frames are
handed to the recogniser through a small bounded queue: if decoding falls behind, the oldest audio
is dropped rather than letting one call pile up unbounded work (the decision then leans on the
other signals).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from typing import Protocol

from dialer.analysis.offline import CallAnalysis, RecognizerUpdate
from dialer.asr.catalogue import Catalogue
from dialer.audio.fingerprint import FingerprintLibrary
from dialer.audio.frames import FRAME_MS
from dialer.audio.toneplan import TonePlan
from dialer.domain.fusion import AudioFacts, PhraseFacts

log = logging.getLogger(__name__)

# Re-evaluate time-based facts (silence after answer, speech length) at least this often.
REFRESH_EVERY_FRAMES = 5
ASR_QUEUE_FRAMES = 100  # 2 s of audio


class AsyncRecognizer(Protocol):
    """One call's recogniser whose decoding runs off the event loop."""

    async def accept(self, pcm: bytes) -> RecognizerUpdate | None: ...

    async def close(self) -> None: ...


AsyncRecognizerFactory = Callable[[], AsyncRecognizer]


class LivePipeline:
    def __init__(
        self,
        attempt_id: uuid.UUID,
        plan: TonePlan,
        on_change: Callable[[], None],
        *,
        catalogue: Catalogue | None = None,
        recognizer_factory: AsyncRecognizerFactory | None = None,
        fingerprints: FingerprintLibrary | None = None,
    ) -> None:
        self.attempt_id = attempt_id
        self.analysis = CallAnalysis(
            plan, catalogue if recognizer_factory is not None else None, fingerprints=fingerprints
        )
        self._on_change = on_change
        self._frames = 0
        self._queue: asyncio.Queue[bytes] | None = None
        self._task: asyncio.Task[None] | None = None
        self.dropped_asr_frames = 0
        if recognizer_factory is not None and catalogue is not None:
            self._queue = asyncio.Queue(ASR_QUEUE_FRAMES)
            self._task = asyncio.get_running_loop().create_task(
                self._decode(recognizer_factory()), name=f"asr-{attempt_id}"
            )

    def feed_frame(self, pcm: bytes, frame_index: int) -> bool:
        known = self.analysis.fingerprint
        observations = self.analysis.feed_audio(pcm, frame_index)
        recognised = self.analysis.fingerprint is not known
        if recognised:
            log.info("attempt %s: known recording %s", self.attempt_id, self.analysis.fingerprint)
        self._frames += 1
        if self._queue is not None:
            if self._queue.full():
                self._queue.get_nowait()
                self.dropped_asr_frames += 1
            self._queue.put_nowait(pcm)
        return bool(observations) or recognised or self._frames % REFRESH_EVERY_FRAMES == 0

    def mark_answered(self) -> None:
        self.analysis.mark_answered(self.analysis.audio_clock_ms // FRAME_MS)

    def audio_facts(self) -> AudioFacts:
        return self.analysis.audio_facts()

    def phrase_facts(self) -> PhraseFacts:
        return self.analysis.phrase_facts()

    def stop(self) -> None:
        """The call is decided: stop decoding now (no more audio goes to the recogniser)."""
        self._queue = None
        if self._task is not None:
            self._task.cancel()

    async def aclose(self) -> None:
        self.stop()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _decode(self, recognizer: AsyncRecognizer) -> None:
        try:
            while self._queue is not None:
                queue = self._queue
                pcm = await queue.get()
                update = await recognizer.accept(pcm)
                if update is not None and self._queue is not None:
                    self.analysis.feed_text(update.text, update.final)
                    self._on_change()
        finally:
            await recognizer.close()


def pipeline_factory(
    plan: TonePlan,
    catalogue: Catalogue | None = None,
    recognizer_factory: AsyncRecognizerFactory | None = None,
    fingerprints: FingerprintLibrary | None = None,
) -> Callable[[uuid.UUID, Callable[[], None]], LivePipeline]:
    """One pipeline per call; the catalogue, recogniser factory and fingerprint library are
    loaded once and shared."""

    def make(attempt_id: uuid.UUID, on_change: Callable[[], None]) -> LivePipeline:
        return LivePipeline(
            attempt_id,
            plan,
            on_change,
            catalogue=catalogue,
            recognizer_factory=recognizer_factory,
            fingerprints=fingerprints,
        )

    return make
