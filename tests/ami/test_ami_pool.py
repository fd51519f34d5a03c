"""ServerPool: capacity, least-loaded pick, one server down, reconcile via CoreShowChannels."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from dialer.ami.client import AmiEvent
from dialer.ami.pool import ServerPool, ServerUp, live_attempts
from dialer.config import AmiEndpoint, DialSettings, Secret
from dialer.errors import AmiActionError, AmiError

from .fake_ami import FakeAmi

SECRET = "pool-secret"
SETTINGS = DialSettings()


def ep(name: str, port: int, max_calls: int) -> AmiEndpoint:
    return AmiEndpoint(
        name=name,
        host="127.0.0.1",
        port=port,
        username="dialer",
        secret=Secret(SECRET),
        max_calls=max_calls,
        action_timeout_s=0.5,
        ping_interval_s=5.0,
        reconnect_max_s=0.1,
    )


class Ups:
    def __init__(self) -> None:
        self.seen: list[ServerUp] = []
        self.changed = asyncio.Event()

    def __call__(self, up: ServerUp) -> None:
        self.seen.append(up)
        self.changed.set()

    async def wait(self, server: str, epoch: int) -> None:
        async with asyncio.timeout(5):
            while ServerUp(server, epoch) not in self.seen:
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[FakeAmi, FakeAmi]]:
    a, b = FakeAmi(secret=SECRET), FakeAmi(secret=SECRET)
    await a.start()
    await b.start()
    yield a, b
    await a.stop()
    await b.stop()


def noop(_ev: AmiEvent) -> None:
    return None


async def test_least_loaded_pick_and_capacity(fakes: tuple[FakeAmi, FakeAmi]) -> None:
    a, b = fakes
    ups = Ups()
    pool = ServerPool([ep("a", a.port, 2), ep("b", b.port, 4)], on_event=noop, on_server_up=ups)
    pool.start()
    try:
        await ups.wait("a", 1)
        await ups.wait("b", 1)
        placed: list[str] = []
        for i in range(6):
            client = await pool.originate(uuid.uuid4(), f"7999000000{i}", SETTINGS, audiosocket_addr="127.0.0.1:9")
            placed.append(client.name)
        # ratios: a 1/2 vs b 1/4 … b gets the calls until it is as loaded as a.
        assert placed.count("a") == 2 and placed.count("b") == 4
        assert len(a.actions_named("Originate")) == 2 and len(b.actions_named("Originate")) == 4
        assert pool.pick() is None and pool.free_slots == 0
        with pytest.raises(AmiError, match="no Asterisk server with free capacity"):
            await pool.originate(uuid.uuid4(), "79990000009", SETTINGS, audiosocket_addr="127.0.0.1:9")
        first_on_a = next(iter(pool.calls_on("a")))
        pool.release(first_on_a)
        picked = pool.pick()
        assert picked is not None and picked.name == "a"
    finally:
        await pool.close()


async def test_one_server_down_does_not_stop_the_other(fakes: tuple[FakeAmi, FakeAmi]) -> None:
    a, b = fakes
    port_a = a.port
    await a.stop()  # a refuses connections from the start
    ups = Ups()
    pool = ServerPool([ep("a", port_a, 10), ep("b", b.port, 10)], on_event=noop, on_server_up=ups)
    pool.start()
    try:
        await pool.wait_any_ready(timeout_s=2)
        for _ in range(3):
            client = await pool.originate(uuid.uuid4(), "79990000001", SETTINGS, audiosocket_addr="127.0.0.1:9")
            assert client.name == "b"
        assert "a connecting" in pool.describe()
        # a comes back: it is picked again (it is the least loaded).
        a2 = FakeAmi(secret=SECRET)
        await a2.start(port_a)
        try:
            await ups.wait("a", 1)
            picked = pool.pick()
            assert picked is not None and picked.name == "a"
        finally:
            await pool.close()
            await a2.stop()
    finally:
        await pool.close()


async def test_no_server_reachable_names_every_problem() -> None:
    down = FakeAmi(secret=SECRET)
    port = await down.start()
    await down.stop()
    pool = ServerPool([ep("only", port, 1)], on_event=noop)
    pool.start()
    try:
        with pytest.raises(AmiError, match=r"no Asterisk server reachable.*only"):
            await pool.wait_any_ready(timeout_s=0.3)
    finally:
        await pool.close()


async def test_reconnect_then_reconcile_finds_live_and_vanished(fakes: tuple[FakeAmi, FakeAmi]) -> None:
    a, _ = fakes
    ups = Ups()
    pool = ServerPool([ep("a", a.port, 10)], on_event=noop, on_server_up=ups)
    pool.start()
    try:
        await ups.wait("a", 1)
        stays, vanishes = uuid.uuid4(), uuid.uuid4()
        for attempt in (stays, vanishes):
            await pool.originate(attempt, "79990000001", SETTINGS, audiosocket_addr="127.0.0.1:9")
        a.drop()
        a.hangup_call(str(vanishes))  # ends while we are disconnected: its events are lost to us
        await ups.wait("a", 2)
        assert ups.seen[-1].reconnected
        live = await pool.reconcile("a")
        assert live == {stays}
        assert pool.calls_on("a") - live == {vanishes}
        # hang up goes to the ;1 half by Uniqueid; a vanished call reports False, not an error
        assert await pool.hangup(stays) is True
        assert await pool.hangup(vanishes) is False
    finally:
        await pool.close()


async def test_refused_originate_frees_the_slot(fakes: tuple[FakeAmi, FakeAmi]) -> None:
    a, _ = fakes
    pool = ServerPool([ep("a", a.port, 1)], on_event=noop)
    pool.start()
    try:
        await pool.wait_any_ready(timeout_s=2)
        a.refuse_originate = True
        attempt = uuid.uuid4()
        with pytest.raises(AmiActionError):
            await pool.originate(attempt, "79990000001", SETTINGS, audiosocket_addr="127.0.0.1:9")
        assert pool.server_of(attempt) is None and pool.free_slots == 1
    finally:
        await pool.close()


def test_live_attempts_reads_local_halves_and_linked_trunks() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    channels = [
        {"Channel": "Local/1@dialer-dial-1;2", "Uniqueid": f"{a};2", "Linkedid": str(a)},
        {"Channel": "PJSIP/trunk-0001", "Uniqueid": "1795418600.2", "Linkedid": str(b)},
        {"Channel": "PJSIP/phone-0002", "Uniqueid": "1795418600.9", "Linkedid": "1795418600.9"},
    ]
    assert live_attempts(channels) == {a, b}


def test_pool_rejects_duplicate_names() -> None:
    with pytest.raises(AmiError, match="unique"):
        ServerPool([ep("x", 1, 1), ep("x", 2, 1)], on_event=noop)
