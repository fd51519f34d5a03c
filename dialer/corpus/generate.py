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

Pieces: the planning in :mod:`~dialer.corpus.plan` (recipes, :mod:`~dialer.corpus.recipe`), what is
said in :mod:`~dialer.corpus.texts`, the voices in :mod:`~dialer.corpus.tts`, tones from
config/tones.yaml in :mod:`~dialer.corpus.tones`, signal helpers in :mod:`~dialer.corpus.audio`,
WAV files in :mod:`~dialer.corpus.wavio`; this module only assembles.

Voices: festival's Russian voice through several sox "speakers" is the natural-sounding one the
gate judges; espeak-ng clips are kept for safety checks and labelled ``voice: espeak``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dialer.audio.frames import SAMPLE_RATE_HZ
from dialer.audio.toneplan import shipped_plan
from dialer.corpus.audio import (
    CorpusError,
    FloatArray,
    Int16Array,
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
from dialer.corpus.plan import FULL, SMALL, CorpusSize, plan_corpus
from dialer.corpus.recipe import Recipe, Speech, split_disc
from dialer.corpus.texts import BABBLE_TEXTS
from dialer.corpus.tones import cadence, cadence_ms, sit, sit_triplet_ms, tone
from dialer.corpus.tts import SPEAKERS, Say, Synthesiser, Voice
from dialer.corpus.wavio import read_wav, write_wav
from dialer.domain.q850 import DialStatus

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

# The RU plan's figures under their old names (tests of dialer.corpus.evaluate use them); they
# are read from config/tones.yaml like every tone of the corpus.
TONE_HZ = min(shipped_plan().tone("busy").frequencies_hz)
BUSY_CADENCE_MS = cadence_ms(shipped_plan().tone("busy"))
CONGESTION_CADENCE_MS = cadence_ms(shipped_plan().tone("congestion"))

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


@dataclass(slots=True)
class _Assembled:
    """What assembling a call's audio onto the timeline found out, for its label."""

    network: NetworkScript
    disc_end_ms: int
    signal_level_dbm0: float  # what the noise's SNR is relative to
    text: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _hung_up(r: Recipe, t: Timeline) -> NetworkScript:
    """The network ends the call now, with the recipe's cause."""
    return NetworkScript(progress_ms=0, hangup_ms=t.now_ms, cause=r.cause, dial_status=r.dial_status)


def _announcement(r: Recipe, t: Timeline, synth: Synthesiser) -> _Assembled:
    assert r.speech is not None
    clip = spoken_clip(r.speech, synth)
    speech = scaled_to(clip.samples, r.speech_level_dbm0)
    if r.lead == "ringback":
        _ringback(t, r.lead_cycles, r.tone_level_dbm0, last_off_ms=r.lead_gap_ms)
    elif r.lead == "sit":
        t.add(sit(1, r.tone_level_dbm0)[: ms_to_samples(sit_triplet_ms())])
        t.silence(r.lead_gap_ms)
    else:
        t.silence(r.lead_gap_ms)
    disc_end_ms = t.now_ms + round(clip.disc_end * 1000 / SAMPLE_RATE_HZ)
    if r.repeat == "cut":
        keep = min(len(speech), clip.disc_end + ms_to_samples(r.cut_extra_ms))
        t.add(speech[:keep])
    else:
        t.add(speech)
        if r.repeat == "twice":
            t.silence(r.gap_ms)
            t.add(speech)
    t.silence(r.tail_ms)
    return _Assembled(_hung_up(r, t), disc_end_ms, r.speech_level_dbm0, r.speech.text)


def _busy_or_congestion(r: Recipe, t: Timeline, synth: Synthesiser) -> _Assembled:
    t.silence(r.lead_gap_ms)
    disc_end_ms = t.add(tone(r.kind, r.tone_ms, r.tone_level_dbm0))
    return _Assembled(_hung_up(r, t), disc_end_ms, r.tone_level_dbm0)


def _no_answer(r: Recipe, t: Timeline, synth: Synthesiser) -> _Assembled:
    t.silence(r.lead_gap_ms)
    t.add(tone("ring", r.tone_ms, r.tone_level_dbm0))
    return _Assembled(_hung_up(r, t), t.now_ms, r.tone_level_dbm0)  # only the ring timeout tells


def _sit(r: Recipe, t: Timeline, synth: Synthesiser) -> _Assembled:
    t.silence(r.lead_gap_ms)
    disc_end_ms = t.add(sit(r.lead_cycles, r.tone_level_dbm0))
    return _Assembled(_hung_up(r, t), disc_end_ms, r.tone_level_dbm0)


def _answered(r: Recipe, t: Timeline, synth: Synthesiser) -> _Assembled:
    _ringback(t, r.lead_cycles, r.tone_level_dbm0, last_off_ms=r.lead_gap_ms)
    answered = t.now_ms
    t.silence(r.gap_ms if r.kind != "silence" else 0)
    # answered calls go on until we act: the network never ends them in the corpus
    net = NetworkScript(progress_ms=0, answered_ms=answered, dial_status=DialStatus.ANSWER.value)
    out = _Assembled(net, answered, r.tone_level_dbm0)
    if r.speech is not None:
        _answered_speech(r, r.speech, t, synth, out)
    t.silence(max(r.tail_ms, answered + r.params.get("after_answer_min_ms", 0) - t.now_ms))
    return out


def _answered_speech(r: Recipe, s: Speech, t: Timeline, synth: Synthesiser, out: _Assembled) -> None:
    """What answers: a person's greeting, a machine's prompt (and a voicemail's beep)."""
    clip = spoken_clip(s, synth)
    speech = scaled_to(clip.samples, r.speech_level_dbm0)
    out.signal_level_dbm0 = r.speech_level_dbm0
    start = t.add(speech)
    # a person: the greeting's end; a machine: its discriminating point
    disc_samples = len(clip.samples) if r.kind == "person" else clip.disc_end
    out.disc_end_ms = start + round(disc_samples * 1000 / SAMPLE_RATE_HZ)
    out.text = s.text
    if r.kind == "voicemail":
        if r.params.get("beep", True):
            t.silence(r.params["beep_gap_ms"])
            out.extra["beep_start_ms"] = t.add(sine(r.beep_hz, ms_to_samples(r.beep_ms), r.tone_level_dbm0))
            out.extra["beep_end_ms"] = t.now_ms
    elif r.repeat == "twice":
        t.silence(r.params["repeat_gap_ms"])
        t.add(speech)
        out.text = f"{out.text} … {out.text}"


_ASSEMBLERS: dict[str, Callable[[Recipe, Timeline, Synthesiser], _Assembled]] = {
    "announcement": _announcement,
    "busy": _busy_or_congestion,
    "congestion": _busy_or_congestion,
    "no_answer": _no_answer,
    "sit": _sit,
    **dict.fromkeys(("person", "voicemail", "ivr", "silence"), _answered),
}


def _noisy(  # the line's noise at the recipe's SNR, or a silent line's floor
    x: FloatArray, r: Recipe, signal_level_dbm0: float, synth: Synthesiser, rng: np.random.Generator
) -> FloatArray:
    if r.snr_db is not None:
        noise_rms = dbm0_to_rms(signal_level_dbm0) / 10.0 ** (r.snr_db / 20.0)
        voices = _babble_voices(synth) if r.noise == "babble" else []
        line: FloatArray = noise_rms * noise(r.noise, len(x), rng, voices)
        return x + line
    if r.kind == "silence" and "floor" in r.params:
        floor: FloatArray = rng.normal(0.0, dbm0_to_rms(r.silence_floor_dbm0), len(x))
        return x + floor
    return x


def _label_params(r: Recipe, extra: dict[str, Any]) -> dict[str, Any]:
    voice = r.speech.voice if r.speech else None
    return {
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


def render(recipe: Recipe, synth: Synthesiser, noise_rng: np.random.Generator) -> RenderedCall:
    """Assemble one call from its recipe (speech already synthesised)."""
    assemble = _ASSEMBLERS.get(recipe.kind)
    if assemble is None:
        raise CorpusError(f"unknown recipe kind {recipe.kind!r}")
    t = Timeline()
    done = assemble(recipe, t, synth)
    x = _noisy(t.audio(), recipe, done.signal_level_dbm0, synth, noise_rng)
    pcm = codec_roundtrip(to_int16(x), recipe.codec)
    label = CallLabel(
        id=recipe.call_id,
        call_class=recipe.call_class,
        network=done.network,
        text=done.text,
        disc_end_ms=done.disc_end_ms,
        duration_ms=round(len(pcm) * 1000 / SAMPLE_RATE_HZ),
        kind=recipe.kind,
        params=_label_params(recipe, done.extra),
    )
    return RenderedCall(pcm, label)


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
