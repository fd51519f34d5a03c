"""Audio analysis capacity and decision latency (tones + VAD, no ASR).

Run: .venv/bin/python bench/bench_audio.py [--seconds 20] [--trials 40]

Prints frames/s on one core, "concurrent calls analysed per core (tones+VAD)" = frames/s ÷ 50
(a call delivers 50 frames/s), and the decision latency p50/p95 per class over random tone
onsets, levels, codecs, 20 dB noise and 5 % frame loss.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dialer.audio import CallAudioAnalyzer, SitDetected, SpeechPattern, SpeechVerdict, ToneDetected  # noqa: E402
from dialer.audio.toneplan import load_toneplans  # noqa: E402
from tests.audio.synth import (  # noqa: E402
    add_noise,
    codec,
    feed,
    random_drops,
    render_tone,
    rms_dbm0_scale,
    silence,
    synthetic_voice,
    to_int16,
)


def throughput(seconds: float) -> float:
    plans = load_toneplans(ROOT / "config" / "tones.yaml")
    plan = plans.get("ru")
    rng = np.random.default_rng(1)
    # a mix of what calls carry: ringback, busy, speech, line noise (10 s each)
    clips = [
        render_tone(plan.tone("ring"), 10000, -10),
        render_tone(plan.tone("busy"), 10000, -20),
        rms_dbm0_scale(synthetic_voice(10000, rng), -20),
        add_noise(silence(10000), 0, -45, rng),
    ]
    frames = [
        [c[i : i + 160].astype("<i2").tobytes() for i in range(0, len(c), 160)]
        for c in (codec(to_int16(add_noise(c, 30, -20, rng)), "alaw") for c in clips)
    ]
    total = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for k, clip in enumerate(frames):
            a = CallAudioAnalyzer(plan, answered_at_ms=0 if k >= 2 else None)
            for i, f in enumerate(clip):
                a.feed(f, i)
            total += len(clip)
    return total / (time.perf_counter() - start)


def latencies(trials: int) -> dict[str, list[int]]:
    plans = load_toneplans(ROOT / "config" / "tones.yaml")
    out: dict[str, list[int]] = {}
    rng = np.random.default_rng(42)
    for country in ("ru", "us"):
        plan = plans.get(country)
        for name, secs in (("busy", 3), ("congestion", 3), ("info", 3), ("ring", 8)):
            key = f"{country} {name}"
            for _ in range(trials):
                lead = int(rng.integers(100, 400))
                level = float(rng.uniform(-30, 0))
                x = np.concatenate([silence(lead), render_tone(plan.tone(name), secs * 1000, level)])
                x = add_noise(x, 20, level, rng)
                pcm = codec(to_int16(x), str(rng.choice(["none", "ulaw", "alaw"])))
                obs = feed(CallAudioAnalyzer(plan), pcm, drop=random_drops(len(pcm) // 160, 0.05, rng))
                hits = [o for o in obs if isinstance(o, ToneDetected | SitDetected)]
                out.setdefault(key, []).append(hits[0].at_ms - lead if hits else -1)
    plan = plans.get("ru")
    for _ in range(trials):
        lead = int(rng.integers(200, 800))
        greeting = rms_dbm0_scale(synthetic_voice(int(rng.integers(600, 1500)), rng), -20)
        x = add_noise(np.concatenate([silence(lead), greeting, silence(2000)]), 25, -20, rng)
        obs = feed(CallAudioAnalyzer(plan, answered_at_ms=0), codec(to_int16(x), "alaw"))
        verdicts = [o for o in obs if isinstance(o, SpeechPattern)]
        end = lead + len(greeting) * 1000 // 8000
        ok = verdicts and verdicts[0].verdict is SpeechVerdict.PERSON
        out.setdefault("person (after greeting end)", []).append(verdicts[0].at_ms - end if ok else -1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to measure throughput")
    parser.add_argument("--trials", type=int, default=40, help="random cases per latency class")
    args = parser.parse_args()
    fps = throughput(args.seconds)
    print(f"frames/s per core (tones+VAD): {fps:,.0f}  ({1e6 / fps:.1f} µs per 20 ms frame)")
    print(f"concurrent calls analysed per core (tones+VAD): {fps / 50:,.0f}")
    print()
    print(f"decision latency over {args.trials} random cases (level −30..0 dBm0, G.711, 20 dB SNR, 5 % loss):")
    print(f"{'class':32} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'missed':>7}")
    for key, values in latencies(args.trials).items():
        got = np.array([v for v in values if v >= 0])
        missed = sum(1 for v in values if v < 0)
        p50, p95, mx = (np.percentile(got, 50), np.percentile(got, 95), got.max()) if len(got) else (0, 0, 0)
        print(f"{key:32} {p50:8.0f} {p95:8.0f} {mx:8.0f} {missed:7d}")


if __name__ == "__main__":
    main()
