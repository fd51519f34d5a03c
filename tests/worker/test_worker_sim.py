"""The real worker against the built-in Asterisk simulator: calls, decisions, records, recovery."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from dialer import app
from dialer.domain.model import AttemptKind, CallClass, ContactState, ResultCode
from dialer.events.notifier import EventNotifier
from dialer.sim import SimAsterisk
from dialer.sim.ami_server import RecordedAction
from dialer.storage.db import Database
from dialer.storage.repo import Repository

from .harness import harness, run_until, seed

BUSY, NO_ANSWER, PERSON, SILENCE, SIT, UNALLOC = (
    "+79990000001",
    "+79990000003",
    "+79990000006",
    "+79990000008",
    "+79990000005",
    "+79990000009",
)


async def contacts_by_number(url: str) -> dict[str, object]:
    db = Database(url)
    try:
        repo = await Repository.open(db, EventNotifier())
        out: dict[str, object] = {}
        async for page in repo.iter_contacts("t"):
            for c in page:
                out[c.e164 or c.raw_number] = c
        return out
    finally:
        await db.dispose()


# Calls judged by their audio (SIT, speech pattern, silence): the simulator streams audio in time
# and hangs up on its own script, so at 50× real time a busy machine may drop audio; 10× holds.
AUDIO_TIME_SCALE = 0.1


def actions(sim: SimAsterisk, name: str) -> list[RecordedAction]:
    return [a for a in sim.actions if (a.get("Action") or "").lower() == name.lower()]


async def test_machines_hung_up_people_redirected_everything_recorded(tmp_path: Path) -> None:
    async with harness(tmp_path, time_scale=AUDIO_TIME_SCALE) as (h, ami_port, as_port):
        numbers = [BUSY, NO_ANSWER, PERSON, SILENCE, SIT, UNALLOC]
        await seed(h.settings, numbers, h.clock.now())
        stats = await run_until(h, h.options(ami_port, as_port), len(numbers))

        by_number = {f.number: f for f in h.finished}
        assert set(by_number) == set(numbers)
        assert by_number[BUSY].evidence.call_class is CallClass.BUSY
        assert by_number[NO_ANSWER].evidence.call_class is CallClass.NO_ANSWER
        assert by_number[PERSON].evidence.call_class is CallClass.PERSON
        assert by_number[SILENCE].evidence.call_class is CallClass.ANSWERED_SILENCE
        assert by_number[SIT].evidence.call_class is CallClass.SIT_UNRECOGNISED
        assert by_number[UNALLOC].evidence.call_class is CallClass.UNALLOCATED

        # The person's call was redirected to the operators and never hung up by us.
        person_id = str(by_number[PERSON].attempt_id)
        redirects = actions(h.sim, "Redirect")
        assert [a.get("Channel") for a in redirects] == [person_id]
        assert redirects[0].get("Context") == h.settings.dial.operator_context
        hangups = {a.get("Channel") for a in actions(h.sim, "Hangup")}
        assert person_id not in hangups
        # The silent answered call is a machine outcome: we hung it up ourselves.
        assert str(by_number[SILENCE].attempt_id) in hangups
        # Each originate carried the attempt id as ChannelId and went through the Local channel.
        origs = actions(h.sim, "Originate")
        assert {a.get("ChannelId") for a in origs} == {str(f.attempt_id) for f in h.finished}
        assert all(str(a.get("Channel", "")).startswith("Local/") for a in origs)
        assert stats.originated == len(numbers)

        contacts = await contacts_by_number(h.settings.database_url)
        person = contacts[PERSON]
        assert person.result is ResultCode.HANDED_TO_OPERATOR  # type: ignore[attr-defined]
        busy = contacts[BUSY]
        assert busy.state is ContactState.PENDING and busy.attempts_made == 1  # type: ignore[attr-defined]
        assert busy.journal.endswith("23/11 Занято")  # type: ignore[attr-defined]


async def test_without_audio_analysis_every_answered_call_goes_to_operator(tmp_path: Path) -> None:
    async with harness(tmp_path) as (h, ami_port, as_port):
        await seed(h.settings, [SILENCE, BUSY], h.clock.now())
        opts = h.options(ami_port, as_port, audio_analysis=False)
        await run_until(h, opts, 2)
        by_number = {f.number: f for f in h.finished}
        assert by_number[SILENCE].evidence.call_class is CallClass.UNSURE_ANSWERED
        assert "no audio analysis" in by_number[SILENCE].evidence.reason
        assert by_number[BUSY].evidence.call_class is CallClass.BUSY
        assert [a.get("Channel") for a in actions(h.sim, "Redirect")] == [str(by_number[SILENCE].attempt_id)]


async def test_graceful_stop_hangs_up_unanswered_and_records_aborted(tmp_path: Path) -> None:
    async with harness(tmp_path) as (h, ami_port, as_port):
        await seed(h.settings, [NO_ANSWER], h.clock.now())
        rt = await app.build(h.settings, h.options(ami_port, as_port, drain_s=0.0))
        stop = asyncio.Event()
        task = asyncio.create_task(app.run(rt, stop))
        for _ in range(200):  # until the call rings
            await asyncio.sleep(0.01)
            if h.sim.live_channels():
                break
        stop.set()
        await asyncio.wait_for(task, 20)
        assert [f.evidence.call_class for f in h.finished] == [CallClass.ABORTED]
        contacts = await contacts_by_number(h.settings.database_url)
        c = contacts[NO_ANSWER]
        # Aborted does not use up an attempt and the contact stays due.
        assert c.state is ContactState.PENDING and c.attempts_made == 0  # type: ignore[attr-defined]
        assert actions(h.sim, "Hangup")


async def test_restart_recovers_attempt_left_in_progress(tmp_path: Path) -> None:
    async with harness(tmp_path) as (h, ami_port, as_port):
        await seed(h.settings, [BUSY], h.clock.now())
        db = Database(h.settings.database_url)
        repo = await Repository.open(db, EventNotifier())
        claimed = await repo.claim_due("t", "test-worker", h.clock.now(), 5)
        assert len(claimed) == 1 and claimed[0].attempt_kind is AttemptKind.CAMPAIGN
        crashed = uuid.uuid4()
        await repo.start_attempt(claimed[0], crashed, h.clock.now())
        await db.dispose()  # "crash": the attempt is left in progress

        await run_until(h, h.options(ami_port, as_port), 1)
        db = Database(h.settings.database_url)
        repo = await Repository.open(db, EventNotifier())
        attempts = await repo.attempts_of(claimed[0].contact.id)
        await db.dispose()
        by_id = {a.id: a for a in attempts}
        assert by_id[crashed].call_class == CallClass.ABORTED.value
        dialled = [a for a in attempts if a.id != crashed]
        assert len(dialled) == 1 and dialled[0].call_class == CallClass.BUSY.value
        # The crashed attempt is not counted: the busy one is attempt 1.
        contacts = await contacts_by_number(h.settings.database_url)
        assert contacts[BUSY].attempts_made == 1  # type: ignore[attr-defined]


async def test_ami_drop_mid_call_person_still_reaches_operator(tmp_path: Path) -> None:
    """Scenario 17: every AMI connection drops while a person is on the line. The worker hands the
    person over (never a hang-up), reconnects, reconciles with CoreShowChannels, and records the
    attempt exactly once."""
    async with harness(tmp_path) as (h, ami_port, as_port):
        ami_drop = "+79990000017"
        await seed(h.settings, [ami_drop, BUSY], h.clock.now())
        rt = await app.build(h.settings, h.options(ami_port, as_port))
        stop = asyncio.Event()
        task = asyncio.create_task(app.run(rt, stop))
        try:
            await h.wait_finished(2)

            async def reconnected() -> None:
                # The simulator has no "client logged in" hook: sample its action log.
                while not (len(actions(h.sim, "Login")) >= 2 and actions(h.sim, "CoreShowChannels")):  # noqa: ASYNC110
                    await asyncio.sleep(0.02)

            await asyncio.wait_for(reconnected(), 15)
            await asyncio.wait_for(h.sim.wait_idle(), 15)
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
        by_number = {f.number: f for f in h.finished}
        assert len(h.finished) == 2
        assert by_number[ami_drop].evidence.call_class is CallClass.PERSON
        person_id = str(by_number[ami_drop].attempt_id)
        assert person_id in {a.get("Channel") for a in actions(h.sim, "Redirect")}
        assert person_id not in {a.get("Channel") for a in actions(h.sim, "Hangup")}
        db = Database(h.settings.database_url)
        repo = await Repository.open(db, EventNotifier())
        contacts = await contacts_by_number(h.settings.database_url)
        attempts = await repo.attempts_of(contacts[ami_drop].id)  # type: ignore[attr-defined]
        await db.dispose()
        assert [a.call_class for a in attempts] == [CallClass.PERSON.value]


async def test_events_reach_the_real_broker(tmp_path: Path) -> None:
    """Attempt events go from the outbox through the real Mosquitto to a subscriber."""
    import json
    import os

    import aiomqtt

    host, _, port = os.environ.get("DIALER_TEST_MQTT", "127.0.0.1:1883").partition(":")
    prefix = f"dialer-test-{uuid.uuid4().hex[:8]}"
    async with harness(tmp_path) as (h, ami_port, as_port):
        h.settings = replace(
            h.settings,
            mqtt=replace(h.settings.mqtt, host=host, port=int(port or 1883), topic_prefix=prefix, enabled=True),
        )
        await seed(h.settings, [BUSY, SILENCE], h.clock.now())
        received: list[tuple[str, dict[str, object]]] = []
        async with aiomqtt.Client(host, int(port or 1883), identifier=f"{prefix}-sub") as sub:
            await sub.subscribe(f"{prefix}/#", qos=1)
            await run_until(h, h.options(ami_port, as_port, mqtt=True), 2)

            async def collect() -> None:
                async for msg in sub.messages:
                    received.append((str(msg.topic), json.loads(bytes(msg.payload))))
                    attempts = [p for t, p in received if p.get("type") == "attempt_finished"]
                    if len(attempts) >= 2:
                        return

            await asyncio.wait_for(collect(), 15)
        attempts = {p["e164"]: p for t, p in received if p.get("type") == "attempt_finished"}
        assert set(attempts) == {BUSY, SILENCE}
        assert attempts[BUSY]["call_class"] == CallClass.BUSY.value
        assert all(t.startswith(f"{prefix}/") for t, _ in received)
        assert all(p.get("event_id") and p.get("occurred_at") for _, p in received)


async def test_originate_failing_without_any_channel_is_recorded_as_our_failure(tmp_path: Path) -> None:
    """Asterisk accepts the Originate, then answers OriginateResponse Failure without creating a
    channel (here: a dial context it does not know). No Hangup will ever come; the attempt must
    still be closed promptly, as our own failure that does not use up one of the contact's tries."""
    async with harness(tmp_path) as (h, ami_port, as_port):
        h.settings = replace(
            h.settings, dial=replace(h.settings.dial, channel_template="Local/{number}@no-such-context/n")
        )
        await seed(h.settings, [BUSY], h.clock.now())
        await run_until(h, h.options(ami_port, as_port), 1, timeout_s=10)
        assert [f.evidence.call_class for f in h.finished] == [CallClass.ORIGINATE_FAILED]
        contacts = await contacts_by_number(h.settings.database_url)
        c = contacts[BUSY]
        assert c.state is ContactState.PENDING and c.attempts_made == 0  # type: ignore[attr-defined]


async def test_secrets_never_reach_the_log(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The AMI secret and the database password are registered at start-up; no log line of a
    whole run (including the failed login to a server with another secret) contains them."""
    from dialer.config import AmiEndpoint, Secret
    from dialer.logging import SecretFilter

    caplog.handler.addFilter(SecretFilter())
    caplog.set_level(logging.DEBUG)
    async with harness(tmp_path) as (h, ami_port, as_port):
        await seed(h.settings, [BUSY], h.clock.now())
        bad = AmiEndpoint("bad", "127.0.0.1", ami_port, "dialer", Secret("wrong-secret-9f3a"), max_calls=1)
        good = AmiEndpoint("sim", "127.0.0.1", ami_port, "dialer", Secret("sim"), max_calls=5)
        opts = h.options(ami_port, as_port, ami_endpoints=[bad, good])
        await run_until(h, opts, 1)
        text = caplog.text
        assert "wrong-secret-9f3a" not in text
        assert "bad" in text  # the failed server was logged, without its secret
        assert repr(bad).count("wrong-secret") == 0
