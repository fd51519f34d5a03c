"""Speech synthesis for the corpus: festival's Russian voice (close to a recorded announcement) and
espeak-ng (robotic; robustness checks only), each turned into several distinct "speakers" with sox
(pitch, tempo, a formant shift, a telephone-ish equaliser), resampled to 8 kHz.

Only these two engines speak Russian on Debian (no RHVoice). A :class:`Voice` is hashable and
fully describes the sound, so identical requests are synthesised once per corpus.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from dialer.audio.frames import SAMPLE_RATE_HZ
from dialer.corpus.audio import CorpusError, Int16Array, run_tool

FESTIVAL_VOICE = "voice_msu_ru_nsh_clunits"
TtsEngine = Literal["espeak", "festival"]


@dataclass(frozen=True, slots=True)
class Speaker:
    """A sox treatment that makes one synthetic voice sound like another person.

    ``formant`` shifts the spectral envelope (a ``speed`` change undone in pitch by ``pitch``, so
    the voice sounds like a bigger or smaller vocal tract), ``pitch_cents`` moves the pitch,
    ``tempo`` the speaking rate without changing pitch, ``treble_db`` tilts the spectrum."""

    name: str
    pitch_cents: int = 0
    tempo: float = 1.0
    formant: float = 1.0
    treble_db: float = 0.0

    def effects(self) -> list[str]:
        fx: list[str] = []
        if self.formant != 1.0:
            fx += ["speed", f"{self.formant:.3f}", "pitch", f"{-1200 * np.log2(self.formant):.0f}"]
        if self.pitch_cents:
            fx += ["pitch", str(self.pitch_cents)]
        if self.tempo != 1.0:
            fx += ["tempo", "-s", f"{self.tempo:.3f}"]
        if self.treble_db:
            fx += ["treble", f"{self.treble_db:.1f}"]
        return fx


NEUTRAL = Speaker("neutral")
# Festival's one Russian voice as several people (heard apart in a listening check).
SPEAKERS: tuple[Speaker, ...] = (
    NEUTRAL,
    Speaker("low", pitch_cents=-300, formant=0.94),
    Speaker("high", pitch_cents=350, formant=1.08, treble_db=2.0),
    Speaker("quick", tempo=1.18, pitch_cents=120),
    Speaker("slow", tempo=0.88, pitch_cents=-120),
    Speaker("bright", formant=1.05, treble_db=4.0),
    Speaker("dark", pitch_cents=-150, formant=0.97, treble_db=-4.0),
)


@dataclass(frozen=True, slots=True)
class Voice:
    engine: TtsEngine
    speed: int  # espeak: words per minute; festival: Duration_Stretch in percent (100 = normal)
    pitch: int = 50  # espeak only (0..99)
    lang: str = "ru"  # espeak only: e.g. "ko" to exercise the Korean model of CI, "en" for tails
    speaker: Speaker = NEUTRAL

    @property
    def family(self) -> str:
        """``festival`` (natural-sounding) or ``espeak`` (robotic): what a gate judges apart."""
        return self.engine

    def describe(self) -> str:
        base = (
            f"espeak-ng -v {self.lang} -s {self.speed} -p {self.pitch}"
            if self.engine == "espeak"
            else f"festival {FESTIVAL_VOICE} stretch {self.speed / 100:.2f}"
        )
        return base if self.speaker == NEUTRAL else f"{base} speaker {self.speaker.name}"


@dataclass(frozen=True, slots=True)
class Say:
    """One synthesis request."""

    voice: Voice
    text: str


def _to_slin8k(wav_bytes: bytes, speaker: Speaker, what: str) -> Int16Array:
    # -D: no dither, which sox otherwise adds from a random seed (the corpus must be reproducible)
    raw = run_tool(
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
            *speaker.effects(),
            "rate",
            str(SAMPLE_RATE_HZ),
        ],
        wav_bytes,
        what,
    )
    return np.frombuffer(raw, dtype="<i2").astype(np.int16)


def festival_text(text: str) -> str:
    # the msu_ru voice's lexicon has no «ё»; quotes/backslashes would break the Scheme string
    return text.replace("ё", "е").replace('"', "").replace("\\", "")


class Synthesiser:
    """Synthesises a batch of :class:`Say` requests to 8 kHz int16 (leading/trailing silence kept):
    espeak-ng once per request, festival once for the whole batch (its start-up dominates)."""

    def __init__(self, workers: int = 2) -> None:
        self._done: dict[Say, Int16Array] = {}
        self._workers = workers

    def get(self, say: Say) -> Int16Array:
        return self._done[say]

    def has(self, say: Say) -> bool:
        return say in self._done

    def synthesise(self, requests: Iterable[Say]) -> None:
        todo = sorted(
            {r for r in requests if r not in self._done},
            key=lambda s: (s.voice.engine, s.voice.speed, s.voice.pitch, s.voice.speaker.name, s.text),
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
        v = say.voice
        wav_bytes = run_tool(
            ["espeak-ng", "-v", v.lang, "-s", str(v.speed), "-p", str(v.pitch), "--stdout", say.text],
            what=f"«{say.text}»",
        )
        return _to_slin8k(wav_bytes, v.speaker, f"«{say.text}»")

    @staticmethod
    def _festival_batch(batch: list[Say]) -> dict[Say, Int16Array]:
        if shutil.which("festival") is None:
            raise CorpusError("festival is not installed (apt install festival festvox-ru)")
        out: dict[Say, Int16Array] = {}
        with tempfile.TemporaryDirectory(prefix="dialer-festival-") as tmp:
            # one synthesis per (stretch, text); speakers are sox treatments of the same wave
            plain = sorted({(s.voice.speed, s.text) for s in batch})
            index = {key: i for i, key in enumerate(plain)}
            lines = [f"({FESTIVAL_VOICE})"]
            for i, (speed, text) in enumerate(plain):
                lines.append(f"(Parameter.set 'Duration_Stretch {speed / 100:.2f})")
                lines.append(
                    f'(utt.save.wave (utt.synth (Utterance Text "{festival_text(text)}")) "{tmp}/{i}.wav" \'riff)'
                )
            script = Path(tmp) / "batch.scm"
            script.write_text("\n".join(lines) + "\n", encoding="utf-8")
            run_tool(["festival", "--batch", str(script)], what=f"{len(plain)} utterances")
            for say in batch:
                wav_path = Path(tmp) / f"{index[(say.voice.speed, say.text)]}.wav"
                if not wav_path.exists():
                    raise CorpusError(f"festival wrote no audio for «{say.text}»")
                out[say] = _to_slin8k(wav_path.read_bytes(), say.voice.speaker, f"«{say.text}»")
        return out
