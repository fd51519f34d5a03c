"""The pacing maths (dialer.pacing.pacer): tables of situations and the calls each mode allows."""

from __future__ import annotations

import math

import pytest

from dialer.pacing.pacer import (
    SHARE_MAX,
    SHARE_MIN,
    STEADY_AIM,
    STEADY_GAIN,
    Backoff,
    InFlight,
    OperatorSupply,
    PacingMode,
    PacingSettings,
    PacingStats,
    Rates,
    allowed_calls,
    backoff_factor,
    expected_overflow,
)

FIXED = PacingSettings(mode=PacingMode.FIXED)
PROGRESSIVE = PacingSettings(mode=PacingMode.PROGRESSIVE)
PREDICTIVE = PacingSettings(mode=PacingMode.PREDICTIVE, min_samples=20)
# 100 dials, 40 answered, 25 persons (25 % person per dial), none abandoned; a person is reached
# 20 s after the originate, an operator is busy 100 s per call.
MEASURED = Rates(dials=100, answers=40, persons=25, abandoned=0, connect_s=20.0, handle_s=100.0)


@pytest.mark.parametrize(
    ("settings", "capacity", "ops", "flight", "rates", "expected", "why"),
    [
        (FIXED, 7, None, InFlight(), Rates(), 7, "fixed ignores the operators"),
        (FIXED, 7, OperatorSupply(0, 5), InFlight(dialling=3), MEASURED, 7, "fixed: even with none free"),
        (PROGRESSIVE, 10, None, InFlight(), Rates(), 0, "no operator state yet: wait for it"),
        (PROGRESSIVE, 10, OperatorSupply(2, 0), InFlight(), Rates(), 2, "one call per free operator"),
        (PROGRESSIVE, 10, OperatorSupply(2, 3), InFlight(dialling=1), Rates(), 1, "a ringing call holds one"),
        (PROGRESSIVE, 10, OperatorSupply(2, 0), InFlight(analysing=1, waiting=1), Rates(), 0, "all held"),
        (PROGRESSIVE, 10, OperatorSupply(1, 0), InFlight(dialling=3), Rates(), 0, "never negative"),
        (PROGRESSIVE, 1, OperatorSupply(5, 0), InFlight(), Rates(), 1, "capacity caps"),
        (PROGRESSIVE, 10, OperatorSupply(4, 0), InFlight(), MEASURED, 4, "measured rates change nothing"),
        (PREDICTIVE, 10, OperatorSupply(2, 0), InFlight(), Rates(dials=5, answers=2, persons=1), 2, "too few samples"),
        # 2 free, a person per 4 dials: 12 calls would bring 3 persons on average; the most whose
        # expected overflow (Poisson) stays under 3 % × 2.25 (no abandonment yet) of the persons
        (PREDICTIVE, 20, OperatorSupply(2, 0), InFlight(), MEASURED, 3, "2 free"),
        (PREDICTIVE, 50, OperatorSupply(10, 0), InFlight(), MEASURED, 33, "10 free: a pool absorbs more"),
        # + 5 busy, each free within the 20 s a new call needs with chance 20/100 → 3 operators
        (PREDICTIVE, 20, OperatorSupply(2, 5), InFlight(), MEASURED, 6, "busy soon free"),
        # 4 ringing (1 person expected) and 2 answered (25/40 each): already enough
        (PREDICTIVE, 20, OperatorSupply(2, 5), InFlight(dialling=4, analysing=2), MEASURED, 0, "in flight"),
        # a person waiting takes a free operator first
        (PREDICTIVE, 20, OperatorSupply(2, 0), InFlight(waiting=1), MEASURED, 1, "waiting person"),
        (PREDICTIVE, 2, OperatorSupply(2, 5), InFlight(), MEASURED, 2, "capacity caps"),
        (PREDICTIVE, 20, OperatorSupply(0, 5), InFlight(dialling=10), MEASURED, 0, "over-dialled: none"),
        # measured back-off: 4 % abandoned (over 0.9 × the cap) → progressive
        (PREDICTIVE, 20, OperatorSupply(2, 5), InFlight(), Rates(100, 40, 25, 1, 20.0, 100.0), 2, "at the cap"),
    ],
)
def test_allowed_calls(
    settings: PacingSettings,
    capacity: int,
    ops: OperatorSupply | None,
    flight: InFlight,
    rates: Rates,
    expected: int,
    why: str,
) -> None:
    assert allowed_calls(settings, capacity, ops, flight, rates) == expected, why


@pytest.mark.parametrize(
    ("abandoned", "factor"),
    [(0, 2.7 / 1.2), (1, 1.7 / 1.2), (2, 0.7 / 1.2), (3, 0.0), (10, 0.0)],  # of 100: 1 at 1.5 %, 0 at 2.7 %
)
def test_backoff_as_the_cap_nears(abandoned: int, factor: float) -> None:
    rates = Rates(dials=400, answers=150, persons=100, abandoned=abandoned)
    assert backoff_factor(PREDICTIVE, rates).factor == pytest.approx(factor, abs=0.01)


def test_predictive_dials_less_as_abandonment_grows() -> None:
    ops, flight = OperatorSupply(10, 10), InFlight()
    allowed = [
        allowed_calls(PREDICTIVE, 200, ops, flight, Rates(400, 200, 100, lost, 20.0, 100.0)) for lost in range(5)
    ]
    assert allowed == sorted(allowed, reverse=True) and allowed[0] > allowed[2] > allowed[3]
    assert allowed[3] == allowed[4] == 10  # 3 % and more: progressive, one call per free operator


def test_a_given_backoff_replaces_the_measured_one() -> None:
    """bench_pacing --frontier risks a fixed share of the cap: at 4 % abandoned the measured
    back-off is progressive, a given share still dials ahead, more for a larger share."""
    ops, flight, rates = OperatorSupply(10, 10), InFlight(), Rates(400, 200, 100, 4, 20.0, 100.0)
    assert allowed_calls(PREDICTIVE, 200, ops, flight, rates) == 10
    assert allowed_calls(PREDICTIVE, 200, ops, flight, rates, Backoff(0.0, "none")) == 10
    half = allowed_calls(PREDICTIVE, 200, ops, flight, rates, Backoff(0.5, "fixed"))
    full = allowed_calls(PREDICTIVE, 200, ops, flight, rates, Backoff(1.0, "fixed"))
    assert 10 < half < full


def test_long_ringing_calls_count_less() -> None:
    """Persons answer within 10 s here: two calls ringing for 40 s will not bring one."""
    rates = Rates(
        dials=100,
        answers=40,
        persons=25,
        connect_s=20.0,
        handle_s=100.0,
        person_ring_s=tuple(sorted(float(i % 10) for i in range(25))),
        dial_ring_s=tuple(sorted([float(i % 10) for i in range(40)] + [30.0] * 60)),
    )
    assert rates.person_chance(0.0) == pytest.approx(22 / 96)  # persons / dials still ringing after 0 s
    assert rates.person_chance(40.0) == 0.0
    young = allowed_calls(PREDICTIVE, 50, OperatorSupply(2, 0), InFlight(2, dialling_ages_s=(1.0, 1.0)), rates)
    old = allowed_calls(PREDICTIVE, 50, OperatorSupply(2, 0), InFlight(2, dialling_ages_s=(29.0, 29.0)), rates)
    assert old > young


def test_operator_free_chance_from_measured_busy_periods() -> None:
    rates = Rates(handle_s=60.0, handle_samples_s=(30.0, 60.0, 90.0, 120.0))
    assert rates.free_chance(0.0, 40.0) == pytest.approx(1 / 4)
    assert rates.free_chance(70.0, 30.0) == pytest.approx(1 / 2)  # of 90 and 120, 90 ends by 100
    assert rates.free_chance(130.0, 5.0) == 1.0  # longer than any measured
    assert Rates(handle_s=100.0).free_chance(0.0, 20.0) == pytest.approx(0.2)  # no samples: the mean


@pytest.mark.parametrize(
    ("mean", "operators", "overflow"),
    [(0.5, 0, 0.5), (3.0, -1, 4.0), (2.0, 2, 0.5413), (1.0, 5, 0.0006), (10.0, 10, 1.2511)],
)
def test_expected_overflow_is_poisson(mean: float, operators: int, overflow: float) -> None:
    assert expected_overflow(mean, operators) == pytest.approx(overflow, abs=1e-4)


def test_rolling_window_counts_and_forgets() -> None:
    stats = PacingStats(PacingSettings(max_wait_s=2.0, window_s=60.0))
    stats.dial_finished(0.0, answered=False, handed_over=False)
    stats.dial_finished(10.0, answered=True, handed_over=False)  # a machine
    stats.dial_finished(20.0, answered=True, handed_over=True, queue_wait_s=0.5, connect_s=8.0)
    stats.dial_finished(30.0, answered=True, handed_over=True, queue_wait_s=2.5, connect_s=12.0)  # too long
    stats.dial_finished(40.0, answered=True, handed_over=True, lost=True, queue_wait_s=1.0, connect_s=10.0)
    r = stats.rates(45.0, handle_s=90.0)
    assert (r.dials, r.answers, r.persons, r.abandoned) == (5, 4, 3, 2)
    assert r.connect_s == pytest.approx(10.0)
    assert r.handle_s == 90.0
    assert r.abandon_rate == pytest.approx(2 / 3)
    assert r.person_per_dial == pytest.approx(0.6)
    assert r.person_per_answer == pytest.approx(0.75)
    later = stats.rates(95.0)  # the window now starts at 35 s: only the lost person is left
    assert (later.dials, later.persons, later.abandoned) == (1, 1, 1)
    empty = stats.rates(200.0)
    assert (empty.dials, empty.answers, empty.persons, empty.abandoned, empty.connect_s) == (0, 0, 0, 0, None)


def _handed(stats: PacingStats, at_s: float, *, abandoned: bool) -> None:
    stats.dial_finished(at_s, answered=True, handed_over=True, lost=abandoned, queue_wait_s=0.5, connect_s=10.0)


def test_the_steady_share_climbs_while_nobody_is_abandoned_and_falls_at_each_abandon() -> None:
    stats = PacingStats(PREDICTIVE)
    assert stats.rates(0.0).share == pytest.approx(1.0)
    for i in range(2000):
        _handed(stats, float(i), abandoned=False)
    assert stats.rates(2000.0).share == pytest.approx(SHARE_MAX)  # bounded
    _handed(stats, 2001.0, abandoned=True)
    cut = math.exp(-STEADY_GAIN * (1 - STEADY_AIM * PREDICTIVE.max_abandon_rate))
    assert stats.rates(2002.0).share == pytest.approx(SHARE_MAX * cut)
    stats.dial_finished(2003.0, answered=True, handed_over=False)  # a machine: no person, no change
    assert stats.rates(2004.0).share == pytest.approx(SHARE_MAX * cut)


def test_the_steady_share_holds_when_abandonment_runs_at_the_aim() -> None:
    """Abandoned at exactly the aim (2.1 % of persons): the share ends where it began; above the
    aim it falls, below it rises."""
    aim = STEADY_AIM * PREDICTIVE.max_abandon_rate

    def share_after(rate: float) -> float:
        stats = PacingStats(PREDICTIVE)
        for i in range(4000):
            _handed(stats, float(i), abandoned=math.floor((i + 1) * rate) > math.floor(i * rate))
        share = stats.rates(4000.0).share
        assert share is not None
        return share

    assert share_after(aim) == pytest.approx(1.0, rel=0.5)
    assert share_after(aim * 2) < SHARE_MIN * 1.5  # at the floor (the last person served lifted it)
    assert share_after(aim / 2) > SHARE_MAX / 1.5


def test_the_steady_share_is_the_back_off_of_measured_rates() -> None:
    """The worker's rates carry the steered share: it is the risk, whatever the rate (the steering
    already answered every abandon); hand-made rates without one keep the proportional back-off."""
    steady = backoff_factor(PREDICTIVE, Rates(400, 150, 100, 2, share=0.7))
    assert steady.factor == 0.7 and "steering at 2.1%" in steady.why
    assert backoff_factor(PREDICTIVE, Rates(400, 150, 100, 3)).factor == 0.0
    ops, flight = OperatorSupply(10, 10), InFlight()
    low, high = (
        allowed_calls(PREDICTIVE, 200, ops, flight, Rates(400, 200, 100, 2, 20.0, 100.0, share=share))
        for share in (SHARE_MIN, SHARE_MAX)
    )
    assert 10 <= low < high  # at the floor: about progressive (never below it), ahead only on near-certainty


def test_worker_health_shows_the_measured_rate_and_the_steered_share() -> None:
    """What an ops engineer reads in worker_health: the campaign's abandonment and the risk the
    steering has settled on (the pool and registry are not asked)."""
    from dialer.calls import CallRegistry
    from dialer.pacing.live import LivePacing, PacingConfig

    live = LivePacing(
        PacingConfig(default=PREDICTIVE),
        registry=CallRegistry(),
        pool=None,  # type: ignore[arg-type]
        now_s=lambda: 100.0,
        wake=lambda: None,
    )
    stats = live.stats("spring")
    for i in range(10):
        _handed(stats, float(i), abandoned=i == 9)
    health = live.health()["spring"]
    assert isinstance(health, dict)
    assert health["persons"] == 10 and health["abandon_rate"] == 0.1
    cut = math.exp(STEADY_GAIN * STEADY_AIM * PREDICTIVE.max_abandon_rate * 10 - STEADY_GAIN)
    assert health["risk_share"] == pytest.approx(cut, abs=1e-4)
