"""Pacing by free operators (issue 12) with the real worker on the simulator: two operators, every
answered call handed over (no audio analysis), operators talking 15 s each, people who wait up to
~30 s in the queue's hold."""

from __future__ import annotations

import asyncio
from pathlib import Path

from dialer import app
from dialer.domain.model import CallClass, Evidence
from dialer.pacing.live import PacingConfig
from dialer.pacing.pacer import PacingMode, PacingSettings
from dialer.sim import scenarios as sc
from dialer.sim.queue import QueueConfig, default_queues

from .harness import Harness, harness, seed

PATIENT_PERSON = sc.Scenario(
    name="patient_person",
    title="rings 2 s, answers, stays on the line 30 s (the queue's hold, then an operator)",
    steps=(sc.Ring(), sc.Wait(2.0), sc.Answer(), sc.Silence(30.0), sc.Hangup(16)),
    number="99",
    operator_talk_s=None,  # the operator (dialer.sim.queue talk time) ends the call
)
NUMBERS = [f"+7999000{i:02d}99" for i in range(8)]


async def run(h: Harness, ami_port: int, as_port: int, pacing: PacingConfig) -> tuple[int, list[Evidence], int]:
    """Run until every contact is recorded: (most people ever waiting with no operator for them,
    the verdicts, members the worker's tracker knew)."""
    for n in NUMBERS:
        h.sim.assign(n.lstrip("+"), PATIENT_PERSON)
    await seed(h.settings, NUMBERS, h.clock.now())
    opts = h.options(ami_port, as_port, audio_analysis=False, pacing=pacing, concurrency_override=6)
    rt = await app.build(h.settings, opts)
    stop = asyncio.Event()
    task = asyncio.create_task(app.run(rt, stop))
    try:
        await h.wait_finished(len(NUMBERS), timeout_s=60.0)
        members = len(rt.worker.pacing.tracker.members("operators"))
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    return h.sim.queues["operators"].max_unserved, [f.evidence for f in h.finished], members


def all_taken_by_operators(verdicts: list[Evidence]) -> bool:
    """Every person handed over and answered by an operator; nobody lost in the queue."""
    return len(verdicts) == len(NUMBERS) and all(
        v.call_class is CallClass.UNSURE_ANSWERED and v.operator for v in verdicts
    )


def operators() -> dict[str, QueueConfig]:
    return default_queues(2, answer_after_s=0.3, talk_mean_s=15.0)


async def test_progressive_never_leaves_a_person_waiting_for_an_operator(tmp_path: Path) -> None:
    pacing = PacingConfig(PacingSettings(mode=PacingMode.PROGRESSIVE))
    async with harness(tmp_path, queues=operators()) as (h, ami_port, as_port):
        unserved, verdicts, members = await run(h, ami_port, as_port, pacing)
        actions = list(h.sim.actions)
    assert members == 2  # the QueueStatus listing at login, then the member events
    assert unserved == 0  # every person found an operator free: the queue rang one at once
    assert all_taken_by_operators(verdicts)
    # the operators' context rides on every call's channel from the Originate
    originates = [a for a in actions if a.name == "originate"]
    assert len(originates) == len(NUMBERS)
    for o in originates:
        variables = {v.split("=", 1)[0] for k, v in o.message.headers if k.lower() == "variable"}
        assert {"__DIALER_CONTACT", "__DIALER_CAMPAIGN", "__DIALER_ATTEMPT_NO", "__DIALER_JOURNAL"} <= variables


async def test_fixed_concurrency_makes_people_wait_for_operators(tmp_path: Path) -> None:
    """The same population dialled at a fixed concurrency of 6: people queue for 2 operators (the
    measure above can fail)."""
    pacing = PacingConfig(PacingSettings(mode=PacingMode.FIXED))
    async with harness(tmp_path, queues=operators()) as (h, ami_port, as_port):
        unserved, verdicts, _members = await run(h, ami_port, as_port, pacing)
    assert unserved >= 2
    assert len(verdicts) == len(NUMBERS)


async def test_paused_operator_is_not_counted(tmp_path: Path) -> None:
    """One of two operators paused (AMI QueuePause → QueueMemberPause): progressive dials for one."""
    pacing = PacingConfig(PacingSettings(mode=PacingMode.PROGRESSIVE))
    async with harness(tmp_path, queues=operators()) as (h, ami_port, as_port):
        queue = h.sim.queues["operators"]
        st = queue.member("op2")
        assert st is not None
        st.paused = True  # paused before the worker logs in: the QueueStatus listing says so
        unserved, verdicts, _members = await run(h, ami_port, as_port, pacing)
        assert st.calls_taken == 0 and not st.busy
    assert all(v.operator == "op1" for v in verdicts)  # AgentConnect's MemberName
    assert unserved == 0
    assert all_taken_by_operators(verdicts)
