"""The learning room on disk: unknown segments (bounded by count and size), the clusters and what
the collector has seen. A thin adapter: JSON and raw audio files under ``[learn] dir``.

Layout::

    <dir>/state.json            clusters, calls already collected, library entries heard, carrier tallies
    <dir>/segments/<id>.slin    a segment's audio (signed 16-bit little-endian, 8 kHz)
    <dir>/segments/<id>.json    its facts (text, confidence, cause, DialStatus, carrier …)

Bounds: past ``max_segments`` segments or ``max_mb`` of audio the oldest segments go first — never
a cluster's representative clip (a cluster keeps its counts whatever is deleted).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dialer.errors import InputError
from dialer.learn.cluster import Cluster, clip_of
from dialer.learn.segments import Int16Array, Segment

log = logging.getLogger(__name__)

STATE_FILE = "state.json"
LOCK_FILE = "state.lock"
SEGMENTS_DIR = "segments"
STATE_VERSION = 1
COLLECTED_KEPT = 200_000  # call ids remembered as collected (recordings are kept for days, not years)


@dataclass
class LearnState:
    clusters: list[Cluster] = field(default_factory=list)
    collected: dict[str, str] = field(default_factory=dict)  # attempt id → what became of it
    heard: dict[str, dict[str, Any]] = field(default_factory=dict)  # library entry → {"last", "count"}
    # carrier → day (YYYY-MM-DD) → [announcement calls, unknown ones]
    tallies: dict[str, dict[str, list[int]]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "clusters": [c.to_json() for c in self.clusters],
            "collected": self.collected,
            "heard": self.heard,
            "tallies": self.tallies,
        }


class LearnStore:
    def __init__(self, root: Path, *, max_segments: int = 2000, max_mb: int = 500) -> None:
        self.root = root
        self.max_segments = max_segments
        self.max_bytes = max_mb * 1024 * 1024

    @property
    def _segments(self) -> Path:
        return self.root / SEGMENTS_DIR

    # -- state ----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """One change of the state at a time across processes (a collect from cron and an approval
        on the page): each reads, changes and writes state.json whole."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / LOCK_FILE).open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def load(self) -> LearnState:
        path = self.root / STATE_FILE
        if not path.exists():
            return LearnState()
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"{path}: {exc}") from None
        if not isinstance(d, dict) or d.get("version") != STATE_VERSION:
            raise InputError(f"{path}: not a learning state of version {STATE_VERSION}")
        try:
            return LearnState(
                clusters=[Cluster.from_json(c) for c in d.get("clusters", [])],
                collected=dict(d.get("collected", {})),
                heard=dict(d.get("heard", {})),
                tallies=dict(d.get("tallies", {})),
            )
        except (TypeError, ValueError) as exc:
            raise InputError(f"{path}: {exc}") from None

    def save(self, state: LearnState) -> None:
        if len(state.collected) > COLLECTED_KEPT:
            state.collected = dict(list(state.collected.items())[-COLLECTED_KEPT:])
        self.root.mkdir(parents=True, exist_ok=True)
        _write_json(self.root / STATE_FILE, state.to_json())

    # -- segments -------------------------------------------------------------------------------

    def add(self, seg: Segment) -> None:
        self._segments.mkdir(parents=True, exist_ok=True)
        (self._segments / f"{seg.id}.slin").write_bytes(seg.samples.astype("<i2").tobytes())
        facts = asdict(seg.facts)
        facts.update(
            heard_at=seg.facts.heard_at.isoformat(),
            call_class=seg.facts.call_class.value,
            start_ms=seg.start_ms,
            speech_ms=seg.speech_ms,
            pass_offset_ms=seg.pass_offset_ms,
            pass_speech_ms=seg.pass_speech_ms,
            snr_db=seg.snr_db,
            lost_frames=seg.lost_frames,
            pass_end_offset_ms=seg.pass_end_offset_ms,
        )
        _write_json(self._segments / f"{seg.id}.json", facts)

    def audio(self, seg_id: str) -> Int16Array | None:
        path = self._segments / f"{_safe(seg_id)}.slin"
        if not path.is_file():
            return None
        return np.frombuffer(path.read_bytes(), dtype="<i2").astype(np.int16)

    def facts(self, seg_id: str) -> dict[str, Any] | None:
        path = self._segments / f"{_safe(seg_id)}.json"
        if not path.is_file():
            return None
        obj = json.loads(path.read_text(encoding="utf-8"))
        return obj if isinstance(obj, dict) else None

    def clip(self, c: Cluster) -> Int16Array | None:
        """A cluster's clip (what is listened to, matched against and approved)."""
        return clip_of(c, self.audio(c.representative))

    def segment_ids(self) -> list[str]:
        """Stored segments, oldest first."""
        if not self._segments.is_dir():
            return []
        files = sorted(self._segments.glob("*.slin"), key=lambda p: (p.stat().st_mtime, p.name))
        return [p.stem for p in files]

    def bytes_used(self) -> int:
        if not self._segments.is_dir():
            return 0
        return sum(p.stat().st_size for p in self._segments.iterdir() if p.is_file())

    def enforce_bounds(self, keep: set[str]) -> int:
        """Delete the oldest segments past the bounds, never those in ``keep``; how many went."""
        ids = self.segment_ids()
        used = self.bytes_used()
        removed = 0
        for seg_id in ids:
            if len(ids) - removed <= self.max_segments and used <= self.max_bytes:
                break
            if seg_id in keep:
                continue
            for suffix in (".slin", ".json"):
                p = self._segments / f"{seg_id}{suffix}"
                if p.exists():
                    used -= p.stat().st_size
                    p.unlink()
            removed += 1
        if removed:
            log.info("learning store: %d old segment(s) deleted to stay within its bounds", removed)
        return removed


def _safe(seg_id: str) -> str:
    """A segment id from a request names a file here and nowhere else."""
    if not seg_id or any(ch in seg_id for ch in "/\\\x00") or seg_id.startswith("."):
        raise InputError(f"not a segment id: {seg_id!r}")
    return seg_id


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)
