"""Which number plays which scenario, on the real carrier and in the simulator alike.

``79990000NN``-style numbers (last two digits NN) play the simulator's catalogue (dialer.sim
scenarios 01–19, the same numbers the simulator uses). The extra scenarios below are built from
the same steps and clips, and are given to the simulator through its ``number_map``, so every
number has one script that both the carrier and the simulator play.
"""

from __future__ import annotations

from dialer.sim import scenarios as sc

CATALOGUE: dict[str, sc.Scenario] = {f"799900000{nn}": s for nn, s in sc.BY_ENDING.items()}


def _extra(number: str, name: str, title: str, *steps: sc.Step) -> tuple[str, sc.Scenario]:
    # operator_talk_s=None: the far end's script goes on after a hand-over, as the real carrier's
    # does (it cannot know about the Redirect).
    return number, sc.Scenario(name=name, title=title, steps=steps, number=number[-3:], operator_talk_s=None)


EXTRA: dict[str, sc.Scenario] = dict(
    [
        # People: several greeting shapes.
        _extra(
            "79992000101",
            "person_short",
            "A person answers «Алло, слушаю.» and waits",
            sc.Ring(),
            sc.Wait(1.0),
            sc.Answer(),
            sc.Wait(0.3),
            sc.Play("person_hello"),
            sc.Silence(30.0),
            sc.Hangup(16),
        ),
        _extra(
            "79992000102",
            "person_two_phrases",
            "A person says «Алло, слушаю.», pauses, then «Алло? Говорите…»",
            sc.Ring(),
            sc.Wait(1.5),
            sc.Answer(),
            sc.Wait(0.2),
            sc.Play("person_hello"),
            sc.Silence(1.2),
            sc.Play("person_again"),
            sc.Silence(25.0),
            sc.Hangup(16),
        ),
        _extra(
            "79992000103",
            "person_after_silence",
            "A person answers, says nothing for 1.5 s, then «Алло? Говорите…»",
            sc.Ring(),
            sc.Wait(1.0),
            sc.Answer(),
            sc.Silence(1.5),
            sc.Play("person_again"),
            sc.Silence(25.0),
            sc.Hangup(16),
        ),
        _extra(
            "79992000104",
            "person_leaves_queue",
            "A person says «Алло, слушаю.» and hangs up while waiting for an operator",
            sc.Ring(),
            sc.Wait(1.0),
            sc.Answer(),
            sc.Wait(0.3),
            sc.Play("person_hello"),
            sc.Silence(2.5),
            sc.Hangup(16),
        ),
        # Tones in early media.
        _extra(
            "79992000111",
            "early_busy_tone",
            "Early media: busy tone (425 Hz 350/350 ms), then cause 17",
            sc.Progress(),
            sc.Tone("busy", 6.0),
            sc.Hangup(17),
        ),
        _extra(
            "79992000112",
            "early_congestion_tone",
            "Early media: congestion tone (425 Hz 175/175 ms), then cause 34",
            sc.Progress(),
            sc.Tone("congestion", 6.0),
            sc.Hangup(34),
        ),
        # Item 4 of issue 10: early media with 5 s of no media at all before the announcement.
        _extra(
            "79992000121",
            "early_media_gap",
            "Early media: 5 s with no media at all, then «абонент временно недоступен», cause 20",
            sc.Progress(),
            sc.Wait(5.0),
            sc.Play("unreachable"),
            sc.Hangup(20),
        ),
    ]
)

# More numbers for the catalogue's scenarios, so that the fault tests (their own worker runs,
# often their own pbx) dial numbers no other test uses: 7999300NNNN plays scenario NN of the
# catalogue (last two digits), like the simulator's own rule.
FAULTS: dict[str, sc.Scenario] = {
    f"79993{group:02d}00{nn}": sc.BY_ENDING[nn]
    for group in range(1, 10)
    for nn in ("01", "03", "04", "06", "14", "17", "19")
}

ROUTES: dict[str, sc.Scenario] = {**CATALOGUE, **EXTRA, **FAULTS}

# The main campaign: every scenario except 17 (its AMI drop would hit every other call's events;
# tests/asterisk/test_faults.py plays it alone).
CAMPAIGN: dict[str, sc.Scenario] = {n: s for n, s in {**CATALOGUE, **EXTRA}.items() if s.name != "ami_drop"}


def number_of(name: str) -> str:
    for number, scenario in {**CATALOGUE, **EXTRA}.items():
        if scenario.name == name:
            return number
    raise KeyError(name)


def fault_numbers(group: int, *endings: str) -> list[str]:
    """Numbers of FAULTS in ``group`` (1–9) playing catalogue scenarios ``endings``."""
    return [f"79993{group:02d}00{nn}" for nn in endings]
