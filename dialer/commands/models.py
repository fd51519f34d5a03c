"""``dialer models pull [NAME]``, ``dialer models list``, ``dialer models verify [NAME]``: speech
models for offline ASR."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dialer.asr.models import (
    DEFAULT_MODEL,
    MANIFEST,
    MODELS_DIR,
    ModelEntry,
    installed_path,
    load_manifest,
    pull_model,
    verify_installed,
)
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
        description="Fetch a model listed in asr_models/manifest.json from the first of its sources that "
        "answers, check every byte against the manifest (size and SHA-256 of each file), and install it "
        "into DEST/NAME/ with one rename. A wrong byte installs nothing.",
    )
    pull.add_argument("name", nargs="?", default=DEFAULT_MODEL, metavar="NAME", help=f"default {DEFAULT_MODEL}")
    pull.add_argument("--dest", type=Path, default=MODELS_DIR, metavar="DIR", help="default asr_models/")
    pull.add_argument("--manifest", type=Path, default=MANIFEST, metavar="PATH", help=argparse.SUPPRESS)
    pull.add_argument("--force", action="store_true", help="fetch again even when installed")
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
    vf = verbs.add_parser("verify", help="check every byte of an installed model against the manifest")
    vf.add_argument("name", nargs="?", default=DEFAULT_MODEL, metavar="NAME", help=f"default {DEFAULT_MODEL}")
    vf.add_argument("--dest", type=Path, default=MODELS_DIR, metavar="DIR", help="default asr_models/")
    vf.add_argument("--manifest", type=Path, default=MANIFEST, metavar="PATH", help=argparse.SUPPRESS)
    vf.set_defaults(handler=_verify)


class _Progress:
    def __init__(self) -> None:
        self.last: tuple[str, int] = ("", -1)

    def __call__(self, what: str, done: int, total: int | None) -> None:
        if total and not sys.stderr.isatty():
            if done >= total and self.last != (what, 100):
                self.last = (what, 100)
                print(f"  {what}: {done / 1e6:.1f} MB", file=sys.stderr)
            return
        if total:
            pct = min(100, done * 100 // total)
            if (what, pct) != self.last and pct % 10 == 0:
                self.last = (what, pct)
                end = "\n" if pct == 100 else ""
                print(f"\r  {what}: {done / 1e6:6.1f} / {total / 1e6:.1f} MB {pct:3d}%", end=end, file=sys.stderr)


def _entry(args: argparse.Namespace) -> ModelEntry:
    manifest = load_manifest(args.manifest)
    entry = manifest.get(args.name)
    if entry is None:
        raise InputError(f"no model {args.name!r} in {args.manifest} (known: {', '.join(sorted(manifest))})")
    return entry


async def _pull(args: argparse.Namespace, ctx: CliContext) -> int:
    entry = _entry(args)
    if installed_path(entry, args.dest) is not None and not args.force:
        print(f"{entry.name} is installed at {args.dest / entry.name}")
        return 0
    print(f"fetching {entry.name} ({', '.join(s.label for s in entry.sources)})", file=sys.stderr)
    path = pull_model(
        entry,
        args.dest,
        accept_unverified=args.accept_unverified,
        progress=_Progress(),
        force=args.force,
        log=lambda msg: print(msg, file=sys.stderr),
    )
    marker = path / ".dialer-model.json"
    checked = f"{len(entry.files)} files verified" if entry.files else "archive verified"
    print(f"installed {entry.name} at {path} ({checked})")
    if not entry.verifiable and marker.exists():
        print(f"UNVERIFIED: record this in the manifest if you trust the source: {marker.read_text(encoding='utf-8')}")
    return 0


async def _list(args: argparse.Namespace, ctx: CliContext) -> int:
    for entry in load_manifest(args.manifest).values():
        where = installed_path(entry, args.dest)
        size = f"{'≈' if entry.size_approximate else ''}{(entry.size_bytes or 0) / 1e6:.0f} MB"
        check = f"{len(entry.files)} files with sha256" if entry.verifiable else "no sha256 (unverified)"
        state = "installed at " + str(where) if where else "not installed"
        print(f"{entry.name}\t{entry.engine}\t{size}\t{check}\t{state}")
    return 0


async def _verify(args: argparse.Namespace, ctx: CliContext) -> int:
    entry = _entry(args)
    if installed_path(entry, args.dest) is None:
        raise InputError(f"{entry.name} is not installed in {args.dest} (dialer models pull {entry.name})")
    if not entry.files:
        raise InputError(f"the manifest lists no files of {entry.name}: nothing to verify byte by byte")
    problems = verify_installed(entry, args.dest)
    for p in problems:
        print(f"{entry.name}: {p}", file=sys.stderr)
    if problems:
        return 1
    print(f"{entry.name}: {len(entry.files)} files match the manifest")
    return 0
