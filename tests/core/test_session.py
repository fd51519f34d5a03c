"""The call session (pure): one call's phase, analysis, recognised phrases and fusion, driven by
inputs with the call's clock; commands out. The worker, replay and `dialer eval` all drive it."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest

from dialer.asr.catalogue import load_catalogue
from dialer.asr.matcher import PhraseMatcher
from dialer.asr.port import Hypothesis
from dialer.audio import load_toneplans
from dialer.corpus.generate import BUSY_CADENCE_MS, TONE_HZ, cadence
from dialer.domain.model import CallClass
from dialer.session.inputs import (
    Answered,
    AudioEnded,
    AudioFrame,
    ChannelRole,
    CloseRecognizer,
    Command,
    DialEnded,
    FlushRecognizer,
    Gone,
    HandToOperator,
    Hangup,
    HungUp,
    NetworkInput,
    OperatorAnswered,
    OriginateRejected,
    OriginateResult,
    Progress,
    QueueAbandoned,
    QueueJoined,
    Recognize,
    Recognized,
    RecognizerFlushed,
    Record,
    RedirectFailed,
    Ringing,
    SendDigits,
    StopRequested,
    Tick,
)
from dialer.session.replay import Timed, drive
from dialer.session.session import CallPhase, CallSession, SessionConfig, SessionSetup
from tests.audio.synth import rms_dbm0_scale, silence, synthetic_voice, to_int16

ROOT = Path(__file__).resolve().parents[2]
PLAN = load_toneplans(ROOT / "config" / "tones.yaml").get("ru")
MATCHER = PhraseMatcher(load_catalogue(ROOT / "config" / "phrases.yaml"))
SETUP = SessionSetup(PLAN, SessionConfig(max_call_ms=60_000), matcher=MATCHER)
SWITCHED_OFF = "аппарат абонента выключен или находится вне зоны действия сети"


def session(*, decoding: bool = False) -> CallSession:
    return SETUP.session(uuid.uuid4(), decoding=decoding)


def phase(s: CallSession) -> CallPhase:
    """The phase now: read through a call, as ``feed`` changes it behind an earlier assertion's
    narrowing (which mypy would otherwise carry over)."""
    return s.phase


def records(cmds: list[Command]) -> list[Record]:
    return [c for c in cmds if isinstance(c, Record)]


def frames(x: np.ndarray) -> list[bytes]:  # type: ignore[type-arg]
    pcm = to_int16(x).astype("<i2").tobytes()
    return [pcm[i : i + 320] for i in range(0, len(pcm), 320)]


def feed_audio(s: CallSession, pcm_frames: list[bytes], start_index: int, start_ms: int) -> list[Command]:
    """Frames arriving as they end, from ``start_ms`` on the call clock."""
    out: list[Command] = []
    for k, pcm in enumerate(pcm_frames):
        out += s.feed(AudioFrame(pcm, start_index + k), start_ms + (k + 1) * 20)
    return out


def voice(ms: int, seed: int = 3) -> np.ndarray:  # type: ignore[type-arg]
    return rms_dbm0_scale(synthetic_voice(ms, np.random.default_rng(seed)), -20.0)


def busy_tone(ms: int) -> list[bytes]:
    on_ms, off_ms = BUSY_CADENCE_MS
    return frames(cadence(TONE_HZ, on_ms, off_ms, ms, -10.0))


# ---- network only ---------------------------------------------------------------------------------


@pytest.mark.parametrize("originate_first", [True, False])
def test_busy_through_local_records_once_in_any_order(originate_first: bool) -> None:
    s = session()
    out: list[Command] = []
    out += s.feed(Ringing(), 2)
    events: list[NetworkInput] = [DialEnded("BUSY"), HungUp(ChannelRole.TRUNK, 17), Gone(17, "BUSY")]
    orig = OriginateResult(0, "Failure")
    seq = [orig, *events] if originate_first else [*events, orig]
    for i, e in enumerate(seq):
        out += s.feed(e, 3 + i)
    f = records(out)
    assert len(f) == 1
    assert f[0].evidence.call_class is CallClass.BUSY
    assert s.phase is CallPhase.ENDED
    assert not any(isinstance(c, Hangup) for c in out)


def test_the_trunk_cause_wins_over_the_local_halves() -> None:
    s = session()
    s.feed(HungUp(ChannelRole.LOCAL1, 16), 10)
    s.feed(HungUp(ChannelRole.TRUNK, 17), 11)
    out = s.feed(Gone(16, "BUSY"), 12)
    assert s.net.hangup_cause == 17
    assert records(out)[0].evidence.call_class is CallClass.BUSY


def test_originate_rejected_records_failure() -> None:
    s = session()
    out = s.feed(OriginateRejected("Response: Error"), 10)
    assert records(out)[0].evidence.call_class is CallClass.ORIGINATE_FAILED


def test_nothing_after_end() -> None:
    s = session()
    s.feed(HungUp(ChannelRole.TRUNK, 17), 1)
    s.feed(Gone(17), 2)
    assert s.feed(Gone(), 3) == []
    assert s.feed(Tick(), 100_000) == []
    assert s.next_deadline_ms() is None


# ---- audio ----------------------------------------------------------------------------------------


def test_person_redirected_and_recorded_then_gone_is_quiet() -> None:
    s = session()
    s.feed(Ringing(), 2)
    assert s.feed(Answered(), 3000) == []
    greeting = frames(np.concatenate([voice(800), silence(1000)]))
    out = feed_audio(s, greeting, 0, 3000)
    assert [type(c) for c in out] == [HandToOperator]  # the verdict waits for an operator
    assert s.phase is CallPhase.HANDING_OVER and s.decided_at_ms is not None
    assert s.decided_at_ms < 3000 + 800 + 600  # handed over within the pause after the greeting
    assert s.feed(QueueJoined("operators", 1), s.decided_at_ms + 40) == []
    out = s.feed(OperatorAnswered("Local/op2@operators"), s.decided_at_ms + 3040)
    (rec,) = records(out)
    assert rec.evidence.call_class is CallClass.PERSON and phase(s) is CallPhase.WITH_OPERATOR
    assert rec.evidence.queue_wait_ms == 3040 and rec.evidence.operator == "Local/op2@operators"
    assert rec.evidence.dead_air_ms is not None and 0 < rec.evidence.dead_air_ms <= 500
    assert s.feed(Gone(16), 20_000) == []
    assert phase(s) is CallPhase.ENDED


def handed_over() -> CallSession:
    s = session()
    s.feed(Answered(), 0)
    out = feed_audio(s, frames(np.concatenate([voice(600), silence(600)])), 0, 0)
    assert [type(c) for c in out] == [HandToOperator]
    return s


def test_a_person_who_hangs_up_in_the_queue_is_lost_not_handed_over() -> None:
    s = handed_over()
    t = s.decided_at_ms or 0
    s.feed(QueueJoined("operators", 1), t + 20)
    (rec,) = records(s.feed(QueueAbandoned("operators", 3), t + 3000))
    assert rec.evidence.call_class is CallClass.PERSON_LOST
    assert "hung up after 3 s in the operators' queue" in rec.evidence.reason and rec.evidence.queue_wait_ms == 3000
    assert s.feed(Gone(16), t + 3010) == [] and s.phase is CallPhase.ENDED


def test_a_missing_operator_queue_or_context_loses_the_person_and_says_why() -> None:
    s = handed_over()
    t = s.decided_at_ms or 0
    (rec,) = records(s.feed(Gone(16, "ANSWER"), t + 15))
    assert rec.evidence.call_class is CallClass.PERSON_LOST
    assert "never joined the operators' queue" in rec.evidence.reason


def test_a_failed_redirect_hangs_up_and_records_the_person_lost() -> None:
    s = handed_over()
    t = s.decided_at_ms or 0
    out = s.feed(RedirectFailed("Redirect failed: no such channel"), t + 10_000)
    assert [type(c) for c in out] == [Record, Hangup]  # nobody would take the call: no silence for them
    assert records(out)[0].evidence.call_class is CallClass.PERSON_LOST
    # the Redirect failed with the AMI connection: Asterisk may never confirm the hang-up either;
    # the call still ends after the grace (it must not hold its server slot for ever)
    grace_end = t + 10_000 + SETUP.config.hangup_grace_ms
    assert s.phase is CallPhase.HANGING_UP and s.next_deadline_ms() == grace_end
    assert s.feed(Tick(), grace_end) == [] and phase(s) is CallPhase.ENDED


def test_no_operator_for_too_long_counts_as_lost_and_a_late_answer_changes_nothing() -> None:
    s = handed_over()
    t = s.decided_at_ms or 0
    deadline = s.next_deadline_ms()
    assert deadline == t + SETUP.config.handover_max_wait_ms
    (rec,) = records(s.feed(Tick(), deadline))
    assert rec.evidence.call_class is CallClass.PERSON_LOST and "no operator answered" in rec.evidence.reason
    assert s.feed(OperatorAnswered("late"), deadline + 1000) == []
    assert s.next_deadline_ms() is None


def test_the_worker_stopping_during_a_hand_over_records_it_unconfirmed() -> None:
    s = handed_over()
    (rec,) = records(s.feed(StopRequested(), (s.decided_at_ms or 0) + 500))
    assert rec.evidence.call_class is CallClass.PERSON and "not confirmed" in rec.evidence.reason


def test_busy_tone_hangs_up_then_waits_for_asterisk() -> None:
    s = session()
    s.feed(Progress(), 5)
    out = feed_audio(s, busy_tone(3000), 0, 5)
    assert [type(c) for c in out] == [Hangup]
    assert s.phase is CallPhase.HANGING_UP and s.decided_at_ms is not None
    # Late events after the decision change nothing …
    assert s.feed(HungUp(ChannelRole.TRUNK, 16), s.decided_at_ms + 50) == []
    # … until every channel is gone: then the verdict is recorded, once.
    done = s.feed(Gone(16), s.decided_at_ms + 60)
    assert [r.evidence.call_class for r in records(done)] == [CallClass.BUSY]


def test_hangup_not_confirmed_records_after_grace() -> None:
    s = session()
    s.feed(Progress(), 5)
    feed_audio(s, busy_tone(1500), 0, 5)
    assert s.decided_at_ms is not None
    deadline = s.next_deadline_ms()
    assert deadline == s.decided_at_ms + s.config.hangup_grace_ms
    f = records(s.feed(Tick(), deadline))
    assert len(f) == 1 and "not confirmed" in f[0].evidence.reason


def test_forced_decision_at_max_call_time() -> None:
    s = session()
    s.feed(Ringing(), 2)
    assert s.next_deadline_ms() == 60_000
    out = s.feed(Tick(), 60_000)
    assert any(isinstance(c, Hangup) for c in out)
    assert s.evidence is not None and s.evidence.call_class is CallClass.NO_ANSWER


def test_early_media_that_never_ends_is_cut_at_its_deadline_while_frames_flow() -> None:
    silent = frames(silence(20))[0]
    stream = [Timed(0, Progress())] + [Timed((i + 1) * 20, AudioFrame(silent, i)) for i in range(3000)]
    res = drive(session(), stream)
    limit = SETUP.config.fusion.early_media_max_ms
    assert res.action is not None and res.action.value == "hangup" and res.decided_at_ms == limit
    assert res.session.evidence is not None and res.session.evidence.call_class is CallClass.NO_CONNECTION


def test_deadlines_already_passed_are_not_asked_for_again() -> None:
    s = session()
    s.feed(Answered(), 0)
    first = s.next_deadline_ms()
    assert first == SETUP.config.fusion.audio_wait_ms
    # audio arrives past that deadline: the session does not ask for a tick in the past
    feed_audio(s, frames(silence(2000)), 0, 0)
    later = s.next_deadline_ms()
    assert later is not None and later > 2000


def test_stop_requested_hands_answered_call_to_operator() -> None:
    s = session()
    assert s.feed(Answered(), 100) == []
    feed_audio(s, frames(voice(300, seed=1)), 0, 100)
    out = s.feed(StopRequested(), 900)
    assert any(isinstance(c, HandToOperator) for c in out)
    assert not any(isinstance(c, Hangup) for c in out)


def test_stop_requested_unanswered_is_aborted() -> None:
    s = session()
    s.feed(Ringing(), 100)
    out = s.feed(StopRequested(), 900)
    assert any(isinstance(c, Hangup) for c in out)
    done = s.feed(Gone(), 950)
    assert records(done)[0].evidence.call_class is CallClass.ABORTED


def test_audio_clock_maps_onto_the_call_clock() -> None:
    """The stream starts when AudioSocket connects, not at the originate."""
    s = session()
    s.feed(Progress(), 1500)
    feed_audio(s, busy_tone(2000), 0, 1500)
    assert s.audio_offset_ms == 1500
    tone = next(st for st in s.trace if st.kind == "audio" and "busy" in st.text)
    assert s.audio_facts().tone_at_ms is not None
    assert tone.at_ms == s.to_call_ms(s.audio_facts().tone_at_ms or 0) and tone.at_ms > 1500


# ---- the recognizer -------------------------------------------------------------------------------


def test_a_decoding_session_sends_every_frame_then_closes_the_recognizer_when_decided() -> None:
    s = session(decoding=True)
    s.feed(Progress(), 0)
    out = feed_audio(s, frames(silence(200)), 0, 0)
    assert [type(c) for c in out] == [Recognize] * 10
    assert all(isinstance(c, Recognize) and not c.voiced for c in out)
    out = s.feed(Recognized(Hypothesis(SWITCHED_OFF, True)), 220)
    assert [type(c) for c in out] == [CloseRecognizer, Hangup]
    assert feed_audio(s, frames(silence(100)), 10, 220) == []  # decided: no more decoding


def test_partial_hypotheses_need_confirmation() -> None:
    s = session(decoding=True)
    s.feed(Progress(), 0)
    words = SWITCHED_OFF.split()
    texts = [" ".join(words[:n]) for n in range(4, len(words) + 1)]
    decided_after = None
    for k, text in enumerate(texts):
        s.feed(Recognized(Hypothesis(text, False)), 100 * (k + 1))
        if s.decision is not None:
            decided_after = k + 1
            break
    assert decided_after is not None and decided_after >= SETUP.config.confirm_partials
    assert s.evidence is not None and s.evidence.call_class is CallClass.ANN_SWITCHED_OFF


def test_early_media_may_count_fewer_partials_than_an_answered_call() -> None:
    """Whisper's setting: one partial decode counts before the answer (nobody to hang up on),
    two consecutive ones after it (a person's words must not be taken for an announcement)."""
    setup = SessionSetup(PLAN, SessionConfig(max_call_ms=60_000, confirm_partials=2, confirm_partials_early=1),
                         matcher=MATCHER)  # fmt: skip
    partial = Hypothesis(SWITCHED_OFF, False)
    early = setup.session(uuid.uuid4(), decoding=True)
    early.feed(Progress(), 0)
    early.feed(Recognized(partial), 100)
    assert early.evidence is not None and early.evidence.call_class is CallClass.ANN_SWITCHED_OFF
    answered = setup.session(uuid.uuid4(), decoding=True)
    answered.feed(Answered(), 0)
    answered.feed(Recognized(partial), 100)
    assert answered.decision is None
    answered.feed(Recognized(Hypothesis(SWITCHED_OFF + " сети", False)), 600)
    assert answered.evidence is not None and answered.evidence.call_class is CallClass.ANN_SWITCHED_OFF


def test_at_hang_up_the_recognizer_is_flushed_before_the_final_decision() -> None:
    s = session(decoding=True)
    s.feed(Progress(), 0)
    feed_audio(s, frames(silence(400)), 0, 0)
    out = s.feed(HungUp(ChannelRole.TRUNK, 16), 420) + s.feed(Gone(16, "NOANSWER"), 421)
    assert out == []  # the stream has not ended yet: its last frames may still be in flight
    out = s.feed(AudioEnded("closed by asterisk"), 425)
    assert out == [FlushRecognizer()]
    assert s.decision is None and s.next_deadline_ms() == 425 + SETUP.config.flush_timeout_ms
    s.feed(Recognized(Hypothesis("абонент временно недоступен", True)), 480)
    out = s.feed(RecognizerFlushed(), 481)
    assert [type(c) for c in out] == [CloseRecognizer, Record]
    assert records(out)[0].evidence.call_class is CallClass.ANN_TEMPORARILY_UNAVAILABLE


def test_a_recognizer_that_never_answers_the_flush_does_not_hold_the_call() -> None:
    s = session(decoding=True)
    s.feed(Progress(), 0)
    feed_audio(s, frames(silence(200)), 0, 0)
    assert s.feed(AudioEnded(), 200) == [FlushRecognizer()]  # the stream ended: its audio is over
    assert s.feed(Gone(1, "NOANSWER"), 230) == []  # still waiting for the recognizer's last words
    deadline = s.next_deadline_ms()
    assert deadline == 200 + SETUP.config.flush_timeout_ms
    out = s.feed(Tick(), deadline)
    assert [type(c) for c in out] == [CloseRecognizer, Record]
    assert records(out)[0].evidence.call_class is CallClass.UNALLOCATED
    assert any("did not answer in time" in st.text for st in s.trace)


def test_after_the_hang_up_audio_in_flight_is_still_heard() -> None:
    """AMI and AudioSocket are two sockets: the Hangup may overtake the last frames."""
    s = session()
    s.feed(Progress(), 0)
    tone = busy_tone(1200)
    feed_audio(s, tone[:20], 0, 0)
    assert s.feed(Gone(16, "NOANSWER"), 410) == []  # waits for the stream's end
    assert s.next_deadline_ms() == 410 + SETUP.config.audio_drain_ms
    assert feed_audio(s, tone[20:], 20, 410) == []
    out = s.feed(AudioEnded("closed by asterisk"), 1300)
    assert records(out) and records(out)[0].evidence.call_class is CallClass.BUSY
    # a stream that never ends is waited for only so long
    q = session()
    q.feed(Progress(), 0)
    feed_audio(q, frames(silence(200)), 0, 0)
    assert q.feed(Gone(16, "NOANSWER"), 210) == []
    out = q.feed(Tick(), 210 + SETUP.config.audio_drain_ms)
    assert records(out) and records(out)[0].evidence.call_class is CallClass.NO_ANSWER


def test_a_fax_machine_is_hung_up_as_a_fax() -> None:
    s = session()
    s.feed(Answered(), 1000)
    tone = frames(np.sin(2 * np.pi * 2100 * np.arange(8000 * 2) / 8000) * 3000)
    out = feed_audio(s, tone, 0, 1000)
    assert [type(c) for c in out] == [Hangup]
    assert s.evidence is not None and s.evidence.call_class is CallClass.FAX
    assert s.decided_at_ms is not None and s.decided_at_ms <= 1000 + 600


def test_an_answered_call_whose_stream_ends_undecided_goes_to_an_operator() -> None:
    s = session()
    s.feed(Answered(), 0)
    feed_audio(s, frames(silence(1000)), 0, 0)
    out = s.feed(AudioEnded("closed by asterisk"), 1010)
    assert [type(c) for c in out] == [HandToOperator]
    assert s.evidence is not None and "audio stream ended" in s.evidence.reason


def test_agreeing_decodes_are_counted_per_decode_not_per_accumulated_text() -> None:
    s = session(decoding=True)
    s.feed(Progress(), 0)
    s.feed(Recognized(Hypothesis("набираем мы и номер не существует", True, 0.4)), 2500)
    facts = s.phrase_facts()
    assert facts.call_class is CallClass.ANN_DOES_NOT_EXIST and facts.score < SETUP.config.fusion.not_working_min_score
    assert facts.agreeing_decodes == 1 and s.decision is None  # one unsure decode of loose text
    s.feed(Recognized(Hypothesis("добрый день", True, 0.5)), 3500)  # another decode, another text
    assert s.phrase_facts().agreeing_decodes == 1 and s.decision is None
    s.feed(Recognized(Hypothesis("набираем мы и номер не существует", True, 0.45)), 6100)  # the repetition
    assert s.phrase_facts().agreeing_decodes == 2
    assert s.evidence is not None and s.evidence.call_class is CallClass.ANN_DOES_NOT_EXIST


IVR_PROMPT = "здравствуйте вы позвонили в компанию ромашка наберите добавочный номер"


def test_an_ivr_answering_a_contact_with_an_extension_gets_it_dialled_then_a_person_goes_to_an_operator() -> None:
    s = SETUP.session(uuid.uuid4(), decoding=True, extension="123")
    s.feed(Answered(), 0)
    out = s.feed(Recognized(Hypothesis(IVR_PROMPT, True)), 3000)
    assert out == [SendDigits("123")] and s.decision is None  # no hang-up: the extension is dialled
    assert s.extension is None and s.extension_dialled_at_ms == 3000
    assert any("dialling the extension 123" in st.text for st in s.trace)
    # what answers next is judged afresh: a person's greeting then a pause
    out = feed_audio(s, frames(np.concatenate([silence(1500), voice(700), silence(700)])), 0, 3000)
    assert [type(c) for c in out if not isinstance(c, Recognize)] == [CloseRecognizer, HandToOperator]
    assert s.evidence is not None and s.evidence.call_class is CallClass.PERSON


def test_an_ivr_again_after_the_extension_is_hung_up_and_without_an_extension_at_once() -> None:
    s = SETUP.session(uuid.uuid4(), decoding=True, extension="45")
    s.feed(Answered(), 0)
    assert s.feed(Recognized(Hypothesis(IVR_PROMPT, True)), 3000) == [SendDigits("45")]
    out = s.feed(Recognized(Hypothesis(IVR_PROMPT, True)), 9000)  # the same prompt: the extension did nothing
    assert [type(c) for c in out] == [CloseRecognizer, Hangup]
    assert s.evidence is not None and s.evidence.call_class is CallClass.IVR
    plain = SETUP.session(uuid.uuid4(), decoding=True)
    plain.feed(Answered(), 0)
    out = plain.feed(Recognized(Hypothesis(IVR_PROMPT, True)), 3000)
    assert [type(c) for c in out] == [CloseRecognizer, Hangup]  # the organisation-IVR rule applies


def _monologue_then_quiet(s: CallSession, quiet_ms: int) -> tuple[list[Command], int]:
    """Answered, 4 s of continuous speech (a monologue: no person's greeting), then quiet."""
    s.feed(Answered(), 0)
    out = feed_audio(s, frames(voice(4000)), 0, 0)
    out += feed_audio(s, frames(silence(quiet_ms)), 200, 4000)
    return out, 4000 + quiet_ms


def test_a_monologue_waits_for_the_words_the_recognizer_is_still_decoding() -> None:
    """A false answer: the network answers and plays «аппарат абонента выключен…». Its decode is
    CPU time; while it runs, the session does not hand the announcement to an operator at the
    pause (within the dead-air maximum), and reads it when the words come."""
    fusion = SETUP.config.fusion
    s = session(decoding=True)
    hand_over_at = fusion.pause_for_us_ms + fusion.beep_wait_ms
    out, now = _monologue_then_quiet(s, hand_over_at + 200)
    assert s.decision is None and not records(out)  # past the plain hand-over point: still waiting
    out = s.feed(Recognized(Hypothesis(SWITCHED_OFF, True, 0.8)), now + 20)
    assert s.evidence is not None and s.evidence.call_class is CallClass.ANN_SWITCHED_OFF
    assert any(isinstance(c, Hangup) for c in out)


def test_a_monologue_whose_words_never_come_goes_to_an_operator_within_two_seconds() -> None:
    fusion = SETUP.config.fusion
    s = session(decoding=True)
    _monologue_then_quiet(s, 1900)
    assert s.decision is not None and s.evidence is not None
    assert s.evidence.call_class is CallClass.UNSURE_ANSWERED
    longest_ms = fusion.pause_for_us_ms + fusion.beep_wait_ms + fusion.decode_wait_ms
    assert s.dead_air_ms is not None and longest_ms <= s.dead_air_ms <= longest_ms + 100 < 2000


def test_a_monologue_the_recognizer_already_answered_for_goes_to_an_operator_at_once() -> None:
    fusion = SETUP.config.fusion
    s = session(decoding=True)
    s.feed(Answered(), 0)
    feed_audio(s, frames(voice(4000)), 0, 0)
    feed_audio(s, frames(silence(200)), 200, 4000)
    s.feed(Recognized(Hypothesis("", True, 0.0)), 4200)  # decoded: nothing a phrase names
    feed_audio(s, frames(silence(fusion.pause_for_us_ms + fusion.beep_wait_ms)), 210, 4200)
    assert s.evidence is not None and s.evidence.call_class is CallClass.UNSURE_ANSWERED
