"""Clustering (pure): segments of one recording — from any offset, through G.711, noise and lost
frames — fall into one cluster, different recordings into different ones; what the cluster says
for the review; auto-approval never for a not-working class."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from dialer.asr.catalogue import load_catalogue
from dialer.asr.matcher import PhraseMatcher
from dialer.audio import load_toneplans
from dialer.audio.fingerprint import KnownRecording
from dialer.domain.model import CallClass
from dialer.learn.cluster import Cluster, Clusterer, ClusterStatus, clip_of, may_auto_approve
from dialer.learn.segments import CallFacts, Int16Array, Segment, cut_segment, why_not_kept
from dialer.learn.synthetic import Clip, call_audio, clips_from_library
from dialer.sim.audio import DATA_DIR

from .conftest import CONFIG

PLAN = load_toneplans(CONFIG / "tones.yaml").get("RU")
PHRASES = PhraseMatcher(load_catalogue(CONFIG / "phrases.yaml"))
T0 = datetime(2026, 11, 20, 9, tzinfo=UTC)


def facts(n: int, text: str = "", carrier: str = "МТС", **kw: object) -> CallFacts:
    base: dict[str, object] = dict(
        attempt_id=f"call-{n:03d}",
        heard_at=T0 + timedelta(minutes=n),
        call_class=CallClass.SIT_UNRECOGNISED,
        answered=False,
        handed_over=False,
        by_fingerprint=None,
        text=text,
        confidence=0.8 if text else None,
        carrier=carrier,
    )
    base.update(kw)
    return CallFacts(**base)  # type: ignore[arg-type]


def frames(x: Int16Array, rng: np.random.Generator, loss: float = 0.02) -> list[tuple[int, bytes]]:
    out = []
    for i in range(len(x) // 160):
        if rng.random() >= loss:
            out.append((i, x[i * 160 : (i + 1) * 160].astype("<i2").tobytes()))
    return out


def segment_of(clip: Clip, n: int, rng: np.random.Generator, **kw: object) -> Segment:
    off = int(rng.integers(0, clip.duration_ms // 2))
    seg, why = cut_segment(facts(n, **kw), frames(call_audio(clip, rng, off, 2), rng), PLAN)  # type: ignore[arg-type]
    assert seg is not None, why
    return seg


def test_one_cluster_per_recording_from_any_offset_through_codec_noise_and_loss(clips: list[Clip]) -> None:
    rng = np.random.default_rng(3)
    store: dict[str, Int16Array] = {}
    clusterer = Clusterer([], lambda c: clip_of(c, store.get(c.representative)), phrases=PHRASES)
    truth: dict[str, str] = {}
    for n in range(15):
        clip = clips[n % 3]
        seg = segment_of(clip, n, rng, text=clip.text, carrier=["МТС", "Билайн"][n % 2])
        store[seg.id] = seg.samples
        c, _new = clusterer.add(seg)
        truth[seg.id] = clip.name
    clusterer.merge_pass()
    found = {c.id: {truth[m] for m in c.members} for c in clusterer.clusters.values()}
    assert all(len(names) == 1 for names in found.values()), found  # no cluster mixes two recordings
    assert len(found) == 3, found  # and each recording is one cluster
    by_clip = {next(iter(found[c.id])): c for c in clusterer.clusters.values()}
    c = by_clip["not_in_service"]
    assert c.count == 5 and c.carriers == {"Билайн": 2, "МТС": 3}
    assert c.proposed is CallClass.ANN_NOT_IN_SERVICE and c.agreeing == 5
    assert c.best_text == "Набранный вами номер не обслуживается."
    assert (
        c.first_seen == (T0 + timedelta(minutes=2)).isoformat()
        and c.last_seen == (T0 + timedelta(minutes=14)).isoformat()
    )
    assert by_clip["unreachable"].proposed is CallClass.ANN_TEMPORARILY_UNAVAILABLE


def test_state_survives_json_and_keeps_clustering(clips: list[Clip]) -> None:
    rng = np.random.default_rng(5)
    store: dict[str, Int16Array] = {}
    first = Clusterer([], lambda c: clip_of(c, store.get(c.representative)))
    for n in range(2):
        seg = segment_of(clips[0], n, rng)
        store[seg.id] = seg.samples
        first.add(seg)
    saved = [Cluster.from_json(c.to_json()) for c in first.clusters.values()]
    again = Clusterer(saved, lambda c: clip_of(c, store.get(c.representative)))
    seg = segment_of(clips[0], 9, rng)
    c, new = again.add(seg)
    assert not new and c.count == 3
    other, new_other = again.add(segment_of(clips[2], 10, rng))
    assert new_other and other.id != c.id and other.id > c.id


def test_auto_approval_only_for_temporary_classes_the_recognizer_agreed_on() -> None:
    temp = Cluster("c0001", "x", 2000, count=5, votes={"ann_temporarily_unavailable": 4})
    bad = Cluster("c0002", "y", 2000, count=9, votes={"ann_not_in_service": 9})
    assert not may_auto_approve(temp, 0)  # off by default
    assert may_auto_approve(temp, 4) and not may_auto_approve(temp, 5)
    assert not may_auto_approve(bad, 1)  # «Некорректный контакт»: only a person approves
    temp.status = ClusterStatus.REJECTED
    assert not may_auto_approve(temp, 1)


def test_calls_that_may_hold_a_person_or_were_known_are_never_kept() -> None:
    assert why_not_kept(facts(1)) is None
    assert why_not_kept(facts(2, call_class=CallClass.ANN_BLOCKED, answered=True)) is None  # a false answer
    assert "person" in str(why_not_kept(facts(3, call_class=CallClass.PERSON, answered=True, handed_over=True)))
    assert "person" in str(why_not_kept(facts(4, call_class=CallClass.UNSURE_ANSWERED, answered=True)))
    assert "not an announcement" in str(why_not_kept(facts(5, call_class=CallClass.ANSWERED_SILENCE, answered=True)))
    assert "known recording" in str(why_not_kept(facts(6, by_fingerprint="learned-c0001")))


def test_the_segment_starts_after_the_sit_tones_and_needs_enough_voice(clips: list[Clip]) -> None:
    rng = np.random.default_rng(1)
    t = np.arange(int(0.33 * 8000)) / 8000
    sit = np.concatenate([8000 * np.sin(2 * np.pi * f * t) for f in (950, 1400, 1800)])
    x = np.concatenate([np.zeros(4000), sit, np.zeros(2000), clips[0].samples.astype(np.float64), np.zeros(4000)])
    seg, why = cut_segment(facts(1), frames(x.astype(np.int16), rng, loss=0), PLAN)
    assert seg is not None, why
    sit_end_ms = (4000 + len(sit)) // 8
    assert seg.start_ms >= sit_end_ms - 40  # the tones are not part of it
    assert seg.speech_ms >= 1500 and seg.duration_ms <= clips[0].duration_ms + 1200
    short = np.concatenate([np.zeros(4000), clips[0].samples[:4000].astype(np.float64) * 0, np.zeros(4000)])
    none, why = cut_segment(facts(2), frames(short.astype(np.int16), rng, loss=0), PLAN)
    assert none is None and why == "too little voice"


def test_the_clip_is_one_whole_loop_of_the_recording() -> None:
    """Carriers loop a recording with a pause: the clip is one loop from its first word, never two
    (the matcher would wait for the voice of both), from any mix of offsets."""
    (blocked,) = clips_from_library(DATA_DIR, ["blocked"])
    rng = np.random.default_rng(9)
    store: dict[str, Int16Array] = {}
    clusterer = Clusterer([], lambda c: clip_of(c, store.get(c.representative)))
    for n in range(8):
        seg = segment_of(blocked, n, rng)
        store[seg.id] = seg.samples
        clusterer.add(seg)
    (c,) = clusterer.clusters.values()
    clip = clip_of(c, store[c.representative])
    assert clip is not None
    learned = KnownRecording.from_samples("learned", CallClass.ANN_BLOCKED, clip)
    original = KnownRecording.from_samples("original", CallClass.ANN_BLOCKED, blocked.samples)
    assert abs(learned.speech_ms - original.speech_ms) <= 0.25 * original.speech_ms, (learned, original)
    assert learned.duration_ms < 1.5 * blocked.duration_ms
