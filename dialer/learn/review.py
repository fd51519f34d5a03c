"""The review: what the terminal table and the web page show, and the two things a reviewer does
(approve with a class, reject). One place for both front ends."""

from __future__ import annotations

import io
import wave
from datetime import datetime
from pathlib import Path

from dialer.audio.frames import SAMPLE_RATE_HZ
from dialer.domain.fusion import NOT_WORKING_CLASSES
from dialer.domain.model import CallClass
from dialer.errors import InputError
from dialer.learn.cluster import Cluster, ClusterStatus
from dialer.learn.library import Approved, approve, reject
from dialer.learn.store import LearnStore

TEXT_WIDTH = 48


def find(clusters: list[Cluster], cluster_id: str) -> Cluster:
    for c in clusters:
        if c.id == cluster_id:
            return c
    known = ", ".join(c.id for c in clusters if c.status is ClusterStatus.OPEN) or "none open"
    raise InputError(f"no cluster {cluster_id!r} (open: {known})")


def parse_class(text: str) -> CallClass:
    try:
        return CallClass(text)
    except ValueError:
        raise InputError(
            f"unknown call class {text!r} (e.g. ann_temporarily_unavailable, ann_not_in_service)"
        ) from None


def approve_cluster(
    store: LearnStore, library_dir: Path, cluster_id: str, call_class: CallClass, by: str, now: datetime
) -> Approved:
    with store.locked():
        state = store.load()
        c = find(state.clusters, cluster_id)
        clip = store.clip(c)
        if clip is None:
            raise InputError(f"cluster {cluster_id}: its clip {c.representative} is gone from the learning store")
        done = approve(c, call_class, by, now, clip, library_dir)
        store.save(state)
        return done


def reject_cluster(store: LearnStore, library_dir: Path, cluster_id: str, by: str, now: datetime) -> None:
    with store.locked():
        state = store.load()
        reject(find(state.clusters, cluster_id), by, now, library_dir)
        store.save(state)


def ordered(clusters: list[Cluster], *, everything: bool = False) -> list[Cluster]:
    """Open clusters first, the most heard first; approved/rejected ones only with ``everything``."""
    shown = [c for c in clusters if everything or c.status is ClusterStatus.OPEN]
    return sorted(shown, key=lambda c: (c.status is not ClusterStatus.OPEN, -c.count, c.id))


def clip_wav(store: LearnStore, c: Cluster) -> bytes | None:
    x = store.clip(c)
    if x is None:
        return None
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE_HZ)
        w.writeframes(x.astype("<i2").tobytes())
    return buf.getvalue()


def carriers_text(c: Cluster) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(c.carriers.items(), key=lambda kv: -kv[1]))


def proposal_text(c: Cluster) -> str:
    p = c.proposed
    if p is None:
        return "-"
    mark = " (not working: a person approves)" if p in NOT_WORKING_CLASSES else ""
    return f"{p.value} ({c.agreeing}/{c.count}){mark}"


def table(clusters: list[Cluster]) -> str:
    """The terminal table of ``dialer announcements review``."""
    head = ("cluster", "status", "calls", "first seen", "last seen", "carriers", "proposed", "best transcript")
    rows = [head]
    for c in clusters:
        text = c.best_text or "-"
        if len(text) > TEXT_WIDTH:
            text = text[: TEXT_WIDTH - 1] + "…"
        status = c.status.value if c.status is not ClusterStatus.APPROVED else f"approved {c.approved_class}"
        rows.append(
            (
                c.id,
                status,
                str(c.count),
                c.first_seen[:16].replace("T", " "),
                c.last_seen[:16].replace("T", " "),
                carriers_text(c) or "-",
                proposal_text(c),
                text,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
