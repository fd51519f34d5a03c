"""AmiClient against a fake AMI server over real TCP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import io
import logging
import uuid
from collections.abc import AsyncIterator

import pytest

from dialer.ami.client import AmiClient, AmiEvent, ConnState
from dialer.ami.signals import Correlator
from dialer.config import AmiEndpoint, DialSettings, Secret
from dialer.errors import AmiActionError, AmiAuthError, AmiError, AmiTimeout
from dialer.logging import configure_logging
from dialer.session.inputs import Gone, NetworkInput, OriginateResult, Progress

from .fake_ami import FakeAmi

SECRET = "s3cret-pw"


def endpoint(port: int, secret: str = SECRET, **kw: float) -> AmiEndpoint:
    params: dict[str, float] = {"action_timeout_s": 0.5, "ping_interval_s": 5.0, "reconnect_max_s": 0.2}
    params.update(kw)
    return AmiEndpoint(
        name="ami-test",
        host="127.0.0.1",
        port=port,
        username="dialer",
        secret=Secret(secret),
        max_calls=5,
        **params,  # type: ignore[arg-type]
    )


class StateLog:
    """Collects state changes and lets a test await a given one."""

    def __init__(self) -> None:
        self.states: list[ConnState] = []
        self._changed = asyncio.Event()

    def __call__(self, _client: AmiClient, state: ConnState) -> None:
        self.states.append(state)
        self._changed.set()

    async def wait_for(self, state: ConnState, count: int = 1, timeout_s: float = 5.0) -> None:
        async with asyncio.timeout(timeout_s):
            while self.states.count(state) < count:
                self._changed.clear()
                await self._changed.wait()


class RetryWatcher(logging.Handler):
    """Sets ``enough`` after n reconnect-retry warnings of the client."""

    def __init__(self, n: int) -> None:
        super().__init__(logging.WARNING)
        self.n = n
        self.count = 0
        self.enough = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "; retry " in record.getMessage():
            self.count += 1
            if self.count >= self.n:
                self.enough.set()


@pytest.fixture
async def fake() -> AsyncIterator[FakeAmi]:
    server = FakeAmi(secret=SECRET)
    await server.start()
    yield server
    await server.stop()


async def test_login_and_repr_hide_the_secret(fake: FakeAmi) -> None:
    client = AmiClient(endpoint(fake.port), backoff_initial_s=0.01, backoff_jitter_s=0.0)
    await client.connect(timeout_s=2)
    try:
        assert client.connected and client.epoch == 1
        assert fake.logins == 1
        assert SECRET not in repr(client) and SECRET not in repr(client.endpoint)
        rtt = await client.ping()
        assert 0 <= rtt < 0.5
    finally:
        await client.close()
    assert client.state is ConnState.CLOSED
    assert fake.actions_named("Logoff"), "close() logs off politely"


async def test_bad_login_is_a_clear_auth_error_without_retry_loop(fake: FakeAmi) -> None:
    stream = io.StringIO()
    configure_logging(logging.DEBUG, json=False, stream=stream)
    client = AmiClient(endpoint(fake.port, secret="wrong-password-123"), backoff_initial_s=0.01, backoff_jitter_s=0.0)
    try:
        with pytest.raises(AmiAuthError) as info:
            await client.connect(timeout_s=2)
        text = str(info.value)
        assert "refused login" in text and "'dialer'" in text and f"127.0.0.1:{fake.port}" in text
        assert client.state is ConnState.AUTH_FAILED
        # No endless reconnect: give a retry loop (10 ms backoff) room to show itself.
        await asyncio.sleep(0.2)
        assert fake.connections == 1
        with pytest.raises(AmiError, match="not connected"):
            await client.ping()
    finally:
        await client.close()
        configure_logging(logging.WARNING)
    logged = stream.getvalue()
    assert "refused login" in logged
    assert "wrong-password-123" not in logged


async def test_half_open_connection_is_detected_by_unanswered_pings(fake: FakeAmi) -> None:
    states = StateLog()
    client = AmiClient(
        endpoint(fake.port, ping_interval_s=0.05, action_timeout_s=0.2),
        on_state=states,
        backoff_initial_s=0.01,
        backoff_jitter_s=0.0,
    )
    await client.connect(timeout_s=2)
    try:
        fake.answer_pings = False  # the TCP link stays up, nothing answers: half-open
        await states.wait_for(ConnState.CONNECTING, count=2)
        assert "no Pong" in client.last_disconnect_reason
        fake.answer_pings = True
        await states.wait_for(ConnState.CONNECTED, count=2)
        assert client.epoch == 2 and fake.logins == 2
    finally:
        await client.close()


async def test_reconnect_with_growing_backoff_after_drop() -> None:
    server = FakeAmi(secret=SECRET)
    port = await server.start()
    states = StateLog()
    client = AmiClient(
        endpoint(port, reconnect_max_s=0.4), on_state=states, backoff_initial_s=0.02, backoff_jitter_s=0.0
    )
    await client.connect(timeout_s=2)
    try:
        retries = RetryWatcher(4)
        logging.getLogger("dialer.ami.client").addHandler(retries)
        try:
            await server.stop()  # drop, and refuse new connections
            async with asyncio.timeout(5):
                await retries.enough.wait()
        finally:
            logging.getLogger("dialer.ami.client").removeHandler(retries)
        delays = client.backoff_delays_s[:4]
        assert delays == sorted(delays) and delays[0] < delays[-1] <= 0.4
        with pytest.raises(AmiError, match="not connected"):
            await client.hangup("x")  # fails fast while disconnected
        server2 = FakeAmi(secret=SECRET)
        await server2.start(port)
        try:
            await states.wait_for(ConnState.CONNECTED, count=2)
            assert client.epoch == 2
            assert "cannot connect" in client.last_disconnect_reason
        finally:
            await client.close()
            await server2.stop()
    finally:
        await client.close()


async def test_every_action_has_a_deadline(fake: FakeAmi) -> None:
    client = AmiClient(endpoint(fake.port, action_timeout_s=0.15))
    await client.connect(timeout_s=2)
    try:
        fake.silent_actions.add("hangup")
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(AmiTimeout, match=r"no reply to Hangup within 0\.15s"):
            await client.hangup("PJSIP/x-1")
        assert loop.time() - started < 1.0
        fake.silent_actions.add("originate")
        with pytest.raises(AmiTimeout, match="may have been placed"):
            await client.originate(uuid.uuid4(), "79990000001", DialSettings(), audiosocket_addr="127.0.0.1:9")
    finally:
        await client.close()


async def test_pending_action_fails_fast_when_the_link_drops(fake: FakeAmi) -> None:
    client = AmiClient(endpoint(fake.port, action_timeout_s=5.0), backoff_initial_s=0.01, backoff_jitter_s=0.0)
    await client.connect(timeout_s=2)
    try:
        fake.silent_actions.add("hangup")
        pending = asyncio.ensure_future(client.hangup("PJSIP/x-1"))
        await asyncio.sleep(0.05)
        fake.drop()
        async with asyncio.timeout(1.0):  # far below the 5 s action deadline
            with pytest.raises(AmiError, match="connection lost"):
                await pending
    finally:
        await client.close()


async def test_not_started_client_fails_fast() -> None:
    client = AmiClient(endpoint(1))
    with pytest.raises(AmiError, match="not connected"):
        await client.redirect("x", "c", "s")


async def test_originate_fields_and_correlated_signals(fake: FakeAmi) -> None:
    corr = Correlator()
    signals: list[NetworkInput] = []
    got_gone = asyncio.Event()
    got_result = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_event(ev: AmiEvent) -> None:
        assert ev.server == "ami-test"
        routed = corr.feed(ev.headers, at=loop.time())
        for s in routed.inputs if routed is not None else ():
            signals.append(s)
            if isinstance(s, Gone):
                got_gone.set()
            if isinstance(s, OriginateResult):
                got_result.set()

    client = AmiClient(endpoint(fake.port), on_event=on_event)
    await client.connect(timeout_s=2)
    try:
        attempt = uuid.uuid4()
        corr.track(attempt, at=loop.time())
        settings = DialSettings(
            trunk_template="PJSIP/{number}@trunk", ring_timeout_s=25, caller_id="dialer <74950000000>"
        )
        action_id = await client.originate(
            attempt, "79990000001", settings, audiosocket_addr="10.0.0.5:9099", variables={"DIALER_CONTACT": "42"}
        )
        sent = fake.actions_named("Originate")[0]
        assert sent["ActionID"] == action_id
        assert sent["Async"] == "true" and sent["EarlyMedia"] == "true"
        assert sent["ChannelId"] == str(attempt)
        assert sent["Channel"] == "Local/79990000001@dialer-dial/n"
        assert sent["Context"] == "dialer-analyse" and sent["Exten"] == "s" and sent["Priority"] == "1"
        assert sent["Timeout"] == "30000"  # ring 25 s + the margin that lets Dial decide first
        assert sent["CallerID"] == "dialer <74950000000>"
        variables = sent["Variable"]
        assert isinstance(variables, list)
        assert f"DIALER_ATTEMPT_ID={attempt}" in variables
        assert "DIALER_DIALSTRING=PJSIP/79990000001@trunk" in variables
        assert "DIALER_RING_S=25" in variables
        assert "DIALER_AUDIOSOCKET=10.0.0.5:9099" in variables
        assert "DIALER_CONTACT=42" in variables

        # The OriginateResponse, swallowed by panoramisk's action, reaches the consumer.
        async with asyncio.timeout(2):
            await got_result.wait()
        assert any(isinstance(s, Progress) for s in signals)

        assert await client.redirect(str(attempt), "dialer-operator", "s") is True
        assert fake.actions_named("Redirect")[0]["Context"] == "dialer-operator"
        assert await client.hangup(str(attempt), cause=16) is True
        async with asyncio.timeout(2):
            await got_gone.wait()
        gone = next(s for s in signals if isinstance(s, Gone))
        assert corr.facts(attempt).originate_reason == 4 and gone.cause == 16
        assert await client.hangup(str(attempt)) is False  # already gone
        assert await client.redirect(str(attempt), "dialer-operator", "s") is False
    finally:
        await client.close()


async def test_events_iterator_and_late_originate_response(fake: FakeAmi) -> None:
    """Without on_event the events queue; an OriginateResponse after a reconnect still surfaces."""
    client = AmiClient(endpoint(fake.port), backoff_initial_s=0.01, backoff_jitter_s=0.0)
    await client.connect(timeout_s=2)
    try:
        fake.originate_response_delay_s = 0.2
        attempt = uuid.uuid4()
        await client.originate(attempt, "79990000002", DialSettings(), audiosocket_addr="127.0.0.1:9")
        names: list[str] = []
        async with asyncio.timeout(2):
            async for ev in client.events():
                names.append(ev.name)
                if ev.name == "OriginateResponse":
                    assert ev.get("uniqueid") == str(attempt)
                    break
        assert "Newchannel" in names
    finally:
        await client.close()


async def test_originate_refused_and_input_checks(fake: FakeAmi) -> None:
    client = AmiClient(endpoint(fake.port))
    await client.connect(timeout_s=2)
    try:
        fake.refuse_originate = True
        with pytest.raises(AmiActionError, match="refused"):
            await client.originate(uuid.uuid4(), "79990000001", DialSettings(), audiosocket_addr="127.0.0.1:9")
        before = len(fake.actions)
        with pytest.raises(AmiError, match="digits only"):
            await client.originate(uuid.uuid4(), "7999&PJSIP/evil", DialSettings(), audiosocket_addr="a:1")
        with pytest.raises(AmiError, match="contains ','"):
            await client.originate(
                uuid.uuid4(), "79990000001", DialSettings(), audiosocket_addr="a:1", variables={"X": "a,b"}
            )
        with pytest.raises(AmiError, match="line break"):
            await client.hangup("PJSIP/x\r\nAction: Originate")
        assert len(fake.actions) == before, "nothing reached the server"
    finally:
        await client.close()


async def test_core_show_channels_lists_live_channels(fake: FakeAmi) -> None:
    client = AmiClient(endpoint(fake.port))
    await client.connect(timeout_s=2)
    try:
        attempt = uuid.uuid4()
        await client.originate(attempt, "79990000003", DialSettings(), audiosocket_addr="127.0.0.1:9")
        channels = await client.core_show_channels()
        assert {c["Uniqueid"] for c in channels} == {str(attempt), f"{attempt};2"}
    finally:
        await client.close()


async def test_unset_secret_variable_is_a_final_clear_error(fake: FakeAmi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DIALER_TEST_UNSET_SECRET", raising=False)
    ep = AmiEndpoint("ami-test", "127.0.0.1", fake.port, "dialer", Secret(env="DIALER_TEST_UNSET_SECRET"))
    client = AmiClient(ep)
    try:
        with pytest.raises(AmiAuthError, match="DIALER_TEST_UNSET_SECRET is not set"):
            await client.connect(timeout_s=2)
        assert fake.connections == 0
    finally:
        await client.close()


async def test_server_stream_is_read_by_the_shared_codec(fake: FakeAmi, caplog: pytest.LogCaptureFixture) -> None:
    """The client parses with dialer.ami.protocol (as the simulator and the transcripts do): a
    line that is not ``Key: Value`` is logged and skipped without losing its message, and a
    message cut into single bytes still arrives whole."""
    received: asyncio.Queue[AmiEvent] = asyncio.Queue()

    def on_event(event: AmiEvent) -> None:
        if event.name == "UserEvent":  # not the FullyBooted after login
            received.put_nowait(event)

    client = AmiClient(endpoint(fake.port), on_event=on_event)
    await client.connect(timeout_s=2)
    try:
        with caplog.at_level(logging.WARNING, logger="dialer.ami.client"):
            fake.write_raw(b"Event: UserEvent\r\nnot a header line\r\nUserEvent: first\r\n\r\n")
            for byte in b"Event: UserEvent\r\nUserEvent: second\r\nVariable: a=1\r\nVariable: b=2\r\n\r\n":
                fake.write_raw(bytes([byte]))
            async with asyncio.timeout(2):
                events = [await received.get() for _ in range(2)]
        assert [e.get("UserEvent") for e in events] == ["first", "second"]
        assert events[1].get("Variable") == "a=1"  # the first of a repeated header, as before
        assert any("not a header line" in r.getMessage() for r in caplog.records)
    finally:
        await client.close()
