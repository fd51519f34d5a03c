"""``dialer models pull [NAME]`` and ``dialer models list``: speech models for offline ASR."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dialer.asr.models import DEFAULT_MODEL, MANIFEST, MODELS_DIR, installed_path, load_manifest, pull_model
from dialer.commands.common import CliContext, Subparsers
from dialer.errors import InputError


def register(subparsers: Subparsers) -> None:
    md = subparsers.add_parser(
        "models", help="speech models", description="Speech models for offline recognition (asr_models/)."
    )
    verbs = md.add_subparsers(dest="models_command", metavar="VERB", required=True)
    pull = verbs.add_parser(
        "pull",
        help="download and verify a model",
        description="Download a model listed in asr_models/manifest.json, verify its size and SHA-256, "
        "and unpack it into DEST/NAME/ (needs the internet).",
    )
    pull.add_argument("name", nargs="?", default=DEFAULT_MODEL, metavar="NAME", help=f"default {DEFAULT_MODEL}")
    pull.add_argument("--dest", type=Path, default=MODELS_DIR, metavar="DIR", help="default asr_models/")
    pull.add_argument("--manifest", type=Path, default=MANIFEST, metavar="PATH", help=argparse.SUPPRESS)
    pull.add_argument(
        "--accept-unverified",
        action="store_true",
        help="install even when the manifest has no SHA-256 for the model (prints the checksum to record)",
    )
    pull.set_defaults(handler=_pull)
    ls = verbs.add_parser("list", help="models in the manifest and whether installed")
    ls.add_argument("--dest", type=Path, default=MODELS_DIR, metavar="DIR", help="default asr_models/")
    ls.add_argument("--manifest", type=Path, default=MANIFEST, metavar="PATH", help=argparse.SUPPRESS)
    ls.set_defaults(handler=_list)


class _Progress:
    def __init__(self) -> None:
        self.last_pct = -1

    def __call__(self, done: int, total: int | None) -> None:
        if total:
            pct = min(100, done * 100 // total)
            if pct != self.last_pct and pct % 5 == 0:
                self.last_pct = pct
                print(f"\r  {done / 1e6:6.1f} / {total / 1e6:.1f} MB  {pct:3d}%", end="", file=sys.stderr, flush=True)


async def _pull(args: argparse.Namespace, ctx: CliContext) -> int:
    manifest = load_manifest(args.manifest)
    entry = manifest.get(args.name)
    if entry is None:
        raise InputError(f"no model {args.name!r} in {args.manifest} (known: {', '.join(sorted(manifest))})")
    print(f"downloading {entry.name} from {entry.url}", file=sys.stderr)
    path = pull_model(entry, args.dest, accept_unverified=args.accept_unverified, progress=_Progress())
    print(file=sys.stderr)
    marker = path / ".dialer-model.json"
    print(f"installed {entry.name} at {path}")
    if not entry.verifiable and marker.exists():
        print(f"UNVERIFIED: record this in the manifest if you trust the source: {marker.read_text(encoding='utf-8')}")
    return 0


async def _list(args: argparse.Namespace, ctx: CliContext) -> int:
    for entry in load_manifest(args.manifest).values():
        where = installed_path(entry.name, args.dest)
        size = f"{'≈' if entry.size_approximate else ''}{(entry.size_bytes or 0) / 1e6:.0f} MB"
        check = "sha256 " + entry.sha256[:12] + "…" if entry.sha256 else "no sha256 (unverified)"
        print(f"{entry.name}\t{size}\t{check}\t{'installed at ' + str(where) if where else 'not installed'}")
    return 0
