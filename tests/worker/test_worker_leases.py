"""Claim leases through the real worker against the simulator: a worker that died left three
claims behind (one never started, one started with no call, one whose call is with the
operators); another worker, under another id, recovers each of them once the lease has run out."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dialer import app
from dialer.ami.client import AmiClient
from dialer.config import AmiEndpoint, LeaseSettings, Secret
from dialer.domain.model import AttemptKind, CallClass, ContactState, ResultCode
from dialer.events.notifier import EventNotifier
from dialer.sim import scenarios as sc
from dialer.sim.channels import ChannelState
from dialer.storage.db import Database
from dialer.storage.repo import Repository

from .harness import Harness, free_port, harness, seed
from .test_worker_sim import actions, contacts_by_number

NEVER_STARTED, NO_CALL, WITH_OPERATORS = "+79990000101", "+79990000201", "+79990000306"
LEASES = LeaseSettings(lease_s=1.5, heartbeat_s=0.3, give_up_s=3600)
# Answers at once and stays silent; after a Redirect the operator talks with it for 4 s (×0.02).
TALKS_WITH_OPERATOR = sc.Scenario(
    name="talks",
    title="answers, then talks with the operators",
    steps=(sc.Answer(), sc.Silence(3600.0)),
    number="99",
    operator_talk_s=200.0,
)


async def _audiosocket_sink(port: int) -> asyncio.Server:
    """Stands in for the dead worker's AudioSocket server while its call is being set up."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(4096):
            pass
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", port)


async def wait_for(predicate: Callable[[], Awaitable[bool]], timeout_s: float, what: str) -> None:
    async def poll() -> None:
        # The database and the simulator have no "changed" hook for this: sample them.
        while not await predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.05)

    try:
        await asyncio.wait_for(poll(), timeout_s)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def _dead_worker(h: Harness, ami_port: int, as_port: int) -> uuid.UUID:
    """A worker that claims all three contacts, starts two attempts, places one call and hands
    it to the operators, then dies (no more renewals, no verdicts); the live call's attempt id."""
    db = Database(h.settings.database_url)
    repo = await Repository.open(db, EventNotifier())
    wall = datetime.now(UTC)
    claimed = {
        c.contact.e164: c
        for c in await repo.claim_due("t", "dead-worker", h.clock.now(), 3, lease_until=wall + timedelta(seconds=1.5))
    }
    assert set(claimed) == {NEVER_STARTED, NO_CALL, WITH_OPERATORS}
    await repo.start_attempt(claimed[NO_CALL], uuid.uuid4(), h.clock.now(), server_name="sim")
    live_id = uuid.uuid4()
    await repo.start_attempt(claimed[WITH_OPERATORS], live_id, h.clock.now(), server_name="sim")
    sink = await _audiosocket_sink(as_port)
    client = AmiClient(AmiEndpoint("sim", "127.0.0.1", ami_port, "dialer", Secret("sim")))
    await client.connect(5)
    await client.originate(
        live_id, WITH_OPERATORS.lstrip("+"), h.settings.dial, audiosocket_addr=f"127.0.0.1:{as_port}"
    )

    async def answered() -> bool:
        return any(ch.uniqueid == str(live_id) and ch.state is ChannelState.UP for ch in h.sim.live_channels())

    await wait_for(answered, 10, "the call to be answered")
    assert await client.redirect(str(live_id), h.settings.dial.operator_context, h.settings.dial.operator_exten)
    await client.close()  # the worker dies: no more renewals, no verdicts
    sink.close()
    await sink.wait_closed()
    await db.dispose()
    return live_id


async def test_another_worker_recovers_a_dead_workers_claims_after_the_lease(tmp_path: Path) -> None:
    async with harness(tmp_path) as (h, ami_port, as_port):
        h.sim.assign(WITH_OPERATORS.lstrip("+"), TALKS_WITH_OPERATOR)
        h.settings = replace(h.settings, leases=LEASES)
        await seed(h.settings, [NEVER_STARTED, NO_CALL, WITH_OPERATORS], h.clock.now())

        live_id = await _dead_worker(h, ami_port, as_port)
        actions_before = len(h.sim.actions)

        # ---- another worker, another id, the same settings
        opts = h.options(ami_port, as_port, worker_id="survivor")
        rt = await app.build(h.settings, opts)
        stop = asyncio.Event()
        task = asyncio.create_task(app.run(rt, stop))
        db = Database(h.settings.database_url)
        repo = await Repository.open(db, EventNotifier())
        try:
            await h.wait_finished(2, timeout_s=30)  # NEVER_STARTED and NO_CALL, dialled again by the survivor

            async def settled() -> bool:
                return (await repo.get_contact("t", "c2")).state is ContactState.SETTLED

            await wait_for(settled, 30, "the adopted call to end and be closed")
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
        keeper = rt.worker.leases.stats
        contacts = await contacts_by_number(h.settings.database_url)
        attempts = {n: await repo.attempts_of(contacts[n].id) for n in contacts}  # type: ignore[attr-defined]
        await db.dispose()

        # never started: released, then dialled once as attempt 1
        assert [(a.attempt_no, a.call_class) for a in attempts[NEVER_STARTED]] == [(1, CallClass.BUSY)]
        # started with no call: closed as our own failure (not counted), then dialled as attempt 1
        aborted, dialled = attempts[NO_CALL]
        assert aborted.call_class is CallClass.ABORTED and "not live on sim" in (aborted.reason or "")
        assert "recovered by survivor" in (aborted.reason or "") and "dead-worker" in (aborted.reason or "")
        assert dialled.attempt_no == 1 and dialled.call_class is CallClass.BUSY
        # with the operators: adopted, followed to its end, never dialled again, never touched
        (adopted,) = attempts[WITH_OPERATORS]
        assert adopted.id == live_id and adopted.call_class is CallClass.UNSURE_ANSWERED
        assert "with the operators" in (adopted.reason or "")
        c = contacts[WITH_OPERATORS]
        assert c.state is ContactState.SETTLED and c.result is ResultCode.HANDED_TO_OPERATOR  # type: ignore[attr-defined]
        mine = h.sim.actions[actions_before:]
        assert not [a for a in mine if a.get("Channel") == str(live_id) and a.get("Action") in ("Hangup", "Redirect")]
        originated = [a.get("Channel") or "" for a in mine if a.get("Action") == "Originate"]
        assert not [ch for ch in originated if WITH_OPERATORS.lstrip("+") in ch]
        assert (keeper.released, keeper.closed_gone, keeper.adopted, keeper.adopted_closed) == (1, 1, 1, 1)
        assert AttemptKind.CAMPAIGN is dialled.kind


async def test_calls_of_other_workers_are_never_hung_up(tmp_path: Path) -> None:
    """Two workers share one Asterisk: on login each sees the other's calls in CoreShowChannels
    and leaves them alone (the old reconcile hung up every call it did not know)."""
    async with harness(tmp_path) as (h, ami_port, as_port):
        other = "+79990000406"  # a person: long enough to be live while the second worker logs in
        h.settings = replace(h.settings, leases=LEASES)
        await seed(h.settings, [other], h.clock.now())
        first = await app.build(h.settings, h.options(ami_port, as_port, worker_id="w1"))
        stop1 = asyncio.Event()
        t1 = asyncio.create_task(app.run(first, stop1))

        async def ringing() -> bool:
            return bool(h.sim.live_channels())

        try:
            await wait_for(ringing, 10, "the first worker's call")
            second = await app.build(
                h.settings, h.options(ami_port, free_port(), worker_id="w2", on_call_finished=None)
            )
            stop2 = asyncio.Event()
            t2 = asyncio.create_task(app.run(second, stop2))
            await h.wait_finished(1, timeout_s=30)
            stop2.set()
            await asyncio.wait_for(t2, 30)
        finally:
            stop1.set()
            await asyncio.wait_for(t1, 30)
        (f,) = h.finished
        assert f.evidence.call_class in (CallClass.PERSON, CallClass.UNSURE_ANSWERED)  # handed over
        assert str(f.attempt_id) not in {a.get("Channel") for a in actions(h.sim, "Hangup")}
        assert [a.get("Channel") for a in actions(h.sim, "Redirect")] == [str(f.attempt_id)]


async def test_people_handed_to_the_operators_give_their_server_slot_back(tmp_path: Path) -> None:
    """A server with room for 2 calls and 6 people to reach: each hand-over frees its slot when
    the call ends, so the worker reaches all six (a leaked slot per hand-over stalled it at 2)."""
    async with harness(tmp_path) as (h, ami_port, as_port):
        people = [f"+7999000{i:02d}06" for i in range(6)]
        await seed(h.settings, people, h.clock.now())
        small = [AmiEndpoint("sim", "127.0.0.1", ami_port, "dialer", Secret("sim"), max_calls=2)]
        rt = await app.build(h.settings, h.options(ami_port, as_port, ami_endpoints=small))
        stop = asyncio.Event()
        task = asyncio.create_task(app.run(rt, stop))
        try:
            await h.wait_finished(6, timeout_s=60)
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
        assert sorted(f.number for f in h.finished) == sorted(people)
        # person, or (on a loaded machine, at this time scale) unsure: handed over either way
        assert {f.evidence.call_class for f in h.finished} <= {CallClass.PERSON, CallClass.UNSURE_ANSWERED}
        assert len(actions(h.sim, "Redirect")) == 6
