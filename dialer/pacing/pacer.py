"""How many calls a campaign may start now: pure maths, time passed in, no I/O.

Three modes (issue 12):

- ``fixed``: the campaign's concurrency, whatever the operators do (the dialer before pacing).
- ``progressive``: one call in flight per free operator. Every call ringing, being analysed or
  waiting in the queue holds one free operator, so a person who answers always finds one: no
  person waits for an operator to finish a call (0 % abandonment by construction).
- ``predictive``: the persons the calls in flight will bring are counted as a Poisson number whose
  mean weighs each call by the measured chance that it becomes a person (``person_per_dial``
  while ringing, ``person_per_answer`` once answered); the operators they will find are the free
  ones plus the busy ones in the proportion ``connect / handle`` (a new call takes ``connect_s``
  to reach a person; an operator's call lasts ``handle_s``). Predictive starts the most calls
  whose expected overflow (persons beyond the operators) stays under ``target × persons``, the
  target being the cap scaled by a share that the campaign's own outcomes steer: each abandoned
  person cuts it, each person served raises it a little, so that abandonment runs at
  ``STEADY_AIM`` of the cap (:class:`PacingStats`). Before enough calls are measured it is
  progressive.

  The share is steered rather than read off the measured rate: a factor that fell with the
  measured rate (the first design, still :func:`backoff_factor`'s answer for rates without a
  share) swung between dialling hard and progressive, and the swings cost utilisation — at 30
  operators and 20 % persons 1.47× progressive at 2.1 % abandoned, against 1.67× at 2.4 % steered
  (bench/bench_pacing.py). A stop at the cap was tried too: the return from it overshot (one
  run in four ended at 2.86 % with 1.26×), so the steering is the back-off.

Abandonment (the regulators' measure): persons lost before an operator answered, or who waited
longer than ``max_wait_s`` for one, over persons handed over, in a rolling window per campaign.
"""

from __future__ import annotations

import bisect
import enum
import math
from collections import deque
from dataclasses import dataclass

__all__ = [
    "Backoff",
    "InFlight",
    "OperatorSupply",
    "PacingMode",
    "PacingSettings",
    "PacingStats",
    "Rates",
    "allowed_calls",
    "backoff_factor",
    "expected_overflow",
]

# The steady controller (see PacingStats): the risk per decision is steered, one handed-over person
# at a time, until the persons' abandonment runs at STEADY_AIM of the cap (stochastic
# approximation: each outcome nudges the log of the share by STEADY_GAIN × (aim − abandoned), so
# an abandon cuts the share by 14 % and a person served raises it by 0.3 %). Measured: 2.0–2.7 %
# abandoned in 8 runs of bench_pacing (10–30 operators, 20–25 % persons, 2 seeds).
STEADY_AIM = 0.7
STEADY_GAIN = 0.15
SHARE_MIN, SHARE_MAX = 0.001, 3.0  # at the floor predictive dials about as progressive does


class PacingMode(enum.StrEnum):
    FIXED = "fixed"
    PROGRESSIVE = "progressive"
    PREDICTIVE = "predictive"


@dataclass(frozen=True, slots=True)
class PacingSettings:
    """``[pacing]`` (and a campaign's ``[[pacing_campaign]]`` override)."""

    mode: PacingMode = PacingMode.FIXED
    queue: str = "operators"  # the app_queue queue of the operator context (deploy contract)
    max_abandon_rate: float = 0.03  # the cap: abandoned / persons over the window
    max_wait_s: float = 2.0  # a person waiting longer than this for an operator counts as abandoned
    window_s: float = 86400.0  # the rolling window of the measured rates (Ofcom measures 24 h)
    min_samples: int = 20  # finished dials before predictive trusts its measured rates
    backoff_start: float = 0.5  # rates without a steered share: back-off begins at this fraction of the cap …
    backoff_full: float = 0.9  # … and is complete (progressive) at this fraction


@dataclass(frozen=True, slots=True)
class OperatorSupply:
    """The operators of the campaign's queue, from the AMI queue events."""

    free: int  # logged in, not paused, not in a call or ringing
    busy: int  # logged in, not paused, in a call or ringing
    busy_for_s: tuple[float, ...] = ()  # how long each busy operator has been busy (when known)


@dataclass(frozen=True, slots=True)
class InFlight:
    """This worker's calls towards the queue, by what they may still become."""

    dialling: int = 0  # originated, not answered
    analysing: int = 0  # answered, not decided yet
    waiting: int = 0  # a person handed over, no operator answered yet
    dialling_ages_s: tuple[float, ...] = ()  # how long each dialling call has rung (when known)


@dataclass(frozen=True, slots=True)
class Rates:
    """What the rolling window measured (see :class:`PacingStats`)."""

    dials: int = 0
    answers: int = 0
    persons: int = 0
    abandoned: int = 0
    connect_s: float | None = None  # mean originate → hand-over of persons
    handle_s: float | None = None  # mean time an operator is busy with one call (ring + talk)
    person_ring_s: tuple[float, ...] = ()  # sorted: originate → answer of each person
    handle_samples_s: tuple[float, ...] = ()  # sorted: operators' busy periods (the tracker's)
    dial_ring_s: tuple[float, ...] = ()  # sorted: originate → answer or failure of each dial
    share: float | None = None  # the steady controller's risk per decision, as a share of the cap

    def free_chance(self, busy_for_s: float, within_s: float) -> float:
        """The chance that an operator busy for ``busy_for_s`` is free within ``within_s``: from
        the measured busy periods longer than ``busy_for_s``, those over by then."""
        s = self.handle_samples_s
        if not s:
            return min(1.0, within_s / self.handle_s) if self.handle_s else 0.0
        longer = len(s) - bisect.bisect_right(s, busy_for_s)
        if longer == 0:
            return 1.0  # longer than any measured: about to end
        done = bisect.bisect_right(s, busy_for_s + within_s) - bisect.bisect_right(s, busy_for_s)
        return done / longer

    def person_chance(self, age_s: float) -> float:
        """The chance that a call still ringing after ``age_s`` becomes a person: persons answer
        early, so a call that has rung long is most likely a no-answer."""
        if not self.dial_ring_s:
            return self.person_per_dial
        dials_after = len(self.dial_ring_s) - bisect.bisect_right(self.dial_ring_s, age_s)
        if dials_after == 0:
            return 0.0
        persons_after = len(self.person_ring_s) - bisect.bisect_right(self.person_ring_s, age_s)
        return persons_after / dials_after

    @property
    def person_per_dial(self) -> float:
        return self.persons / self.dials if self.dials else 0.0

    @property
    def person_per_answer(self) -> float:
        return self.persons / self.answers if self.answers else 0.0

    @property
    def abandon_rate(self) -> float:
        return self.abandoned / self.persons if self.persons else 0.0


@dataclass(frozen=True, slots=True)
class Backoff:
    factor: float  # 1: full predictive; 0: progressive
    why: str


def backoff_factor(settings: PacingSettings, rates: Rates) -> Backoff:
    """The share of the cap predictive may risk per decision: the steady controller's (the
    worker's rates always carry one); for rates without one, proportional to the room left under
    the cap — 1 at ``backoff_start`` of it, 0 at ``backoff_full`` of it, more than 1 below the start."""
    cap = settings.max_abandon_rate
    rate = rates.abandon_rate
    if rates.share is not None:
        return Backoff(rates.share, f"abandonment {rate:.1%}, steering at {STEADY_AIM * cap:.1%}")
    start, full = settings.backoff_start * cap, settings.backoff_full * cap
    if rate >= full:
        return Backoff(0.0, f"abandonment {rate:.1%} ≥ {full:.1%}: progressive")
    factor = (full - rate) / (full - start)
    if rate <= start:
        return Backoff(factor, f"abandonment {rate:.1%} ≤ {start:.1%}")
    return Backoff(factor, f"abandonment {rate:.1%} nears the cap {cap:.1%}")


def _progressive(ops: OperatorSupply, flight: InFlight) -> int:
    return ops.free - flight.dialling - flight.analysing - flight.waiting


def allowed_calls(
    settings: PacingSettings,
    capacity: int,
    ops: OperatorSupply | None,
    flight: InFlight,
    rates: Rates,
    backoff: Backoff | None = None,
) -> int:
    """Calls the campaign may originate now, at most ``capacity`` (free server slots and the
    campaign's concurrency). ``ops`` None: no operator state known yet — a paced campaign waits
    for it rather than dial blind. ``backoff`` None: from the measured abandonment (the worker);
    given: a fixed share of the cap per decision (bench/bench_pacing.py's frontier)."""
    capacity = max(0, capacity)
    if settings.mode is PacingMode.FIXED:
        return capacity
    if ops is None:
        return 0
    progressive = _progressive(ops, flight)
    if settings.mode is PacingMode.PROGRESSIVE:
        return max(0, min(capacity, progressive))
    if rates.dials < settings.min_samples or rates.persons == 0 or rates.answers == 0:
        return max(0, min(capacity, progressive))
    factor = (backoff or backoff_factor(settings, rates)).factor
    if factor <= 0.0:
        return max(0, min(capacity, progressive))
    target = settings.max_abandon_rate * factor
    p_dial = max(rates.person_per_dial, 0.01)
    p_answer = min(1.0, rates.person_per_answer)
    soon_free = 0.0
    if rates.connect_s is not None and ops.busy_for_s and len(ops.busy_for_s) == ops.busy:
        soon_free = sum(rates.free_chance(b, rates.connect_s) for b in ops.busy_for_s)
    elif rates.connect_s is not None and rates.handle_s is not None and rates.handle_s > 0:
        soon_free = ops.busy * min(1.0, rates.connect_s / rates.handle_s)
    operators = ops.free - flight.waiting + soon_free
    if flight.dialling_ages_s and len(flight.dialling_ages_s) == flight.dialling:
        ringing = sum(rates.person_chance(age) for age in flight.dialling_ages_s)
    else:
        ringing = flight.dialling * p_dial
    expected = ringing + flight.analysing * p_answer
    predictive = 0
    for n in range(1, capacity + 1):
        mean = expected + n * p_dial
        if _overflow(mean, operators) > target * mean:
            break
        predictive = n
    return max(0, min(capacity, max(progressive, predictive)))


def _overflow(mean: float, operators: float) -> float:
    """:func:`expected_overflow` between whole numbers of operators (soon-free ones are a share)."""
    low = math.floor(operators)
    frac = operators - low
    below = expected_overflow(mean, low)
    return below if frac < 1e-9 else below + frac * (expected_overflow(mean, low + 1) - below)


def expected_overflow(mean: float, operators: int) -> float:
    """E[max(0, X − operators)] for X ~ Poisson(mean): persons expected to find no operator."""
    if operators <= 0:
        return mean - operators if operators < 0 else mean
    p = math.exp(-mean)  # P(X = 0)
    short = 0.0  # Σ_{k<operators} (operators − k)·P(X = k)
    for k in range(operators):
        short += (operators - k) * p
        p *= mean / (k + 1)
    return max(0.0, mean - operators + short)


# ---- the rolling window ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Dial:
    at_s: float
    answered: bool
    person: bool
    abandoned: bool
    connect_s: float | None
    ring_s: float | None


class PacingStats:
    """One campaign's finished calls over the last ``window_s`` (time passed in)."""

    def __init__(self, settings: PacingSettings) -> None:
        self.settings = settings
        self._dials: deque[_Dial] = deque()
        self._log_share = 0.0  # the steady controller's state: log of the risk share of the cap

    def dial_finished(
        self,
        at_s: float,
        *,
        answered: bool,
        handed_over: bool,
        lost: bool = False,
        queue_wait_s: float | None = None,
        connect_s: float | None = None,
        ring_s: float | None = None,
    ) -> None:
        """A call ended. ``handed_over``: a person went to the operators; ``lost``: they went
        before an operator answered; ``queue_wait_s``: how long they waited for one;
        ``ring_s``: from the originate to the answer, or to the end of an unanswered call."""
        too_long = queue_wait_s is not None and queue_wait_s > self.settings.max_wait_s
        abandoned = handed_over and (lost or too_long)
        self._dials.append(_Dial(at_s, answered or handed_over, handed_over, abandoned, connect_s, ring_s))
        self._prune(at_s)
        if handed_over:
            step = STEADY_GAIN * (STEADY_AIM * self.settings.max_abandon_rate - abandoned)
            self._log_share = min(math.log(SHARE_MAX), max(math.log(SHARE_MIN), self._log_share + step))

    def rates(self, now_s: float, handle_s: float | None = None, handle_samples_s: tuple[float, ...] = ()) -> Rates:
        self._prune(now_s)
        connects = [d.connect_s for d in self._dials if d.person and d.connect_s is not None]
        return Rates(
            dials=len(self._dials),
            answers=sum(1 for d in self._dials if d.answered),
            persons=sum(1 for d in self._dials if d.person),
            abandoned=sum(1 for d in self._dials if d.abandoned),
            connect_s=sum(connects) / len(connects) if connects else None,
            handle_s=handle_s,
            handle_samples_s=tuple(sorted(handle_samples_s)),
            person_ring_s=tuple(sorted(d.ring_s for d in self._dials if d.person and d.ring_s is not None)),
            dial_ring_s=tuple(sorted(d.ring_s for d in self._dials if d.ring_s is not None)),
            share=math.exp(self._log_share),
        )

    def _prune(self, now_s: float) -> None:
        horizon = now_s - self.settings.window_s
        while self._dials and self._dials[0].at_s < horizon:
            self._dials.popleft()
