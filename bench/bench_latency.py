"""Decision latency p50/p95 per class over a generated corpus, through the whole offline pipeline
(tone/VAD analysis + fusion; + Vosk and the phrase matcher when --model is given).

Run: .venv/bin/python bench/bench_latency.py [--corpus DIR | --seed N [--small]] [--model PATH]

Without --corpus a corpus is generated into a temporary directory (needs espeak-ng, sox, festival).
Prints, per expected class, the decision latency from the start of the audio and from the end of
the discriminating word (tone onset for tones, greeting end for a person, ring timeout for no
answer, the answer for silence), and the replay speed (real-time factor) of the pipeline.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dialer.asr.catalogue import load_catalogue  # noqa: E402
from dialer.asr.matcher import PhraseMatcher  # noqa: E402
from dialer.audio import load_toneplans  # noqa: E402
from dialer.corpus.evaluate import build_report, evaluate_corpus  # noqa: E402
from dialer.corpus.generate import FULL, SMALL, generate  # noqa: E402
from dialer.corpus.labels import read_labels  # noqa: E402
from dialer.session.session import SessionSetup  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, help="an existing corpus directory")
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--model", type=Path, help="Vosk model directory (decodes every call: slow)")
    ap.add_argument("--catalogue", type=Path, default=ROOT / "config" / "phrases.yaml")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="dialer-bench-") as tmp:
        corpus = args.corpus
        if corpus is None:
            corpus = Path(tmp) / "corpus"
            t0 = time.perf_counter()
            generate(corpus, seed=args.seed, size=SMALL if args.small else FULL)
            print(f"generated {corpus} (seed {args.seed}) in {time.perf_counter() - t0:.1f} s")
        catalogue = load_catalogue(args.catalogue)
        setup = SessionSetup(load_toneplans(ROOT / "config" / "tones.yaml").get(), matcher=PhraseMatcher(catalogue))
        engine = None
        if args.model is not None:
            from dialer.asr.vosk_engine import VoskEngine

            engine = VoskEngine(args.model, catalogue)
            engine.load()
        durations = {label.id: label.duration_ms for label in read_labels(corpus)}
        t0 = time.perf_counter()
        outcomes = evaluate_corpus(corpus, setup, engine=engine)
        cpu_s = time.perf_counter() - t0
        report = build_report(outcomes, model=engine is not None, runtime_s=cpu_s)
    # the replay stops at the decision: count the audio actually analysed
    audio_s = sum(min(durations[o.id], o.decided_at_ms or durations[o.id]) for o in outcomes) / 1000

    print(
        f"{len(outcomes)} calls, {audio_s:.0f} s of audio (up to each decision) replayed in {cpu_s:.2f} s on one core "
        f"(real-time factor {cpu_s / audio_s:.4f}; ≈{audio_s / cpu_s:.0f} concurrent calls per core "
        f"for the call session{' +ASR' if engine else ''}, file reading included)"
    )
    print("speech model:", args.model or "none (network + tones + VAD)")
    print()
    print(
        f"{'expected class':30} {'n':>4} {'correct':>7} {'from start p50':>14} {'p95':>6} "
        f"{'from disc p50':>13} {'p95':>6}"
    )
    for cls, lat in report.latency.items():
        correct = sum(1 for o in outcomes if o.expected.value == cls and o.decided is o.expected)

        def f(v: float | None) -> str:
            return "-" if v is None else f"{v:.0f}"

        print(
            f"{cls:30} {lat.n:4d} {correct:7d} {f(lat.p50_start_ms):>14} {f(lat.p95_start_ms):>6} "
            f"{f(lat.p50_disc_ms):>13} {f(lat.p95_disc_ms):>6}"
        )
    print("\nms; nearest-rank percentiles over decided calls. Without a model, announcement latency is")
    print("the network's hang-up (the decision is cause-based).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
