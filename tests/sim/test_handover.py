"""The simulator's hand-over against real Asterisk 22 transcripts (tests/asterisk/transcripts/handover/):
after the worker's ``Redirect`` to the operator context, the Queue, the operators' Local channels,
QueueCallerJoin / AgentCalled / AgentConnect / QueueCallerLeave / AgentComplete /
QueueCallerAbandon, and what happens when the queue or the operator context is missing — event
for event (tests/sim/compare.py), driven exactly as the recording was: the worker's Originate into
dialer-analyse, AudioSocket, and the Redirect at the same moment after the answer.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from dialer.ami.protocol import AmiMessage
from dialer.ami.transcript import read_transcript
from dialer.sim import SimAsterisk
from dialer.sim.queue import QueueConfig, QueueMember
from tests.asterisk.scenarios import EXTRA

from .amiclient import RawAmi
from .compare import call_events
from .fixtures import RecordingAudioSocketServer, reference_dir
from .test_transcripts import assert_same

TIME_SCALE = 0.05
# The real-Asterisk suite's operators (tests/asterisk/conf/pbx): two Local members that ring 3 s.
OPERATORS = QueueConfig(
    name="operators",
    members=tuple(QueueMember(f"Local/op{i}@dialer-test-operators/n", f"op{i}", answer_after_s=3.0) for i in (1, 2)),
)
CASES = {
    "20-person-handed-over-answered": {"operators": OPERATORS},
    "21-person-abandons-queue": {"operators": OPERATORS},
    "22-redirect-queue-missing": {},
    "23-redirect-context-missing": {"operators": OPERATORS},
}


def _recorded(path: Path) -> tuple[AmiMessage, list[tuple[str, str]], float, str]:
    """The Originate the recording sent (rebuilt from its VarSets), the Redirect's delay after the
    answer, and its context."""
    entries = read_transcript(path).entries
    first = next(m for _t, m in entries if m.event == "Newchannel")
    uid = first["Uniqueid"]
    variables = [
        (m["Variable"], m["Value"])
        for _t, m in entries
        # ;2 has them in the Originate's order (;1 has them last-first)
        if m.event == "VarSet" and m.get("Uniqueid") == f"{uid};2" and m["Variable"].startswith("DIALER_")
    ]
    answered = next(
        t
        for t, m in entries
        if m.event == "Newstate" and m.get("Uniqueid") == f"{uid};2" and m.get("ChannelState") == "6"
    )
    redirected = next(t for t, m in entries if m.get("Message") == "Redirect successful")
    context = next(
        (m["Context"] for _t, m in entries if m.event == "Hangup" and m.get("Uniqueid") == uid), "dialer-operator"
    )
    return first, variables, redirected - answered, context


async def run_sim_handover(path: Path) -> list[AmiMessage]:
    """The simulator's events for the hand-over a transcript recorded (same call, same Redirect)."""
    first, variables, redirect_after_s, context = _recorded(path)
    number, uid = first["Exten"], first["Uniqueid"]
    server = RecordingAudioSocketServer()
    port = await server.start()
    sim = SimAsterisk(
        time_scale=TIME_SCALE,
        audiosocket_addr=("127.0.0.1", port),
        number_map=dict(EXTRA),
        queues=CASES[path.stem],
    )
    await sim.start()
    client = await RawAmi.connect(sim.port)
    try:
        await client.login()
        client.send(
            ("Action", "Originate"),
            ("ActionID", "rec-1"),
            ("Channel", f"Local/{number}@dialer-dial/n"),
            ("Context", "dialer-analyse"),
            ("Exten", "s"),
            ("Priority", "1"),
            ("Timeout", "35000"),
            ("ChannelId", uid),
            ("Async", "true"),
            ("EarlyMedia", "true"),
            *[("Variable", f"{k}={v}") for k, v in variables],
            ("CallerID", "Dialer <74950000000>"),
        )
        await client.wait_for(
            lambda m: m.event == "Newstate" and m.get("Uniqueid") == f"{uid};2" and m.get("ChannelState") == "6",
            deadline_s=10,
        )
        await asyncio.sleep(redirect_after_s * TIME_SCALE)
        reply = await client.action(
            "Redirect", ("Channel", uid), ("Context", context), ("Exten", "s"), ("Priority", "1")
        )
        assert reply.get("Message") == "Redirect successful"
        await asyncio.wait_for(sim.wait_idle(), 15)
        await client.sync()
        return [m for _t, m in call_events(client.received)]
    finally:
        await client.close()
        await sim.stop()
        await server.stop()


@pytest.mark.parametrize("stem", sorted(CASES))
async def test_handover_matches_the_real_transcript(stem: str) -> None:
    path = reference_dir() / "handover" / f"{stem}.txt"
    assert_same(path, await run_sim_handover(path))
