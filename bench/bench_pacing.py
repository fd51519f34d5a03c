"""Pacing modes on one call population: operator utilisation, abandonment, dead air and persons per
operator-hour for fixed vs progressive vs predictive, in one run.

    .venv/bin/python bench/bench_pacing.py [--operators 10] [--hours 4] [--seed 1]
        [--person-rate 0.25 | --answer-rate 0.3]

A discrete-event simulation in simulated time (no sockets, deterministic for a seed) driving the
worker's own pacing code: the pure pacer (dialer.pacing.pacer), its rolling window, and the
operator tracker (dialer.pacing.operators) fed with QueueMemberStatus / QueueMemberPause events
shaped as app_queue writes them. Every mode dials the same contacts in the same order, each with
its fate drawn once: no answer (rings up to 30 s), busy, an answering machine or announcement
(answered, analysed, hung up; ``MACHINE_RATE`` of the dials), or a person (answered, recognised
after 1.5–3 s, handed over, waits in the queue's hold until an operator is free or their patience
ends). Operators talk a gamma-distributed time, take a short wrap-up, and each takes one 10-minute
pause per hour.

Abandoned = persons lost before an operator answered, or who waited over ``max_wait_s`` (2 s), over
persons handed over. Utilisation = operator time talking / operator time logged in and not paused.
Wait = a handed-over person's wait in the queue for an operator (mean, p95); dead air = from the
person's answer to an operator (the dialer's analysis + the wait), mean.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from dialer.pacing.operators import OperatorTracker
from dialer.pacing.pacer import Backoff, InFlight, PacingMode, PacingSettings, PacingStats, allowed_calls

QUEUE = "operators"
MAX_LINES = 200  # trunk capacity (free server slots) for the paced modes
MACHINE_RATE = 0.12  # dials answered by a machine (voicemail, IVR, an answered announcement)
BUSY_RATE = 0.10


@dataclass(frozen=True)
class Fate:
    kind: str  # noanswer | busy | machine | person
    ring_s: float
    analyse_s: float = 0.0
    patience_s: float = 0.0
    talk_s: float = 0.0


def population(n: int, person_rate: float, rng: random.Random) -> list[Fate]:
    out = []
    for _ in range(n):
        r = rng.random()
        if r < person_rate:
            out.append(
                Fate(
                    "person",
                    rng.uniform(3, 15),
                    analyse_s=rng.uniform(1.5, 3.0),
                    patience_s=rng.expovariate(1 / 25.0),
                    talk_s=max(10.0, rng.gammavariate(4.0, 90.0 / 4.0)),
                )
            )
        elif r < person_rate + MACHINE_RATE:
            out.append(Fate("machine", rng.uniform(3, 15), analyse_s=rng.uniform(2.0, 6.0)))
        elif r < person_rate + MACHINE_RATE + BUSY_RATE:
            out.append(Fate("busy", rng.uniform(1, 4)))
        else:
            out.append(Fate("noanswer", rng.uniform(20, 30)))
    return out


@dataclass
class Operator:
    name: str
    busy: bool = False
    paused: bool = False
    talk_s: float = 0.0
    available_s: float = 0.0  # logged in and not paused
    since_s: float = 0.0


@dataclass
class Result:
    mode: str
    dials: int = 0
    persons: int = 0
    served: int = 0
    abandoned: int = 0
    lost: int = 0
    waits_s: list[float] = field(default_factory=list)
    dead_air_s: list[float] = field(default_factory=list)  # answer → an operator (analysis + queue)
    utilisation: float = 0.0
    persons_per_op_hour: float = 0.0


class Run:
    def __init__(
        self,
        settings: PacingSettings,
        concurrency: int,
        fates: list[Fate],
        operators: int,
        hours: float,
        backoff: Backoff | None = None,
    ):
        self.settings = settings
        self.backoff = backoff  # None: the worker's steered share
        self.concurrency = concurrency
        self.fates = iter(fates)
        self.horizon_s = hours * 3600.0
        self.ops = [Operator(f"op{i}") for i in range(1, operators + 1)]
        self.tracker = OperatorTracker(frozenset({QUEUE}))
        self.stats = PacingStats(settings)
        self.events: list[tuple[float, int, Callable[[], None]]] = []
        self.seq = itertools.count()
        self.now = 0.0
        self.dialling = self.analysing = 0
        self.ringing: dict[int, float] = {}  # call → originated at
        # (joined, originated, patience deadline, fate, [served or lost])
        self.waiting: deque[tuple[float, float, float, Fate, list[bool]]] = deque()
        self.result = Result(settings.mode.value if settings.mode is not PacingMode.FIXED else f"fixed({concurrency})")
        for op in self.ops:
            self._member_event(op)

    # -- plumbing -----------------------------------------------------------------------------
    def at(self, t: float, fn: Callable[[], None]) -> None:
        heapq.heappush(self.events, (t, next(self.seq), fn))

    def _member_event(self, op: Operator) -> None:
        self.tracker.feed(
            {
                "Event": "QueueMemberPause" if op.paused else "QueueMemberStatus",
                "Queue": QUEUE,
                "MemberName": op.name,
                "Interface": f"PJSIP/{op.name}",
                "InCall": "1" if op.busy else "0",
                "Status": "2" if op.busy else "1",
                "Paused": "1" if op.paused else "0",
            },
            self.now,
        )

    def _account(self, op: Operator) -> None:
        if not op.paused:
            op.available_s += self.now - op.since_s
        op.since_s = self.now

    # -- the dialer -----------------------------------------------------------------------------
    def dispatch(self) -> None:
        if self.now >= self.horizon_s:
            return
        in_flight = self.dialling + self.analysing + len(self.waiting)
        if self.settings.mode is PacingMode.FIXED:
            n = self.concurrency - in_flight
        else:
            ages = tuple(self.now - t0 for t0 in self.ringing.values())
            flight = InFlight(self.dialling, self.analysing, len(self.waiting), ages)
            rates = self.stats.rates(self.now, self.tracker.handle_s, self.tracker.handle_samples_s)
            ops = self.tracker.supply(QUEUE, self.now)
            n = allowed_calls(self.settings, MAX_LINES - in_flight, ops, flight, rates, self.backoff)
        for _ in range(max(0, n)):
            fate = next(self.fates)
            self.result.dials += 1
            self.dialling += 1
            call = next(self.seq)
            self.ringing[call] = self.now
            self.at(self.now + fate.ring_s, partial(self.ring_ends, fate, self.now, call))

    def ring_ends(self, fate: Fate, t0: float, call: int) -> None:
        self.dialling -= 1
        del self.ringing[call]
        if fate.kind in ("noanswer", "busy"):
            self.stats.dial_finished(self.now, answered=False, handed_over=False, ring_s=fate.ring_s)
            return
        self.analysing += 1
        self.at(self.now + fate.analyse_s, lambda: self.decided(fate, t0))

    def decided(self, fate: Fate, t0: float) -> None:
        self.analysing -= 1
        if fate.kind == "machine":
            self.stats.dial_finished(self.now, answered=True, handed_over=False, ring_s=fate.ring_s)
            return
        self.result.persons += 1
        state = [False]  # served
        self.waiting.append((self.now, t0, self.now + fate.patience_s, fate, state))
        self.at(self.now + fate.patience_s, lambda: self.gives_up(state, t0))
        self.serve()

    def gives_up(self, state: list[bool], t0: float) -> None:
        if state[0]:
            return
        state[0] = True
        entry = next(e for e in self.waiting if e[4] is state)
        self.waiting.remove(entry)
        self.result.lost += 1
        self.result.abandoned += 1
        self.result.waits_s.append(self.now - entry[0])
        self.result.dead_air_s.append(entry[3].analyse_s + self.now - entry[0])
        self.stats.dial_finished(
            self.now,
            answered=True,
            handed_over=True,
            lost=True,
            queue_wait_s=self.now - entry[0],
            connect_s=entry[0] - t0,
            ring_s=entry[3].ring_s,
        )

    def serve(self) -> None:
        while self.waiting:
            free = [op for op in self.ops if not op.busy and not op.paused]
            if not free:
                return
            joined, t0, _deadline, fate, state = self.waiting.popleft()
            state[0] = True
            op = min(free, key=lambda o: o.since_s)
            self._account(op)
            op.busy = True
            self._member_event(op)
            wait_s = self.now - joined + 0.5  # the operator's phone answers in 0.5 s
            self.result.waits_s.append(wait_s)
            self.result.dead_air_s.append(fate.analyse_s + wait_s)
            self.result.served += 1
            if wait_s > self.settings.max_wait_s:
                self.result.abandoned += 1
            self.stats.dial_finished(
                self.now,
                answered=True,
                handed_over=True,
                queue_wait_s=wait_s,
                connect_s=joined - t0,
                ring_s=fate.ring_s,
            )
            op.talk_s += fate.talk_s
            self.at(self.now + 0.5 + fate.talk_s + 5.0, partial(self.operator_free, op))  # + 5 s wrap-up

    def operator_free(self, op: Operator) -> None:
        self._account(op)
        op.busy = False
        self._member_event(op)
        self.serve()

    def pause(self, op: Operator, paused: bool) -> None:
        self._account(op)
        op.paused = paused
        self._member_event(op)
        if not paused:
            self.serve()

    # -- the run --------------------------------------------------------------------------------
    def run(self) -> Result:
        for i, op in enumerate(self.ops):
            hour = 0.0
            while hour < self.horizon_s:
                start = hour + 600.0 + (i * 397.0) % 2400.0  # each operator pauses 10 min once an hour
                self.at(start, partial(self.pause, op, True))
                self.at(start + 600.0, partial(self.pause, op, False))
                hour += 3600.0
        self.at(0.0, lambda: None)
        while self.events:
            t, _seq, fn = heapq.heappop(self.events)
            if t > self.horizon_s:
                break
            self.now = t
            fn()
            self.dispatch()
        self.now = self.horizon_s
        for op in self.ops:
            self._account(op)
        avail = sum(op.available_s for op in self.ops)
        self.result.utilisation = sum(op.talk_s for op in self.ops) / avail if avail else 0.0
        self.result.persons_per_op_hour = self.result.served / (avail / 3600.0) if avail else 0.0
        return self.result


def p95(values: list[float]) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(0.95 * len(s)))]


def row(r: Result) -> str:
    handed = r.served + r.lost
    rate = r.abandoned / handed if handed else 0.0
    mean = sum(r.waits_s) / len(r.waits_s) if r.waits_s else 0.0
    dead = sum(r.dead_air_s) / len(r.dead_air_s) if r.dead_air_s else 0.0
    return (
        f"{r.mode:<14}{r.dials:>7}{handed:>8}{r.lost:>6}{rate:>9.2%}{r.utilisation:>7.1%}"
        f"{r.persons_per_op_hour:>10.1f}{mean:>10.1f}s{p95(r.waits_s):>9.1f}s{dead:>9.1f}s"
    )


def frontier(fates: list[Fate], operators: int, hours: float, progressive: Result) -> None:
    """The model's reach without the feedback: a fixed share of the cap risked per decision (the
    worker instead steers the share by each person's outcome). Where no share gives 1.5×
    progressive's utilisation under the cap, no steering will."""
    print("frontier: predictive with a fixed risk per decision (share of the 3 % cap), no steering")
    for share in (0.1, 0.25, 0.5, 1.0, 2.0):
        r = Run(PacingSettings(mode=PacingMode.PREDICTIVE), 0, fates, operators, hours, Backoff(share, "fixed")).run()
        r.mode = f"risk ×{share:g}"
        ratio = r.utilisation / progressive.utilisation if progressive.utilisation else 0.0
        print(row(r) + f"  {ratio:.2f}× progressive")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--operators", type=int, default=10)
    ap.add_argument("--hours", type=float, default=4.0)
    rate = ap.add_mutually_exclusive_group()
    rate.add_argument("--person-rate", type=float, default=0.25, help="share of dials a person answers")
    rate.add_argument(
        "--answer-rate",
        type=float,
        help=f"share of dials answered by anyone (persons = this − {MACHINE_RATE:.0%} machines)",
    )
    ap.add_argument("--concurrency", type=int, default=10, help="fixed mode's concurrency")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--frontier", action="store_true", help="also predictive at fixed risks, without steering")
    args = ap.parse_args()
    if args.answer_rate is not None:
        if not MACHINE_RATE < args.answer_rate <= 1.0 - BUSY_RATE:
            ap.error(f"--answer-rate must be over {MACHINE_RATE:g} (the machines) and at most {1 - BUSY_RATE:g}")
        args.person_rate = args.answer_rate - MACHINE_RATE
    fates = population(200_000, args.person_rate, random.Random(args.seed))
    modes = [
        (PacingSettings(mode=PacingMode.FIXED), args.concurrency),
        (PacingSettings(mode=PacingMode.FIXED), args.concurrency * 3),
        (PacingSettings(mode=PacingMode.PROGRESSIVE), 0),
        (PacingSettings(mode=PacingMode.PREDICTIVE), 0),
    ]
    print(
        f"{args.operators} operators, {args.hours:g} h, persons answer {args.person_rate:.0%} of dials "
        f"(answered in all: {args.person_rate + MACHINE_RATE:.0%}), "
        f"talk ~90 s + 5 s wrap-up, one 10-min pause per operator-hour, abandon = lost or wait > 2 s"
    )
    head = f"{'mode':<14}{'dials':>7}{'persons':>8}{'lost':>6}{'abandon':>9}{'util':>7}{'pers/op-h':>10}"
    print(head + f"{'wait mean':>11}{'wait p95':>10}{'dead air':>10}")
    results = []
    for settings, conc in modes:
        r = Run(settings, conc, fates, args.operators, args.hours).run()
        results.append(r)
        print(row(r))
    prog, pred = results[2], results[3]
    if prog.utilisation:
        print(f"predictive / progressive utilisation: {pred.utilisation / prog.utilisation:.2f}×")
    if args.frontier:
        frontier(fates, args.operators, args.hours, prog)


if __name__ == "__main__":
    main()
