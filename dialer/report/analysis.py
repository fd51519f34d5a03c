"""What the campaign report shows, computed from the recorded attempts (pure: no I/O, no plots).

"Reached" means a person answered: the attempt ended as ``person`` (an operator took the call) or
``person_lost`` (handed over, lost before an operator answered).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from dialer.domain.deciding import deciding_signal
from dialer.domain.fusion import NETWORK_CLASSES
from dialer.domain.model import CallClass, OwnerKind
from dialer.domain.numbering import NumberingIndex
from dialer.domain.rules import RulesTable
from dialer.storage.stats import AttemptFact

REACHED = frozenset({CallClass.PERSON.value, CallClass.PERSON_LOST.value})
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
UNKNOWN_CARRIER = "(not in the registry)"
# Extra attempts a what-if may add beyond a contact's recorded history (estimated, not replayed).
MAX_EXTRA_ATTEMPTS = 30


@dataclass(frozen=True)
class Rate:
    reached: int
    total: int

    @property
    def share(self) -> float:
        return self.reached / self.total if self.total else 0.0


def by_contact(facts: Iterable[AttemptFact]) -> dict[int, list[AttemptFact]]:
    out: dict[int, list[AttemptFact]] = defaultdict(list)
    for f in facts:
        out[f.contact_id].append(f)
    return dict(out)


def outcomes_by_attempt(facts: Iterable[AttemptFact]) -> dict[int, Counter[str]]:
    out: dict[int, Counter[str]] = defaultdict(Counter)
    for f in facts:
        out[f.attempt_no][f.call_class] += 1
    return dict(sorted(out.items()))


def reach_by(facts: Iterable[AttemptFact], key: Callable[[AttemptFact], int]) -> dict[int, Rate]:
    reached: Counter[int] = Counter()
    total: Counter[int] = Counter()
    for f in facts:
        k = key(f)
        total[k] += 1
        reached[k] += f.call_class in REACHED
    return {k: Rate(reached[k], total[k]) for k in sorted(total)}


def local_time_key(campaign_tz: str, part: str) -> Callable[[AttemptFact], int]:
    """The hour (0–23) or weekday (0 = Monday) of an attempt in its contact's own time zone."""
    zones: dict[str, ZoneInfo] = {}

    def key(f: AttemptFact) -> int:
        name = f.contact_tz or campaign_tz
        zone = zones.setdefault(name, ZoneInfo(name))
        local = f.started_at.astimezone(zone)
        return local.hour if part == "hour" else local.weekday()

    return key


def hours_to_settlement(facts: Iterable[AttemptFact]) -> list[float]:
    """Settled contacts: hours from their first attempt to the end of their last one."""
    out = []
    for attempts in by_contact(facts).values():
        last = attempts[-1]
        if last.contact_state != "settled" or last.ended_at is None:
            continue
        out.append((last.ended_at - attempts[0].started_at).total_seconds() / 3600)
    return out


def class_mix_by_carrier(
    facts: Iterable[AttemptFact], index: NumberingIndex | None, top: int = 10
) -> dict[str, Counter[str]]:
    """Call classes per carrier of the number (numbering registry); the ``top`` busiest carriers."""
    mix: dict[str, Counter[str]] = defaultdict(Counter)
    for f in facts:
        found = index.lookup(f.e164) if index is not None and f.e164 else None
        mix[found.operator if found is not None and found.operator else UNKNOWN_CARRIER][f.call_class] += 1
    busiest = sorted(mix, key=lambda k: -sum(mix[k].values()))[:top]
    return {k: mix[k] for k in busiest}


def dead_air_s(facts: Iterable[AttemptFact]) -> list[float]:
    """Seconds of dead air of the attempts handed to operators (where the database stores it)."""
    return [f.dead_air_ms / 1000 for f in facts if f.dead_air_ms is not None]


# Class groups of the decision-latency plot: what the far end turned out to be.
CLASS_GROUPS = ("announcement", "person", "machine", "network / tone", "other")
_PERSON = frozenset({CallClass.PERSON.value, CallClass.PERSON_LOST.value, CallClass.UNSURE_ANSWERED.value})
_MACHINE = frozenset({CallClass.VOICEMAIL.value, CallClass.FAX.value, CallClass.IVR.value})
_NETWORK = frozenset(c.value for c in NETWORK_CLASSES)


def class_group(call_class: str) -> str:
    """One of :data:`CLASS_GROUPS`."""
    if call_class.startswith("ann_"):
        return "announcement"
    if call_class in _PERSON:
        return "person"
    if call_class in _MACHINE:
        return "machine"
    if call_class in _NETWORK:
        return "network / tone"
    return "other"


def decision_latency_by_group(facts: Iterable[AttemptFact]) -> dict[str, list[float]]:
    """Seconds from the start of the audio to the decision, per class group (in
    :data:`CLASS_GROUPS` order), of the attempts that store it (``attempts.decision_ms``)."""
    out: dict[str, list[float]] = {g: [] for g in CLASS_GROUPS}
    for f in facts:
        if f.decision_ms is not None:
            out[class_group(f.call_class)].append(f.decision_ms / 1000)
    return {g: v for g, v in out.items() if v}


def signals(facts: Iterable[AttemptFact]) -> Counter[str]:
    return Counter(deciding_signal(f.call_class, f.reason, f.answered) for f in facts)


# ---- what-if: the recorded history under other rules ------------------------------------------


@dataclass(frozen=True)
class WhatIf:
    label: str
    contacts: int
    calls: float  # calls spent (recorded ones replayed, plus the expected extra ones)
    persons: float  # persons reached (in the replayed history, plus the expected extra ones)
    extra_calls: float  # of ``calls``: beyond the recorded history (estimated)
    settled_earlier: int  # contacts the rules settle before their recorded history ends
    dial_beyond: int  # contacts the rules would dial past their recorded history


def recorded(facts: Sequence[AttemptFact]) -> WhatIf:
    per = by_contact(facts)
    persons = sum(any(a.call_class in REACHED for a in h) for h in per.values())
    return WhatIf("recorded", len(per), float(len(facts)), float(persons), 0.0, 0, 0)


def reach_probability(facts: Sequence[AttemptFact]) -> dict[int, float]:
    """P(a person answers attempt k | nobody answered before), from the campaign itself."""
    answered: Counter[int] = Counter()
    dialled: Counter[int] = Counter()
    for history in by_contact(facts).values():
        for a in history:
            dialled[a.attempt_no] += 1
            if a.call_class in REACHED:
                answered[a.attempt_no] += 1
                break
    return {k: answered[k] / dialled[k] for k in dialled}


def what_if(facts: Sequence[AttemptFact], rules: RulesTable, label: str) -> WhatIf:
    """Replay each contact's recorded classes under ``rules``: where they settle earlier the rest of
    the history is not spent; where they would dial on past the history, the extra attempts are
    estimated — each reaches a person with the campaign's own probability for that attempt
    number, otherwise it ends like the contact's last recorded attempt (whose rule says when to
    stop)."""
    p_reach = reach_probability(facts)
    fallback = min(p_reach.values()) if p_reach else 0.0
    calls = persons = extra_calls = 0.0
    settled_earlier = dial_beyond = 0
    per = by_contact(facts)
    for history in per.values():
        owner = OwnerKind(history[0].owner_kind)
        has_number = history[0].e164 is not None
        n = 0
        reached = settled = False
        for i, a in enumerate(history):
            cls = CallClass(a.call_class)
            d = rules.decide(cls, n + 1, owner, has_number=has_number)
            calls += 1
            n += d.counts_as_attempt
            reached = reached or a.call_class in REACHED
            if d.settled:
                settled = True
                settled_earlier += i < len(history) - 1
                break
        persons += reached
        if settled or reached:
            continue
        dial_beyond += 1
        last = CallClass(history[-1].call_class)
        alive = 1.0  # probability nobody has answered yet
        for _ in range(MAX_EXTRA_ATTEMPTS):
            p = p_reach.get(n + 1, fallback)
            calls += alive
            extra_calls += alive
            persons += alive * p
            alive *= 1 - p
            d = rules.decide(last, n + 1, owner, has_number=has_number)
            n += d.counts_as_attempt
            if d.settled:
                break
    return WhatIf(label, len(per), calls, persons, extra_calls, settled_earlier, dial_beyond)
