"""``dialer import``, ``dialer status``, ``dialer export``: contacts in and results out."""

from __future__ import annotations

import argparse
import codecs
import csv
import io
import sys
from pathlib import Path
from typing import TextIO

from dialer.commands.common import CliContext, Progress, Subparsers, positive_int
from dialer.csvio import CsvContact, CsvScan, LineTally, RowError, iter_contacts, open_text
from dialer.domain.numbering import RegionZones
from dialer.domain.policy import load_own_numbers
from dialer.domain.rules import RulesTable
from dialer.storage.contacts import ImportCounts, NewContact
from dialer.storage.ingest import ContactPreparer, numbering_index
from dialer.storage.repo import Repository

EXPORT_COLUMNS = (
    "external_id",
    "number",
    "e164",
    "extension",
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
    # The last attempt's hand-over to the operators (issue 9), empty when it was not handed over.
    "dead_air_ms",
    "queue_wait_ms",
    "operator",
    # The last attempt's decision latency: ms from the start of its audio (empty without audio).
    "decision_ms",
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
    # The whole file is scanned first: one that cannot be parsed reliably is refused before
    # anything is written.
    opened = open_text(args.csv)
    try:
        repo = await ctx.repository()
        campaign = ctx.campaign(args.campaign, args)
        if args.campaign in await repo.campaign_names():
            campaign = await repo.campaign_settings(args.campaign)
        index = numbering_index(await repo.numbering_ranges())
        preparer = ContactPreparer(campaign, rules, own, index, zones, settings.campaign.region)
        now = ctx.now()
        progress = Progress(opened.size, enabled=True if args.progress else None, label="import ")
        total = ImportCounts()
        tally = LineTally()
        numbers = _SharedNumbers(repo, campaign.name, args.csv)
        bad = 0
        batch: list[NewContact] = []
        lines: list[int] = []
        for item in iter_contacts(opened.text, str(args.csv), tally):
            if isinstance(item, RowError):
                bad += 1
                print(f"{args.csv}:{item.line}: {item.reason}", file=sys.stderr)
                continue
            assert isinstance(item, CsvContact)
            batch.append(preparer.prepare(item, now))
            lines.append(item.line)
            if len(batch) >= args.batch:
                await numbers.check(batch, lines)
                total.add(await repo.import_contacts(campaign, batch, now))
                batch, lines = [], []
                progress.update(opened.bytes_read, tally.records)
        if batch:
            await numbers.check(batch, lines)
            total.add(await repo.import_contacts(campaign, batch, now))
    finally:
        opened.close()
    progress.finish(tally.records)
    if total.inserted > 10_000:
        await repo.analyze()
    scan = opened.scan
    read = scan.lines if scan is not None else tally.header_lines + tally.blank_lines + tally.record_lines
    print(import_summary(str(args.csv), read, tally, total, bad, numbers.shared, campaign.name, scan))
    return 1 if read != tally.header_lines + tally.blank_lines + tally.record_lines else 0


def import_summary(
    source: str,
    lines_read: int,
    tally: LineTally,
    counts: ImportCounts,
    bad: int,
    shared_numbers: int,
    campaign: str,
    scan: CsvScan | None,
) -> str:
    """Two lines whose counts add up: the lines read, then what became of each record."""
    new_to_dial = counts.inserted - counts.inserted_settled
    multi = f", {tally.multiline_records} with line breaks inside a cell" if tally.multiline_records else ""
    accounted = tally.header_lines + tally.blank_lines + tally.record_lines
    lines = (
        f"{source}: {lines_read} lines read = {tally.header_lines} header + {tally.blank_lines} blank + "
        f"{tally.record_lines} in {tally.records} records{multi}"
        + ("" if accounted == lines_read else f" — {lines_read - accounted} lines UNACCOUNTED (a bug: please report)")
    )
    records = (
        f"{source}: {tally.records} records = {new_to_dial} new to dial + {counts.inserted_settled} new settled "
        f"without dialling + {counts.updated} updated + {counts.unchanged} unchanged + {bad} bad"
        + (" (reported above)" if bad else "")
    )
    notes = []
    reimport_settled = counts.settled_without_dialling - counts.inserted_settled
    if reimport_settled:
        notes.append(f"{reimport_settled} of the updated settled without dialling («НЕ ЗВОНИТЬ»)")
    if counts.number_differs_kept:
        notes.append(f"{counts.number_differs_kept} re-imported with another number (the stored one is kept)")
    if shared_numbers:
        notes.append(f"{shared_numbers} share a number with another contact (never dialled at the same time)")
    where = f"campaign {campaign}" + (f", {scan.label}" if scan is not None else "")
    return f"{lines}\n{records}" + (f"; {'; '.join(notes)}" if notes else "") + f" ({where})"


class _SharedNumbers:
    """Reports numbers a file gives to several contacts, or that contacts still to be dialled
    already have: they are imported (they are different cards), and the claim never dials one
    number twice at the same time."""

    def __init__(self, repo: Repository, campaign: str, source: Path) -> None:
        self.repo = repo
        self.campaign = campaign
        self.source = source
        self.first_line: dict[str, tuple[int, str]] = {}  # e164 → (line, external id) in this file
        self.shared = 0

    async def check(self, batch: list[NewContact], lines: list[int]) -> None:
        dialable = [(r, n) for r, n in zip(batch, lines, strict=True) if r.e164 is not None and r.predial is None]
        stored = await self.repo.unsettled_with_numbers({r.e164 for r, _ in dialable if r.e164 is not None})
        for row, line in dialable:
            assert row.e164 is not None
            earlier = self.first_line.get(row.e164)
            if earlier is not None:
                self.shared += 1
                print(
                    f"{self.source}:{line}: number {row.e164} is also on line {earlier[0]} (contact {earlier[1]}): "
                    "imported; the two are never dialled at the same time",
                    file=sys.stderr,
                )
                continue
            self.first_line[row.e164] = (line, row.external_id)
            others = [o for o in stored.get(row.e164, ()) if o != (self.campaign, row.external_id)]
            if others:
                other = others[0]
                self.shared += 1
                print(
                    f"{self.source}:{line}: number {row.e164} also belongs to contact {other[1]} of campaign "
                    f"{other[0]}: imported; the two are never dialled at the same time",
                    file=sys.stderr,
                )


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


_REPLACED = [0]  # characters the chosen encoding cannot hold, replaced by "?" (counted, then reported)


def _replace_counting(exc: UnicodeError) -> tuple[str, int]:
    assert isinstance(exc, UnicodeEncodeError)
    _REPLACED[0] += exc.end - exc.start
    return "?" * (exc.end - exc.start), exc.end


codecs.register_error("dialer-export", _replace_counting)


async def _export(args: argparse.Namespace, ctx: CliContext) -> int:
    repo = await ctx.repository()
    # The same bytes whether to a file or to standard output: the chosen encoding (UTF-8 with a
    # BOM for Excel, or cp1251), whatever the terminal's locale.
    encoding = "utf-8-sig" if args.encoding == "utf-8" else "cp1251"
    _REPLACED[0] = 0
    out: TextIO
    if args.output is not None:
        out = args.output.open("w", encoding=encoding, errors="dialer-export", newline="")
    else:
        sys.stdout.flush()
        out = io.TextIOWrapper(sys.stdout.buffer, encoding=encoding, errors="dialer-export", newline="")
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
                        r.extension,
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
                        r.dead_air_ms,
                        r.queue_wait_ms,
                        r.operator,
                        r.decision_ms,
                    )
                )
                n += 1
    finally:
        if args.output is not None:
            out.close()
        else:
            assert isinstance(out, io.TextIOWrapper)
            out.flush()
            out.detach()  # sys.stdout keeps its buffer
    if args.output is not None:
        print(f"{args.output}: {n} contacts of campaign {args.campaign}", file=sys.stderr)
    if _REPLACED[0]:
        print(
            f"dialer export: {_REPLACED[0]} character(s) not representable in {args.encoding} were written as '?' "
            "(use --encoding utf-8 to keep them)",
            file=sys.stderr,
        )
    return 0
