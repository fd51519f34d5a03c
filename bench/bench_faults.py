"""Fault injection at full size, with the figures the README quotes (issue 11, item 7).

    .venv/bin/python bench/bench_faults.py [--calls 100] [--broker-down-s 60] [--pg-down-s 10]
                                          [--only kill9,ami,broker,postgres,fuzz] [--fuzz-scale 1]

Every scenario runs real processes: `dialer run` workers, `python -m dialer.sim` simulators, the
shared PostgreSQL (a database of its own) or a private cluster, a private Mosquitto. Printed per
scenario: lost / duplicate / stuck (all must be 0) and the scenario's own figures. The same
scenarios run small in tests/faults/ (CI).

* kill9    — `dialer run` with --calls calls live on Asterisk gets SIGKILL and is started again
             exactly as the README shows (no --worker-id); SQLite and PostgreSQL;
* ami      — the simulator drops every AMI connection while people are on the line;
* broker   — the MQTT broker is stopped for --broker-down-s mid-campaign;
* postgres — a private PostgreSQL is stopped for --pg-down-s mid-campaign;
* fuzz     — the hypothesis fuzz tests, --fuzz-scale times their CI counts.

"Recordings disk full" is the lead's (issue 7, [recording] dir) and not measured here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from faults.scenarios import Figures, ami_drop, broker_down, kill9_restart, postgres_restart  # noqa: E402


def show(title: str, fig: Figures, elapsed_s: float) -> None:
    verdict = "OK" if (fig.lost, fig.duplicate, fig.stuck) == (0, 0, 0) else "FAILED"
    print(f"\n== {title}  [{verdict}, {elapsed_s:.0f} s]")
    print(f"   contacts {fig.contacts}: lost {fig.lost}, duplicate {fig.duplicate}, stuck {fig.stuck}")
    for key, value in fig.details.items():
        print(f"   {key}: {value}")
    for problem in fig.problems[:10]:
        print(f"   PROBLEM: {problem}")
    sys.stdout.flush()


async def run(args: argparse.Namespace) -> int:
    wanted = set(args.only.split(","))
    failures = 0

    async def one(title: str, make: object) -> None:
        nonlocal failures
        with tempfile.TemporaryDirectory(prefix="dialer-bench-faults-") as d:
            started = time.monotonic()
            fig: Figures = await make(Path(d))  # type: ignore[operator]
            show(title, fig, time.monotonic() - started)
            failures += (fig.lost, fig.duplicate, fig.stuck) != (0, 0, 0)

    if "kill9" in wanted:
        for db in ("sqlite", "postgresql"):
            await one(
                f"kill -9 with {args.calls} calls in flight, restart under a new id ({db})",
                lambda d, db=db: kill9_restart(
                    d, db=db, calls=args.calls, time_scale=1.0, lease_s=args.lease_s, heartbeat_s=args.lease_s / 3
                ),
            )
    if "ami" in wanted:
        await one("AMI connections dropped mid-call", lambda d: ami_drop(d, calls=40, time_scale=0.5))
    if "broker" in wanted:
        await one(
            f"MQTT broker down {args.broker_down_s:.0f} s",
            lambda d: broker_down(d, calls=120, down_s=args.broker_down_s, time_scale=1.0, timeout_s=600),
        )
    if "postgres" in wanted:
        await one(
            f"PostgreSQL restarted mid-campaign ({args.pg_down_s:.0f} s down)",
            lambda d: postgres_restart(d, calls=60, down_s=args.pg_down_s, time_scale=0.5, timeout_s=600),
        )
    if "fuzz" in wanted:
        started = time.monotonic()
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(ROOT / "tests/faults/test_fuzz.py")],
            env={**os.environ, "DIALER_FUZZ_SCALE": str(args.fuzz_scale)},
            capture_output=True,
            text=True,
            check=False,
        )
        inputs = 10_650 * args.fuzz_scale
        verdict = "OK" if done.returncode == 0 else "FAILED"
        print(
            f"\n== fuzz: {inputs} inputs (AMI streams, AudioSocket streams, CSV files)  [{verdict}, "
            f"{time.monotonic() - started:.0f} s]"
        )
        print("   " + (done.stdout.strip().splitlines() or ["?"])[-1])
        failures += done.returncode != 0
    print(json.dumps({"failures": failures}))
    return 1 if failures else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calls", type=int, default=100)
    p.add_argument("--lease-s", type=float, default=6.0, help="claim lease of the workers (heartbeat = lease/3)")
    p.add_argument("--broker-down-s", type=float, default=60.0)
    p.add_argument("--pg-down-s", type=float, default=10.0)
    p.add_argument("--fuzz-scale", type=int, default=1)
    p.add_argument("--only", default="kill9,ami,broker,postgres,fuzz")
    return asyncio.run(_cancel_on_sigterm(run(p.parse_args())))


async def _cancel_on_sigterm(coro: Any) -> int:
    """SIGTERM/SIGINT cancel the run, so every process it started is stopped on the way out."""
    task = asyncio.ensure_future(coro)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        return int(await task)
    except asyncio.CancelledError:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
