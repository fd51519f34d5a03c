"""The simulator's AMI server: session rules, actions, fault injection, panoramisk compatibility."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from panoramisk import Manager

from dialer.ami.protocol import AmiMessage
from dialer.ami.transcript import read_transcript
from dialer.sim import SCENARIOS, SimAsterisk, scenario_for_number

from .amiclient import RawAmi
from .fixtures import reference_dir

SCALE = 0.02


@pytest.fixture
async def sim() -> AsyncIterator[SimAsterisk]:
    s = SimAsterisk(time_scale=SCALE)
    await s.start()
    yield s
    await s.stop()


@pytest.fixture
async def ami(sim: SimAsterisk) -> AsyncIterator[RawAmi]:
    client = await RawAmi.connect(sim.port)
    assert (await client.login())["Response"] == "Success"
    yield client
    await client.close()


def originate(client: RawAmi, number: str, *, action_id: str = "o1", **extra: str) -> str:
    channel_id = extra.pop("ChannelId", str(uuid.uuid4()))
    pairs = {
        "Channel": f"Local/{number}@dialer-dial/n",
        "Context": "dialer-analyse",
        "Exten": "s",
        "Priority": "1",
        "Async": "true",
        "EarlyMedia": "true",
        "ChannelId": channel_id,
        "Timeout": "30000",
        "CallerID": "dialer <74950000000>",
        "Variable": "DIALER_ATTEMPT=1",
        **extra,
    }
    client.send(("Action", "Originate"), ("ActionID", action_id), *pairs.items())
    return channel_id


def events_named(client: RawAmi, name: str) -> list[AmiMessage]:
    return [m for _t, m in client.events() if m.event == name]


async def test_login_banner_fullybooted_and_recorded_actions(sim: SimAsterisk) -> None:
    client = await RawAmi.connect(sim.port)
    try:
        reply = await client.login()
        assert reply["Message"] == "Authentication accepted"
        await client.wait_for(lambda m: m.event == "FullyBooted")
        auth = await client.wait_for(lambda m: m.event == "SuccessfulAuth")
        assert auth["AccountID"] == "dialer"
        # the banner of the real Asterisk the transcripts were recorded on (22.10.1: AMI 11.0.0)
        real = read_transcript(reference_dir() / "local" / "01-busy.txt").banner
        assert client.parser.banner == real == "Asterisk Call Manager/11.0.0"
        assert [a.name for a in sim.actions] == ["login"]
        assert sim.actions[0].get("Secret") == "***"  # the record never holds the secret
    finally:
        await client.close()


async def test_bad_login_is_refused_after_a_delay_and_closed() -> None:
    sim = SimAsterisk(time_scale=0.1, secret="right")
    await sim.start()
    client = await RawAmi.connect(sim.port)
    try:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        reply = await client.login(secret="wrong")
        assert (reply["Response"], reply["Message"]) == ("Error", "Authentication failed")
        assert loop.time() - t0 >= 0.09  # ~1 s, scaled
        await asyncio.wait_for(client.closed.wait(), 2)
    finally:
        await client.close()
        await sim.stop()


async def test_actions_before_login_are_denied_and_unknown_actions_rejected(sim: SimAsterisk) -> None:
    client = await RawAmi.connect(sim.port)
    try:
        denied = await client.action("Ping")
        assert (denied["Response"], denied["Message"]) == ("Error", "Permission denied")
        await client.login()
        unknown = await client.action("FlyToTheMoon")
        assert (unknown["Response"], unknown["Message"]) == ("Error", "Invalid/unknown command")
        pong = await client.action("Ping")
        assert pong["Ping"] == "Pong" and float(pong["Timestamp"]) > 0
        bye = await client.action("Logoff")
        assert bye["Response"] == "Goodbye"
        await asyncio.wait_for(client.closed.wait(), 2)
    finally:
        await client.close()


async def test_pause_pings_makes_a_half_open_connection(sim: SimAsterisk, ami: RawAmi) -> None:
    sim.pause_pings(True)
    with pytest.raises(TimeoutError):
        await ami.action("Ping", deadline_s=0.3)
    # everything else still answers: only the keepalive notices
    assert (await ami.action("CoreShowChannels"))["EventList"] == "start"
    sim.pause_pings(False)
    assert (await ami.action("Ping"))["Ping"] == "Pong"


async def test_busy_call_events_and_reason_0_through_local(sim: SimAsterisk, ami: RawAmi) -> None:
    channel_id = originate(ami, "79990000001")
    queued = await ami.wait_for(lambda m: m.action_id == "o1" and m.response is not None)
    assert queued["Message"] == "Originate successfully queued"
    response = await ami.wait_for(lambda m: m.event == "OriginateResponse")
    assert (response["Response"], response["Reason"]) == ("Failure", "0")
    assert response["Channel"] == "Local/79990000001@dialer-dial/n"  # the dial string on failure
    assert response["Uniqueid"] == channel_id and response["ActionID"] == "o1"
    await asyncio.wait_for(sim.wait_idle(), 5)
    await ami.sync()
    hangups = {
        m["Channel"].rsplit(";", 1)[-1] if ";" in m["Channel"] else "trunk": m for m in events_named(ami, "Hangup")
    }
    assert {k: (m["Cause"], m["Cause-txt"]) for k, m in hangups.items()} == {
        "trunk": ("17", "User busy"),
        "2": ("17", "User busy"),
        "1": ("17", "User busy"),
    }
    assert hangups["2"]["Uniqueid"] == f"{channel_id};2"
    trunk_uid = hangups["trunk"]["Uniqueid"]
    assert trunk_uid.split(".")[0].isdigit() and trunk_uid.split(".")[1].isdigit()
    assert all(m["Linkedid"] == channel_id for m in events_named(ami, "Hangup"))
    dial_ends = [m["DialStatus"] for m in events_named(ami, "DialEnd")]
    assert dial_ends == ["BUSY", "BUSY"]
    assert sim.live_channels() == []


async def test_originate_timeout_before_dial_timeout_gives_cause_19_and_no_dialend(
    sim: SimAsterisk, ami: RawAmi
) -> None:
    originate(ami, "79990000003", Timeout="5000")  # rings forever; Dial(…,30) would end at 30 s
    response = await ami.wait_for(lambda m: m.event == "OriginateResponse", deadline_s=5)
    assert (response["Response"], response["Reason"]) == ("Failure", "3")
    await asyncio.wait_for(sim.wait_idle(), 5)
    await ami.sync()
    l1 = [m for m in events_named(ami, "Hangup") if m["Channel"].endswith(";1")]
    assert [(m["Cause"], m["Cause-txt"]) for m in l1] == [("19", "User alerting, no answer")]
    assert [m["Cause"] for m in events_named(ami, "HangupRequest") if m["Channel"].endswith(";1")] == ["19"]
    # the originate's own dial (DestChannel ;1, no Channel) never ends with a DialEnd
    assert not [m for m in events_named(ami, "DialEnd") if "Channel" not in m]


async def test_dial_timeout_gives_noanswer(sim: SimAsterisk, ami: RawAmi) -> None:
    originate(ami, "79990000003")
    response = await ami.wait_for(lambda m: m.event == "OriginateResponse", deadline_s=5)
    assert (response["Response"], response["Reason"]) == ("Failure", "0")
    await ami.sync()
    assert [m["DialStatus"] for m in events_named(ami, "DialEnd")] == ["NOANSWER", "NOANSWER"]


async def test_hangup_redirect_and_coreshowchannels(sim: SimAsterisk, ami: RawAmi) -> None:
    missing = await ami.action("Hangup", ("Channel", "Local/nope;1"))
    assert (missing["Response"], missing["Message"]) == ("Error", "No such channel")
    bad = await ami.action(
        "Redirect", ("Channel", "Local/nope;1"), ("Context", "dialer-operator"), ("Exten", "s"), ("Priority", "1")
    )
    assert bad["Message"] == "Channel does not exist: Local/nope;1"

    channel_id = originate(ami, "79990000006")  # a person answers after 3 s of ringing
    await ami.wait_for(lambda m: m.event == "OriginateResponse", deadline_s=5)
    listing = await ami.action("CoreShowChannels")
    assert (listing["EventList"], listing["Message"]) == ("start", "Channels will follow")
    complete = await ami.wait_for(lambda m: m.event == "CoreShowChannelsComplete")
    assert complete["ListItems"] == "3" and complete["EventList"] == "Complete"
    shown = {m["Uniqueid"]: m for m in events_named(ami, "CoreShowChannel")}
    assert shown[channel_id]["ChannelStateDesc"] == "Up"
    assert shown[channel_id]["Application"] == "AudioSocket"
    assert shown[f"{channel_id};2"]["BridgeId"] != ""

    l1_name = shown[channel_id]["Channel"]
    ok = await ami.action(
        "Redirect", ("Channel", l1_name), ("Context", "dialer-operator"), ("Exten", "s"), ("Priority", "1")
    )
    assert ok["Message"] == "Redirect successful"
    queue = await ami.wait_for(lambda m: m.event == "Newexten" and m.get("Context") == "dialer-operator")
    assert (queue["Channel"], queue["Application"], queue["AppData"]) == (l1_name, "Queue", "operators")
    # the person talks to the operator, then hangs up normally
    await asyncio.wait_for(sim.wait_idle(), 5)
    await ami.sync()
    last = [m for m in events_named(ami, "Hangup") if m["Channel"] == l1_name]
    assert [(m["Cause"], m["Context"]) for m in last] == [("16", "dialer-operator")]
    assert [a.name for a in sim.actions].count("redirect") == 2


async def test_hangup_by_uniqueid_ends_the_call_from_our_side(sim: SimAsterisk, ami: RawAmi) -> None:
    channel_id = originate(ami, "79990000008")  # answered silence
    await ami.wait_for(lambda m: m.event == "OriginateResponse", deadline_s=5)
    reply = await ami.action("Hangup", ("Channel", channel_id))
    assert reply["Response"] == "Success"
    await asyncio.wait_for(sim.wait_idle(), 5)
    await ami.sync()
    assert [m["Cause"] for m in events_named(ami, "Hangup")] == ["16", "16", "16"]
    assert sim.live_channels() == []


async def test_ami_drop_mid_call_calls_live_on_and_reconnect_sees_them(sim: SimAsterisk, ami: RawAmi) -> None:
    channel_id = originate(ami, "79990000017")
    await ami.wait_for(lambda m: m.event == "OriginateResponse", deadline_s=5)
    await asyncio.wait_for(ami.closed.wait(), 5)  # the simulator dropped us mid-call
    assert channel_id in {ch.uniqueid for ch in sim.live_channels()}
    again = await RawAmi.connect(sim.port)
    try:
        await again.login()
        await again.action("CoreShowChannels")
        await again.wait_for(lambda m: m.event == "CoreShowChannelsComplete")
        assert channel_id in {m["Uniqueid"] for m in events_named(again, "CoreShowChannel")}
        await again.action("Hangup", ("Channel", channel_id))
        await asyncio.wait_for(sim.wait_idle(), 5)
        await again.sync()
        assert any(m["Uniqueid"] == channel_id for m in events_named(again, "Hangup"))
    finally:
        await again.close()


async def test_events_fan_out_to_every_client(sim: SimAsterisk, ami: RawAmi) -> None:
    other = await RawAmi.connect(sim.port)
    try:
        await other.login()
        originate(ami, "79990000009")
        await ami.wait_for(lambda m: m.event == "OriginateResponse")
        await asyncio.wait_for(sim.wait_idle(), 5)
        await ami.sync()
        await other.sync()
        mine = [m.headers for m in events_named(ami, "Hangup")]
        theirs = [m.headers for m in events_named(other, "Hangup")]
        assert len(mine) == 3 and mine == theirs
    finally:
        await other.close()


async def test_sync_originate_answers_after_the_outcome(sim: SimAsterisk, ami: RawAmi) -> None:
    originate(ami, "79990000002", action_id="s1", Async="false")
    reply = await ami.wait_for(lambda m: m.action_id == "s1", deadline_s=5)
    assert (reply["Response"], reply["Message"]) == ("Error", "Originate failed")
    originate(ami, "79990000007", action_id="s2", Async="false")
    reply = await ami.wait_for(lambda m: m.action_id == "s2", deadline_s=5)
    assert (reply["Response"], reply["Message"]) == ("Success", "Originate successfully queued")
    await ami.sync()
    assert not events_named(ami, "OriginateResponse")  # only Async originates get the event


async def test_panoramisk_client_works_against_the_simulator(sim: SimAsterisk) -> None:
    logged_in = asyncio.Event()
    manager = Manager(
        host="127.0.0.1",
        port=sim.port,
        username="dialer",
        secret="sim",
        ping_delay=60,
        on_login=lambda _m: logged_in.set(),
    )
    hangups: list[str] = []
    manager.register_event("Hangup", lambda _m, e: hangups.append(e["Channel"]))
    await manager.connect()
    try:
        await asyncio.wait_for(logged_in.wait(), 5)
        result = await asyncio.wait_for(
            manager.send_action(
                {
                    "Action": "Originate",
                    "Channel": "Local/79990000012@dialer-dial/n",
                    "Context": "dialer-analyse",
                    "Exten": "s",
                    "Priority": "1",
                    "Async": "true",
                    "EarlyMedia": "true",
                    "ChannelId": str(uuid.uuid4()),
                    "Variable": ["DIALER_ATTEMPT=1", "DIALER_X=2"],
                }
            ),
            5,
        )
        assert [m.get("Response") for m in result] == ["Success", "Success"]
        assert result[1]["Event"] == "OriginateResponse" and result[1]["Reason"] == "4"
        await asyncio.wait_for(sim.wait_idle(), 5)
        pong = await asyncio.wait_for(manager.send_action({"Action": "Ping"}), 5)
        assert pong["Ping"] == "Pong"
        assert len(hangups) == 3
    finally:
        manager.close()


async def test_many_concurrent_calls_all_settle() -> None:
    sim = SimAsterisk(time_scale=0.005)
    await sim.start()
    client = await RawAmi.connect(sim.port)
    try:
        await client.login()
        # every scenario but 17, which would drop this very connection
        numbers = [f"7999{i:07d}" for i in range(210) if i % 100 != 17][:200]
        ids = [originate(client, n, action_id=f"o{i}") for i, n in enumerate(numbers)]
        await client.wait_for(lambda m: m.action_id == "o199" and m.response is not None)
        await asyncio.wait_for(sim.wait_idle(), 30)
        await client.sync()
        responses = {m["Uniqueid"]: m for m in events_named(client, "OriginateResponse")}
        assert set(responses) == set(ids)  # exactly one OriginateResponse per originate
        ended = {m["Uniqueid"] for m in events_named(client, "Hangup")}
        assert set(ids) <= ended and {f"{i};2" for i in ids} <= ended
        assert sim.live_channels() == [] and sim.finished_calls == 200
    finally:
        await client.close()
        await sim.stop()


def test_scenario_choice_by_number() -> None:
    assert scenario_for_number("+7 999 000-00-01").name == "busy"
    assert scenario_for_number("79990000014").name == "voicemail"
    assert scenario_for_number("79990000014", {"79990000014": "ivr"}).name == "ivr"
    fallback = {scenario_for_number(f"79990000{n:03d}").name for n in range(20, 100)}
    assert "ami_drop" not in fallback and "drop_mid_call" not in fallback and len(fallback) > 10
    assert all(s.title for s in SCENARIOS.values())
    with pytest.raises(KeyError):
        scenario_for_number("1", {"1": "no-such-scenario"})


async def test_live_channel_names_stay_unique_under_load() -> None:
    sim = SimAsterisk(time_scale=0.2, seed=7)  # 20 s of answered silence → 4 s, ended by us sooner
    await sim.start()
    client = await RawAmi.connect(sim.port)
    try:
        await client.login()
        ids = [originate(client, "79990000008", action_id=f"u{i}") for i in range(300)]
        await client.wait_for(lambda m: m.action_id == "u299" and m.response is not None)
        while len(events_named(client, "OriginateResponse")) < 300:
            await client.sync()
        names = [ch.name for ch in sim.live_channels()]
        assert len(names) == 900 and len(set(names)) == 900  # IAX2 call numbers never collide
        for channel_id in ids:
            client.send(("Action", "Hangup"), ("Channel", channel_id))
        await asyncio.wait_for(sim.wait_idle(), 10)
    finally:
        await client.close()
        await sim.stop()


def test_standalone_entry_point_lists_the_scenarios(capsys: pytest.CaptureFixture[str]) -> None:
    from dialer.sim.__main__ import main

    assert main(["--list"]) == 0
    out = capsys.readouterr().out
    assert all(f"{s.number}  {s.name}" in out for s in SCENARIOS.values())


async def test_contract_variables_choose_the_trunk_and_ring_time(sim: SimAsterisk, ami: RawAmi) -> None:
    originate(ami, "79990000003", Variable="DIALER_DIALSTRING=PJSIP/79990000003@trunk,DIALER_RING_S=5")
    response = await ami.wait_for(lambda m: m.event == "OriginateResponse", deadline_s=5)
    assert response["Reason"] == "0"  # Dial(…,5) ran out long before the 30 s Originate timeout
    await ami.sync()
    dial = next(m for m in events_named(ami, "Newexten") if m["Application"] == "Dial")
    assert dial["AppData"] == "PJSIP/79990000003@trunk,5"
    begin = next(m for m in events_named(ami, "DialBegin") if "Channel" in m)
    assert begin["DialString"] == "79990000003@trunk"
    assert begin["DestChannel"].startswith("PJSIP/trunk-") and len(begin["DestChannel"]) == len("PJSIP/trunk-") + 8
    assert {m["Device"] for m in events_named(ami, "DeviceStateChange")} >= {"PJSIP/trunk"}
    assert [m["DialStatus"] for m in events_named(ami, "DialEnd")] == ["NOANSWER", "NOANSWER"]
