"""The live driver of one call: inputs stamped with the call's clock, one timer for the session's
next deadline, and a busy loop's late timer never changes what is decided (a replay of the
recording, with ticks at the deadlines, decides the same)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence

import pytest

from dialer.calls import LATE_TIMER_WARN_MS, CallClock, LiveCall
from dialer.domain.model import CallClass
from dialer.session.inputs import Answered, Command, Input
from dialer.session.session import CallSession
from tests.core.test_session import SETUP

SCALE = 0.001  # 1 ms of the call's clock = 1 µs of loop time: a blocking sleep overshoots every deadline
AUDIO_WAIT_MS = SETUP.config.fusion.audio_wait_ms
SILENT_FRAME = bytes(320)


class Effects:
    def __init__(self) -> None:
        self.commands: list[Command] = []

    def carry_out(self, call: LiveCall, commands: Sequence[Command]) -> None:
        self.commands += commands

    def observe(self, call: LiveCall, inp: Input) -> None:
        pass


def answered_call() -> tuple[LiveCall, CallSession, int]:
    session = SETUP.session(uuid.uuid4())
    call = LiveCall(session, CallClock(asyncio.get_running_loop().time(), SCALE), Effects())
    call.feed(Answered())
    assert session.net.answered_at_ms is not None
    return call, session, session.net.answered_at_ms


async def until_decided(session: CallSession) -> None:
    for _ in range(1000):
        if session.decided_at_ms is not None:
            return
        await asyncio.sleep(0.001)


async def test_an_input_after_a_missed_deadline_comes_after_the_deadline_s_tick() -> None:
    call, session, answered = answered_call()
    time.sleep(0.01)  # noqa: ASYNC251 -- the loop is busy: the audio-wait timer cannot fire before the frame
    call.on_frame(SILENT_FRAME, 0)
    ev = session.evidence
    assert ev is not None and ev.call_class is CallClass.UNSURE_ANSWERED
    assert "no audio reached the worker" in ev.reason
    assert session.decided_at_ms == answered + AUDIO_WAIT_MS  # as a replay's tick decides it
    call.release()


async def test_a_late_timer_decides_at_its_deadline_and_says_the_loop_was_late(
    caplog: pytest.LogCaptureFixture,
) -> None:
    call, session, answered = answered_call()
    time.sleep((LATE_TIMER_WARN_MS + 50) / 1000)  # noqa: ASYNC251 -- a busy loop, on purpose
    with caplog.at_level(logging.WARNING, logger="dialer.calls"):
        await until_decided(session)  # the timer runs now, long after its deadline
    assert session.decided_at_ms == answered + AUDIO_WAIT_MS
    late = [r.getMessage() for r in caplog.records if "ran a call deadline" in r.getMessage()]
    assert len(late) == 1 and "ms late" in late[0]
    call.release()


async def test_a_punctual_timer_says_nothing(caplog: pytest.LogCaptureFixture) -> None:
    call, session, answered = answered_call()
    with caplog.at_level(logging.WARNING, logger="dialer.calls"):
        await until_decided(session)
    assert not [r for r in caplog.records if "ran a call deadline" in r.getMessage()]
    assert session.decided_at_ms == answered + AUDIO_WAIT_MS
    call.release()
