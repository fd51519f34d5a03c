"""Generate a corpus of labelled test calls (``dialer corpus generate OUT_DIR``).

Each call is planned first (every random choice drawn from a per-call generator seeded by
``(seed, index)``, so a corpus is reproducible and one call does not shift the others), then the
speech it needs is synthesised in one batch (:mod:`dialer.corpus.tts`), then each call is
assembled at 8 kHz:

    lead (ringback / SIT / nothing) → speech or tones → tail, at a level in dBm0,
    + noise (white, pink, brown, babble, street) at an SNR → G.711 μ-law/A-law round trip → ``<id>.wav``

and labelled with its class, the network script AMI would report, the spoken text and the moment
the class becomes knowable (``disc_end_ms``): the end of the discriminating word of an announcement
(estimated by synthesising the text up to that word on its own), the end of a person's greeting
(dead air is measured from it), the tone onset, the ring timeout …

Pieces: what is said in :mod:`~dialer.corpus.texts`, the voices in :mod:`~dialer.corpus.tts`,
tones from config/tones.yaml in :mod:`~dialer.corpus.tones`, signal helpers in
:mod:`~dialer.corpus.audio`, WAV files in :mod:`~dialer.corpus.wavio`.

Voices: festival's Russian voice through several sox "speakers" is the natural-sounding one the
gate judges; espeak-ng clips are kept for safety checks and labelled ``voice: espeak``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from dialer.audio.frames import SAMPLE_RATE_HZ
from dialer.audio.toneplan import shipped_plan
from dialer.corpus.audio import (
    Codec,
    CorpusError,
    FloatArray,
    Int16Array,
    NoiseKind,
    Timeline,
    active_rms,
    codec_roundtrip,
    dbm0_to_rms,
    ms_to_samples,
    noise,
    rms_to_dbm0,
    scaled_to,
    sine,
    to_int16,
    voiced_bounds,
)
from dialer.corpus.labels import LABELS_FILE, CallLabel, NetworkScript, write_labels
from dialer.corpus.texts import (
    ANNOUNCEMENTS,
    BABBLE_TEXTS,
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
from dialer.corpus.tones import cadence, cadence_ms, sit, sit_triplet_ms, tone
from dialer.corpus.tts import SPEAKERS, Say, Synthesiser, TtsEngine, Voice
from dialer.corpus.wavio import read_wav, write_wav
from dialer.domain.fusion import NOT_WORKING_CLASSES
from dialer.domain.model import CallClass
from dialer.domain.q850 import Cause, DialStatus

__all__ = [
    "BUSY_CADENCE_MS",
    "CONGESTION_CADENCE_MS",
    "FULL",
    "SMALL",
    "TONE_HZ",
    "CorpusError",
    "CorpusSize",
    "Recipe",
    "Speech",
    "Voice",
    "active_rms",
    "cadence",
    "generate",
    "plan_corpus",
    "read_wav",
    "render",
    "render_corpus",
    "rms_to_dbm0",
    "split_disc",
    "write_wav",
]

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

# The RU plan's figures under their old names (tests of dialer.corpus.evaluate use them); they
# are read from config/tones.yaml like every tone of the corpus.
TONE_HZ = min(shipped_plan().tone("busy").frequencies_hz)
BUSY_CADENCE_MS = cadence_ms(shipped_plan().tone("busy"))
CONGESTION_CADENCE_MS = cadence_ms(shipped_plan().tone("congestion"))

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


def split_disc(marked: str) -> tuple[str, str | None]:
    """``"a b | c"`` → (``"a b c"``, ``"a b"``); no mark or a mark at the end → (text, None).
    Pause marks are dropped."""
    marked = marked.replace(PAUSE_MARK, " ")
    head, mark, tail = marked.partition(DISC_MARK)
    text = " ".join((head + " " + tail).split())
    if not mark or not tail.strip():
        return text, None
    return text, " ".join(head.split())


@dataclass(frozen=True, slots=True)
class Speech:
    """An utterance placed in a call: its text with marks (``|`` the discriminating point, ``/``
    an inner pause), the pauses' lengths, and an English tail said after it."""

    voice: Voice
    marked_text: str
    pauses_ms: tuple[int, ...] = ()  # one per "/"; missing ones are 400 ms
    tail_text: str | None = None  # English, said by espeak-ng after tail_gap_ms
    tail_gap_ms: int = 500

    @property
    def text(self) -> str:
        t = split_disc(self.marked_text)[0]
        return f"{t} {self.tail_text}" if self.tail_text else t

    @property
    def prefix(self) -> str | None:
        return split_disc(self.marked_text)[1]

    def parts(self) -> list[tuple[str, str | None]]:
        """``(part text, discriminating prefix within it or None)`` per pause-separated part;
        a prefix of ``""`` means the discriminating point is the start of the part."""
        out: list[tuple[str, str | None]] = []
        for raw in self.marked_text.split(PAUSE_MARK):
            head, mark, tail = raw.partition(DISC_MARK)
            text = " ".join((head + " " + tail).split())
            prefix = " ".join(head.split()) if mark and tail.strip() else None
            if text:
                out.append((text, prefix))
        return out

    def tail_voice(self) -> Voice:
        return Voice("espeak", 150, 50, "en")

    def requests(self) -> list[Say]:
        out: list[Say] = []
        for text, prefix in self.parts():
            out.append(Say(self.voice, text))
            if prefix:
                out.append(Say(self.voice, prefix))
        if self.tail_text:
            out.append(Say(self.tail_voice(), self.tail_text))
        return out


@dataclass(frozen=True, slots=True)
class Recipe:
    """Every choice for one call, drawn at planning time (so rendering is deterministic)."""

    call_id: str
    kind: str
    call_class: CallClass
    speech: Speech | None = None
    speech_level_dbm0: float = -20.0
    tone_level_dbm0: float = -10.0
    snr_db: float | None = None
    noise: NoiseKind = "white"
    silence_floor_dbm0: float = -60.0
    codec: Codec = "slin"
    lead: str = "none"  # none | ringback | sit  (before an announcement / before the answer)
    lead_cycles: int = 1  # ringback cycles before the answer / the announcement
    lead_gap_ms: int = 300  # silence between the lead and what follows
    repeat: str = "once"  # once | twice | cut
    cut_extra_ms: int = 300  # for "cut": audio kept after the discriminating word
    gap_ms: int = 800  # pause between repetitions / before the beep / after the answer
    tone_ms: int = 5000  # busy/congestion/ringback/SIT duration
    beep_hz: float = 1000.0
    beep_ms: int = 500
    tail_ms: int = 500
    cause: int | None = None
    dial_status: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


# --- speech clips ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SpokenClip:
    """An utterance (float, unscaled, parts joined by their pauses) and where its discriminating
    point is (samples from the clip start)."""

    samples: FloatArray
    disc_end: int


def _trimmed(pcm: Int16Array, what: str) -> FloatArray:
    start, end = voiced_bounds(pcm)
    if end <= start:
        raise CorpusError(f"the synthesiser produced silence for «{what}»")
    return pcm[start:end].astype(np.float64)


def spoken_clip(speech: Speech, synth: Synthesiser) -> SpokenClip:
    pieces: list[FloatArray] = []
    disc_end: int | None = None
    n = 0
    for k, (text, prefix) in enumerate(speech.parts()):
        if k > 0:
            pause = speech.pauses_ms[k - 1] if k - 1 < len(speech.pauses_ms) else 400
            pieces.append(np.zeros(ms_to_samples(pause)))
            if prefix == "" and disc_end is None:
                disc_end = n  # the mark opens this part: the class was knowable before the pause
            n += ms_to_samples(pause)
        full = synth.get(Say(speech.voice, text))
        clip = _trimmed(full, text)
        if prefix and disc_end is None:
            pre = synth.get(Say(speech.voice, prefix))
            p_start, p_end = voiced_bounds(pre)
            # same engine, same leading pause: the prefix's voiced end maps onto the full clip
            disc_end = n + min(len(clip), max(1, p_end - p_start))
        pieces.append(clip)
        n += len(clip)
    if speech.tail_text:
        tail = _trimmed(synth.get(Say(speech.tail_voice(), speech.tail_text)), speech.tail_text)
        # the English voice at the Russian one's active level
        ru = np.concatenate(pieces)
        tail = tail * (active_rms(ru) / max(1e-9, active_rms(tail)))
        pieces += [np.zeros(ms_to_samples(speech.tail_gap_ms)), tail]
    samples = np.concatenate(pieces)
    russian_end = n
    return SpokenClip(samples, disc_end if disc_end is not None else russian_end)


# --- assembling a call -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RenderedCall:
    samples: Int16Array
    label: CallLabel


def _ringback(t: Timeline, cycles: int, level: float, last_off_ms: int | None = None) -> None:
    on, off = cadence_ms(shipped_plan().tone("ring"))
    for i in range(cycles):
        t.add(tone("ring", on, level))
        t.silence(last_off_ms if (i == cycles - 1 and last_off_ms is not None) else off)


def _babble_voices(synth: Synthesiser) -> list[FloatArray]:
    return [synth.get(s).astype(np.float64) for s in babble_requests() if synth.has(s)]


def babble_requests() -> list[Say]:
    """The speech babble noise is made of (several voices, far off)."""
    voices = [Voice("festival", 100, speaker=sp) for sp in SPEAKERS[:3]] + [Voice("espeak", 160, 40)]
    return [Say(v, t) for i, t in enumerate(BABBLE_TEXTS) for v in (voices[i % len(voices)],)]


def render(recipe: Recipe, synth: Synthesiser, noise_rng: np.random.Generator) -> RenderedCall:
    """Assemble one call from its recipe (speech already synthesised)."""
    t = Timeline()
    r = recipe
    net = NetworkScript(progress_ms=0, cause=r.cause, dial_status=r.dial_status)
    disc_end_ms = 0
    text = ""
    signal_level = r.tone_level_dbm0
    extra: dict[str, Any] = {}

    if r.kind == "announcement":
        assert r.speech is not None
        clip = spoken_clip(r.speech, synth)
        speech = scaled_to(clip.samples, r.speech_level_dbm0)
        signal_level = r.speech_level_dbm0
        if r.lead == "ringback":
            _ringback(t, r.lead_cycles, r.tone_level_dbm0, last_off_ms=r.lead_gap_ms)
        elif r.lead == "sit":
            t.add(sit(1, r.tone_level_dbm0)[: ms_to_samples(sit_triplet_ms())])
            t.silence(r.lead_gap_ms)
        else:
            t.silence(r.lead_gap_ms)
        start = t.now_ms
        disc_end_ms = start + round(clip.disc_end * 1000 / SAMPLE_RATE_HZ)
        if r.repeat == "cut":
            keep = min(len(speech), clip.disc_end + ms_to_samples(r.cut_extra_ms))
            t.add(speech[:keep])
            t.silence(r.tail_ms)
        else:
            t.add(speech)
            if r.repeat == "twice":
                t.silence(r.gap_ms)
                t.add(speech)
            t.silence(r.tail_ms)
        text = r.speech.text
        net = NetworkScript(progress_ms=0, hangup_ms=t.now_ms, cause=r.cause, dial_status=r.dial_status)
    elif r.kind in ("busy", "congestion"):
        t.silence(r.lead_gap_ms)
        disc_end_ms = t.add(tone(r.kind, r.tone_ms, r.tone_level_dbm0))
        net = NetworkScript(progress_ms=0, hangup_ms=t.now_ms, cause=r.cause, dial_status=r.dial_status)
    elif r.kind == "no_answer":
        t.silence(r.lead_gap_ms)
        t.add(tone("ring", r.tone_ms, r.tone_level_dbm0))
        disc_end_ms = t.now_ms  # only the ring timeout tells
        net = NetworkScript(progress_ms=0, hangup_ms=t.now_ms, cause=r.cause, dial_status=r.dial_status)
    elif r.kind == "sit":
        t.silence(r.lead_gap_ms)
        disc_end_ms = t.add(sit(r.lead_cycles, r.tone_level_dbm0))
        net = NetworkScript(progress_ms=0, hangup_ms=t.now_ms, cause=r.cause, dial_status=r.dial_status)
    elif r.kind in ("person", "voicemail", "ivr", "silence"):
        _ringback(t, r.lead_cycles, r.tone_level_dbm0, last_off_ms=r.lead_gap_ms)
        answered = t.now_ms
        t.silence(r.gap_ms if r.kind != "silence" else 0)
        if r.speech is not None:
            clip = spoken_clip(r.speech, synth)
            speech = scaled_to(clip.samples, r.speech_level_dbm0)
            signal_level = r.speech_level_dbm0
            start = t.add(speech)
            # a person: the greeting's end; a machine: its discriminating point
            disc_samples = len(clip.samples) if r.kind == "person" else clip.disc_end
            disc_end_ms = start + round(disc_samples * 1000 / SAMPLE_RATE_HZ)
            text = r.speech.text
            if r.kind == "voicemail":
                if r.params.get("beep", True):
                    t.silence(r.params["beep_gap_ms"])
                    extra["beep_start_ms"] = t.add(sine(r.beep_hz, ms_to_samples(r.beep_ms), r.tone_level_dbm0))
                    extra["beep_end_ms"] = t.now_ms
            elif r.repeat == "twice":
                t.silence(r.params["repeat_gap_ms"])
                t.add(speech)
                text = f"{text} … {text}"
        else:
            disc_end_ms = answered
        t.silence(max(r.tail_ms, answered + r.params.get("after_answer_min_ms", 0) - t.now_ms))
        # answered calls go on until we act: the network never ends them in the corpus
        net = NetworkScript(progress_ms=0, answered_ms=answered, dial_status=DialStatus.ANSWER.value)
    else:
        raise CorpusError(f"unknown recipe kind {r.kind!r}")

    x = t.audio()
    if r.snr_db is not None:
        noise_rms = dbm0_to_rms(signal_level) / 10.0 ** (r.snr_db / 20.0)
        voices = _babble_voices(synth) if r.noise == "babble" else []
        x = x + noise_rms * noise(r.noise, len(x), noise_rng, voices)
    elif r.kind == "silence" and "floor" in r.params:
        x = x + noise_rng.normal(0.0, dbm0_to_rms(r.silence_floor_dbm0), len(x))
    pcm = codec_roundtrip(to_int16(x), r.codec)
    voice = r.speech.voice if r.speech else None
    params = {
        "voice": voice.family if voice else None,  # festival (natural) | espeak (robotic)
        "voice_detail": voice.describe() if voice else None,
        "engine": voice.engine if voice else None,
        "speaker": voice.speaker.name if voice else None,
        "speech_level_dbm0": r.speech_level_dbm0 if r.speech else None,
        "tone_level_dbm0": r.tone_level_dbm0,
        "snr_db": r.snr_db,
        "noise": r.noise if r.snr_db is not None else None,
        "codec": r.codec,
        "lead": r.lead,
        "lead_cycles": r.lead_cycles,
        "repeat": r.repeat,
        "english_tail": bool(r.speech and r.speech.tail_text),
        **dict(r.params.items()),
        **extra,
    }
    label = CallLabel(
        id=r.call_id,
        call_class=r.call_class,
        network=net,
        text=text,
        disc_end_ms=disc_end_ms,
        duration_ms=round(len(pcm) * 1000 / SAMPLE_RATE_HZ),
        kind=r.kind,
        params=params,
    )
    return RenderedCall(pcm, label)


# --- planning --------------------------------------------------------------------------------------
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


def plan_tone_call(call_id: str, kind: str, rng: np.random.Generator) -> Recipe:
    common = _common(rng)
    common["snr_db"] = _pick(rng, (None, 30.0, 20.0))  # the robustness bar for tones: 20 dB
    if kind == "busy":
        cause, status = _pick(rng, ((Cause.USER_BUSY, DialStatus.BUSY), (Cause.NORMAL_CLEARING, DialStatus.NOANSWER)))
        return Recipe(
            call_id,
            "busy",
            CallClass.BUSY,
            tone_ms=_int(rng, 4, 8) * 1000,
            lead_gap_ms=_int(rng, 0, 600),
            cause=int(cause),
            dial_status=str(status),
            **common,
        )
    if kind == "congestion":
        cause, status = _pick(
            rng,
            (
                (Cause.NORMAL_CIRCUIT_CONGESTION, DialStatus.CONGESTION),
                (Cause.NORMAL_CLEARING, DialStatus.NOANSWER),
                (Cause.NETWORK_OUT_OF_ORDER, DialStatus.NOANSWER),
            ),
        )
        return Recipe(
            call_id,
            "congestion",
            CallClass.CONGESTION,
            tone_ms=_int(rng, 4, 8) * 1000,
            lead_gap_ms=_int(rng, 0, 600),
            cause=int(cause),
            dial_status=str(status),
            **common,
        )
    if kind == "no_answer":
        # ring timeout: cause 19 and no DialEnd at all (reference/asterisk.md)
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
        cause, status = _pick(
            rng,
            (
                (Cause.UNALLOCATED, DialStatus.NOANSWER),
                (Cause.SUBSCRIBER_ABSENT, DialStatus.CHANUNAVAIL),
                (Cause.CALL_REJECTED, DialStatus.NOANSWER),
                (Cause.NORMAL_UNSPECIFIED, DialStatus.NOANSWER),
            ),
        )
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
    if kind == "person":
        return _person(call_id, variant, rng, engine, base)
    if kind == "voicemail":
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
    if kind == "ivr":
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
    if kind == "silence":
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
    raise CorpusError(f"unknown answered call kind {kind!r}")


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


def generate(
    out_dir: Path, seed: int = 1, size: CorpusSize = SMALL, progress: Callable[[str], None] | None = None
) -> list[CallLabel]:
    """Write ``<id>.wav`` + ``labels.jsonl`` into ``out_dir`` (created if needed)."""
    for tool in ("espeak-ng", "sox", "festival"):
        if shutil.which(tool) is None:
            raise CorpusError(f"{tool} is not installed (apt install espeak-ng sox festival festvox-ru)")
    recipes = plan_corpus(seed, size)
    return render_corpus(out_dir, recipes, seed, progress)


def render_corpus(
    out_dir: Path, recipes: Sequence[Recipe], seed: int = 1, progress: Callable[[str], None] | None = None
) -> list[CallLabel]:
    out_dir.mkdir(parents=True, exist_ok=True)
    synth = Synthesiser()
    requests = [req for r in recipes if r.speech is not None for req in r.speech.requests()]
    if any(r.snr_db is not None and r.noise == "babble" for r in recipes):
        requests += babble_requests()
    synth.synthesise(requests)
    if progress:
        progress(f"synthesised speech for {len(recipes)} calls")

    def one(i_r: tuple[int, Recipe]) -> CallLabel:
        i, recipe = i_r
        rendered = render(recipe, synth, np.random.default_rng([seed, i, 1]))
        write_wav(out_dir / f"{recipe.call_id}.wav", rendered.samples)
        return rendered.label

    with ThreadPoolExecutor(max_workers=2) as pool:  # sox round trips are subprocesses
        labels = list(pool.map(one, enumerate(recipes)))
    write_labels(out_dir / LABELS_FILE, labels)
    if progress:
        progress(f"wrote {len(labels)} calls to {out_dir}")
    return labels
