"""``dialer replay CALL_DIR [--explain] [--model PATH]`` and ``dialer label CALL_DIR CLASS``:
recorded calls (``[recording]`` in dialer.toml) replayed through the worker's own call session."""

from __future__ import annotations

import argparse
import asyncio
import getpass
from datetime import UTC, datetime
from pathlib import Path

from dialer.app import session_setup
from dialer.commands.common import CliContext, Subparsers
from dialer.config import Settings
from dialer.domain.model import CallClass
from dialer.errors import InputError
from dialer.session.explain import explain, same_decision, verdict
from dialer.session.recording import call_dirs, read_recording, write_label
from dialer.session.replay import replay_recording

EXIT_DIFFERS = 1


def register(subparsers: Subparsers) -> None:
    rp = subparsers.add_parser(
        "replay",
        help="replay recorded calls through the call session; compare with the live decision",
        description="Replay each recorded call under CALL_DIR (one call directory, a day directory or the "
        "recordings root) through the worker's call session with the current settings, and say whether "
        "it decides as it did live. Exit status 1 when a call decides differently.",
    )
    rp.add_argument("call_dir", type=Path, metavar="CALL_DIR")
    rp.add_argument("--explain", action="store_true", help="print the timeline: signals, conclusions, dead air")
    rp.set_defaults(handler=_replay)

    lb = subparsers.add_parser(
        "label",
        help="say what a recorded call really was (for dialer eval over recordings)",
        description="Write CLASS (a call class, e.g. person, voicemail, ann_not_in_service) as the label of "
        "the recorded call in CALL_DIR.",
    )
    lb.add_argument("call_dir", type=Path, metavar="CALL_DIR")
    lb.add_argument("call_class", metavar="CLASS")
    lb.add_argument("--by", help="who says so (default: the current user)")
    lb.set_defaults(handler=_label)


async def _replay(args: argparse.Namespace, ctx: CliContext) -> int:
    settings = ctx.settings
    # reading recordings and replaying them is blocking work: one thread does it all
    return await asyncio.to_thread(run_replay, args, settings)


def run_replay(args: argparse.Namespace, settings: Settings) -> int:
    root: Path = args.call_dir
    if not root.exists():
        raise InputError(f"{root}: no such directory")
    dirs = list(call_dirs(root))
    if not dirs:
        raise InputError(f"{root}: no recorded calls there")
    setup = session_setup(settings)
    differ = 0
    for d in dirs:
        rec = read_recording(d)
        res = replay_recording(rec, setup)
        same = same_decision(rec.decision, verdict(res))
        differ += not same
        if args.explain:
            print(explain(rec, res))
            print()
        else:
            mark = "same" if same else "DIFFERS"
            print(f"{d.name}  {mark:7}  live {_short(rec.decision)}  replay {_short(verdict(res))}")
    print(f"{len(dirs)} call(s) replayed, {differ} decided differently from live")
    return EXIT_DIFFERS if differ else 0


def _short(v: object) -> str:
    if not isinstance(v, dict):
        return "-"
    return f"{v.get('action')}/{v.get('call_class')}@{v.get('decided_at_ms')}ms"


async def _label(args: argparse.Namespace, ctx: CliContext) -> int:
    try:
        cls = CallClass(args.call_class)
    except ValueError:
        known = ", ".join(c.value for c in CallClass)
        raise InputError(f"unknown call class {args.call_class!r} (one of: {known})") from None
    await asyncio.to_thread(write_label, args.call_dir, cls.value, args.by or getpass.getuser(), datetime.now(UTC))
    print(f"{args.call_dir}: labelled {cls.value}")
    return 0
