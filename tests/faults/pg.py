"""A private PostgreSQL cluster on a loopback port, for the test that restarts the database under a
running worker (the shared server of the other tests must never be restarted)."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import tempfile
from pathlib import Path

from .lab import free_port


def _bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    base = Path("/usr/lib/postgresql")
    for version in sorted(base.iterdir(), reverse=True) if base.exists() else []:
        candidate = version / "bin" / name
        if candidate.exists():
            return str(candidate)
    raise RuntimeError(f"PostgreSQL's {name} is not installed (apt-get install postgresql)")


class PrivatePostgres:
    """initdb once, then start/stop at will. As root the cluster runs as the ``postgres`` user (the
    server refuses to run as root), in a directory of its own outside pytest's private tmp."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        self.dir = Path(tempfile.mkdtemp(prefix="dialer-pg-"))
        self.data = self.dir / "data"
        self.log = workdir / "postgres.log" if workdir.exists() else self.dir / "postgres.log"
        self._initialised = False

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://{self.user}@127.0.0.1:{self.port}/{database}"

    async def _run(self, *argv: str) -> None:
        cmd = list(argv)
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        proc = await asyncio.create_subprocess_exec(
            *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(
                f"{' '.join(argv[:2])} failed ({proc.returncode}): {out.decode(errors='replace')[-800:]}"
            )

    async def start(self) -> None:
        if not self._initialised:
            if os.geteuid() == 0:
                shutil.chown(self.dir, "postgres", "postgres")
            await self._run(_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", self.user, "--no-sync")
            self._initialised = True
        log = self.dir / "server.log"
        await self._run(
            _bin("pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(log),
            "-w",
            "-t",
            "60",
            "-o",
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off",
            "start",
        )

    async def stop(self) -> None:
        if not self._initialised or not (self.data / "postmaster.pid").exists():
            return
        await self._run(_bin("pg_ctl"), "-D", str(self.data), "-w", "-m", "fast", "stop")

    def cleanup(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
