"""The real worker against the simulator (issue 9): a person whose wait in the operators' queue
outlasts their patience is lost on the way, stored as such with the hand-over's figures, and
called back one minute later (docs/rules.md §6); the call-back reaches them, an operator answers, and the
contact is settled as handed over."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from dialer import app
from dialer.domain.model import AttemptKind, CallClass, ContactState, ResultCode
from dialer.events.notifier import EventNotifier
from dialer.sim.queue import QueueConfig, QueueMember, SimQueue
from dialer.storage.db import Database
from dialer.storage.repo import Repository

from .harness import harness, seed
from .test_worker_sim import AUDIO_TIME_SCALE, PERSON

# The simulated person hangs up 5 s after the Redirect (scenario operator_talk_s): an operator
# who answers after 60 s never reaches them.
SLOW_OPERATORS = QueueConfig("operators", (QueueMember("Local/op1@dialer-operators/n", "op1", answer_after_s=60.0),))
QUICK_OPERATORS = QueueConfig("operators", (QueueMember("Local/op2@dialer-operators/n", "op2", answer_after_s=1.0),))


async def test_a_person_lost_in_the_queue_is_called_back_and_reaches_an_operator(tmp_path: Path) -> None:
    async with harness(tmp_path, time_scale=AUDIO_TIME_SCALE) as (h, ami_port, as_port):
        h.sim.queues["operators"] = SimQueue(SLOW_OPERATORS)
        await seed(h.settings, [PERSON], h.clock.now())
        rt = await app.build(h.settings, h.options(ami_port, as_port))
        stop = asyncio.Event()
        task = asyncio.create_task(app.run(rt, stop))
        try:
            await h.wait_finished(1, timeout_s=30)
            # Operators who answer at once take the call-back (the queue is looked up at each join).
            h.sim.queues["operators"] = SimQueue(QUICK_OPERATORS)
            await h.wait_finished(2, timeout_s=60)  # due one simulated minute later: ~6 s here
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)

        first, second = h.finished
        assert first.evidence.call_class is CallClass.PERSON_LOST and first.attempt_no == 1
        assert "lost: hung up" in first.evidence.reason and first.evidence.operator is None
        assert second.evidence.call_class is CallClass.PERSON and second.attempt_no == 2
        # Who answered: today the operator's channel (its DialEnd ANSWER comes before AgentConnect).
        assert second.evidence.operator and "op2" in second.evidence.operator

        db = Database(h.settings.database_url)
        try:
            repo = await Repository.open(db, EventNotifier())
            c = await repo.get_contact("t", "c0")
            attempts = await repo.attempts_of(c.id)
            events = await repo.fetch_unpublished(100)
        finally:
            await db.dispose()
        assert c.state is ContactState.SETTLED and c.result is ResultCode.HANDED_TO_OPERATOR
        assert "Сорвался до ответа оператора" in c.journal and c.journal.endswith("Ответил клиент, передан оператору")
        lost, reached = attempts
        assert (lost.kind, reached.kind) == (AttemptKind.CAMPAIGN, AttemptKind.DROPPED_CALLBACK)
        # Dialled again once the minute after the loss had passed, not before.
        assert lost.ended_at is not None and reached.started_at - lost.ended_at >= timedelta(minutes=1)
        # The hand-over figures as the session measured them, stored with each attempt.
        assert lost.queue_wait_ms is not None and lost.queue_wait_ms >= 4000 and lost.operator is None
        assert lost.dead_air_ms == first.evidence.dead_air_ms and lost.dead_air_ms is not None
        assert reached.queue_wait_ms is not None and reached.queue_wait_ms < lost.queue_wait_ms
        assert reached.operator == second.evidence.operator
        announced = [e.payload for e in events if e.payload["type"] == "attempt_finished"]
        assert [p["call_class"] for p in announced] == ["person_lost", "person"]
        assert announced[0]["settled"] is False and announced[0]["queue_wait_ms"] == lost.queue_wait_ms
        assert announced[1]["operator"] == reached.operator and announced[1]["result"] == "handed_to_operator"
