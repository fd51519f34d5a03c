"""Which part of a call is an unknown announcement, and the facts kept with it.

Pure: a call's frames, its verdict and its facts in; a :class:`Segment` (or the reason there is
none) out. A segment is the stretch of the call's audio from the first voice to the last one that
the voice-activity detector hears — after any SIT tone, so that three tones every carrier plays
alike do not glue different announcements together — bounded to ``max_segment_ms``.

Only machine announcements are kept: early media (nobody answered) or a false answer (the far end
answered and the session decided an announcement). A call that went to an operator, or whose
answered audio might be a person, is never kept: its voice is personal data.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from dialer.audio import (
    CallAudioAnalyzer,
    Observation,
    SitDetected,
    SpeechEnded,
    SpeechStarted,
    ToneDetected,
    TonePlan,
)
from dialer.audio.frames import FRAME_MS, SAMPLE_RATE_HZ, samples_per_frame
from dialer.domain.fusion import ANNOUNCEMENT_CLASSES
from dialer.domain.model import CallClass

Int16Array = npt.NDArray[np.int16]

# what an unanswered call (or a false answer) may be decided as and still be a carrier's recording
_MACHINE_CLASSES = ANNOUNCEMENT_CLASSES | {CallClass.SIT_UNRECOGNISED}
_NEVER_KEPT = frozenset({CallClass.PERSON, CallClass.PERSON_LOST, CallClass.UNSURE_ANSWERED, CallClass.VOICEMAIL})
# the worker stopped mid-call: the recording is cut short, nothing to learn from
_NOT_HEARD = frozenset({CallClass.ABORTED})


@dataclass(frozen=True, slots=True)
class SegmentParams:
    min_speech_ms: int = 1_000  # less voice than this cannot be clustered (the matcher needs ~1.2 s)
    max_segment_ms: int = 15_000  # an announcement loops: one cycle or two is plenty
    pad_ms: int = 100  # kept around the voice (the VAD's onset is a little late)
    # a pause this long inside an announcement is the carrier looping it: a pass after such a pause
    # starts at its first word (the first one heard may have begun mid-announcement)
    loop_pause_ms: int = 500
    whole_pass_share: float = 0.8  # a later pass with this share of the longest pass's voice is whole
    min_pass_ms: int = 400  # less voice than this cannot be fingerprinted (fingerprint.MIN_SPEECH_MS)


@dataclass(frozen=True, slots=True)
class Found:
    start_ms: int  # on the stream's clock
    end_ms: int
    speech_ms: int
    pass_start_ms: int  # the pass that stands for the recording: one loop of it (stream clock)
    pass_end_ms: int
    pass_speech_ms: int  # voice in it


@dataclass(frozen=True, slots=True)
class CallFacts:
    """What is known of the call besides its audio (from the recording, the replay, the registry)."""

    attempt_id: str
    heard_at: datetime
    call_class: CallClass
    answered: bool
    handed_over: bool
    by_fingerprint: str | None  # the known recording that decided it, if one did
    text: str = ""  # the recognised text (final hypotheses, in order)
    confidence: float | None = None  # the best final hypothesis' confidence
    cause: int | None = None
    dial_status: str | None = None
    carrier: str = ""  # operator of the number range (numbering registry), "" unknown
    number_range: str = ""  # "CCC NNNNNNN–NNNNNNN" of the registry, "" unknown
    region: str = ""
    campaign: str = ""


@dataclass(frozen=True)
class Segment:
    """An unknown announcement heard on one call: its audio (8 kHz int16) and the call's facts."""

    facts: CallFacts
    samples: Int16Array = field(repr=False)
    start_ms: int  # on the audio stream's clock
    speech_ms: int
    pass_offset_ms: int = 0  # into the segment: one pass, from its first word if known, starts here …
    pass_speech_ms: int = 0
    snr_db: float = 0.0  # its voice over its background: the cleaner copy makes the better fingerprint
    lost_frames: int = 0  # frames of its pass that never arrived (silence in the clip, wrong bits around it)
    pass_end_offset_ms: int = 0  # … and ends here (0: at the end of the segment)

    @property
    def duration_ms(self) -> int:
        return len(self.samples) * 1000 // SAMPLE_RATE_HZ

    @property
    def id(self) -> str:
        return self.facts.attempt_id


def worth_learning(decision: Mapping[str, Any] | None) -> bool:
    """Whether a finished call's recording may hold an unknown announcement (a live call's
    decision summary, as ``call.json`` keeps it): what the learning recorder keeps. The collector
    judges again on the replay (:func:`why_not_kept`); this only spares the disk and personal data."""
    if not decision:
        return False
    try:
        cls = CallClass(str(decision.get("call_class")))
    except ValueError:
        return False
    facts = CallFacts(
        attempt_id="",
        heard_at=datetime.min,
        call_class=cls,
        answered=bool(decision.get("answered")),
        handed_over=decision.get("action") == "hand_to_operator",
        by_fingerprint=str(decision["by_fingerprint"]) if decision.get("by_fingerprint") else None,
    )
    return why_not_kept(facts) is None and cls not in _NOT_HEARD


def why_not_kept(facts: CallFacts) -> str | None:
    """None when the call may hold an unknown carrier announcement, else why it is not kept."""
    if facts.by_fingerprint:
        return f"decided by the known recording {facts.by_fingerprint}"
    if facts.handed_over or facts.call_class in _NEVER_KEPT:
        return "a person may be on it"
    if facts.answered and facts.call_class not in _MACHINE_CLASSES:
        return f"answered and decided {facts.call_class.value}, not an announcement"
    return None


def stream_samples(frames: Iterable[tuple[int, bytes]], sample_rate: int = SAMPLE_RATE_HZ) -> Int16Array:
    """Frames (slot index, slin payload) → one array on the stream's clock; lost slots are silence."""
    per = samples_per_frame(sample_rate)
    parts: dict[int, Int16Array] = {}
    end = 0
    for index, pcm in frames:
        x = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype="<i2").astype(np.int16)
        parts[index] = x
        end = max(end, index * per + len(x))
    out = np.zeros(end, dtype=np.int16)
    for index, x in parts.items():
        out[index * per : index * per + len(x)] = x
    return out


def find_segment(
    samples: Int16Array, plan: TonePlan, params: SegmentParams | None = None, sample_rate: int = SAMPLE_RATE_HZ
) -> Found | None:
    """Where the announcement is in a call's audio, or None (too little voice)."""
    p = params or SegmentParams()
    analyzer = CallAudioAnalyzer(plan, sample_rate)
    per = samples_per_frame(sample_rate)
    v = _Voice()
    n_slots = -(-len(samples) // per)
    for i in range(n_slots):
        chunk = samples[i * per : (i + 1) * per]
        if len(chunk) < per:
            chunk = np.concatenate([chunk, np.zeros(per - len(chunk), dtype=np.int16)])
        for o in analyzer.feed(chunk.astype("<i2").tobytes(), i):
            v.observe(o)
        if v.first is not None and i * FRAME_MS - v.first >= p.max_segment_ms:
            break
    end_ms = n_slots * FRAME_MS
    v.heard_until(end_ms, p.max_segment_ms)
    if v.first is None or v.last_end is None or v.speech_ms < p.min_speech_ms:
        return None
    start = max(v.after_sit_ms, v.first - p.pad_ms, 0)
    stop = min(v.last_end + p.pad_ms, end_ms, start + p.max_segment_ms)
    spans = [(a, min(b, stop)) for a, b in v.spans if a < stop]
    pass_start, pass_end, pass_speech = _one_pass(spans, start, stop, v.speech_ms, p)
    return Found(start, stop, v.speech_ms, pass_start, pass_end, pass_speech)


@dataclass
class _Voice:
    """The voice heard after the last tones (what came before the tones, SIT or ringback, is not
    the announcement that follows)."""

    after_sit_ms: int = 0
    first: int | None = None
    last_end: int | None = None
    speech_ms: int = 0
    spans: list[tuple[int, int]] = field(default_factory=list)  # voice (start, end)
    open_at: int | None = None

    def observe(self, o: Observation) -> None:
        if isinstance(o, SitDetected | ToneDetected):
            self.after_sit_ms = o.at_ms
            self.first, self.last_end, self.speech_ms, self.open_at, self.spans = None, None, 0, None, []
        elif isinstance(o, SpeechStarted) and o.at_ms >= self.after_sit_ms:
            self.open_at = o.at_ms
            self.first = o.at_ms if self.first is None else self.first
        elif isinstance(o, SpeechEnded) and self.open_at is not None:
            self.speech_ms += o.duration_ms
            self.spans.append((self.open_at, o.at_ms))
            self.last_end = o.at_ms
            self.open_at = None

    def heard_until(self, end_ms: int, max_segment_ms: int) -> None:
        """The audio ends at ``end_ms``: voice still going ran to the end of what was heard."""
        if self.open_at is None:
            return
        until = min(end_ms, self.first + max_segment_ms if self.first is not None else end_ms)
        self.speech_ms += max(0, until - self.open_at)
        self.spans.append((self.open_at, until))
        self.last_end = end_ms


def _one_pass(
    spans: list[tuple[int, int]], start: int, stop: int, speech_ms: int, p: SegmentParams
) -> tuple[int, int, int]:
    """(start, end, voice ms) of one loop of the announcement: a later pass (it starts at its
    first word) when one is whole, else the first; never two passes (the matcher would need the
    voice of both to decide)."""
    passes: list[list[tuple[int, int]]] = [[spans[0]]] if spans else []
    for prev, cur in itertools.pairwise(spans):
        if cur[0] - prev[1] >= p.loop_pause_ms:
            passes.append([cur])
        else:
            passes[-1].append(cur)
    if not passes:
        return start, stop, speech_ms
    voice = [sum(b - a for a, b in ps) for ps in passes]
    chosen = 0
    for k in range(1, len(passes)):
        if voice[k] >= max(p.min_pass_ms, p.whole_pass_share * max(voice)):
            chosen = k
            break
    ps = passes[chosen]
    pass_start = max(start, ps[0][0] - p.pad_ms) if chosen else start
    return pass_start, min(stop, ps[-1][1] + p.pad_ms), voice[chosen]


def cut_segment(
    facts: CallFacts,
    frames: Sequence[tuple[int, bytes]],
    plan: TonePlan,
    params: SegmentParams | None = None,
    sample_rate: int = SAMPLE_RATE_HZ,
) -> tuple[Segment | None, str]:
    """The call's unknown announcement, or None with the reason there is none."""
    why = why_not_kept(facts)
    if why is not None:
        return None, why
    samples = stream_samples(frames, sample_rate)
    found = find_segment(samples, plan, params, sample_rate)
    if found is None:
        return None, "too little voice"
    a, b = found.start_ms * sample_rate // 1000, found.end_ms * sample_rate // 1000
    offset = found.pass_start_ms - found.start_ms
    end = found.pass_end_ms - found.start_ms
    x = samples[a:b].copy()
    lost = lost_frames(x[offset * sample_rate // 1000 : end * sample_rate // 1000], sample_rate)
    snr = snr_db(x, sample_rate)
    seg = Segment(facts, x, found.start_ms, found.speech_ms, offset, found.pass_speech_ms, snr, lost, end)
    return seg, "kept"


def lost_frames(x: Int16Array, sample_rate: int = SAMPLE_RATE_HZ) -> int:
    """20 ms frames of digital silence: a G.711 line never carries exact zeros, a lost frame does."""
    per = samples_per_frame(sample_rate)
    n = len(x) // per
    return int(np.sum(~np.any(x[: n * per].reshape(n, per) != 0, axis=1))) if n else 0


def snr_db(x: Int16Array, sample_rate: int = SAMPLE_RATE_HZ) -> float:
    """Loud frames over quiet ones (90th over 10th percentile of 20 ms RMS; lost frames left out)."""
    per = samples_per_frame(sample_rate)
    n = len(x) // per
    if n < 10:
        return 0.0
    rms = np.sqrt(np.mean(x[: n * per].astype(np.float64).reshape(n, per) ** 2, axis=1))
    heard = rms[rms > 0]
    if len(heard) < 10:
        return 0.0
    loud, quiet = np.percentile(heard, 90), max(float(np.percentile(heard, 10)), 1.0)
    return round(float(20 * np.log10(loud / quiet)), 1)
