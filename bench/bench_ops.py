"""Operations benchmark: what the metrics cost the worker and how long `dialer report` takes.

* **attempt_finished**: CPU per finished attempt spent in the metrics (counters, histograms, the
  deciding signal, the latency scan of the session's step log).
* **scrape**: CPU of one exposition with many label series (40 call classes × 3 outcomes, 8
  signals, live calls in every phase).
* **report**: wall time of the analysis and of the HTML with its plots for a campaign of N
  synthetic attempts (no database: the rows the query would return).

CPU is ``time.process_time`` (this process), robust to other load on the box.

    .venv/bin/python bench/bench_ops.py [--attempts 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from dialer.config import DEFAULT_CONFIG_DIR
from dialer.domain.model import CallClass, Evidence, Outcome
from dialer.domain.rules import RulesTable
from dialer.metrics import Metrics
from dialer.report import analysis as an
from dialer.report.render import ReportInput, render_html
from dialer.session.session import CallPhase
from dialer.storage.stats import AttemptFact, CampaignFacts


@dataclass
class Step:
    at_ms: int
    kind: str
    text: str


@dataclass
class Session:
    decided_at_ms: int | None
    audio_offset_ms: int | None
    trace: list[Step] = field(default_factory=list)


def bench_metrics(n: int) -> None:
    m = Metrics()
    classes = [c for c in CallClass]
    rng = random.Random(1)
    trace = [Step(i * 20, "audio", "frame") for i in range(40)] + [Step(900, "asr", "final match x «y»")]
    items = [
        (
            Evidence(rng.choice(classes), 0.9, rng.choice(["busy tone", "person: hi", "«абонент»", "cause 17"])),
            Outcome(rng.random() < 0.5, None, False, None, "", "r"),
        )
        for _ in range(n)
    ]
    session = Session(1200, 300, trace)
    t0 = time.process_time()
    for ev, out in items:
        m.attempt_finished(ev, out, session)
    per_us = (time.process_time() - t0) / n * 1e6
    print(f"attempt_finished: {per_us:.1f} µs CPU per attempt ({n} attempts, {len(trace)} trace steps)")
    phases = [p.value for p in CallPhase] * 30
    m.watch(live_phases=lambda: phases, ami_states=lambda: [("pbx1", "connected"), ("pbx2", "connected")])
    runs = 50
    t0 = time.process_time()
    for _ in range(runs):
        body = asyncio.run(m.exposition())
    per_ms = (time.process_time() - t0) / runs * 1000
    lines = len(body.splitlines())
    print(f"scrape: {per_ms:.2f} ms CPU per exposition, {len(body) / 1024:.0f} KiB, {lines} lines")


def synthetic(n: int) -> CampaignFacts:
    rng = random.Random(2)
    start = datetime(2026, 11, 16, 6, 0, tzinfo=UTC)
    classes = ["busy", "no_answer", "voicemail", "person", "ann_switched_off", "ann_not_in_service"]
    facts: list[AttemptFact] = []
    contact = 0
    while len(facts) < n:
        contact += 1
        for k in range(1, rng.randint(1, 3) + 1):
            at = start + timedelta(days=k - 1, minutes=rng.randint(0, 600))
            cls = rng.choice(classes)
            facts.append(
                AttemptFact(
                    contact, f"+7916{contact:07d}", "person", None, "settled", k, "campaign", at,
                    at + timedelta(seconds=30), cls, cls, cls in ("person", "voicemail"), 16,
                )
            )  # fmt: skip
            if cls == "person":
                break
    return CampaignFacts("bench", "Europe/Moscow", facts[:n])


def bench_report(n: int) -> None:
    facts = synthetic(n)
    rules = RulesTable.load(DEFAULT_CONFIG_DIR / "rules.yaml")
    t0 = time.perf_counter()
    what = [an.recorded(facts.attempts), an.what_if(facts.attempts, rules, "current")]
    t1 = time.perf_counter()
    page = render_html(ReportInput(facts, None, None, datetime.now(UTC), None, what))
    t2 = time.perf_counter()
    print(
        f"report: {n} attempts — what-if {(t1 - t0) * 1000:.0f} ms, HTML with plots {t2 - t1:.1f} s, "
        f"{len(page) / 1024:.0f} KiB"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--attempts", type=int, default=20000)
    args = ap.parse_args()
    bench_metrics(args.attempts)
    bench_report(args.attempts)


if __name__ == "__main__":
    main()
