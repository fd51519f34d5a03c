"""The worker loop (`dialer run`): claim due contacts, originate, drive one state machine per call,
execute its commands, record every attempt.

Wiring (the composition root, dialer.app, builds these):

    Repository ──claim──► Worker ──originate/hangup/redirect──► ServerPool (AMI)
        ▲                   │  ▲                                    │ events
        │ finish_attempt    │  └──────── Correlator ◄───────────────┘
        └───────────────────┤
                            ▲ AudioUpdate / PhraseUpdate
               AudioSocketServer ─► CallPipeline (tones, VAD, ASR)

Shutdown is ordered (arq style): stop claiming, let live calls finish up to ``drain_s``, then feed
``StopRequested`` (undecided answered calls go to an operator, others are hung up and recorded as
aborted), wait for Asterisk to confirm, and only then return. Attempt results are written under
``asyncio.shield`` so a cancellation never loses a verdict that was reached.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential, wait_random

from dialer.ami import signals as sig
from dialer.ami.client import AmiEvent
from dialer.ami.pool import ServerPool, ServerUp
from dialer.audiosocket.server import AudioSink, AudioSocketServer
from dialer.config import DialSettings, LeaseSettings
from dialer.domain import callstate as cs
from dialer.domain.fusion import AudioFacts, FusionConfig, PhraseFacts
from dialer.domain.model import CallClass, Evidence
from dialer.domain.policy import apply_attempt
from dialer.domain.rules import RulesTable
from dialer.domain.schedule import CallingWindows
from dialer.errors import AmiError, DialerError, StorageError
from dialer.leases import LeaseKeeper
from dialer.logging import call_log
from dialer.storage.repo import CampaignSettings, ClaimedContact, Repository
from dialer.tasks import OwnedTasks

log = logging.getLogger(__name__)

STOP_DISPATCH_S = 10.0  # at shutdown, how long the dispatcher may take to finish its round


class Clock(Protocol):
    """Wall-clock time for the domain (due times, journal dates)."""

    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class CallPipeline(Protocol):
    """Per-call audio analysis (tones, VAD, ASR) as facts for the fusion."""

    def feed_frame(self, pcm: bytes, frame_index: int) -> bool:
        """Feed one frame; True when the facts changed."""

    def mark_answered(self) -> None: ...

    def audio_facts(self) -> AudioFacts: ...

    def phrase_facts(self) -> PhraseFacts: ...

    def stop(self) -> None:
        """The call is decided: stop decoding, free the recognizer."""

    async def aclose(self) -> None:
        """Stop and wait for the pipeline's own tasks to end."""


PipelineFactory = Callable[[uuid.UUID, Callable[[], None]], CallPipeline]


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
    fusion: FusionConfig = field(default_factory=FusionConfig)
    leases: LeaseSettings = field(default_factory=LeaseSettings)  # claim leases (dialer.leases)


@dataclass
class WorkerStats:
    originated: int = 0
    finished: int = 0
    handed_to_operator: int = 0
    hung_up_by_us: int = 0
    originate_failed: int = 0
    recovered: int = 0


@dataclass(eq=False)
class _Call:
    attempt_id: uuid.UUID
    claimed: ClaimedContact
    campaign: CampaignSettings
    machine: cs.CallMachine
    t0: float  # loop time of the originate
    pipeline: CallPipeline | None = None
    timer: asyncio.TimerHandle | None = None
    originate_check: asyncio.TimerHandle | None = None
    server: str | None = None
    uniqueid: str | None = None
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    gone: bool = False
    recording: bool = False  # _record() started: the verdict is being written


class _Sink(AudioSink):
    """AudioSocket → the call's pipeline → the call's state machine."""

    def __init__(self, worker: Worker, call: _Call) -> None:
        self._worker = worker
        self._call = call

    def on_frame(self, pcm: bytes, frame_index: int) -> None:
        p = self._call.pipeline
        if p is not None and p.feed_frame(pcm, frame_index):
            self._worker._feed(self._call, cs.AudioUpdate(p.audio_facts()))
            self._worker._feed(self._call, cs.PhraseUpdate(p.phrase_facts()))

    def on_dtmf(self, digit: str) -> None:
        log.debug("attempt %s: DTMF %s ignored", self._call.attempt_id, digit)

    def on_end(self, reason: str) -> None:
        call_log(log, "audio_end", self._call.attempt_id, self._call.uniqueid, reason=reason)


class Worker:
    def __init__(
        self,
        *,
        config: WorkerConfig,
        repo: Repository,
        pool: ServerPool,
        audiosocket: AudioSocketServer | None,
        rules: RulesTable,
        clock: Clock,
        pipeline_factory: PipelineFactory | None,
        notify_events: Callable[[], None] = lambda: None,
        on_call_finished: Callable[[uuid.UUID, ClaimedContact, Evidence], None] | None = None,
        wall_clock: Clock | None = None,
    ) -> None:
        self.config = config
        self.repo = repo
        self.pool = pool
        self.audiosocket = audiosocket
        self.rules = rules
        self.clock = clock
        self.pipeline_factory = pipeline_factory
        self.notify_events = notify_events
        self.on_call_finished = on_call_finished
        self.correlator = sig.Correlator()
        self.stats = WorkerStats()
        self._calls: dict[uuid.UUID, _Call] = {}
        self._tasks = OwnedTasks(log)
        self._wake = asyncio.Event()
        self._accepting = True
        self._campaign_cache: dict[str, CampaignSettings] = {}
        self._server_ups: asyncio.Queue[ServerUp] = asyncio.Queue()
        self.activity = asyncio.Event()  # set after every recorded attempt (status reporting)
        # LEASES: renews this worker's claims, recovers expired ones of any worker (dialer.leases).
        self.leases = LeaseKeeper(
            repo=repo,
            pool=pool,
            worker_id=config.worker_id,
            settings=config.leases,
            rules=rules,
            clock=clock,
            wall_clock=wall_clock or SystemClock(),
            held=lambda: {c.claimed.contact.id for c in self._calls.values() if not c.finished.is_set()},
            operator_context=config.dial.operator_context,
            on_change=self._leases_changed,
        )

    # ---- callbacks from adapters (wired by the composition root) -----------------------------

    def on_ami_event(self, event: AmiEvent) -> None:
        loop = asyncio.get_running_loop()
        for s in self.correlator.feed(event.headers, loop.time()):
            call = self._calls.get(s.attempt_id)
            if call is not None:
                self._on_signal(call, s)
            elif isinstance(s, sig.CallGone):
                # Handed to the operators and forgotten (its verdict is written); the call held a
                # slot on its server until now. Without this every hand-over leaked one slot and a
                # worker stopped dialling after max_calls people (found by the soak, issue 11).
                self.pool.release(s.attempt_id)
        self.leases.on_ami_event(event)  # LEASES: calls adopted from a dead worker

    def on_server_up(self, up: ServerUp) -> None:
        self._server_ups.put_nowait(up)
        self._wake.set()
        self.leases.poke()  # LEASES: its calls can be checked now

    def _leases_changed(self) -> None:
        st = self.leases.stats
        self.stats.recovered = st.released + st.closed_gone + st.adopted_closed
        self.notify_events()
        self.activity.set()
        self._wake.set()

    def audio_for(self, attempt_id: uuid.UUID) -> AudioSink | None:
        call = self._calls.get(attempt_id)
        if call is None or (call.machine.finished and call.machine.phase is cs.CallPhase.ENDED):
            return None
        return _Sink(self, call)

    def wake(self) -> None:
        """New work may be due (import, operator command, call-back request)."""
        self._wake.set()

    # ---- main loop ----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> WorkerStats:
        # LEASES: recover expired claims (reconciled with Asterisk) before dialling, then renew ours.
        await self.leases.start()
        dispatcher = self._spawn(self._dispatch(stop), name="dispatch")
        reconciler = self._spawn(self._reconcile_loop(stop), name="reconcile")
        await stop.wait()
        log.info("worker %s stopping: no new calls, draining %d live", self.config.worker_id, len(self._calls))
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
            live_here = sum(1 for c in self._calls.values() if c.campaign.name == camp.name)
            want = min(free, cap - live_here)
            if want <= 0:
                continue
            now = self.clock.now()
            claimed = await self.leases.claim_due(camp.name, now, want, cap)  # LEASES: claims are leases
            for i, c in enumerate(claimed):
                try:
                    await self._start_call(c, camp)
                except DialerError:
                    await self.leases.give_back(claimed[i], claimed[i + 1 :])  # LEASES: the rest go back now
                    raise
                started += 1
        return started

    # ---- one call -------------------------------------------------------------------------------

    def _machine_config(self) -> cs.MachineConfig:
        dial = self.config.dial
        return cs.MachineConfig(
            fusion=self.config.fusion,
            ring_timeout_ms=int(dial.ring_timeout_s * 1000),
            max_call_ms=int(dial.max_call_s * 1000),
        )

    async def _start_call(self, claimed: ClaimedContact, camp: CampaignSettings) -> None:
        attempt_id = uuid.uuid4()
        loop = asyncio.get_running_loop()
        call = _Call(attempt_id, claimed, camp, cs.CallMachine(attempt_id, self._machine_config()), loop.time())
        await self.repo.start_attempt(claimed, attempt_id, self.clock.now())
        self._calls[attempt_id] = call
        self.correlator.track(attempt_id, loop.time())
        if self.pipeline_factory is not None:
            call.pipeline = self.pipeline_factory(attempt_id, lambda: self._pipeline_changed(call))
            self._feed(call, cs.AudioUpdate(call.pipeline.audio_facts()))
        number = (claimed.contact.e164 or "").lstrip("+")
        call_log(log, "originate", attempt_id, None, contact=claimed.contact.external_id, attempt_no=claimed.attempt_no)
        try:
            client = await self.pool.originate(
                attempt_id,
                number,
                self.config.dial,
                audiosocket_addr=self.config.audiosocket_addr,
                variables={"DIALER_ATTEMPT": str(claimed.attempt_no)},
            )
        except (AmiError, DialerError) as exc:
            self.stats.originate_failed += 1
            self._feed(call, cs.OriginateRejected(str(exc)))
            return
        self.stats.originated += 1
        call.server = client.name
        call.uniqueid = str(attempt_id)
        try:
            await self.repo.note_channel(attempt_id, asterisk_uniqueid=call.uniqueid, server_name=client.name)
        except StorageError as exc:
            log.warning("attempt %s: could not note channel: %s", attempt_id, exc)

    def _pipeline_changed(self, call: _Call) -> None:
        """ASR results arrive from the executor via the loop; re-feed the machine."""
        if call.pipeline is not None and call.attempt_id in self._calls:
            self._feed(call, cs.PhraseUpdate(call.pipeline.phrase_facts()))

    def _check_failed_originate(self, call: _Call) -> None:
        if call.gone or call.attempt_id not in self._calls or not self.correlator.is_tracked(call.attempt_id):
            return
        facts = self.correlator.facts(call.attempt_id)
        if facts.channels_live:
            return
        if not facts.uniqueids:
            self.correlator.forget(call.attempt_id)
            call.gone = True
            self.pool.release(call.attempt_id)
            self._feed(call, cs.OriginateRejected("OriginateResponse Failure and no channel was created"))
            return
        gone = self.correlator.finish(call.attempt_id, asyncio.get_running_loop().time())
        if gone is not None:
            self._on_signal(call, gone)

    def _now_ms(self, call: _Call) -> int:
        elapsed = asyncio.get_running_loop().time() - call.t0
        return int(elapsed * 1000 / self.config.time_scale)

    def _on_signal(self, call: _Call, s: sig.Signal) -> None:
        match s:
            case sig.Ringing():
                self._feed(call, cs.Ringing())
            case sig.Progress():
                self._feed(call, cs.Progress())
            case sig.Answered():
                if call.pipeline is not None:
                    call.pipeline.mark_answered()
                self._feed(call, cs.Answered())
            case sig.DialEnded(dial_status=status):
                self._feed(call, cs.DialEnded(status))
            case sig.HungUp(role=role, cause=cause) if role is sig.ChannelRole.TRUNK:
                self._feed(call, cs.HungUp(cause))
            case sig.OriginateResult(reason=reason):
                self._feed(call, cs.OriginateResult(reason if reason is not None else -1, s.success))
                if not s.success:
                    # A failed originate may have created no channel at all; then no Hangup will
                    # ever come. Look again shortly instead of waiting for the call time cap.
                    loop = asyncio.get_running_loop()
                    grace_s = self.config.originate_grace_s * self.config.time_scale
                    call.originate_check = loop.call_later(grace_s, self._check_failed_originate, call)
            case sig.CallGone(facts=facts):
                call.gone = True
                self.pool.release(call.attempt_id)
                if facts.dial_status:
                    self._feed(call, cs.DialEnded(facts.dial_status))
                self._feed(call, cs.HungUp(facts.cause))
                self._feed(call, cs.Gone())
                self._forget_if_done(call)

    def _feed(self, call: _Call, event: cs.CallInput) -> None:
        before = call.machine.phase
        commands = call.machine.feed(event, self._now_ms(call))
        if call.machine.phase is not before:
            call_log(log, "state", call.attempt_id, call.uniqueid, phase=call.machine.phase.value, was=before.value)
        if commands:
            self._spawn(self._execute(call, commands), name=f"call-{call.attempt_id}")
        self._arm_timer(call)

    def _arm_timer(self, call: _Call) -> None:
        if call.timer is not None:
            call.timer.cancel()
            call.timer = None
        deadline_ms = call.machine.next_deadline_ms()
        if deadline_ms is None:
            return
        loop = asyncio.get_running_loop()
        at = call.t0 + deadline_ms / 1000 * self.config.time_scale
        call.timer = loop.call_at(at, self._feed, call, cs.Tick())

    async def _execute(self, call: _Call, commands: Sequence[cs.Command]) -> None:
        for cmd in commands:
            match cmd:
                case cs.StopAnalysis():
                    if call.pipeline is not None:
                        await call.pipeline.aclose()
                case cs.HangupCall():
                    self.stats.hung_up_by_us += 1
                    await self._safely(self.pool.hangup(call.attempt_id), call.attempt_id, call.uniqueid, "hangup")
                case cs.RedirectToOperator():
                    self.stats.handed_to_operator += 1
                    if not await self._redirect_to_operator(call):
                        log.error("attempt %s: redirect to operators failed; the call may be lost", call.attempt_id)
                case cs.Finish(evidence=evidence):
                    await asyncio.shield(self._record(call, evidence))

    async def _redirect_to_operator(self, call: _Call) -> bool:
        """A person is on the line: keep trying through an AMI reconnect rather than lose them."""
        d = self.config.dial
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_delay(self.config.redirect_retry_s),
                wait=wait_exponential(multiplier=0.05, max=1.0) + wait_random(0, 0.05),
                retry=retry_if_exception_type(AmiError),
                reraise=True,
            ):
                with attempt:
                    return await self.pool.redirect(call.attempt_id, d.operator_context, d.operator_exten)
        except (AmiError, DialerError) as exc:
            call_log(log, "redirect_failed", call.attempt_id, call.uniqueid, error=str(exc))
        return False

    async def _safely(self, aw: Awaitable[bool], attempt_id: uuid.UUID, uniqueid: str | None, what: str) -> bool:
        try:
            return await aw
        except (AmiError, DialerError) as exc:
            call_log(log, f"{what}_failed", attempt_id, uniqueid, error=str(exc))
            return False

    async def _record(self, call: _Call, evidence: Evidence) -> None:
        if call.recording:
            return  # one verdict per attempt, whoever asks first
        call.recording = True
        contact = call.claimed.contact
        tz = contact.timezone or call.campaign.timezone
        windows = CallingWindows.parse(call.campaign.weekday_window, call.campaign.weekend_window)
        now = self.clock.now()
        outcome = apply_attempt(contact, evidence.call_class, call.claimed.attempt_no, now, self.rules, windows, tz)
        try:
            await self.repo.finish_attempt(
                call.attempt_id, evidence, outcome, now, counts_as_attempt=outcome.counts_as_attempt
            )
        except StorageError as exc:
            # The attempt stays in progress in the database; recovery at the next start closes it.
            log.error("attempt %s: could not record the result: %s", call.attempt_id, exc)
        self.stats.finished += 1
        call_log(
            log,
            "finished",
            call.attempt_id,
            call.uniqueid,
            call_class=evidence.call_class.value,
            confidence=evidence.confidence,
            reason=evidence.reason,
            settled=outcome.settled,
            journal=outcome.journal_line,
        )
        if self.on_call_finished is not None:
            self.on_call_finished(call.attempt_id, call.claimed, evidence)
        call.finished.set()
        self.activity.set()
        self.notify_events()
        self._forget_if_done(call)
        self._wake.set()

    def _forget_if_done(self, call: _Call) -> None:
        """Drop a call once its verdict is recorded and Asterisk is done with it (or it is the
        operators' now: the worker no longer needs its events)."""
        if not call.finished.is_set():
            return
        if call.gone or call.machine.phase in (cs.CallPhase.WITH_OPERATOR, cs.CallPhase.ENDED):
            for handle in (call.timer, call.originate_check):
                if handle is not None:
                    handle.cancel()
            self._calls.pop(call.attempt_id, None)
            if call.gone:
                self.correlator.forget(call.attempt_id)

    # ---- recovery -------------------------------------------------------------------------------

    async def _reconcile_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            up = await self._server_ups.get()
            try:
                live = await self.pool.reconcile(up.server)
            except AmiError as exc:
                log.warning("reconcile %s: %s", up.server, exc)
                continue
            await self._refresh_answer_state(up.server, live)
            loop = asyncio.get_running_loop()
            for attempt_id in self.pool.calls_on(up.server):
                call = self._calls.get(attempt_id)
                if attempt_id in live or call is None:
                    continue
                # The call vanished while we were disconnected: its Hangup events are lost.
                gone = self.correlator.finish(attempt_id, loop.time())
                if gone is not None:
                    self._on_signal(call, gone)
                else:
                    call.gone = True
                    self.pool.release(attempt_id)
                    self._feed(call, cs.Gone())
            # LEASES: calls live on Asterisk but unknown to this worker are never touched here:
            # another worker's, or an expired claim's (dialer.leases adopts those).

    async def _refresh_answer_state(self, server: str, live: set[uuid.UUID]) -> None:
        """Events sent while we were disconnected are lost: a call may have been answered in the
        meantime. Read the channel states so an answered call is never treated as unanswered."""
        tracked = [a for a in live if a in self._calls and not self._calls[a].machine.net.answered]
        if not tracked:
            return
        try:
            channels = await self.pool.clients[server].core_show_channels()
        except AmiError as exc:
            log.warning("reconcile %s: cannot read channel states: %s", server, exc)
            return
        answered: set[uuid.UUID] = set()
        for ch in channels:
            fields = {k.lower(): v for k, v in ch.items()}
            up = fields.get("channelstatedesc", "").lower() == "up" or fields.get("channelstate") == "6"
            parsed = sig.parse_attempt_uid(fields.get("uniqueid", ""))
            if up and parsed is not None and parsed[1] is sig.ChannelRole.LOCAL2:
                answered.add(parsed[0])
            linked = sig.parse_attempt_uid(fields.get("linkedid", ""))
            if up and parsed is None and linked is not None:
                answered.add(linked[0])  # the trunk leg is Up: the far end answered
        for attempt_id in answered & set(tracked):
            call = self._calls[attempt_id]
            log.info("attempt %s was answered while AMI was disconnected", attempt_id)
            if call.pipeline is not None:
                call.pipeline.mark_answered()
            self._feed(call, cs.Answered())

    # ---- shutdown -------------------------------------------------------------------------------

    async def _drain(self) -> None:
        live = [c for c in self._calls.values() if not c.finished.is_set()]
        if live:
            waits = [asyncio.ensure_future(c.finished.wait()) for c in live]
            _done, pending = await asyncio.wait(waits, timeout=self.config.drain_s * self.config.time_scale)
            for p in pending:
                p.cancel()
        for call in list(self._calls.values()):
            if not call.finished.is_set():
                self._feed(call, cs.StopRequested())
        grace_s = self._machine_config().hangup_grace_ms / 1000 * self.config.time_scale + 1.0
        late = [asyncio.ensure_future(c.finished.wait()) for c in self._calls.values() if not c.finished.is_set()]
        if late:
            _done, pending = await asyncio.wait(late, timeout=grace_s)
            for p in pending:
                p.cancel()
        for call in list(self._calls.values()):
            if not call.finished.is_set() and not call.recording:
                # Asterisk never confirmed: record with what we know.
                ev = Evidence(CallClass.ABORTED, 0.0, "worker stopped; Asterisk did not confirm the hangup")
                await asyncio.shield(self._record(call, ev))
        await self._tasks.wait()
        for call in self._calls.values():
            if call.timer is not None:
                call.timer.cancel()

    # ---- tasks ------------------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[object, object, None], *, name: str) -> asyncio.Task[None]:
        return self._tasks.spawn(coro, name=name)

    @property
    def live_calls(self) -> int:
        return len(self._calls)

    def live_calls_of(self, campaign: str) -> int:
        return sum(1 for c in self._calls.values() if c.campaign.name == campaign)

    def health(self) -> dict[str, object]:
        return {
            "live_calls": self.live_calls,
            "accepting": self._accepting,
            **asdict(self.stats),
            "leases": self.leases.health(),
        }
