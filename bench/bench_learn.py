"""Learning carrier announcements, proved on replay: before vs after approval.

Run: .venv/bin/python bench/bench_learn.py [--train 80] [--replay 80] [--seed 1] [--mid-share 0.25]

Calls repeating the simulator's eight carrier announcements (dialer/sim/data: four temporary, four
not-working) are written as call recordings (dialer/learn/synthetic.py: G.711, level, background
noise, 1 % lost frames; most calls hear the recording from its start, ``--mid-share`` of them join
it mid-way; a decode-at-pauses recognizer's hypotheses 0.5–1.5 s after each pass). Day 1
(``--train`` calls) is collected and clustered; clusters of temporary classes are approved by
the auto rule (≥ 3 agreeing calls), not-working ones by a named reviewer accepting the proposal.
Day 2 (``--replay`` other calls) is replayed before and after the approval through the worker's
call session. Prints: clustering (clusters per recording, purity, proposals right), the share of
day-2 calls decided by fingerprint, their accuracy, ASR decodes needed per call (saved), and the
decision latency from the start of the recording's playback (p50/p90/max; share ≤ 1.5 s), for
calls that heard the recording from its start and for those that joined mid-way.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dialer import app  # noqa: E402
from dialer.config import load_settings  # noqa: E402
from dialer.domain.fusion import NOT_WORKING_CLASSES  # noqa: E402
from dialer.learn.cluster import may_auto_approve  # noqa: E402
from dialer.learn.collect import collect  # noqa: E402
from dialer.learn.library import approve  # noqa: E402
from dialer.learn.store import LearnState, LearnStore  # noqa: E402
from dialer.learn.synthetic import clips_from_library, write_calls  # noqa: E402
from dialer.session.recording import Recording, call_dirs, read_recording  # noqa: E402
from dialer.session.replay import replay_recording  # noqa: E402
from dialer.session.session import SessionSetup  # noqa: E402
from dialer.sim.audio import DATA_DIR  # noqa: E402

CLIPS = ["unreachable", "switched_off", "busy_stay", "suspended", "not_in_service", "blocked", "bad_format",
         "number_changed"]  # fmt: skip
NUMBERS = ["+79030234567", "+79000012345", "+79161234567"]
GOAL_MS = 1500


@dataclass
class Outcome:
    right: bool
    by_fingerprint: bool
    latency_ms: int  # from the start of the recording's playback
    word_latency_ms: int  # from its first word
    decodes: int  # recognizer results that reached the session by its decision
    mid: bool
    not_working: bool  # its class hangs up as an incorrect contact: decided on more voice


def replay_all(recs: list[Recording], setup: SessionSetup) -> list[Outcome]:
    out = []
    for rec in recs:
        res = replay_recording(rec, setup)
        truth = rec.meta["truth"]
        decided = res.decided_at_ms if res.decided_at_ms is not None else res.end_ms
        decodes = sum(1 for e in rec.entries if e.kind == "asr" and e.t_ms <= decided)
        out.append(
            Outcome(
                right=res.evidence is not None and res.evidence.call_class.value == truth["call_class"],
                by_fingerprint=res.session.listening.fingerprint is not None,
                latency_ms=decided - int(truth["playback_ms"]),
                word_latency_ms=decided - int(truth["first_word_ms"]),
                decodes=decodes,
                mid=int(truth["offset_ms"]) >= 100,
                not_working=truth["call_class"] in {c.value for c in NOT_WORKING_CLASSES},
            )
        )
    return out


def pct(xs: list[int], q: float) -> str:
    return f"{np.percentile(xs, q) / 1000:.2f}" if xs else "-"


def report(name: str, outs: list[Outcome]) -> None:
    n = len(outs)
    fp = sum(o.by_fingerprint for o in outs)
    print(f"\n{name}: {n} calls; decided by fingerprint {fp} ({fp / n:.0%}); right class {sum(o.right for o in outs)}")
    decodes = sum(o.decodes for o in outs)
    print(f"  ASR decodes reached the decision: {decodes} ({decodes / n:.2f}/call)")
    for label, group in (
        ("from the start", [o for o in outs if not o.mid]),
        ("… temporary", [o for o in outs if not o.mid and not o.not_working]),
        ("… not-working", [o for o in outs if not o.mid and o.not_working]),
        ("joined mid-way", [o for o in outs if o.mid]),
    ):
        lat = [o.latency_ms for o in group]
        words = [o.word_latency_ms for o in group]
        within = sum(x <= GOAL_MS for x in lat)
        print(
            f"  latency from playback, {label:14} ({len(group):3}): p50 {pct(lat, 50)} s  p90 {pct(lat, 90)} s  "
            f"max {pct(lat, 100)} s  ≤ {GOAL_MS / 1000:.1f} s: {within}/{len(group)}; "
            f"from the first word p50 {pct(words, 50)} s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=80, help="day-1 calls collected and clustered")
    parser.add_argument("--replay", type=int, default=80, help="day-2 calls replayed before/after")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--mid-share", type=float, default=0.25, help="share of calls joining mid-announcement")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-learn-"))
    try:
        run(tmp, args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(tmp: Path, args: argparse.Namespace) -> None:
    settings = load_settings()
    app.fingerprint_library.cache_clear()
    base = replace(app.session_setup(settings), fingerprints=None)
    day1 = datetime(2026, 11, 20, 9, tzinfo=UTC)
    _write_days(tmp, args, base, day1)
    day2 = [read_recording(d) for d in call_dirs(tmp / "day2")]

    before = replay_all(day2, base)

    store = LearnStore(tmp / "learn")
    state, truth = _collect_day1(tmp, base, store, day1)

    lib = tmp / "library"
    lib.mkdir()
    shutil.copy(ROOT / "config" / "announcements" / "announcements.yaml", lib)
    _approve_proposals(state, store, truth, lib, now=day1 + timedelta(hours=13))
    app.fingerprint_library.cache_clear()
    after_setup = replace(base, fingerprints=app.fingerprint_library(lib))
    t = time.perf_counter()
    after = replay_all(day2, after_setup)
    print(f"replay after approval: {time.perf_counter() - t:.1f} s")

    # for comparison: the original recordings added by hand (the simulator's own clips, cut clean)
    app.fingerprint_library.cache_clear()
    by_hand = replay_all(day2, replace(base, fingerprints=app.fingerprint_library(DATA_DIR)))

    report("BEFORE approval (recognizer only)", before)
    report("AFTER approval (learned fingerprints)", after)
    report("REFERENCE: the original recordings added by hand", by_hand)
    saved = sum(o.decodes for o in before) - sum(o.decodes for o in after)
    print(f"\nASR decodes saved on day 2: {saved} of {sum(o.decodes for o in before)} "
          f"({saved / max(sum(o.decodes for o in before), 1):.0%}); ≈ {saved * 0.2:.0f}–{saved * 1.2:.0f} s of CPU "
          "at 0.2–1.2 s per Whisper-base decode")  # fmt: skip


def _write_days(tmp: Path, args: argparse.Namespace, base: SessionSetup, day1: datetime) -> None:
    """Day 1's calls (collected) and day 2's (replayed before and after approval)."""
    clips = clips_from_library(DATA_DIR, CLIPS)
    rng = np.random.default_rng(args.seed)
    t = time.perf_counter()
    share = args.mid_share
    write_calls(tmp / "day1", clips, args.train, rng, base, start=day1, numbers=NUMBERS, mid_share=share)
    write_calls(tmp / "day2", clips, args.replay, rng, base, start=day1 + timedelta(days=1), numbers=NUMBERS,
                mid_share=share)  # fmt: skip
    print(f"{args.train} + {args.replay} calls written in {time.perf_counter() - t:.1f} s "
          f"({len(clips)} recordings, mid-way share {args.mid_share:.0%})")  # fmt: skip


def _collect_day1(
    tmp: Path, base: SessionSetup, store: LearnStore, day1: datetime
) -> tuple[LearnState, dict[str, dict[str, str]]]:
    """Day 1 collected and clustered; the clusters, and each call's truth by attempt id."""
    t = time.perf_counter()
    rep = collect(tmp / "day1", base, store, now=day1 + timedelta(hours=12))
    dt = time.perf_counter() - t
    truth = {str(r.attempt_id): r.meta["truth"] for r in (read_recording(d) for d in call_dirs(tmp / "day1"))}
    state = store.load()
    pure = sum(len({truth[m]["clip"] for m in c.members}) == 1 for c in state.clusters)
    per_clip = {name: sum(any(truth[m]["clip"] == name for m in c.members) for c in state.clusters) for name in CLIPS}
    print(f"\ncollect: {rep.calls} calls in {dt:.1f} s ({dt / max(rep.calls, 1) * 1000:.0f} ms/call): {rep.kept} kept, "
          f"{len(state.clusters)} clusters ({rep.merged} merged), {pure} pure; clusters per recording "
          f"{sorted(per_clip.values())}")  # fmt: skip
    return state, truth


def _approve_proposals(
    state: LearnState, store: LearnStore, truth: dict[str, dict[str, str]], lib: Path, now: datetime
) -> None:
    """Approve what the catalogue proposed: temporary classes automatically, not-working ones as
    a reviewer would; count how many proposals were right."""
    right = auto = by_person = 0
    for c in state.clusters:
        clip = store.clip(c)
        majority = max(
            {truth[m]["call_class"] for m in c.members},
            key=lambda k: sum(truth[m]["call_class"] == k for m in c.members),
        )
        right += c.proposed is not None and c.proposed.value == majority
        if c.proposed is None or clip is None:
            continue
        if may_auto_approve(c, 3):
            approve(c, c.proposed, f"auto ({c.agreeing} calls agreed)", now, clip, lib)
            auto += 1
        elif c.proposed in NOT_WORKING_CLASSES:
            approve(c, c.proposed, "bench-reviewer", now, clip, lib)
            by_person += 1
    store.save(state)
    print(f"proposals right: {right}/{len(state.clusters)}; approved: {auto} automatically (temporary), "
          f"{by_person} by a person (not-working)")  # fmt: skip


if __name__ == "__main__":
    main()
