"""``dialer init DIR``: write a starter configuration — the shipped settings file and every data
file it names (rules, phrases, tones, own numbers, region zones, known announcements) — into DIR,
for ``dialer --config DIR/dialer.toml`` or /etc/dialer."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from dialer.commands.common import CliContext, Subparsers
from dialer.config import DEFAULT_CONFIG_DIR, load_settings
from dialer.errors import InputError

# Files of the shipped configuration that are samples for the demo and tests, not a starter's.
NOT_COPIED = frozenset({"demo_campaign.csv", "sample_campaign.csv", "eval_thresholds.yaml"})


def register(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "init",
        help="write a starter configuration into a directory",
        description="Writes dialer.toml and the data files it names (rules.yaml, phrases.yaml, tones.yaml, "
        "own_numbers.txt, region_zones.yaml, announcements/) into DIR. The worker's own files (the SQLite "
        "database, recordings, speech models) go under --state-dir. Existing files are kept unless --force.",
    )
    p.add_argument("dir", type=Path, metavar="DIR")
    p.add_argument(
        "--state-dir", type=Path, metavar="PATH", help="database, recordings and models (default: DIR itself)"
    )
    p.add_argument("--force", action="store_true", help="overwrite files that exist")
    p.set_defaults(handler=_init)


def starter_settings(text: str, state_dir: Path | None) -> str:
    """The shipped settings with the worker's own files under ``state_dir`` (relative to the
    settings file when None) instead of the repository's ``../var`` and ``../asr_models``."""
    prefix = f"{state_dir.resolve()}/" if state_dir is not None else ""
    for old in ('"../var/', ":///../var/", '"../asr_models/'):
        text = text.replace(old, old.replace("../", prefix))
    return text


async def _init(args: argparse.Namespace, ctx: CliContext) -> int:
    written = write_starter(args.dir, args.state_dir, force=args.force)
    print(f"wrote {written} files to {args.dir}; next: dialer --config {args.dir / 'dialer.toml'} db upgrade")
    return 0


def write_starter(dest: Path, state_dir: Path | None, *, force: bool = False) -> int:
    """Copy the shipped configuration into ``dest``; the number of files written."""
    if dest.exists() and not dest.is_dir():
        raise InputError(f"{dest}: exists and is not a directory")
    sources = sorted(p for p in DEFAULT_CONFIG_DIR.rglob("*") if p.is_file() and p.name not in NOT_COPIED)
    targets = [dest / p.relative_to(DEFAULT_CONFIG_DIR) for p in sources]
    clashes = [t for t in targets if t.exists()]
    if clashes and not force:
        names = ", ".join(str(t) for t in clashes[:3])
        raise InputError(f"{names}{' …' if len(clashes) > 3 else ''}: already there (--force overwrites)")
    for src, dst in zip(sources, targets, strict=True):
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.name == "dialer.toml":
            dst.write_text(starter_settings(src.read_text(encoding="utf-8"), state_dir), encoding="utf-8")
        else:
            shutil.copyfile(src, dst)
    load_settings(dest / "dialer.toml")  # what was written must load
    return len(targets)
