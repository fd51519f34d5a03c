"""Segments of the same recording → one cluster. Pure: segments and clusters in, clusters out.

Two segments are the same recording when the fingerprint matcher that decides live calls
(:class:`~dialer.audio.fingerprint.FingerprintMatcher`) accepts one against the other: from any
offset, through G.711, noise and lost frames, with at least ~1.2 s of common speech. Every open,
approved or rejected cluster is represented by one clip (one whole loop of the recording, from
the cleanest member: see :func:`_better`); a new segment joins the first cluster whose clip it
matches, or starts a new one. So what clusters together is exactly what the approved fingerprint
will later decide.

Each cluster carries what the review needs: counts, first/last seen, carriers, the best
transcript and the class the phrase catalogue proposes (the class most members' recognised text
named, with how many calls agreed).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dialer.asr.matcher import PhraseMatcher
from dialer.audio.fingerprint import FingerprintLibrary, FingerprintMatcher, KnownRecording, MatcherConfig
from dialer.audio.frames import SAMPLE_RATE_HZ, samples_per_frame
from dialer.domain.fusion import ANNOUNCEMENT_CLASSES, NOT_WORKING_CLASSES
from dialer.domain.model import CallClass
from dialer.learn.segments import Int16Array, Segment

MEMBERS_KEPT = 200  # call ids named per cluster (the count goes on)


class ClusterStatus(enum.StrEnum):
    OPEN = "open"  # waiting for a review
    APPROVED = "approved"  # in the fingerprint library
    REJECTED = "rejected"  # not worth a fingerprint (still absorbs its repeats)


@dataclass
class Cluster:
    id: str
    representative: str  # segment id of the clip that stands for the cluster
    representative_speech_ms: int  # voice in the representative's pass
    count: int = 0
    first_seen: str = ""  # ISO UTC
    last_seen: str = ""
    members: list[str] = field(default_factory=list)  # attempt ids, newest last (bounded)
    carriers: dict[str, int] = field(default_factory=dict)
    votes: dict[str, int] = field(default_factory=dict)  # call class → calls whose text named it
    texts: dict[str, list[Any]] = field(default_factory=dict)  # class ("" none) → [best text, confidence]
    status: ClusterStatus = ClusterStatus.OPEN
    approved_class: str | None = None
    approved_by: str | None = None
    approved_at: str | None = None
    library_name: str | None = None
    library_version: int | None = None
    rejected_by: str | None = None
    representative_offset_ms: int = 0  # the clip starts this far into the representative segment
    representative_snr_db: float = 0.0
    representative_lost: int = 0
    representative_end_ms: int = 0  # … and ends this far into it (0: at its end)
    pass_lengths: list[int] = field(default_factory=list)  # voice of the members' passes (recent ones)

    @property
    def proposed(self) -> CallClass | None:
        """The class the catalogue proposes: named by most members' text."""
        if not self.votes:
            return None
        cls, _n = max(self.votes.items(), key=lambda kv: (kv[1], kv[0]))
        return CallClass(cls)

    @property
    def best_text(self) -> str:
        """The most confident transcript naming the proposed class (else any transcript)."""
        p = self.proposed
        best = self.texts.get(p.value if p is not None else "") or next(iter(self.texts.values()), None)
        return str(best[0]) if best else ""

    @property
    def agreeing(self) -> int:
        p = self.proposed
        return self.votes.get(p.value, 0) if p is not None else 0

    def to_json(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["status"] = self.status.value
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Cluster:
        c = cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})
        c.status = ClusterStatus(c.status)
        return c


def may_auto_approve(cluster: Cluster, min_calls: int) -> bool:
    """A temporary announcement the recognizer named on ≥ ``min_calls`` calls (0: never). A
    not-working class settles contacts as «Некорректный контакт»: only a person approves it."""
    p = cluster.proposed
    if min_calls <= 0 or cluster.status is not ClusterStatus.OPEN or p is None:
        return False
    temporary = p in ANNOUNCEMENT_CLASSES and p not in NOT_WORKING_CLASSES
    return temporary and cluster.agreeing >= min_calls


class Clusterer:
    """Assigns segments to clusters. ``clip(cluster)`` gives a cluster's representative audio
    (the store reads it); the fingerprints of the clips are made once and kept."""

    def __init__(
        self,
        clusters: Iterable[Cluster],
        clip: Callable[[Cluster], Int16Array | None],
        *,
        phrases: PhraseMatcher | None = None,
        config: MatcherConfig | None = None,
        next_id: int = 1,
    ) -> None:
        self.clusters: dict[str, Cluster] = {c.id: c for c in clusters}
        self._clip = clip
        self._phrases = phrases
        self._config = config or MatcherConfig()
        self._next = max([next_id, *(int(c.id.lstrip("c") or 0) + 1 for c in self.clusters.values())])
        self._prints: dict[str, KnownRecording] = {}
        self._library: FingerprintLibrary | None = None

    def _recording(self, c: Cluster) -> KnownRecording | None:
        rec = self._prints.get(c.id)
        if rec is None or rec.note != c.representative:
            x = self._clip(c)
            if x is None or not len(x):
                return None
            rec = KnownRecording.from_samples(c.id, CallClass.SIT_UNRECOGNISED, x, note=c.representative)
            self._prints[c.id] = rec
            self._library = None
        return rec

    def library(self) -> FingerprintLibrary:
        if self._library is None:
            recs = [r for c in self.clusters.values() if (r := self._recording(c)) is not None]
            self._library = FingerprintLibrary.build(recs)
        return self._library

    def match(self, samples: Int16Array, *, without: str | None = None) -> str | None:
        """The cluster whose clip this audio matches (other than ``without``), or None."""
        lib = self.library()
        if without is not None:
            lib = FingerprintLibrary.build(r for r in lib.recordings if r.name != without)
        if not lib:
            return None
        m = FingerprintMatcher(lib, self._config)
        per = samples_per_frame(SAMPLE_RATE_HZ)
        for i in range(-(-len(samples) // per)):
            found = m.feed(samples[i * per : (i + 1) * per].astype("<i2").tobytes(), i)
            if found is not None:
                return found.name
        return None

    def add(self, seg: Segment) -> tuple[Cluster, bool]:
        """Put a segment in its cluster (a new one if none matches); (cluster, new?)."""
        cid = self.match(seg.samples)
        new = cid is None
        if cid is None:
            cid = f"c{self._next:04d}"
            self._next += 1
            self.clusters[cid] = Cluster(
                cid,
                seg.id,
                seg.pass_speech_ms,
                representative_offset_ms=seg.pass_offset_ms,
                representative_snr_db=seg.snr_db,
            )
            self._library = None
        c = self.clusters[cid]
        self._absorb(c, seg)
        if new:
            c.pass_lengths = []
        c.pass_lengths = [*c.pass_lengths, seg.pass_speech_ms][-PASS_LENGTHS_KEPT:]
        if not new and c.status is ClusterStatus.OPEN and _better(seg, c):
            c.representative, c.representative_speech_ms = seg.id, seg.pass_speech_ms
            c.representative_offset_ms, c.representative_snr_db = seg.pass_offset_ms, seg.snr_db
            c.representative_lost, c.representative_end_ms = seg.lost_frames, seg.pass_end_offset_ms
            self._library = None
        return c, new

    def merge_pass(self) -> list[tuple[str, str]]:
        """Clusters that turn out to be one recording (an early clip covered too little of it to
        match the later ones) are merged: an open cluster whose clip matches another cluster's
        joins it. (merged, into) pairs."""
        merged: list[tuple[str, str]] = []
        for c in sorted(self.clusters.values(), key=lambda c: (c.count, c.id)):
            if c.status is not ClusterStatus.OPEN or len(self.clusters) < 2:
                continue
            clip = self._clip(c)
            into = self.match(clip, without=c.id) if clip is not None else None
            if into is None:
                continue
            _merge(self.clusters[into], c)
            del self.clusters[c.id]
            self._prints.pop(c.id, None)
            self._library = None
            merged.append((c.id, into))
        return merged

    def _absorb(self, c: Cluster, seg: Segment) -> None:
        f = seg.facts
        at = f.heard_at.isoformat()
        c.count += 1
        c.first_seen = min(c.first_seen, at) if c.first_seen else at
        c.last_seen = max(c.last_seen, at)
        c.members = [*c.members, seg.id][-MEMBERS_KEPT:]
        carrier = f.carrier or "unknown"
        c.carriers[carrier] = c.carriers.get(carrier, 0) + 1
        if not f.text:
            return
        named = self._phrases.best_match(f.text) if self._phrases is not None else None
        key = named.call_class.value if named is not None else ""
        if named is not None:
            c.votes[key] = c.votes.get(key, 0) + 1
        conf = f.confidence if f.confidence is not None else -1.0
        have = c.texts.get(key)
        if have is None or conf > float(have[1]):
            c.texts[key] = [f.text, conf]


PASS_LENGTHS_KEPT = 50
WHOLE_PASS_TOLERANCE = 0.2  # a pass within this share of the usual pass's voice is one whole loop


def _whole(pass_ms: int, c: Cluster) -> bool:
    """One whole loop of the recording: about as much voice as most members' passes (a shorter one
    is cut; a longer one holds two passes the voice detector did not tell apart)."""
    if not c.pass_lengths:
        return True
    usual = float(np.median(c.pass_lengths))
    return abs(pass_ms - usual) <= WHOLE_PASS_TOLERANCE * usual


def _better(seg: Segment, c: Cluster) -> bool:
    """The clip stands for the recording: one whole pass first, then the cleanest copy (fewest
    lost frames, least background: a poor clip adds its own bit errors to every later match)."""
    if not _whole(seg.pass_speech_ms, c):
        return False
    cleaner = (seg.lost_frames, -seg.snr_db) < (c.representative_lost, -c.representative_snr_db)
    return not _whole(c.representative_speech_ms, c) or cleaner


def clip_of(c: Cluster, segment_audio: Int16Array | None) -> Int16Array | None:
    """The cluster's clip: one pass of its representative segment (from its first word if known)."""
    if segment_audio is None:
        return None
    return segment_audio[c.representative_offset_ms * 8 : c.representative_end_ms * 8 or None]


def _merge(into: Cluster, c: Cluster) -> None:
    into.count += c.count
    into.first_seen = min(into.first_seen, c.first_seen)
    into.last_seen = max(into.last_seen, c.last_seen)
    into.members = sorted([*into.members, *c.members])[-MEMBERS_KEPT:]
    for k, v in c.carriers.items():
        into.carriers[k] = into.carriers.get(k, 0) + v
    for k, n in c.votes.items():
        into.votes[k] = into.votes.get(k, 0) + n
    for k, tc in c.texts.items():
        if k not in into.texts or float(tc[1]) > float(into.texts[k][1]):
            into.texts[k] = tc
    into.pass_lengths = [*into.pass_lengths, *c.pass_lengths][-PASS_LENGTHS_KEPT:]
    mine_whole, theirs_whole = _whole(into.representative_speech_ms, into), _whole(c.representative_speech_ms, into)
    cleaner = (c.representative_lost, -c.representative_snr_db) < (
        into.representative_lost,
        -into.representative_snr_db,
    )
    if into.status is ClusterStatus.OPEN and theirs_whole and (not mine_whole or cleaner):
        into.representative, into.representative_speech_ms = c.representative, c.representative_speech_ms
        into.representative_offset_ms, into.representative_snr_db = c.representative_offset_ms, c.representative_snr_db
        into.representative_lost, into.representative_end_ms = c.representative_lost, c.representative_end_ms


__all__ = ["Cluster", "ClusterStatus", "Clusterer", "clip_of", "may_auto_approve"]
