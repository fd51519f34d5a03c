"""Dialling an extension into a call (issue 11, item 6): AMI PlayDTMF on the attempt's ;1
channel, one digit per action, through the client and the pool."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from dialer.ami.client import AmiClient
from dialer.ami.pool import ServerPool
from dialer.config import AmiEndpoint, DialSettings, Secret
from dialer.errors import AmiError

from .fake_ami import FakeAmi

SECRET = "s3cret-pw"


@pytest.fixture
async def fake() -> AsyncIterator[FakeAmi]:
    server = FakeAmi(secret=SECRET)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def endpoint(port: int) -> AmiEndpoint:
    return AmiEndpoint("ami-test", "127.0.0.1", port, "dialer", Secret(SECRET), action_timeout_s=2.0)


async def test_extension_digits_go_one_playdtmf_each_on_the_local_half(fake: FakeAmi) -> None:
    pool = ServerPool([endpoint(fake.port)], on_event=lambda _ev: None)
    pool.start()
    try:
        await pool.wait_any_ready(5)
        attempt = uuid.uuid4()
        await pool.originate(attempt, "74951234567", DialSettings(), audiosocket_addr="127.0.0.1:9099")
        assert await pool.send_dtmf(attempt, "123") is True
        sent = fake.actions_named("PlayDTMF")
        assert [a["Digit"] for a in sent] == ["1", "2", "3"]
        assert {a["Channel"] for a in sent} == {str(attempt)}  # ;1: its Uniqueid is the attempt id
        assert {a["Duration"] for a in sent} == {"250"}
        fake.hangup_call(str(attempt), 16)
        assert await pool.send_dtmf(attempt, "4") is False  # the call is gone
    finally:
        await pool.close()


async def test_only_dtmf_digits_are_sent(fake: FakeAmi) -> None:
    client = AmiClient(endpoint(fake.port))
    await client.connect(timeout_s=2)
    try:
        for bad in ("", "12x", "1\r\nAction: Originate", "1" * 33):
            with pytest.raises(AmiError, match="refusing to send DTMF"):
                await client.play_dtmf("Local/1@x-1;1", bad)
        assert fake.actions_named("PlayDTMF") == []
        assert await client.play_dtmf("no-such", "*#", gap_s=0) is False
    finally:
        await client.close()
