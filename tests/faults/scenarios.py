"""The fault scenarios, at any size: the tests run them small, bench/bench_faults.py and
bench/bench_soak.py at full size. Each returns its figures (lost, duplicate, stuck …)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .lab import (
    CallObserver,
    EventCollector,
    MqttTarget,
    Proc,
    Sim,
    Snapshot,
    database,
    free_port,
    numbers_for,
    progress,
    seed,
    snapshot,
    start_sim,
    start_worker,
    wait_until,
    worker_json_lines,
    write_config,
)

if TYPE_CHECKING:
    from tests.events.support import Mosquitto

# For "N calls in flight" on a small machine: mostly ringing (no audio to analyse), with persons,
# voicemail and early media among them.
RINGING_MOSTLY = ("03", "03", "06", "03", "14", "03", "19", "03", "06", "03")
MIXED_CALLS = ("01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12", "13", "14", "15", "18")


@dataclass
class Figures:
    contacts: int = 0
    lost: int = 0
    duplicate: int = 0
    stuck: int = 0
    details: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _verdicts(snap: Snapshot, fig: Figures, observer: CallObserver | None) -> None:
    fig.contacts = snap.contacts
    fig.lost = len(snap.lost)
    if snap.retry_later:
        fig.details["retry_later_our_failure"] = len(snap.retry_later)
    fig.duplicate = len(snap.duplicates) + (len(observer.double_dials) if observer else 0)
    fig.problems += snap.duplicates + (observer.double_dials if observer else [])
    if snap.lost:
        fig.problems.append(f"contacts without a verdict: {snap.lost[:10]}")


async def _all_decided(url: str) -> Snapshot | None:
    """Every contact has its verdict (nothing in progress)."""
    snap = await snapshot(url)
    return snap if not snap.without_verdict and snap.in_progress_attempts == 0 else None


async def _all_settled_or_scheduled(url: str) -> Snapshot | None:
    """Every contact was dialled, nothing is in progress, and every contact has its verdict or a
    due time (an originate that failed on our side is retried minutes later, by the rules)."""
    snap = await snapshot(url)
    dialled = {a["contact_id"] for a in snap.attempts if a["state"] == "finished"}
    done = len(dialled) == snap.contacts and not snap.lost and snap.in_progress_attempts == 0
    return snap if done and snap.by_state.get("in_progress", 0) == 0 else None


# ---- kill -9 with calls in flight, restart under a new id --------------------------------------------


async def kill9_restart(
    workdir: Path,
    *,
    db: str = "sqlite",
    calls: int = 20,
    time_scale: float = 1.0,
    lease_s: float = 3.0,
    heartbeat_s: float = 1.0,
    ring_timeout_s: float = 60.0,
    timeout_s: float = 180.0,
) -> Figures:
    """`dialer run` with ``calls`` calls in flight is killed with SIGKILL, then started again
    exactly as before (same settings, no --worker-id: a new random id). Once the lease has run out
    the new process recovers every claim of the dead one; then every contact gets its verdict."""
    fig = Figures()
    numbers = numbers_for(RINGING_MOSTLY, calls)
    async with database(db, workdir) as url:
        await seed(url, numbers, concurrency=calls)
        as_port = free_port()
        sim = await start_sim(workdir, "sim1", time_scale=time_scale, audiosocket=f"127.0.0.1:{as_port}")
        observer = CallObserver([sim])
        await observer.start()
        cfg = write_config(
            workdir / "dialer.toml",
            db_url=url,
            sims=[sim],
            audiosocket_port=as_port,
            lease_s=lease_s,
            heartbeat_s=heartbeat_s,
            ring_timeout_s=ring_timeout_s,  # every call still ringing when the last one is placed
        )
        first = await start_worker(workdir, cfg, name="first")
        second = None
        try:
            killed_at, at_kill = await _kill9_in_flight(first, observer, url, calls, timeout_s, fig)
            second = await start_worker(workdir, cfg, name="restarted")  # no --worker-id, as the README says
            dead = {a["worker_id"] for a in at_kill.attempts if a["state"] == "in_progress"}
            # the lease runs out, then one heartbeat later the new worker has taken everything over
            taken_over_at = killed_at + lease_s + 2 * heartbeat_s + 1.0
            final = await _recovered(url, dead, killed_at, taken_over_at, timeout_s, fig)
        finally:
            for p in (first, second):
                if p is not None:
                    await p.stop()
            await observer.close()
            await sim.proc.stop()
        _verdicts(final, fig, observer)
        orphans = [a for a in final.attempts if a["worker_id"] in dead]
        fig.details["dead_attempts_closed_as_our_failure"] = sum(1 for a in orphans if a["call_class"] == "aborted")
        fig.details["dead_attempts_with_verdict"] = sum(1 for a in orphans if a["call_class"] != "aborted")
        fig.details["adopted"] = sum(
            1 for a in orphans if "followed" in (a["reason"] or "") or "operators" in (a["reason"] or "")
        )
        assert second is not None
        health = [r for r in worker_json_lines(second) if str(r.get("msg", "")).startswith("leases: ")]
        fig.details["restarted_worker_leases"] = health[-1]["msg"] if health else "?"
    return fig


async def _kill9_in_flight(
    worker: Proc, observer: CallObserver, url: str, calls: int, timeout_s: float, fig: Figures
) -> tuple[float, Snapshot]:
    """SIGKILL ``worker`` once ``calls`` calls are in flight; when (monotonic) and the database then."""

    async def all_in_flight() -> bool:
        # live on Asterisk: ringing, in analysis, or handed to the operators
        return observer.live_calls() >= calls

    await wait_until(all_in_flight, timeout_s, f"{calls} calls in flight", every_s=0.05)
    worker.kill9()
    killed_at = time.monotonic()
    live_at_kill = observer.live_calls()
    await worker.proc.wait()
    at_kill = await snapshot(url)
    fig.details["live_calls_at_kill"] = live_at_kill
    fig.details["open_attempts_at_kill"] = at_kill.in_progress_attempts
    return killed_at, at_kill


async def _recovered(
    url: str, dead: set[Any], killed_at: float, taken_over_at: float, timeout_s: float, fig: Figures
) -> Snapshot:
    """Stuck claims once the new worker should have taken over (``taken_over_at``, monotonic); then
    waits for the ``dead`` workers' attempts to be closed and for every verdict."""
    await asyncio.sleep(max(0.0, taken_over_at - time.monotonic()))
    after_lease = await snapshot(url)
    fig.stuck = after_lease.stuck

    async def dead_claims_closed() -> bool:
        snap = await snapshot(url)
        return not any(a["state"] == "in_progress" and a["worker_id"] in dead for a in snap.attempts)

    await wait_until(dead_claims_closed, timeout_s, "the dead worker's attempts to be closed")
    fig.details["recovered_s"] = round(time.monotonic() - killed_at, 1)
    final = await wait_until(lambda: _all_decided(url), timeout_s, "a verdict for every contact")
    fig.details["decided_s"] = round(time.monotonic() - killed_at, 1)
    return final


# ---- AMI connections drop mid-call ---------------------------------------------------------------------


async def ami_drop(workdir: Path, *, calls: int = 12, time_scale: float = 0.3, timeout_s: float = 120.0) -> Figures:
    """Scenario 17 of the simulator drops every AMI connection while a person is on the line (the
    calls live on). Every contact still gets exactly one verdict, persons reach the operators."""
    fig = Figures()
    numbers = numbers_for(("17", "06", "03", "01"), calls)
    async with database("sqlite", workdir) as url:
        await seed(url, numbers, concurrency=calls)
        as_port = free_port()
        sim = await start_sim(workdir, "sim1", time_scale=time_scale, audiosocket=f"127.0.0.1:{as_port}")
        observer = CallObserver([sim])
        await observer.start()
        cfg = write_config(workdir / "dialer.toml", db_url=url, sims=[sim], audiosocket_port=as_port)
        worker = await start_worker(workdir, cfg, name="worker")
        try:
            final = await wait_until(
                lambda: _all_settled_or_scheduled(url), timeout_s, "a verdict or a due time for every contact"
            )
        finally:
            await worker.stop()
            await observer.close()
            await sim.proc.stop()
        _verdicts(final, fig, observer)
        drops = [a for a in final.attempts if a["e164"].endswith("17")]
        fig.details["ami_drop_calls"] = len(drops)
        fig.details["ami_drop_verdicts"] = sorted({str(a["call_class"]) for a in drops})
        logins = sum(1 for r in worker_json_lines(worker) if "logged in to" in str(r.get("msg", "")))
        fig.details["ami_logins"] = logins
    return fig


# ---- the MQTT broker is down for a while ---------------------------------------------------------------


async def broker_down(
    workdir: Path, *, calls: int = 20, down_s: float = 5.0, time_scale: float = 0.3, timeout_s: float = 180.0
) -> Figures:
    """The private Mosquitto is stopped mid-campaign for ``down_s`` and started again: every
    attempt's event still reaches a subscriber (the outbox holds them meanwhile)."""
    from tests.events.support import Mosquitto  # a private broker

    fig = Figures()
    broker = Mosquitto(workdir)
    await broker.start()
    prefix = f"lab-{int(time.time())}"
    collector = EventCollector("127.0.0.1", broker.port, prefix)
    await collector.start()
    numbers = numbers_for(MIXED_CALLS, calls)
    async with database("sqlite", workdir) as url:
        await seed(url, numbers, concurrency=max(2, calls // 4))
        as_port = free_port()
        sim = await start_sim(workdir, "sim1", time_scale=time_scale, audiosocket=f"127.0.0.1:{as_port}")
        cfg = write_config(
            workdir / "dialer.toml",
            db_url=url,
            sims=[sim],
            audiosocket_port=as_port,
            mqtt=MqttTarget("127.0.0.1", broker.port, prefix),
        )
        worker = await start_worker(workdir, cfg, name="worker", mqtt=True)
        try:
            final = await _broker_outage(broker, collector, url, calls, down_s, timeout_s, fig)
            finished = {str(a["id"]) for a in final.attempts if a["state"] == "finished"}

            async def all_delivered() -> bool:
                return finished <= collector.attempt_ids()

            with contextlib.suppress(AssertionError):
                await wait_until(all_delivered, 60, "every attempt event")
        finally:
            await worker.stop()
            await collector.close()
            await sim.proc.stop()
            await broker.stop()
        _verdicts(final, fig, None)
        missing = finished - collector.attempt_ids()
        fig.details["attempt_events_expected"] = len(finished)
        fig.details["attempt_events_received"] = len(finished & collector.attempt_ids())
        fig.details["lost_events"] = len(missing)
        if missing:
            fig.problems.append(f"{len(missing)} attempt events never arrived")
    return fig


async def _broker_outage(
    broker: Mosquitto,
    collector: EventCollector,
    url: str,
    calls: int,
    down_s: float,
    timeout_s: float,
    fig: Figures,
) -> Snapshot:
    """Once the first events arrived, the broker is down for ``down_s``; then every contact's verdict."""

    async def some_finished() -> bool:
        return len(collector.attempt_ids()) >= max(1, calls // 5)

    await wait_until(some_finished, timeout_s, "the first events")
    await broker.stop()
    stopped = time.monotonic()
    during = await snapshot(url)
    await asyncio.sleep(down_s)
    fig.details["attempts_finished_while_down"] = sum(
        1 for a in (await snapshot(url)).attempts if a["state"] == "finished"
    ) - sum(1 for a in during.attempts if a["state"] == "finished")
    await broker.start()
    fig.details["broker_down_s"] = round(time.monotonic() - stopped, 1)
    return await wait_until(lambda: _all_decided(url), timeout_s, "a verdict for every contact")


# ---- PostgreSQL restarted mid-campaign --------------------------------------------------------------------


async def postgres_restart(
    workdir: Path, *, calls: int = 20, down_s: float = 3.0, time_scale: float = 0.3, timeout_s: float = 180.0
) -> Figures:
    """A private PostgreSQL cluster is stopped mid-campaign and started again ``down_s`` later:
    the worker waits (verdicts are retried, claims pause), resumes, and loses nothing."""
    from .pg import PrivatePostgres

    fig = Figures()
    pg = PrivatePostgres(workdir / "pg")
    await pg.start()
    try:
        async with database("postgresql", workdir, base_url=pg.url("postgres")) as url:
            numbers = numbers_for(MIXED_CALLS, calls)
            await seed(url, numbers, concurrency=max(2, calls // 2))
            as_port = free_port()
            sim = await start_sim(workdir, "sim1", time_scale=time_scale, audiosocket=f"127.0.0.1:{as_port}")
            observer = CallObserver([sim])
            await observer.start()
            cfg = write_config(
                workdir / "dialer.toml", db_url=url, sims=[sim], audiosocket_port=as_port, lease_s=10.0, heartbeat_s=2.0
            )
            worker = await start_worker(workdir, cfg, name="worker")
            try:

                async def under_way() -> bool:
                    snap = await snapshot(url)
                    return snap.in_progress_attempts >= 2 and any(a["state"] == "finished" for a in snap.attempts)

                await wait_until(under_way, timeout_s, "calls under way")
                stopped = time.monotonic()
                await pg.stop()
                await asyncio.sleep(down_s)
                await pg.start()
                fig.details["postgres_down_s"] = round(time.monotonic() - stopped, 1)
                final = await wait_until(lambda: _all_decided(url), timeout_s, "a verdict for every contact")
                fig.details["worker_alive_after"] = worker.running
            finally:
                await worker.stop()
                await observer.close()
                await sim.proc.stop()
            lines = worker_json_lines(worker)
            fig.details["retried_verdicts"] = sum(1 for r in lines if "database unavailable" in str(r.get("msg", "")))
            fig.details["worker_exit_code"] = worker.proc.returncode
            _verdicts(final, fig, observer)
            fig.stuck = final.stuck
    finally:
        await pg.stop()
    return fig


# ---- several workers, several Asterisk servers, one PostgreSQL --------------------------------------------


async def soak(
    workdir: Path,
    *,
    workers: int = 3,
    servers: int = 2,
    contacts: int = 300,
    db: str = "postgresql",
    time_scale: float = 0.05,
    per_worker_calls: int = 60,
    timeout_s: float = 600.0,
) -> Figures:
    """``workers`` `dialer run` processes share ``servers`` simulated Asterisk servers (no audio:
    every worker listens on its own AudioSocket port, the simulator sends to one address) and one
    database; every contact is dialled once: 0 double dials, 0 lost attempts."""
    fig = Figures()
    numbers = numbers_for(MIXED_CALLS, contacts)
    async with database(db, workdir) as url:
        sims = [
            await start_sim(workdir, f"sim{i + 1}", time_scale=time_scale, audiosocket=None) for i in range(servers)
        ]
        observer = CallObserver(sims)
        await observer.start()
        procs: list[Proc] = []
        try:
            max_calls = max(1, per_worker_calls // servers)
            await _start_workers(workdir, url, sims, workers, max_calls, procs)
            # every worker is up and idle: now the campaign arrives, and they all go for it at once
            started = time.monotonic()
            await seed(url, numbers, concurrency=workers * per_worker_calls)

            async def done() -> bool:
                decided, live = await progress(url)  # cheap: the workers share this database
                return decided >= contacts and live == 0

            await wait_until(done, timeout_s, f"all {contacts} contacts dialled", every_s=2.0)
            elapsed = time.monotonic() - started
        finally:
            for p in procs:
                await p.stop()
            await observer.close()
            for s in sims:
                await s.proc.stop()
        # after the stop: a contact whose rules call it back soon (a person lost in the operators'
        # queue: +1 min, seconds here) may have been dialled again meanwhile — counted, not lost
        final = await snapshot(url)
        _verdicts(final, fig, observer)
        starts = sorted(a["started_at"] for a in final.attempts)
        span_s = max((starts[-1] - starts[0]).total_seconds(), 1e-3) if starts else 1.0
        by_worker = Counter(str(a["worker_id"]) for a in final.attempts)
        fig.details.update(
            attempts=len(final.attempts),
            originates_per_s=round(len(final.attempts) / span_s, 1),
            wall_s=round(elapsed, 1),
            attempts_per_worker=sorted(by_worker.values()),
            claim_latency_ms_p50_p95_max=_claim_latencies(procs),
            max_live_calls=observer.max_live,
            originates_seen_by_observer=sum(observer.originated.values()),
        )
    return fig


async def _start_workers(
    workdir: Path, url: str, sims: list[Sim], workers: int, max_calls: int, procs: list[Proc]
) -> None:
    """``workers`` workers on all ``sims``, each on its own AudioSocket port; the started ones are
    added to ``procs`` (for the caller to stop) before a failed start is raised."""
    configs = [
        write_config(
            workdir / f"dialer-{i}.toml",
            db_url=url,
            sims=sims,
            audiosocket_port=free_port(),
            max_calls=max_calls,
        )
        for i in range(workers)
    ]
    got = await asyncio.gather(
        *(start_worker(workdir, c, name=f"w{i + 1}") for i, c in enumerate(configs)), return_exceptions=True
    )
    procs.extend(p for p in got if isinstance(p, Proc))
    failed = [p for p in got if isinstance(p, BaseException)]
    if failed:
        raise failed[0]


def _claim_latencies(procs: list[Proc]) -> dict[str, tuple[float, float, float]]:
    """(p50, p95, max) ms of each worker's claims, from its last "claims:" log line."""
    claims: dict[str, tuple[float, float, float]] = {}
    for p in procs:
        for r in worker_json_lines(p):
            msg = str(r.get("msg", ""))
            if msg.startswith("claims: "):
                p50 = float(msg.split("p50 ")[1].split(" ms")[0])
                p95 = float(msg.split("p95 ")[1].split(" ms")[0])
                top = float(msg.split("max ")[1].split(" ms")[0])
                claims[p.name] = (p50, p95, top)
    return claims
