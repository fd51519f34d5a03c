"""The same campaign through the same worker against the simulator instead of the real Asterisk,
so the outcomes can be compared scenario by scenario.

Same settings file (ring time, call cap, announcements library, tone plans), same contacts, same
scripts (the simulator's catalogue by number, the extra scenarios through its ``number_map``);
only the AMI endpoint and the clock differ (the simulator runs ``time_scale`` faster).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from dialer import app
from dialer.commands.demo import DemoClock
from dialer.config import AmiEndpoint, Secret, load_settings
from dialer.domain.model import Evidence
from dialer.sim import SimAsterisk
from dialer.sim.queue import default_queues
from dialer.storage.dialling import ClaimedContact

from .kit import free_port
from .scenarios import EXTRA
from .workerproc import CAMPAIGN, Contact, WorkerSetup

SIM_SECRET = "sim"
# The simulated campaign replaces the settings' AMI endpoint with the simulator's own; the file
# still has to name a valid port to load.
UNUSED_AMI_PORT = 1
OPERATOR_ANSWER_S = 3.0  # tests/asterisk/conftest.py: the pbx's operators answer after 3 s


@dataclass
class SimOutcome:
    by_number: dict[str, Evidence] = field(default_factory=dict)
    attempts: dict[str, uuid.UUID] = field(default_factory=dict)
    sim: SimAsterisk | None = None


async def run_sim_campaign(setup: WorkerSetup, contacts: Iterable[Contact], time_scale: float) -> SimOutcome:
    contacts = list(contacts)
    await setup.seed(contacts)
    settings = load_settings(setup.config)
    outcome = SimOutcome()
    done = asyncio.Event()

    def finished(attempt_id: uuid.UUID, claimed: ClaimedContact, evidence: Evidence) -> None:
        number = (claimed.contact.e164 or "").lstrip("+")
        outcome.by_number[number] = evidence
        outcome.attempts[number] = attempt_id
        if len(outcome.by_number) >= len(contacts):
            done.set()

    as_port = free_port()
    sim = SimAsterisk(
        secret=SIM_SECRET,
        audiosocket_addr=("127.0.0.1", as_port),
        time_scale=time_scale,
        trunk_template=settings.dial.trunk_template,
        number_map=dict(EXTRA),
        queues=default_queues(operators=8, answer_after_s=OPERATOR_ANSWER_S),  # like the kit's operators
    )
    outcome.sim = sim
    ami_port = await sim.start()
    try:
        opts = app.RunOptions(
            worker_id="sim-worker",
            campaigns=(CAMPAIGN,),
            mqtt=False,
            time_scale=time_scale,
            ami_endpoints=[AmiEndpoint("sim", "127.0.0.1", ami_port, "dialer", Secret(SIM_SECRET), max_calls=40)],
            audiosocket_bind=("127.0.0.1", as_port),
            drain_s=10.0,
            clock=DemoClock(datetime.now(UTC), time_scale),
            asr_engine=None,  # like the real worker's settings (workerproc): no speech model
            on_call_finished=finished,
        )
        rt = await app.build(replace(settings), opts)
        stop = asyncio.Event()
        task = asyncio.create_task(app.run(rt, stop))
        try:
            await asyncio.wait_for(done.wait(), 120)
        finally:
            stop.set()
            await asyncio.wait_for(task, 60)
    finally:
        await sim.stop()
    return outcome
