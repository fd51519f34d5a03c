"""Voice activity in noise: the energy VAD against Silero VAD, same calls, same run.

Run: .venv/bin/python bench/bench_vad.py [--greetings 48] [--seed 7]
(needs espeak-ng, festival and sox for the voices, and the Silero model: it is pulled with
``dialer models pull silero-vad``'s verified path when missing).

Greetings: the person greetings of the corpus generator (dialer/corpus/texts.py, «Да?» to
«здравствуйте / а кто это / говорите пожалуйста», inner pauses 100–800 ms) in festival's Russian
voice as seven speakers and espeak-ng at two speeds, plus the simulator's person clips
(dialer/sim/data). Each call: the answer, 0.3–2.5 s of the line alone (a slow answerer), the
greeting at −30..−10 dBm0 (−40 dBm0 for the quiet conditions), 3 s of the line waiting for us,
through A-law. Conditions: clean (line hiss at −70 dBm0), pink / brown / babble / street noise at
20, 15, 10 and 5 dB SNR (against the greeting's active level), quiet speech at −40 dBm0 (clean and
in babble at 15 dB). Noise-only calls (each noise at −45..−25 dBm0, 6 s) and silence give the
false positives.

Per condition and detector:

* ``frame recall``: speech frames of the greeting (frames of the clean greeting within 20 dB of
  its active level) inside a detected segment (segments as the session sees them: onset
  back-dated, hangover included);
* ``FP``: frames of the line alone (before the greeting, and from 0.4 s after it) inside one;
* ``seen``: the greeting seen as speech by the session's speech-pattern classifier (any verdict
  but SILENCE — a person the classifier calls silence is a person hung up on);
* ``person``: the classifier's verdict PERSON (handed over at once; UNSURE also reaches an
  operator).

Noise-only calls: ``speech seen`` = the classifier heard speech on a line with none.
Then frames/s per core of each detector's per-frame work (process CPU time; the power spectrum
and level are shared with the tone detectors and computed outside the timing).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dialer.asr.models import SILERO_VAD_MODEL, ensure_installed  # noqa: E402
from dialer.audio.frames import FRAME_MS  # noqa: E402
from dialer.audio.g711 import alaw_roundtrip  # noqa: E402
from dialer.audio.levels import level_dbm0, power_spectrum  # noqa: E402
from dialer.audio.silero import MODEL_FILE, SileroModel, SileroVad  # noqa: E402
from dialer.audio.speech import SpeechPatternClassifier  # noqa: E402
from dialer.audio.vad import Vad  # noqa: E402
from dialer.corpus.audio import FloatArray, NoiseKind, active_rms, dbm0_to_rms, ms_to_samples, noise, voiced_bounds  # noqa: E402
from dialer.corpus.generate import babble_requests  # noqa: E402
from dialer.corpus.texts import PAUSE_MARK, PERSON_GREETINGS  # noqa: E402
from dialer.corpus.tts import SPEAKERS, Say, Synthesiser, Voice  # noqa: E402
from dialer.domain.model import SpeechVerdict  # noqa: E402
from dialer.sim.audio import clip, tone  # noqa: E402

NOISES: tuple[NoiseKind, ...] = ("pink", "brown", "babble", "street")
SNRS_DB = (20, 15, 10, 5)
QUIET_DBM0 = -40.0
LINE_HISS_DBM0 = -70.0
AFTER_MS = 3000
FP_GUARD_MS = 400  # after the greeting's end: the hangover's and a breath's time, not a false positive


@dataclass(frozen=True)
class Condition:
    name: str
    noise: NoiseKind | None  # None: line hiss only
    snr_db: float | None = None
    level_dbm0: float | None = None  # fixed speech level (quiet); None: −30..−10 dBm0


@dataclass
class Call:
    pcm: FloatArray  # int16 units after A-law
    speech_frames: np.ndarray  # type: ignore[type-arg]  # bool per frame: truth
    line_frames: np.ndarray  # type: ignore[type-arg]  # bool per frame: the line alone (FP territory)


@dataclass
class Tally:
    speech: int = 0
    speech_hit: int = 0
    line: int = 0
    line_hit: int = 0
    calls: int = 0
    seen: int = 0
    person: int = 0
    frames: int = 0
    cpu_s: float = 0.0


def conditions() -> list[Condition]:
    out = [Condition("clean", None)]
    out += [Condition(f"{n} {s} dB", n, s) for n in NOISES for s in SNRS_DB]
    out += [
        Condition("quiet −40 dBm0", None, None, QUIET_DBM0),
        Condition("quiet −40 + babble 15 dB", "babble", 15, QUIET_DBM0),
    ]
    return out


def greetings(synth: Synthesiser, rng: np.random.Generator) -> list[FloatArray]:
    """Every greeting text in every voice (inner pauses drawn 100–800 ms), and the sim's persons."""
    voices = [Voice("festival", 100, speaker=sp) for sp in SPEAKERS] + [
        Voice("espeak", 150, 50),
        Voice("espeak", 185, 70),
    ]
    says = [Say(v, part.strip()) for v in voices for g in PERSON_GREETINGS for part in g.split(PAUSE_MARK)]
    synth.synthesise(says + babble_requests())
    out: list[FloatArray] = []
    for v in voices:
        for g in PERSON_GREETINGS:
            pieces: list[FloatArray] = []
            for k, part in enumerate(g.split(PAUSE_MARK)):
                if k:
                    pieces.append(np.zeros(ms_to_samples(int(rng.integers(100, 801)))))
                pcm = synth.get(Say(v, part.strip()))
                a, b = voiced_bounds(pcm)
                pieces.append(pcm[a:b].astype(np.float64))
            out.append(np.concatenate(pieces))
    for name in ("person_hello", "person_again"):
        pcm = np.frombuffer(clip(name).pcm, dtype="<i2")
        a, b = voiced_bounds(pcm)
        out.append(pcm[a:b].astype(np.float64))
    return out


def frame_levels(x: FloatArray) -> FloatArray:
    n = len(x) // 160
    f = x[: n * 160].reshape(n, 160)
    return np.array([level_dbm0(float(r @ r) / 160) for r in f])


def make_call(
    greeting: FloatArray, cond: Condition, rng: np.random.Generator, babble_voices: Sequence[FloatArray]
) -> Call:
    level = cond.level_dbm0 if cond.level_dbm0 is not None else float(rng.uniform(-30, -10))
    speech = greeting * (dbm0_to_rms(level) / active_rms(greeting))
    lead_ms = int(rng.integers(15, 126)) * FRAME_MS  # 0.3–2.5 s, whole frames
    lead, tail = ms_to_samples(lead_ms), ms_to_samples(AFTER_MS)
    clean = np.concatenate([np.zeros(lead), speech, np.zeros(tail)])
    clean = clean[: len(clean) // 160 * 160]
    n = len(clean)
    line = noise("white", n, rng) * dbm0_to_rms(LINE_HISS_DBM0)
    if cond.noise is not None and cond.snr_db is not None:
        line = line + noise(cond.noise, n, rng, babble_voices) * dbm0_to_rms(level - cond.snr_db)
    pcm = alaw_roundtrip(np.clip(np.round(clean + line), -32768, 32767).astype(np.int16)).astype(np.float64)
    levels = frame_levels(clean)
    active_dbm0 = 20 * np.log10(max(1e-9, active_rms(speech)) / dbm0_to_rms(0.0))
    speech_frames = levels >= active_dbm0 - 20
    nf = len(levels)
    idx = np.arange(nf)
    end_frame = (lead + len(speech)) // 160
    line_frames = (idx < lead // 160) | (idx >= end_frame + FP_GUARD_MS // FRAME_MS)
    return Call(pcm, speech_frames, line_frames)


def noise_only_call(
    kind: NoiseKind | Literal["silence"], rng: np.random.Generator, babble_voices: Sequence[FloatArray]
) -> Call:
    n = ms_to_samples(6000)
    x = noise("white", n, rng) * dbm0_to_rms(LINE_HISS_DBM0)
    if kind != "silence":
        x = x + noise(kind, n, rng, babble_voices) * dbm0_to_rms(float(rng.uniform(-45, -25)))
    pcm = alaw_roundtrip(np.clip(np.round(x), -32768, 32767).astype(np.int16)).astype(np.float64)
    nf = n // 160
    return Call(pcm, np.zeros(nf, dtype=bool), np.ones(nf, dtype=bool))


def run(call: Call, vad: Vad, tally: Tally) -> None:
    """Feed the call slot by slot as the analyser does; score segments and the classifier."""
    x = call.pcm
    nf = len(call.speech_frames)
    frames = [x[i * 160 : (i + 1) * 160] for i in range(nf)]
    powers = [power_spectrum(f) for f in frames]
    levels = [level_dbm0(float(f @ f) / 160) for f in frames]
    cls = SpeechPatternClassifier(0)
    segments: list[tuple[int, int]] = []
    open_at: int | None = None
    verdict: SpeechVerdict | None = None
    cpu = 0.0
    for i in range(nf):
        t0 = time.process_time()
        events = vad.push(powers[i], levels[i], i * FRAME_MS, frames[i])
        cpu += time.process_time() - t0
        for e in events:
            if e.started:
                open_at = e.at_ms
            elif open_at is not None:
                segments.append((open_at, e.at_ms))
                open_at = None
        d = cls.tick((i + 1) * FRAME_MS, vad.in_speech, vad.segment_start_ms, vad.last_active_end_ms)
        if d is not None and verdict is None:
            verdict = d.verdict
    if open_at is not None:
        segments.append((open_at, nf * FRAME_MS))
    detected = np.zeros(nf, dtype=bool)
    for a, b in segments:
        detected[a // FRAME_MS : -(-b // FRAME_MS)] = True
    tally.speech += int(call.speech_frames.sum())
    tally.speech_hit += int((detected & call.speech_frames).sum())
    tally.line += int(call.line_frames.sum())
    tally.line_hit += int((detected & call.line_frames).sum())
    tally.calls += 1
    seen = (verdict is not None and verdict is not SpeechVerdict.SILENCE) or (verdict is None and bool(segments))
    tally.seen += int(seen)
    tally.person += int(verdict is SpeechVerdict.PERSON)
    tally.frames += nf
    tally.cpu_s += cpu


def pct(a: int, b: int) -> str:
    return f"{100.0 * a / b:5.1f}" if b else "    –"


Detectors = dict[str, Callable[[], Vad]]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("--greetings", type=int, default=48, help="greetings per condition (drawn from all)")
    ap.add_argument("--noise-calls", type=int, default=12, help="noise-only calls per kind")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)

    model_dir = ensure_installed(SILERO_VAD_MODEL, log=print)
    t0 = time.perf_counter()
    model = SileroModel.load(model_dir / MODEL_FILE)
    print(f"silero model loaded in {1000 * (time.perf_counter() - t0):.0f} ms")
    detectors: Detectors = {"energy": Vad, "silero": lambda: SileroVad(model)}

    rng = np.random.default_rng(args.seed)
    synth = Synthesiser()
    t0 = time.perf_counter()
    pool = greetings(synth, rng)
    babble_voices = [synth.get(s).astype(np.float64) for s in babble_requests()]
    print(f"{len(pool)} greetings synthesised in {time.perf_counter() - t0:.0f} s")

    totals: dict[str, Tally] = defaultdict(Tally)
    _greeting_conditions(detectors, pool, rng, babble_voices, args.greetings, totals)
    _line_alone(detectors, rng, babble_voices, args.noise_calls, totals)
    _ringback(detectors, rng)
    print("\ncost (this run, one core: onnxruntime runs one thread)")
    for name in detectors:
        t = totals[name]
        fps = t.frames / t.cpu_s if t.cpu_s else float("inf")
        print(f"  {name:<7} {fps:10.0f} frames/s per core = {fps / 50:6.0f} calls in real time per core")
    return 0


def _greeting_conditions(
    detectors: Detectors,
    pool: list[FloatArray],
    rng: np.random.Generator,
    babble_voices: Sequence[FloatArray],
    n_greetings: int,
    totals: dict[str, Tally],
) -> None:
    """Greetings under every condition: a line per condition and detector, then the totals."""
    print(f"\n{'condition':<26} {'VAD':<7} {'frame recall %':>14} {'FP %':>6} {'seen %':>7} {'person %':>8}  calls")
    for cond in conditions():
        picks = rng.choice(len(pool), size=min(n_greetings, len(pool)), replace=False)
        calls = [make_call(pool[int(k)], cond, rng, babble_voices) for k in picks]
        for name, new in detectors.items():
            t = Tally()
            for c in calls:
                run(c, new(), t)
            tot = totals[name]
            for f in ("speech", "speech_hit", "line", "line_hit", "calls", "seen", "person", "frames"):
                setattr(tot, f, getattr(tot, f) + getattr(t, f))
            tot.cpu_s += t.cpu_s
            print(
                f"{cond.name:<26} {name:<7} {pct(t.speech_hit, t.speech):>14} {pct(t.line_hit, t.line):>6} "
                f"{pct(t.seen, t.calls):>7} {pct(t.person, t.calls):>8}  {t.calls}"
            )
    for name in detectors:
        t = totals[name]
        print(
            f"{'all greetings':<26} {name:<7} {pct(t.speech_hit, t.speech):>14} {pct(t.line_hit, t.line):>6} "
            f"{pct(t.seen, t.calls):>7} {pct(t.person, t.calls):>8}  {t.calls}"
        )


def _line_alone(
    detectors: Detectors,
    rng: np.random.Generator,
    babble_voices: Sequence[FloatArray],
    n_calls: int,
    totals: dict[str, Tally],
) -> None:
    """Noise-only calls of each kind (and silence): false positives."""
    print(f"\n{'line alone (6 s)':<26} {'VAD':<7} {'FP frames %':>14} {'speech seen %':>14}  calls")
    kinds: tuple[NoiseKind | Literal["silence"], ...] = ("silence", *NOISES)
    for kind in kinds:
        calls = [noise_only_call(kind, rng, babble_voices) for _ in range(n_calls)]
        for name, new in detectors.items():
            t = Tally()
            for c in calls:
                run(c, new(), t)
            totals[name].frames += t.frames
            totals[name].cpu_s += t.cpu_s
            print(f"{kind:<26} {name:<7} {pct(t.line_hit, t.line):>14} {pct(t.seen, t.calls):>14}  {t.calls}")


def _ringback(detectors: Detectors, rng: np.random.Generator) -> None:
    # Ringback is much of a call's audio: steady-tone windows are not shown to the model.
    clean_ring = np.frombuffer(tone("ringback", 30.0), dtype="<i2").astype(np.float64)
    ring = alaw_roundtrip(
        np.round(clean_ring + noise("white", len(clean_ring), rng) * dbm0_to_rms(LINE_HISS_DBM0)).astype(np.int16)
    ).astype(np.float64)
    ring_call = Call(ring, np.zeros(len(ring) // 160, dtype=bool), np.ones(len(ring) // 160, dtype=bool))
    for name, new in detectors.items():
        t = Tally()
        run(ring_call, new(), t)
        print(
            f"{'ringback (30 s)':<26} {name:<7} {pct(t.line_hit, t.line):>14} {'':>14}  "
            f"{t.frames / t.cpu_s:.0f} frames/s"
        )


if __name__ == "__main__":
    raise SystemExit(main())
