"""AMI client adapter: panoramisk underneath, and the only module that knows its quirks.

What panoramisk 1.4 does on its own and why this module takes over:

- ``Manager.connect()`` returns before login; on a bad login it just reconnects forever. Here one
  connection is made per session, login is awaited, and ``Response: Error`` → :class:`AmiAuthError`
  with no further attempts (a wrong password does not get better by retrying).
- It reconnects every ``reconnect_timeout`` s forever and *re-sends* unanswered actions after
  ``FullyBooted`` — an Originate could be dialled twice. Here its reconnect is disabled, every
  action counts as "forgettable", and reconnection is ours: exponential backoff with jitter
  (tenacity), capped by ``reconnect_max_s``.
- Its ``ping()`` never reads the reply. Here a keepalive sends ``Ping`` every ``ping_interval_s``
  and a missing ``Pong`` within ``action_timeout_s`` means a half-open connection: drop, reconnect.
- Actions sent while disconnected hang forever, and actions pending when the link dies are never
  resolved. Here they fail fast with :class:`AmiError`, and every action has a deadline
  (:class:`AmiTimeout`).
- With ``Async: 'true'`` (the *string*: Python ``False`` is taken as async, and no Async key at all
  crashes its parser) an Originate's future swallows the ``OriginateResponse``. Here the first
  response resolves the call and the ``OriginateResponse`` is surfaced as an ordinary event.
- Its framing splits the stream on ``\\r\\n\\r\\n`` only and parses lines its own way. Here the
  bytes go through :mod:`dialer.ami.protocol`, the one AMI codec (the simulator and the transcript
  loader use it too); panoramisk keeps matching replies and event lists to actions by ActionID.

Events reach one consumer: the ``on_event`` callback if given, else :meth:`AmiClient.events`.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from panoramisk.actions import Action  # type: ignore[import-untyped]
from panoramisk.ami_protocol import AMIProtocol  # type: ignore[import-untyped]
from panoramisk.manager import Manager  # type: ignore[import-untyped]
from panoramisk.message import Message  # type: ignore[import-untyped]
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_exponential_jitter

from dialer.ami.protocol import AmiMessage, Header, Parser, serialize
from dialer.ami.signals import originate_action_id
from dialer.config import AmiEndpoint, DialSettings
from dialer.errors import AmiActionError, AmiAuthError, AmiError, AmiTimeout, ConfigError
from dialer.logging import call_log, register_secret

log = logging.getLogger(__name__)
# panoramisk logs whole messages (the Login with its Secret on a failed write): give it our own
# logger so the SecretFilter of configure_logging() applies and it can be silenced separately.
_panoramisk_log = logging.getLogger("dialer.ami.panoramisk")

# Originate's Timeout is the ring time of the *originated* channel; through Local/ the Dial on ;2
# must decide first (it reports DialEnd NOANSWER and the causes), so Originate waits a bit longer.
ORIGINATE_TIMEOUT_MARGIN_S = 5.0

_NUMBER = re.compile(r"^[0-9]{2,32}$")
_DTMF = re.compile(r"^[0-9*#A-Da-d]{1,32}$")
DTMF_DURATION_MS = 250  # per digit; IVRs need ≥ 40 ms, 250 ms is what SendDTMF() uses
DTMF_GAP_S = 0.25  # between digits (SendDTMF's default inter-digit time)
_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class ConnState(enum.StrEnum):
    IDLE = "idle"  # not started
    CONNECTING = "connecting"
    CONNECTED = "connected"  # logged in
    AUTH_FAILED = "auth_failed"  # final until restarted with other credentials
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class AmiEvent:
    """One AMI event as received, tagged with the server it came from."""

    server: str
    headers: Mapping[str, str]

    @property
    def name(self) -> str:
        return self.get("Event")

    def get(self, key: str, default: str = "") -> str:
        lowered = key.lower()
        for k, v in self.headers.items():
            if k.lower() == lowered:
                return v
        return default


class _ForgetEverything:
    """panoramisk re-sends unanswered actions after a reconnect unless they are 'forgettable'.
    Re-sending an Originate could dial a person twice: nothing is ever re-sent."""

    def __contains__(self, item: object) -> bool:
        return True


class _WireProtocol(AMIProtocol):  # type: ignore[misc]
    """panoramisk's protocol with our codec on the wire: actions are written by
    :func:`serialize`, the stream is cut and parsed by :class:`Parser`, and panoramisk's
    ``handle_message`` matches what was parsed to the pending actions (or dispatches it as an
    event)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.parser = Parser(expect_banner=True)

    def send(self, data: Mapping[str, Any], as_list: bool | None = False) -> asyncio.Future[Any]:
        action = data if isinstance(data, Action) else Action(dict(data))
        action.as_list = as_list
        try:
            wire = serialize(_pairs(action))
        except ValueError as exc:  # encoded before registering: nothing half-sent, nothing pending
            raise AmiError(f"{exc}; {action.get('Action', '?')} not sent") from None
        self.responses[action.id] = action
        self.transport.write(wire)
        future: asyncio.Future[Any] = action.future
        return future

    def data_received(self, data: bytes) -> None:
        for parsed in self.parser.feed(data):
            message = _as_panoramisk(parsed)
            if message is not None:
                self.handle_message(message)
        for bad in self.parser.garbage:
            log.warning("AMI: ignored a line from the server (%s): %r", bad.reason, bad.line)
        self.parser.garbage.clear()


def _pairs(action: Mapping[str, Any]) -> list[Header]:
    """An action's headers in order; a list value (``Variable``) becomes repeated headers."""
    pairs: list[Header] = []
    for key, value in action.items():
        values = value if isinstance(value, list | tuple) else [value]
        pairs.extend((str(key), str(v)) for v in values)
    return pairs


def _as_panoramisk(message: AmiMessage) -> Any:
    """What panoramisk's action matching reads: a case-insensitive Message whose repeated
    headers are lists. Like panoramisk, only responses and events are passed on."""
    if message.event is None and message.response is None:
        return None
    return Message(message.to_multidict())


class _Manager(Manager):  # type: ignore[misc]
    """panoramisk Manager without its own reconnect loop and without its blind pinger."""

    lost_hook: Callable[[object], None] | None = None

    def ping(self) -> None:
        # The keepalive of AmiClient checks the reply; the built-in one does not.
        return None

    def connection_lost(self, exc: object) -> None:
        self._connected = False
        pinger = getattr(self, "pinger", None)
        if pinger is not None:
            pinger.cancel()
            self.pinger = None
        hook = self.lost_hook
        if hook is not None:
            hook(exc)


class _OriginateAction(Action):  # type: ignore[misc]
    """Resolves ``accepted`` with the first response and forwards the OriginateResponse event
    (which panoramisk would otherwise swallow into the action) to the event consumer."""

    def __init__(self, data: Mapping[str, Any], forward: Callable[[Any], None]) -> None:
        super().__init__(dict(data), as_list=None)
        self.accepted: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._forward = forward

    def add_message(self, message: Any) -> bool:
        if "event" in message:
            if str(message["event"]).lower() == "originateresponse":
                self._forward(message)
                return True  # complete: drop it from the pending table
            return False
        if not self.accepted.done():
            self.accepted.set_result(message)
        # Success: keep listening for the OriginateResponse; Error: nothing else will come.
        return not bool(message.success)


def _first(value: Any) -> str:
    if isinstance(value, list | tuple):
        return str(value[0]) if value else ""
    return "" if value is None else str(value)


def _headers(message: Any) -> dict[str, str]:
    return {str(k): _first(v) for k, v in message.items()}


def _backoff(initial_s: float, max_s: float, jitter_s: float) -> wait_exponential_jitter:
    """initial·2ⁿ + U(0, jitter), capped at max_s (tenacity ≥ 9 renamed ``initial`` to ``multiplier``)."""
    try:
        return wait_exponential_jitter(multiplier=initial_s, max=max_s, jitter=jitter_s)  # type: ignore[call-arg]
    except TypeError:
        return wait_exponential_jitter(initial=initial_s, max=max_s, jitter=jitter_s)


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, AmiError | OSError) and not isinstance(exc, AmiAuthError)


class AmiClient:
    """One AMI connection to one Asterisk, kept alive and logged in by an owned supervisor task.

    ``await client.connect()`` starts it and waits for the first login (raises AmiAuthError on
    bad credentials, AmiError if the server cannot be reached within ``timeout_s``). After that it
    reconnects by itself until :meth:`close`. Actions raise AmiError while disconnected.
    """

    def __init__(
        self,
        endpoint: AmiEndpoint,
        *,
        on_event: Callable[[AmiEvent], None] | None = None,
        on_state: Callable[[AmiClient, ConnState], None] | None = None,
        backoff_initial_s: float = 0.5,
        backoff_jitter_s: float = 0.5,
    ) -> None:
        self.endpoint = endpoint
        self._on_event = on_event
        self._on_state = on_state
        self._queue: asyncio.Queue[AmiEvent] | None = None if on_event else asyncio.Queue()
        self._backoff_initial_s = backoff_initial_s
        self._backoff_jitter_s = backoff_jitter_s
        self._state = ConnState.IDLE
        self._manager: _Manager | None = None
        self._lost: asyncio.Future[str] | None = None
        self._inflight: set[asyncio.Future[Any]] = set()
        self._task: asyncio.Task[None] | None = None
        self._first_outcome: asyncio.Future[None] | None = None
        self._closing = False
        self.epoch = 0  # +1 per successful login: a changed epoch means "reconnected"
        self.backoff_delays_s: list[float] = []  # recent reconnect waits (observability, tests)
        self.last_disconnect_reason = ""

    # -- identity ----------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.endpoint.name

    @property
    def state(self) -> ConnState:
        return self._state

    @property
    def connected(self) -> bool:
        return self._state is ConnState.CONNECTED

    def __repr__(self) -> str:
        ep = self.endpoint
        return f"AmiClient(name={ep.name!r}, addr={ep.host}:{ep.port}, user={ep.username!r}, state={self._state})"

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the supervisor task (idempotent). Use :meth:`wait_ready` to await the login."""
        if self._task is not None and not self._task.done():
            return
        loop = asyncio.get_running_loop()
        self._first_outcome = loop.create_future()
        self._closing = False
        self._task = loop.create_task(self._supervise(), name=f"ami-{self.name}")

    async def wait_ready(self, timeout_s: float | None = None) -> None:
        """Wait for the first successful login since :meth:`start`."""
        if self._first_outcome is None:
            raise AmiError(f"AMI {self.name}: client not started")
        try:
            await asyncio.wait_for(asyncio.shield(self._first_outcome), timeout_s)
        except TimeoutError:
            raise AmiError(
                f"AMI {self.name}: not connected to {self.endpoint.host}:{self.endpoint.port} "
                f"after {timeout_s}s (last error: {self.last_disconnect_reason or 'none'})"
            ) from None

    async def connect(self, timeout_s: float | None = None) -> None:
        self.start()
        await self.wait_ready(timeout_s)

    async def close(self) -> None:
        """Log off politely if possible, stop reconnecting, fail pending actions."""
        self._closing = True  # the Logoff below ends the session: do not reconnect
        task, self._task = self._task, None
        if self.connected and self._manager is not None:
            with contextlib.suppress(AmiError):
                await self._send({"Action": "Logoff"}, timeout_s=min(1.0, self.endpoint.action_timeout_s))
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._teardown("client closed")
        self._set_state(ConnState.CLOSED)
        if self._first_outcome is not None and not self._first_outcome.done():
            self._first_outcome.set_exception(AmiError(f"AMI {self.name}: closed before connecting"))
            self._first_outcome.exception()  # retrieved: nobody may be waiting

    # -- events ------------------------------------------------------------------------------

    async def events(self) -> AsyncIterator[AmiEvent]:
        """Every event of every session, in arrival order (only without an ``on_event``)."""
        if self._queue is None:
            raise AmiError("events are delivered to the on_event callback of this client")
        while True:
            yield await self._queue.get()

    def _deliver(self, message: Any) -> None:
        event = AmiEvent(self.name, _headers(message))
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:  # a consumer bug must not kill the protocol
                log.exception("AMI %s: event consumer failed on %s", self.name, event.name)
        elif self._queue is not None:
            self._queue.put_nowait(event)

    # -- supervisor --------------------------------------------------------------------------

    async def _supervise(self) -> None:
        try:
            while True:
                self._set_state(ConnState.CONNECTING)
                try:
                    await self._connect_with_backoff()
                except (AmiAuthError, ConfigError) as exc:
                    # Retrying cannot fix credentials (or a secret variable that is not set).
                    error = exc if isinstance(exc, AmiAuthError) else AmiAuthError(f"AMI {self.name}: {exc}")
                    self.last_disconnect_reason = str(error)
                    log.error("%s", error)
                    self._set_state(ConnState.AUTH_FAILED)
                    if self._first_outcome is not None and not self._first_outcome.done():
                        self._first_outcome.set_exception(error)
                        # Marked retrieved: in a pool another server may be serving, and nobody
                        # waits for this one (the error is logged and kept in the client state).
                        self._first_outcome.exception()
                    return
                reason = await self._session()
                self.last_disconnect_reason = reason
                if self._closing:
                    return
                log.warning("AMI %s: connection lost (%s); reconnecting", self.name, reason)
                self._teardown(reason)
        finally:
            self._teardown("supervisor stopped")

    async def _connect_with_backoff(self) -> None:
        retrying = AsyncRetrying(
            wait=_backoff(self._backoff_initial_s, self.endpoint.reconnect_max_s, self._backoff_jitter_s),
            retry=retry_if_exception(_retryable),
            before_sleep=self._before_sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                await self._connect_once()

    def _before_sleep(self, state: RetryCallState) -> None:
        delay = state.next_action.sleep if state.next_action else 0.0
        self.backoff_delays_s = [*self.backoff_delays_s[-31:], delay]
        exc = state.outcome.exception() if state.outcome else None
        self.last_disconnect_reason = str(exc)
        log.warning("AMI %s: %s; retry %d in %.2fs", self.name, exc, state.attempt_number, delay)

    async def _connect_once(self) -> None:
        ep = self.endpoint
        loop = asyncio.get_running_loop()
        secret = ep.secret.get()
        register_secret(secret)
        transport, protocol = await self._open_transport()
        lost: asyncio.Future[str] = loop.create_future()
        manager = _Manager(
            loop=loop,
            host=ep.host,
            port=ep.port,
            username=ep.username,
            secret=secret,
            events="on",
            ping_delay=3600,
            log=_panoramisk_log,
            forgetable_actions=_ForgetEverything(),
        )

        def on_lost(exc: object) -> None:
            if not lost.done():
                lost.set_result(f"connection closed by peer ({exc})" if exc else "connection closed by peer")

        manager.lost_hook = on_lost
        manager.register_event("*", lambda _m, message: self._deliver(message))
        made: asyncio.Future[tuple[Any, Any]] = loop.create_future()
        made.set_result((transport, protocol))
        try:
            manager.connection_made(made)  # sends Login
        except AmiError as exc:  # a username or secret with a line break: no retry can fix it
            transport.close()
            raise ConfigError(f"AMI {ep.name}: {exc}") from None
        self._manager, self._lost = manager, lost
        await self._await_login(manager.authenticated_future, lost)

        self.epoch += 1
        self._set_state(ConnState.CONNECTED)
        log.info("AMI %s: logged in to %s:%s as %r (epoch %d)", ep.name, ep.host, ep.port, ep.username, self.epoch)
        if self._first_outcome is not None and not self._first_outcome.done():
            self._first_outcome.set_result(None)

    async def _open_transport(self) -> tuple[asyncio.BaseTransport, _WireProtocol]:
        ep = self.endpoint
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(loop.create_connection(_WireProtocol, ep.host, ep.port), ep.action_timeout_s)
        except TimeoutError:
            raise AmiError(f"AMI {ep.name}: connect to {ep.host}:{ep.port} timed out") from None
        except OSError as exc:
            raise AmiError(f"AMI {ep.name}: cannot connect to {ep.host}:{ep.port}: {exc.strerror or exc}") from None

    async def _await_login(self, login: asyncio.Future[Any], lost: asyncio.Future[str]) -> None:
        """Wait for the Login's reply; refused → AmiAuthError, no reply or lost → AmiError."""
        ep = self.endpoint
        # Never cancel panoramisk's login future (its done-callback calls .result()).
        done, _ = await asyncio.wait({login, lost}, timeout=ep.action_timeout_s, return_when=asyncio.FIRST_COMPLETED)
        if login in done:
            resp = login.result()
            if not resp.success:
                self._teardown("login refused")
                raise AmiAuthError(
                    f"AMI {ep.name}: Asterisk at {ep.host}:{ep.port} refused login for user "
                    f"{ep.username!r}: {resp.get('Message', 'Authentication failed')} "
                    "(check username/secret and permit= in manager.conf)"
                )
        else:
            reason = lost.result() if lost in done else f"no login reply within {ep.action_timeout_s}s"
            self._teardown(reason)
            raise AmiError(f"AMI {ep.name}: login to {ep.host}:{ep.port} failed: {reason}")

    async def _session(self) -> str:
        """Keepalive until the connection is lost; returns why it ended."""
        lost = self._lost
        assert lost is not None
        interval = self.endpoint.ping_interval_s
        while True:
            done, _ = await asyncio.wait({lost}, timeout=interval)
            if done:
                return lost.result()
            try:
                reply = await self._send({"Action": "Ping"})
            except AmiTimeout:
                return f"no Pong within {self.endpoint.action_timeout_s}s: half-open connection"
            except AmiError as exc:
                return f"Ping failed: {exc}"
            if str(reply.get("Ping", "")).lower() != "pong":
                return f"unexpected Ping reply: {reply.get('Response', '?')}"

    def _teardown(self, reason: str) -> None:
        manager, self._manager = self._manager, None
        lost, self._lost = self._lost, None
        if lost is not None and not lost.done():
            lost.set_result(reason)
        if self._state is ConnState.CONNECTED:
            self._set_state(ConnState.CONNECTING)
        for fut in list(self._inflight):
            if not fut.done():
                fut.set_exception(AmiError(f"AMI {self.name}: connection lost before the reply ({reason})"))
        self._inflight.clear()
        if manager is not None:
            manager.lost_hook = None
            manager.close()

    def _set_state(self, state: ConnState) -> None:
        if state is self._state:
            return
        self._state = state
        if self._on_state is not None:
            try:
                self._on_state(self, state)
            except Exception:
                log.exception("AMI %s: state callback failed", self.name)

    # -- actions -----------------------------------------------------------------------------

    def _require_connected(self, action: str) -> _Manager:
        if self._state is not ConnState.CONNECTED or self._manager is None:
            raise AmiError(f"AMI {self.name}: not connected ({self._state}); {action} not sent")
        return self._manager

    async def _send(self, action: Mapping[str, Any], *, timeout_s: float | None = None) -> Any:
        name = str(action.get("Action", "?"))
        manager = self._require_connected(name)
        timeout = self.endpoint.action_timeout_s if timeout_s is None else timeout_s
        fut: asyncio.Future[Any] = manager.send_action(Action(dict(action)))
        self._inflight.add(fut)
        try:
            reply = await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise AmiTimeout(f"AMI {self.name}: no reply to {name} within {timeout}s") from None
        finally:
            self._inflight.discard(fut)
        first = reply[0] if isinstance(reply, list) else reply
        if not first.success:
            raise AmiActionError(f"AMI {self.name}: {name} failed: {first.get('Message', first.get('Response'))}")
        return reply

    async def action(self, action: Mapping[str, Any], *, timeout_s: float | None = None) -> dict[str, str]:
        """Send any single-reply action (Setvar, Getvar, UserEvent …); returns the reply headers."""
        reply = await self._send(action, timeout_s=timeout_s)
        return _headers(reply[0] if isinstance(reply, list) else reply)

    async def ping(self) -> float:
        """One checked Ping; returns the round trip in seconds."""
        started = time.monotonic()
        reply = await self._send({"Action": "Ping"})
        if str(reply.get("Ping", "")).lower() != "pong":
            raise AmiError(f"AMI {self.name}: Ping answered without Pong")
        return time.monotonic() - started

    async def originate(
        self,
        attempt_id: uuid.UUID,
        number: str,
        settings: DialSettings,
        *,
        audiosocket_addr: str,
        variables: Mapping[str, str] | None = None,
        ring_timeout_s: float | None = None,
        caller_id: str | None = None,
        early_media: bool = True,
    ) -> str:
        """Queue one call (``Async: true``); returns the ActionID once Asterisk accepted it.

        The ``;1`` half gets Uniqueid = ``attempt_id``; its OriginateResponse arrives later as an
        event. On AmiTimeout or a connection loss the call may or may not have been placed:
        reconcile (CoreShowChannels) before dialling the attempt again.
        """
        if not _NUMBER.match(number):
            raise AmiError(f"AMI {self.name}: refusing to dial {number!r}: digits only (2–32)")
        ring_s = settings.ring_timeout_s if ring_timeout_s is None else ring_timeout_s
        if ring_s <= 0:
            raise AmiError(f"AMI {self.name}: ring_timeout_s must be positive, got {ring_s}")
        dial_vars = {
            "DIALER_ATTEMPT_ID": str(attempt_id),
            "DIALER_DIALSTRING": settings.trunk_template.format(number=number),
            "DIALER_RING_S": str(max(1, round(ring_s))),
            "DIALER_AUDIOSOCKET": audiosocket_addr,
        }
        cid = settings.caller_id if caller_id is None else caller_id
        fields: dict[str, Any] = {
            "Action": "Originate",
            "ActionID": originate_action_id(attempt_id),
            "Channel": settings.channel_template.format(number=number),
            "Context": settings.analysis_context,
            "Exten": settings.analysis_exten,
            "Priority": "1",
            "Timeout": str(int((ring_s + ORIGINATE_TIMEOUT_MARGIN_S) * 1000)),
            "ChannelId": str(attempt_id),
            "Async": "true",  # the string: panoramisk mis-handles a bool and a missing key
            "EarlyMedia": "true" if early_media else "false",
            "Variable": self._variable_headers({**dial_vars, **self._extra_variables(variables)}),
        }
        if cid:
            fields["CallerID"] = cid
        reply = await self._originate_reply(attempt_id, fields)
        if not reply.success:
            call_log(log, "originate_refused", attempt_id, None, server=self.name, message=reply.get("Message", ""))
            raise AmiActionError(f"AMI {self.name}: Originate {attempt_id} refused: {reply.get('Message', '')}")
        call_log(log, "originate_queued", attempt_id, str(attempt_id), server=self.name, channel=fields["Channel"])
        return str(fields["ActionID"])

    def _extra_variables(self, variables: Mapping[str, str] | None) -> dict[str, str]:
        for key in variables or {}:
            if not _VAR_NAME.match(key):
                raise AmiError(f"AMI {self.name}: bad channel variable name {key!r}")
        return {key: str(value) for key, value in (variables or {}).items()}

    def _variable_headers(self, variables: Mapping[str, str]) -> list[str]:
        for key, value in variables.items():
            if any(c in value for c in ",\r\n"):
                # Asterisk splits Variable headers on commas; CR/LF would inject headers.
                raise AmiError(f"AMI {self.name}: channel variable {key} contains ',' or a line break")
        return [f"{k}={v}" for k, v in variables.items()]

    async def _originate_reply(self, attempt_id: uuid.UUID, fields: Mapping[str, Any]) -> Any:
        """Send the Originate and wait for its first response (not for the OriginateResponse)."""
        manager = self._require_connected("Originate")
        act = _OriginateAction(fields, self._deliver)
        manager.send_action(act)
        self._inflight.add(act.accepted)
        try:
            return await asyncio.wait_for(asyncio.shield(act.accepted), self.endpoint.action_timeout_s)
        except TimeoutError:
            raise AmiTimeout(
                f"AMI {self.name}: no reply to Originate {attempt_id} within "
                f"{self.endpoint.action_timeout_s}s (the call may have been placed)"
            ) from None
        finally:
            self._inflight.discard(act.accepted)

    async def hangup(self, channel: str, cause: int | None = None) -> bool:
        """Hang up by channel name or Uniqueid. False if the channel no longer exists."""
        fields: dict[str, Any] = {"Action": "Hangup", "Channel": channel}
        if cause is not None:
            fields["Cause"] = str(int(cause))
        try:
            await self._send(fields)
        except AmiActionError as exc:
            if "no such channel" in str(exc).lower():
                return False
            raise
        return True

    async def redirect(self, channel: str, context: str, exten: str, priority: int = 1) -> bool:
        """Move a channel to ``context,exten,priority``. False if the channel no longer exists."""
        fields = {
            "Action": "Redirect",
            "Channel": channel,
            "Context": context,
            "Exten": exten,
            "Priority": str(int(priority)),
        }
        try:
            await self._send(fields)
        except AmiActionError as exc:
            text = str(exc).lower()
            if "does not exist" in text or "no such channel" in text:
                return False
            raise
        return True

    async def play_dtmf(
        self, channel: str, digits: str, *, duration_ms: int = DTMF_DURATION_MS, gap_s: float = DTMF_GAP_S
    ) -> bool:
        """Send ``digits`` (0-9 * # A-D) as DTMF out of ``channel`` — PlayDTMF, one action per
        digit, ``gap_s`` apart: an organisation's IVR dialled through the Local ;1 half hears them
        from the trunk. False if the channel no longer exists."""
        if not digits or not _DTMF.match(digits):
            raise AmiError(f"AMI {self.name}: refusing to send DTMF {digits!r}: digits 0-9, *, #, A-D only")
        for i, digit in enumerate(digits):
            if i:
                await asyncio.sleep(gap_s)
            fields = {
                "Action": "PlayDTMF",
                "Channel": channel,
                "Digit": digit,
                "Duration": str(int(duration_ms)),
                # Asterisk answers "DTMF successfully queued"; panoramisk takes any "... successfully
                # queued" for an async Originate and reads the action's Async key (KeyError without
                # it, and the connection is lost). Asterisk ignores the header.
                "Async": "false",
            }
            try:
                await self._send(fields)
            except AmiActionError as exc:
                text = str(exc).lower()
                if "not found" in text or "no such channel" in text or "does not exist" in text:
                    return False
                raise
        return True

    async def core_show_channels(self) -> list[dict[str, str]]:
        """Every live channel (one dict per ``CoreShowChannel`` event)."""
        reply = await self._send({"Action": "CoreShowChannels"})
        messages = reply if isinstance(reply, list) else [reply]
        return [_headers(m) for m in messages[1:] if str(m.get("Event", "")).lower() == "coreshowchannel"]

    async def queue_status(self, queue: str) -> list[dict[str, str]]:
        """One queue's ``QueueStatus`` listing: ``QueueParams``, ``QueueMember`` and ``QueueEntry``
        rows (the pacing's operator tracker reads the members after every login)."""
        reply = await self._send({"Action": "QueueStatus", "Queue": queue})
        messages = reply if isinstance(reply, list) else [reply]
        return [_headers(m) for m in messages[1:] if str(m.get("Event", "")).lower().startswith("queue")]
