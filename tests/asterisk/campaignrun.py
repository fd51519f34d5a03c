"""A small ``dialer run`` campaign against one pbx, with a hook to break things while it runs,
and everything the assertions need afterwards (AMI actions, pbx events, attempts, contacts)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dialer.ami.protocol import AmiMessage
from dialer.domain.model import Contact as StoredContact
from dialer.events.notifier import EventNotifier
from dialer.storage.db import Database
from dialer.storage.repo import Repository
from dialer.storage.reports import AttemptRow

from .amiproxy import AmiProxy, SentAction
from .network import Pbx
from .recorder import Recorder
from .workerproc import CAMPAIGN, Contact, WorkerProcess, WorkerSetup


@dataclass
class Run:
    pbx: Pbx
    setup: WorkerSetup
    proxy: AmiProxy
    monitor: Recorder
    worker: WorkerProcess
    rc: int | None = None
    actions: list[SentAction] = field(default_factory=list)
    pbx_events: list[tuple[float, AmiMessage]] = field(default_factory=list)
    attempts: dict[str, list[AttemptRow]] = field(default_factory=dict)
    contacts: dict[str, StoredContact] = field(default_factory=dict)

    def number_of(self) -> dict[str, str]:
        """attempt id → dialled number, from the Originates sent."""
        out = {}
        for a in self.actions or self.proxy.actions:
            if a.name == "originate":
                out[str(a.get("ChannelId"))] = str(a.get("Channel")).split("/")[1].split("@")[0]
        return out

    async def reconnect_monitor(self) -> None:
        """After a pbx restart: a new monitor connection (its events join the old ones)."""
        old = self.monitor.events()
        await self.monitor.close()
        self.monitor = await Recorder.connect(self.pbx.ami_port, "kit", self.pbx.instance.kit_secret)
        self.pbx_events.extend(old)


Hook = Callable[[Run], Coroutine[Any, Any, None]]


async def run_campaign(
    pbx: Pbx,
    base: Path,
    numbers: Iterable[str],
    *,
    done: Callable[[Run], bool],
    during: Hook | None = None,
    timeout_s: float = 120.0,
    **setup_kw: object,
) -> Run:
    """Run ``numbers`` through ``dialer run`` until ``done(run)`` (checked on every worker log line),
    calling ``during(run)`` concurrently; then SIGTERM, and read back the database."""
    proxy = AmiProxy(pbx.ami_port)
    await proxy.start()
    monitor = await Recorder.connect(pbx.ami_port, "kit", pbx.instance.kit_secret)
    setup = WorkerSetup(base, proxy.port, pbx.dialer_secret, **setup_kw)  # type: ignore[arg-type]
    run: Run | None = None
    try:
        await setup.seed([Contact(n, n) for n in numbers])
        worker = await WorkerProcess.start(setup)
        run = Run(pbx, setup, proxy, monitor, worker)
        hook = asyncio.create_task(during(run)) if during is not None else None
        try:
            await worker.wait_until(lambda _w: done(run), timeout_s, "the campaign's end")
            if hook is not None:
                await asyncio.wait_for(hook, 30)
        finally:
            if hook is not None and not hook.done():
                hook.cancel()
                await asyncio.gather(hook, return_exceptions=True)
            run.rc = await worker.stop()
        run.actions = list(proxy.actions)
        run.pbx_events.extend(run.monitor.events())
    finally:
        await (run.monitor if run is not None else monitor).close()
        await proxy.close()
    db = Database(setup.db_url)
    try:
        repo = await Repository.open(db, EventNotifier())
        async for page in repo.iter_contacts(CAMPAIGN):
            for c in page:
                number = (c.e164 or "").lstrip("+")
                run.contacts[number] = c
                run.attempts[number] = await repo.attempts_of(c.id)
    finally:
        await db.dispose()
    return run
