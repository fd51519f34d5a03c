"""The loop, end to end through the command line: recorded calls repeating three carrier
recordings → `dialer announcements collect` (carriers from the numbering registry) → `review` →
`approve` (who, from which calls, library version) → the next replay decides those calls by
fingerprint, and a second collect keeps nothing new and counts the entries as heard."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dialer import app
from dialer.cli import main
from dialer.config import Settings, load_settings
from dialer.learn.library import LEARNED_FILE
from dialer.learn.store import LearnStore
from dialer.learn.synthetic import Clip, write_calls
from dialer.session.recording import call_dirs, read_recording
from dialer.session.replay import replay_recording

from .conftest import NUMBERS, ROOT, START, base_setup

REGISTRY = ROOT / "tests" / "domain" / "data" / "DEF-9xx-sample.csv"


def cli(cfg: Path, *argv: str) -> int:
    return main(["--config", str(cfg), *argv])


def clusters_by_truth(settings: Settings) -> dict[str, dict[str, object]]:
    """cluster id → its members' true recordings, from the recordings' own truth."""
    truth = {str(read_recording(d).attempt_id): read_recording(d).meta["truth"]["clip"]
             for d in call_dirs(settings.recording.dir)}  # fmt: skip
    state = LearnStore(settings.learn.dir).load()
    return {c.id: {"clips": {truth[m] for m in c.members}, "cluster": c} for c in state.clusters}


def test_collect_cluster_approve_then_replay_decides_by_fingerprint(
    learn_env: tuple[Path, Settings, list[Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, settings, calls = learn_env
    assert cli(cfg, "db", "upgrade") == 0
    assert cli(cfg, "numbering", "import", str(REGISTRY)) == 0
    capsys.readouterr()
    # before: nothing known, every call decided by the recognizer's text
    setup = base_setup(settings)
    before = [replay_recording(read_recording(d), setup) for d in calls]
    assert all(r.session.listening.fingerprint is None for r in before)

    assert cli(cfg, "announcements", "collect", "--now", "2026-11-20T12:00Z") == 0
    out = capsys.readouterr().out
    assert "12 new recorded call(s): 12 unknown announcement(s) kept, 0 decided by a known recording" in out
    found = clusters_by_truth(settings)
    assert len(found) == 3 and all(len(v["clips"]) == 1 for v in found.values())  # type: ignore[arg-type]
    c_not_working = next(k for k, v in found.items() if v["clips"] == {"not_in_service"})
    c = found[c_not_working]["cluster"]
    assert set(c.carriers) <= {'ПАО "ВымпелКом"', 'ООО "Т2 Мобайл"'} and c.carriers  # type: ignore[attr-defined]
    seg = LearnStore(settings.learn.dir).facts(c.members[0])  # type: ignore[attr-defined]
    assert seg is not None and seg["dial_status"] == "CANCEL" and seg["cause"] == 16 and seg["number_range"]

    assert cli(cfg, "announcements", "review") == 0
    table = capsys.readouterr().out
    assert c_not_working in table and "ann_not_in_service" in table and "not working: a person approves" in table

    for cid, v in found.items():
        cls = v["cluster"].proposed.value  # type: ignore[attr-defined]
        assert cli(cfg, "announcements", "approve", cid, "--class", cls, "--by", "olga") == 0
    out = capsys.readouterr().out
    assert "(library v3)" in out
    learned = json.loads((settings.announcements_path / LEARNED_FILE).read_text("utf-8"))  # type: ignore[operator]
    assert learned["version"] == 3 and [e["approved_by"] for e in learned["entries"]] == ["olga"] * 3
    entry = next(e for e in learned["entries"] if e["cluster"] == c_not_working)
    assert entry["class"] == "ann_not_in_service" and sorted(entry["from_calls"]) == sorted(c.members)  # type: ignore[attr-defined]
    assert "approved by olga" in (settings.announcements_path / "announcements.yaml").read_text("utf-8")  # type: ignore[operator]

    # after: the worker's own loader reads the library; the same calls are decided by fingerprint
    app.fingerprint_library.cache_clear()
    settings = load_settings(cfg)
    setup = app.session_setup(settings)
    assert setup.fingerprints is not None and len(setup.fingerprints) == 3
    after = [replay_recording(read_recording(d), setup) for d in calls]
    by_fp = [r for r in after if r.session.listening.fingerprint is not None]
    assert len(by_fp) >= 10, [r.evidence for r in after]
    for r, d in zip(after, calls, strict=True):
        truth = read_recording(d).meta["truth"]
        assert r.evidence is not None and r.evidence.call_class.value == truth["call_class"]
    _a_new_day_is_decided_by_the_library(cfg, settings, learn_env, capsys)


def _a_new_day_is_decided_by_the_library(
    cfg: Path, settings: Settings, learn_env: tuple[Path, Settings, list[Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    """A new day of calls: the learned recordings decide, nothing new is kept."""
    new_calls = write_calls(settings.recording.dir, [c for c in _clips(learn_env)], 6, np.random.default_rng(11),
                            base_setup(settings), start=START.replace(day=21), numbers=NUMBERS)  # fmt: skip
    capsys.readouterr()
    assert cli(cfg, "announcements", "collect", "--now", "2026-11-21T12:00Z") == 0
    out = capsys.readouterr().out
    kept = int(out.split("call(s): ")[1].split(" unknown")[0])
    assert out.startswith(f"{len(new_calls)} new recorded call(s)") and kept <= 1, out
    state = LearnStore(settings.learn.dir).load()
    assert sum(int(h["count"]) for h in state.heard.values()) >= len(new_calls) - 1
    assert cli(cfg, "announcements", "review") == 0
    assert "no clusters to review" in capsys.readouterr().out or kept == 1


def _clips(env: tuple[Path, Settings, list[Path]]) -> list[Clip]:
    from dialer.learn.synthetic import clips_from_library
    from dialer.sim.audio import DATA_DIR

    from .conftest import CLIP_NAMES

    return clips_from_library(DATA_DIR, CLIP_NAMES)


def test_auto_approval_takes_temporary_classes_only(
    learn_env: tuple[Path, Settings, list[Path]], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cfg, settings, _calls = learn_env
    cfg.write_text(
        cfg.read_text("utf-8").replace("max_segments = 100", "max_segments = 100\nauto_approve_min_calls = 2")
    )
    assert cli(cfg, "announcements", "collect") == 0
    out = capsys.readouterr().out
    assert "carriers unknown" in out  # no database here: the review still works without carriers
    state = LearnStore(settings.learn.dir).load()
    approved = {c.approved_class for c in state.clusters if c.status == "approved"}
    assert approved == {"ann_temporarily_unavailable", "ann_switched_off"}
    assert all(c.approved_by and c.approved_by.startswith("auto") for c in state.clusters if c.status == "approved")
    (open_one,) = [c for c in state.clusters if c.status == "open"]
    assert open_one.proposed is not None and open_one.proposed.value == "ann_not_in_service"


def test_bounded_store_keeps_every_cluster_clip(
    learn_env: tuple[Path, Settings, list[Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, settings, _calls = learn_env
    cfg.write_text(cfg.read_text("utf-8").replace("max_segments = 100", "max_segments = 4"))
    assert cli(cfg, "announcements", "collect") == 0
    assert "8 old segment(s) deleted" in capsys.readouterr().out
    store = LearnStore(settings.learn.dir)
    state = store.load()
    assert len(store.segment_ids()) == 4 and sum(c.count for c in state.clusters) == 12
    assert all(store.audio(c.representative) is not None for c in state.clusters)


def test_review_errors_are_one_line(
    learn_env: tuple[Path, Settings, list[Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, _settings, _calls = learn_env
    assert cli(cfg, "announcements", "review") == 0
    assert "no clusters to review" in capsys.readouterr().out
    assert cli(cfg, "announcements", "collect") == 0
    capsys.readouterr()
    assert cli(cfg, "announcements", "review", "--json") == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 3 and sum(r["count"] for r in rows) == 12
    assert {r["proposed"] for r in rows} == {"ann_temporarily_unavailable", "ann_switched_off", "ann_not_in_service"}
    assert all(r["agreeing"] >= 1 and r["best_text"] and r["status"] == "open" for r in rows)
    assert cli(cfg, "announcements", "approve", "c9999", "--class", "ann_blocked", "--by", "x") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no cluster 'c9999'" in err
    assert cli(cfg, "announcements", "approve", "c0001", "--class", "nonsense", "--by", "x") == 1
    assert "unknown call class 'nonsense'" in capsys.readouterr().err
    assert cli(cfg, "announcements", "reject", "c0001", "--by", "x") == 0
    assert (
        cli(cfg, "announcements", "approve", "c0001", "--class", "ann_blocked", "--by", "x") == 0
    )  # changed their mind
    assert cli(cfg, "announcements", "approve", "c0001", "--class", "ann_blocked", "--by", "x") == 1
    assert "already in the library" in capsys.readouterr().err


def test_an_approval_that_would_break_the_library_changes_nothing(
    learn_env: tuple[Path, Settings, list[Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, settings, _calls = learn_env
    assert cli(cfg, "announcements", "collect") == 0
    assert settings.announcements_path is not None
    index = settings.announcements_path / "announcements.yaml"
    broken = "announcements:\n  - file: missing.wav\n    class: ann_blocked\n"
    index.write_text(broken, "utf-8")
    capsys.readouterr()
    assert cli(cfg, "announcements", "approve", "c0001", "--class", "ann_blocked", "--by", "x") == 1
    err = capsys.readouterr().err
    assert "the library would not load" in err and "nothing changed" in err
    assert index.read_text("utf-8") == broken
    assert not list(settings.announcements_path.glob("learned-*.wav"))
    assert not (settings.announcements_path / LEARNED_FILE).exists()
    assert all(c.status == "open" for c in LearnStore(settings.learn.dir).load().clusters)
