"""Faults on the real thing, each with ``dialer run`` against its own pbx (the carrier is shared):

- the pbx crashes mid-campaign (SIGKILL: AMI drops, every channel gone) and comes back: the
  worker reconnects, reconciles, records every attempt once and carries on;
- the AMI connection drops mid-call (the simulator's scenario 17, here a cut of the worker's AMI
  TCP connection when the carrier's script reaches that step): the person still reaches the
  operators, the attempt is recorded once — compared with the simulator playing the same;
- an AudioSocket connection is cut mid-call;
- the operators' queue is missing (a pbx without queues_dialer.conf), and the operator context
  is missing (a typo in ``[dial] operator_context``);
- a call runs past ``[dial] max_call_s``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dialer.config import load_settings
from dialer.domain.model import CallClass, OwnerKind, ResultCode
from dialer.domain.rules import RulesTable

from .asproxy import AudioSocketProxy
from .campaignrun import Run, run_campaign
from .conftest import removed, started
from .kit import free_port
from .network import DROP_AMI_EVENT, Carrier, Pbx, make_pbx
from .recorder import Recorder
from .scenarios import ROUTES, fault_numbers
from .simrun import UNUSED_AMI_PORT, run_sim_campaign
from .workerproc import Contact, WorkerSetup

TO_OPERATOR = {CallClass.PERSON, CallClass.UNSURE_ANSWERED}


@pytest.fixture
def own_pbx(carrier: Carrier) -> Iterator[Pbx]:
    """A pbx of the test's own (the test may crash it)."""
    p = make_pbx(carrier, "pbxf", operators=4)
    started(p.instance)
    try:
        yield p
    finally:
        removed(p.instance)


def finished_numbers(run: Run) -> list[str]:
    numbers = run.number_of()
    return [numbers.get(str(line["attempt"]), "?") for line in run.worker.finished]


def all_recorded(expected: set[str]):  # type: ignore[no-untyped-def]
    """Every number has a finished attempt and every originate has been recorded."""

    def check(run: Run) -> bool:
        return expected <= set(finished_numbers(run)) and len(run.worker.finished) >= len(
            run.worker.events("originate")
        )

    return check


def assert_each_attempt_recorded_once(run: Run) -> None:
    """No attempt lost (left in progress) or counted twice; one finished line per originate."""
    assert run.rc == 0, run.worker.log_text()
    assert not [line for line in run.worker.raw if "Traceback" in line], "\n".join(run.worker.raw[-40:])
    originated = [str(a.get("ChannelId")) for a in run.actions if a.name == "originate"]
    finished = [str(line["attempt"]) for line in run.worker.finished]
    assert sorted(finished) == sorted(originated), "one verdict per originated call"
    rules = RulesTable.load(load_settings(run.setup.config).rules_path)
    for number, attempts in run.attempts.items():
        assert all(a.state != "in_progress" and a.ended_at is not None for a in attempts), attempts
        counted = [a for a in attempts if a.call_class and rules.spec(a.call_class, OwnerKind.PERSON).counts_as_attempt]
        assert run.contacts[number].attempts_made == len(counted), number
        assert len({a.id for a in attempts}) == len(attempts)
    stored = {str(a.id) for attempts in run.attempts.values() for a in attempts}
    assert set(originated) <= stored


# ---- the pbx crashes and comes back ---------------------------------------------------------------


async def test_pbx_crash_mid_campaign_reconciles_and_carries_on(own_pbx: Pbx, tmp_path: Path) -> None:
    numbers = fault_numbers(1, "03", "06", "19", "01") + fault_numbers(2, "03", "06", "19", "01")
    live_at_crash: set[str] = set()

    async def crash(run: Run) -> None:
        # Four calls ringing (the campaign's concurrency), then SIGKILL: no Hangup is ever sent.
        await run.worker.wait_until(lambda w: len(w.events("originate")) >= 4, 60, "4 originates")
        await asyncio.sleep(1.5)
        finished = {str(line["attempt"]) for line in run.worker.finished}
        live_at_crash.update(a for a in run.number_of() if a not in finished)
        await asyncio.to_thread(run.pbx.instance.kill)
        await asyncio.sleep(1.0)
        await asyncio.to_thread(run.pbx.instance.start)
        await run.reconnect_monitor()

    run = await run_campaign(own_pbx, tmp_path, numbers, done=all_recorded(set(numbers)), during=crash, concurrency=4)
    assert_each_attempt_recorded_once(run)
    assert live_at_crash, "calls were live when the pbx died"
    logins = [a for a in run.actions if a.name == "login"]
    assert len(logins) >= 2, "the worker logged in again after the crash"
    reconciles = [a for a in run.actions if a.name == "coreshowchannels"]
    assert reconciles and reconciles[-1].at > logins[-1].at, "reconcile after the new login"
    by_attempt = {str(line["attempt"]): line for line in run.worker.finished}
    for attempt in live_at_crash:
        line = by_attempt[attempt]
        # The calls vanished with the pbx: nothing the network said about them survived.
        assert line["call_class"] == CallClass.NO_CONNECTION.value, line
    # After the restart the campaign went on with real calls and real verdicts.
    after = [a for a in run.actions if a.name == "originate" and a.at > logins[-1].at]
    assert after, "calls were placed after the pbx came back"
    numbers_of = run.number_of()
    for a in after:
        attempt = str(a.get("ChannelId"))
        scenario = ROUTES[numbers_of[attempt]].name
        want = {"busy": "busy", "person": "person", "no_answer": "no_answer", "early_ringback_no_answer": "no_answer"}
        assert by_attempt[attempt]["call_class"] == want[scenario], by_attempt[attempt]
    # Every number was dialled exactly once: the lost calls were counted once, not re-dialled.
    assert sorted(numbers_of.values()) == sorted(numbers)


# ---- the AMI link drops mid-call (scenario 17) ------------------------------------------------------


async def _drop_ami_on_carrier_signal(carrier: Carrier, run: Run, dropped: list[int]) -> None:
    """The carrier's script reached DropAmi: cut the worker's AMI connections (calls go on)."""
    rec = await Recorder.connect(carrier.instance.ami_port, "kit", carrier.instance.kit_secret)
    try:
        await rec.wait_for(lambda m: m.event == "UserEvent" and m.get("UserEvent") == DROP_AMI_EVENT, 60)
        dropped.append(run.proxy.drop_all())
    finally:
        await rec.close()


async def test_ami_drop_mid_call_person_still_reaches_operator(carrier: Carrier, own_pbx: Pbx, tmp_path: Path) -> None:
    numbers = fault_numbers(3, "17", "01")
    dropped: list[int] = []

    async def drop(run: Run) -> None:
        await _drop_ami_on_carrier_signal(carrier, run, dropped)

    run = await run_campaign(own_pbx, tmp_path / "real", numbers, done=all_recorded(set(numbers)), during=drop)
    assert dropped and dropped[0] >= 2, "the worker's AMI connection was cut"
    assert_each_attempt_recorded_once(run)
    person = numbers[0]
    attempt = str(run.attempts[person][0].id)
    assert run.attempts[person][0].call_class is CallClass.PERSON
    assert attempt in {str(a.get("Channel")) for a in run.actions if a.name == "redirect"}
    assert attempt not in {str(a.get("Channel")) for a in run.actions if a.name == "hangup"}
    assert len([a for a in run.actions if a.name == "login"]) >= 2
    joins = [m for _t, m in run.pbx_events if m.event == "QueueCallerJoin" and m.get("Uniqueid") == attempt]
    assert joins, "the person reached the operators' queue"

    sim_setup = WorkerSetup(tmp_path / "sim", UNUSED_AMI_PORT, "unused")
    sim = await run_sim_campaign(sim_setup, [Contact(n, n) for n in numbers], 0.5)
    assert sim.by_number[person].call_class is CallClass.PERSON
    assert sim.sim is not None and sim.sim.finished_calls >= 1
    assert {n: e.call_class for n, e in sim.by_number.items()} == {n: run.attempts[n][0].call_class for n in numbers}


# ---- an AudioSocket connection is cut mid-call --------------------------------------------------------


async def test_audiosocket_cut_mid_call(own_pbx: Pbx, tmp_path: Path) -> None:
    """The TCP path between Asterisk and the worker breaks 1 s into an announcement: Asterisk's
    AudioSocket() fails, the channel hangs up, the attempt is recorded once, on the retry path
    (the announcement was not heard to the end), and the campaign goes on."""
    cut_number, after = fault_numbers(4, "04", "06")
    run_box: list[Run] = []

    def cut_after(call_id: uuid.UUID) -> int | None:
        numbers_of = run_box[0].number_of() if run_box else {}
        return 50 if numbers_of.get(str(call_id)) == cut_number else None

    worker_port = free_port()
    proxy = AudioSocketProxy(worker_port, cut_after)
    await proxy.start()

    async def remember(run: Run) -> None:
        run_box.append(run)
        await asyncio.wait_for(proxy.cut_done.wait(), 60)

    try:
        run = await run_campaign(
            own_pbx,
            tmp_path,
            [cut_number, after],
            done=all_recorded({cut_number, after}),
            during=remember,
            audiosocket_port=worker_port,
            audiosocket_advertise=f"127.0.0.1:{proxy.port}",
        )
    finally:
        await proxy.close()
    assert_each_attempt_recorded_once(run)
    cut = [link for link in proxy.links if link.cut]
    assert len(cut) == 1 and cut[0].audio_frames >= 50
    cut_attempt = run.attempts[cut_number][0]
    assert str(cut_attempt.id) == str(cut[0].call_id)
    rules = RulesTable.load(load_settings(run.setup.config).rules_path)
    decision = rules.decide(cut_attempt.call_class or CallClass.ABORTED, 1, OwnerKind.PERSON)
    assert not decision.incorrect_contact, f"a cut connection is no evidence against the number: {cut_attempt}"
    assert run.attempts[after][0].call_class is CallClass.PERSON  # the other call is analysed as usual
    hangups = [m for _t, m in run.pbx_events if m.event == "Hangup" and m.get("Uniqueid") == str(cut_attempt.id)]
    assert hangups, "the cut call ended on the pbx"


# ---- the operators' queue or context is missing -----------------------------------------------------


async def _missing_operator_run(carrier: Carrier, base: Path, *, queue: bool, operator_context: str) -> tuple[Run, str]:
    person, machine = fault_numbers(5 if queue else 6, "06", "01")
    pbx = make_pbx(carrier, "pbxq" if queue else "pbxn", queue=queue)
    started(pbx.instance)
    try:
        run = await run_campaign(
            pbx, base, [person, machine], done=all_recorded({person, machine}), operator_context=operator_context
        )
    finally:
        removed(pbx.instance)
    return run, person


@pytest.fixture(scope="module")
def queue_missing(carrier: Carrier, tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, str]:
    """A user who forgot queues_dialer.conf: Queue(operators) fails at once."""
    base = tmp_path_factory.mktemp("queue-missing")
    return asyncio.run(_missing_operator_run(carrier, base, queue=False, operator_context="dialer-operator"))


@pytest.fixture(scope="module")
def context_missing(carrier: Carrier, tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, str]:
    """A typo in ``[dial] operator_context``: the Redirect succeeds, the dialplan has nowhere to go."""
    base = tmp_path_factory.mktemp("context-missing")
    return asyncio.run(_missing_operator_run(carrier, base, queue=True, operator_context="dialer-operator-missing"))


def _assert_person_sent_nowhere(run: Run, person: str) -> None:
    assert_each_attempt_recorded_once(run)
    attempt = str(run.attempts[person][0].id)
    assert run.attempts[person][0].call_class is CallClass.PERSON_LOST  # handed over, nobody took it
    assert attempt in {str(a.get("Channel")) for a in run.actions if a.name == "redirect"}
    assert not [m for _t, m in run.pbx_events if m.event == "QueueCallerJoin" and m.get("Uniqueid") == attempt]
    gone = [m for _t, m in run.pbx_events if m.event == "Hangup" and m.get("Uniqueid") == attempt]
    assert gone, "Asterisk hung the person up (nowhere to go)"


def test_operator_queue_missing(queue_missing: tuple[Run, str]) -> None:
    _assert_person_sent_nowhere(*queue_missing)


def test_operator_context_missing(context_missing: tuple[Run, str]) -> None:
    _assert_person_sent_nowhere(*context_missing)


@pytest.mark.parametrize("case", ["queue_missing", "context_missing"])
def test_person_with_no_operator_is_not_handed_over(case: str, request: pytest.FixtureRequest) -> None:
    """No operator ever answered: the attempt must not settle the contact as «Передан оператору»."""
    run, person = request.getfixturevalue(case)
    assert run.contacts[person].result is not ResultCode.HANDED_TO_OPERATOR


# ---- past the call cap ---------------------------------------------------------------------------------


async def test_call_past_the_cap_is_ended_by_the_worker(own_pbx: Pbx, tmp_path: Path) -> None:
    """``max_call_s`` = 6 s while the network would ring 30 s: early ringback (19) and plain
    ringing (03) are decided by the cap and hung up by the worker, like in the simulator."""
    numbers = fault_numbers(7, "19", "03")
    run = await run_campaign(
        own_pbx, tmp_path / "real", numbers, done=all_recorded(set(numbers)), ring_timeout_s=30, max_call_s=6.0
    )
    assert_each_attempt_recorded_once(run)
    hangups = {str(a.get("Channel")) for a in run.actions if a.name == "hangup"}
    by_attempt = {str(line["attempt"]): line for line in run.worker.finished}
    for number in numbers:
        attempt = run.attempts[number][0]
        assert str(attempt.id) in hangups, f"{number}: the worker ended the call"
        assert "no verdict after 6 s" in str(by_attempt[str(attempt.id)]["reason"])
    assert run.attempts[numbers[0]][0].call_class is CallClass.NO_CONNECTION  # early media, no verdict
    assert run.attempts[numbers[1]][0].call_class is CallClass.NO_ANSWER  # ringing, no verdict

    sim = await run_sim_campaign(
        WorkerSetup(tmp_path / "sim", UNUSED_AMI_PORT, "unused", ring_timeout_s=30, max_call_s=6.0),
        [Contact(n, n) for n in numbers],
        0.5,
    )
    assert {n: e.call_class for n, e in sim.by_number.items()} == {n: run.attempts[n][0].call_class for n in numbers}
