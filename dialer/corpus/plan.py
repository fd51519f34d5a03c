"""Planning a corpus: every random choice of every call, drawn from a per-call generator seeded by
``(seed, index)``, so a corpus is reproducible and one call does not shift the others."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from dialer.corpus.audio import Codec, CorpusError, NoiseKind
from dialer.corpus.recipe import Recipe, Speech
from dialer.corpus.texts import (
    ANNOUNCEMENTS,
    CALL_SCREENING,
    DISC_MARK,
    ENGLISH_TAILS,
    IVR_PROMPTS,
    PAUSE_MARK,
    PERSON_GREETINGS,
    PERSON_QUESTIONS,
    VOICEMAIL_GREETINGS,
    VOICEMAIL_SERVICES,
)
from dialer.corpus.tts import SPEAKERS, TtsEngine, Voice
from dialer.domain.fusion import NOT_WORKING_CLASSES
from dialer.domain.model import CallClass
from dialer.domain.q850 import Cause, DialStatus

# How the network ends a call that played an announcement: (cause, DialStatus) choices.
# DialEnd maps causes: 17 → BUSY, 34 → CONGESTION, 3/20 → CHANUNAVAIL, else NOANSWER.
_TEMPORARY_ENDINGS: tuple[tuple[int, str | None], ...] = (
    (Cause.SUBSCRIBER_ABSENT, DialStatus.CHANUNAVAIL),
    (Cause.NORMAL_CLEARING, DialStatus.NOANSWER),
    (Cause.NO_USER_RESPONSE, DialStatus.NOANSWER),
    (Cause.NORMAL_UNSPECIFIED, DialStatus.NOANSWER),
)
_NOT_WORKING_ENDINGS: tuple[tuple[int, str | None], ...] = (
    (Cause.UNALLOCATED, DialStatus.NOANSWER),
    (Cause.NORMAL_CLEARING, DialStatus.NOANSWER),
    (Cause.CALL_REJECTED, DialStatus.NOANSWER),
)
_ENDINGS: dict[CallClass, tuple[tuple[int, str | None], ...]] = {
    CallClass.ANN_SUBSCRIBER_BUSY: ((Cause.USER_BUSY, DialStatus.BUSY), (Cause.NORMAL_CLEARING, DialStatus.NOANSWER)),
    CallClass.ANN_NETWORK_CONGESTED: (
        (Cause.NORMAL_CIRCUIT_CONGESTION, DialStatus.CONGESTION),
        (Cause.SWITCH_CONGESTION, DialStatus.NOANSWER),
    ),
    CallClass.ANN_CONNECTION_IMPOSSIBLE: (
        (Cause.NORMAL_TEMPORARY_FAILURE, DialStatus.NOANSWER),
        (Cause.NORMAL_CLEARING, DialStatus.NOANSWER),
    ),
    CallClass.ANN_DOES_NOT_EXIST: (*_NOT_WORKING_ENDINGS, (Cause.INVALID_NUMBER_FORMAT, DialStatus.NOANSWER)),
    CallClass.ANN_NUMBER_CHANGED: (
        (Cause.NUMBER_CHANGED, DialStatus.NOANSWER),
        (Cause.UNALLOCATED, DialStatus.NOANSWER),
    ),
}

_NOT_WORKING = frozenset(c.value for c in NOT_WORKING_CLASSES)

# --- variation -----------------------------------------------------------------------------------
ESPEAK_SPEEDS_WPM = (130, 160, 190)
ESPEAK_PITCHES = (35, 50, 70)
FESTIVAL_STRETCH_PCT = (85, 100, 115, 125)  # Duration_Stretch × 100: 85 = faster
SPEECH_LEVELS_DBM0 = (-40, -35, -30, -25, -20, -15, -10, -5, 0)
TONE_LEVELS_DBM0 = (-30, -20, -10, -5, 0)
ANNOUNCEMENT_SNRS_DB: tuple[float | None, ...] = (None, 25.0, 20.0, 15.0, 10.0)
ANNOUNCEMENT_NOISES: tuple[NoiseKind, ...] = ("pink", "brown", "babble")
PERSON_NOISES: tuple[NoiseKind, ...] = ("pink", "brown", "babble", "street")
CODECS: tuple[Codec, ...] = ("slin", "ulaw", "alaw")
SILENCE_FLOOR_DBM0 = (-60.0, -50.0)  # noise on a silent answered line, when noise is added
INNER_PAUSE_MS = (100, 800)  # a person's pauses inside a greeting


def _pick(rng: np.random.Generator, options: Sequence[Any]) -> Any:
    return options[int(rng.integers(len(options)))]


def _int(rng: np.random.Generator, lo: int, hi: int) -> int:
    return int(rng.integers(lo, hi + 1))


def _voice(rng: np.random.Generator, engine: TtsEngine) -> Voice:
    if engine == "espeak":
        return Voice("espeak", int(_pick(rng, ESPEAK_SPEEDS_WPM)), int(_pick(rng, ESPEAK_PITCHES)))
    return Voice("festival", int(_pick(rng, FESTIVAL_STRETCH_PCT)), speaker=_pick(rng, SPEAKERS))


def _noise(rng: np.random.Generator, snrs: Sequence[float | None], kinds: Sequence[NoiseKind]) -> dict[str, Any]:
    return {"snr_db": _pick(rng, snrs), "noise": _pick(rng, kinds)}


def _common(rng: np.random.Generator) -> dict[str, Any]:
    return {
        "speech_level_dbm0": float(_pick(rng, SPEECH_LEVELS_DBM0)),
        "tone_level_dbm0": float(_pick(rng, TONE_LEVELS_DBM0)),
        "codec": _pick(rng, CODECS),
    }


def _pauses(rng: np.random.Generator, marked: str, lo: int, hi: int) -> tuple[int, ...]:
    return tuple(_int(rng, lo, hi) for _ in range(marked.count(PAUSE_MARK)))


def plan_announcement(
    call_id: str, cls: CallClass, variant: int, rng: np.random.Generator, engine: TtsEngine
) -> Recipe:
    texts = ANNOUNCEMENTS[cls]
    marked = texts[variant % len(texts)]
    cause, status = _pick(
        rng, _ENDINGS.get(cls, _NOT_WORKING_ENDINGS if cls.value in _NOT_WORKING else _TEMPORARY_ENDINGS)
    )
    lead = str(_pick(rng, ("none", "ringback", "sit")))
    if engine == "festival" and DISC_MARK in marked and rng.random() < 0.3:
        marked = marked.replace(DISC_MARK, f"{PAUSE_MARK} {DISC_MARK}")  # a pause where the phrase breaks
    tail = ENGLISH_TAILS.get(cls) if engine == "festival" and rng.random() < 0.3 else None
    return Recipe(
        call_id=call_id,
        kind="announcement",
        call_class=cls,
        speech=Speech(_voice(rng, engine), marked, _pauses(rng, marked, 200, 700), tail, _int(rng, 300, 800)),
        lead=lead,
        lead_cycles=_int(rng, 1, 2),
        lead_gap_ms=_int(rng, 100, 1500) if lead == "ringback" else _int(rng, 100, 600),
        repeat=str(_pick(rng, ("once", "twice", "cut"))),
        cut_extra_ms=_int(rng, 100, 600),  # mostly mid-word
        gap_ms=_int(rng, 600, 1200),
        tail_ms=_int(rng, 100, 800),
        cause=int(cause),
        dial_status=None if status is None else str(status),
        **_noise(rng, ANNOUNCEMENT_SNRS_DB, ANNOUNCEMENT_NOISES),
        **_common(rng),
    )


# (cause, DialStatus) choices of the tone calls the network ends with a cause
_TONE_ENDINGS: dict[str, tuple[tuple[int, str], ...]] = {
    "busy": ((Cause.USER_BUSY, DialStatus.BUSY), (Cause.NORMAL_CLEARING, DialStatus.NOANSWER)),
    "congestion": (
        (Cause.NORMAL_CIRCUIT_CONGESTION, DialStatus.CONGESTION),
        (Cause.NORMAL_CLEARING, DialStatus.NOANSWER),
        (Cause.NETWORK_OUT_OF_ORDER, DialStatus.NOANSWER),
    ),
    "sit": (
        (Cause.UNALLOCATED, DialStatus.NOANSWER),
        (Cause.SUBSCRIBER_ABSENT, DialStatus.CHANUNAVAIL),
        (Cause.CALL_REJECTED, DialStatus.NOANSWER),
        (Cause.NORMAL_UNSPECIFIED, DialStatus.NOANSWER),
    ),
}
_TONE_CLASSES = {"busy": CallClass.BUSY, "congestion": CallClass.CONGESTION}


def plan_tone_call(call_id: str, kind: str, rng: np.random.Generator) -> Recipe:
    common = _common(rng)
    common["snr_db"] = _pick(rng, (None, 30.0, 20.0))  # the robustness bar for tones: 20 dB
    if kind in _TONE_CLASSES:
        cause, status = _pick(rng, _TONE_ENDINGS[kind])
        return Recipe(
            call_id,
            kind,
            _TONE_CLASSES[kind],
            tone_ms=_int(rng, 4, 8) * 1000,
            lead_gap_ms=_int(rng, 0, 600),
            cause=int(cause),
            dial_status=str(status),
            **common,
        )
    if kind == "no_answer":
        # ring timeout (the Originate's Timeout): cause 19 and no DialEnd at all
        return Recipe(
            call_id,
            "no_answer",
            CallClass.NO_ANSWER,
            tone_ms=_int(rng, 10, 20) * 1000,
            lead_gap_ms=_int(rng, 0, 1500),
            cause=int(Cause.NO_ANSWER),
            dial_status=None,
            **common,
        )
    if kind == "sit":
        cause, status = _pick(rng, _TONE_ENDINGS[kind])
        return Recipe(
            call_id,
            "sit",
            CallClass.SIT_UNRECOGNISED,
            lead_cycles=_int(rng, 2, 3),
            lead_gap_ms=_int(rng, 0, 800),
            cause=int(cause),
            dial_status=str(status),
            **common,
        )
    raise CorpusError(f"unknown tone call kind {kind!r}")


def _person(call_id: str, variant: int, rng: np.random.Generator, engine: TtsEngine, base: dict[str, Any]) -> Recipe:
    """A person answering: short («Да?») to long greetings with inner pauses, a question after
    the greeting, slow answerers, «Алло? … Алло?», quiet speakers in noise."""
    greeting = PERSON_GREETINGS[variant % len(PERSON_GREETINGS)]
    style = str(_pick(rng, ("plain", "plain", "question", "slow", "again", "quiet")))
    if style == "question":
        greeting = f"{greeting} {PAUSE_MARK} {_pick(rng, PERSON_QUESTIONS)}"
    common = _common(rng)
    noise_kw = _noise(rng, (None, 20.0, 15.0, 10.0), PERSON_NOISES)
    gap_ms = _int(rng, 200, 900)
    if style == "slow":
        gap_ms = _int(rng, 2500, 4000)  # says nothing for a while after picking up
    if style == "quiet":
        common["speech_level_dbm0"] = -40.0
        noise_kw = {"snr_db": float(_pick(rng, (5.0, 10.0, 15.0, 20.0))), "noise": _pick(rng, PERSON_NOISES)}
    return Recipe(
        call_id,
        "person",
        CallClass.PERSON,
        speech=Speech(_voice(rng, engine), greeting, _pauses(rng, greeting, *INNER_PAUSE_MS)),
        gap_ms=gap_ms,
        repeat="twice" if style == "again" else "once",
        tail_ms=500,
        params={"repeat_gap_ms": _int(rng, 2000, 3000), "after_answer_min_ms": 7000, "style": style},
        **base,
        **common,
        **noise_kw,
    )


def plan_answered(
    call_id: str, kind: str, variant: int, rng: np.random.Generator, engine: TtsEngine | None = None
) -> Recipe:
    engine = engine or ("espeak" if variant % 2 == 0 else "festival")
    base: dict[str, Any] = {
        "lead_cycles": _int(rng, 1, 2),
        "lead_gap_ms": _int(rng, 500, 3500),  # the answer comes somewhere in the ring pause
    }
    planner = _ANSWERED.get(kind)
    if planner is None:
        raise CorpusError(f"unknown answered call kind {kind!r}")
    return planner(call_id, variant, rng, engine, base)


def _voicemail(call_id: str, variant: int, rng: np.random.Generator, engine: TtsEngine, base: dict[str, Any]) -> Recipe:
    texts = (*VOICEMAIL_GREETINGS, *VOICEMAIL_SERVICES, *CALL_SCREENING)
    marked = texts[variant % len(texts)]
    screening = marked in CALL_SCREENING
    return Recipe(
        call_id,
        "voicemail",
        CallClass.VOICEMAIL,
        speech=Speech(_voice(rng, engine), marked, _pauses(rng, marked, 300, 900)),
        gap_ms=_int(rng, 100, 600),
        beep_hz=float(_pick(rng, (850.0, 1000.0, 1400.0))),
        beep_ms=_int(rng, 300, 800),
        tail_ms=_int(rng, 2500, 4000),
        params={
            "beep_gap_ms": _int(rng, 200, 800),
            "beep": (not screening) and bool(rng.random() < 0.75),
            "style": "screening" if screening else "service" if marked in VOICEMAIL_SERVICES else "greeting",
        },
        **base,
        **_common(rng),
        **_noise(rng, (None, 25.0, 20.0, 15.0), PERSON_NOISES),
    )


def _ivr(call_id: str, variant: int, rng: np.random.Generator, engine: TtsEngine, base: dict[str, Any]) -> Recipe:
    marked = IVR_PROMPTS[variant % len(IVR_PROMPTS)]
    return Recipe(
        call_id,
        "ivr",
        CallClass.IVR,
        speech=Speech(_voice(rng, engine), marked, _pauses(rng, marked, 300, 900)),
        gap_ms=_int(rng, 100, 600),
        repeat=str(_pick(rng, ("once", "twice"))),
        tail_ms=1000,
        params={"repeat_gap_ms": _int(rng, 800, 1500), "after_answer_min_ms": 8000},
        **base,
        **_common(rng),
        **_noise(rng, (None, 25.0, 20.0, 15.0), ANNOUNCEMENT_NOISES),
    )


def _silence(call_id: str, variant: int, rng: np.random.Generator, engine: TtsEngine, base: dict[str, Any]) -> Recipe:
    common = _common(rng)
    floor = bool(rng.random() < 0.5)
    params: dict[str, Any] = {"after_answer_min_ms": 8000}
    if floor:
        params["floor"] = True
    return Recipe(
        call_id,
        "silence",
        CallClass.ANSWERED_SILENCE,
        silence_floor_dbm0=float(_pick(rng, SILENCE_FLOOR_DBM0)),
        tail_ms=0,
        params=params,
        **base,
        **common,
    )


_ANSWERED: dict[str, Callable[[str, int, np.random.Generator, TtsEngine, dict[str, Any]], Recipe]] = {
    "person": _person,
    "voicemail": _voicemail,
    "ivr": _ivr,
    "silence": _silence,
}


@dataclass(frozen=True, slots=True)
class CorpusSize:
    per_announcement: int  # festival-voiced calls per announcement class
    espeak_announcements: int  # espeak-ng announcement calls in all (safety checks), spread over classes
    person: int
    voicemail: int
    ivr: int
    busy: int
    congestion: int
    no_answer: int
    sit: int
    silence: int
    espeak_share: float = 0.25  # of the answered calls


SMALL = CorpusSize(
    per_announcement=2,
    espeak_announcements=6,
    person=16,
    voicemail=8,
    ivr=6,
    busy=4,
    congestion=4,
    no_answer=3,
    sit=4,
    silence=4,
)
FULL = CorpusSize(
    per_announcement=6,
    espeak_announcements=36,
    person=80,
    voicemail=36,
    ivr=21,
    busy=16,
    congestion=16,
    no_answer=8,
    sit=12,
    silence=12,
)


def plan_corpus(seed: int, size: CorpusSize) -> list[Recipe]:
    """Every call's recipe; call ``i`` draws from ``default_rng([seed, i])``."""
    # (planner, kind or class, variant, voice engine) per call
    jobs: list[tuple[str, Any, int, TtsEngine]] = []
    for cls in ANNOUNCEMENTS:
        jobs.extend(("announcement", cls, v, "festival") for v in range(size.per_announcement))
    classes = list(ANNOUNCEMENTS)
    jobs.extend(
        ("announcement", classes[(k * 7) % len(classes)], k, "espeak") for k in range(size.espeak_announcements)
    )
    for kind in ("busy", "congestion", "no_answer", "sit"):
        jobs.extend(("tone", kind, v, "espeak") for v in range(getattr(size, kind)))
    for kind in ("person", "voicemail", "ivr", "silence"):
        n = getattr(size, kind)
        n_espeak = round(n * size.espeak_share)
        jobs.extend(("answered", kind, v, "espeak" if v < n_espeak else "festival") for v in range(n))
    recipes = []
    for i, (planner, what, v, engine) in enumerate(jobs):
        cid = f"c{i:04d}"
        rng = np.random.default_rng([seed, i])
        if planner == "announcement":
            recipe = plan_announcement(cid, what, v, rng, engine)
        elif planner == "tone":
            recipe = plan_tone_call(cid, what, rng)
        else:
            recipe = plan_answered(cid, what, v, rng, engine)
        recipes.append(_with_id(recipe))
    return recipes


def _with_id(r: Recipe) -> Recipe:
    # readable ids: c0012-ann_blocked
    return replace(r, call_id=f"{r.call_id}-{r.call_class.value}")
