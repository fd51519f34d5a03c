"""The learning room's metrics as a Prometheus text file (``<[learn] dir>/learn.prom``, for the
node exporter's textfile collector): drift events, unknown-announcement rates per carrier, clusters
by status."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

from dialer.learn.cluster import ClusterStatus
from dialer.learn.drift import DriftEvent
from dialer.learn.store import LearnState

METRICS_FILE = "learn.prom"


def write_metrics(directory: Path, state: LearnState, events: Sequence[DriftEvent]) -> Path:
    reg = CollectorRegistry()
    drift = Gauge(
        "dialer_announcement_drift",
        "Drift events now (1 per stale entry or jumping carrier)",
        ["kind", "subject"],
        registry=reg,
    )
    for e in events:
        drift.labels(e.kind, e.subject).set(1)
    total = Gauge("dialer_announcement_drift_events", "Drift events now, by kind", ["kind"], registry=reg)
    for kind in ("stale_entry", "unknown_rate_jump"):
        total.labels(kind).set(sum(e.kind == kind for e in events))
    rate = Gauge(
        "dialer_unknown_announcement_rate",
        "Unknown announcements / announcement calls, latest day",
        ["carrier"],
        registry=reg,
    )
    for carrier, days in state.tallies.items():
        if days:
            calls, unknown = days[max(days)]
            rate.labels(carrier).set(unknown / calls if calls else 0.0)
    clusters = Gauge("dialer_announcement_clusters", "Clusters of unknown announcements", ["status"], registry=reg)
    for s in ClusterStatus:
        clusters.labels(s.value).set(sum(c.status is s for c in state.clusters))
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / METRICS_FILE
    write_to_textfile(str(path), reg)
    return path
