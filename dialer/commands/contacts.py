"""``dialer import``, ``dialer status``, ``dialer export``: contacts in and results out."""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import TextIO

from dialer.commands.common import CliContext, Progress, Subparsers, positive_int
from dialer.csvio import CsvContact, RowError, iter_contacts, open_text
from dialer.domain.numbering import RegionZones
from dialer.domain.policy import load_own_numbers
from dialer.domain.rules import RulesTable
from dialer.errors import InputError
from dialer.storage.ingest import ContactPreparer, numbering_index
from dialer.storage.repo import ImportCounts, NewContact

EXPORT_COLUMNS = (
    "external_id",
    "number",
    "e164",
    "owner_kind",
    "owner_name",
    "state",
    "attempts",
    "result",
    "incorrect_contact",
    "last_call_class",
    "next_due_at",
    "timezone",
    "journal",
)


def register(subparsers: Subparsers) -> None:
    imp = subparsers.add_parser(
        "import",
        help="import contacts from a CSV file",
        description="Import contacts from a CSV (UTF-8 or cp1251, ';' or ','). Bad rows are reported "
        "with their line numbers and skipped; good rows are imported. Re-importing is idempotent on "
        "(campaign, external id).",
    )
    imp.add_argument("csv", type=Path, metavar="CSV")
    imp.add_argument("--campaign", required=True, metavar="NAME")
    imp.add_argument("--timezone", metavar="ZONE", help="campaign's default zone for a new campaign")
    imp.add_argument("--concurrency", type=positive_int, metavar="N", help="live calls cap for a new campaign")
    imp.add_argument("--batch", type=positive_int, default=2000, metavar="N", help="rows per transaction")
    imp.add_argument("--progress", action="store_true", help="show a progress bar even when not on a terminal")
    imp.set_defaults(handler=_import)

    st = subparsers.add_parser(
        "status", help="counts per campaign", description="Counts by state, result and attempts per campaign."
    )
    st.add_argument("--campaign", metavar="NAME")
    st.set_defaults(handler=_status)

    ex = subparsers.add_parser(
        "export",
        help="results CSV with the journal",
        description="Write the campaign's results (Russian titles «Недоступен», «Некорректный контакт») and "
        "comment journals as CSV (';', UTF-8 with BOM by default).",
    )
    ex.add_argument("--campaign", required=True, metavar="NAME")
    ex.add_argument("-o", "--output", type=Path, metavar="FILE", help="default: standard output")
    ex.add_argument("--encoding", choices=("utf-8", "cp1251"), default="utf-8")
    ex.set_defaults(handler=_export)


async def _import(args: argparse.Namespace, ctx: CliContext) -> int:
    settings = ctx.settings
    rules = RulesTable.load(settings.rules_path)
    own = load_own_numbers(settings.own_numbers_path)
    zones = RegionZones.load(settings.region_zones_path) if settings.region_zones_path.exists() else None
    repo = await ctx.repository()
    campaign = ctx.campaign(args.campaign, args)
    if args.campaign in await repo.campaign_names():
        campaign = await repo.campaign_settings(args.campaign)
    index = numbering_index(await repo.numbering_ranges())
    preparer = ContactPreparer(campaign, rules, own, index, zones, settings.campaign.region)
    now = ctx.now()
    opened = open_text(args.csv)
    progress = Progress(opened.size, enabled=True if args.progress else None, label="import ")
    total = ImportCounts()
    bad = 0
    rows = 0
    batch: list[NewContact] = []
    try:
        for item in iter_contacts(opened.text, str(args.csv)):
            if isinstance(item, RowError):
                bad += 1
                print(f"{args.csv}:{item.line}: {item.reason}", file=sys.stderr)
                continue
            assert isinstance(item, CsvContact)
            batch.append(preparer.prepare(item, now))
            rows += 1
            if len(batch) >= args.batch:
                total.add(await repo.import_contacts(campaign, batch, now))
                batch = []
                progress.update(opened.bytes_read, rows)
        if batch:
            total.add(await repo.import_contacts(campaign, batch, now))
    except UnicodeDecodeError as exc:
        raise InputError(f"{args.csv}: cannot decode as {opened.encoding}: {exc}") from None
    finally:
        opened.close()
    progress.finish(rows)
    if total.inserted > 10_000:
        await repo.analyze()
    print(
        f"{args.csv}: {rows + bad} rows: {total.inserted} new, {total.updated} updated, {total.unchanged} "
        f"unchanged, {total.settled_without_dialling} settled without dialling, {bad} bad rows skipped"
        + (f", {total.number_differs_kept} with a changed number kept as stored" if total.number_differs_kept else "")
        + f" (campaign {campaign.name}, {opened.encoding})"
    )
    return 0


async def _status(args: argparse.Namespace, ctx: CliContext) -> int:
    repo = await ctx.repository()
    statuses = await repo.status(args.campaign, ctx.now())
    if not statuses:
        print("no campaigns yet (dialer import CSV --campaign NAME)")
    for s in statuses:
        print(
            f"campaign {s.name}: {s.total} contacts, {s.due_now} due now, {s.incorrect_contact} «Некорректный контакт»"
        )
        print("  by state:    " + ", ".join(f"{k} {v}" for k, v in sorted(s.by_state.items())))
        print("  by result:   " + ", ".join(f"{k} {v}" for k, v in sorted(s.by_result.items())))
        print("  by attempts: " + ", ".join(f"{k}: {v}" for k, v in s.by_attempts.items()))
    return 0


async def _export(args: argparse.Namespace, ctx: CliContext) -> int:
    repo = await ctx.repository()
    encoding = "utf-8-sig" if args.encoding == "utf-8" else "cp1251"
    out: TextIO
    if args.output is not None:
        out = args.output.open("w", encoding=encoding, errors="replace", newline="")
    else:
        out = sys.stdout
    n = 0
    try:
        w = csv.writer(out, delimiter=";", lineterminator="\r\n")
        w.writerow(EXPORT_COLUMNS)
        async for page in repo.iter_export(args.campaign):
            for r in page:
                w.writerow(
                    (
                        r.external_id,
                        r.raw_number,
                        r.e164,
                        r.owner_kind,
                        r.owner_name,
                        r.state,
                        r.attempts_made,
                        r.result,
                        r.incorrect_contact,
                        r.last_call_class,
                        r.next_due_at,
                        r.timezone,
                        r.journal,
                    )
                )
                n += 1
    finally:
        if args.output is not None:
            out.close()
    if args.output is not None:
        print(f"{args.output}: {n} contacts of campaign {args.campaign}", file=sys.stderr)
    return 0
