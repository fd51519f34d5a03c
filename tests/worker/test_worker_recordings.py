"""Call recordings: the worker records every simulator scenario live; each recording replays
through a new call session to the decision the worker took (class, action, time ± one frame);
retention and a broken recordings directory never touch a call."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import subprocess
import sys
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dialer import app
from dialer.config import RecordingSettings, RecordUntil
from dialer.domain.model import CallClass
from dialer.errors import InputError
from dialer.session.explain import explain, same_decision, verdict
from dialer.session.recording import (
    AUDIO_FILE,
    CALL_FILE,
    EVENTS_FILE,
    LAYOUT_VERSION,
    call_dirs,
    enforce_retention,
    read_recording,
)
from dialer.session.replay import replay_recording
from dialer.sim.audio import DATA_DIR
from dialer.sim.scenarios import SCENARIOS

from .harness import harness, run_until, seed
from .test_worker_sim import AUDIO_TIME_SCALE

NUMBERS = {f"+799900000{s.number}": s.name for s in SCENARIOS.values()}


async def test_every_simulator_scenario_replays_to_the_live_decision(tmp_path: Path) -> None:
    rec_dir = tmp_path / "rec"
    async with harness(tmp_path, time_scale=AUDIO_TIME_SCALE) as (h, ami_port, as_port):
        h.settings = replace(h.settings, announcements_path=DATA_DIR)  # known recordings decide too
        await seed(h.settings, list(NUMBERS), h.clock.now())
        opts = h.options(ami_port, as_port, recording=RecordingSettings(True, rec_dir, RecordUntil.HANGUP))
        await run_until(h, opts, len(NUMBERS), timeout_s=120)
        live = {str(f.attempt_id): f for f in h.finished}

    dirs = list(call_dirs(rec_dir))
    assert len(dirs) == len(NUMBERS) == len(live)
    setup = app.session_setup(h.settings)
    # the replay stretches the real-time budgets as the simulator's worker did, so it runs on the
    # recorded ticks (with other settings it derives its deadlines, and a loaded loop's differ)
    stretched = replace(setup, config=setup.config.stretched(AUDIO_TIME_SCALE))
    settings = json.loads(json.dumps(stretched.describe(), default=str))
    seen_classes: set[CallClass] = set()
    for d in dirs:
        rec = read_recording(d)
        assert rec.meta["complete"] is True, d
        finished = live[str(rec.attempt_id)]
        scenario = NUMBERS[finished.number]
        assert rec.meta["number"] == finished.number  # LEARN: the carrier of an unknown announcement
        assert rec.decision is not None
        if finished.evidence.call_class is CallClass.PERSON_LOST:
            # the decision was a hand-over; the network said afterwards that it failed (at ten
            # times real speed a short person scenario may hang up before the Redirect lands)
            assert rec.decision["action"] == "hand_to_operator", rec.decision
        else:
            assert rec.decision["call_class"] == finished.evidence.call_class.value
        assert rec.meta["settings"] == settings and rec.meta["time_scale"] == AUDIO_TIME_SCALE
        res = replay_recording(rec, setup)
        mine = verdict(res)
        assert mine is not None, f"{scenario}: no decision on replay\n{explain(rec, res)}"
        assert same_decision(rec.decision, mine), f"{scenario}: live {rec.decision} replay {mine}\n{explain(rec, res)}"
        assert res.evidence is not None and res.evidence.call_class is finished.evidence.call_class
        seen_classes.add(CallClass(rec.decision["call_class"]))  # decided (a person may be lost after)
        frames = [e for e in rec.entries if e.kind == "frame"]
        if finished.evidence.call_class is CallClass.PERSON:
            # a person's conversation with the operator is never recorded
            assert frames and max(e.t_ms for e in frames) <= int(rec.decision["decided_at_ms"])
    # the scenarios cover the classes the worker decides
    assert {CallClass.BUSY, CallClass.PERSON, CallClass.ANSWERED_SILENCE, CallClass.UNSURE_ANSWERED} <= seen_classes
    assert {CallClass.ANN_NOT_IN_SERVICE, CallClass.NO_ANSWER} <= seen_classes


async def test_until_decision_stops_the_audio_at_the_decision(tmp_path: Path) -> None:
    rec_dir = tmp_path / "rec"
    async with harness(tmp_path, time_scale=AUDIO_TIME_SCALE) as (h, ami_port, as_port):
        silence = "+79990000008"  # answered, 20 s of silence: decided after 6 s, hung up by us
        await seed(h.settings, [silence], h.clock.now())
        opts = h.options(ami_port, as_port, recording=RecordingSettings(True, rec_dir, RecordUntil.DECISION))
        await run_until(h, opts, 1)
    (d,) = call_dirs(rec_dir)
    rec = read_recording(d)
    assert rec.decision is not None and rec.decision["call_class"] == "answered_silence"
    frames = [e for e in rec.entries if e.kind == "frame"]
    assert frames and max(e.t_ms for e in frames) <= int(rec.decision["decided_at_ms"])
    assert (d / AUDIO_FILE).stat().st_size == sum(len(e.pcm) for e in frames)
    # the AMI events of the call are all there: the hang-up we asked for ended it
    hangups = [e for e in rec.entries if e.kind == "ami" and e.data["h"].get("Event") == "Hangup"]
    assert len(hangups) == 3


async def test_an_unwritable_recordings_directory_never_touches_a_call(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the recordings directory should be", encoding="utf-8")
    async with harness(tmp_path, time_scale=AUDIO_TIME_SCALE) as (h, ami_port, as_port):
        numbers = ["+79990000001", "+79990000006"]  # busy, person
        await seed(h.settings, numbers, h.clock.now())
        opts = h.options(ami_port, as_port, recording=RecordingSettings(True, blocker / "rec"))
        with caplog.at_level(logging.ERROR, logger="dialer.session.recording"):
            await run_until(h, opts, 2)
    assert sorted(f.evidence.call_class.value for f in h.finished) == ["busy", "person"]
    stopped = [r for r in caplog.records if "call recording stopped" in r.getMessage()]
    assert len(stopped) == 1  # one line, not one per call or per frame


def test_retention_drops_old_days_then_the_oldest_calls(tmp_path: Path) -> None:
    now = datetime(2026, 11, 29, 12, tzinfo=UTC)

    def call(day: datetime, size: int) -> Path:
        d = tmp_path / day.strftime("%Y-%m-%d") / str(uuid.uuid4())
        d.mkdir(parents=True)
        (d / "call.json").write_text(json.dumps({"version": 1}), encoding="utf-8")
        (d / EVENTS_FILE).write_text("", encoding="utf-8")
        (d / AUDIO_FILE).write_bytes(os.urandom(size))
        return d

    old = call(now - timedelta(days=20), 10)
    mid = call(now - timedelta(days=2), 700_000)
    new = call(now, 700_000)
    left = enforce_retention(RecordingSettings(True, tmp_path, keep_days=14, max_mb=1), now)
    assert not old.exists() and not (tmp_path / old.parent.name).exists()
    assert not mid.exists() and new.exists()  # over 1 MB: the oldest call goes first
    assert left <= 1024 * 1024 and left >= 700_000


@pytest.mark.parametrize("scale", ["fast", 0, -0.1, 2, True])
def test_a_recording_with_a_bad_time_scale_is_one_clear_error(tmp_path: Path, scale: object) -> None:
    meta = {"version": LAYOUT_VERSION, "attempt_id": str(uuid.uuid4()), "time_scale": scale}
    (tmp_path / CALL_FILE).write_text(json.dumps(meta), encoding="utf-8")
    (tmp_path / EVENTS_FILE).write_text("", encoding="utf-8")
    with pytest.raises(InputError, match=r"call\.json: time_scale must be a number in \(0, 1\], not "):
        read_recording(tmp_path)
    meta["time_scale"] = 0.1
    (tmp_path / CALL_FILE).write_text(json.dumps(meta), encoding="utf-8")
    assert read_recording(tmp_path).time_scale == 0.1


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dialer", *args], capture_output=True, text=True, timeout=120, check=False
    )


async def test_replay_explain_label_and_eval_over_recordings_from_the_cli(tmp_path: Path) -> None:
    rec_dir = tmp_path / "rec"
    truth = {"+79990000001": "busy", "+79990000006": "person", "+79990000008": "answered_silence"}
    async with harness(tmp_path, time_scale=AUDIO_TIME_SCALE) as (h, ami_port, as_port):
        await seed(h.settings, list(truth), h.clock.now())
        opts = h.options(ami_port, as_port, recording=RecordingSettings(True, rec_dir))
        await run_until(h, opts, len(truth))
    by_attempt = {str(f.attempt_id): f.number for f in h.finished}

    done = await asyncio.to_thread(_cli, "replay", str(rec_dir))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 call(s) replayed, 0 decided differently from live" in done.stdout

    dirs = {by_attempt[d.name]: d for d in call_dirs(rec_dir)}
    person = await asyncio.to_thread(_cli, "replay", str(dirs["+79990000006"]), "--explain")
    assert person.returncode == 0, person.stderr
    text = person.stdout
    assert "live:   hand_to_operator person" in text and "[same as live]" in text
    dead = re.search(r"dead air after the greeting: (\d+) ms", text)
    assert dead is not None and 0 <= int(dead.group(1)) <= 500
    assert re.search(r"^\s+\d+\s+net\s+Answered$", text, re.M)
    assert re.search(r"^\s+\d+\s+audio\s+speech pattern: person", text, re.M)
    assert re.search(r"^\s+\d+\s+decision\s+hand_to_operator: person", text, re.M)

    bad = await asyncio.to_thread(_cli, "label", str(dirs["+79990000001"]), "bizzy")
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "unknown call class 'bizzy'" in bad.stderr
    for number, cls in truth.items():
        labelled = await asyncio.to_thread(_cli, "label", str(dirs[number]), cls, "--by", "qa")
        assert labelled.returncode == 0, labelled.stderr
    th = tmp_path / "th.yaml"
    th.write_text("version: 1\nclasses:\n  busy: {precision: 1.0, recall: 1.0}\n", encoding="utf-8")
    ev = await asyncio.to_thread(_cli, "eval", str(rec_dir), "--thresholds", str(th))
    assert ev.returncode == 0, ev.stdout + ev.stderr
    assert "recorded calls: 3 labelled, 0 left out (no label)" in ev.stdout
    assert "person calls hung up on: 0 of 1" in ev.stdout and "All thresholds met." in ev.stdout
