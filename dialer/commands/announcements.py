"""``dialer announcements collect|review|approve|reject|serve|drift``: unknown carrier
announcements learned from call recordings (dialer.learn)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import logging
from datetime import datetime
from pathlib import Path

from dialer.app import fingerprint_library, session_setup
from dialer.commands.common import CliContext, Subparsers, parse_when
from dialer.config import Settings
from dialer.domain.numbering import NumberingIndex
from dialer.errors import DialerError, InputError
from dialer.events.payloads import announcement_drift
from dialer.learn.collect import collect
from dialer.learn.drift import DriftEvent, first_day, rate_jumps, stale_entries
from dialer.learn.library import learned_entries
from dialer.learn.metrics import write_metrics
from dialer.learn.review import approve_cluster, ordered, parse_class, reject_cluster, table
from dialer.learn.store import LearnStore
from dialer.learn.web import ReviewApp, start
from dialer.storage.ingest import numbering_index

log = logging.getLogger(__name__)
EXIT_DRIFT = 3


def register(subparsers: Subparsers) -> None:
    an = subparsers.add_parser(
        "announcements",
        help="learn unknown carrier announcements: collect, review, approve into the fingerprint library",
        description="Unknown announcements heard on recorded calls are collected, clustered by their "
        "fingerprint and reviewed; an approved cluster becomes a known recording of [paths] announcements.",
    )
    sub = an.add_subparsers(dest="verb", metavar="VERB", required=True)
    c = sub.add_parser("collect", help="collect unknown announcements from call recordings and cluster them")
    c.add_argument("call_dir", nargs="?", type=Path, metavar="CALL_DIR", help="default: [recording] dir")
    c.add_argument("--now", type=parse_when, help="ISO time (default: now)")
    c.set_defaults(handler=_collect)
    r = sub.add_parser("review", help="the clusters as a table (open ones; --all for every one)")
    r.add_argument("--all", action="store_true", help="also approved and rejected clusters")
    r.add_argument("--json", action="store_true", help="one JSON object per cluster")
    r.set_defaults(handler=_review)
    a = sub.add_parser("approve", help="add a cluster's clip to the fingerprint library with a class")
    a.add_argument("cluster")
    a.add_argument("--class", dest="call_class", required=True, metavar="CLASS", help="e.g. ann_not_in_service")
    a.add_argument("--by", help="who approves (default: the current user)")
    a.set_defaults(handler=_approve)
    j = sub.add_parser("reject", help="leave a cluster out of the library (it still absorbs its repeats)")
    j.add_argument("cluster")
    j.add_argument("--by", help="who rejects (default: the current user)")
    j.set_defaults(handler=_reject)
    s = sub.add_parser("serve", help="a local web page: listen to each cluster, approve or reject it")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=int, help="default: [learn] serve_port")
    s.set_defaults(handler=_serve)
    d = sub.add_parser("drift", help="library entries not heard for long, carriers whose unknown rate jumped")
    d.add_argument("--now", type=parse_when, help="ISO time (default: now)")
    d.add_argument("--no-publish", action="store_true", help="do not queue the events for MQTT")
    d.set_defaults(handler=_drift)


def _store(settings: Settings) -> LearnStore:
    lr = settings.learn
    return LearnStore(lr.dir, max_segments=lr.max_segments, max_mb=lr.max_mb)


def _library_dir(settings: Settings) -> Path:
    if settings.announcements_path is None:
        raise InputError("no fingerprint library configured ([paths] announcements)")
    return settings.announcements_path


async def _numbering(ctx: CliContext) -> NumberingIndex | None:
    """The numbering registry from the database, when there is one (carriers stay unknown otherwise)."""
    try:
        repo = await ctx.repository()
        return numbering_index(await repo.numbering_ranges())
    except DialerError as exc:
        print(f"note: carriers unknown (numbering registry not readable: {exc})")
        return None


async def _collect(args: argparse.Namespace, ctx: CliContext) -> int:
    settings = ctx.settings
    root: Path = args.call_dir or settings.recording.dir
    numbering = await _numbering(ctx)
    now = args.now or ctx.now()
    lib = settings.announcements_path
    fingerprint_library.cache_clear()  # the library as it is now (an approval may have changed it)
    rep = await asyncio.to_thread(
        collect,
        root,
        session_setup(settings),
        _store(settings),
        now=now,
        numbering=numbering,
        auto_approve_min_calls=settings.learn.auto_approve_min_calls,
        library_dir=lib,
    )
    skipped = ", ".join(f"{n} {why}" for why, n in rep.skipped.most_common()) or "none"
    print(
        f"{rep.calls} new recorded call(s): {rep.kept} unknown announcement(s) kept, "
        f"{rep.by_fingerprint} decided by a known recording; {rep.new_clusters} new cluster(s)"
    )
    print(f"not kept: {skipped}")
    if rep.auto_approved:
        print(f"approved automatically (temporary classes): {', '.join(rep.auto_approved)}")
    if rep.evicted:
        print(f"{rep.evicted} old segment(s) deleted to stay within [learn] max_segments / max_mb")
    return 0


async def _review(args: argparse.Namespace, ctx: CliContext) -> int:
    state = _store(ctx.settings).load()
    shown = ordered(state.clusters, everything=args.all)
    if args.json:
        for c in shown:
            d = c.to_json()
            d.update(proposed=c.proposed.value if c.proposed else None, agreeing=c.agreeing, best_text=c.best_text)
            print(json.dumps(d, ensure_ascii=False))
        return 0
    if not shown:
        print("no clusters to review" + ("" if args.all else " (--all shows approved and rejected ones)"))
        return 0
    print(table(shown))
    return 0


async def _approve(args: argparse.Namespace, ctx: CliContext) -> int:
    settings = ctx.settings
    cls = parse_class(args.call_class)
    by = args.by or getpass.getuser()
    done = await asyncio.to_thread(
        approve_cluster, _store(settings), _library_dir(settings), args.cluster, cls, by, ctx.now()
    )
    print(
        f"{args.cluster}: approved as {cls.value} by {by}: {done.file} (library v{done.version}); "
        "workers load it at their next start"
    )
    return 0


async def _reject(args: argparse.Namespace, ctx: CliContext) -> int:
    settings = ctx.settings
    by = args.by or getpass.getuser()
    await asyncio.to_thread(reject_cluster, _store(settings), _library_dir(settings), args.cluster, by, ctx.now())
    print(f"{args.cluster}: rejected by {by}")
    return 0


async def _serve(args: argparse.Namespace, ctx: CliContext) -> int:
    settings = ctx.settings
    app = ReviewApp(_store(settings), _library_dir(settings), ctx.now)
    port = args.port if args.port is not None else settings.learn.serve_port
    try:
        server = await start(app, args.host, port)
    except OSError as exc:
        raise InputError(f"cannot listen on {args.host}:{port}: {exc.strerror or exc}") from None
    bound = server.sockets[0].getsockname()
    print(f"review page: http://{bound[0]}:{bound[1]}/  (Ctrl-C stops it)", flush=True)
    async with server:
        with contextlib.suppress(asyncio.CancelledError):
            await server.serve_forever()
    return 0


def drift_events(settings: Settings, now: datetime) -> list[DriftEvent]:
    state = _store(settings).load()
    fingerprint_library.cache_clear()
    lib = fingerprint_library(settings.announcements_path)
    names = [r.name for r in lib.recordings] if lib else []
    approved = {
        str(e["name"]): str(e["approved_at"])
        for e in (learned_entries(settings.announcements_path) if settings.announcements_path else [])
    }
    lr = settings.learn
    return [
        *stale_entries(names, state.heard, approved, first_day(state.tallies), now, lr.stale_days),
        *rate_jumps(state.tallies, now, lr.jump_factor, lr.jump_min_calls),
    ]


async def _drift(args: argparse.Namespace, ctx: CliContext) -> int:
    settings = ctx.settings
    now = args.now or ctx.now()
    events = await asyncio.to_thread(drift_events, settings, now)
    state = _store(settings).load()
    prom = write_metrics(settings.learn.dir, state, events)
    for e in events:
        print(f"DRIFT {e.kind}: {e.message}")
    if not events:
        print("no drift: every library entry heard lately, no carrier's unknown rate jumped")
    if events and not args.no_publish:
        try:
            repo = await ctx.repository()
            for e in events:
                ev = announcement_drift(
                    kind=e.kind,
                    subject=e.subject,
                    value=e.value,
                    baseline=e.baseline,
                    message=e.message,
                    occurred_at=now,
                )
                await repo.add_event(ev, now)
            print(f"{len(events)} drift event(s) queued for MQTT (announcements/drift)")
        except DialerError as exc:
            print(f"note: drift events not queued for MQTT ({exc})")
    print(f"metrics: {prom}")
    return EXIT_DRIFT if events else 0
