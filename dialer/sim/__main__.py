"""``python -m dialer.sim`` — run the Asterisk simulator standalone until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from dialer.sim.ami_server import SimAsterisk
from dialer.sim.scenarios import SCENARIOS


class _CannotListen(Exception):
    """The AMI port is taken (another simulator, a real Asterisk): one line, exit 1."""


def _addr(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected host:port, got {text!r}")
    return host, int(port)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m dialer.sim", description="Asterisk simulator (AMI + AudioSocket)")
    p.add_argument("--ami-host", default="127.0.0.1")
    p.add_argument("--ami-port", type=int, default=5038)
    p.add_argument(
        "--audiosocket",
        type=_addr,
        default=None,
        metavar="HOST:PORT",
        help="the worker's AudioSocket server (omit: calls play along without audio)",
    )
    p.add_argument("--username", default="dialer")
    p.add_argument("--secret", default="sim")
    p.add_argument("--time-scale", type=float, default=1.0, help="0.1 = ten times faster")
    p.add_argument("--trunk", default="IAX2/carrier/{number}", help="trunk dial template")
    p.add_argument("--version", default="11.0.0", help="AMI version in the banner (Asterisk 22: 11.0.0)")
    p.add_argument("--list", action="store_true", help="print the scenario table and exit")
    return p


async def _run(args: argparse.Namespace) -> None:
    sim = SimAsterisk(
        username=args.username,
        secret=args.secret,
        audiosocket_addr=args.audiosocket,
        time_scale=args.time_scale,
        trunk_template=args.trunk,
        version=args.version,
    )
    try:
        port = await sim.start(args.ami_host, args.ami_port)
    except OSError as exc:
        raise _CannotListen(f"cannot listen on {args.ami_host}:{args.ami_port}: {exc.strerror or exc}") from None
    print(
        f"simulated Asterisk: AMI on {args.ami_host}:{port} (user {args.username}), "
        f"AudioSocket → {args.audiosocket or 'none'}, time scale {args.time_scale}",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await sim.stop()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.list:
        for s in SCENARIOS.values():
            print(f"{s.number}  {s.name:26s} {s.title}")
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(_run(args))
    except _CannotListen as exc:
        print(f"python -m dialer.sim: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
