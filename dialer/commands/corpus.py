"""``dialer corpus generate OUT_DIR [--small] [--seed N]``: labelled test calls for ``dialer eval``."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from dialer.commands.common import CliContext, Subparsers
from dialer.corpus.generate import FULL, SMALL, generate


def register(subparsers: Subparsers) -> None:
    corpus = subparsers.add_parser(
        "corpus",
        help="labelled test calls",
        description="Labelled test calls for the call-progress analysis (festival's Russian voice as several "
        "speakers, espeak-ng for safety checks, tones of config/tones.yaml, sox for 8 kHz, G.711 and noise).",
    )
    verbs = corpus.add_subparsers(dest="corpus_command", metavar="VERB", required=True)
    gen = verbs.add_parser(
        "generate",
        help="generate a corpus",
        description="Write OUT_DIR/<id>.wav (8 kHz 16-bit mono) and OUT_DIR/labels.jsonl. "
        "Needs espeak-ng, sox and festival with festvox-ru on PATH.",
    )
    gen.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    gen.add_argument("--small", action="store_true", help="a CI-sized corpus (~90 calls; the full one has ~350)")
    gen.add_argument("--seed", type=int, default=1, help="random seed (same seed, same corpus; default 1)")
    gen.set_defaults(handler=_generate)


async def _generate(args: argparse.Namespace, ctx: CliContext) -> int:
    started = time.monotonic()

    def say(msg: str) -> None:
        print(msg, file=sys.stderr)

    # synthesis and sox are subprocesses and numpy: keep them off the event loop
    labels = await asyncio.to_thread(
        generate, args.out_dir, seed=args.seed, size=SMALL if args.small else FULL, progress=say
    )
    counts: dict[str, int] = {}
    for label in labels:
        counts[label.call_class.value] = counts.get(label.call_class.value, 0) + 1
    audio_s = sum(label.duration_ms for label in labels) / 1000
    print(f"{len(labels)} calls ({audio_s:.0f} s of audio) in {args.out_dir}, {time.monotonic() - started:.1f} s")
    for cls, n in sorted(counts.items()):
        print(f"  {cls:32} {n}")
    return 0
