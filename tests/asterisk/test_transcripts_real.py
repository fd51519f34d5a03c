"""Item 5 of issue 10: the AMI transcripts the simulator is checked against are recorded from the
real Asterisk by this suite (tests/asterisk/transcripts.py; ``DIALER_RERECORD_TRANSCRIPTS=1``
writes them to tests/asterisk/transcripts/, which tests/sim reads).

Every run records a fresh set and checks, on it: the simulator against each fresh transcript
(the same comparison tests/sim makes against the committed ones), and the committed transcripts
against the fresh ones, so neither the simulator nor the committed files can drift away from the
real Asterisk unnoticed.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from dialer.ami.transcript import parse_transcript, read_transcript
from tests.sim.compare import call_events, compare
from tests.sim.fixtures import RecordingAudioSocketServer
from tests.sim.test_handover import CASES as HANDOVER_CASES
from tests.sim.test_handover import run_sim_handover
from tests.sim.test_transcripts import AUDIOSOCKET, LOCAL, assert_same, run_sim

from .network import Carrier
from .transcripts import TRANSCRIPTS_DIR, record_all

# Fresh recordings are made with 27 instances running at once, on whatever load the CI machine
# has: one Asterisk thread can then publish 50–100 ms after another (seen at a load average of
# 7 on 2 cores). Events of different channels closer than this may come in either order; the
# sequence of each channel's own events is still compared exactly.
FRESH_TOLERANCE_S = 0.25
HANDOVER = tuple(sorted(HANDOVER_CASES))


@pytest.fixture(scope="module")
def fresh(carrier: Carrier, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("transcripts")
    recorded = asyncio.run(record_all(carrier))
    for item in recorded:
        item.write(out)
        if os.environ.get("DIALER_RERECORD_TRANSCRIPTS") == "1":
            item.write(TRANSCRIPTS_DIR)
    return out


def _same_call(committed: Path, fresh: Path) -> list[str]:
    """Problems found comparing two real recordings of one scenario (ChannelIds aligned)."""
    old = read_transcript(committed)
    old_id = next(m for _t, m in old.entries if m.event == "Newchannel")["Uniqueid"]
    text = fresh.read_text(encoding="utf-8")
    new_id = next(m for _t, m in parse_transcript(text).entries if m.event == "Newchannel")["Uniqueid"]
    new = parse_transcript(text.replace(new_id, old_id))
    result = compare(call_events(list(old.entries)), [m for _t, m in call_events(list(new.entries))], FRESH_TOLERANCE_S)
    return result.problems


def test_every_transcript_was_recorded(fresh: Path) -> None:
    assert sorted(p.stem for p in (fresh / "local").glob("*.txt")) == sorted(LOCAL)
    assert sorted(p.name.removesuffix(".ami.txt") for p in (fresh / "audiosocket").glob("*.ami.txt")) == sorted(
        AUDIOSOCKET
    )
    assert sorted(p.stem for p in (fresh / "handover").glob("*.txt")) == sorted(HANDOVER)
    for stem in AUDIOSOCKET:
        assert (fresh / "audiosocket" / f"{stem}.frames.log").stat().st_size > 0


@pytest.mark.parametrize("stem", LOCAL)
async def test_simulator_matches_a_fresh_local_transcript(fresh: Path, stem: str) -> None:
    path = fresh / "local" / f"{stem}.txt"
    assert_same(path, await run_sim(path, None), FRESH_TOLERANCE_S)


@pytest.mark.parametrize("stem", AUDIOSOCKET)
async def test_simulator_matches_a_fresh_audiosocket_transcript(fresh: Path, stem: str) -> None:
    path = fresh / "audiosocket" / f"{stem}.ami.txt"
    server = RecordingAudioSocketServer()
    port = await server.start()
    try:
        events = await run_sim(path, port)
    finally:
        await server.stop()
    assert_same(path, events, FRESH_TOLERANCE_S)


@pytest.mark.parametrize("stem", HANDOVER)
async def test_simulator_matches_a_fresh_handover_transcript(fresh: Path, stem: str) -> None:
    path = fresh / "handover" / f"{stem}.txt"
    assert_same(path, await run_sim_handover(path), FRESH_TOLERANCE_S)


@pytest.mark.parametrize(
    "rel",
    [f"local/{s}.txt" for s in LOCAL]
    + [f"audiosocket/{s}.ami.txt" for s in AUDIOSOCKET]
    + [f"handover/{s}.txt" for s in HANDOVER],
)
def test_committed_transcript_is_what_asterisk_does_today(fresh: Path, rel: str) -> None:
    committed = TRANSCRIPTS_DIR / rel
    assert committed.is_file(), f"{committed} missing: DIALER_RERECORD_TRANSCRIPTS=1 re-records it"
    problems = _same_call(committed, fresh / rel)
    assert not problems, f"{rel} differs from a fresh recording (re-record?):\n" + "\n".join(problems[:12])


def _events(path: Path) -> list[tuple[str, str, dict[str, str]]]:
    """(event, Uniqueid, headers) of a transcript's events."""
    return [(m.event or "", m.get("Uniqueid") or "", m.to_dict()) for _t, m in read_transcript(path).events()]


def _caller(path: Path) -> str:
    return next(uid for ev, uid, _h in _events(path) if ev == "Newchannel")


def test_handover_answered_by_an_operator(fresh: Path) -> None:
    path = fresh / "handover" / "20-person-handed-over-answered.txt"
    caller = _caller(path)
    mine = [(ev, h) for ev, uid, h in _events(path) if uid == caller]
    names = [ev for ev, _h in mine]
    for needed in ("QueueCallerJoin", "AgentCalled", "AgentConnect", "QueueCallerLeave"):
        assert needed in names, f"{needed} missing on the person's ;1"
    assert names.index("QueueCallerJoin") < names.index("AgentCalled") < names.index("AgentConnect")
    # AgentComplete comes after the call, with the caller's channel or without it (already gone)
    everything = [ev for ev, _uid, _h in _events(path)]
    assert everything.index("AgentComplete") > len(everything) - 1 - everything[::-1].index("AgentConnect")
    assert "QueueCallerAbandon" not in names
    join = dict(mine[names.index("QueueCallerJoin")][1])
    assert (join["Queue"], join["Position"], join["Privilege"]) == ("operators", "1", "agent,all")


def test_handover_abandoned_in_the_queue(fresh: Path) -> None:
    path = fresh / "handover" / "21-person-abandons-queue.txt"
    caller = _caller(path)
    names = [ev for ev, uid, _h in _events(path) if uid == caller]
    assert "QueueCallerJoin" in names and "QueueCallerAbandon" in names
    assert "AgentConnect" not in names
    assert names.index("QueueCallerAbandon") < names.index("Hangup")


@pytest.mark.parametrize("stem", ["22-redirect-queue-missing", "23-redirect-context-missing"])
def test_redirect_with_nowhere_to_go(fresh: Path, stem: str) -> None:
    path = fresh / "handover" / f"{stem}.txt"
    entries = read_transcript(path).entries
    redirect = [m for _t, m in entries if m.get("Message") == "Redirect successful"]
    assert redirect, "Asterisk accepts the Redirect"
    caller = _caller(path)
    names = [ev for ev, uid, _h in _events(path) if uid == caller]
    assert not {"QueueCallerJoin", "AgentConnect"} & set(names)
    assert names[-1] == "Hangup"
