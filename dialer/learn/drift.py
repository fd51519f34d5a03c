"""Drift: carriers change their recordings without notice. Pure: the library, what was heard and
the per-carrier tallies in, drift events out (the CLI publishes them and writes the metrics).

* A library entry not heard for ``stale_days`` (its recording may have been replaced): an entry
  never heard counts from its approval, or from the first day the collector saw any call.
* A carrier whose unknown-announcement rate (unknown ones / announcement calls, per day) jumps to
  ``jump_factor`` times its usual rate (the days before, up to a week) over at least
  ``jump_min_calls`` calls: a recording changed, or a new one appeared.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

BASELINE_DAYS = 7
RATE_FLOOR = 0.02  # a carrier whose usual rate is 0 still needs this much to "jump"
MIN_RISE = 0.1  # and the rate must rise by at least this much


@dataclass(frozen=True, slots=True)
class DriftEvent:
    kind: str  # "stale_entry" | "unknown_rate_jump"
    subject: str  # the library entry, or the carrier
    value: float  # days not heard, or today's unknown rate
    baseline: float | None  # the threshold in days, or the usual rate
    message: str

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "subject": self.subject,
            "value": self.value,
            "baseline": self.baseline,
            "message": self.message,
        }


def stale_entries(
    names: Sequence[str],
    heard: Mapping[str, Mapping[str, Any]],
    approved_at: Mapping[str, str],
    first_day: str | None,
    now: datetime,
    stale_days: int,
) -> list[DriftEvent]:
    out = []
    for name in names:
        h = heard.get(name)
        since = str(h["last"]) if h and h.get("last") else approved_at.get(name) or first_day
        if since is None:
            continue
        when = datetime.fromisoformat(since)
        if when.tzinfo is None:
            when = when.replace(tzinfo=now.tzinfo)
        days = (now - when).total_seconds() / 86400
        if days >= stale_days:
            what = "last heard" if h else "never heard since"
            out.append(
                DriftEvent(
                    "stale_entry",
                    name,
                    round(days, 1),
                    float(stale_days),
                    f"library entry {name}: {what} {since[:10]}, {days:.0f} days ago (≥ {stale_days})",
                )
            )
    return out


def rate_jumps(
    tallies: Mapping[str, Mapping[str, Sequence[int]]], today: datetime, factor: float, min_calls: int
) -> list[DriftEvent]:
    out = []
    day = today.date().isoformat()
    window = {(today.date() - timedelta(days=k)).isoformat() for k in range(1, BASELINE_DAYS + 1)}
    for carrier, days in sorted(tallies.items()):
        calls, unknown = days.get(day, (0, 0))
        if calls < min_calls:
            continue
        base_calls = sum(v[0] for d, v in days.items() if d in window)
        base_unknown = sum(v[1] for d, v in days.items() if d in window)
        if base_calls < min_calls:
            continue  # no usual rate to compare with yet
        rate, usual = unknown / calls, base_unknown / base_calls
        if rate >= factor * max(usual, RATE_FLOOR) and rate - usual >= MIN_RISE:
            out.append(
                DriftEvent(
                    "unknown_rate_jump",
                    carrier,
                    round(rate, 3),
                    round(usual, 3),
                    f"{carrier}: {unknown} of {calls} announcements unknown today ({rate:.0%}), usually {usual:.0%}",
                )
            )
    return out


def first_day(tallies: Mapping[str, Mapping[str, Any]]) -> str | None:
    days = [d for per in tallies.values() for d in per]
    return min(days) if days else None
