"""``dialer exclusions add|remove|list|import`` (docs/rules.md §7: calls / online / all)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dialer.commands.common import CliContext, Subparsers, e164_or_error, exclusion_kind
from dialer.csvio import LineTally, RowError, clip, iter_exclusions, open_text
from dialer.domain.model import ExclusionKind
from dialer.domain.phone import normalise


def register(subparsers: Subparsers) -> None:
    ex = subparsers.add_parser(
        "exclusions",
        help="numbers excluded from surveys",
        description="Numbers excluded from survey calls (calls, all) or online surveys (online, all). "
        "Each new exclusion notifies the survey coordinator (and the SMS manager for online/all).",
    )
    verbs = ex.add_subparsers(dest="exclusions_command", metavar="VERB", required=True)
    add = verbs.add_parser("add", help="exclude a number", description="Exclude a number.")
    add.add_argument("number")
    add.add_argument("--kind", type=exclusion_kind, required=True, help="calls | online | all")
    add.add_argument("--reason", default="")
    add.add_argument("--source", default="cli")
    add.set_defaults(handler=_add)
    rm = verbs.add_parser("remove", help="lift an exclusion", description="Lift an exclusion.")
    rm.add_argument("number")
    rm.add_argument("--kind", type=exclusion_kind, required=True, help="calls | online | all")
    rm.set_defaults(handler=_remove)
    ls = verbs.add_parser("list", help="list exclusions", description="List exclusions.")
    ls.add_argument("--number")
    ls.set_defaults(handler=_list)
    imp = verbs.add_parser(
        "import",
        help="import a CSV of numbers",
        description="Import exclusions from a CSV with columns number and kind (and optionally reason, "
        "source); a file of bare numbers needs --kind.",
    )
    imp.add_argument("csv", type=Path, metavar="CSV")
    imp.add_argument("--kind", type=exclusion_kind, help="kind for rows without one")
    imp.add_argument("--source", default="", help="source recorded for rows without one (default: file name)")
    imp.set_defaults(handler=_import)


def _region(ctx: CliContext) -> str:
    return ctx.settings.campaign.region


async def _add(args: argparse.Namespace, ctx: CliContext) -> int:
    number = e164_or_error(args.number, _region(ctx), "exclusions add")
    repo = await ctx.repository()
    res = await repo.add_exclusion(number, args.kind, ctx.now(), source=args.source, reason=args.reason)
    if res.new:
        print(f"{number}: excluded from {args.kind.value}; {res.contacts_excluded} pending contacts held back")
    else:
        print(f"{number}: already excluded from {args.kind.value}")
    return 0


async def _remove(args: argparse.Namespace, ctx: CliContext) -> int:
    number = e164_or_error(args.number, _region(ctx), "exclusions remove")
    repo = await ctx.repository()
    if await repo.remove_exclusion(number, args.kind, ctx.now()):
        print(f"{number}: exclusion from {args.kind.value} lifted")
        return 0
    print(f"dialer: error: {number} has no exclusion of kind {args.kind.value}", file=sys.stderr)
    return 1


async def _list(args: argparse.Namespace, ctx: CliContext) -> int:
    repo = await ctx.repository()
    number = e164_or_error(args.number, _region(ctx), "exclusions list") if args.number else None
    rows = await repo.list_exclusions(number)
    for x in rows:
        print(f"{x.number}\t{x.kind.value}\t{x.created_at:%Y-%m-%d %H:%M}Z\t{x.source}\t{x.reason}")
    print(f"{len(rows)} exclusions", file=sys.stderr)
    return 0


async def _import(args: argparse.Namespace, ctx: CliContext) -> int:
    region = _region(ctx)
    opened = open_text(args.csv)  # scanned whole first: an unreadable file is refused before anything is stored
    good: list[tuple[str, ExclusionKind, str, str]] = []
    bad = 0
    tally = LineTally()
    try:
        for item in iter_exclusions(opened.text, str(args.csv), args.kind, tally):
            if isinstance(item, RowError):
                bad += 1
                print(f"{args.csv}:{item.line}: {item.reason}", file=sys.stderr)
                continue
            n = normalise(item.raw_number, region)
            if n.e164 is None:
                bad += 1
                print(
                    f"{args.csv}:{item.line}: not a usable phone number {clip(item.raw_number)} ({n.problem})",
                    file=sys.stderr,
                )
                continue
            good.append((n.e164, item.kind, item.source or args.source or args.csv.name, item.reason))
    finally:
        opened.close()
    repo = await ctx.repository()
    new, old = await repo.import_exclusions(good, ctx.now())
    read = opened.scan.lines if opened.scan is not None else 0
    print(
        f"{args.csv}: {read} lines read = {tally.header_lines} header + {tally.blank_lines} blank + "
        f"{tally.record_lines} in {tally.records} records\n"
        f"{args.csv}: {tally.records} records = {new} new exclusions + {old} already there + {bad} bad"
        + (" (reported above)" if bad else "")
    )
    return 0
