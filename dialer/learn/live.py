"""The worker learning by itself (``[learn] live = true``): unknown announcements collected while it runs.

The learning recorder (:func:`learning_recorder`) writes each call as a call recording and keeps
only those that may hold an unknown announcement (:func:`~dialer.learn.segments.worth_learning`:
no known recording decided them, nobody was handed to an operator, nothing answered that could be
a person) — unless ``[recording]`` is on, whose recordings are used as they are. Every
``collect_every_s`` the :class:`LiveCollector` runs the same collection as ``dialer announcements
collect`` over them, in a thread, with the fingerprint library as it is on disk then. Collected
calls are remembered by the store and never collected twice; the recordings age out by the
recorder's own retention.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from dialer.audio.fingerprint import load_library
from dialer.config import LearnSettings, RecordingSettings, RecordUntil, Settings
from dialer.domain.numbering import NumberingIndex
from dialer.errors import DialerError
from dialer.learn.collect import CollectReport, collect
from dialer.learn.segments import worth_learning
from dialer.learn.store import LearnStore
from dialer.session.recording import Recorder
from dialer.session.session import SessionSetup

log = logging.getLogger(__name__)

INCOMING_DIR = "incoming"
INCOMING_KEEP_DAYS = 7  # calls not collected by then (the worker stopped for a week) age out


class _Stopped(Exception):
    """The worker stops: a collection pass ends where it is (its calls are collected next time)."""


def learning_settings(learn: LearnSettings) -> RecordingSettings:
    """Where and how the learning recorder writes: audio until the decision only, within the
    learning store's disk budget."""
    return RecordingSettings(
        enabled=True,
        dir=learn.dir / INCOMING_DIR,
        until=RecordUntil.DECISION,
        keep_days=INCOMING_KEEP_DAYS,
        max_mb=learn.max_mb,
    )


def learning_recorder(settings: Settings, clock: Callable[[], datetime]) -> tuple[Recorder, Path]:
    """The recorder the worker uses and the directory the collector reads: the call recordings
    when ``[recording]`` is on, else a recorder that keeps only what is worth learning."""
    if settings.recording.enabled:
        return Recorder(settings.recording, clock=clock), settings.recording.dir
    rec = Recorder(learning_settings(settings.learn), clock=clock, keep=worth_learning)
    return rec, rec.settings.dir


class LiveCollector:
    """Collects unknown announcements from ``root`` every ``every_s``; ``start()``, ``await aclose()``."""

    def __init__(
        self,
        root: Path,
        settings: LearnSettings,
        setup: Callable[[], SessionSetup],
        *,
        clock: Callable[[], datetime],
        numbering: Callable[[], Awaitable[NumberingIndex | None]],
        library_dir: Path | None,
    ) -> None:
        self.root = root
        self.settings = settings
        self._setup = setup
        self._clock = clock
        self._numbering = numbering
        self._library_dir = library_dir
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.passes = 0
        self.last: CollectReport | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="learn-collector")

    async def aclose(self) -> None:
        """Stop: a pass under way ends at its next call (nothing half-saved: the state is saved at
        the end of a pass only)."""
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                await asyncio.wait_for(self._stop.wait(), self.settings.collect_every_s)
                return
            except TimeoutError:
                pass
            await self.collect_once()

    async def collect_once(self) -> CollectReport | None:
        """One pass; a failure is one log line (the next pass tries again), never the worker's end."""
        if not self.root.is_dir():
            return None  # no call recorded yet
        try:
            numbering = await self._numbering()
        except DialerError as exc:
            log.warning("learning: carriers unknown this pass (numbering registry not readable: %s)", exc)
            numbering = None
        try:
            rep = await asyncio.to_thread(self._pass, numbering)
        except _Stopped:
            return None
        except (DialerError, OSError) as exc:
            log.warning("learning: collection failed, tried again in %d s: %s", self.settings.collect_every_s, exc)
            return None
        self.passes += 1
        self.last = rep
        if rep.kept or rep.auto_approved:
            log.info(
                "learning: %d new call(s), %d unknown announcement(s) kept, %d new cluster(s)%s",
                rep.calls,
                rep.kept,
                rep.new_clusters,
                f", approved automatically: {', '.join(rep.auto_approved)}" if rep.auto_approved else "",
            )
        return rep

    def _pass(self, numbering: NumberingIndex | None) -> CollectReport:
        """In a thread: the library as it is on disk now (what was approved since is not collected
        again), then the collection."""
        return collect(
            self.root,
            self._setup(),
            LearnStore(self.settings.dir),
            now=self._clock(),
            numbering=numbering,
            auto_approve_min_calls=self.settings.auto_approve_min_calls,
            library_dir=self._library_dir,
            progress=self._check_stop,
        )

    def _check_stop(self, _n: int) -> None:
        if self._stop.is_set():
            raise _Stopped


def current_setup(base: SessionSetup, library_dir: Path | None) -> Callable[[], SessionSetup]:
    """The worker's setup with the fingerprint library read from disk anew (off the event loop)."""

    def make() -> SessionSetup:
        if library_dir is None or not library_dir.is_dir():
            return replace(base, fingerprints=None)
        return replace(base, fingerprints=load_library(library_dir) or None)

    return make
