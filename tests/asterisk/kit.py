"""Private real Asterisk instances as test fixtures (../shared/asterisk/README.md, "Running a
private instance as a test fixture"): the kit's build (cached), one scratch folder per instance
under /tmp (the control socket path must stay under 108 bytes), free ports picked at run time,
start in the foreground, wait for AMI ``FullyBooted``, stop (and restart on the same ports).

Never skipped: if the kit is missing or cannot build, the fixture FAILS with the build log's tail.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
KIT_DIR = REPO_ROOT.parent / "shared" / "asterisk"
CONF_DIR = Path(__file__).resolve().parent / "conf"
DEPLOY_DIR = REPO_ROOT / "deploy" / "asterisk"
BOOT_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
LOG_TAIL_LINES = 40


class KitError(RuntimeError):
    """The kit cannot give a working Asterisk (missing, build failed, instance did not boot)."""


_handed_out: set[tuple[str, int]] = set()


def free_port(kind: str = "tcp") -> int:
    """A port nothing listens on right now (bind port 0 and read it back), never one this process
    handed out before: instances started in a row would otherwise race for the same port."""
    sock_type = socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM
    while True:
        with socket.socket(socket.AF_INET, sock_type) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if (kind, port) not in _handed_out:
            _handed_out.add((kind, port))
            return port


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"(cannot read {path}: {exc})"
    return "\n".join(text[-lines:])


@cache
def prefix() -> Path:
    """The installed Asterisk prefix: ``DIALER_ASTERISK_PREFIX`` (set by scripts/test.sh after it
    ran the kit's build), else the kit's ``build`` is run here (a cache hit returns at once)."""
    given = os.environ.get("DIALER_ASTERISK_PREFIX")
    if given:
        path = Path(given)
        if not (path / "sbin" / "asterisk").is_file():
            raise KitError(f"DIALER_ASTERISK_PREFIX={given} holds no sbin/asterisk")
        return path
    build = KIT_DIR / "build"
    if not build.is_file():
        raise KitError(f"the Asterisk build kit is missing: {build} (CI keeps ../shared beside the clone)")
    proc = subprocess.run([str(build)], capture_output=True, text=True, check=False)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        log = Path(os.environ.get("ASTERISK_PREFIX", Path.home() / ".cache" / "asterisk-22.10.1")) / "build.log"
        raise KitError(
            f"{build} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}\n--- {log} (tail) ---\n{_tail(log)}"
        )
    return Path(lines[-1])


def require_prefix() -> Path:
    try:
        return prefix()
    except KitError as exc:
        pytest.fail(str(exc), pytrace=False)


@dataclass
class Instance:
    """One private Asterisk: its folders, ports, config files and process."""

    name: str
    prefix: Path
    files: Mapping[str, str]  # etc file name → text (placeholders already filled in, but ports)
    sounds: Mapping[str, bytes] = field(default_factory=dict)  # path under data/sounds → bytes
    run: Path = field(init=False)
    ami_port: int = field(init=False)
    iax_port: int = field(init=False)
    kit_secret: str = field(init=False)
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    starts: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.run = Path(tempfile.mkdtemp(prefix=f"ast.{self.name[:6]}.", dir="/tmp"))
        self.ami_port = free_port("tcp")
        self.iax_port = free_port("udp")
        self.kit_secret = secrets.token_hex(8)

    @property
    def conf(self) -> Path:
        return self.run / "etc" / "asterisk.conf"

    @property
    def binary(self) -> Path:
        return self.prefix / "sbin" / "asterisk"

    def fill(self, text: str) -> str:
        for key, value in {
            "@RUN@": str(self.run),
            "@PREFIX@": str(self.prefix),
            "@AMI_PORT@": str(self.ami_port),
            "@IAX_PORT@": str(self.iax_port),
            "@KIT_SECRET@": self.kit_secret,
        }.items():
            text = text.replace(key, value)
        return text

    def write(self) -> None:
        for sub in ("etc", "data/sounds", "lib", "agi", "spool", "cache", "run", "log"):
            (self.run / sub).mkdir(parents=True, exist_ok=True)
        for name, text in self.files.items():
            (self.run / "etc" / name).write_text(self.fill(text), encoding="utf-8")
        for rel, data in self.sounds.items():
            path = self.run / "data" / "sounds" / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

    def start(self) -> None:
        """Start in the foreground (``-f``, no console), then wait until AMI says FullyBooted."""
        if self.process is not None and self.process.poll() is None:
            raise KitError(f"{self.name} is already running")
        self.write()
        console = (self.run / "log" / "console.log").open("ab")
        try:
            self.process = subprocess.Popen(
                [str(self.binary), "-C", str(self.conf), "-f", "-n"],
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C in the test run must not reach it first
            )
        finally:
            console.close()
        self.starts += 1
        try:
            self._wait_booted()
        except BaseException:
            self.stop()
            raise

    def _wait_booted(self) -> None:
        deadline = time.monotonic() + BOOT_TIMEOUT_S
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise KitError(f"{self.name} exited with {self.process.returncode} at start\n{self.diagnostics()}")
            try:
                sock = socket.create_connection(("127.0.0.1", self.ami_port), timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise KitError(
                        f"{self.name}: AMI not up within {BOOT_TIMEOUT_S:.0f} s\n{self.diagnostics()}"
                    ) from None
                time.sleep(0.05)
        with sock:
            sock.settimeout(max(1.0, deadline - time.monotonic()))
            reader = sock.makefile("rb")
            reader.readline()  # banner
            sock.sendall(
                f"Action: Login\r\nUsername: kit\r\nSecret: {self.kit_secret}\r\nActionID: boot\r\n\r\n".encode()
            )
            block: dict[str, str] = {}
            for raw in reader:
                line = raw.decode(errors="replace").rstrip("\r\n")
                if line:
                    key, _, value = line.partition(":")
                    block.setdefault(key.strip(), value.strip())
                    continue
                if block.get("ActionID") == "boot" and block.get("Response") not in (None, "Success"):
                    raise KitError(f"{self.name}: kit AMI login refused: {block}")
                if block.get("Event") == "FullyBooted":
                    sock.sendall(b"Action: Logoff\r\n\r\n")
                    return
                block = {}
            raise KitError(f"{self.name}: AMI closed before FullyBooted\n{self.diagnostics()}")

    def cli(self, command: str, timeout_s: float = 15.0) -> str:
        """``asterisk -rx COMMAND`` on this instance's control socket."""
        proc = subprocess.run(
            [str(self.binary), "-C", str(self.conf), "-rx", command],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        return proc.stdout

    def stop(self) -> None:
        """``core stop now``, then SIGTERM, then SIGKILL; waits for the process to exit."""
        proc = self.process
        if proc is None:
            return
        if proc.poll() is None:
            try:
                self.cli("core stop now", timeout_s=5.0)
            except subprocess.TimeoutExpired:
                pass
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(5.0)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.process = None

    def kill(self) -> None:
        """A crash: SIGKILL, no shutdown (channels vanish, sockets reset)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def diagnostics(self) -> str:
        return (
            f"--- {self.name} console ({self.run}/log/console.log) ---\n{_tail(self.run / 'log' / 'console.log')}\n"
            f"--- {self.name} log/messages ---\n{_tail(self.run / 'log' / 'messages')}"
        )

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.run, ignore_errors=True)


def common_files() -> dict[str, str]:
    """The files every instance gets: asterisk.conf (private folders), modules, logger, AMD,
    indications (the sample, with the Russian tone zone)."""
    files = {name: (CONF_DIR / name).read_text(encoding="utf-8") for name in ("asterisk.conf", "modules.conf")}
    files["logger.conf"] = (CONF_DIR / "logger.conf").read_text(encoding="utf-8")
    files["amd.conf"] = (CONF_DIR / "amd.conf").read_text(encoding="utf-8")
    sample = require_prefix() / "share" / "asterisk" / "samples" / "indications.conf.sample"
    text = sample.read_text(encoding="utf-8")
    files["indications.conf"] = text.replace("country=us", "country=ru", 1)
    return files
