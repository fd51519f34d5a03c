"""Drift: a library entry not heard for `stale_days`, or a carrier whose unknown-announcement rate
jumps, raises an event (queued for MQTT on announcements/drift) and a metric (learn.prom)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dialer.cli import main
from dialer.commands.common import CliContext
from dialer.config import Settings
from dialer.learn.drift import first_day, rate_jumps, stale_entries
from dialer.learn.metrics import METRICS_FILE
from dialer.learn.store import LearnStore

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


def days_ago(n: int) -> str:
    return (NOW - timedelta(days=n)).isoformat()


def test_stale_entries() -> None:
    heard = {"old": {"last": days_ago(40), "count": 3}, "fresh": {"last": days_ago(2), "count": 9}}
    approved = {"learned-c0001": days_ago(31), "learned-c0002": days_ago(3)}
    names = ["old", "fresh", "learned-c0001", "learned-c0002", "by-hand"]
    events = stale_entries(names, heard, approved, None, NOW, 30)
    assert [(e.subject, e.value) for e in events] == [("old", 40.0), ("learned-c0001", 31.0)]
    assert "never heard since" in events[1].message
    # a hand-made entry never heard counts from the first day the collector saw any call
    later = stale_entries(["by-hand"], {}, {}, days_ago(45)[:10], NOW, 30)
    assert [e.subject for e in later] == ["by-hand"]


def test_rate_jumps_need_a_usual_rate_and_enough_calls() -> None:
    day = NOW.date()
    week = {(day - timedelta(days=k)).isoformat(): [100, 5] for k in range(1, 8)}
    tallies = {
        "МТС": {**week, day.isoformat(): [40, 20]},  # 50 % today, 5 % usually
        "Билайн": {**week, day.isoformat(): [40, 3]},  # as usual
        "Т2": {**week, day.isoformat(): [10, 9]},  # too few calls today
        "new": {day.isoformat(): [50, 40]},  # no usual rate yet
    }
    events = rate_jumps(tallies, NOW, 3.0, 20)
    assert [(e.subject, e.value, e.baseline) for e in events] == [("МТС", 0.5, 0.05)]
    assert "20 of 40" in events[0].message
    assert first_day(tallies) == (day - timedelta(days=7)).isoformat()


def test_drift_verb_raises_events_and_metrics(
    learn_env: tuple[Path, Settings, list[Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, settings, _calls = learn_env
    assert main(["--config", str(cfg), "db", "upgrade"]) == 0
    assert main(["--config", str(cfg), "announcements", "collect"]) == 0
    cid = LearnStore(settings.learn.dir).load().clusters[0].id
    assert (
        main(["--config", str(cfg), "announcements", "approve", cid, "--class", "ann_switched_off", "--by", "ivan"])
        == 0
    )
    capsys.readouterr()
    soon = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert main(["--config", str(cfg), "announcements", "drift", "--now", soon]) == 0
    assert "no drift" in capsys.readouterr().out
    metrics = (settings.learn.dir / METRICS_FILE).read_text()
    assert 'dialer_announcement_drift_events{kind="stale_entry"} 0.0' in metrics
    assert 'dialer_announcement_clusters{status="approved"} 1.0' in metrics

    late = (datetime.now(UTC) + timedelta(days=31)).isoformat()
    assert main(["--config", str(cfg), "announcements", "drift", "--now", late]) == 3
    out = capsys.readouterr().out
    assert f"DRIFT stale_entry: library entry learned-{cid}: never heard since" in out
    assert "1 drift event(s) queued for MQTT (announcements/drift)" in out
    metrics = (settings.learn.dir / METRICS_FILE).read_text()
    assert f'dialer_announcement_drift{{kind="stale_entry",subject="learned-{cid}"}} 1.0' in metrics
    assert 'dialer_unknown_announcement_rate{carrier="unknown"} 1.0' in metrics

    async def outbox() -> list[tuple[str, dict[str, object]]]:
        ctx = CliContext(config_path=cfg)
        try:
            rows = await (await ctx.repository()).fetch_unpublished(10)
            return [(r.topic, r.payload) for r in rows]
        finally:
            await ctx.close()

    ((topic, payload),) = asyncio.run(outbox())
    assert topic == "announcements/drift" and payload["type"] == "announcement_drift"
    assert payload["kind"] == "stale_entry" and payload["subject"] == f"learned-{cid}"


def test_learn_settings_are_validated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "dialer.toml"
    cfg.write_text("[learn]\nmax_segmnets = 5\n")
    assert main(["--config", str(cfg), "announcements", "review"]) == 1
    assert "dialer.toml:2: learn.max_segmnets: unknown key (did you mean max_segments?)" in capsys.readouterr().err
    cfg.write_text("[learn]\nauto_approve_min_calls = -1\n")
    assert main(["--config", str(cfg), "announcements", "review"]) == 1
    assert "learn.auto_approve_min_calls: must be at least 0" in capsys.readouterr().err
