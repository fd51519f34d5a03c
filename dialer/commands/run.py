"""``dialer run``: the worker against real Asterisk servers ([[ami]] in the settings)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from dataclasses import replace

from dialer import app, datafiles
from dialer.commands.common import CliContext, Subparsers
from dialer.logging import configure_logging

log = logging.getLogger(__name__)


def register(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "run",
        help="run the worker (dial due contacts through Asterisk)",
        description="Claim due contacts, originate through the configured Asterisk servers, analyse the "
        "audio, hang up machines, hand people to the operator context, record every attempt. "
        "SIGTERM/SIGINT: stop claiming, let live calls finish (--drain-s), then stop.",
    )
    p.add_argument("--campaign", action="append", default=[], metavar="NAME", help="repeatable; default: all")
    p.add_argument("--worker-id", metavar="ID", help="unique per worker process (default host-random)")
    p.add_argument("--no-mqtt", action="store_true", help="keep events in the outbox, publish nothing")
    p.add_argument("--drain-s", type=float, default=30.0, metavar="S", help="graceful stop: live-call drain time")
    p.add_argument("--log-json", action="store_true", help="JSON log lines")
    p.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    p.set_defaults(handler=_run)


def install_stop_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread / not Unix
            pass


async def _run(args: argparse.Namespace, ctx: CliContext) -> int:
    configure_logging(args.log_level, json=args.log_json)
    settings = ctx.settings
    if ctx.db_url:
        settings = replace(settings, database_url=ctx.db_url)
    # Every data file, whether or not a speech model is installed: a broken phrases.yaml is found
    # now, not the day a model arrives.
    datafiles.validate(settings)
    opts = app.RunOptions(
        campaigns=tuple(args.campaign),
        mqtt=not args.no_mqtt,
        drain_s=args.drain_s,
    )
    if args.worker_id:
        opts.worker_id = args.worker_id
    stop = asyncio.Event()
    install_stop_signals(stop)
    rt = await app.build(settings, opts)
    log.info("worker %s starting (%r)", opts.worker_id, settings)
    stats = await app.run(rt, stop)
    log.info("worker stopped: %s", stats)
    log.info("leases: %s", rt.worker.leases.health())
    claims = sorted(rt.repo.claim_latencies_s)
    if claims:
        log.info(
            "claims: %d, latency p50 %.1f ms, p95 %.1f ms, max %.1f ms",
            len(claims),
            claims[len(claims) // 2] * 1000,
            claims[int(len(claims) * 0.95)] * 1000,
            claims[-1] * 1000,
        )
    return 0
