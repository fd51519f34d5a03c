"""The worker learning by itself (``[learn] live``): the real worker against the simulator records
only the calls that may hold an unknown announcement (never a person's, never one a known
recording decided), and its collector clusters what they say — no cron, no call recording."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from dialer import app
from dialer.config import RecordUntil, load_settings
from dialer.domain.model import CallClass
from dialer.errors import ConfigError
from dialer.learn.live import INCOMING_DIR, learning_recorder
from dialer.learn.segments import worth_learning
from dialer.learn.store import LearnStore
from dialer.session.recording import call_dirs, read_recording
from dialer.sim.scenarios import SCENARIOS

from ..worker.harness import START, harness, seed
from ..worker.test_worker_sim import AUDIO_TIME_SCALE

NUMBERS = {f"+799900000{s.number}": s.name for s in SCENARIOS.values()}


def _decision(call_class: str, **kw: object) -> dict[str, object]:
    return {"call_class": call_class, "action": "hangup", "answered": False, "by_fingerprint": None, **kw}


def test_what_the_learning_recorder_keeps() -> None:
    # an unanswered announcement, one nobody could read (SIT, or the cause's retry class)
    assert worth_learning(_decision("ann_not_in_service"))
    assert worth_learning(_decision("sit_unrecognised"))
    assert worth_learning(_decision("no_answer"))
    # a false answer decided an announcement
    assert worth_learning(_decision("ann_switched_off", answered=True))
    # never: a known recording decided it, a person may be on it, the worker stopped mid-call
    assert not worth_learning(_decision("ann_not_in_service", by_fingerprint="mts_nis"))
    assert not worth_learning(_decision("person", action="hand_to_operator", answered=True))
    assert not worth_learning(_decision("unsure_answered", action="hand_to_operator", answered=True))
    assert not worth_learning(_decision("answered_silence", answered=True))
    assert not worth_learning(_decision("voicemail", answered=True))
    assert not worth_learning(_decision("aborted"))
    assert not worth_learning(None)
    assert not worth_learning(_decision("no_such_class"))


async def test_the_worker_collects_unknown_announcements_while_it_runs(tmp_path: Path) -> None:
    async with harness(tmp_path, time_scale=AUDIO_TIME_SCALE) as (h, ami_port, as_port):
        learn = replace(h.settings.learn, dir=tmp_path / "learn", live=True, collect_every_s=3600)
        h.settings = replace(h.settings, learn=learn)
        assert not h.settings.recording.enabled  # learning needs no call recording
        await seed(h.settings, list(NUMBERS), h.clock.now())
        rt = await app.build(h.settings, h.options(ami_port, as_port))
        assert rt.collector is not None and rt.recorder is not None
        stop = asyncio.Event()
        task = asyncio.create_task(app.run(rt, stop))
        try:
            await h.wait_finished(len(NUMBERS), timeout_s=120)
            await asyncio.sleep(0.5)  # the recorder's thread writes the last close
            rep = await rt.collector.collect_once()  # the pass the timer would run
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)

    live = {str(f.attempt_id): f for f in h.finished}
    kept = {str(read_recording(d).attempt_id): read_recording(d) for d in call_dirs(learn.dir / INCOMING_DIR)}
    # only what may hold an unknown announcement stayed on disk: no person, no answered call that
    # was not an announcement
    assert kept and len(kept) < len(live)
    for attempt_id, rec in kept.items():
        assert worth_learning(rec.decision), rec.decision
        assert live[attempt_id].evidence.call_class not in (CallClass.PERSON, CallClass.PERSON_LOST)
    person_calls = [a for a, f in live.items() if f.evidence.call_class is CallClass.PERSON]
    assert person_calls and not set(person_calls) & set(kept)
    assert rt.recorder.discarded == len(live) - len(kept)

    # the collector replayed them and clustered the announcements (the simulator's carrier
    # recordings are unknown to the shipped, empty library)
    assert rep is not None and rep.calls == len(kept)
    assert rep.kept >= 1 and rep.new_clusters >= 1
    state = LearnStore(learn.dir).load()
    assert state.clusters and set(state.collected) == set(kept)
    members = {m for c in state.clusters for m in c.members}
    assert members <= set(kept)
    heard = {live[m].evidence.call_class for m in members}
    assert heard & {CallClass.ANN_NOT_IN_SERVICE, CallClass.SIT_UNRECOGNISED, CallClass.NO_ANSWER}, heard


def test_live_learning_settings_and_which_recordings_it_reads(tmp_path: Path) -> None:
    cfg = tmp_path / "dialer.toml"
    cfg.write_text("[learn]\nlive = true\ncollect_every_s = 120\n", encoding="utf-8")
    settings = load_settings(cfg)
    assert settings.learn.live and settings.learn.collect_every_s == 120
    # no call recording: a recorder of its own that keeps only what is worth learning
    recorder, root = learning_recorder(settings, lambda: START)
    assert root == settings.learn.dir / INCOMING_DIR == recorder.settings.dir
    assert recorder.settings.until is RecordUntil.DECISION and recorder.settings.max_mb == settings.learn.max_mb
    # call recording on: its recordings, all of them
    on = replace(settings, recording=replace(settings.recording, enabled=True, dir=tmp_path / "rec"))
    recorder, root = learning_recorder(on, lambda: START)
    assert root == tmp_path / "rec" and recorder.settings is on.recording
    cfg.write_text("[learn]\ncollect_every_s = 5\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"learn\.collect_every_s: must be at least 10"):
        load_settings(cfg)
