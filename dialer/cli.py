"""The ``dialer`` command line: argparse, one module per verb group in ``dialer.commands``.

Each module in :data:`COMMAND_MODULES` has ``register(subparsers)``, which adds its verbs and sets
``handler`` (a coroutine function ``(args, ctx) -> int``) on each. Wrong arguments give one line on
stderr and exit code 2; a :class:`~dialer.errors.DialerError` gives one line and exit code 1; no
traceback either way.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from dialer import __version__
from dialer.commands.common import CliContext
from dialer.errors import DialerError

# Add a module here to add its verbs (e.g. "dialer.commands.run", "dialer.commands.demo").
COMMAND_MODULES: list[str] = [
    "dialer.commands.db",
    "dialer.commands.contacts",
    "dialer.commands.exclusions",
    "dialer.commands.numbering",
    "dialer.commands.plan",
    "dialer.commands.run",
    "dialer.commands.demo",
    "dialer.commands.operator",
    "dialer.commands.models",
    "dialer.commands.corpus",
    "dialer.commands.eval",
    "dialer.commands.replay",
    "dialer.commands.init",
    "dialer.commands.report",
    "dialer.commands.announcements",
]

EXIT_USAGE = 2
EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


class ArgumentParser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line (no usage dump) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="dialer", description="Offline auto-dialer worker for contact centres.")
    parser.add_argument("--version", action="version", version=f"dialer {__version__}")
    parser.add_argument(
        "--config",
        type=Path,
        metavar="PATH",
        help="settings file (default: $DIALER_CONFIG, else /etc/dialer/dialer.toml if present, else the shipped "
        "config/dialer.toml)",
    )
    parser.add_argument("--db", metavar="URL", help="database URL (overrides the settings and DIALER_DB_URL)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    ctx = CliContext(config_path=args.config, db_url=args.db)
    try:
        return asyncio.run(_run(args, ctx))
    except DialerError as exc:
        print(f"dialer: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("dialer: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`dialer export | head`): not an error of ours; silence the final flush.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
    except OSError as exc:
        # A file we were told to write or read (export -o into a missing directory, a full disk).
        where = f" {exc.filename}" if exc.filename else ""
        print(f"dialer: error:{where}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:
        # A bug of ours. Still one line (the contract); DIALER_DEBUG=1 shows the traceback.
        if os.environ.get("DIALER_DEBUG"):
            raise
        print(
            f"dialer: internal error: {type(exc).__name__}: {_one_line(exc)} (DIALER_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        return EXIT_ERROR


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


async def _run(args: argparse.Namespace, ctx: CliContext) -> int:
    try:
        return int(await args.handler(args, ctx))
    finally:
        await ctx.close()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
