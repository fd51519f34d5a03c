"""The AMI adapters against the package's Asterisk simulator (dialer.sim.SimAsterisk)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from dialer.ami.client import AmiClient, AmiEvent, ConnState
from dialer.ami.pool import ServerPool, ServerUp
from dialer.ami.signals import CallFacts, Correlator
from dialer.config import AmiEndpoint, DialSettings, Secret
from dialer.errors import AmiAuthError
from dialer.session.inputs import Answered, Gone, NetworkInput, Progress
from dialer.sim import SimAsterisk

from .test_ami_signals import EXPECTED

SECRET = "sim-secret"
SETTINGS = DialSettings(ring_timeout_s=30)
AUDIO = "127.0.0.1:9"  # the simulator runs without audio here


def endpoint(port: int, name: str = "sim", secret: str = SECRET, **kw: float) -> AmiEndpoint:
    params: dict[str, float] = {"action_timeout_s": 1.0, "ping_interval_s": 5.0, "reconnect_max_s": 0.2}
    params.update(kw)
    return AmiEndpoint(
        name=name,
        host="127.0.0.1",
        port=port,
        username="dialer",
        secret=Secret(secret),
        max_calls=50,
        **params,  # type: ignore[arg-type]
    )


@dataclass
class Tracker:
    """Correlates the events of one or more clients; resolves a future per attempt on Gone."""

    corr: Correlator = field(default_factory=Correlator)
    gone: dict[uuid.UUID, asyncio.Future[CallFacts]] = field(default_factory=dict)
    signals: dict[uuid.UUID, list[NetworkInput]] = field(default_factory=dict)
    waiters: dict[tuple[uuid.UUID, type], asyncio.Event] = field(default_factory=dict)

    def track(self, attempt: uuid.UUID) -> asyncio.Future[CallFacts]:
        loop = asyncio.get_running_loop()
        self.corr.track(attempt, at=loop.time())
        fut: asyncio.Future[CallFacts] = loop.create_future()
        self.gone[attempt] = fut
        self.signals[attempt] = []
        return fut

    def seen(self, attempt: uuid.UUID, kind: type) -> asyncio.Event:
        return self.waiters.setdefault((attempt, kind), asyncio.Event())

    def __call__(self, ev: AmiEvent) -> None:
        routed = self.corr.feed(ev.headers, at=asyncio.get_running_loop().time())
        if routed is None:
            return
        attempt = routed.attempt_id
        for s in routed.inputs:
            self.signals[attempt].append(s)
            self.seen(attempt, type(s)).set()
            if isinstance(s, Gone) and not self.gone[attempt].done():
                self.gone[attempt].set_result(self.corr.facts(attempt))


@pytest.fixture
async def sim() -> AsyncIterator[SimAsterisk]:
    server = SimAsterisk(username="dialer", secret=SECRET, audiosocket_addr=None, time_scale=0.02, seed=1)
    await server.start("127.0.0.1", 0)
    yield server
    await server.stop()


async def test_every_recorded_scenario_correlates_like_the_real_transcripts(sim: SimAsterisk) -> None:
    tracker = Tracker()
    client = AmiClient(endpoint(sim.port), on_event=tracker)
    await client.connect(timeout_s=3)
    try:
        futures: dict[str, asyncio.Future[CallFacts]] = {}
        for nn in EXPECTED:  # all 15 at once, through one connection
            attempt = uuid.uuid4()
            futures[nn] = tracker.track(attempt)
            await client.originate(attempt, f"79990000{nn}", SETTINGS, audiosocket_addr=AUDIO)
        async with asyncio.timeout(20):
            results = {nn: await fut for nn, fut in futures.items()}
    finally:
        await client.close()
    for nn, facts in results.items():
        answered, progress, dial_status, cause, reason = EXPECTED[nn]
        got = (facts.answered, facts.progress, facts.dial_status, facts.cause, facts.originate_reason)
        assert got == (answered, progress, dial_status, cause, reason), f"scenario {nn}"
    assert tracker.corr.stats.unknown_attempt == 0


async def test_bad_login_against_the_simulator(sim: SimAsterisk) -> None:
    client = AmiClient(endpoint(sim.port, secret="not-the-secret", action_timeout_s=3.0))
    try:
        with pytest.raises(AmiAuthError, match="refused login"):
            await client.connect(timeout_s=5)
        assert client.state is ConnState.AUTH_FAILED
    finally:
        await client.close()


async def test_paused_pings_mean_half_open_and_reconnect(sim: SimAsterisk) -> None:
    logins: list[int] = []
    lost = asyncio.Event()
    second_login = asyncio.Event()

    def on_state(c: AmiClient, state: ConnState) -> None:
        if state is ConnState.CONNECTED:
            logins.append(c.epoch)
            if c.epoch == 2:
                second_login.set()
        elif state is ConnState.CONNECTING and logins:
            lost.set()

    client = AmiClient(
        endpoint(sim.port, ping_interval_s=0.05, action_timeout_s=0.2),
        on_state=on_state,
        backoff_initial_s=0.01,
        backoff_jitter_s=0.0,
    )
    await client.connect(timeout_s=3)
    try:
        sim.pause_pings(True)  # the link stays up; only Ping goes unanswered
        async with asyncio.timeout(5):
            await lost.wait()
        assert "no Pong" in client.last_disconnect_reason
        sim.pause_pings(False)
        async with asyncio.timeout(5):
            await second_login.wait()
        assert logins[:2] == [1, 2]
    finally:
        await client.close()


async def test_drop_mid_call_then_reconcile_and_hang_up(sim: SimAsterisk) -> None:
    """The AMI link drops while a person is on the line; after the reconnect CoreShowChannels
    still shows the attempt, so the worker resumes it instead of dialling again."""
    tracker = Tracker()
    up_events: asyncio.Queue[ServerUp] = asyncio.Queue()
    pool = ServerPool([endpoint(sim.port)], on_event=tracker, on_server_up=up_events.put_nowait)
    pool.start()
    try:
        assert (await asyncio.wait_for(up_events.get(), 3)).epoch == 1
        sim.assign("79990000106", "person")  # rings, answers, speaks
        attempt = uuid.uuid4()
        gone = tracker.track(attempt)
        await pool.originate(attempt, "79990000106", SETTINGS, audiosocket_addr=AUDIO)
        async with asyncio.timeout(5):
            await tracker.seen(attempt, Answered).wait()
        sim.drop_ami_connections()
        up = await asyncio.wait_for(up_events.get(), 5)
        assert up.reconnected
        assert await pool.reconcile("sim") == {attempt}
        assert pool.calls_on("sim") == {attempt}
        assert await pool.redirect(attempt, "dialer-operator", "s") is True
        assert await pool.hangup(attempt, cause=16) is True
        facts = await asyncio.wait_for(gone, 5)
        assert facts.answered and not facts.progress
        pool.release(attempt)
        assert await pool.reconcile("sim") == set()
    finally:
        await pool.close()


async def test_hang_up_during_early_media(sim: SimAsterisk) -> None:
    tracker = Tracker()
    client = AmiClient(endpoint(sim.port), on_event=tracker)
    await client.connect(timeout_s=3)
    try:
        attempt = uuid.uuid4()
        gone = tracker.track(attempt)
        await client.originate(attempt, "79990000004", SETTINGS, audiosocket_addr=AUDIO)  # early media, cause 20
        async with asyncio.timeout(5):
            await tracker.seen(attempt, Progress).wait()
        assert await client.hangup(str(attempt)) is True
        facts = await asyncio.wait_for(gone, 5)
        assert facts.progress and not facts.answered
        assert facts.cause != 20, "we ended it before the network's cause 20"
        assert await client.hangup(str(attempt)) is False
    finally:
        await client.close()
