"""The worker's pacing: the operator tracker fed by AMI, the rolling rates per campaign, and the
answer to "how many calls may this campaign start now" (dialer.pacing.pacer does the maths).

Wired at marked places (``# PACING``) of dialer.worker: every AMI event no call claims reaches
:meth:`LivePacing.on_ami_event` (queue member events carry no call's ids); each server (re)login
asks :meth:`refresh` (``QueueStatus``: events sent while disconnected are lost); the dispatcher
asks :meth:`allowed`; every recorded verdict goes to :meth:`call_finished`. A change in free
operators wakes the dispatcher — no polling.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dialer.ami.client import AmiEvent
from dialer.domain.model import CallClass, Evidence
from dialer.errors import AmiError
from dialer.pacing.operators import OperatorTracker
from dialer.pacing.pacer import InFlight, PacingMode, PacingSettings, PacingStats, Rates, allowed_calls
from dialer.session.session import CallPhase

if TYPE_CHECKING:
    from dialer.ami.pool import ServerPool
    from dialer.calls import CallRegistry

log = logging.getLogger(__name__)

_DIALLING = frozenset({CallPhase.ORIGINATING, CallPhase.RINGING, CallPhase.EARLY_MEDIA})


@dataclass(frozen=True)
class PacingConfig:
    """``[pacing]`` for every campaign, ``[[pacing_campaign]]`` overrides by campaign name."""

    default: PacingSettings = field(default_factory=PacingSettings)
    campaigns: Mapping[str, PacingSettings] = field(default_factory=dict)

    def for_campaign(self, name: str) -> PacingSettings:
        return self.campaigns.get(name, self.default)

    @property
    def queues(self) -> frozenset[str]:
        modes = [self.default, *self.campaigns.values()]
        return frozenset(s.queue for s in modes if s.mode is not PacingMode.FIXED)


def in_flight(registry: CallRegistry, queue: str, config: PacingConfig, loop_time: float) -> InFlight:
    """The live calls of every campaign that hands over to ``queue``, by phase; how long each
    dialling call has rung (the call's own clock: simulated seconds under the simulator)."""
    analysing = waiting = 0
    ages: list[float] = []
    for call in registry:
        if config.for_campaign(call.context.campaign.name).queue != queue:
            continue
        phase = call.session.phase
        if phase in _DIALLING:
            ages.append(max(0, call.clock.now_ms(loop_time)) / 1000)
        elif phase is CallPhase.ANSWERED:
            analysing += 1
        elif phase is CallPhase.HANDING_OVER:
            waiting += 1
    return InFlight(dialling=len(ages), analysing=analysing, waiting=waiting, dialling_ages_s=tuple(ages))


class LivePacing:
    def __init__(
        self,
        config: PacingConfig,
        *,
        registry: CallRegistry,
        pool: ServerPool,
        now_s: Callable[[], float],
        wake: Callable[[], None],
    ) -> None:
        self.config = config
        self.registry = registry
        self.pool = pool
        self.now_s = now_s  # simulated seconds under the simulator's time scale
        self.wake = wake
        self.tracker = OperatorTracker(config.queues)
        self._stats: dict[str, PacingStats] = {}

    @property
    def active(self) -> bool:
        return bool(self.config.queues)

    def stats(self, campaign: str) -> PacingStats:
        st = self._stats.get(campaign)
        if st is None:
            st = self._stats[campaign] = PacingStats(self.config.for_campaign(campaign))
        return st

    # -- inputs ------------------------------------------------------------------------------

    def on_ami_event(self, event: AmiEvent) -> None:
        if self.active and self.tracker.feed(event.headers, self.now_s(), event.server):
            self.wake()

    async def refresh(self, server: str) -> None:
        """Ask ``server`` for its queues' members (at login and after every reconnect)."""
        if not self.active:
            return
        client = self.pool.clients.get(server)
        if client is None:
            return
        self.tracker.begin_listing(server)
        try:
            for queue in sorted(self.tracker.queues):
                for row in await client.queue_status(queue):
                    self.tracker.feed(row, self.now_s(), server)
        except AmiError as exc:
            log.warning("pacing: cannot read the queues of %s: %s", server, exc)
            self.tracker.forget_server(server)
            return
        self.tracker.feed({"Event": "QueueStatusComplete"}, self.now_s(), server)
        self.wake()

    def call_finished(
        self, campaign: str, evidence: Evidence, connect_ms: int | None, ring_ms: int | None = None
    ) -> None:
        """A verdict was recorded. ``connect_ms``: originate → decision (the hand-over of a person);
        ``ring_ms``: originate → answer, or → the end of an unanswered call."""
        handed = evidence.queue_wait_ms is not None
        self.stats(campaign).dial_finished(
            self.now_s(),
            answered=evidence.answered,
            handed_over=handed,
            lost=evidence.call_class is CallClass.PERSON_LOST,
            queue_wait_s=evidence.queue_wait_ms / 1000 if evidence.queue_wait_ms is not None else None,
            connect_s=connect_ms / 1000 if handed and connect_ms is not None else None,
            ring_s=ring_ms / 1000 if ring_ms is not None else None,
        )

    # -- the dispatcher's question ------------------------------------------------------------

    def allowed(self, campaign: str, capacity: int) -> int:
        settings = self.config.for_campaign(campaign)
        if settings.mode is PacingMode.FIXED:
            return capacity
        ops = self.tracker.supply(settings.queue, self.now_s())
        flight = in_flight(self.registry, settings.queue, self.config, asyncio.get_running_loop().time())
        rates = self.rates(campaign)
        return allowed_calls(settings, capacity, ops, flight, rates)

    def rates(self, campaign: str) -> Rates:
        return self.stats(campaign).rates(self.now_s(), self.tracker.handle_s, self.tracker.handle_samples_s)

    def health(self, campaigns: Iterable[str] = ()) -> dict[str, object]:
        out: dict[str, object] = {}
        for name in sorted({*campaigns, *self._stats}):
            s = self.config.for_campaign(name)
            r = self.rates(name)
            ops = self.tracker.supply(s.queue)
            out[name] = {
                "mode": s.mode.value,
                "free_operators": ops.free if ops else None,
                "busy_operators": ops.busy if ops else None,
                "abandon_rate": round(r.abandon_rate, 4),
                "risk_share": round(r.share, 4) if r.share is not None else None,  # predictive's steered risk
                "persons": r.persons,
                "dials": r.dials,
            }
        return out
