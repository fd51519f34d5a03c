"""The far end's script runner: a scenario's steps played against one call.

Signalling steps (ring, progress, answer, busy, congestion, hang-up) become the call's
transitions; media steps (wait, silence, tones, clips) pass at the real pace, scaled, as 20 ms
frames once media flows (after progress or an answer) and as plain time before. The script runs
on absolute deadlines so that loop lateness never piles up from step to step (a loaded test box
must not reorder a hang-up and a dialplan Wait).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Protocol

from dialer.audio.frames import SAMPLE_RATE_HZ
from dialer.sim import scenarios as sc
from dialer.sim.audio import FRAME_S, FrameChunker, clip, silence_chunks, tone_chunks, tone_duration_s
from dialer.sim.channels import Cause

_BYTES_PER_S = 2 * SAMPLE_RATE_HZ  # 16-bit slin


class FarEndCall(Protocol):
    """The call's side the script drives (SimCall implements it)."""

    @property
    def finished(self) -> bool: ...
    def ring(self) -> None: ...
    def progress(self) -> None: ...
    def answer(self) -> None: ...
    def reject_control(self, cause: int) -> None: ...
    def far_hangup(self, cause: int) -> None: ...
    def deliver(self, frame: bytes) -> None: ...


class FarEndHost(Protocol):
    """The simulator's side of the script (SimAsterisk implements it)."""

    @property
    def audiosocket_addr(self) -> tuple[str, int] | None: ...
    def drop_ami_connections(self) -> None: ...


class FarEnd:
    """One call's far end: its media clock and chunking, shared by every script run on the call
    (a Redirect replaces the script, not the clock)."""

    def __init__(self, call: FarEndCall, host: FarEndHost, loop: asyncio.AbstractEventLoop, scale: float) -> None:
        self._call = call
        self._host = host
        self._loop = loop
        self._scale = scale
        self._media_flowing = False
        self._chunker = FrameChunker()
        self._next_frame_at = 0.0
        self._script_at = 0.0

    async def run(self, steps: tuple[sc.Step, ...]) -> None:
        self._script_at = self._loop.time()
        for step in steps:
            if self._call.finished:
                return
            if not self._signal(step):
                await self._media(step)

    def _signal(self, step: sc.Step) -> bool:
        """Play a signalling step; False when ``step`` is a media step."""
        call = self._call
        if isinstance(step, sc.Ring):
            call.ring()
        elif isinstance(step, sc.Progress):
            call.progress()
        elif isinstance(step, sc.Answer):
            call.answer()
        elif isinstance(step, sc.Busy):
            call.reject_control(Cause.USER_BUSY)
        elif isinstance(step, sc.Congestion):
            call.reject_control(Cause.NORMAL_CIRCUIT_CONGESTION)
        elif isinstance(step, sc.Hangup):
            self.flush()
            call.far_hangup(step.cause)
        elif isinstance(step, sc.DropAmi):
            self._host.drop_ami_connections()
        else:
            return False
        return True

    async def _media(self, step: sc.Step) -> None:
        if isinstance(step, sc.Wait):
            await self._sleep_script(step.seconds)
            self._next_frame_at = self._script_at
        elif isinstance(step, sc.Silence):
            await self._stream(silence_chunks(step.seconds), step.seconds)
        elif isinstance(step, sc.Tone):
            await self._stream(tone_chunks(step.name, step.seconds), tone_duration_s(step.name, step.seconds))
        elif isinstance(step, sc.Play):
            pcm = clip(step.clip).pcm
            for _ in range(step.times):
                await self._stream(iter((pcm,)), len(pcm) / _BYTES_PER_S, playback=True)

    async def _stream(self, chunks: Iterator[bytes], duration_s: float, *, playback: bool = False) -> None:
        """Media at the real pace (scaled); before progress/answer nothing flows, time passes.

        A file playback ends with its own short frame (frames.log 04: 88 bytes between the two
        announcements); generated tones and silence come in whole 20 ms frames.
        """
        if not self._media_flowing or self._host.audiosocket_addr is None:
            # Nobody can hear it: let the time pass in one sleep instead of 50 wake-ups a second.
            await self._sleep_script(duration_s)
            return
        for pcm in chunks:
            for frame in self._chunker.feed(pcm):
                if not await self._send_paced(frame):
                    return
        if playback:
            rest = self._chunker.flush()
            if rest:
                await self._send_paced(rest)
        self._script_at = self._next_frame_at

    async def _sleep_script(self, seconds: float) -> None:
        self._script_at = max(self._script_at, 0.0) + seconds * self._scale
        delay = self._script_at - self._loop.time()
        if delay > 0:
            await asyncio.sleep(delay)

    async def _send_paced(self, frame: bytes) -> bool:
        delay = self._next_frame_at - self._loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if self._call.finished:
            return False
        self._call.deliver(frame)
        self._next_frame_at += len(frame) / _BYTES_PER_S * self._scale  # the frame's own duration
        return True

    def start_media(self) -> None:
        """Progress or an answer: from now on media frames flow."""
        if not self._media_flowing:
            self._media_flowing = True
            self._next_frame_at = max(self._script_at, self._loop.time() - FRAME_S * self._scale)

    def flush(self) -> None:
        """The far end hangs up: the short remainder of a frame goes out first."""
        if self._media_flowing:
            rest = self._chunker.flush()
            if rest:
                self._call.deliver(rest)
