"""``dialer numbering import``: the public registry of Russian number ranges (ABC-*.csv, DEF-9xx.csv),
then the time zones of mobile contacts are resolved again."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dialer.commands.common import CliContext, Subparsers
from dialer.domain.numbering import RegionZones, parse_registry
from dialer.errors import InputError
from dialer.storage.ingest import numbering_index, reresolve_timezones
from dialer.storage.numbering import NumberingRangeRow


def register(subparsers: Subparsers) -> None:
    nb = subparsers.add_parser(
        "numbering", help="numbering-plan registry", description="The Russian numbering-plan registry."
    )
    verbs = nb.add_subparsers(dest="numbering_command", metavar="VERB", required=True)
    imp = verbs.add_parser(
        "import",
        help="import registry files",
        description="Import registry CSV files (header 'АВС/ DEF;От;До;Емкость;Оператор;Регион…'). Ranges "
        "of the codes in a file replace the stored ones; then contact time zones are resolved again.",
    )
    imp.add_argument("files", type=Path, nargs="+", metavar="FILE")
    imp.set_defaults(handler=_import)


def read_registry(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1251")


async def _import(args: argparse.Namespace, ctx: CliContext) -> int:
    settings = ctx.settings
    zones = RegionZones.load(settings.region_zones_path)
    repo = await ctx.repository()
    now = ctx.now()
    total_bad = 0
    for path in args.files:
        ranges, errors = parse_registry(read_registry(path), str(path))
        for e in errors:
            print(str(e), file=sys.stderr)
        total_bad += len(errors)
        rows = [
            NumberingRangeRow(r.code, r.start, r.end, r.operator, r.region, r.territory or "", r.inn or "")
            for r in ranges
        ]
        unmapped = {
            r.region for r in ranges if zones.zone_for(r.region) is None and zones.zone_for(r.territory) is None
        }
        stored = await repo.replace_numbering(rows, path.name, now)
        print(
            f"{path}: {stored} ranges stored, {len(errors)} bad rows skipped"
            + (f", {len(unmapped)} regions without a time zone" if unmapped else "")
        )
        for name in sorted(unmapped)[:20]:
            print(f"{path}: region {name!r} has no time zone in {settings.region_zones_path}", file=sys.stderr)
    index = numbering_index(await repo.numbering_ranges())
    changed = await reresolve_timezones(repo, index, zones, now)
    print(f"time zones resolved again: {changed} contacts changed")
    return 0
