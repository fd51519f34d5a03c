"""The campaign report as one self-contained HTML file: every plot an embedded PNG (matplotlib,
Agg backend), no external file, script or font."""

from __future__ import annotations

import base64
import html
import io
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dialer.domain.numbering import NumberingIndex
from dialer.errors import InputError
from dialer.report import analysis as an
from dialer.storage.stats import AttemptFact, CampaignFacts

TOP_CLASSES = 8


@dataclass(frozen=True)
class ReportInput:
    facts: CampaignFacts
    since: datetime | None
    until: datetime | None
    generated_at: datetime
    index: NumberingIndex | None
    what_ifs: Sequence[an.WhatIf]
    # Decision latencies from the call recordings: only for a window whose attempts store none
    # (attempts.decision_ms came with migration 0005).
    latencies_s: Sequence[float] = ()


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("dialer report needs matplotlib: pip install 'dialer[report]'") from None
    return plt


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    fig.clf()
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(plt: Any, title: str, xlabel: str, ylabel: str) -> tuple[Any, Any]:
    fig, ax = plt.subplots(figsize=(8, 3.6))
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    return fig, ax


def _top(counters: Sequence[Counter[str]], n: int = TOP_CLASSES) -> list[str]:
    total: Counter[str] = Counter()
    for c in counters:
        total.update(c)
    return [k for k, _ in total.most_common(n)]


def _stacked(ax: Any, labels: Sequence[str], counters: Sequence[Counter[str]], *, horizontal: bool = False) -> None:
    keys = _top(counters)
    base = [0.0] * len(labels)
    pos = list(range(len(labels)))
    for key in [*keys, "other"]:
        vals = [
            float(c[key]) if key != "other" else float(sum(v for k, v in c.items() if k not in keys)) for c in counters
        ]
        if not any(vals):
            continue
        if horizontal:
            ax.barh(pos, vals, left=base, label=key)
        else:
            ax.bar(pos, vals, bottom=base, label=key)
        base = [b + v for b, v in zip(base, vals, strict=True)]
    if horizontal:
        ax.set_yticks(pos, labels)
        ax.invert_yaxis()
    else:
        ax.set_xticks(pos, labels)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))


def _rate_bars(plt: Any, title: str, xlabel: str, rates: dict[int, an.Rate], names: Sequence[str] | None) -> str:
    fig, ax = _figure(plt, title, xlabel, "reached / attempts")
    keys = list(rates)
    labels = [names[k] if names is not None else str(k) for k in keys]
    ax.bar(range(len(keys)), [rates[k].share for k in keys], color="tab:green")
    ax.set_xticks(range(len(keys)), labels)
    ax.set_ylim(0, max([0.05, *(r.share * 1.2 for r in rates.values())]))
    for i, k in enumerate(keys):
        ax.annotate(f"n={rates[k].total}", (i, rates[k].share), ha="center", va="bottom", fontsize=7)
    return _png(fig)


def _latency_by_group(plt: Any, groups: dict[str, list[float]]) -> tuple[str, str, str]:
    """One histogram per class group, stacked vertically on a shared seconds axis."""
    fig, axes = plt.subplots(len(groups), 1, figsize=(8, 1.2 + 1.6 * len(groups)), sharex=True, squeeze=False)
    top = max(max(v) for v in groups.values())
    bins = [top * i / 30 for i in range(31)] if top > 0 else 10
    for ax, (group, values) in zip(axes[:, 0], groups.items(), strict=True):
        ax.hist(values, bins=bins, color="tab:red")
        ax.set_ylabel("calls")
        median = sorted(values)[len(values) // 2]
        ax.set_title(f"{group}: {len(values)} calls, median {median:.2f} s", fontsize=9, loc="left")
        ax.grid(axis="y", alpha=0.3)
    axes[-1, 0].set_xlabel("seconds from the start of the audio to the decision")
    fig.suptitle("Decision latency by class group")
    n = sum(len(v) for v in groups.values())
    caption = (
        f"{n} attempts with audio: from the first audio frame to the decision (attempts.decision_ms), "
        f"by what the call turned out to be ({', '.join(an.CLASS_GROUPS)})."
    )
    return "Decision latency", caption, _png(fig)


Plot = tuple[str, str, str]  # heading, caption, base64 PNG


def plots(data: ReportInput) -> list[Plot]:
    """(heading, caption, base64 PNG) of every plot."""
    plt = _pyplot()
    facts = data.facts.attempts
    out: list[Plot] = []
    try:
        out += _reach_plots(plt, data)
        out.append(_settlement_plot(plt, facts))
        out.append(_carrier_plot(plt, data))
        out.append(_signals_plot(plt, facts))
        latency = _latency_plot(plt, data)
        if latency is not None:
            out.append(latency)
        dead_air = _dead_air_plot(plt, facts)
        if dead_air is not None:
            out.append(dead_air)
    finally:
        plt.close("all")
    return out


def _reach_plots(plt: Any, data: ReportInput) -> list[Plot]:
    """Outcomes per attempt number, then reach by attempt number, local hour and weekday."""
    facts = data.facts.attempts
    tz = data.facts.timezone
    by_no = an.outcomes_by_attempt(facts)
    fig, ax = _figure(plt, "Outcomes per attempt number", "attempt number", "attempts")
    _stacked(ax, [str(k) for k in by_no], list(by_no.values()))
    out = [("Outcomes per attempt", "How each attempt number ended (the 8 commonest classes).", _png(fig))]
    out.append(
        (
            "Reach by attempt number",
            "Share of attempts a person answered (person, person_lost).",
            _rate_bars(
                plt, "Reach by attempt number", "attempt number", an.reach_by(facts, lambda f: f.attempt_no), None
            ),
        )
    )
    hours = an.reach_by(facts, an.local_time_key(tz, "hour"))
    out.append(
        (
            "Reach by hour of the contact's day",
            "Attempts by the hour in the contact's own time zone (campaign zone when unknown).",
            _rate_bars(plt, "Reach by local hour", "hour", hours, None),
        )
    )
    days = an.reach_by(facts, an.local_time_key(tz, "weekday"))
    out.append(
        (
            "Reach by weekday",
            "Attempts by the contact's local weekday.",
            _rate_bars(plt, "Reach by weekday", "weekday", days, an.WEEKDAYS),
        )
    )
    return out


def _settlement_plot(plt: Any, facts: Sequence[AttemptFact]) -> Plot:
    settle = an.hours_to_settlement(facts)
    fig, ax = _figure(plt, "Time from first attempt to settlement", "hours", "contacts")
    if settle:
        ax.hist(settle, bins=min(30, max(5, len(settle) // 3)), color="tab:blue")
    return "Time to settlement", f"{len(settle)} settled contacts, from their first attempt to the last.", _png(fig)


def _carrier_plot(plt: Any, data: ReportInput) -> Plot:
    mix = an.class_mix_by_carrier(data.facts.attempts, data.index)
    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.45 * len(mix) + 1)))
    ax.set_title("Class mix per carrier (numbering registry)")
    ax.set_xlabel("attempts")
    _stacked(ax, list(mix), list(mix.values()), horizontal=True)
    note = "" if data.index is not None else " No registry imported (dialer numbering import): one bar."
    return "Class mix per carrier", f"The busiest carriers of the dialled numbers.{note}", _png(fig)


def _signals_plot(plt: Any, facts: Sequence[AttemptFact]) -> Plot:
    sig = an.signals(facts)
    fig, ax = _figure(plt, "Deciding signals", "signal", "attempts")
    names = [k for k, _ in sig.most_common()]
    ax.bar(range(len(names)), [sig[k] for k in names], color="tab:purple")
    ax.set_xticks(range(len(names)), names, rotation=20)
    return "Deciding signals", "Which kind of signal decided each attempt.", _png(fig)


def _latency_plot(plt: Any, data: ReportInput) -> Plot | None:
    """By class group when the attempts store their latency, else from the recordings, else none."""
    groups = an.decision_latency_by_group(data.facts.attempts)
    if groups:
        return _latency_by_group(plt, groups)
    if not data.latencies_s:
        return None
    fig, ax = _figure(plt, "Decision latency (from the first audio frame)", "seconds", "calls")
    ax.hist(list(data.latencies_s), bins=min(30, max(5, len(data.latencies_s) // 3)), color="tab:red")
    return (
        "Decision latency",
        f"{len(data.latencies_s)} recorded calls: from the first audio frame to the decision "
        "(these attempts store none; read from the call recordings).",
        _png(fig),
    )


def _dead_air_plot(plt: Any, facts: Sequence[AttemptFact]) -> Plot | None:
    dead = an.dead_air_s(facts)
    if not dead:
        return None
    fig, ax = _figure(plt, "Dead air after the greeting", "seconds", "hand-overs")
    ax.hist(dead, bins=min(30, max(5, len(dead) // 3)), color="tab:orange")
    return (
        "Dead air",
        f"{len(dead)} hand-overs: the far end's silence from its greeting's end to the hand-over.",
        _png(fig),
    )


def _table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


CSS = """
body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}.caption{color:#555;font-size:.9em}img{max-width:100%}
"""


def render_html(data: ReportInput) -> str:
    facts = data.facts.attempts
    per = an.by_contact(facts)
    window = f"{data.since.isoformat() if data.since else 'start'} → {data.until.isoformat() if data.until else 'now'}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>dialer report: {html.escape(data.facts.name)}</title><style>{CSS}</style></head><body>",
        f"<h1>Campaign {html.escape(data.facts.name)}</h1>",
        f"<p>Attempts started {html.escape(window)}; {len(facts)} attempts of {len(per)} contacts. "
        f"Generated {data.generated_at:%Y-%m-%d %H:%M} UTC.</p>",
    ]
    if not facts:
        parts.append("<p><strong>No finished attempts in this window.</strong></p>")
    else:
        for heading, caption, png in plots(data):
            parts.append(f"<h2>{html.escape(heading)}</h2><p class='caption'>{html.escape(caption)}</p>")
            parts.append(f'<img class="plot" alt="{html.escape(heading)}" src="data:image/png;base64,{png}">')
    missing = _missing_note(data)
    if missing:
        parts.append(missing)
    parts += _what_if_section(data)
    parts.append("</body></html>")
    return "\n".join(parts)


def _missing_note(data: ReportInput) -> str:
    """Where to find the figures this database does not store (empty when nothing is missing)."""
    facts = data.facts.attempts
    missing = []
    if not data.latencies_s and not an.decision_latency_by_group(facts):
        missing.append(("decision latency", "dialer_decision_latency_seconds"))
    if not an.dead_air_s(facts):
        missing.append(("dead air", "dialer_dead_air_seconds"))
    if not missing:
        return ""
    what = " and ".join(m[0] for m in missing)
    metrics = ", ".join(f"<code>{m[1]}</code>" for m in missing)
    return (
        f"<p class='caption'>No {what} here: the database does not store it for these attempts and "
        "no call recordings were found (<code>[recording]</code>, <code>--recordings</code>). The worker's "
        f"Prometheus histograms have it: {metrics} (deploy/grafana/dialer.json).</p>"
    )


def _what_if_section(data: ReportInput) -> list[str]:
    parts = ["<h2>What if: the recorded history under other rules</h2>"]
    parts.append(
        "<p class='caption'>Each contact's recorded classes replayed under a rules file: contacts the rules "
        "settle earlier spend fewer calls; contacts they would dial past the history get estimated extra "
        "attempts (the campaign's own reach probability per attempt number).</p>"
    )
    rows = [
        (
            w.label,
            w.contacts,
            f"{w.calls:.1f}",
            f"{w.persons:.1f}",
            f"{w.extra_calls:.1f}",
            w.settled_earlier,
            w.dial_beyond,
            f"{w.persons / w.calls:.3f}" if w.calls else "—",
        )
        for w in data.what_ifs
    ]
    parts.append(
        _table(
            rows,
            (
                "rules",
                "contacts",
                "calls",
                "persons reached",
                "of the calls: estimated extra",
                "settled earlier",
                "dialled past history",
                "persons per call",
            ),
        )
    )
    return parts
