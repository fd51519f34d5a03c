"""The correlator replays every real Local/ transcript, in order and with the OriginateResponse
and the Hangups moved around, and must reach the same facts each time."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from dialer.ami.signals import CallFacts, ChannelRole, Correlator, Routed, parse_attempt_uid
from dialer.session.inputs import (
    Answered,
    DialEnded,
    Gone,
    HungUp,
    NetworkInput,
    OperatorAnswered,
    OriginateResult,
    Progress,
    QueueAbandoned,
    QueueJoined,
    Ringing,
)

from .transcripts import AMI_REFERENCE, REPO_ROOT, Recorded, load, local_transcripts

# scenario prefix → (answered, progress, dial_status, cause, originate reason)
EXPECTED: dict[str, tuple[bool, bool, str | None, int, int]] = {
    "01": (False, False, "BUSY", 17, 0),
    "02": (False, False, "CONGESTION", 34, 0),
    "03": (False, False, "NOANSWER", 16, 0),  # trunk says 0 on the Dial timeout
    "04": (False, True, "CHANUNAVAIL", 20, 4),
    "05": (False, True, "NOANSWER", 1, 4),
    "06": (True, False, "ANSWER", 16, 4),
    "07": (True, False, "ANSWER", 16, 4),
    "08": (True, False, "ANSWER", 16, 4),
    "09": (False, False, "NOANSWER", 1, 0),
    "10": (False, True, "NOANSWER", 28, 4),
    "11": (True, False, "ANSWER", 16, 4),
    "12": (False, True, "NOANSWER", 21, 4),
    "13": (False, True, "BUSY", 17, 4),
    "14": (True, False, "ANSWER", 16, 4),
    "15": (False, True, "NOANSWER", 21, 4),
}

TRANSCRIPTS = local_transcripts()


def test_reference_transcripts_are_present() -> None:
    assert AMI_REFERENCE.is_dir(), f"shared reference missing at {AMI_REFERENCE}"
    assert len(TRANSCRIPTS) == 19


def attempt_of(events: list[Recorded]) -> uuid.UUID:
    for ev in events:
        if ev.headers.get("Event") == "Newchannel":
            parsed = parse_attempt_uid(ev.headers["Uniqueid"])
            assert parsed is not None
            return parsed[0]
    raise AssertionError("no Newchannel")


def as_is(events: list[Recorded]) -> list[Recorded]:
    return events


def _split(events: list[Recorded]) -> tuple[list[Recorded], Recorded]:
    rest = [e for e in events if e.headers.get("Event") != "OriginateResponse"]
    (orig,) = [e for e in events if e.headers.get("Event") == "OriginateResponse"]
    return rest, orig


def originate_first(events: list[Recorded]) -> list[Recorded]:
    """OriginateResponse overtakes every channel event."""
    rest, orig = _split(events)
    return [orig, *rest]


def originate_before_hangups(events: list[Recorded]) -> list[Recorded]:
    rest, orig = _split(events)
    i = next(i for i, e in enumerate(rest) if e.headers.get("Event") == "Hangup")
    return [*rest[:i], orig, *rest[i:]]


def originate_last_hangups_reversed(events: list[Recorded]) -> list[Recorded]:
    """OriginateResponse after everything, and the Hangups at the end in reverse order."""
    rest, orig = _split(events)
    hangups = [e for e in rest if e.headers.get("Event") == "Hangup"]
    others = [e for e in rest if e.headers.get("Event") != "Hangup"]
    return [*others, *reversed(hangups), orig]


ORDERS: list[Callable[[list[Recorded]], list[Recorded]]] = [
    as_is,
    originate_first,
    originate_before_hangups,
    originate_last_hangups_reversed,
]


Timed = tuple[float, NetworkInput]


def replay(path: Path, order: Callable[[list[Recorded]], list[Recorded]]) -> tuple[list[Timed], Correlator]:
    """Every session input the correlator makes of a transcript, with the time it was fed."""
    events = load(path)
    attempt = attempt_of(events)
    corr = Correlator()
    corr.track(attempt, at=0.0)
    signals: list[Timed] = []
    for ev in order(events):
        routed = corr.feed(ev.headers, at=ev.t)
        if routed is not None:
            assert routed.attempt_id == attempt and routed.at == ev.t
            signals += [(routed.at, i) for i in routed.inputs]
    return signals, corr


def inputs(signals: list[Timed]) -> list[NetworkInput]:
    return [i for _, i in signals]


@pytest.mark.parametrize("order", ORDERS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("path", TRANSCRIPTS, ids=lambda p: p.name)
def test_transcript_facts(path: Path, order: Callable[[list[Recorded]], list[Recorded]]) -> None:
    answered, progress, dial_status, cause, reason = EXPECTED[path.name[:2]]
    signals, corr = replay(path, order)
    ins = inputs(signals)

    gone = [s for s in ins if isinstance(s, Gone)]
    assert len(gone) == 1, "exactly one Gone"
    assert ins[-1] is gone[0], "Gone is the last input"
    assert not corr.tracked, "a gone attempt is dropped from memory"
    facts: CallFacts = corr.facts(attempt_of(load(path)))  # the final facts stay readable
    assert (gone[0].cause, gone[0].dial_status, gone[0].forced) == (facts.cause, facts.dial_status, False)

    assert facts.answered is answered
    assert facts.progress is progress
    assert facts.dial_status == dial_status
    assert facts.cause == cause
    assert facts.originate_reason == reason
    assert facts.channels_live == 0 and facts.gone and not facts.forced
    assert set(facts.uniqueids) == {ChannelRole.LOCAL1, ChannelRole.LOCAL2, ChannelRole.TRUNK}
    assert facts.uniqueids[ChannelRole.LOCAL2] == f"{facts.attempt_id};2"
    assert facts.trunk_uniqueid is not None and ";" not in facts.trunk_uniqueid

    kinds = [type(s) for s in ins]
    assert kinds.count(Answered) == int(answered)
    assert kinds.count(Progress) == int(progress)
    assert kinds.count(OriginateResult) == 1
    assert kinds.count(HungUp) == 3
    assert [s.dial_status for s in ins if isinstance(s, DialEnded)] == [dial_status]
    assert corr.stats.unknown_attempt == 0


@pytest.mark.parametrize("path", TRANSCRIPTS, ids=lambda p: p.name)
def test_signal_order_in_real_order(path: Path) -> None:
    """In the recorded order: ringing/progress/answer precede the hangups, times are the stamps."""
    signals, _ = replay(path, as_is)
    ins = inputs(signals)
    first_hangup = next(i for i, s in enumerate(ins) if isinstance(s, HungUp))
    for i, s in enumerate(ins):
        if isinstance(s, Progress | Answered | Ringing):
            assert i < first_hangup
    ats = [at for at, _ in signals]
    assert ats == sorted(ats)


def test_early_media_progress_precedes_trunk_answer_and_is_not_an_answer() -> None:
    path = AMI_REFERENCE / "local" / "04-early-announcement-cause20.txt"
    signals, _ = replay(path, as_is)
    progress = [at for at, s in signals if isinstance(s, Progress)]
    assert progress and progress[0] < 0.01
    # The pseudo-dial of ;1 says DialEnd ANSWER at progress time: it must not count as an answer.
    assert not any(isinstance(s, Answered) for s in inputs(signals))


def test_busy_causes_per_role() -> None:
    signals, _ = replay(AMI_REFERENCE / "local" / "01-busy.txt", as_is)
    causes = {s.role: s.cause for s in inputs(signals) if isinstance(s, HungUp)}
    assert causes == {ChannelRole.TRUNK: 17, ChannelRole.LOCAL2: 17, ChannelRole.LOCAL1: 17}


def test_events_of_untracked_attempts_are_counted_not_signalled() -> None:
    events = load(AMI_REFERENCE / "local" / "06-person-answers.txt")
    corr = Correlator()
    corr.track(uuid.uuid4(), at=0.0)  # some other attempt
    out = [corr.feed(ev.headers, at=ev.t) for ev in events]
    assert out == [None] * len(events)
    assert corr.stats.unknown_attempt > 10
    assert corr.stats.unrelated > 0  # FullyBooted, DeviceStateChange, responses


def test_late_events_after_gone_are_counted_as_late() -> None:
    path = AMI_REFERENCE / "local" / "01-busy.txt"
    events = load(path)
    attempt = attempt_of(events)
    corr = Correlator()
    corr.track(attempt, at=0.0)
    for ev in events:
        corr.feed(ev.headers, at=ev.t)
    assert not corr.is_tracked(attempt)
    hangup = next(e for e in events if e.headers.get("Event") == "Hangup")
    assert corr.feed(hangup.headers, at=99.0) is None
    assert corr.stats.late == 1


def test_keys_are_case_insensitive_and_lists_take_first() -> None:
    attempt = uuid.uuid4()
    corr = Correlator()
    corr.track(attempt, at=0.0)
    corr.feed({"EVENT": "Newchannel", "uniqueid": str(attempt), "LINKEDID": str(attempt)}, at=0.0)
    out = corr.feed({"event": "Newstate", "UniqueID": str(attempt), "channelstate": ["6", "5"]}, at=1.0)
    assert out == Routed(attempt, 1.0, (Progress(),))


def test_finish_forces_the_end_when_channels_vanished() -> None:
    attempt = uuid.uuid4()
    corr = Correlator()
    corr.track(attempt, at=0.0)
    corr.feed({"Event": "Newchannel", "Uniqueid": str(attempt), "Linkedid": str(attempt)}, at=0.1)
    # OriginateResponse Failure before any channel would not end it: channels may still come.
    gone = corr.finish(attempt, at=5.0)
    assert gone is not None and gone.forced
    facts = corr.facts(attempt)
    assert facts.forced and facts.channels_live == 1
    assert corr.finish(attempt, at=6.0) is None


def test_originate_failure_before_any_channel_waits_for_channels() -> None:
    attempt = uuid.uuid4()
    corr = Correlator()
    corr.track(attempt, at=0.0)
    out = corr.feed(
        {
            "Event": "OriginateResponse",
            "Response": "Failure",
            "Reason": "0",
            "Uniqueid": "<null>",
            "ActionID": f"dialer-orig/{attempt}",
        },
        at=0.1,
    )
    assert out == Routed(attempt, 0.1, (OriginateResult(0, "Failure"),))
    assert out.inputs[0].success is False  # type: ignore[union-attr]
    assert corr.is_tracked(attempt)


def test_session_step_log_names_each_network_input() -> None:
    """The session's step log (``dialer replay --explain``) says what each input was."""
    from dialer.audio import load_toneplans
    from dialer.session.session import SessionSetup

    signals, _ = replay(AMI_REFERENCE / "local" / "01-busy.txt", as_is)
    session = SessionSetup(load_toneplans(REPO_ROOT / "config" / "tones.yaml").get("ru")).session(uuid.uuid4())
    for at, inp in signals:
        session.feed(inp, int(at * 1000))
    texts = [st.text for st in session.trace if st.kind == "net"]
    assert texts[-1] == "every channel gone (cause 17, DialStatus BUSY)"
    assert "DialEnd BUSY" in texts
    trunk = next(t for t in texts if t.startswith("Hangup of the trunk leg"))
    assert "cause 17" in trunk
    assert session.evidence is not None and session.evidence.call_class.value == "busy"


# --- hand-overs recorded on a real Asterisk 22 (tests/asterisk/transcripts/handover/) --------------

HANDOVER = REPO_ROOT / "tests" / "asterisk" / "transcripts" / "handover"


def handover_inputs(name: str) -> list[NetworkInput]:
    signals, corr = replay(HANDOVER / name, as_is)
    assert not corr.tracked  # every one of them ends
    return inputs(signals)


def test_a_person_answered_by_an_operator_is_confirmed_once() -> None:
    ins = handover_inputs("20-person-handed-over-answered.txt")
    joined = [i for i in ins if isinstance(i, QueueJoined)]
    answered = [i for i in ins if isinstance(i, OperatorAnswered)]
    assert joined == [QueueJoined("operators", 1)]
    assert len(answered) == 1 and answered[0].operator == "op1"  # AgentConnect names the member, once
    assert ins.index(joined[0]) < ins.index(answered[0]) < ins.index(next(i for i in ins if isinstance(i, Gone)))
    assert not any(isinstance(i, QueueAbandoned) for i in ins)


def test_a_person_who_hangs_up_in_the_queue_is_an_abandon_not_an_answer() -> None:
    ins = handover_inputs("21-person-abandons-queue.txt")
    (abandon,) = [i for i in ins if isinstance(i, QueueAbandoned)]
    assert abandon.queue == "operators" and abandon.hold_s is not None and 0 <= abandon.hold_s <= 10
    assert not any(isinstance(i, OperatorAnswered) for i in ins)


@pytest.mark.parametrize("name", ["22-redirect-queue-missing.txt", "23-redirect-context-missing.txt"])
def test_a_missing_queue_or_context_ends_the_call_without_joining(name: str) -> None:
    ins = handover_inputs(name)
    assert not any(isinstance(i, QueueJoined | OperatorAnswered | QueueAbandoned) for i in ins)
    assert isinstance(ins[-1], Gone)
