"""``dialer run`` end to end against the real Asterisk: one campaign with every scenario at once.

The pbx has the deploy/asterisk/ contract installed as a user would install it; the carrier
plays the simulator's own scenarios behind IAX2; operators are queue members who answer after
3 s. The worker is the ``dialer`` command (settings file, ``db upgrade``, ``import``, ``run``,
SIGTERM, ``export``), its AMI goes through a recording proxy, its events through the real
Mosquitto. Then the same campaign runs against the simulator, and the outcomes are compared
scenario by scenario.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aiomqtt
import pytest

from dialer.ami.protocol import AmiMessage
from dialer.config import load_settings
from dialer.domain.model import CallClass, ContactState, OwnerKind, ResultCode
from dialer.domain.model import Contact as StoredContact
from dialer.domain.rules import RulesTable
from dialer.events.notifier import EventNotifier
from dialer.storage.db import Database
from dialer.storage.repo import Repository
from dialer.storage.reports import AttemptRow

from .amiproxy import AmiProxy, SentAction
from .network import Carrier, Pbx
from .recorder import Recorder
from .scenarios import CAMPAIGN
from .simrun import UNUSED_AMI_PORT, SimOutcome, run_sim_campaign
from .workerproc import CAMPAIGN as CAMPAIGN_NAME
from .workerproc import Contact, WorkerProcess, WorkerSetup, mqtt_address

SIM_TIME_SCALE = 0.5
FINISH_TIMEOUT_S = 120.0
HANDOVER_TIMEOUT_S = 45.0

# What each scenario must come out as (the simulator's catalogue and tests/asterisk/scenarios.py).
EXPECTED: dict[str, CallClass] = {
    "busy": CallClass.BUSY,
    "congestion": CallClass.CONGESTION,
    "no_answer": CallClass.NO_ANSWER,
    "early_unreachable_20": CallClass.ANN_TEMPORARILY_UNAVAILABLE,
    "sit_not_in_service_1": CallClass.ANN_NOT_IN_SERVICE,
    "person": CallClass.PERSON,
    "answered_announcement": CallClass.ANN_SWITCHED_OFF,
    "answered_silence": CallClass.ANSWERED_SILENCE,
    "unallocated": CallClass.UNALLOCATED,
    "early_bad_format_28": CallClass.ANN_DOES_NOT_EXIST,
    "ivr": CallClass.IVR,
    "early_suspended_21": CallClass.ANN_SUSPENDED,
    "early_busy_17": CallClass.ANN_SUBSCRIBER_BUSY,
    # a 2.1 s greeting could be a person's (issue 9: no speech pattern alone hangs up): the operator
    # takes it at the pause, before its beep
    "voicemail": CallClass.UNSURE_ANSWERED,
    "early_blocked_21": CallClass.ANN_BLOCKED,
    # «Алло?», a pause: a person (handed over at once); the line drops while they wait in the queue:
    # no operator answered, so the person is lost, not handed over (issue 9)
    "drop_mid_call": CallClass.PERSON_LOST,
    "early_number_changed_22": CallClass.ANN_NUMBER_CHANGED,
    "early_ringback_no_answer": CallClass.NO_ANSWER,
    "person_short": CallClass.PERSON,
    "person_two_phrases": CallClass.PERSON,
    "person_after_silence": CallClass.PERSON,
    "person_leaves_queue": CallClass.PERSON_LOST,
    "early_busy_tone": CallClass.BUSY,
    "early_congestion_tone": CallClass.CONGESTION,
    "early_media_gap": CallClass.ANN_TEMPORARILY_UNAVAILABLE,  # needs the AudioSocket keepalive
}
TO_OPERATOR = {CallClass.PERSON, CallClass.UNSURE_ANSWERED, CallClass.PERSON_LOST}  # redirected
QUEUE_OUTCOMES = ("AgentConnect", "QueueCallerAbandon")
# Scenarios whose person hangs up before an operator answers (operators pick up after 3 s).
ABANDONS = {"drop_mid_call", "person_leaves_queue"}


def contacts() -> list[Contact]:
    return [Contact(f"c{number[-3:]}", number, organisation=s.name == "ivr") for number, s in sorted(CAMPAIGN.items())]


@dataclass
class RealRun:
    setup: WorkerSetup
    worker: WorkerProcess
    rc: int
    actions: list[SentAction]
    pbx_events: list[tuple[float, AmiMessage]]
    mqtt: list[tuple[str, dict[str, object]]]
    export: dict[str, dict[str, str]]  # dialer export rows by number
    wall_offset: float  # time.time() - loop.time() of the monitor's stamps
    worker_events: list[AmiMessage]  # what the worker's own AMI user received
    attempts: dict[str, list[AttemptRow]] = field(default_factory=dict)
    contact_rows: dict[str, StoredContact] = field(default_factory=dict)
    number_of: dict[str, str] = field(default_factory=dict)  # attempt id → number

    def finished(self, number: str) -> dict[str, object]:
        lines = [f for f in self.worker.finished if self.number_of.get(str(f["attempt"])) == number]
        assert len(lines) == 1, f"{number}: {len(lines)} finished lines"
        return lines[0]

    def call_class(self, number: str) -> CallClass:
        return CallClass(str(self.finished(number)["call_class"]))

    def attempt_event(self, number: str) -> dict[str, object]:
        """The attempt_finished event of the number's attempt, as published."""
        attempt = str(self.attempts[number][0].id)
        for topic, payload in self.mqtt:
            if topic.endswith("/attempt") and payload.get("attempt_id") == attempt:
                return payload
        raise AssertionError(f"no attempt_finished event for {number}")

    def queue_events(self, name: str) -> dict[str, list[tuple[float, AmiMessage]]]:
        out: dict[str, list[tuple[float, AmiMessage]]] = {}
        for t, m in self.pbx_events:
            if m.event == name:
                out.setdefault(m.get("Uniqueid") or "", []).append((t, m))
        return out


async def _collect_mqtt(prefix: str, out: list[tuple[str, dict[str, object]]], ready: asyncio.Event) -> None:
    host, port = mqtt_address()
    async with aiomqtt.Client(host, port, identifier=f"{prefix}-sub") as sub:
        await sub.subscribe(f"{prefix}/#", qos=1)
        ready.set()
        async for msg in sub.messages:
            out.append((str(msg.topic), json.loads(bytes(msg.payload))))  # type: ignore[arg-type]


async def _real(pbx: Pbx, base: Path) -> RealRun:
    proxy = AmiProxy(pbx.ami_port)
    await proxy.start()
    monitor = await Recorder.connect(pbx.ami_port, "kit", pbx.instance.kit_secret)
    wall_offset = time.time() - asyncio.get_running_loop().time()
    setup = WorkerSetup(base, proxy.port, pbx.dialer_secret)
    mqtt: list[tuple[str, dict[str, object]]] = []
    ready = asyncio.Event()
    collector = asyncio.create_task(_collect_mqtt(setup.mqtt_prefix, mqtt, ready))
    try:
        await asyncio.wait_for(ready.wait(), 15)
        people = contacts()
        await setup.prepare(people)
        worker = await WorkerProcess.start(setup)
        try:
            await worker.wait_finished(len(people), FINISH_TIMEOUT_S)
            redirected = {str(a.get("Channel")) for a in proxy.of("Redirect")}

            def queue_settled() -> bool:
                done = {m.get("Uniqueid") for _t, m in monitor.events() if m.event in QUEUE_OUTCOMES}
                return redirected <= done

            # Every person handed over is either answered by an operator or leaves the queue.
            await monitor.wait_until(queue_settled, HANDOVER_TIMEOUT_S)
        finally:
            rc = await worker.stop()
        export_text = await setup.cli("export", "--campaign", CAMPAIGN_NAME)
        await asyncio.sleep(1.0)  # the last events the relay sent before it stopped
    finally:
        collector.cancel()
        await asyncio.gather(collector, return_exceptions=True)
        await monitor.close()
        await proxy.close()
    run = RealRun(
        setup=setup,
        worker=worker,
        rc=rc,
        actions=list(proxy.actions),
        pbx_events=monitor.events(),
        mqtt=mqtt,
        export={row["e164"].lstrip("+"): row for row in csv.DictReader(io.StringIO(export_text), delimiter=";")},
        wall_offset=wall_offset,
        worker_events=[r.message for r in proxy.received if r.message.event is not None],
    )
    for a in run.actions:
        if a.name == "originate":
            run.number_of[str(a.get("ChannelId"))] = str(a.get("Channel")).split("/")[1].split("@")[0]
    db = Database(setup.db_url)
    try:
        repo = await Repository.open(db, EventNotifier())
        async for page in repo.iter_contacts(CAMPAIGN_NAME):
            for c in page:
                number = (c.e164 or "").lstrip("+")
                run.contact_rows[number] = c
                run.attempts[number] = await repo.attempts_of(c.id)
    finally:
        await db.dispose()
    return run


@pytest.fixture(scope="module")
def real(carrier: Carrier, pbx: Pbx, tmp_path_factory: pytest.TempPathFactory) -> RealRun:
    return asyncio.run(_real(pbx, tmp_path_factory.mktemp("real-campaign")))


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> SimOutcome:
    setup = WorkerSetup(tmp_path_factory.mktemp("sim-campaign"), UNUSED_AMI_PORT, "unused")
    return asyncio.run(run_sim_campaign(setup, contacts(), SIM_TIME_SCALE))


def _scenario_ids() -> list[str]:
    return [f"{n[-3:]}-{CAMPAIGN[n].name}" for n in sorted(CAMPAIGN)]


# ---- the run itself ------------------------------------------------------------------------------


def test_worker_ran_and_stopped_cleanly(real: RealRun) -> None:
    assert real.rc == 0, real.worker.log_text()
    assert not [line for line in real.worker.raw if "Traceback" in line], "\n".join(real.worker.raw[-40:])
    logins = [a for a in real.actions if a.name == "login"]
    assert len(logins) == 1 and logins[0].get("Username") == "dialer"
    assert real.actions[1].name == "coreshowchannels"  # reconcile at login, before any call
    stopped = [line for line in real.worker.lines if str(line.get("msg", "")).startswith("worker stopped")]
    assert stopped, "the worker logged its orderly stop"


def test_every_contact_was_dialled_once_and_recorded_once(real: RealRun) -> None:
    originated = [str(a.get("Channel")).split("/")[1].split("@")[0] for a in real.actions if a.name == "originate"]
    assert sorted(originated) == sorted(CAMPAIGN)
    for number in CAMPAIGN:
        attempts = real.attempts[number]
        assert len(attempts) == 1, f"{number}: {attempts}"
        a = attempts[0]
        assert a.state != "in_progress" and a.ended_at is not None
        assert real.number_of[str(a.id)] == number
        assert a.call_class is CallClass(str(real.finished(number)["call_class"]))
        assert a.attempt_no == 1 and a.journal_line


@pytest.mark.parametrize("number", sorted(CAMPAIGN), ids=_scenario_ids())
def test_outcome_of_each_scenario(real: RealRun, number: str) -> None:
    scenario = CAMPAIGN[number]
    line = real.finished(number)
    assert real.call_class(number) is EXPECTED[scenario.name], f"{scenario.title}: {line['reason']}"


def test_originates_follow_the_contract(real: RealRun) -> None:
    settings = load_settings(real.setup.config)
    for a in real.actions:
        if a.name != "originate":
            continue
        attempt = str(a.get("ChannelId"))
        number = real.number_of[attempt]
        assert a.get("Channel") == f"Local/{number}@dialer-dial/n"
        assert (a.get("Context"), a.get("Exten"), a.get("Priority")) == ("dialer-analyse", "s", "1")
        assert (a.get("Async"), a.get("EarlyMedia")) == ("true", "true")
        assert uuid.UUID(attempt)
        variables = dict(v.split("=", 1) for v in a.message.get_all("Variable"))
        assert variables["DIALER_DIALSTRING"] == f"IAX2/carrier/{number}"
        assert variables["DIALER_RING_S"] == str(int(settings.dial.ring_timeout_s))
        assert variables["DIALER_AUDIOSOCKET"] == f"127.0.0.1:{real.setup.audiosocket_port}"
        assert variables["DIALER_ATTEMPT_ID"] == attempt


def test_machines_are_hung_up_and_people_handed_over(real: RealRun) -> None:
    hangups = {str(a.get("Channel")) for a in real.actions if a.name == "hangup"}
    redirects = [a for a in real.actions if a.name == "redirect"]
    redirected = {str(a.get("Channel")) for a in redirects}
    assert len(redirects) == len(redirected)  # one hand-over per person
    assert {(a.get("Context"), a.get("Exten")) for a in redirects} == {("dialer-operator", "s")}
    for number in CAMPAIGN:
        attempt = str(real.attempts[number][0].id)
        cls = real.call_class(number)
        if cls in TO_OPERATOR:
            assert attempt in redirected, f"{number} ({cls}) was not handed over"
            assert attempt not in hangups, f"{number}: the worker hung up on a person"
        else:
            assert attempt not in redirected, f"{number} ({cls}) reached the operators"
    # Announcements in early media and answered machines are ended by the worker, not left to run.
    for name in ("early_unreachable_20", "answered_announcement", "answered_silence", "ivr"):
        number = next(n for n, s in CAMPAIGN.items() if s.name == name)
        assert str(real.attempts[number][0].id) in hangups, f"{name} was not hung up by the worker"


def test_results_and_journal_follow_the_rules(real: RealRun) -> None:
    rules = RulesTable.load(load_settings(real.setup.config).rules_path)
    for number, scenario in CAMPAIGN.items():
        cls = real.call_class(number)
        owner = OwnerKind.ORGANISATION if scenario.name == "ivr" else OwnerKind.PERSON
        decision = rules.decide(cls, 1, owner)
        contact = real.contact_rows[number]
        row = real.export[number]
        assert (contact.state is ContactState.SETTLED) == decision.settled, number  # type: ignore[attr-defined]
        assert contact.result == decision.result, number  # type: ignore[attr-defined]
        assert contact.incorrect_contact == decision.incorrect_contact, number  # type: ignore[attr-defined]
        assert real.attempts[number][0].journal_line.endswith(" " + decision.journal_text)  # type: ignore[union-attr]
        assert row["journal"].splitlines()[-1] == real.attempts[number][0].journal_line
        assert row["attempts"] == "1"
    # the contact centre's cases, spelled out
    settled = {CAMPAIGN[n].name: real.contact_rows[n] for n in CAMPAIGN}
    assert settled["sit_not_in_service_1"].incorrect_contact  # type: ignore[attr-defined]
    assert settled["early_blocked_21"].result is ResultCode.UNAVAILABLE  # type: ignore[attr-defined]
    assert settled["ivr"].state is ContactState.SETTLED and not settled["ivr"].incorrect_contact  # type: ignore[attr-defined]
    assert settled["person"].result is ResultCode.HANDED_TO_OPERATOR  # type: ignore[attr-defined]
    assert settled["busy"].state is ContactState.PENDING  # retried later  # type: ignore[attr-defined]


def test_events_reached_the_broker(real: RealRun) -> None:
    prefix = real.setup.mqtt_prefix
    finished = {}
    for topic, payload in real.mqtt:
        if topic == f"{prefix}/campaign/{CAMPAIGN_NAME}/attempt":
            finished[str(payload["attempt_id"])] = payload
    assert len(finished) == len(CAMPAIGN), f"{len(finished)} attempt events of {len(CAMPAIGN)}"
    for number in CAMPAIGN:
        a = real.attempts[number][0]
        event = finished[str(a.id)]
        assert event["call_class"] == a.call_class.value  # type: ignore[union-attr]
        assert event["e164"] == f"+{number}"
        assert event["journal_line"] == a.journal_line
        assert event["worker_id"] == "real-worker"
    settled = {
        str(p["e164"]).lstrip("+")
        for t, p in real.mqtt
        if t == f"{prefix}/campaign/{CAMPAIGN_NAME}/contact" and p["type"] == "contact_settled"
    }
    assert settled == {n for n in CAMPAIGN if real.contact_rows[n].state is ContactState.SETTLED}  # type: ignore[attr-defined]


def test_people_reach_the_operators_queue(real: RealRun) -> None:
    joins = real.queue_events("QueueCallerJoin")
    connects = real.queue_events("AgentConnect")
    abandons = real.queue_events("QueueCallerAbandon")
    for number, scenario in CAMPAIGN.items():
        if real.call_class(number) not in TO_OPERATOR:
            continue
        attempt = str(real.attempts[number][0].id)
        assert len(joins.get(attempt, [])) == 1, f"{scenario.name}: QueueCallerJoin"
        assert joins[attempt][0][1].get("Queue") == "operators"
        if scenario.name in ABANDONS:
            assert attempt in abandons and attempt not in connects, f"{scenario.name} left the queue"
        else:
            assert attempt in connects and attempt not in abandons, f"{scenario.name}: AgentConnect"
            assert (connects[attempt][0][1].get("MemberName") or "").startswith("op")


def test_the_workers_least_rights_user_gets_call_and_queue_events_only(real: RealRun) -> None:
    """manager_dialer.conf: read = call,agent — the queue events reach the worker, the dialplan
    noise does not."""
    names = {m.event for m in real.worker_events}
    assert {"Newchannel", "DialEnd", "Hangup", "OriginateResponse"} <= names
    assert {"QueueCallerJoin", "AgentConnect", "QueueCallerAbandon", "QueueMemberStatus"} <= names
    assert not names & {"VarSet", "Newexten"}
    privileges = {m.get("Privilege") for m in real.worker_events if m.get("Privilege")}
    assert privileges <= {"call,all", "agent,all", "system,all", "security,all"}, privileges


def test_only_an_operator_answering_settles_a_hand_over(real: RealRun) -> None:
    """A person counts as handed over when an operator answered (AgentConnect), not at the
    Redirect: one who hung up in the queue is not «Передан оператору», and a hand-over is
    recorded only once the operator has answered."""
    connects = real.queue_events("AgentConnect")
    for number, scenario in CAMPAIGN.items():
        if real.call_class(number) not in TO_OPERATOR:
            continue
        attempt = real.attempts[number][0]
        contact = real.contact_rows[number]
        if scenario.name in ABANDONS:
            assert contact.result is not ResultCode.HANDED_TO_OPERATOR, f"{scenario.name} never reached an operator"
            continue
        assert contact.result is ResultCode.HANDED_TO_OPERATOR, scenario.name
        assert attempt.ended_at is not None
        agent_at = connects[str(attempt.id)][0][0] + real.wall_offset
        assert attempt.ended_at.timestamp() >= agent_at - 0.5, f"{scenario.name}: recorded before the operator answered"


# ---- the simulator against the real thing --------------------------------------------------------


@pytest.mark.parametrize("number", sorted(CAMPAIGN), ids=_scenario_ids())
def test_simulator_agrees_with_the_real_asterisk(real: RealRun, simulated: SimOutcome, number: str) -> None:
    sim = simulated.by_number[number]
    real_class = real.call_class(number)
    assert sim.call_class is real_class, (
        f"{CAMPAIGN[number].title}: real {real_class.value} ({real.finished(number)['reason']}), "
        f"simulated {sim.call_class.value} ({sim.reason})"
    )
    event = real.attempt_event(number)
    assert sim.answered is event["answered"], f"{CAMPAIGN[number].title}: answered"
    if event["dial_status"] is not None and sim.dial_status is not None:
        assert sim.dial_status == event["dial_status"], f"{CAMPAIGN[number].title}: DialStatus"
