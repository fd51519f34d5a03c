"""Collect unknown announcements from call recordings, after the fact.

Each recorded call not collected yet is replayed through the worker's own call session with the
current fingerprint library (so a recording learned since is recognised, and what is known is
never collected again); a call no known recording decided whose audio holds an announcement gives
a :class:`~dialer.learn.segments.Segment` with its recognised text, confidence, network facts and
the carrier / number range of its number (numbering registry). Segments go to the store and to
their cluster. Calls still being written (``complete: false``) wait for the next run.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from dialer.domain.fusion import ANNOUNCEMENT_CLASSES, Action
from dialer.domain.model import CallClass
from dialer.domain.numbering import NumberingIndex
from dialer.errors import InputError
from dialer.learn.cluster import Cluster, Clusterer, may_auto_approve
from dialer.learn.library import approve
from dialer.learn.segments import CallFacts, SegmentParams, cut_segment
from dialer.learn.store import LearnState, LearnStore
from dialer.session.recording import Recording, call_dirs, read_recording
from dialer.session.replay import Replayed, replay_recording
from dialer.session.session import SessionSetup

log = logging.getLogger(__name__)

_TALLIED = ANNOUNCEMENT_CLASSES | {CallClass.SIT_UNRECOGNISED}


@dataclass
class CollectReport:
    calls: int = 0  # recordings read this run
    kept: int = 0  # unknown announcements kept
    by_fingerprint: int = 0  # decided by a known recording (not collected; counted as heard)
    new_clusters: int = 0
    merged: int = 0  # clusters found to be one recording and merged
    auto_approved: list[str] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)  # why a call gave no segment
    evicted: int = 0


def call_facts(rec: Recording, res: Replayed, numbering: NumberingIndex | None, now: datetime) -> CallFacts:
    """What the review needs to know of one recorded call, from its recording and its replay."""
    ev = res.evidence
    decision = rec.decision or {}
    cls = ev.call_class if ev is not None else CallClass(str(decision.get("call_class", CallClass.ABORTED.value)))
    finals = [e.data for e in rec.entries if e.kind == "asr" and e.data.get("final") and str(e.data.get("text", ""))]
    # the review shows the best single decode (the most confident one), not the joined passes
    best = max(finals, key=lambda d: -1.0 if d.get("conf") is None else float(d["conf"]), default=None)
    fp = res.session.listening.fingerprint
    net = res.session.net
    number = str(rec.meta.get("number") or "")
    rng = numbering.lookup(number) if numbering is not None and number else None
    started = rec.meta.get("started_at")
    try:
        heard = datetime.fromisoformat(str(started)) if started else now
    except ValueError:
        heard = now
    return CallFacts(
        attempt_id=str(rec.attempt_id),
        heard_at=heard,
        call_class=cls,
        answered=ev.answered if ev is not None else bool(decision.get("answered")),
        handed_over=res.action is Action.HAND_TO_OPERATOR or cls in (CallClass.PERSON, CallClass.PERSON_LOST),
        by_fingerprint=fp.name if fp is not None else None,
        text=str(best["text"]).strip() if best is not None else "",
        confidence=float(best["conf"]) if best is not None and best.get("conf") is not None else None,
        # what the network said by the end of the call (a decision often comes before the hang-up)
        cause=net.hangup_cause if net.hangup_cause is not None else (ev.hangup_cause if ev is not None else None),
        dial_status=net.dial_status or (ev.dial_status if ev is not None else None),
        carrier=rng.operator if rng is not None else "",
        number_range=f"{rng.code} {rng.start:07d}–{rng.end:07d}" if rng is not None else "",
        region=rng.region if rng is not None else "",
        campaign=str(rec.meta.get("campaign") or ""),
    )


def collect(
    root: Path,
    setup: SessionSetup,
    store: LearnStore,
    *,
    now: datetime,
    numbering: NumberingIndex | None = None,
    params: SegmentParams | None = None,
    auto_approve_min_calls: int = 0,
    library_dir: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> CollectReport:
    """Collect every recorded call under ``root`` not collected yet; the state is saved at the end."""
    if not root.exists():
        raise InputError(f"{root}: no such directory")
    with store.locked():
        return _collect(root, setup, store, now, numbering, params, auto_approve_min_calls, library_dir, progress)


def _collect(
    root: Path,
    setup: SessionSetup,
    store: LearnStore,
    now: datetime,
    numbering: NumberingIndex | None,
    params: SegmentParams | None,
    auto_approve_min_calls: int,
    library_dir: Path | None,
    progress: Callable[[int], None] | None,
) -> CollectReport:
    state = store.load()
    clusterer = Clusterer(state.clusters, store.clip, phrases=setup.matcher)
    report = CollectReport()
    for n, d in enumerate(call_dirs(root), 1):
        if progress is not None:
            progress(n)
        try:
            rec = read_recording(d)
        except InputError as exc:
            log.warning("learning: %s", exc)
            report.skipped["unreadable recording"] += 1
            continue
        key = str(rec.attempt_id)
        if key in state.collected:
            continue
        if not rec.meta.get("complete"):
            report.skipped["still being written"] += 1
            continue
        report.calls += 1
        res = replay_recording(rec, setup)
        facts = call_facts(rec, res, numbering, now)
        frames = [(int(e.data["i"]), e.pcm) for e in rec.entries if e.kind == "frame"]
        seg, why = cut_segment(facts, frames, setup.plan, params, setup.sample_rate)
        if facts.by_fingerprint:
            report.by_fingerprint += 1
            _heard(state, facts.by_fingerprint, facts.heard_at)
        if seg is not None:
            store.add(seg)
            _c, new = clusterer.add(seg)
            report.kept += 1
            report.new_clusters += new
        else:
            report.skipped[why if not facts.by_fingerprint else "decided by a known recording"] += 1
        if seg is not None or facts.by_fingerprint or facts.call_class in _TALLIED:
            _tally(state, facts, unknown=seg is not None)
        state.collected[key] = why
    for gone, into in clusterer.merge_pass():
        log.info("learning: cluster %s is the recording of %s: merged", gone, into)
        report.merged += 1
    state.clusters = sorted(clusterer.clusters.values(), key=lambda c: c.id)
    if auto_approve_min_calls > 0 and library_dir is not None:
        report.auto_approved = auto_approve(state.clusters, store, auto_approve_min_calls, library_dir, now)
    report.evicted = store.enforce_bounds({c.representative for c in state.clusters})
    store.save(state)
    return report


def auto_approve(
    clusters: list[Cluster], store: LearnStore, min_calls: int, library_dir: Path, now: datetime
) -> list[str]:
    """Approve temporary announcements the recognizer named on ≥ ``min_calls`` calls."""
    done: list[str] = []
    for c in clusters:
        if not may_auto_approve(c, min_calls):
            continue
        clip = store.clip(c)
        if clip is None or c.proposed is None:
            continue
        a = approve(c, c.proposed, f"auto ({c.agreeing} calls agreed)", now, clip, library_dir)
        log.info("learning: cluster %s approved automatically as %s (%s)", c.id, a.call_class.value, a.name)
        done.append(c.id)
    return done


def _heard(state: LearnState, name: str, at: datetime) -> None:
    h = state.heard.setdefault(name, {"last": at.isoformat(), "count": 0})
    h["count"] = int(h.get("count", 0)) + 1
    h["last"] = max(str(h.get("last", "")), at.isoformat())


def _tally(state: LearnState, facts: CallFacts, *, unknown: bool) -> None:
    day = facts.heard_at.date().isoformat()
    t = state.tallies.setdefault(facts.carrier or "unknown", {}).setdefault(day, [0, 0])
    t[0] += 1
    t[1] += int(unknown)
