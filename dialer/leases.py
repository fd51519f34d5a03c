"""Claim leases for the worker (`dialer run`): renew this worker's claims, recover expired ones.

Every claim is a lease (dialer.storage.leases). While a worker lives it renews the leases of the
contacts it is working on every ``heartbeat_s``. A worker that dies (``kill -9``, power, a network
partition from the database) stops renewing; ``lease_s`` later its claims have run out and ANY
worker — whatever its id — takes them over and recovers them, reconciling with Asterisk first:

* claimed but never started → released (pending, due now);
* an open attempt whose call is still live on Asterisk (``CoreShowChannels`` lists its attempt
  id) → adopted: counted against that server, never dialled again, never hung up or redirected by
  us (its first worker may still be alive behind a partition, and a call that lives on after its
  worker died is a person with the operators), followed to its end, then closed;
* an open attempt with no live call → closed as our own failure (class ``aborted``, not counted
  against the contact's attempts, no journal line) and due again at once.

An adopted call that was with the operators (the Local ``;1`` half in the operator context or in
``Queue``) is closed as ``unsure_answered`` (the rules settle it «handed to operator», as any call
handed over undecided): a person reached the operators and must not be dialled again at once.
Every other adopted call is closed as ``aborted`` like a call that was gone.

A worker restarting under the id of an earlier process takes that process's claims over at once
(a worker id is one process). Workers never hang up calls they do not know: with several workers
on one Asterisk, a call unknown to this worker is another worker's.

The worker calls :meth:`LeaseKeeper.start` before dispatching, claims through :meth:`claim_due`,
forwards AMI events (:meth:`on_ami_event`) and server logins (:meth:`poke`), and
:meth:`stop` after its drain.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from dialer.ami.client import AmiEvent
from dialer.ami.pool import ServerPool, live_attempts
from dialer.ami.signals import parse_attempt_uid
from dialer.config import LeaseSettings
from dialer.domain.model import CallClass, Contact, Evidence, Outcome
from dialer.domain.policy import apply_attempt
from dialer.domain.rules import RulesTable
from dialer.domain.schedule import CallingWindows
from dialer.errors import AmiError, DialerError
from dialer.storage.campaigns import CampaignSettings
from dialer.storage.dialling import ClaimedContact, DiallingStore
from dialer.storage.leases import LeaseStore, OpenAttempt, TakenOver
from dialer.tasks import OwnedTasks

log = logging.getLogger(__name__)

# Events of an adopted call arrive in bursts (a hang-up is several events): look once they settle.
ADOPTED_CHECK_DEBOUNCE_S = 0.2
_OPERATOR_APPS = frozenset({"queue", "appqueue"})


class Clock(Protocol):
    def now(self) -> datetime: ...


@dataclass
class LeaseStats:
    renewals: int = 0
    leases_lost: int = 0  # ours, taken over by another worker after our heartbeats failed
    taken_over: int = 0
    released: int = 0  # expired claims that had not started an attempt
    closed_gone: int = 0  # open attempts with no live call: closed as our own failure
    adopted: int = 0  # open attempts whose call was still live
    adopted_closed: int = 0
    postponed: int = 0  # Asterisk could not be asked; retried after the next lease


@dataclass(eq=False)
class _Adopted:
    attempt_id: uuid.UUID
    contact_id: int
    attempt_no: int
    server: str
    previous_owner: str | None
    with_operators: bool = False


@dataclass(frozen=True)
class _Live:
    """One server's CoreShowChannels, read once per round."""

    attempts: frozenset[uuid.UUID]
    with_operators: frozenset[uuid.UUID]


class LeaseKeeper:
    def __init__(
        self,
        *,
        repo: DiallingStore,
        pool: ServerPool,
        worker_id: str,
        settings: LeaseSettings,
        rules: RulesTable,
        clock: Clock,
        wall_clock: Clock,
        held: Callable[[], Collection[int]],
        operator_context: str,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = LeaseStore(repo)
        self.repo = repo
        self.pool = pool
        self.worker_id = worker_id
        self.settings = settings
        self.rules = rules
        self.clock = clock  # domain time: journal dates, due times
        self.wall_clock = wall_clock  # lease times (shared by every worker)
        self.held = held  # contact ids this worker is working on (claimed, verdict not yet written)
        self.operator_context = operator_context
        self.on_change = on_change
        self.stats = LeaseStats()
        self._adopted: dict[uuid.UUID, _Adopted] = {}
        self._poke = asyncio.Event()
        self._tasks = OwnedTasks(log)
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = False
        self._fresh: dict[int, float] = {}  # contact id → monotonic time of its claim, until started
        self._reported_lost: set[int] = set()
        # A claim not started as a call within this long is left to run out (its start failed).
        self.start_deadline_s = max(60.0, 4 * settings.lease_s)

    # ---- what the worker calls ------------------------------------------------------------------

    def lease_until(self) -> datetime:
        """The expiry to give a claim made now."""
        return self.wall_clock.now() + timedelta(seconds=self.settings.lease_s)

    async def claim_due(
        self, campaign: str, now: datetime, limit: int, concurrency_cap: int | None = None
    ) -> list[ClaimedContact]:
        """Claim for this worker with a fresh lease. The claims are renewed from now on, also
        while the worker is still starting the batch (a big batch on a slow database can take
        longer than a lease), until the worker holds them as calls — or, for a claim whose start
        failed, until ``start_deadline_s`` has passed: then it runs out and is recovered."""
        claimed = await self.repo.claim_due(
            campaign, self.worker_id, now, limit, concurrency_cap, lease_until=self.lease_until()
        )
        at = time.monotonic()
        for c in claimed:
            self._fresh[c.contact.id] = at
        return claimed

    async def give_back(self, failed: ClaimedContact, unstarted: Sequence[ClaimedContact]) -> None:
        """Starting ``failed`` raised (the database went away mid-batch): it is left to run out
        (its attempt row may exist; recovery closes it), the ``unstarted`` rest are released now
        when the database allows, else they run out too. None of them is renewed any more."""
        for c in (failed, *unstarted):
            self._fresh.pop(c.contact.id, None)
        now = self.clock.now()
        for c in unstarted:
            try:
                await self.repo.release(c, now)
            except DialerError:
                return  # the rest run out and are recovered

    def _held(self) -> set[int]:
        """Contacts this worker works on: its calls, and claims it is still starting."""
        calls = set(self.held())
        limit = time.monotonic() - self.start_deadline_s
        for cid, at in list(self._fresh.items()):
            if cid in calls or at < limit:
                del self._fresh[cid]
        return calls | set(self._fresh)

    async def start(self) -> None:
        """Recover what expired (and this worker id's earlier claims), then keep renewing."""
        await self._round(first=True)
        self._loop_task = self._tasks.spawn(self._loop(), name="leases")

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Stop renewing (after the worker's drain). Calls still adopted keep their lease until it
        runs out; then another worker follows them. A round in progress may finish its database
        work first (a cancelled SQLite writer can keep the lock)."""
        task, self._loop_task = self._loop_task, None
        if task is not None:
            self._stopping = True
            self._poke.set()
            await asyncio.wait({task}, timeout=timeout_s)
        await self._tasks.cancel_all()

    def poke(self) -> None:
        """Look again now (an Asterisk server logged in, or an adopted call changed)."""
        self._poke.set()

    def on_ami_event(self, event: AmiEvent) -> None:
        if not self._adopted:
            return
        for key in ("Uniqueid", "Linkedid"):
            parsed = parse_attempt_uid(event.get(key))
            if parsed is not None and parsed[0] in self._adopted:
                self._poke.set()
                return

    @property
    def adopted(self) -> frozenset[uuid.UUID]:
        return frozenset(self._adopted)

    def health(self) -> dict[str, Any]:
        return {"adopted_live": len(self._adopted), **asdict(self.stats)}

    # ---- the loop -------------------------------------------------------------------------------

    async def _loop(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._poke.wait(), self.settings.heartbeat_s)
                if not self._stopping:
                    await asyncio.sleep(ADOPTED_CHECK_DEBOUNCE_S)
            except TimeoutError:
                pass
            if self._stopping:
                return
            self._poke.clear()
            await self._round(first=False)

    async def _round(self, *, first: bool) -> None:
        try:
            await self._renew()
            await self._follow_adopted()
            await self._recover(first=first)
        except DialerError as exc:
            # The database or Asterisk is away: leases are renewed and recovered next round.
            log.warning("leases: %s", exc)

    async def _renew(self) -> None:
        ours = self._held()
        adopted = {a.contact_id for a in self._adopted.values()}
        wanted = ours | adopted
        if not wanted:
            return
        kept = await self.store.renew(self.worker_id, wanted, self.lease_until())
        self.stats.renewals += 1
        missing = wanted - kept
        if not missing:
            return
        # A claim started and finished between two rounds is no longer in progress: forget it.
        for cid in missing:
            self._fresh.pop(cid, None)
        # A contact whose verdict was written meanwhile is no longer held either: not a loss.
        held = set(self.held())
        lost = (missing & held) - self._reported_lost
        self._reported_lost = (self._reported_lost & held) | lost
        for cid in lost:
            self.stats.leases_lost += 1
            log.error(
                "lease on contact %d was taken over by another worker (our heartbeats failed for over %.0f s); "
                "its verdict is written by whoever sees the call end first",
                cid,
                self.settings.lease_s,
            )
        for a in [a for a in self._adopted.values() if a.contact_id in missing]:
            log.warning("adopted call %s (contact %d) is no longer ours; stop following it", a.attempt_id, a.contact_id)
            self._drop_adopted(a)

    # ---- Asterisk ---------------------------------------------------------------------------------

    async def _live(self, servers: Collection[str]) -> dict[str, _Live]:
        """CoreShowChannels of each named server this worker is connected to."""
        out: dict[str, _Live] = {}
        for name in servers:
            client = self.pool.clients.get(name)
            if client is None or not client.connected:
                continue
            try:
                channels = await client.core_show_channels()
            except AmiError as exc:
                log.warning("leases: cannot list the channels of %s: %s", name, exc)
                continue
            operators: set[uuid.UUID] = set()
            for ch in channels:
                fields = {k.lower(): v for k, v in ch.items()}
                in_queue = fields.get("application", "").lower() in _OPERATOR_APPS
                if fields.get("context") != self.operator_context and not in_queue:
                    continue
                for key in ("uniqueid", "linkedid"):
                    parsed = parse_attempt_uid(fields.get(key, ""))
                    if parsed is not None:
                        operators.add(parsed[0])
            out[name] = _Live(frozenset(live_attempts(channels)), frozenset(operators))
        return out

    # ---- adopted calls ------------------------------------------------------------------------------

    async def _follow_adopted(self) -> None:
        if not self._adopted:
            return
        live = await self._live({a.server for a in self._adopted.values()})
        for a in list(self._adopted.values()):
            snapshot = live.get(a.server)
            if snapshot is None:
                continue  # not connected to its server now: look again after the next login
            if a.attempt_id in snapshot.with_operators:
                a.with_operators = True
            if a.attempt_id not in snapshot.attempts:
                await self._close_adopted(a)

    def _adopt(self, t: TakenOver, attempt: OpenAttempt, server: str, with_operators: bool) -> None:
        a = _Adopted(attempt.id, t.contact_id, attempt.attempt_no, server, t.previous_owner, with_operators)
        self._adopted[a.attempt_id] = a
        self.pool.assign(a.attempt_id, server)
        self.stats.adopted += 1
        log.warning(
            "contact %d: worker %s's lease ran out while call %s was live on %s; following it to its end%s",
            t.contact_id,
            t.previous_owner,
            attempt.id,
            server,
            " (it is with the operators)" if with_operators else "",
        )

    def _drop_adopted(self, a: _Adopted) -> None:
        self._adopted.pop(a.attempt_id, None)
        self.pool.release(a.attempt_id)

    async def _close_adopted(self, a: _Adopted) -> None:
        now = self.clock.now()
        if a.with_operators:
            contact, campaign = await self.store.contact(a.contact_id)
            evidence = Evidence(
                CallClass.UNSURE_ANSWERED,
                0.0,
                f"recovered by {self.worker_id}: worker {a.previous_owner} stopped mid-call; the call was with "
                f"the operators on {a.server} until it ended",
                answered=True,
            )
            outcome = _rules_outcome(contact, campaign, CallClass.UNSURE_ANSWERED, a.attempt_no, now, self.rules)
        else:
            evidence = Evidence(
                CallClass.ABORTED,
                0.0,
                f"recovered by {self.worker_id}: worker {a.previous_owner} stopped mid-call; the call on {a.server} "
                "was followed to its end",
            )
            outcome = _our_failure(now)
        await self.repo.finish_attempt(
            a.attempt_id, evidence, outcome, now, counts_as_attempt=outcome.counts_as_attempt
        )
        self._drop_adopted(a)
        self.stats.adopted_closed += 1
        log.info("adopted call %s (contact %d) ended; closed as %s", a.attempt_id, a.contact_id, evidence.call_class)
        self.on_change()

    # ---- expired claims -----------------------------------------------------------------------------

    async def _recover(self, *, first: bool) -> None:
        while True:
            taken = await self.store.take_over_expired(
                self.worker_id,
                self.wall_clock.now(),
                self.lease_until(),
                previous_run_of=self.worker_id if first else None,
                keep=self._held() | {a.contact_id for a in self._adopted.values()},
            )
            if not taken:
                return
            self.stats.taken_over += len(taken)
            servers = {a.server_name for t in taken for a in t.attempts if a.server_name} or set()
            if any(a.server_name is None for t in taken for a in t.attempts):
                servers |= set(self.pool.clients)
            live = await self._live(servers)
            changed = False
            for t in taken:
                changed |= await self._recover_one(t, live)
            if changed:
                self.on_change()
            if len(taken) < 200:
                return

    async def _recover_one(self, t: TakenOver, live: dict[str, _Live]) -> bool:
        now = self.clock.now()
        if not t.attempts:
            if await self.store.release_unstarted(t.contact_id, t.claim_token, now, now):
                self.stats.released += 1
                log.info(
                    "contact %d: worker %s's claim ran out before an attempt started; due again",
                    t.contact_id,
                    t.previous_owner,
                )
                return True
            return False
        changed = False
        for attempt in t.attempts:
            candidates = [attempt.server_name] if attempt.server_name else sorted(self.pool.clients)
            found = next((s for s in candidates if s in live and attempt.id in live[s].attempts), None)
            if found is not None:
                self._adopt(t, attempt, found, attempt.id in live[found].with_operators)
                continue
            askable = all(s in live for s in candidates) and bool(candidates)
            too_old = (now - attempt.started_at).total_seconds() > self.settings.give_up_s
            if not askable and not too_old:
                # Its Asterisk cannot be asked now: keep the lease we took (not renewed) and look
                # again when it runs out.
                self.stats.postponed += 1
                log.warning(
                    "contact %d: cannot ask %s whether call %s is still live; trying again in %.0f s",
                    t.contact_id,
                    attempt.server_name or "any Asterisk",
                    attempt.id,
                    self.settings.lease_s,
                )
                continue
            why = (
                f"the call was not live on {attempt.server_name or 'any Asterisk'}"
                if askable
                else f"{attempt.server_name or 'its Asterisk'} could not be asked for {self.settings.give_up_s:.0f} s"
            )
            evidence = Evidence(
                CallClass.ABORTED,
                0.0,
                f"recovered by {self.worker_id}: worker {t.previous_owner}'s lease ran out and {why}",
            )
            await self.repo.finish_attempt(attempt.id, evidence, _our_failure(now), now, counts_as_attempt=False)
            self.stats.closed_gone += 1
            changed = True
            log.warning(
                "contact %d: attempt %s of worker %s closed as our own failure (%s); due again",
                t.contact_id,
                attempt.id,
                t.previous_owner,
                why,
            )
        return changed


def _our_failure(now: datetime) -> Outcome:
    """Closed without a verdict: not counted, no journal line (the contact never heard one), due
    again at once."""
    return Outcome(
        settled=False,
        result=None,
        incorrect_contact=False,
        next_due_at=now,
        journal_line="",
        rule=CallClass.ABORTED.value,
        counts_as_attempt=False,
    )


def _rules_outcome(
    contact: Contact,
    campaign: CampaignSettings,
    call_class: CallClass,
    attempt_no: int,
    now: datetime,
    rules: RulesTable,
) -> Outcome:
    windows = CallingWindows.parse(campaign.weekday_window, campaign.weekend_window)
    tz = contact.timezone or campaign.timezone
    return apply_attempt(contact, call_class, attempt_no, now, rules, windows, tz)


__all__ = ["LeaseKeeper", "LeaseStats"]
