"""Fingerprint matching of known announcements: cost per frame, decision latency, false matches.

Run: .venv/bin/python bench/bench_fingerprint.py [--seconds 10] [--trials 20] [--library-copies 1]

Library: the simulator's recordings (dialer/sim/data/announcements.yaml); ``--library-copies N``
adds N−1 renamed copies of it to see how the cost grows with the library (linear: every position
of every recording is a hypothesis).

Prints frames/s on one core while nothing matches (the worst case: a call's whole early media
is compared), concurrent calls per core (÷ 50 frames/s), then per recording the latency over
random cases (offset start, level −30..0 dBm0, μ-/A-law, 20 dB SNR, 5 % frame loss): audio of the
recording heard before the match (from where the network started playing it), and the misses;
then the false-match run (every recording against a library of the others; other espeak-ng texts,
the person and voicemail clips; tones, silence, noise) with the closest bit error rate seen.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dialer.audio.fingerprint import FingerprintLibrary, FingerprintMatcher, load_library  # noqa: E402
from dialer.sim.audio import DATA_DIR, clip, tone  # noqa: E402
from tests.audio.synth import (  # noqa: E402
    add_noise,
    codec,
    espeak_ru,
    frames_of,
    random_drops,
    rms_dbm0_scale,
    to_int16,
    trim,
)

OTHER_TEXTS = (
    "Номер временно заблокирован.",
    "Номер абонента заблокирован.",
    "Абонент временно заблокирован.",
    "Номер не существует.",
    "Абонент в сети не зарегистрирован.",
    "Аппарат абонента выключен.",
    "Обслуживание номера временно приостановлено.",
    "Здравствуйте, вы позвонили в компанию Василёк. Оставайтесь на линии.",
    "Алло, слушаю.",
    "Добрый день, я вас слушаю.",
)


def samples(name: str) -> np.ndarray:
    return np.frombuffer(clip(name).pcm, dtype="<i2").astype(np.float64)


def copies(lib: FingerprintLibrary, n: int) -> FingerprintLibrary:
    from dataclasses import replace

    recs = [replace(r, name=f"{r.name}#{k}") if k else r for k in range(n) for r in lib.recordings]
    return FingerprintLibrary.build(recs)


def throughput(lib: FingerprintLibrary, seconds: float) -> float:
    rng = np.random.default_rng(1)
    # a call's early media that matches nothing: ringback-like tone, speech of no recording, noise
    x = np.concatenate(
        [
            np.frombuffer(tone("ringback", 5.0), dtype="<i2").astype(np.float64),
            rms_dbm0_scale(samples("voicemail"), -20),
            add_noise(np.zeros(40000), 0, -45, rng),
        ]
    )
    frames = frames_of(codec(to_int16(add_noise(x, 30, -20, rng)), "alaw"))
    total = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        m = FingerprintMatcher(lib)
        for i, pcm in enumerate(frames):
            m.feed(pcm, i)
        total += len(frames)
    return total / (time.perf_counter() - start)


def latency(lib: FingerprintLibrary, trials: int) -> None:
    rng = np.random.default_rng(42)
    print("audio heard until the match, from where the network started playing the recording:")
    print(f"{'recording':16} {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7} {'missed':>6} {'wrong':>6}")
    all_ms: list[float] = []
    for rec in lib.recordings:
        if "#" in rec.name:
            continue
        x = samples(rec.name)
        got: list[float] = []
        missed = wrong = 0
        for _ in range(trials):
            offset = int(rng.integers(0, len(x) // 2))
            lead = int(rng.integers(0, 4000))
            q = np.concatenate([np.zeros(lead), x[offset:], np.zeros(2000), x, x])
            level = float(rng.uniform(-30, 0))
            y = codec(to_int16(add_noise(rms_dbm0_scale(q, level), 20, level, rng)), str(rng.choice(["ulaw", "alaw"])))
            frames = frames_of(y)
            drops = random_drops(len(frames), 0.05, rng)
            m = FingerprintMatcher(lib)
            found = None
            for i, pcm in enumerate(frames):
                if i not in drops and (found := m.feed(pcm, i)) is not None:
                    break
            if found is None:
                missed += 1
            elif found.name.split("#")[0] != rec.name:
                wrong += 1
            else:
                got.append(found.at_ms - lead / 8)
        all_ms += got
        a = np.array(got) if got else np.zeros(1)
        p50, p95 = np.percentile(a, 50), np.percentile(a, 95)
        print(f"{rec.name:16} {p50:7.0f} {p95:7.0f} {a.max():7.0f} {missed:6d} {wrong:6d}")
    a = np.array(all_ms)
    print(f"{'all':16} {np.percentile(a, 50):7.0f} {np.percentile(a, 95):7.0f} {a.max():7.0f}")


def false_matches(lib: FingerprintLibrary) -> None:
    rng = np.random.default_rng(7)
    cases: list[tuple[str, FingerprintLibrary, np.ndarray]] = []
    for rec in lib.recordings:
        others = FingerprintLibrary.build([r for r in lib.recordings if r.name != rec.name])
        cases.append((f"recording {rec.name} vs the others", others, samples(rec.name)))
    if shutil.which("espeak-ng"):
        with tempfile.TemporaryDirectory() as d:
            for i, text in enumerate(OTHER_TEXTS):
                cases.append((f"espeak «{text}»", lib, trim(espeak_ru(text, Path(d) / f"{i}.wav", speed_wpm=150))))
    for name in ("person_hello", "person_again", "voicemail"):
        cases.append((f"clip {name}", lib, samples(name)))
    for name in ("busy", "congestion", "ringback", "sit", "beep"):
        cases.append((f"tone {name}", lib, np.frombuffer(tone(name, 6.0), dtype="<i2").astype(np.float64)))
    cases.append(("silence", lib, np.zeros(48000)))
    cases.append(("white noise", lib, rng.normal(0, 2000, 48000)))
    matched = 0
    closest_all = 1.0
    for what, library, x in cases:
        q = np.concatenate([x, np.zeros(1000), x])
        for law, snr in (("none", None), ("ulaw", 20.0)):
            y = rms_dbm0_scale(q, -15) if np.any(q) else q
            if snr is not None:
                y = add_noise(y, snr, -15, rng)
            m = FingerprintMatcher(library)
            found = None
            closest = 1.0
            for i, pcm in enumerate(frames_of(codec(to_int16(y), law))):
                found = m.feed(pcm, i)
                c = m.closest()
                closest = min(closest, c[0]) if c else closest
                if found is not None:
                    break
            if found is not None:
                matched += 1
                print(f"  FALSE MATCH: {what} ({law}) → {found}")
            elif closest < 0.2:
                print(f"  near: {what} ({law}): bit error rate {closest:.3f} (refused: above 0.13 or a stretch check)")
            closest_all = min(closest_all, closest)
    print(f"false matches: {matched} of {2 * len(cases)} runs")
    print(f"lowest bit error rate of any hypothesis that ran long enough: {closest_all:.3f} (accepts ≤ 0.13)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--library-copies", type=int, default=1)
    args = parser.parse_args()
    base = load_library(DATA_DIR)
    lib = copies(base, args.library_copies)
    n_pos = sum(len(fp) for r in lib.recordings for fp in r.prints)
    print(f"library: {len(lib)} recordings, {n_pos} hypothesis positions")
    fps = throughput(lib, args.seconds)
    print(f"frames/s per core (fingerprints, nothing matching): {fps:,.0f}  ({1e6 / fps:.0f} µs per 20 ms frame)")
    print(f"concurrent calls matched per core: {fps / 50:,.0f}")
    print()
    print(f"latency over {args.trials} random cases per recording (offset, −30..0 dBm0, G.711, 20 dB SNR, 5 % loss):")
    latency(lib, args.trials)
    print()
    false_matches(base)


if __name__ == "__main__":
    main()
