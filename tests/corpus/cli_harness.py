"""Run the corpus/eval verbs the way dialer.cli does (one-line errors, exit codes), without
depending on which modules dialer.cli currently lists."""

from __future__ import annotations

import asyncio
import contextlib
import io

from dialer.cli import ArgumentParser
from dialer.commands import corpus
from dialer.commands import eval as eval_cmd
from dialer.commands.common import CliContext
from dialer.errors import DialerError


def run_cli(argv: list[str]) -> tuple[int, str]:
    parser = ArgumentParser(prog="dialer")
    sub = parser.add_subparsers(dest="command", required=True)
    corpus.register(sub)
    eval_cmd.register(sub)
    args = parser.parse_args(argv)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            rc = int(asyncio.run(args.handler(args, CliContext())))
        except DialerError as exc:
            print(f"dialer: error: {exc}")
            rc = 1
    return rc, out.getvalue()
