"""Fault injection with real processes (issue 11, small sizes; bench/bench_faults.py and
bench/bench_soak.py run the full sizes and print the figures the README quotes).

Every scenario ends with the same three figures — lost, duplicate, stuck — which must be 0, plus
its own evidence that the fault really struck (calls in flight at the kill, events published while
the broker was down …), so a test cannot pass by not injecting anything."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .scenarios import Figures, ami_drop, broker_down, kill9_restart, postgres_restart, soak

pytestmark = pytest.mark.slow


@pytest.fixture
def workdir() -> Iterator[Path]:
    # Outside pytest's private tmp: the private PostgreSQL runs as another user.
    with tempfile.TemporaryDirectory(prefix="dialer-faults-") as d:
        yield Path(d)


def assert_nothing_lost(fig: Figures) -> None:
    assert fig.contacts > 0
    assert (fig.lost, fig.duplicate, fig.stuck) == (0, 0, 0), fig.problems


async def test_kill9_with_calls_in_flight_then_restart_as_the_readme_says(workdir: Path) -> None:
    fig = await kill9_restart(workdir, db="sqlite", calls=12, time_scale=0.3, ring_timeout_s=30.0)
    assert_nothing_lost(fig)
    d = fig.details
    assert d["live_calls_at_kill"] == 12 and d["open_attempts_at_kill"] >= 6
    # every attempt the dead worker left open was closed by the new one, after the lease
    assert d["dead_attempts_closed_as_our_failure"] + d["dead_attempts_with_verdict"] >= d["open_attempts_at_kill"]
    assert "'taken_over': " in d["restarted_worker_leases"]


@pytest.mark.postgres
async def test_kill9_on_postgresql(workdir: Path) -> None:
    fig = await kill9_restart(workdir, db="postgresql", calls=10, time_scale=0.3, ring_timeout_s=30.0)
    assert_nothing_lost(fig)
    assert fig.details["live_calls_at_kill"] == 10


async def test_ami_connections_drop_mid_call(workdir: Path) -> None:
    fig = await ami_drop(workdir, calls=12)
    assert_nothing_lost(fig)
    assert fig.details["ami_drop_calls"] == 3 and fig.details["ami_drop_verdicts"] == ["person"]
    assert fig.details["ami_logins"] >= 2  # it really reconnected


@pytest.mark.mqtt
async def test_mqtt_broker_down_loses_no_event(workdir: Path) -> None:
    fig = await broker_down(workdir, calls=20, down_s=5.0)
    assert_nothing_lost(fig)
    assert fig.details["attempts_finished_while_down"] >= 1, "nothing happened while the broker was down"
    assert fig.details["lost_events"] == 0
    assert fig.details["attempt_events_received"] == fig.details["attempt_events_expected"] == 20


@pytest.mark.postgres
async def test_postgresql_restarted_mid_campaign(workdir: Path) -> None:
    fig = await postgres_restart(workdir, calls=20, down_s=3.0)
    assert_nothing_lost(fig)
    assert fig.details["worker_alive_after"] is True and fig.details["worker_exit_code"] == 0


@pytest.mark.postgres
async def test_three_workers_two_servers_one_postgresql(workdir: Path) -> None:
    fig = await soak(workdir, workers=3, servers=2, contacts=150, db="postgresql")
    assert_nothing_lost(fig)
    d = fig.details
    # every originate has its attempt and every contact was dialled (a person lost in the operators'
    # queue is called back by the rules, so a few contacts have a second attempt)
    assert d["attempts"] == d["originates_seen_by_observer"] and d["attempts"] >= 150
    assert len(d["attempts_per_worker"]) == 3 and min(d["attempts_per_worker"]) > 0  # all three worked
