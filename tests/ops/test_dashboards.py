"""deploy/grafana/dialer.json and deploy/prometheus/alerts.yml (issue 13): every query parses
(promtool, where installed) and names only metrics the worker exposes; the alerts are
well-formed and the ones the issue asks for are there (promtool unit-tests two of them)."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from dialer.domain.model import CallClass, Evidence, Outcome
from dialer.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "dialer.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
METRIC = re.compile(r"\b(dialer_[a-z0-9_]+)")
PROMTOOL = shutil.which("promtool")


def exposed_names() -> set[str]:
    """Every sample name a worker exposes, with each kind of number observed once."""
    m = Metrics()

    async def outbox() -> tuple[int, datetime | None]:
        return 1, datetime(2026, 1, 1, tzinfo=UTC)

    m.watch(
        live_phases=lambda: ["answered"],
        ami_states=lambda: [("pbx1", "connected")],
        asr_queue=lambda: 0,
        outbox=outbox,
        clock=lambda: datetime(2026, 1, 1, tzinfo=UTC),
        recording_dir=ROOT / "deploy",
    )
    ev = Evidence(CallClass.PERSON, 0.9, "person", answered=True, dead_air_ms=100, queue_wait_ms=100)
    m.attempt_finished(ev, Outcome(True, None, False, None, "", "person"), None)
    m.decision_latency.labels("audio_start").observe(1.0)
    m.originated("pbx1", ok=True)
    m.claimed(0.01)
    m.asr_decoded(0.1)
    text = asyncio.run(m.exposition()).decode()
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}


def dashboard_queries() -> list[str]:
    doc = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in doc["panels"] for t in p.get("targets", [])]


def alert_rules() -> list[dict[str, object]]:
    doc = yaml.safe_load(ALERTS.read_text())
    return [r for g in doc["groups"] for r in g["rules"]]


def test_every_dashboard_and_alert_query_names_exposed_metrics() -> None:
    names = exposed_names()
    queries = dashboard_queries() + [str(r["expr"]) for r in alert_rules()]
    assert len(queries) > 10
    used = set()
    for q in queries:
        found = METRIC.findall(q)
        assert found, q
        for name in found:
            assert name in names, f"{name} (in {q!r}) is not exposed"
            used.add(name)
    # every issue-listed family is on the dashboard
    for family in (
        "dialer_attempts_total",
        "dialer_decisions_total",
        "dialer_decision_latency_seconds_bucket",
        "dialer_dead_air_seconds_bucket",
        "dialer_asr_decode_seconds_bucket",
        "dialer_asr_queue_depth",
        "dialer_live_calls",
        "dialer_originates_total",
        "dialer_ami_up",
        "dialer_outbox_backlog_events",
        "dialer_outbox_oldest_age_seconds",
        "dialer_claim_latency_seconds_bucket",
        "dialer_recording_disk_bytes",
    ):
        assert any(family in q for q in dashboard_queries()), family


def test_dashboard_is_a_grafana_dashboard() -> None:
    doc = json.loads(DASHBOARD.read_text())
    assert doc["uid"] and doc["title"] and doc["schemaVersion"] >= 30
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids))
    for p in doc["panels"]:
        assert p["type"] in ("timeseries", "stat")
        assert {"h", "w", "x", "y"} <= set(p["gridPos"])
        assert p["datasource"]["type"] == "prometheus"


def test_alerts_schema() -> None:
    rules = alert_rules()
    names = {str(r["alert"]) for r in rules}
    assert {
        "DialerAmiDown",
        "DialerOutboxBacklog",
        "DialerDecisionLatencyRegression",
        "DialerAbandonmentOverCap",
        "DialerDeadAirOverBudget",
    } <= names
    for r in rules:
        assert set(r) <= {"alert", "expr", "for", "labels", "annotations", "keep_firing_for"}, r
        assert re.fullmatch(r"\d+[smhd]", str(r["for"])), r
        assert r["labels"]["severity"] in ("warning", "critical")  # type: ignore[index]
        assert r["annotations"]["summary"]  # type: ignore[index]


@pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian package prometheus) not installed")
def test_promtool_parses_every_query(tmp_path: Path) -> None:
    assert PROMTOOL is not None
    out = subprocess.run([PROMTOOL, "check", "rules", str(ALERTS)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    # the dashboard's queries, parsed as recording rules
    records = [{"record": f"dashboard:q{i}", "expr": q} for i, q in enumerate(dashboard_queries())]
    rules = {"groups": [{"name": "dashboard", "rules": records}]}
    path = tmp_path / "dashboard.yml"
    path.write_text(yaml.safe_dump(rules))
    out = subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian package prometheus) not installed")
def test_promtool_alerts_fire_on_synthetic_series(tmp_path: Path) -> None:
    assert PROMTOOL is not None
    shutil.copy2(ALERTS, tmp_path / "alerts.yml")
    tests = {
        "rule_files": ["alerts.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": 'dialer_ami_up{instance="w1", server="pbx1"}', "values": "1 1 0 0 0 0"},
                    {"series": 'dialer_handovers_total{instance="w1", result="answered"}', "values": "0+10x80"},
                    {"series": 'dialer_handovers_total{instance="w1", result="lost"}', "values": "0+1x80"},
                ],
                "alert_rule_test": [
                    {"eval_time": "1m", "alertname": "DialerAmiDown", "exp_alerts": []},
                    {
                        "eval_time": "5m",
                        "alertname": "DialerAmiDown",
                        "exp_alerts": [
                            {
                                "exp_labels": {"severity": "critical", "instance": "w1", "server": "pbx1"},
                                "exp_annotations": {
                                    "summary": "AMI pbx1 down for w1",
                                    "description": "The worker is not logged in to Asterisk pbx1: no calls go "
                                    "through it.",
                                },
                            }
                        ],
                    },
                    {
                        "eval_time": "75m",
                        "alertname": "DialerAbandonmentOverCap",
                        "exp_alerts": [
                            {
                                "exp_labels": {"severity": "critical"},
                                "exp_annotations": {
                                    "summary": "Abandonment above 3 % over the last hour",
                                    "description": "Persons handed over are lost before an operator answers: pace "
                                    "the dialling down or add operators.",
                                },
                            }
                        ],
                    },
                ],
            }
        ],
    }
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(tests, allow_unicode=True))
    out = subprocess.run([PROMTOOL, "test", "rules", "tests.yml"], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
