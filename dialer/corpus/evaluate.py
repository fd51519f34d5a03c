"""Evaluate the call-progress analysis over a labelled corpus (``dialer eval CORPUS_DIR``).

Every call is replayed through the worker's own decision path — a
:class:`~dialer.session.CallSession` driven by :func:`dialer.session.replay.drive` with the call's
network script, its audio arriving frame by frame, the session's deadlines and (with a model) the
recognizer decoding in line; the report gives
per-class precision/recall, the confusion matrix (rows expected, columns decided), decision
latency percentiles from the start of the audio and from the end of the discriminating word, and
the checks of ``config/eval_thresholds.yaml``.

Without a speech model, announcement and IVR calls cannot be told apart by class: precision and
recall are computed over the calls decidable without ASR, and the announcement calls are checked
by the *retry-path* rule instead (cause-based retry classes, never «Некорректный контакт»).

The metric functions are pure; only :func:`evaluate_corpus` reads files.
"""

from __future__ import annotations

import dataclasses
import json
import math
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dialer.asr.port import RecognizerEngine
from dialer.audio import (
    BeepDetected,
    Observation,
    SitDetected,
    SpeechPattern,
    SpeechVerdict,
    ToneDetected,
    ToneKind,
)
from dialer.corpus.generate import read_wav
from dialer.corpus.labels import CallLabel, read_labels
from dialer.domain.fusion import ANNOUNCEMENT_CLASSES, NETWORK_CLASSES, NOT_WORKING_CLASSES, Action
from dialer.domain.model import CallClass
from dialer.errors import ConfigError, InputError
from dialer.session.recording import call_dirs, read_recording
from dialer.session.replay import Replayed, corpus_timeline, drive, replay_recording
from dialer.session.session import SessionSetup
from dialer.yamlload import YNode, load_yaml_file

UNDECIDED = "(none)"  # column of calls still undecided when their audio ran out

#: Classes only a speech model can name; without one they are judged by the retry-path rule.
ASR_ONLY_CLASSES = frozenset(ANNOUNCEMENT_CLASSES | {CallClass.IVR})
#: Where an unrecognised announcement must land: retry classes chosen from cause/tones.
RETRY_PATH_CLASSES = NETWORK_CLASSES
TEMPORARY_ANNOUNCEMENTS = frozenset(ANNOUNCEMENT_CLASSES - NOT_WORKING_CLASSES)


# --- per call ----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CallOutcome:
    id: str
    expected: CallClass
    decided: CallClass | None  # None: undecided
    action: Action | None
    decided_at_ms: int | None
    disc_end_ms: int | None  # None: not known (a recorded call)
    answered: bool  # the network answered the call
    signal_at_ms: int | None = None  # first audio observation that names the expected class
    reason: str = ""
    text: str = ""
    dead_air_ms: int | None = None  # handed over: silence on the far end's side after its greeting
    voice: str = ""  # the corpus voice that spoke ("espeak" is robotic: safety only); "" recorded/none

    @property
    def latency_from_start_ms(self) -> int | None:
        return self.decided_at_ms

    @property
    def latency_from_disc_ms(self) -> int | None:
        if self.decided_at_ms is None or self.disc_end_ms is None:
            return None
        return self.decided_at_ms - self.disc_end_ms

    @property
    def signal_latency_ms(self) -> int | None:
        if self.signal_at_ms is None or self.disc_end_ms is None:
            return None
        return self.signal_at_ms - self.disc_end_ms

    @property
    def decided_key(self) -> str:
        return self.decided.value if self.decided is not None else UNDECIDED


def signal_at_ms(expected: CallClass, observations: Iterable[Observation]) -> int | None:
    """When the audio analysis first reported what names ``expected`` (tones, SIT, speech pattern)."""
    for o in observations:
        if expected is CallClass.BUSY and isinstance(o, ToneDetected) and o.kind is ToneKind.BUSY:
            return o.at_ms
        if expected is CallClass.CONGESTION and isinstance(o, ToneDetected) and o.kind is ToneKind.CONGESTION:
            return o.at_ms
        if expected is CallClass.SIT_UNRECOGNISED and isinstance(o, SitDetected):
            return o.at_ms
        if expected is CallClass.VOICEMAIL and (
            isinstance(o, BeepDetected) or (isinstance(o, SpeechPattern) and o.verdict is SpeechVerdict.VOICEMAIL)
        ):
            return o.at_ms
        if isinstance(o, SpeechPattern) and (
            (expected is CallClass.PERSON and o.verdict is SpeechVerdict.PERSON)
            or (expected is CallClass.ANSWERED_SILENCE and o.verdict is SpeechVerdict.SILENCE)
        ):
            return o.at_ms
    return None


# --- metrics (pure) ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ClassScore:
    support: int  # calls expected in the class
    predicted: int  # calls decided as the class
    correct: int

    @property
    def precision(self) -> float | None:
        return self.correct / self.predicted if self.predicted else None

    @property
    def recall(self) -> float | None:
        return self.correct / self.support if self.support else None


Confusion = Mapping[tuple[str, str], int]  # (expected, decided) → calls


def confusion(outcomes: Iterable[CallOutcome]) -> Counter[tuple[str, str]]:
    return Counter((o.expected.value, o.decided_key) for o in outcomes)


def class_scores(conf: Confusion) -> dict[str, ClassScore]:
    """Precision/recall inputs per class from a confusion matrix (rows expected, cols decided)."""
    classes = {e for e, _ in conf} | {d for _, d in conf if d != UNDECIDED}
    out = {}
    for c in sorted(classes):
        support = sum(n for (e, _), n in conf.items() if e == c)
        predicted = sum(n for (_, d), n in conf.items() if d == c)
        out[c] = ClassScore(support, predicted, conf.get((c, c), 0))
    return out


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile (no interpolation): the smallest value ≥ ``pct`` % of the values."""
    if not values:
        return None
    if not 0 < pct <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {pct}")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


@dataclass(frozen=True, slots=True)
class Latency:
    n: int
    p50_start_ms: float | None
    p95_start_ms: float | None
    p50_disc_ms: float | None
    p95_disc_ms: float | None
    p50_signal_ms: float | None = None  # from disc end to the first naming observation
    p95_signal_ms: float | None = None


def latencies(outcomes: Iterable[CallOutcome]) -> dict[str, Latency]:
    """Per expected class, over its decided calls."""
    by: dict[str, list[CallOutcome]] = defaultdict(list)
    for o in outcomes:
        by[o.expected.value].append(o)
    out = {}
    for cls, group in sorted(by.items()):
        start = [float(o.latency_from_start_ms) for o in group if o.latency_from_start_ms is not None]
        disc = [float(o.latency_from_disc_ms) for o in group if o.latency_from_disc_ms is not None]
        sig = [float(o.signal_latency_ms) for o in group if o.signal_latency_ms is not None]
        out[cls] = Latency(
            n=len(start),
            p50_start_ms=percentile(start, 50),
            p95_start_ms=percentile(start, 95),
            p50_disc_ms=percentile(disc, 50),
            p95_disc_ms=percentile(disc, 95),
            p50_signal_ms=percentile(sig, 50),
            p95_signal_ms=percentile(sig, 95),
        )
    return out


@dataclass(frozen=True, slots=True)
class SafetyCounts:
    person_calls: int
    person_hung_up: int  # expected person, we hung up: must be 0
    person_handed_over: int  # expected person, handed to an operator (as a person or unsure)
    announcement_calls: int  # unanswered announcement calls
    announcement_not_working: int  # …decided as a «Некорректный контакт» class
    announcement_retry_path: int  # …decided as a cause/tone retry class
    temporary_as_not_working: int  # a temporary announcement decided as not working


def safety_counts(outcomes: Iterable[CallOutcome]) -> SafetyCounts:
    person = hung = handed = ann = ann_nw = ann_retry = temp_nw = 0
    for o in outcomes:
        if o.expected is CallClass.PERSON:
            person += 1
            hung += o.action is Action.HANGUP
            handed += o.action is Action.HAND_TO_OPERATOR
        if o.expected in ANNOUNCEMENT_CLASSES and not o.answered:
            ann += 1
            ann_nw += o.decided in NOT_WORKING_CLASSES
            ann_retry += o.decided in RETRY_PATH_CLASSES
        if o.expected in TEMPORARY_ANNOUNCEMENTS and o.decided in NOT_WORKING_CLASSES:
            temp_nw += 1
    return SafetyCounts(person, hung, handed, ann, ann_nw, ann_retry, temp_nw)


#: The robotic voice no carrier sounds like: its calls count for safety, not for recall (issue 8).
ROBOTIC_VOICES = frozenset({"espeak"})


@dataclass(frozen=True, slots=True)
class AnnouncementScore:
    """Announcements read by speech, over natural voices (every voice but the robotic ones):
    recall over their announcement calls, precision over every natural-voice call decided as an
    announcement class, latency from the end of the discriminating word of those read right."""

    calls: int
    decided: int  # natural-voice calls of any kind decided as an announcement class
    correct: int
    p95_from_disc_ms: float | None
    robotic_calls: int  # robotic-voice calls of any kind …
    robotic_not_working: int  # … decided as a «Некорректный контакт» class: must be 0
    ivr_calls: int = 0  # natural-voice IVR calls …
    ivr_correct: int = 0  # … decided as an IVR (robotic IVRs are for safety only, as above)

    @property
    def precision(self) -> float | None:
        return self.correct / self.decided if self.decided else None

    @property
    def recall(self) -> float | None:
        return self.correct / self.calls if self.calls else None

    @property
    def ivr_recall(self) -> float | None:
        return self.ivr_correct / self.ivr_calls if self.ivr_calls else None


def announcement_score(outcomes: Iterable[CallOutcome]) -> AnnouncementScore:
    calls = decided = correct = robotic = robotic_nw = ivr = ivr_ok = 0
    lat: list[float] = []
    for o in outcomes:
        if o.voice in ROBOTIC_VOICES:
            robotic += 1
            robotic_nw += o.decided in NOT_WORKING_CLASSES
            continue
        calls += o.expected in ANNOUNCEMENT_CLASSES
        ivr += o.expected is CallClass.IVR
        ivr_ok += o.expected is CallClass.IVR and o.decided is CallClass.IVR
        decided += o.decided in ANNOUNCEMENT_CLASSES
        if o.expected in ANNOUNCEMENT_CLASSES and o.decided is o.expected:
            correct += 1
            if o.latency_from_disc_ms is not None:
                lat.append(float(o.latency_from_disc_ms))
    return AnnouncementScore(calls, decided, correct, percentile(lat, 95), robotic, robotic_nw, ivr, ivr_ok)


@dataclass(frozen=True, slots=True)
class DeadAir:
    """Silence on a person's side between the end of their greeting and the hand-over."""

    n: int  # person calls handed over after a greeting was heard
    p50_ms: float | None
    p95_ms: float | None
    max_ms: float | None


def dead_air(outcomes: Iterable[CallOutcome]) -> DeadAir:
    values = [
        float(o.dead_air_ms)
        for o in outcomes
        if o.expected is CallClass.PERSON and o.action is Action.HAND_TO_OPERATOR and o.dead_air_ms is not None
    ]
    return DeadAir(len(values), percentile(values, 50), percentile(values, 95), max(values) if values else None)


@dataclass(frozen=True, slots=True)
class Report:
    outcomes: tuple[CallOutcome, ...]
    model: bool  # a speech model decoded the calls
    scored: Counter[tuple[str, str]]  # confusion over the calls precision/recall are computed on
    full: Counter[tuple[str, str]]
    scores: dict[str, ClassScore]  # over the calls decidable without words
    full_scores: dict[str, ClassScore]  # over every call
    latency: dict[str, Latency]
    safety: SafetyCounts
    dead_air: DeadAir
    announcements: AnnouncementScore
    runtime_s: float = 0.0
    audio_s: float = 0.0


def build_report(outcomes: Sequence[CallOutcome], model: bool, runtime_s: float = 0.0) -> Report:
    # The classes every call can be told by (tones, SIT, beeps, silence, speech pattern) are judged
    # on the calls decidable without words, with a model too: an announcement the model could not
    # read lands on its cause/tone retry class by design, not by a wrong tone detection. The
    # classes that need words are judged on every call (``full_scores``).
    scored_calls = [o for o in outcomes if o.expected not in ASR_ONLY_CLASSES]
    scored = confusion(scored_calls)
    full = confusion(outcomes)
    return Report(
        outcomes=tuple(outcomes),
        model=model,
        scored=scored,
        full=full,
        scores=class_scores(scored),
        full_scores=class_scores(full),
        latency=latencies(outcomes),
        dead_air=dead_air(outcomes),
        announcements=announcement_score(outcomes),
        safety=safety_counts(outcomes),
        runtime_s=runtime_s,
    )


# --- thresholds --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ClassLimit:
    precision: float | None = None
    recall: float | None = None


@dataclass(frozen=True, slots=True)
class LatencyLimit:
    p95_from_disc_ms: float | None = None
    p95_signal_ms: float | None = None


@dataclass(frozen=True, slots=True)
class NaturalLimits:
    announcements: ClassLimit
    p95_from_disc_ms: float | None = None
    robotic_not_working_max: int | None = None
    ivr_recall: float | None = None


@dataclass(frozen=True, slots=True)
class Thresholds:
    classes: dict[str, ClassLimit] = field(default_factory=dict)
    model_classes: dict[str, ClassLimit] = field(default_factory=dict)  # only with a speech model
    model_announcements: ClassLimit | None = None  # every announcement class not listed
    natural: NaturalLimits | None = None  # with a model: announcements of natural voices, pooled
    person_hung_up_max: int = 0
    person_handed_over_min_rate: float | None = None
    temporary_as_not_working_max: int = 0
    no_model_announcement_not_working_max: int = 0
    no_model_announcement_retry_path_min_rate: float | None = None
    latency: dict[str, LatencyLimit] = field(default_factory=dict)
    dead_air_p95_ms: float | None = None
    dead_air_max_ms: float | None = None
    source: str = "<defaults>"


def _class_key(node: YNode, key: str) -> str:
    try:
        return CallClass(key).value
    except ValueError:
        raise ConfigError(f"unknown call class {key!r}", source=node.source, line=node.key_line(key)) from None


def _rate(node: YNode, what: str) -> float:
    v = node.value
    if isinstance(v, bool) or not isinstance(v, int | float) or not 0.0 <= float(v) <= 1.0:
        raise node.error(f"{what} must be a number between 0 and 1, got {v!r}")
    return float(v)


def _count(node: YNode, what: str) -> int:
    v = node.value
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise node.error(f"{what} must be a whole number ≥ 0, got {v!r}")
    return v


def _mapping(node: YNode, what: str) -> dict[str, YNode]:
    if not isinstance(node.value, dict):
        raise node.error(f"{what} must be a mapping")
    return dict(node.value)


def _limit(node: YNode, what: str) -> ClassLimit:
    m = _mapping(node, what)
    unknown = set(m) - {"precision", "recall"}
    if unknown:
        raise node.error(f"{what}: unknown key(s) {', '.join(sorted(unknown))} (precision, recall)")
    return ClassLimit(
        precision=_rate(m["precision"], f"{what}.precision") if "precision" in m else None,
        recall=_rate(m["recall"], f"{what}.recall") if "recall" in m else None,
    )


def _ms(node: YNode, what: str) -> float:
    v = node.value
    if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
        raise node.error(f"{what} must be milliseconds ≥ 0, got {v!r}")
    return float(v)


_TOP_KEYS = frozenset({"version", "classes", "with_model", "safety", "without_model", "latency_ms", "dead_air_ms"})


def load_thresholds(path: Path) -> Thresholds:
    """Read a thresholds file; every mistake is a ConfigError naming file and line."""
    if not path.exists():
        raise ConfigError("thresholds file not found", source=str(path))
    root = load_yaml_file(path)
    top = _mapping(root, "thresholds")
    for key in top:
        if key not in _TOP_KEYS:
            raise ConfigError(
                f"unknown key {key!r} (one of {', '.join(sorted(_TOP_KEYS))})",
                source=str(path),
                line=root.key_line(key),
            )
    classes = _class_limits(top["classes"], "classes") if "classes" in top else {}
    model_classes: dict[str, ClassLimit] = {}
    model_ann: ClassLimit | None = None
    natural: NaturalLimits | None = None
    if "with_model" in top:
        wm = _mapping(top["with_model"], "with_model")
        if "classes" in wm:
            model_classes = _class_limits(wm["classes"], "with_model.classes")
        if "announcements" in wm:
            model_ann = _limit(wm["announcements"], "with_model.announcements")
        natural = _natural_limits(wm)
    safety = _mapping(top["safety"], "safety") if "safety" in top else {}
    without = _mapping(top["without_model"], "without_model") if "without_model" in top else {}
    latency = _latency_limits(top["latency_ms"]) if "latency_ms" in top else {}
    return Thresholds(
        classes=classes,
        model_classes=model_classes,
        model_announcements=model_ann,
        natural=natural,
        **_safety_limits(safety, without),
        latency=latency,
        **_dead_air_limits(top),
        source=str(path),
    )


def _class_limits(cnode: YNode, what: str) -> dict[str, ClassLimit]:
    """``<class>: {precision, recall}`` for each class of a mapping."""
    return {_class_key(cnode, key): _limit(node, f"{what}.{key}") for key, node in _mapping(cnode, what).items()}


def _latency_limits(lnode: YNode) -> dict[str, LatencyLimit]:
    """``latency_ms: {<class>: {p95_from_disc, p95_signal}}``."""
    latency: dict[str, LatencyLimit] = {}
    for key, node in _mapping(lnode, "latency_ms").items():
        m = _mapping(node, f"latency_ms.{key}")
        unknown = set(m) - {"p95_from_disc", "p95_signal"}
        if unknown:
            raise node.error(f"latency_ms.{key}: unknown key(s) {', '.join(sorted(unknown))}")
        latency[_class_key(lnode, key)] = LatencyLimit(
            p95_from_disc_ms=_ms(m["p95_from_disc"], "p95_from_disc") if "p95_from_disc" in m else None,
            p95_signal_ms=_ms(m["p95_signal"], "p95_signal") if "p95_signal" in m else None,
        )
    return latency


def _safety_limits(safety: dict[str, YNode], without: dict[str, YNode]) -> dict[str, Any]:
    """The ``safety:`` and ``without_model:`` limits, as Thresholds' fields (absent: the defaults)."""
    out: dict[str, Any] = {}
    if "person_hung_up_max" in safety:
        out["person_hung_up_max"] = _count(safety["person_hung_up_max"], "person_hung_up_max")
    if "temporary_as_not_working_max" in safety:
        out["temporary_as_not_working_max"] = _count(
            safety["temporary_as_not_working_max"], "temporary_as_not_working_max"
        )
    if "person_handed_over_min_rate" in safety:
        out["person_handed_over_min_rate"] = _rate(safety["person_handed_over_min_rate"], "person_handed_over_min_rate")
    if "announcement_not_working_max" in without:
        out["no_model_announcement_not_working_max"] = _count(
            without["announcement_not_working_max"], "announcement_not_working_max"
        )
    if "announcement_retry_path_min_rate" in without:
        out["no_model_announcement_retry_path_min_rate"] = _rate(
            without["announcement_retry_path_min_rate"], "announcement_retry_path_min_rate"
        )
    return out


def _natural_limits(wm: dict[str, YNode]) -> NaturalLimits | None:
    """``with_model.natural_voices: {precision, recall, p95_from_disc, robotic_not_working_max,
    ivr_recall}``."""
    if "natural_voices" not in wm:
        return None
    m = _mapping(wm["natural_voices"], "with_model.natural_voices")
    keys = {"precision", "recall", "p95_from_disc", "robotic_not_working_max", "ivr_recall"}
    unknown = set(m) - keys
    if unknown:
        raise wm["natural_voices"].error(
            f"with_model.natural_voices: unknown key(s) {', '.join(sorted(unknown))} ({', '.join(sorted(keys))})"
        )
    return NaturalLimits(
        announcements=ClassLimit(
            precision=_rate(m["precision"], "precision") if "precision" in m else None,
            recall=_rate(m["recall"], "recall") if "recall" in m else None,
        ),
        p95_from_disc_ms=_ms(m["p95_from_disc"], "p95_from_disc") if "p95_from_disc" in m else None,
        robotic_not_working_max=_count(m["robotic_not_working_max"], "robotic_not_working_max")
        if "robotic_not_working_max" in m
        else None,
        ivr_recall=_rate(m["ivr_recall"], "ivr_recall") if "ivr_recall" in m else None,
    )


def _dead_air_limits(top: dict[str, YNode]) -> dict[str, Any]:
    if "dead_air_ms" not in top:
        return {}
    m = _mapping(top["dead_air_ms"], "dead_air_ms")
    unknown = set(m) - {"p95", "max"}
    if unknown:
        raise top["dead_air_ms"].error(f"dead_air_ms: unknown key(s) {', '.join(sorted(unknown))} (p95, max)")
    return {
        "dead_air_p95_ms": _ms(m["p95"], "dead_air_ms.p95") if "p95" in m else None,
        "dead_air_max_ms": _ms(m["max"], "dead_air_ms.max") if "max" in m else None,
    }


def check(report: Report, th: Thresholds) -> list[str]:
    """Every threshold the report fails, one line each (empty: all met)."""
    failures = _check_classes(report, th)
    if report.model:
        failures.extend(_check_natural(report.announcements, th))
    failures.extend(_check_safety(report, th))
    failures.extend(_check_dead_air(report.dead_air, th))
    failures.extend(_check_latency(report.latency, th))
    return failures


def _check_classes(report: Report, th: Thresholds) -> list[str]:
    failures: list[str] = []

    def limit(cls: str, lim: ClassLimit, scope: str) -> None:
        words = scope or CallClass(cls) in ASR_ONLY_CLASSES
        score = (report.full_scores if words else report.scores).get(cls)
        if score is None or score.support == 0:
            failures.append(f"{scope}{cls}: no calls of this class in the corpus")
            return
        for name, want, got in (("precision", lim.precision, score.precision), ("recall", lim.recall, score.recall)):
            if want is None:
                continue
            if got is None or got < want:
                shown = "n/a (never decided)" if got is None else f"{got:.3f}"
                failures.append(f"{scope}{cls}: {name} {shown} < {want:.3f}")

    for cls, lim in th.classes.items():
        if not report.model and CallClass(cls) in ASR_ONLY_CLASSES:
            continue  # needs the words: judged by the retry-path rule instead
        limit(cls, lim, "")
    if report.model:
        for cls, lim in th.model_classes.items():
            limit(cls, lim, "with model: ")
        if th.model_announcements is not None:
            for c in sorted(ANNOUNCEMENT_CLASSES - {CallClass(k) for k in th.model_classes}, key=str):
                if report.full_scores.get(c.value) is not None:
                    limit(c.value, th.model_announcements, "with model: ")
    return failures


def _check_safety(report: Report, th: Thresholds) -> list[str]:
    failures: list[str] = []
    s = report.safety
    if s.person_hung_up > th.person_hung_up_max:
        failures.append(
            f"safety: hung up on {s.person_hung_up} of {s.person_calls} person calls (max {th.person_hung_up_max})"
        )
    want_handed = th.person_handed_over_min_rate
    if want_handed is not None and s.person_calls and s.person_handed_over / s.person_calls < want_handed:
        failures.append(
            f"safety: {s.person_handed_over} of {s.person_calls} person calls handed to an operator "
            f"(< {want_handed:.2f})"
        )
    if s.temporary_as_not_working > th.temporary_as_not_working_max:
        failures.append(
            f"safety: {s.temporary_as_not_working} temporary announcements decided as not working "
            f"(max {th.temporary_as_not_working_max})"
        )
    if report.model:
        return failures
    if s.announcement_not_working > th.no_model_announcement_not_working_max:
        failures.append(
            f"without model: {s.announcement_not_working} announcement calls decided as a "
            f"«Некорректный контакт» class (max {th.no_model_announcement_not_working_max})"
        )
    want = th.no_model_announcement_retry_path_min_rate
    if want is not None and s.announcement_calls:
        rate = s.announcement_retry_path / s.announcement_calls
        if rate < want:
            failures.append(f"without model: {rate:.3f} of announcement calls on the retry path < {want:.3f}")
    return failures


def _check_dead_air(da: DeadAir, th: Thresholds) -> list[str]:
    failures: list[str] = []
    for name, limit_ms, got in (("p95", th.dead_air_p95_ms, da.p95_ms), ("max", th.dead_air_max_ms, da.max_ms)):
        if limit_ms is None:
            continue
        if got is None:
            failures.append("dead air: no person call handed over after a greeting")
        elif got > limit_ms:
            failures.append(f"dead air {name} {got:.0f} ms > {limit_ms:.0f} ms (after {da.n} greetings)")
    return failures


def _check_latency(latency: Mapping[str, Latency], th: Thresholds) -> list[str]:
    failures: list[str] = []
    for cls, ll in th.latency.items():
        lat = latency.get(cls)
        if lat is None:
            failures.append(f"latency {cls}: no calls of this class in the corpus")
            continue
        if ll.p95_from_disc_ms is not None and (lat.p95_disc_ms is None or lat.p95_disc_ms > ll.p95_from_disc_ms):
            failures.append(
                f"latency {cls}: p95 from the discriminating point {_fmt_ms(lat.p95_disc_ms)} > "
                f"{ll.p95_from_disc_ms:.0f} ms"
            )
        if ll.p95_signal_ms is not None and (lat.p95_signal_ms is None or lat.p95_signal_ms > ll.p95_signal_ms):
            failures.append(
                f"latency {cls}: p95 audio-signal latency {_fmt_ms(lat.p95_signal_ms)} > {ll.p95_signal_ms:.0f} ms"
            )
    return failures


def _check_natural(a: AnnouncementScore, th: Thresholds) -> list[str]:
    out: list[str] = []
    if th.natural is None:
        return out
    lim = th.natural.announcements
    if lim is not None:
        if not a.calls:
            out.append("with model: no announcement call of a natural voice in the corpus")
        for name, want, got in (("precision", lim.precision, a.precision), ("recall", lim.recall, a.recall)):
            if want is not None and a.calls and (got is None or got < want):
                out.append(f"with model: natural-voice announcements {name} {_fmt_rate(got)} < {want:.3f}")
    want_ms = th.natural.p95_from_disc_ms
    if want_ms is not None and (a.p95_from_disc_ms is None or a.p95_from_disc_ms > want_ms):
        out.append(
            f"with model: natural-voice announcements decided p95 {_fmt_ms(a.p95_from_disc_ms)} ms after the "
            f"discriminating word > {want_ms:.0f} ms"
        )
    want_ivr = th.natural.ivr_recall
    if want_ivr is not None and (a.ivr_recall is None or a.ivr_recall < want_ivr):
        out.append(f"with model: natural-voice IVR recall {_fmt_rate(a.ivr_recall)} < {want_ivr:.3f}")
    most = th.natural.robotic_not_working_max
    if most is not None and a.robotic_not_working > most:
        out.append(
            f"with model: {a.robotic_not_working} robotic-voice calls decided as a «Некорректный контакт» class "
            f"(max {most})"
        )
    return out


# --- running -----------------------------------------------------------------------------------------
def evaluate_corpus(
    corpus_dir: Path,
    setup: SessionSetup,
    *,
    engine: RecognizerEngine | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[CallOutcome]:
    """Replay every labelled call of ``corpus_dir`` through a call session. ``engine``: a loaded
    speech engine that decodes each call in line (None: no speech recognition)."""
    labels = list(read_labels(corpus_dir))
    out = []
    for i, label in enumerate(labels):
        out.append(evaluate_call(corpus_dir, label, setup, engine))
        if progress is not None:
            progress(i + 1, len(labels))
    return out


def evaluate_call(
    corpus_dir: Path, label: CallLabel, setup: SessionSetup, engine: RecognizerEngine | None = None
) -> CallOutcome:
    pcm = read_wav(corpus_dir / f"{label.id}.wav").astype("<i2").tobytes()
    session = setup.session(uuid.uuid5(uuid.NAMESPACE_URL, label.id), decoding=engine is not None)
    timeline = corpus_timeline(pcm, label.network, setup.sample_rate)
    res = drive(session, timeline, recognizer=engine.open() if engine is not None else None, network_confirms=True)
    return outcome_of(label.id, label.call_class, res, disc_end_ms=label.disc_end_ms,
                      answered=label.network.answered_ms is not None,
                      voice=str(label.params.get("voice") or ""))  # fmt: skip


def outcome_of(
    call_id: str, expected: CallClass, res: Replayed, *, disc_end_ms: int | None, answered: bool, voice: str = ""
) -> CallOutcome:
    """What the session decided about one call, as the report counts it."""
    session = res.session
    ev = session.evidence
    observations = [_on_call_clock(o, session.to_call_ms) for o in session.listening.observations]
    return CallOutcome(
        id=call_id,
        expected=expected,
        decided=ev.call_class if ev is not None else None,
        action=res.action,
        decided_at_ms=res.decided_at_ms,
        disc_end_ms=disc_end_ms,
        answered=answered,
        signal_at_ms=signal_at_ms(expected, observations),
        reason=ev.reason if ev is not None else "no decision",
        text=session.phrases.text,
        dead_air_ms=session.dead_air_ms,
        voice=voice,
    )


def evaluate_recordings(
    root: Path,
    setup: SessionSetup,
    *,
    labels: Mapping[str, CallClass] | None = None,
    engine: RecognizerEngine | None = None,
) -> tuple[list[CallOutcome], int]:
    """Replay every labelled recorded call under ``root``; (outcomes, calls left out unlabelled).

    A call's label comes from ``labels`` (attempt id → class) or its own ``label.json``
    (``dialer label``). The recorded network facts answer "was it answered"; recorded calls have
    no discriminating point, so latency is counted from the start of the call only."""
    out: list[CallOutcome] = []
    unlabelled = 0
    for d in call_dirs(root):
        rec = read_recording(d)
        expected = (labels or {}).get(str(rec.attempt_id))
        if expected is None and rec.label is not None:
            expected = CallClass(str(rec.label["call_class"]))
        if expected is None:
            unlabelled += 1
            continue
        res = replay_recording(rec, setup, engine=engine)
        out.append(outcome_of(str(rec.attempt_id), expected, res, disc_end_ms=None, answered=res.session.net.answered))
    return out, unlabelled


def read_recording_labels(path: Path) -> dict[str, CallClass]:
    """A labels file for recordings: one JSON object per line, ``{"attempt_id": …, "call_class": …}``."""
    out: dict[str, CallClass] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from None
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            out[str(uuid.UUID(str(obj["attempt_id"])))] = CallClass(obj["call_class"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{path}:{lineno}: {exc}") from None
    return out


def _on_call_clock(o: Observation, to_call_ms: Callable[[int], int]) -> Observation:
    return dataclasses.replace(o, at_ms=to_call_ms(o.at_ms))


# --- printing ----------------------------------------------------------------------------------------
def _fmt_ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f}"


def _fmt_rate(v: float | None) -> str:
    return "  -  " if v is None else f"{v:5.3f}"


def format_report(report: Report, failures: Sequence[str] | None = None) -> str:
    lines = [
        f"{len(report.outcomes)} calls, speech model: {'yes' if report.model else 'no'}"
        + (f", {report.runtime_s:.1f} s" if report.runtime_s else ""),
        "",
        *_format_scores(report),
        "",
        *format_confusion(report.full),
        "",
        *_format_latency(report.latency),
        "",
        *_format_dead_air_and_announcements(report),
        "",
        *_format_safety(report),
    ]
    if failures is not None:
        lines.append("")
        if failures:
            lines.append(f"FAILED {len(failures)} threshold(s):")
            lines.extend(f"  {f}" for f in failures)
        else:
            lines.append("All thresholds met.")
    return "\n".join(lines)


def _format_scores(report: Report) -> list[str]:
    scored_n = sum(report.scored.values())
    if report.model:
        lines = ["Precision / recall per class (all calls):"]
    else:
        lines = [
            f"Precision / recall per class ({scored_n} calls decidable without ASR; announcement and IVR "
            "calls are checked by the retry-path rule below):"
        ]
    lines.append(f"  {'class':30} {'support':>7} {'decided':>7} {'precision':>9} {'recall':>7}")
    for cls, sc in (report.full_scores if report.model else report.scores).items():
        lines.append(
            f"  {cls:30} {sc.support:7d} {sc.predicted:7d} {_fmt_rate(sc.precision):>9} {_fmt_rate(sc.recall):>7}"
        )
    if report.model:
        lines.append(
            f"  (thresholds under classes: are judged on the {scored_n} calls decidable without words; "
            "an unread announcement's retry class is by design)"
        )
    return lines


def _format_latency(latency: Mapping[str, Latency]) -> list[str]:
    lines = [
        "Decision latency per expected class, ms (nearest-rank percentiles over decided calls):",
        "  from start = from the start of the audio; from disc = from the end of the discriminating word",
        "  (tone onset for tones, the ring timeout for no answer, the answer for silence);",
        "  signal = audio analysis naming the class (tone, SIT, beep, speech pattern), from the same point",
        f"  {'class':30} {'n':>4} {'start p50':>9} {'p95':>6} {'disc p50':>9} {'p95':>6} {'signal p50':>10} {'p95':>6}",
    ]
    for cls, lat in latency.items():
        lines.append(
            f"  {cls:30} {lat.n:4d} {_fmt_ms(lat.p50_start_ms):>9} {_fmt_ms(lat.p95_start_ms):>6} "
            f"{_fmt_ms(lat.p50_disc_ms):>9} {_fmt_ms(lat.p95_disc_ms):>6} "
            f"{_fmt_ms(lat.p50_signal_ms):>10} {_fmt_ms(lat.p95_signal_ms):>6}"
        )
    return lines


def _format_dead_air_and_announcements(report: Report) -> list[str]:
    da = report.dead_air
    lines = [
        f"Dead air after a person's greeting until the hand-over ({da.n} calls): p50 {_fmt_ms(da.p50_ms)} ms, "
        f"p95 {_fmt_ms(da.p95_ms)} ms, max {_fmt_ms(da.max_ms)} ms"
    ]
    a = report.announcements
    if report.model:
        lines.append("")
        lines.append(
            f"Announcements of natural voices ({a.calls} calls): read right {a.correct}, precision "
            f"{_fmt_rate(a.precision)}, recall {_fmt_rate(a.recall)}, decided p95 {_fmt_ms(a.p95_from_disc_ms)} ms "
            f"after the discriminating word; robotic-voice calls {a.robotic_calls}, decided «Некорректный "
            f"контакт»: {a.robotic_not_working}"
        )
        lines.append(
            f"IVRs of natural voices ({a.ivr_calls} calls): decided as an IVR {a.ivr_correct}, recall "
            f"{_fmt_rate(a.ivr_recall)}"
        )
    return lines


def _format_safety(report: Report) -> list[str]:
    s = report.safety
    lines = [
        "Safety:",
        f"  person calls hung up on: {s.person_hung_up} of {s.person_calls}",
        f"  person calls handed to an operator: {s.person_handed_over} of {s.person_calls}",
        f"  temporary announcements decided as not working: {s.temporary_as_not_working}",
        f"  unanswered announcement calls: {s.announcement_calls}; on the cause/tone retry path: "
        f"{s.announcement_retry_path}; decided «Некорректный контакт» class: {s.announcement_not_working}",
    ]
    undecided = sum(1 for o in report.outcomes if o.decided is None)
    if undecided:
        lines.append(f"  undecided when the audio ended: {undecided}")
    return lines


def format_confusion(conf: Confusion) -> list[str]:
    rows = sorted({e for e, _ in conf})
    cols = sorted({d for _, d in conf if d != UNDECIDED})
    if any(d == UNDECIDED for _, d in conf):
        cols.append(UNDECIDED)
    width = max(3, *(len(str(n)) for n in conf.values())) if conf else 3
    out = ["Confusion matrix (rows: expected, columns: decided):"]
    out.append("  columns: " + "  ".join(f"{i + 1}={c}" for i, c in enumerate(cols)))
    out.append(f"  {'':30} " + " ".join(f"{i + 1:>{width}}" for i in range(len(cols))))
    for r in rows:
        cells = " ".join(f"{conf.get((r, c), 0) or '.':>{width}}" for c in cols)
        out.append(f"  {r:30} {cells}")
    return out


def format_calls(outcomes: Iterable[CallOutcome], only_wrong: bool = True) -> str:
    lines = []
    for o in outcomes:
        if only_wrong and o.decided is o.expected:
            continue
        lines.append(
            f"  {o.id:40} expected {o.expected.value:28} decided {o.decided_key:22} "
            f"at {_fmt_ms(o.decided_at_ms)} ms: {o.reason}" + (f" [text: {o.text}]" if o.text else "")
        )
    return "\n".join(lines)
