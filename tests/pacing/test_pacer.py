"""The pacing maths (dialer.pacing.pacer): tables of situations and the calls each mode allows."""

from __future__ import annotations

import pytest

from dialer.pacing.pacer import (
    InFlight,
    OperatorSupply,
    PacingMode,
    PacingSettings,
    PacingStats,
    Rates,
    allowed_calls,
    backoff_factor,
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
        # supply 2 free; 25 % of dials are persons → 8 calls expected to bring 2 persons
        (PREDICTIVE, 20, OperatorSupply(2, 0), InFlight(), MEASURED, 8, "2 free / 0.25"),
        # + 5 busy × 20/100 soon free = 3 → 12
        (PREDICTIVE, 20, OperatorSupply(2, 5), InFlight(), MEASURED, 12, "busy soon free"),
        # 4 ringing (1 person expected) and 2 answered (25/40 each = 1.25) → (3 − 2.25)/0.25 = 3
        (PREDICTIVE, 20, OperatorSupply(2, 5), InFlight(dialling=4, analysing=2), MEASURED, 3, "in flight"),
        # a person waiting takes a free operator first
        (PREDICTIVE, 20, OperatorSupply(2, 0), InFlight(waiting=1), MEASURED, 4, "waiting person"),
        (PREDICTIVE, 5, OperatorSupply(2, 5), InFlight(), MEASURED, 5, "capacity caps"),
        (PREDICTIVE, 20, OperatorSupply(0, 5), InFlight(dialling=10), MEASURED, 0, "over-dialled: none"),
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
    [(0, 1.0), (1, 1.0), (2, 0.7 / 1.2), (3, 0.0), (10, 0.0)],  # of 100; back-off from 1.5 % to 2.7 %
)
def test_backoff_as_the_cap_nears(abandoned: int, factor: float) -> None:
    rates = Rates(dials=400, answers=150, persons=100, abandoned=abandoned)
    assert backoff_factor(PREDICTIVE, rates).factor == pytest.approx(factor, abs=0.01)


def test_predictive_backs_off_to_progressive_at_the_cap() -> None:
    ops, flight = OperatorSupply(2, 5), InFlight()
    calm = allowed_calls(PREDICTIVE, 50, ops, flight, MEASURED)
    near = allowed_calls(PREDICTIVE, 50, ops, flight, Rates(100, 40, 25, 0 + 1, 20.0, 100.0))  # 4 %: over
    half = allowed_calls(PREDICTIVE, 50, ops, flight, Rates(100, 40, 50, 1, 20.0, 100.0))  # 2 %: between
    assert calm == 12
    assert near == 2  # progressive: the free operators only
    assert 2 < half < allowed_calls(PREDICTIVE, 50, ops, flight, Rates(100, 40, 50, 0, 20.0, 100.0))


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
    assert stats.rates(200.0) == Rates()
