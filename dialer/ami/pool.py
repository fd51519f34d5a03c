"""Several Asterisk servers behind one worker.

Each endpoint gets its own :class:`AmiClient` (its own supervisor task, so one server down or
reconnecting never blocks the others). The pool counts the calls it placed on each server against
that server's ``max_calls`` and picks the least loaded connected server for a new call.

After every login (the first one included: a restarted worker must find the calls a crashed one
left behind) the pool reports :class:`ServerUp`; the worker then calls :meth:`ServerPool.reconcile`
to learn which attempts are still live on that server (``CoreShowChannels``), resumes tracking
those and settles the ones whose calls vanished. Nothing is re-originated by the pool.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from dialer.ami.client import AmiClient, AmiEvent, ConnState
from dialer.ami.signals import parse_attempt_uid
from dialer.config import AmiEndpoint, DialSettings
from dialer.errors import AmiActionError, AmiError
from dialer.logging import call_log

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ServerUp:
    server: str
    epoch: int  # 1 on the first login, more after each reconnect

    @property
    def reconnected(self) -> bool:
        return self.epoch > 1


@dataclass(frozen=True, slots=True)
class ServerLoad:
    server: str
    state: ConnState
    live_calls: int
    max_calls: int

    @property
    def free(self) -> int:
        return max(0, self.max_calls - self.live_calls) if self.state is ConnState.CONNECTED else 0


def live_attempts(channels: Iterable[dict[str, str]]) -> set[uuid.UUID]:
    """Attempt ids found in a CoreShowChannels listing: the ;1/;2 Uniqueids, and the Linkedid of
    any other channel (a trunk or operator leg still up after the Local halves went)."""
    found: set[uuid.UUID] = set()
    for ch in channels:
        lowered = {k.lower(): v for k, v in ch.items()}
        for key in ("uniqueid", "linkedid"):
            parsed = parse_attempt_uid(lowered.get(key, ""))
            if parsed is not None:
                found.add(parsed[0])
    return found


class ServerPool:
    """AMI clients for a list of endpoints, with per-server call accounting."""

    def __init__(
        self,
        endpoints: Sequence[AmiEndpoint],
        *,
        on_event: Callable[[AmiEvent], None],
        on_server_up: Callable[[ServerUp], None] | None = None,
        client_factory: Callable[..., AmiClient] = AmiClient,
    ) -> None:
        if not endpoints:
            raise AmiError("no AMI endpoint configured ([[ami]] in the config)")
        names = [ep.name for ep in endpoints]
        if len(set(names)) != len(names):
            raise AmiError(f"AMI endpoint names must be unique, got {names}")
        self._on_server_up = on_server_up
        self.clients: dict[str, AmiClient] = {
            ep.name: client_factory(ep, on_event=on_event, on_state=self._state_changed) for ep in endpoints
        }
        self._calls: dict[str, set[uuid.UUID]] = {name: set() for name in names}
        self._where: dict[uuid.UUID, str] = {}

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        for client in self.clients.values():
            client.start()

    async def wait_any_ready(self, timeout_s: float) -> None:
        """Wait until at least one server is logged in; AmiError naming each one's problem if not."""
        waits = {asyncio.ensure_future(c.wait_ready(timeout_s)): c for c in self.clients.values()}
        pending = set(waits)
        try:
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                failures = [t.exception() for t in done]  # retrieve every outcome
                if any(exc is None for exc in failures):
                    return
        finally:
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        problems = "; ".join(str(t.exception()) for t in waits)
        raise AmiError(f"no Asterisk server reachable: {problems}")

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.clients.values()), return_exceptions=True)

    def _state_changed(self, client: AmiClient, state: ConnState) -> None:
        log.info("AMI %s: %s", client.name, state)
        if state is ConnState.CONNECTED and self._on_server_up is not None:
            self._on_server_up(ServerUp(client.name, client.epoch))

    # -- capacity ----------------------------------------------------------------------------

    def loads(self) -> list[ServerLoad]:
        return [
            ServerLoad(name, c.state, len(self._calls[name]), c.endpoint.max_calls) for name, c in self.clients.items()
        ]

    @property
    def free_slots(self) -> int:
        return sum(load.free for load in self.loads())

    def describe(self) -> str:
        return ", ".join(f"{x.server} {x.state} {x.live_calls}/{x.max_calls}" for x in self.loads())

    def pick(self) -> AmiClient | None:
        """The connected server with free capacity and the lowest load ratio, or None."""
        best: tuple[float, int, str] | None = None
        for load in self.loads():
            if load.free <= 0:
                continue
            key = (load.live_calls / load.max_calls, load.live_calls, load.server)
            if best is None or key < best:
                best = key
        return self.clients[best[2]] if best is not None else None

    def server_of(self, attempt_id: uuid.UUID) -> str | None:
        return self._where.get(attempt_id)

    def calls_on(self, server: str) -> frozenset[uuid.UUID]:
        return frozenset(self._calls[server])

    def assign(self, attempt_id: uuid.UUID, server: str) -> None:
        """Count an attempt against a server (also used to adopt live calls after a restart)."""
        if server not in self.clients:
            raise AmiError(f"unknown AMI server {server!r}")
        previous = self._where.get(attempt_id)
        if previous is not None:
            self._calls[previous].discard(attempt_id)
        self._calls[server].add(attempt_id)
        self._where[attempt_id] = server

    def release(self, attempt_id: uuid.UUID) -> None:
        """The attempt's call is over (CallGone, or settled after a reconcile)."""
        server = self._where.pop(attempt_id, None)
        if server is not None:
            self._calls[server].discard(attempt_id)

    # -- calls ----------------------------------------------------------------------------

    async def originate(
        self,
        attempt_id: uuid.UUID,
        number: str,
        settings: DialSettings,
        *,
        audiosocket_addr: str,
        variables: dict[str, str] | None = None,
        ring_timeout_s: float | None = None,
        caller_id: str | None = None,
    ) -> AmiClient:
        """Place the call on the best server; returns that server's client.

        Refused by Asterisk (AmiActionError): nothing was dialled, the slot is freed. Timed out or
        connection lost: the call may exist, so the slot stays taken until the worker reconciles
        that server and releases the attempt.
        """
        client = self.pick()
        if client is None:
            raise AmiError(f"no Asterisk server with free capacity ({self.describe()})")
        self.assign(attempt_id, client.name)
        try:
            await client.originate(
                attempt_id,
                number,
                settings,
                audiosocket_addr=audiosocket_addr,
                variables=variables,
                ring_timeout_s=ring_timeout_s,
                caller_id=caller_id,
            )
        except AmiActionError:
            self.release(attempt_id)
            raise
        return client

    def client_for(self, attempt_id: uuid.UUID) -> AmiClient:
        server = self._where.get(attempt_id)
        if server is None:
            raise AmiError(f"attempt {attempt_id} is not on any AMI server")
        return self.clients[server]

    async def hangup(self, attempt_id: uuid.UUID, cause: int | None = None) -> bool:
        """Hang up the attempt's ``;1`` half (its Uniqueid is the attempt id); Local/ tears the
        rest down. False if it was already gone."""
        client = self.client_for(attempt_id)
        done = await client.hangup(str(attempt_id), cause)
        call_log(
            log, "hangup_sent" if done else "hangup_gone", attempt_id, str(attempt_id), server=client.name, cause=cause
        )
        return done

    async def redirect(self, attempt_id: uuid.UUID, context: str, exten: str, priority: int = 1) -> bool:
        client = self.client_for(attempt_id)
        done = await client.redirect(str(attempt_id), context, exten, priority)
        call_log(
            log,
            "redirected" if done else "redirect_gone",
            attempt_id,
            str(attempt_id),
            server=client.name,
            context=context,
        )
        return done

    async def send_dtmf(self, attempt_id: uuid.UUID, digits: str) -> bool:
        """Dial an extension into the attempt's call (``;1``, whose Uniqueid is the attempt id): an
        organisation's IVR answered and the contact has a known extension («доб. 123»). The
        worker keeps analysing afterwards: a person reached that way goes to an operator. False
        if the call is gone."""
        client = self.client_for(attempt_id)
        done = await client.play_dtmf(str(attempt_id), digits)
        call_log(log, "dtmf_sent" if done else "dtmf_gone", attempt_id, str(attempt_id), server=client.name)
        return done

    async def reconcile(self, server: str) -> set[uuid.UUID]:
        """Attempt ids with a channel still live on ``server`` (CoreShowChannels).

        The worker compares with :meth:`calls_on`: attempts in both are resumed, attempts only in
        ``calls_on`` vanished while we were away (settle them, then :meth:`release`), attempts only
        in the result were placed by an earlier run (adopt with :meth:`assign`, or hang up).
        """
        client = self.clients.get(server)
        if client is None:
            raise AmiError(f"unknown AMI server {server!r}")
        return live_attempts(await client.core_show_channels())
