"""``dialer plan``: what would be dialled when, and what is settled without dialling — over a CSV
(no database needed) or over a campaign's stored contacts."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from dialer.commands.common import CliContext, Subparsers, parse_when
from dialer.commands.numbering import read_registry
from dialer.config import Settings
from dialer.csvio import RowError, iter_contacts, open_text
from dialer.domain import policy
from dialer.domain.compliance import AttemptCaps
from dialer.domain.model import Contact
from dialer.domain.numbering import NumberingIndex, NumberRange, RegionZones, parse_registry, resolve_timezone
from dialer.domain.phone import normalise
from dialer.domain.rules import RulesTable
from dialer.domain.schedule import CallingWindows, HolidayCalendar


def register(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "plan",
        help="what would be dialled when",
        description="Show, per contact, when it would first be dialled (local time of the contact) or how "
        "it is settled without dialling. With CSV: the file alone, no database. Without CSV: the stored "
        "contacts of --campaign.",
    )
    p.add_argument("csv", type=Path, nargs="?", metavar="CSV")
    p.add_argument("--campaign", metavar="NAME", help="campaign name (required without CSV)")
    p.add_argument("--registry", type=Path, nargs="+", metavar="FILE", help="numbering-plan registry files (CSV mode)")
    p.add_argument("--now", type=parse_when, metavar="ISO", help="plan as if it were this time (default: now)")
    p.set_defaults(handler=_plan)


def _csv_contacts(
    path: Path,
    campaign: str,
    default_tz: str,
    region: str,
    zones: RegionZones | None,
    index: NumberingIndex | None,
    errors: list[str],
) -> list[Contact]:
    out: list[Contact] = []
    opened = open_text(path)
    try:
        for i, item in enumerate(iter_contacts(opened.text, str(path)), start=1):
            if isinstance(item, RowError):
                errors.append(f"{path}:{item.line}: {item.reason}")
                continue
            n = normalise(item.raw_number, region)
            tz = resolve_timezone(n.e164, n.number_type, index, zones, default_tz)[0] if n.e164 else default_tz
            out.append(
                Contact(
                    id=i,
                    campaign=campaign,
                    external_id=item.external_id,
                    raw_number=item.raw_number,
                    e164=n.e164,
                    number_problem=n.problem,
                    owner_kind=item.owner_kind,
                    owner_name=item.owner_name,
                    flags=item.flags,
                    journal=item.journal,
                    timezone=tz,
                    extension=n.extension,
                )
            )
    finally:
        opened.close()
    return out


def _registry(paths: list[Path], errors: list[str]) -> NumberingIndex | None:
    ranges: list[NumberRange] = []
    for path in paths:
        got, bad = parse_registry(read_registry(path), str(path))
        ranges.extend(got)
        errors.extend(str(e) for e in bad)
    return NumberingIndex(ranges) if ranges else None


def _print_plan(entries: Iterable[policy.PlanEntry], numbers: dict[str, str]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for e in entries:
        counts[e.action.value] += 1
        print(f"{e.external_id}\t{numbers.get(e.external_id, '')}\t{e.describe()}")
    return counts


def _calendar(settings: Settings, campaign: str) -> HolidayCalendar:
    """The campaign's holiday calendar ([compliance]): a plan shows the days the claim will dial."""
    return settings.compliance.for_campaign(campaign).calendar


async def _plan(args: argparse.Namespace, ctx: CliContext) -> int:
    settings = ctx.settings
    if args.csv is None and not args.campaign:
        print("dialer plan: error: give a CSV file or --campaign NAME (see --help)", file=sys.stderr)
        return 2
    rules = RulesTable.load(settings.rules_path)
    own = policy.load_own_numbers(settings.own_numbers_path)
    now: datetime = args.now or ctx.now()
    errors: list[str] = []
    caps = AttemptCaps()  # a CSV's contacts have made no attempt yet: no cap can hold them back
    counted: dict[int, list[datetime]] = {}
    if args.csv is not None:
        c = ctx.campaign(args.campaign or args.csv.stem)
        zones = RegionZones.load(settings.region_zones_path) if settings.region_zones_path.exists() else None
        index = _registry(args.registry or [], errors)
        contacts = _csv_contacts(args.csv, c.name, c.timezone, settings.campaign.region, zones, index, errors)
        windows = CallingWindows.parse(c.weekday_window, c.weekend_window, _calendar(settings, c.name))
        default_tz = c.timezone
    else:
        repo = await ctx.repository()
        c = await repo.campaign_settings(args.campaign)
        contacts = [x async for page in repo.iter_contacts(c.name) for x in page]
        windows = CallingWindows.parse(c.weekday_window, c.weekend_window, _calendar(settings, c.name))
        default_tz = c.timezone
        caps = settings.compliance.for_campaign(c.name).caps
        if caps.active:  # the attempts made so far count against the caps, as the claim counts them
            counted = await repo.counted_starts([x.id for x in contacts], now)
    for e in errors:
        print(e, file=sys.stderr)
    entries = policy.plan(contacts, now, rules, windows, own, default_tz=default_tz, caps=caps, counted=counted)
    numbers = {
        x.external_id: (x.e164 or repr(x.raw_number)) + (f" доб. {x.extension}" if x.extension else "")
        for x in contacts
    }
    counts = _print_plan(entries, numbers)
    print(
        f"plan for campaign {c.name} at {now:%Y-%m-%d %H:%M}Z: {counts['dial']} to dial, "
        f"{counts['settle']} settled without dialling, {counts['skip']} skipped, {len(errors)} bad rows "
        f"(windows {c.weekday_window} weekdays, {c.weekend_window} weekends, local time)"
    )
    return 0
