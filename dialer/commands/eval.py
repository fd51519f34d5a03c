"""``dialer eval DIR [--model PATH] [--catalogue PATH] [--thresholds FILE] [--labels FILE]``.

Replays every call of a labelled corpus (``dialer corpus generate``) or of labelled call recordings
(``[recording]``, labels from ``dialer label`` or ``--labels``) through the worker's call session,
prints precision/recall, the confusion matrix and decision latencies, and exits 1 when a threshold
of ``config/eval_thresholds.yaml`` (or ``--thresholds``) is not met.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import replace
from pathlib import Path

from dialer.app import session_setup
from dialer.asr.catalogue import load_catalogue
from dialer.asr.matcher import PhraseMatcher
from dialer.asr.port import RecognizerEngine
from dialer.asr.select import engine_from_settings
from dialer.audio import load_toneplans
from dialer.commands.common import CliContext, Subparsers
from dialer.config import DEFAULT_CONFIG_DIR, Settings
from dialer.corpus.evaluate import (
    build_report,
    check,
    evaluate_corpus,
    evaluate_recordings,
    format_calls,
    format_report,
    load_thresholds,
    read_recording_labels,
)
from dialer.corpus.labels import LABELS_FILE
from dialer.errors import AsrUnavailable, InputError

DEFAULT_THRESHOLDS = DEFAULT_CONFIG_DIR / "eval_thresholds.yaml"
NO_MODEL_NOTE = "no speech model: evaluating with network+tone+VAD signals only"
EXIT_BELOW_THRESHOLD = 1


def register(subparsers: Subparsers) -> None:
    ev = subparsers.add_parser(
        "eval",
        help="evaluate the call analysis over a labelled corpus",
        description="Replay every call of CORPUS_DIR (made by `dialer corpus generate`) through the call "
        "analysis and print per-class precision/recall, the confusion matrix and decision latencies. "
        "Exit status 1 when a threshold is not met.",
    )
    ev.add_argument("corpus_dir", type=Path, metavar="DIR", help="a generated corpus, or call recordings")
    ev.add_argument(
        "--labels", type=Path, metavar="FILE", help='recordings: JSON lines {"attempt_id": …, "call_class": …}'
    )
    ev.add_argument(
        "--model", type=Path, metavar="PATH", help="a Whisper or Vosk model directory (default: [asr] in the settings)"
    )
    ev.add_argument("--no-model", action="store_true", help="no speech recognition, whatever is installed")
    ev.add_argument("--catalogue", type=Path, metavar="PATH", help="phrase catalogue (default: settings)")
    ev.add_argument("--thresholds", type=Path, metavar="FILE", help=f"thresholds (default {DEFAULT_THRESHOLDS})")
    ev.add_argument("--tones", metavar="COUNTRY", help="tone plan (default: the tones file's default)")
    ev.add_argument("--show-calls", action="store_true", help="list every call not decided as expected")
    ev.set_defaults(handler=_eval)


async def _eval(args: argparse.Namespace, ctx: CliContext) -> int:
    settings = ctx.settings
    # file reading, model loading and decoding are blocking: one worker thread does it all
    return await asyncio.to_thread(run_eval, args, settings)


def run_eval(args: argparse.Namespace, settings: Settings) -> int:
    corpus_dir: Path = args.corpus_dir
    if not corpus_dir.is_dir():
        raise InputError(f"{corpus_dir}: not a directory")
    th_path: Path = args.thresholds or DEFAULT_THRESHOLDS
    thresholds = load_thresholds(th_path)
    # The worker's own decision path and settings, without the known-recordings library: the
    # generated corpus speaks with synthetic voices, not the carriers' recordings.
    catalogue = load_catalogue(args.catalogue or settings.phrases_path)
    asr = (
        settings.asr
        if args.model is None
        else replace(settings.asr, engine="auto", whisper_model_path=args.model, model_path=args.model)
    )
    engine: RecognizerEngine | None = None
    if not args.no_model:
        engine, why = engine_from_settings(asr, catalogue)
        if engine is None and args.model is not None:
            raise AsrUnavailable(f"{args.model}: no Whisper or Vosk model there")
    if engine is not None:
        engine.load()
        print(f"speech model: {why}; catalogue: {catalogue.source} ({len(catalogue)} phrases)")
    else:
        print(NO_MODEL_NOTE)
    plan = load_toneplans(settings.tones_path).get(args.tones)
    setup = replace(
        session_setup(settings, engine=engine), plan=plan, matcher=PhraseMatcher(catalogue), fingerprints=None
    )
    started = time.monotonic()
    if (corpus_dir / LABELS_FILE).exists():
        outcomes = evaluate_corpus(corpus_dir, setup, engine=engine)
    else:
        labels = read_recording_labels(args.labels) if args.labels is not None else None
        outcomes, unlabelled = evaluate_recordings(corpus_dir, setup, labels=labels, engine=engine)
        print(f"recorded calls: {len(outcomes)} labelled, {unlabelled} left out (no label)")
        if not outcomes:
            raise InputError(f"{corpus_dir}: no labelled corpus or recorded calls there")
    report = build_report(outcomes, model=engine is not None, runtime_s=time.monotonic() - started)
    failures = check(report, thresholds)
    print(format_report(report, failures))
    if args.show_calls:
        wrong = format_calls(outcomes)
        print("\nCalls not decided as expected:\n" + (wrong or "  none"))
    print(f"thresholds: {thresholds.source}")
    return EXIT_BELOW_THRESHOLD if failures else 0
