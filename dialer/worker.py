"""The worker loop (`dialer run`): claim due contacts, originate, let one call session per call
decide, carry out its commands, record every attempt.

Wiring (the composition root, dialer.app, builds these):

    Repository ──claim──► Worker ──originate/hangup/redirect──► ServerPool (AMI)
        ▲                   │ registers                             │ events
        │ finish_attempt    ▼                                       ▼
        └────────────── CallRegistry ──► LiveCall ──► CallSession ◄─ Correlator
                            ▲ audio by attempt id        │ recognizer commands
               AudioSocketServer                    AsrService (executor)

Shutdown is ordered (arq style): stop claiming, let live calls finish up to ``drain_s``, then feed
``StopRequested`` (undecided answered calls go to an operator, others are hung up and recorded as
aborted), wait for Asterisk to confirm, and only then return. Attempt results are written under
``asyncio.shield`` so a cancellation never loses a verdict that was reached.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential, wait_random

from dialer.ami import signals as sig
from dialer.ami.pool import ServerPool
from dialer.asr.service import AsrService
from dialer.calls import CallClock, CallRegistry, LiveCall
from dialer.config import DialSettings, LeaseSettings
from dialer.domain.compliance import ComplianceConfig
from dialer.domain.model import CallClass, Evidence
from dialer.domain.policy import apply_attempt
from dialer.domain.rules import RulesTable
from dialer.domain.schedule import CallingWindows, dropped_callback_times
from dialer.errors import AmiError, AsrUnavailable, DialerError, StorageError
from dialer.handover import handover_variables
from dialer.leases import LeaseKeeper
from dialer.logging import call_log
from dialer.metrics import Metrics
from dialer.pacing.live import LivePacing, PacingConfig
from dialer.session.inputs import (
    Answered,
    Command,
    Gone,
    HandToOperator,
    Hangup,
    Input,
    OriginateRejected,
    OriginateResult,
    Record,
    RedirectFailed,
    SendDigits,
    StopRequested,
)
from dialer.session.recording import Recorder
from dialer.session.session import CallPhase, SessionSetup
from dialer.storage.campaigns import CampaignSettings
from dialer.storage.dialling import ClaimedContact, DiallingStore
from dialer.tasks import OwnedTasks

log = logging.getLogger(__name__)

STOP_DISPATCH_S = 10.0  # at shutdown, how long the dispatcher may take to finish its round


class Clock(Protocol):
    """Wall-clock time for the domain (due times, journal dates)."""

    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True)
class WorkerConfig:
    worker_id: str
    campaigns: tuple[str, ...]  # empty: every campaign in the database
    dial: DialSettings
    audiosocket_addr: str  # what Asterisk connects to (host:port)
    concurrency_override: int | None = None
    drain_s: float = 30.0  # graceful stop: let live calls finish this long
    idle_wait_s: float = 2.0  # safety re-check when nothing is due; wake-ups are event-driven
    time_scale: float = 1.0  # simulator only: 0.05 = everything 20× faster
    redirect_retry_s: float = 10.0  # keep retrying a person's hand-over through an AMI reconnect
    originate_grace_s: float = 2.0  # after a failed OriginateResponse, wait this long for channel events
    leases: LeaseSettings = field(default_factory=LeaseSettings)  # claim leases (dialer.leases)
    pacing: PacingConfig = field(default_factory=PacingConfig)  # PACING: modes per campaign (dialer.pacing)
    # COMPLIANCE: attempt caps, holiday calendar, caller id per campaign (dialer.domain.compliance)
    compliance: ComplianceConfig = field(default_factory=ComplianceConfig)


@dataclass
class WorkerStats:
    originated: int = 0
    finished: int = 0
    handed_to_operator: int = 0
    hung_up_by_us: int = 0
    originate_failed: int = 0
    recovered: int = 0


@dataclass(frozen=True, slots=True)
class CallContext:
    """The worker's own data about one live call."""

    claimed: ClaimedContact
    campaign: CampaignSettings


class Worker:
    def __init__(
        self,
        *,
        config: WorkerConfig,
        repo: DiallingStore,
        pool: ServerPool,
        registry: CallRegistry,
        setup: SessionSetup,
        rules: RulesTable,
        clock: Clock,
        audio: bool = True,
        asr: AsrService | None = None,
        recorder: Recorder | None = None,
        notify_events: Callable[[], None] = lambda: None,
        on_call_finished: Callable[[uuid.UUID, ClaimedContact, Evidence], None] | None = None,
        wall_clock: Clock | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.config = config
        self.repo = repo
        self.pool = pool
        self.registry = registry
        self.setup = setup
        self.rules = rules
        self.clock = clock
        self.audio = audio  # AudioSocket analysis is on (off: every answered call goes to an operator)
        self.asr = asr
        self.recorder = recorder
        self.notify_events = notify_events
        self.on_call_finished = on_call_finished
        self.stats = WorkerStats()
        self.metrics = metrics if metrics is not None else Metrics()  # METRICS: unserved when not given
        repo.compliance = config.compliance  # COMPLIANCE: the claim skips capped contacts
        self._tasks = OwnedTasks(log)
        self._wake = asyncio.Event()
        self._accepting = True
        self._campaign_cache: dict[str, CampaignSettings] = {}
        self.activity = asyncio.Event()  # set after every recorded attempt (status reporting)
        # LEASES: renews this worker's claims, recovers expired ones of any worker (dialer.leases).
        self.leases = self._lease_keeper(wall_clock or SystemClock())
        registry.subscribe_unrouted(self.leases.on_ami_event)  # LEASES: calls adopted from a dead worker
        # PACING: operators' queue events (no call's ids) feed the tracker; changes wake the dispatcher.
        self.pacing = LivePacing(
            config.pacing,
            registry=registry,
            pool=pool,
            now_s=lambda: time.monotonic() / config.time_scale,
            wake=self.wake,
        )
        registry.subscribe_unrouted(self.pacing.on_ami_event)  # PACING

    def _lease_keeper(self, wall_clock: Clock) -> LeaseKeeper:
        return LeaseKeeper(
            repo=self.repo,
            pool=self.pool,
            worker_id=self.config.worker_id,
            settings=self.config.leases,
            rules=self.rules,
            clock=self.clock,
            wall_clock=wall_clock,
            held=lambda: {c.context.claimed.contact.id for c in self.registry if not c.finished.is_set()},
            operator_context=self.config.dial.operator_context,
            on_change=self._leases_changed,
        )

    def _leases_changed(self) -> None:
        st = self.leases.stats
        self.stats.recovered = st.released + st.closed_gone + st.adopted_closed
        self.notify_events()
        self.activity.set()
        self._wake.set()

    def wake(self) -> None:
        """New work may be due (import, operator command, call-back request)."""
        self._wake.set()

    # ---- main loop ----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> WorkerStats:
        # LEASES: recover expired claims (reconciled with Asterisk) before dialling, then renew ours.
        await self.leases.start()
        # what "up" means to an operator (and the fault lab): Asterisk reached, the speech model
        # loaded, claims recovered — calls start from here
        campaigns = ", ".join(self.config.campaigns) or "all"
        log.info("worker %s dialling (campaigns: %s)", self.config.worker_id, campaigns)
        dispatcher = self._spawn(self._dispatch(stop), name="dispatch")
        reconciler = self._spawn(self._reconcile_loop(stop), name="reconcile")
        await stop.wait()
        log.info("worker %s stopping: no new calls, draining %d live", self.config.worker_id, len(self.registry))
        self._accepting = False
        self._wake.set()
        # The dispatcher may be inside a database transaction: let it finish its round rather
        # than cancel it mid-write (a cancelled SQLite writer can keep the lock).
        reconciler.cancel()
        done, _pending = await asyncio.wait({dispatcher}, timeout=STOP_DISPATCH_S)
        if not done:
            dispatcher.cancel()
        await asyncio.gather(dispatcher, reconciler, return_exceptions=True)
        await self._drain()
        await self.leases.stop()  # LEASES: live calls kept their leases through the drain
        return self.stats

    async def _dispatch(self, stop: asyncio.Event) -> None:
        while self._accepting and not stop.is_set():
            started = 0
            try:
                started = await self._fill_capacity()
            except (StorageError, AmiError) as exc:
                log.warning("dispatch: %s", exc)
            if started == 0:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), self.config.idle_wait_s * self.config.time_scale)
                except TimeoutError:
                    pass

    async def _campaigns(self) -> list[CampaignSettings]:
        names = self.config.campaigns or tuple(await self.repo.campaign_names())
        out = []
        for n in names:
            if n not in self._campaign_cache:
                self._campaign_cache[n] = await self.repo.campaign_settings(n)
            out.append(self._campaign_cache[n])
        return out

    async def _fill_capacity(self) -> int:
        started = 0
        for camp in await self._campaigns():
            free = self.pool.free_slots
            if free <= 0:
                break
            cap = self.config.concurrency_override or camp.concurrency
            want = min(free, cap - self.live_calls_of(camp.name))
            want = self.pacing.allowed(camp.name, want)  # PACING: free operators, abandonment cap
            if want <= 0:
                continue
            now = self.clock.now()
            claim_started = time.perf_counter()  # METRICS
            claimed = await self.leases.claim_due(camp.name, now, want, cap)  # LEASES: claims are leases
            self.metrics.claimed(time.perf_counter() - claim_started)  # METRICS
            for i, c in enumerate(claimed):
                try:
                    await self._start_call(c, camp)
                except DialerError:
                    await self.leases.give_back(claimed[i], claimed[i + 1 :])  # LEASES: the rest go back now
                    raise
                started += 1
        return started

    # ---- one call -------------------------------------------------------------------------------

    async def _start_call(self, claimed: ClaimedContact, camp: CampaignSettings) -> None:
        attempt_id = uuid.uuid4()
        loop = asyncio.get_running_loop()
        decoding = self.asr is not None and self.asr.ready and self.audio
        extension = claimed.contact.extension
        session = self.setup.session(attempt_id, decoding=decoding, audio=self.audio, extension=extension)
        recording = None
        if self.recorder is not None:
            recording = self.recorder.open_call(attempt_id, self._recording_meta(claimed, camp, decoding))
        call = LiveCall(
            session,
            CallClock(loop.time(), self.config.time_scale),
            self,
            context=CallContext(claimed, camp),
            recording=recording,
            record_until_decision=self.recorder is None or self.recorder.settings.until == "decision",
        )
        if decoding and self.asr is not None:
            try:
                call.asr = self.asr.open_channel(call.feed, name=str(attempt_id))
            except AsrUnavailable as exc:
                log.warning("attempt %s: no speech recognition: %s", attempt_id, exc)
        await self.repo.start_attempt(claimed, attempt_id, self.clock.now())
        self.registry.add(call)
        number = (claimed.contact.e164 or "").lstrip("+")
        call_log(log, "originate", attempt_id, None, contact=claimed.contact.external_id, attempt_no=claimed.attempt_no)
        try:
            client = await self.pool.originate(
                attempt_id,
                number,
                self.config.dial,
                audiosocket_addr=self.config.audiosocket_addr,
                variables=handover_variables(claimed, camp.name),  # PACING: the operators' context
                # COMPLIANCE: the campaign's own caller id; none: [dial] caller_id
                caller_id=self.config.compliance.for_campaign(camp.name).caller_id or None,
            )
        except (AmiError, DialerError) as exc:
            self.stats.originate_failed += 1
            self.metrics.originated(None, ok=False)  # METRICS
            call.feed(OriginateRejected(str(exc)))
            return
        self.stats.originated += 1
        self.metrics.originated(client.name, ok=True)  # METRICS
        call.server = client.name
        call.uniqueid = str(attempt_id)
        try:
            await self.repo.note_channel(attempt_id, asterisk_uniqueid=call.uniqueid, server_name=client.name)
        except StorageError as exc:
            log.warning("attempt %s: could not note channel: %s", attempt_id, exc)

    def _recording_meta(self, claimed: ClaimedContact, camp: CampaignSettings, decoding: bool) -> dict[str, Any]:
        return {
            "started_at": self.clock.now().isoformat(),
            "campaign": camp.name,
            "contact": claimed.contact.external_id,
            "attempt_no": claimed.attempt_no,
            "worker": self.config.worker_id,
            "decoding": decoding,
            "engine": self.asr.engine.name if decoding and self.asr is not None else None,
            "audio": self.audio,
            "extension": claimed.contact.extension,
            "number": claimed.contact.e164,  # LEARN: the carrier / number range of an unknown announcement
            "settings": self.setup.describe(),
            "time_scale": self.config.time_scale,  # a simulator's: its real-time budgets were stretched
        }

    def _check_failed_originate(self, call: LiveCall) -> None:
        """A failed originate may have created no channel at all; then no Hangup will ever come."""
        corr = self.registry.correlator
        if call.gone or call.attempt_id not in self.registry or not corr.is_tracked(call.attempt_id):
            return
        facts = corr.facts(call.attempt_id)
        if facts.channels_live:
            return
        if not facts.uniqueids:
            corr.forget(call.attempt_id)
            self.pool.release(call.attempt_id)
            call.feed(OriginateRejected("OriginateResponse Failure and no channel was created"))
            return
        gone = corr.finish(call.attempt_id, asyncio.get_running_loop().time())
        if gone is not None:
            call.feed(gone)

    # ---- what a call asks for (CallEffects) -----------------------------------------------------

    def carry_out(self, call: LiveCall, commands: Sequence[Command]) -> None:
        self._spawn(self._execute(call, commands), name=f"call-{call.attempt_id}")

    async def _execute(self, call: LiveCall, commands: Sequence[Command]) -> None:
        for cmd in commands:
            match cmd:
                case Hangup():
                    self.stats.hung_up_by_us += 1
                    await self._safely(self.pool.hangup(call.attempt_id), call, "hangup")
                case HandToOperator():
                    self.stats.handed_to_operator += 1
                    failure = await self._redirect_to_operator(call)
                    if failure is not None:
                        log.error("attempt %s: redirect to operators failed: %s", call.attempt_id, failure)
                        call.feed(RedirectFailed(failure))
                case SendDigits(digits=digits):
                    await self._safely(self.pool.send_dtmf(call.attempt_id, digits), call, "dtmf")
                case Record(evidence=evidence):
                    await asyncio.shield(self._record(call, evidence))
        if call.session.decision is not None:
            await call.aclose_asr()
        self._forget_if_done(call)

    def observe(self, call: LiveCall, inp: Input) -> None:
        match inp:
            case OriginateResult() if not inp.success:
                # A failed originate may have created no channel at all; then no Hangup will ever
                # come. Look again shortly instead of waiting for the call time cap.
                loop = asyncio.get_running_loop()
                grace_s = self.config.originate_grace_s * self.config.time_scale
                call.originate_check = loop.call_later(grace_s, self._check_failed_originate, call)
            case Gone():
                self.pool.release(call.attempt_id)  # Asterisk is done with it: free its slot
                self._forget_if_done(call)

    async def _redirect_to_operator(self, call: LiveCall) -> str | None:
        """A person is on the line: keep trying through an AMI reconnect rather than lose them.
        None when Asterisk took the Redirect, else why not."""
        d = self.config.dial
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_delay(self.config.redirect_retry_s),
                wait=wait_exponential(multiplier=0.05, max=1.0) + wait_random(0, 0.05),
                retry=retry_if_exception_type(AmiError),
                reraise=True,
            ):
                with attempt:
                    if await self.pool.redirect(call.attempt_id, d.operator_context, d.operator_exten):
                        return None
                    return "the call's channel is gone"
        except (AmiError, DialerError) as exc:
            call_log(log, "redirect_failed", call.attempt_id, call.uniqueid, error=str(exc))
            return str(exc)
        return "no answer from Asterisk"

    async def _safely(self, aw: Awaitable[bool], call: LiveCall, what: str) -> bool:
        try:
            return await aw
        except (AmiError, DialerError) as exc:
            call_log(log, f"{what}_failed", call.attempt_id, call.uniqueid, error=str(exc))
            return False

    async def _record(self, call: LiveCall, evidence: Evidence) -> None:
        if call.finished.is_set() or call.verdict_started:
            return  # one verdict per attempt, whoever asks first
        call.verdict_started = True
        if evidence.decision_ms is None:  # one number for the attempt row, the event and the metrics
            evidence = replace(evidence, decision_ms=call.session.decision_ms)
        ctx: CallContext = call.context
        contact = ctx.claimed.contact
        tz = contact.timezone or ctx.campaign.timezone
        calendar = self.config.compliance.for_campaign(ctx.campaign.name).calendar  # COMPLIANCE: holidays
        windows = CallingWindows.parse(ctx.campaign.weekday_window, ctx.campaign.weekend_window, calendar)
        now = self.clock.now()
        outcome = apply_attempt(contact, evidence.call_class, ctx.claimed.attempt_no, now, self.rules, windows, tz)
        # docs/rules.md §6: a person lost on the way to an operator is called back like a dropped call.
        lost = evidence.call_class is CallClass.PERSON_LOST
        settled = outcome.settled
        try:
            stored = await self.repo.finish_attempt(
                call.attempt_id,
                evidence,
                outcome,
                now,
                counts_as_attempt=outcome.counts_as_attempt,
                dropped_callbacks=dropped_callback_times(now) if lost else (),
            )
            settled = stored.settled  # a dropped-call series may outlast the rules' settlement
        except StorageError as exc:
            # The attempt stays in progress in the database; recovery at the next start closes it.
            log.error("attempt %s: could not record the result: %s", call.attempt_id, exc)
        self.stats.finished += 1
        net = call.session.net  # PACING: the rates of this campaign's calls
        self.pacing.call_finished(
            ctx.campaign.name, evidence, call.session.decided_at_ms, net.answered_at_ms or net.ended_at_ms
        )
        self.metrics.attempt_finished(evidence, outcome, call.session)  # METRICS
        call_log(
            log,
            "finished",
            call.attempt_id,
            call.uniqueid,
            call_class=evidence.call_class.value,
            confidence=evidence.confidence,
            reason=evidence.reason,
            settled=settled,
            journal=outcome.journal_line,
        )
        if self.on_call_finished is not None:
            self.on_call_finished(call.attempt_id, ctx.claimed, evidence)
        call.finished.set()
        self.activity.set()
        self.notify_events()
        self._forget_if_done(call)
        self._wake.set()

    def _forget_if_done(self, call: LiveCall) -> None:
        """Drop a call once its verdict is recorded and Asterisk is done with it (or it is the
        operators' now: the worker no longer needs its events)."""
        if call.done and call.attempt_id in self.registry:
            call.release()
            self.registry.remove(call)

    # ---- recovery -------------------------------------------------------------------------------

    async def _reconcile_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            up = await self.registry.server_ups.get()
            self._wake.set()  # a server (back) up: capacity may have come back too
            self.leases.poke()  # LEASES: its calls can be checked now
            await self.pacing.refresh(up.server)  # PACING: queue members (events while away are lost)
            try:
                live = await self.pool.reconcile(up.server)
            except AmiError as exc:
                log.warning("reconcile %s: %s", up.server, exc)
                continue
            await self._refresh_answer_state(up.server, live)
            loop = asyncio.get_running_loop()
            for attempt_id in self.pool.calls_on(up.server):
                call = self.registry.get(attempt_id)
                if attempt_id in live or call is None:
                    continue
                # The call vanished while we were disconnected: its Hangup events are lost.
                gone = self.registry.correlator.finish(attempt_id, loop.time())
                call.feed(gone if gone is not None else Gone(forced=True))
            # LEASES: calls live on Asterisk but unknown to this worker are never touched here:
            # another worker's, or an expired claim's (dialer.leases adopts those).

    async def _refresh_answer_state(self, server: str, live: set[uuid.UUID]) -> None:
        """Events sent while we were disconnected are lost: a call may have been answered in the
        meantime. Read the channel states so an answered call is never treated as unanswered."""
        tracked = {a for a in live if (c := self.registry.get(a)) is not None and not c.session.net.answered}
        if not tracked:
            return
        try:
            channels = await self.pool.clients[server].core_show_channels()
        except AmiError as exc:
            log.warning("reconcile %s: cannot read channel states: %s", server, exc)
            return
        for attempt_id in sig.answered_attempts(channels) & tracked:
            call = self.registry.get(attempt_id)
            if call is not None:
                log.info("attempt %s was answered while AMI was disconnected", attempt_id)
                call.feed(Answered())

    # ---- shutdown -------------------------------------------------------------------------------

    async def _drain(self) -> None:
        await self._wait_finished(self.config.drain_s * self.config.time_scale)
        for call in self.registry:
            if not call.finished.is_set():
                call.feed(StopRequested())
        await self._wait_finished(self.setup.config.hangup_grace_ms / 1000 * self.config.time_scale + 1.0)
        for call in self.registry:
            if not call.finished.is_set() and not call.verdict_started:
                # Asterisk never confirmed: record with what we know.
                ev = Evidence(CallClass.ABORTED, 0.0, "worker stopped; Asterisk did not confirm the hangup")
                await asyncio.shield(self._record(call, ev))
        await self._tasks.wait()
        for call in self.registry:
            await call.aclose_asr()
            call.release()

    async def _wait_finished(self, timeout_s: float) -> None:
        waits = [asyncio.ensure_future(c.finished.wait()) for c in self.registry if not c.finished.is_set()]
        if waits:
            _done, pending = await asyncio.wait(waits, timeout=timeout_s)
            for p in pending:
                p.cancel()

    # ---- tasks ------------------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[object, object, None], *, name: str) -> asyncio.Task[None]:
        return self._tasks.spawn(coro, name=name)

    @property
    def live_calls(self) -> int:
        return len(self.registry)

    def live_calls_of(self, campaign: str) -> int:
        """Calls this worker dials or analyses for ``campaign`` (not those with the operators)."""
        return sum(
            1
            for c in self.registry
            if c.context.campaign.name == campaign and c.session.phase is not CallPhase.WITH_OPERATOR
        )

    def health(self) -> dict[str, object]:
        return {
            "live_calls": self.live_calls,
            "accepting": self._accepting,
            **asdict(self.stats),
            "leases": self.leases.health(),
            "pacing": self.pacing.health(),  # PACING
        }
