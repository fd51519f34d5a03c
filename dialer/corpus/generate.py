"""Generate a corpus of labelled test calls (``dialer corpus generate OUT_DIR``).

Each call is planned first (every random choice drawn from a per-call generator seeded by
``(seed, index)``, so a corpus is reproducible and one call does not shift the others), then the
speech it needs is synthesised in one batch (espeak-ng per utterance, festival once for all its
utterances: its start-up dominates), then each call is assembled at 8 kHz:

    lead (ringback / SIT / nothing) → speech or tones → tail, at a level in dBm0,
    + white noise at an SNR, → G.711 μ-law/A-law round trip through sox → ``<id>.wav``

and labelled with its class, the network script AMI would report, the spoken text and the moment
the class becomes knowable (``disc_end_ms``: the end of the discriminating word, estimated by
synthesising the text up to that word on its own; the tone onset; the ring timeout …).

Tones follow the RU plan of Asterisk's indications.conf (DESIGN.md §3). Levels use the G.711
reference: 0 dBm0 is a sine of peak 22 656 in int16 units.
"""

from __future__ import annotations

import io
import math
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from dialer.corpus.labels import LABELS_FILE, SAMPLE_RATE_HZ, CallLabel, NetworkScript, write_labels
from dialer.domain.fusion import NOT_WORKING_CLASSES
from dialer.domain.model import CallClass
from dialer.domain.q850 import Cause, DialStatus
from dialer.errors import DialerError

FloatArray = npt.NDArray[np.float64]
Int16Array = npt.NDArray[np.int16]

DBM0_PEAK = 22656.0  # ITU-T G.711: +3.17 dBm0 is full scale
DBM0_RMS = DBM0_PEAK / math.sqrt(2.0)
DISC_MARK = "|"  # in a text: the class is knowable once the words before the mark are heard
FESTIVAL_VOICE = "voice_msu_ru_nsh_clunits"

Engine = Literal["espeak", "festival"]
Codec = Literal["slin", "ulaw", "alaw"]


class CorpusError(DialerError):
    """A tool the generator needs is missing or failed."""


# --- what is said --------------------------------------------------------------------------------
# Texts of reference/announcements.md; "|" ends the discriminating prefix (absent = whole text).
ANNOUNCEMENTS: dict[CallClass, tuple[str, ...]] = {
    CallClass.ANN_TEMPORARILY_UNAVAILABLE: (
        "абонент временно недоступен | попробуйте позвонить позже",
        "абонент временно недоступен | пожалуйста позвоните позднее",
        "абонент не отвечает или временно недоступен | пожалуйста позвоните позднее",
        "номер на который вы звоните сейчас не в сети | пожалуйста перезвоните позже",
    ),
    CallClass.ANN_SWITCHED_OFF: (
        "аппарат абонента выключен | или находится вне зоны действия сети",
        "телефон абонента выключен | или находится вне зоны обслуживания",
    ),
    CallClass.ANN_NOT_REGISTERED: (
        "абонент в сети не зарегистрирован",
        "абонент не зарегистрирован | в сети",
    ),
    CallClass.ANN_ABROAD: ("абонент которому вы позвонили находится за пределами | российской федерации",),
    CallClass.ANN_SUSPENDED: (
        "обслуживание абонента временно приостановлено",
        "обслуживание номера временно приостановлено",
    ),
    CallClass.ANN_TEMPORARILY_BLOCKED: ("извините набранный вами номер временно заблокирован",),
    CallClass.ANN_SERVICE_NOT_AVAILABLE: ("данный вид связи недоступен | для абонента",),
    CallClass.ANN_CONNECTION_IMPOSSIBLE: ("соединение невозможно",),
    CallClass.ANN_NETWORK_CONGESTED: ("направление перегружено",),
    CallClass.ANN_SUBSCRIBER_BUSY: (
        "абонент разговаривает | дождитесь ответа или перезвоните позже",
        "абонент занят | оставайтесь на линии или перезвоните",
    ),
    CallClass.ANN_STILL_TRYING: ("продолжается попытка дозвониться | до абонента который пока что не успел ответить",),
    CallClass.ANN_NOT_IN_SERVICE: (
        "набранный вами номер не обслуживается",
        "набранный вами номер не используется | пожалуйста уточните номер",
        "номер не обслуживается | или не используется",
    ),
    CallClass.ANN_DOES_NOT_EXIST: (
        "извините номер не существует | или набран неправильно",
        "набираемый номер не существует",
        "номер который вы набрали не существует",
        "вы набрали несуществующий | формат номера",
    ),
    CallClass.ANN_WRONG_NUMBER: ("неправильно набран номер",),
    CallClass.ANN_BLOCKED: ("номер заблокирован", "абонент заблокирован"),
    CallClass.ANN_DISCONNECTED: (
        "извините вызываемый вами абонент отключён | оператором",
        "предоставление услуг по этому номеру прекращено",
        "доступ к данному номеру запрещён",
    ),
    CallClass.ANN_FOR_SALE: (
        "вы позвонили на номер который находится в продаже",
        "номер телефона доступен для приобретения",
        "здравствуйте сейчас этот номер свободен",
    ),
    CallClass.ANN_NUMBER_CHANGED: (
        "номер изменён",
        "номер абонента изменился",
        "в настоящее время вызов абоненту который сменил оператора | связи невозможен",
    ),
}

PERSON_GREETINGS = ("алло", "да слушаю", "алло слушаю", "да", "алло здравствуйте", "слушаю вас")
VOICEMAIL_GREETINGS = (
    "вас приветствует автоответчик | оставьте сообщение после звукового сигнала",
    "вызываемый абонент недоступен ваш звонок был переадресован на голосовой почтовый ящик",
    "здравствуйте вы позвонили ивану сейчас я не могу ответить оставьте сообщение | после сигнала",
    "добрый день к сожалению я не могу подойти к телефону оставьте сообщение | после сигнала",
)
IVR_PROMPTS = (
    "здравствуйте вы позвонили в компанию ромашка наберите добавочный | номер или дождитесь ответа оператора",
    "для соединения с сотрудником наберите добавочный | номер",
    "ваш звонок очень важен для нас | оставайтесь на линии",
    "добро пожаловать наберите добавочный | номер или оставайтесь на линии",
)

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

# --- tones (RU plan, indications.conf) -----------------------------------------------------------
TONE_HZ = 425.0
BUSY_CADENCE_MS = (350, 350)
CONGESTION_CADENCE_MS = (175, 175)
RINGBACK_CADENCE_MS = (1000, 4000)
SIT_HZ = (950.0, 1400.0, 1800.0)
SIT_SEGMENT_MS = 330
SIT_PAUSE_MS = 1000

# --- variation -----------------------------------------------------------------------------------
ESPEAK_SPEEDS_WPM = (130, 160, 190)
ESPEAK_PITCHES = (35, 50, 70)
FESTIVAL_STRETCH_PCT = (85, 100, 120)  # Duration_Stretch × 100: 85 = faster
SPEECH_LEVELS_DBM0 = (-30, -25, -20, -15, -10)
TONE_LEVELS_DBM0 = (-30, -20, -10, -5, 0)
SNRS_DB: tuple[float | None, ...] = (None, 30.0, 20.0, 15.0)  # None: no added noise
CODECS: tuple[Codec, ...] = ("slin", "ulaw", "alaw")
SILENCE_FLOOR_DBM0 = (-60.0, -50.0)  # noise on a silent answered line, when noise is added


@dataclass(frozen=True, slots=True)
class Voice:
    engine: Engine
    speed: int  # espeak: words per minute; festival: Duration_Stretch in percent (100 = normal)
    pitch: int = 50  # espeak only (0..99)
    lang: str = "ru"  # espeak only: e.g. "ko" to exercise the Korean model of CI

    def describe(self) -> str:
        if self.engine == "espeak":
            return f"espeak-ng -v {self.lang} -s {self.speed} -p {self.pitch}"
        return f"festival {FESTIVAL_VOICE} stretch {self.speed / 100:.2f}"


@dataclass(frozen=True, slots=True)
class Say:
    """One synthesis request."""

    voice: Voice
    text: str


def split_disc(marked: str) -> tuple[str, str | None]:
    """``"a b | c"`` → (``"a b c"``, ``"a b"``); no mark or a mark at the end → (text, None)."""
    head, mark, tail = marked.partition(DISC_MARK)
    text = " ".join((head + " " + tail).split())
    if not mark or not tail.strip():
        return text, None
    return text, " ".join(head.split())


@dataclass(frozen=True, slots=True)
class Speech:
    """An utterance placed in a call: its full text and (optionally) its discriminating prefix."""

    voice: Voice
    marked_text: str

    @property
    def text(self) -> str:
        return split_disc(self.marked_text)[0]

    @property
    def prefix(self) -> str | None:
        return split_disc(self.marked_text)[1]

    def requests(self) -> list[Say]:
        out = [Say(self.voice, self.text)]
        if self.prefix is not None:
            out.append(Say(self.voice, self.prefix))
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


# --- synthesis -------------------------------------------------------------------------------------
def _run(cmd: Sequence[str], data: bytes | None = None, what: str = "") -> bytes:
    try:
        proc = subprocess.run(list(cmd), input=data, capture_output=True, check=False)
    except FileNotFoundError:
        raise CorpusError(f"{cmd[0]} is not installed (apt install espeak-ng sox festival festvox-ru)") from None
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip()[:300]
        raise CorpusError(f"{cmd[0]} failed{' for ' + what if what else ''} (exit {proc.returncode}): {err}")
    return proc.stdout


def _sox_to_slin8k(wav_bytes: bytes, what: str) -> Int16Array:
    # -D: no dither, which sox otherwise adds from a random seed (the corpus must be reproducible)
    raw = _run(
        [
            "sox",
            "-D",
            "-t",
            "wav",
            "-",
            "-r",
            str(SAMPLE_RATE_HZ),
            "-c",
            "1",
            "-b",
            "16",
            "-e",
            "signed-integer",
            "-t",
            "raw",
            "-",
        ],
        wav_bytes,
        what,
    )
    return np.frombuffer(raw, dtype="<i2").astype(np.int16)


def _festival_text(text: str) -> str:
    # the msu_ru voice's lexicon has no «ё»; quotes/backslashes would break the Scheme string
    return text.replace("ё", "е").replace('"', "").replace("\\", "")


class Synthesiser:
    """Synthesises a batch of :class:`Say` requests to 8 kHz int16 (leading/trailing silence kept)."""

    def __init__(self, workers: int = 2) -> None:
        self._done: dict[Say, Int16Array] = {}
        self._workers = workers

    def get(self, say: Say) -> Int16Array:
        return self._done[say]

    def synthesise(self, requests: Iterable[Say]) -> None:
        todo = sorted(
            {r for r in requests if r not in self._done},
            key=lambda s: (s.voice.engine, s.voice.speed, s.voice.pitch, s.text),
        )
        espeak = [r for r in todo if r.voice.engine == "espeak"]
        festival = [r for r in todo if r.voice.engine == "festival"]
        with ThreadPoolExecutor(max_workers=self._workers) as pool:
            fest = pool.submit(self._festival_batch, festival) if festival else None
            for say, pcm in zip(espeak, pool.map(self._espeak, espeak), strict=True):
                self._done[say] = pcm
            if fest is not None:
                self._done.update(fest.result())

    @staticmethod
    def _espeak(say: Say) -> Int16Array:
        wav_bytes = _run(
            [
                "espeak-ng",
                "-v",
                say.voice.lang,
                "-s",
                str(say.voice.speed),
                "-p",
                str(say.voice.pitch),
                "--stdout",
                say.text,
            ],
            what=f"«{say.text}»",
        )
        return _sox_to_slin8k(wav_bytes, f"«{say.text}»")

    @staticmethod
    def _festival_batch(batch: list[Say]) -> dict[Say, Int16Array]:
        if shutil.which("text2wave") is None and shutil.which("festival") is None:
            raise CorpusError("festival is not installed (apt install festival festvox-ru)")
        out: dict[Say, Int16Array] = {}
        with tempfile.TemporaryDirectory(prefix="dialer-festival-") as tmp:
            lines = [f"({FESTIVAL_VOICE})"]
            for i, say in enumerate(batch):
                lines.append(f"(Parameter.set 'Duration_Stretch {say.voice.speed / 100:.2f})")
                lines.append(
                    f'(utt.save.wave (utt.synth (Utterance Text "{_festival_text(say.text)}")) "{tmp}/{i}.wav" \'riff)'
                )
            script = Path(tmp) / "batch.scm"
            script.write_text("\n".join(lines) + "\n", encoding="utf-8")
            _run(["festival", "--batch", str(script)], what=f"{len(batch)} utterances")
            for i, say in enumerate(batch):
                wav_path = Path(tmp) / f"{i}.wav"
                if not wav_path.exists():
                    raise CorpusError(f"festival wrote no audio for «{say.text}»")
                out[say] = _sox_to_slin8k(wav_path.read_bytes(), f"«{say.text}»")
        return out


def voiced_bounds(pcm: npt.NDArray[np.generic], rel_db: float = -40.0, step: int = 80) -> tuple[int, int]:
    """(first, end) sample of the voiced part: 10 ms blocks within ``rel_db`` of the loudest."""
    x = np.asarray(pcm, dtype=np.float64)
    n = len(x) // step
    if n == 0:
        return 0, len(x)
    ms = (x[: n * step].reshape(n, step) ** 2).mean(axis=1)
    peak = float(ms.max())
    if peak <= 0.0:
        return 0, 0
    loud = np.nonzero(ms >= peak * 10.0 ** (rel_db / 10.0))[0]
    return int(loud[0]) * step, (int(loud[-1]) + 1) * step


def active_rms(x: FloatArray, rel_db: float = -30.0, step: int = 160) -> float:
    """RMS over the 20 ms blocks within ``rel_db`` of the loudest block (speech active level)."""
    n = len(x) // step
    if n == 0:
        return float(np.sqrt(np.mean(x * x))) if len(x) else 0.0  # short clip: plain RMS
    ms = (x[: n * step].reshape(n, step) ** 2).mean(axis=1)
    peak = float(ms.max())
    if peak <= 0.0:
        return 0.0
    return float(np.sqrt(ms[ms >= peak * 10.0 ** (rel_db / 10.0)].mean()))


def dbm0_to_rms(level_dbm0: float) -> float:
    return float(DBM0_RMS * 10.0 ** (level_dbm0 / 20.0))


def rms_to_dbm0(rms: float) -> float:
    return -100.0 if rms <= 0.0 else 20.0 * math.log10(rms / DBM0_RMS)


@dataclass(frozen=True, slots=True)
class SpokenClip:
    """A trimmed utterance (float, unscaled) and where its discriminating word ends in it."""

    samples: FloatArray
    disc_end: int  # samples from the clip start


def spoken_clip(speech: Speech, synth: Synthesiser) -> SpokenClip:
    full = synth.get(Say(speech.voice, speech.text))
    start, end = voiced_bounds(full)
    if end <= start:
        raise CorpusError(f"{speech.voice.describe()} produced silence for «{speech.text}»")
    clip = full[start:end].astype(np.float64)
    disc_end = len(clip)
    if speech.prefix is not None:
        pre = synth.get(Say(speech.voice, speech.prefix))
        p_start, p_end = voiced_bounds(pre)
        # same engine, same leading pause: the prefix's voiced end maps onto the full clip
        disc_end = min(len(clip), max(1, p_end - p_start))
    return SpokenClip(clip, disc_end)


# --- tones -----------------------------------------------------------------------------------------
def sine(freq_hz: float, n: int, level_dbm0: float, phase0: float = 0.0) -> FloatArray:
    t = np.arange(n, dtype=np.float64) / SAMPLE_RATE_HZ
    peak: float = DBM0_PEAK * 10.0 ** (level_dbm0 / 20.0)
    return peak * np.sin(2.0 * math.pi * freq_hz * t + phase0)  # type: ignore[no-any-return]


def ms_to_samples(ms: float) -> int:
    return round(ms * SAMPLE_RATE_HZ / 1000.0)


def cadence(freq_hz: float, on_ms: int, off_ms: int, total_ms: int, level_dbm0: float) -> FloatArray:
    """An on/off tone of ``total_ms`` starting with the tone."""
    out = np.zeros(ms_to_samples(total_ms))
    period = on_ms + off_ms
    for start_ms in range(0, total_ms, period):
        a = ms_to_samples(start_ms)
        b = min(len(out), ms_to_samples(start_ms + on_ms))
        out[a:b] = sine(freq_hz, b - a, level_dbm0)
    return out


def sit_tone(cycles: int, level_dbm0: float) -> FloatArray:
    """``cycles`` × (950, 1400, 1800 Hz × 330 ms, then 1 s silence)."""
    parts: list[FloatArray] = []
    for _ in range(cycles):
        for f in SIT_HZ:
            parts.append(sine(f, ms_to_samples(SIT_SEGMENT_MS), level_dbm0))
        parts.append(np.zeros(ms_to_samples(SIT_PAUSE_MS)))
    return np.concatenate(parts)


# --- assembling a call -----------------------------------------------------------------------------
class Timeline:
    """Appends pieces of audio and remembers where things happened (ms)."""

    def __init__(self) -> None:
        self.parts: list[FloatArray] = []
        self.n = 0

    @property
    def now_ms(self) -> int:
        return round(self.n * 1000 / SAMPLE_RATE_HZ)

    def add(self, x: FloatArray) -> int:
        """Append; return the start (ms) of the piece."""
        at = self.now_ms
        self.parts.append(x)
        self.n += len(x)
        return at

    def silence(self, ms: int) -> int:
        return self.add(np.zeros(ms_to_samples(ms)))

    def audio(self) -> FloatArray:
        return np.concatenate(self.parts) if self.parts else np.zeros(0)


@dataclass(frozen=True, slots=True)
class RenderedCall:
    samples: Int16Array
    label: CallLabel


def _scaled(clip: SpokenClip, level_dbm0: float) -> FloatArray:
    rms = active_rms(clip.samples)
    return clip.samples * (dbm0_to_rms(level_dbm0) / rms) if rms > 0 else clip.samples


def _ringback(t: Timeline, cycles: int, level: float, last_off_ms: int | None = None) -> None:
    on, off = RINGBACK_CADENCE_MS
    for i in range(cycles):
        t.add(sine(TONE_HZ, ms_to_samples(on), level))
        t.silence(last_off_ms if (i == cycles - 1 and last_off_ms is not None) else off)


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
        speech = _scaled(clip, r.speech_level_dbm0)
        signal_level = r.speech_level_dbm0
        if r.lead == "ringback":
            _ringback(t, r.lead_cycles, r.tone_level_dbm0, last_off_ms=r.lead_gap_ms)
        elif r.lead == "sit":
            t.add(sit_tone(1, r.tone_level_dbm0)[: ms_to_samples(3 * SIT_SEGMENT_MS)])
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
        on, off = BUSY_CADENCE_MS if r.kind == "busy" else CONGESTION_CADENCE_MS
        t.silence(r.lead_gap_ms)
        disc_end_ms = t.add(cadence(TONE_HZ, on, off, r.tone_ms, r.tone_level_dbm0))
        net = NetworkScript(progress_ms=0, hangup_ms=t.now_ms, cause=r.cause, dial_status=r.dial_status)
    elif r.kind == "no_answer":
        t.silence(r.lead_gap_ms)
        t.add(cadence(TONE_HZ, *RINGBACK_CADENCE_MS, r.tone_ms, r.tone_level_dbm0))
        disc_end_ms = t.now_ms  # only the ring timeout tells
        net = NetworkScript(progress_ms=0, hangup_ms=t.now_ms, cause=r.cause, dial_status=r.dial_status)
    elif r.kind == "sit":
        t.silence(r.lead_gap_ms)
        disc_end_ms = t.add(sit_tone(r.lead_cycles, r.tone_level_dbm0))
        net = NetworkScript(progress_ms=0, hangup_ms=t.now_ms, cause=r.cause, dial_status=r.dial_status)
    elif r.kind in ("person", "voicemail", "ivr", "silence"):
        _ringback(t, r.lead_cycles, r.tone_level_dbm0, last_off_ms=r.lead_gap_ms)
        answered = t.now_ms
        t.silence(r.gap_ms if r.kind != "silence" else 0)
        if r.speech is not None:
            clip = spoken_clip(r.speech, synth)
            speech = _scaled(clip, r.speech_level_dbm0)
            signal_level = r.speech_level_dbm0
            start = t.add(speech)
            disc_end_ms = start + round(clip.disc_end * 1000 / SAMPLE_RATE_HZ)
            text = r.speech.text
            if r.kind == "voicemail":
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
        x = x + noise_rng.normal(0.0, noise_rms, len(x))
    elif r.kind == "silence" and "floor" in r.params:
        x = x + noise_rng.normal(0.0, dbm0_to_rms(r.silence_floor_dbm0), len(x))
    pcm = np.clip(np.round(x), -32768, 32767).astype(np.int16)
    pcm = codec_roundtrip(pcm, r.codec)
    params = {
        "voice": r.speech.voice.describe() if r.speech else None,
        "engine": r.speech.voice.engine if r.speech else None,
        "speech_level_dbm0": r.speech_level_dbm0 if r.speech else None,
        "tone_level_dbm0": r.tone_level_dbm0,
        "snr_db": r.snr_db,
        "codec": r.codec,
        "lead": r.lead,
        "lead_cycles": r.lead_cycles,
        "repeat": r.repeat,
        **{k: v for k, v in r.params.items()},
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


def codec_roundtrip(pcm: Int16Array, codec: Codec) -> Int16Array:
    """Encode to G.711 and back with sox (an implementation independent of dialer.audio)."""
    if codec == "slin":
        return pcm
    enc = "u-law" if codec == "ulaw" else "a-law"
    raw_fmt = ["-t", "raw", "-r", str(SAMPLE_RATE_HZ), "-c", "1"]
    coded = _run(
        ["sox", "-D", *raw_fmt, "-e", "signed-integer", "-b", "16", "-", *raw_fmt, "-e", enc, "-b", "8", "-"],
        pcm.astype("<i2").tobytes(),
        f"{codec} encode",
    )
    back = _run(
        ["sox", "-D", *raw_fmt, "-e", enc, "-b", "8", "-", *raw_fmt, "-e", "signed-integer", "-b", "16", "-"],
        coded,
        f"{codec} decode",
    )
    return np.frombuffer(back, dtype="<i2").astype(np.int16)


def write_wav(path: Path, pcm: Int16Array) -> None:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE_HZ)
        w.writeframes(pcm.astype("<i2").tobytes())
    path.write_bytes(buf.getvalue())


def read_wav(path: Path) -> Int16Array:
    """An 8 kHz 16-bit mono WAV as int16 samples; anything else is an error naming the file."""
    with wave.open(str(path), "rb") as w:
        if (w.getnchannels(), w.getsampwidth(), w.getframerate()) != (1, 2, SAMPLE_RATE_HZ):
            raise CorpusError(
                f"{path}: want 8000 Hz 16-bit mono, got {w.getframerate()} Hz "
                f"{8 * w.getsampwidth()}-bit {w.getnchannels()} channel(s)"
            )
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)


# --- planning --------------------------------------------------------------------------------------
def _pick(rng: np.random.Generator, options: Sequence[Any]) -> Any:
    return options[int(rng.integers(len(options)))]


def _voice(rng: np.random.Generator, engine: Engine) -> Voice:
    if engine == "espeak":
        return Voice("espeak", int(_pick(rng, ESPEAK_SPEEDS_WPM)), int(_pick(rng, ESPEAK_PITCHES)))
    return Voice("festival", int(_pick(rng, FESTIVAL_STRETCH_PCT)))


def _common(rng: np.random.Generator) -> dict[str, Any]:
    return {
        "speech_level_dbm0": float(_pick(rng, SPEECH_LEVELS_DBM0)),
        "tone_level_dbm0": float(_pick(rng, TONE_LEVELS_DBM0)),
        "snr_db": _pick(rng, SNRS_DB),
        "codec": _pick(rng, CODECS),
    }


def _int(rng: np.random.Generator, lo: int, hi: int) -> int:
    return int(rng.integers(lo, hi + 1))


def plan_announcement(call_id: str, cls: CallClass, variant: int, rng: np.random.Generator) -> Recipe:
    texts = ANNOUNCEMENTS[cls]
    engine: Engine = "espeak" if variant % 2 == 0 else "festival"
    cause, status = _pick(
        rng, _ENDINGS.get(cls, _NOT_WORKING_ENDINGS if cls.value in _NOT_WORKING else _TEMPORARY_ENDINGS)
    )
    lead = str(_pick(rng, ("none", "ringback", "sit")))
    return Recipe(
        call_id=call_id,
        kind="announcement",
        call_class=cls,
        speech=Speech(_voice(rng, engine), texts[variant % len(texts)]),
        lead=lead,
        lead_cycles=_int(rng, 1, 2),
        lead_gap_ms=_int(rng, 100, 1500) if lead == "ringback" else _int(rng, 100, 600),
        repeat=str(_pick(rng, ("once", "twice", "cut"))),
        cut_extra_ms=_int(rng, 100, 600),
        gap_ms=_int(rng, 600, 1200),
        tail_ms=_int(rng, 100, 800),
        cause=int(cause),
        dial_status=None if status is None else str(status),
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


def plan_answered(call_id: str, kind: str, variant: int, rng: np.random.Generator) -> Recipe:
    engine: Engine = "espeak" if variant % 2 == 0 else "festival"
    common = _common(rng)
    base: dict[str, Any] = {
        "lead_cycles": _int(rng, 1, 2),
        "lead_gap_ms": _int(rng, 500, 3500),  # the answer comes somewhere in the ring pause
    }
    if kind == "person":
        again = bool(rng.random() < 0.3)
        return Recipe(
            call_id,
            "person",
            CallClass.PERSON,
            speech=Speech(_voice(rng, engine), PERSON_GREETINGS[variant % len(PERSON_GREETINGS)]),
            gap_ms=_int(rng, 200, 900),
            repeat="twice" if again else "once",
            tail_ms=500,
            params={"repeat_gap_ms": _int(rng, 2000, 3000), "after_answer_min_ms": 7000},
            **base,
            **common,
        )
    if kind == "voicemail":
        return Recipe(
            call_id,
            "voicemail",
            CallClass.VOICEMAIL,
            speech=Speech(_voice(rng, engine), VOICEMAIL_GREETINGS[variant % len(VOICEMAIL_GREETINGS)]),
            gap_ms=_int(rng, 100, 600),
            beep_hz=float(_pick(rng, (850.0, 1000.0, 1400.0))),
            beep_ms=_int(rng, 300, 800),
            tail_ms=_int(rng, 2500, 4000),
            params={"beep_gap_ms": _int(rng, 200, 800)},
            **base,
            **common,
        )
    if kind == "ivr":
        return Recipe(
            call_id,
            "ivr",
            CallClass.IVR,
            speech=Speech(_voice(rng, engine), IVR_PROMPTS[variant % len(IVR_PROMPTS)]),
            gap_ms=_int(rng, 100, 600),
            repeat=str(_pick(rng, ("once", "twice"))),
            tail_ms=1000,
            params={"repeat_gap_ms": _int(rng, 800, 1500), "after_answer_min_ms": 8000},
            **base,
            **common,
        )
    if kind == "silence":
        common["snr_db"] = None
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
    per_announcement: int
    person: int
    voicemail: int
    ivr: int
    busy: int
    congestion: int
    no_answer: int
    sit: int
    silence: int


SMALL = CorpusSize(
    per_announcement=2, person=10, voicemail=6, ivr=4, busy=5, congestion=5, no_answer=3, sit=4, silence=4
)
FULL = CorpusSize(
    per_announcement=6, person=40, voicemail=16, ivr=12, busy=16, congestion=16, no_answer=8, sit=12, silence=12
)


def plan_corpus(seed: int, size: CorpusSize) -> list[Recipe]:
    """Every call's recipe; call ``i`` draws from ``default_rng([seed, i])``."""
    # (planner, kind or class, variant) per call
    jobs: list[tuple[str, Any, int]] = []
    for cls in ANNOUNCEMENTS:
        jobs.extend(("announcement", cls, v) for v in range(size.per_announcement))
    for kind in ("busy", "congestion", "no_answer", "sit"):
        jobs.extend(("tone", kind, v) for v in range(getattr(size, kind)))
    for kind in ("person", "voicemail", "ivr", "silence"):
        jobs.extend(("answered", kind, v) for v in range(getattr(size, kind)))
    recipes = []
    for i, (planner, what, v) in enumerate(jobs):
        cid = f"c{i:04d}"
        rng = np.random.default_rng([seed, i])
        if planner == "announcement":
            recipe = plan_announcement(cid, what, v, rng)
        elif planner == "tone":
            recipe = plan_tone_call(cid, what, rng)
        else:
            recipe = plan_answered(cid, what, v, rng)
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
    synth.synthesise(req for r in recipes if r.speech is not None for req in r.speech.requests())
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
