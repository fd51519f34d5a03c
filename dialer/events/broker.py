"""What the publisher and the command subscriber share about talking to the broker: one link
lifecycle (:class:`MqttLink`: connect with a fresh client, re-subscribe, serve, reconnect with
jittered back-off, ordered stop), and outage logging that says once that the broker is gone and
once that it is back (not one line per retry)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiomqtt

from dialer.config import MqttSettings
from dialer.errors import BrokerError


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Backoff:
    """Exponential back-off with jitter: the n-th delay lies in [base/2, base] where
    base = min(max_s, initial_s * 2**n), so many workers restarted together do not reconnect in
    lock step."""

    initial_s: float = 0.5
    max_s: float = 30.0
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0

    def next_delay_s(self) -> float:
        base = min(self.max_s, self.initial_s * (2.0 ** min(self.failures, 32)))
        self.failures += 1
        return base / 2 + self.rng.uniform(0.0, base / 2)

    def reset(self) -> None:
        self.failures = 0


class OutageLog:
    """One ERROR line when an outage starts (the BrokerError text), DEBUG while it lasts, one
    INFO line when the broker is reachable again."""

    def __init__(self, logger: logging.Logger, what: str, endpoint: str) -> None:
        self._log = logger
        self._what = what
        self._endpoint = endpoint
        self._since: float | None = None
        self._failures = 0
        self.last_error: BrokerError | None = None
        # Set on every failure and every (re)connection, for whoever watches the link.
        self.changed = asyncio.Event()

    @property
    def failures(self) -> int:
        """Failed attempts in the current outage (0 while connected)."""
        return self._failures

    def failed(self, exc: BaseException) -> BrokerError:
        err = BrokerError(
            f"MQTT broker {self._endpoint} unreachable ({self._what}): {exc or type(exc).__name__}; "
            "events wait in the outbox, reconnecting with back-off"
            if self._what == "publisher"
            else f"MQTT broker {self._endpoint} unreachable ({self._what}): "
            f"{exc or type(exc).__name__}; reconnecting with back-off"
        )
        self.last_error = err
        self._failures += 1
        if self._since is None:
            self._since = time.monotonic()
            self._log.error("%s", err)
        else:
            self._log.debug("%s (failure %d of this outage)", err, self._failures)
        self.changed.set()
        return err

    def connected(self) -> None:
        if self._since is not None:
            self._log.info(
                "MQTT broker %s reachable again (%s) after %.1f s, %d failed attempt(s)",
                self._endpoint,
                self._what,
                time.monotonic() - self._since,
                self._failures,
            )
        else:
            self._log.info("MQTT broker %s connected (%s)", self._endpoint, self._what)
        self._since = None
        self._failures = 0
        self.last_error = None
        self.changed.set()


def endpoint(settings: MqttSettings) -> str:
    return f"{settings.host}:{settings.port}"


def make_client(
    settings: MqttSettings,
    *,
    password: str | None,
    identifier: str,
    clean_session: bool,
    timeout_s: float,
    will: aiomqtt.Will | None = None,
) -> aiomqtt.Client:
    """A fresh client per connection: paho keeps unacknowledged messages of a dead connection
    in its own queue; the outbox, not paho, is our source of truth, so nothing is carried over.
    Must be called inside the running loop (aiomqtt binds to it)."""
    return aiomqtt.Client(
        settings.host,
        settings.port,
        username=settings.username or None,
        password=password,
        identifier=identifier,
        clean_session=clean_session,
        keepalive=settings.keepalive_s,
        timeout=timeout_s,
        will=will,
    )


def resolve_password(settings: MqttSettings) -> str | None:
    """Read the secret once, at start, so a missing environment variable fails loudly then
    instead of inside the reconnect loop."""
    if not settings.username:
        return None
    return settings.password.get() or None


async def sleep_unless(event: asyncio.Event, delay_s: float) -> bool:
    """Sleep ``delay_s`` or until ``event`` is set; True when the event cut the sleep short."""
    if event.is_set():
        return True
    try:
        await asyncio.wait_for(event.wait(), timeout=max(delay_s, 0.0))
    except TimeoutError:
        return False
    return True


QOS_AT_LEAST_ONCE = 1

Session = Callable[[aiomqtt.Client], Awaitable[None]]


class MqttLink:
    """One owned task keeping one role's connection to the broker.

    Each connection gets a fresh client (:func:`make_client`), subscribes ``subscription`` when
    given (again after every reconnect: a restarted broker may have lost the session), and only
    then counts as up; the role's ``session`` then runs on it. ``session`` returning ends the
    link (it returns once :attr:`stopping` is set and its work is done); an MqttError records
    the outage and reconnects after a back-off, until stopped.
    """

    def __init__(
        self,
        settings: MqttSettings,
        *,
        role: str,
        logger: logging.Logger,
        identifier: str,
        clean_session: bool,
        timeout_s: float,
        backoff: Backoff,
    ) -> None:
        self._settings = settings
        self._role = role
        self._log = logger
        self._identifier = identifier
        self._clean_session = clean_session
        self._timeout_s = timeout_s
        self.backoff = backoff
        self.outage = OutageLog(logger, role, endpoint(settings))
        self.stopping = asyncio.Event()
        self._up = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.client: aiomqtt.Client | None = None  # the live connection, for diagnostics

    @property
    def up(self) -> bool:
        return self._up.is_set()

    async def wait_up(self) -> None:
        await self._up.wait()

    def start(
        self,
        session: Session,
        *,
        task_name: str,
        subscription: str | None = None,
        will: Callable[[], aiomqtt.Will] | None = None,
    ) -> None:
        if self._task is not None:
            raise RuntimeError(f"{self._role} already started")
        password = resolve_password(self._settings)
        self._task = asyncio.get_running_loop().create_task(
            self._run(session, password, subscription, will), name=task_name
        )

    async def stop(self, *, deadline_s: float, let_finish: bool = True) -> None:
        """Ordered stop: set :attr:`stopping`; when ``let_finish``, give the session up to
        ``deadline_s`` to end by itself; then cancel whatever still runs."""
        task = self._task
        if task is None:
            return
        self.stopping.set()
        try:
            if let_finish:
                try:
                    await asyncio.wait_for(asyncio.shield(task), timeout=deadline_s)
                except TimeoutError:
                    self._log.warning("%s did not finish within %.1f s; cancelling", self._role, deadline_s)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        finally:
            self._task = None

    async def _run(
        self,
        session: Session,
        password: str | None,
        subscription: str | None,
        will: Callable[[], aiomqtt.Will] | None,
    ) -> None:
        while not self.stopping.is_set():
            client = make_client(
                self._settings,
                password=password,
                identifier=self._identifier,
                clean_session=self._clean_session,
                timeout_s=self._timeout_s,
                will=will() if will is not None else None,
            )
            try:
                async with client:
                    if subscription is not None:
                        await client.subscribe(subscription, qos=QOS_AT_LEAST_ONCE)
                    self.client = client
                    self.outage.connected()
                    self.backoff.reset()
                    self._up.set()
                    await session(client)
                    return
            except aiomqtt.MqttError as exc:
                self.outage.failed(exc)
            finally:
                self.client = None
                self._up.clear()
            await sleep_unless(self.stopping, self.backoff.next_delay_s())
