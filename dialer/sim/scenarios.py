"""What the far end does, per scenario: a short script of network steps and media.

Scenario choice by dialled number: an explicit map given to ``SimAsterisk`` wins; otherwise the
LAST TWO DIGITS of the number pick the scenario (numbers 01–15 follow the real transcripts in
tests/asterisk/transcripts/local/ of the same number, recorded from a real Asterisk 22 whose
carrier plays exactly these scripts, tests/asterisk/network.py):

== ============================ ===============================================================
NN name                         far end
== ============================ ===============================================================
01 busy                         busy at once (cause 17, DialEnd BUSY)
02 congestion                   congestion at once (cause 34, DialEnd CONGESTION)
03 no_answer                    rings, never answers: the Dial/Originate ring timeout ends it
04 early_unreachable_20         early media: 0.5 s silence, announcement twice, cause 20
05 sit_not_in_service_1         early media: SIT, announcement, cause 1
06 person                       rings 3 s, answers, a person says «Алло? Говорите…», waits, hangs up
07 answered_announcement        answers at once, announcement twice, hangs up (false answer)
08 answered_silence             answers, 20 s of silence, hangs up
09 unallocated                  rejects at once with cause 1
10 early_bad_format_28          early media: announcement twice, cause 28
11 ivr                          answers: organisation IVR asking for an extension
12 early_suspended_21           early media: announcement, cause 21
13 early_busy_17                early media: «абонент занят…» announcement, cause 17
14 voicemail                    rings 6 s, answers: voicemail greeting, beep, silence
15 early_blocked_21             early media: «номер заблокирован» twice, cause 21
16 drop_mid_call                rings, answers, a person speaks, the line drops mid-word (16)
17 ami_drop                     a person answers; mid-call the simulator drops every AMI
                                connection (the call lives on; CoreShowChannels shows it)
18 early_number_changed_22      early media: «номер абонента изменился» twice, cause 22
19 early_ringback_no_answer     early media ringback tone that never ends (ring timeout ends it)
== ============================ ===============================================================

Other endings (00, 20–99) cycle through the scenarios that are safe to mix into load runs
(everything but 16 and 17), see ``FALLBACK_CYCLE``.

After a ``Redirect`` into the operator context the far end talks to the operator for
``operator_talk_s`` and hangs up with cause 16 (``None`` keeps the original script running).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeAlias


@dataclass(frozen=True)
class Ring:
    """180 Ringing (no media)."""


@dataclass(frozen=True)
class Progress:
    """183 Session Progress: early media starts flowing."""


@dataclass(frozen=True)
class Answer:
    """200 OK: the far end answers; media flows."""


@dataclass(frozen=True)
class Wait:
    """Time passes with no media frames at all."""

    seconds: float


@dataclass(frozen=True)
class Silence:
    """Silent media frames (a carrier keeps sending packets)."""

    seconds: float


@dataclass(frozen=True)
class Tone:
    name: str  # see audio.tone_spec
    seconds: float | None = None  # None = one cycle


@dataclass(frozen=True)
class Play:
    clip: str  # key of data/manifest.json
    times: int = 1


@dataclass(frozen=True)
class Busy:
    """An in-signalling busy (SIP 486 → AST_CONTROL_BUSY): Dial ends BUSY at once."""


@dataclass(frozen=True)
class Congestion:
    """An in-signalling congestion (SIP 503 → AST_CONTROL_CONGESTION)."""


@dataclass(frozen=True)
class Hangup:
    """The far end hangs up (before an answer: a rejection) with this Q.850 cause."""

    cause: int = 16


@dataclass(frozen=True)
class DropAmi:
    """Fault injection: the simulator closes every AMI connection; calls carry on."""


Step: TypeAlias = Ring | Progress | Answer | Wait | Silence | Tone | Play | Busy | Congestion | Hangup | DropAmi


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    steps: tuple[Step, ...]
    number: str  # the two-digit ending that selects it
    transcript: str | None = None  # stem of the real transcript in tests/asterisk/transcripts/local/
    operator_talk_s: float | None = 5.0

    @property
    def answers(self) -> bool:
        return any(isinstance(s, Answer) for s in self.steps)

    @property
    def early_media(self) -> bool:
        return any(isinstance(s, Progress) for s in self.steps)


def _s(
    nn: str,
    name: str,
    title: str,
    *steps: Step,
    transcript: str | None = None,
    operator_talk_s: float | None = 5.0,
) -> Scenario:
    return Scenario(
        name=name,
        title=title,
        steps=steps,
        number=nn,
        transcript=transcript,
        operator_talk_s=operator_talk_s,
    )


_ALL: tuple[Scenario, ...] = (
    _s("01", "busy", "Busy at once (cause 17)", Busy(), transcript="01-busy"),
    _s("02", "congestion", "Congestion at once (cause 34)", Congestion(), transcript="02-congestion"),
    _s(
        "03",
        "no_answer",
        "Rings, never answers (ring timeout)",
        Ring(),
        Wait(3600.0),
        transcript="03-no-answer",
    ),
    _s(
        "04",
        "early_unreachable_20",
        "Early media: «абонент временно недоступен» twice, then cause 20",
        Progress(),
        Silence(0.5),
        Play("unreachable", 2),
        Hangup(20),
        transcript="04-early-announcement-cause20",
    ),
    _s(
        "05",
        "sit_not_in_service_1",
        "Early media: SIT tones, «номер не обслуживается», then cause 1",
        Progress(),
        Tone("sit"),
        Play("not_in_service"),
        Hangup(1),
        transcript="05-early-sit-announcement-cause1",
    ),
    _s(
        "06",
        "person",
        "Rings 3 s, a person answers «Алло? Говорите, я вас слушаю», waits, hangs up",
        Ring(),
        Wait(3.0),
        Answer(),
        Wait(0.5),
        Play("person_again"),
        Silence(30.0),
        Hangup(16),
        transcript="06-person-answers",
    ),
    _s(
        "07",
        "answered_announcement",
        "Answers at once, then an announcement twice (a false answer), hangs up",
        Answer(),
        Silence(0.3),
        Play("switched_off", 2),
        Silence(0.5),
        Hangup(16),
        transcript="07-answered-announcement",
    ),
    _s(
        "08",
        "answered_silence",
        "Answers, 20 s of silence, hangs up",
        Answer(),
        Silence(20.0),
        Hangup(16),
        transcript="08-answered-silence",
    ),
    _s(
        "09",
        "unallocated",
        "Rejected at once, cause 1 (unallocated number)",
        Hangup(1),
        transcript="09-unallocated-cause1",
    ),
    _s(
        "10",
        "early_bad_format_28",
        "Early media: «несуществующий формат номера» twice, then cause 28",
        Progress(),
        Play("bad_format", 2),
        Hangup(28),
        transcript="10-early-announcement-cause28",
    ),
    _s(
        "11",
        "ivr",
        "Answers: organisation IVR asking for an extension",
        Answer(),
        Silence(0.3),
        Play("ivr"),
        Silence(4.0),
        Play("ivr"),
        Silence(20.0),
        Hangup(16),
        transcript="11-answered-ivr",
    ),
    _s(
        "12",
        "early_suspended_21",
        "Early media: «обслуживание абонента приостановлено», then cause 21",
        Progress(),
        Play("suspended"),
        Hangup(21),
        transcript="12-early-announcement-cause21",
    ),
    _s(
        "13",
        "early_busy_17",
        "Early media: «абонент занят, оставайтесь на линии», then cause 17",
        Progress(),
        Play("busy_stay"),
        Hangup(17),
        transcript="13-early-busy-announcement-cause17",
    ),
    _s(
        "14",
        "voicemail",
        "Rings 6 s, answers: voicemail greeting, beep, silence",
        Ring(),
        Wait(6.0),
        Answer(),
        Silence(0.3),
        Play("voicemail"),
        Tone("beep"),
        Silence(7.5),
        Hangup(16),
        transcript="14-voicemail",
    ),
    _s(
        "15",
        "early_blocked_21",
        "Early media: «номер заблокирован» twice, then cause 21",
        Progress(),
        Play("blocked", 2),
        Hangup(21),
        transcript="15-early-announcement-blocked-cause21",
    ),
    _s(
        "16",
        "drop_mid_call",
        "A person answers and speaks, then the line drops mid-word (cause 16)",
        Ring(),
        Wait(2.0),
        Answer(),
        Wait(0.3),
        Play("person_again"),
        Hangup(16),
        operator_talk_s=None,
    ),
    _s(
        "17",
        "ami_drop",
        "A person answers; right after the answer every AMI connection drops, the call lives on",
        Ring(),
        Wait(1.0),
        Answer(),
        # Dropped before the person speaks, so the worker decides "person" while AMI is down
        # and must hand the call over after it reconnects.
        DropAmi(),
        Wait(0.3),
        Play("person_hello"),
        Silence(3.0),
        Play("person_again"),
        Silence(20.0),
        Hangup(16),
    ),
    _s(
        "18",
        "early_number_changed_22",
        "Early media: «номер абонента изменился» twice, then cause 22",
        Progress(),
        Play("number_changed", 2),
        Hangup(22),
    ),
    _s(
        "19",
        "early_ringback_no_answer",
        "Early media ringback tone, never answers (ring timeout)",
        Progress(),
        Tone("ringback", 3600.0),
    ),
)

SCENARIOS: dict[str, Scenario] = {s.name: s for s in _ALL}
BY_ENDING: dict[str, Scenario] = {s.number: s for s in _ALL}
FALLBACK_CYCLE: tuple[Scenario, ...] = tuple(s for s in _ALL if s.name not in ("drop_mid_call", "ami_drop"))


def scenario_for_number(number: str, explicit: Mapping[str, str | Scenario] | None = None) -> Scenario:
    """The scenario the simulator plays for a dialled number (see the module table).

    ``explicit`` maps exact numbers to a scenario name or to a custom ``Scenario``.
    """
    if explicit and number in explicit:
        name = explicit[number]
        if isinstance(name, Scenario):
            return name
        if name not in SCENARIOS:
            raise KeyError(f"unknown scenario {name!r} for {number}; known: {', '.join(SCENARIOS)}")
        return SCENARIOS[name]
    digits = "".join(ch for ch in number if ch.isdigit())
    ending = digits[-2:].rjust(2, "0")
    found = BY_ENDING.get(ending)
    if found is not None:
        return found
    return FALLBACK_CYCLE[int(ending) % len(FALLBACK_CYCLE)]
