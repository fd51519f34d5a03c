"""``dialer report --campaign C [--from T] [--to T] -o report.html [--rules other.yaml]``: a
campaign's recorded attempts as one self-contained HTML file with plots (dialer.report)."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from dialer.commands.common import CliContext, Subparsers, parse_when
from dialer.domain.numbering import NumberingIndex, NumberRange
from dialer.domain.rules import RulesTable
from dialer.errors import InputError
from dialer.report import analysis
from dialer.report.recorded import decision_latencies_s
from dialer.report.render import ReportInput, render_html
from dialer.storage.migrate import ensure_current
from dialer.storage.stats import UnknownCampaign, campaign_facts, numbering_rows


def register(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "report",
        help="a campaign's results as an HTML file with plots",
        description="Outcomes per attempt number; reach by attempt, by the contact's local hour and weekday; "
        "time to settlement; class mix per carrier; deciding signals; and what the recorded history would "
        "have cost and reached under another rules file (--rules). One self-contained HTML file.",
    )
    p.add_argument("--campaign", required=True, metavar="NAME")
    p.add_argument("--from", dest="since", type=parse_when, metavar="TIME", help="attempts started at or after")
    p.add_argument("--to", dest="until", type=parse_when, metavar="TIME", help="attempts started before")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="FILE", help="the HTML file to write")
    p.add_argument("--rules", type=Path, action="append", default=[], metavar="YAML", help="what-if rules (repeatable)")
    p.add_argument(
        "--recordings",
        type=Path,
        metavar="DIR",
        help="call recordings for the decision-latency plot of attempts that do not store it "
        "(default: [recording] dir, when it exists)",
    )
    p.set_defaults(handler=_report)


async def _report(args: argparse.Namespace, ctx: CliContext) -> int:
    if args.since and args.until and args.since >= args.until:
        raise InputError("--from must be before --to")
    current = RulesTable.load(ctx.settings.rules_path)
    others = [(path, RulesTable.load(path)) for path in args.rules]  # a broken file fails before any query
    db = ctx.database()
    await ensure_current(db)
    try:
        facts = await campaign_facts(db, args.campaign, args.since, args.until)
    except UnknownCampaign:
        raise InputError(f"no campaign {args.campaign!r} in the database") from None
    rows = await numbering_rows(db)
    index = NumberingIndex(NumberRange(c, s, e, op, reg) for c, s, e, op, reg in rows) if rows else None
    what_ifs = [
        analysis.recorded(facts.attempts),
        analysis.what_if(facts.attempts, current, f"current rules ({ctx.settings.rules_path.name})"),
        *(analysis.what_if(facts.attempts, rules, str(path)) for path, rules in others),
    ]
    latencies: list[float] = []
    if not any(f.decision_ms is not None for f in facts.attempts):
        # attempts.decision_ms came with migration 0005: older attempts have it only in their recordings
        recordings = args.recordings or ctx.settings.recording.dir
        latencies = await asyncio.to_thread(decision_latencies_s, recordings, args.campaign, args.since, args.until)
    page = render_html(ReportInput(facts, args.since, args.until, ctx.now(), index, what_ifs, latencies))
    write_report(args.output, page)
    print(f"{args.output}: {len(facts.attempts)} attempts of campaign {args.campaign}")
    return 0


def write_report(path: Path, page: str) -> None:
    path.write_text(page, encoding="utf-8")
