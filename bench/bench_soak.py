"""Multi-worker soak (issue 11, item 8): several `dialer run` processes, several simulated Asterisk
servers, one PostgreSQL, every contact dialled once.

    .venv/bin/python bench/bench_soak.py [--workers 3] [--servers 2] [--contacts 10000]
                                         [--db postgresql|sqlite] [--time-scale 0.05]

Printed: lost attempts, double dials (an AMI observer on every simulator follows every live call;
the database's attempt intervals per number are checked too), stuck claims, originates per second
over the run, claim latency per worker (p50/p95/max of Repository.claim_due, from each worker's
own log), attempts per worker, the most calls live at once. The simulators run without audio (each
worker has its own AudioSocket port and a simulator sends to one address), so answered calls are
decided without audio analysis: this measures claiming and dialling, not the audio pipeline.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from faults.scenarios import soak  # noqa: E402


async def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="dialer-bench-soak-") as d:
        started = time.monotonic()
        fig = await soak(
            Path(d),
            workers=args.workers,
            servers=args.servers,
            contacts=args.contacts,
            db=args.db,
            time_scale=args.time_scale,
            per_worker_calls=args.per_worker_calls,
            timeout_s=args.timeout_s,
        )
    ok = (fig.lost, fig.duplicate, fig.stuck) == (0, 0, 0)
    print(
        f"soak: {args.workers} workers x {args.servers} simulated Asterisk x 1 {args.db}, {fig.contacts} contacts "
        f"[{'OK' if ok else 'FAILED'}, {time.monotonic() - started:.0f} s]"
    )
    print(f"   lost attempts {fig.lost}, double dials {fig.duplicate}, stuck claims {fig.stuck}")
    for key, value in fig.details.items():
        print(f"   {key}: {value}")
    for problem in fig.problems[:10]:
        print(f"   PROBLEM: {problem}")
    return 0 if ok else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", type=int, default=3)
    p.add_argument("--servers", type=int, default=2)
    p.add_argument("--contacts", type=int, default=10_000)
    p.add_argument("--db", choices=("postgresql", "sqlite"), default="postgresql")
    p.add_argument("--time-scale", type=float, default=0.05, help="simulated time (0.05 = 20x faster)")
    p.add_argument("--per-worker-calls", type=int, default=60, help="AMI max_calls per worker, over all servers")
    p.add_argument("--timeout-s", type=float, default=3600.0)
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
