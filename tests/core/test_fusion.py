"""Signal fusion (pure). The call session that drives it: tests/core/test_session.py."""

from __future__ import annotations

import pytest

from dialer.domain.fusion import (
    Action,
    AudioFacts,
    FusionConfig,
    NetworkFacts,
    PhraseFacts,
    class_from_network,
    fuse,
)
from dialer.domain.model import CallClass, SpeechVerdict, ToneKind


@pytest.mark.parametrize(
    ("cause", "status", "expected"),
    [
        (17, "BUSY", CallClass.BUSY),
        (34, "CONGESTION", CallClass.CONGESTION),
        (0, "NOANSWER", CallClass.NO_ANSWER),
        (19, None, CallClass.NO_ANSWER),
        (1, "NOANSWER", CallClass.UNALLOCATED),
        (21, "CHANUNAVAIL", CallClass.REJECTED),
        (20, "CHANUNAVAIL", CallClass.NO_CONNECTION),
        (16, None, CallClass.NO_CONNECTION),
    ],
)
def test_network_only_classes(cause: int, status: str | None, expected: CallClass) -> None:
    cls, conf, reason = class_from_network(NetworkFacts(ended=True, hangup_cause=cause, dial_status=status))
    assert cls is expected
    assert 0 < conf <= 1
    assert str(cause) in reason


def test_cause_1_alone_is_never_incorrect_contact() -> None:
    d = fuse(NetworkFacts(ended=True, hangup_cause=1), AudioFacts(available=True, sit=True), PhraseFacts(), 5000)
    assert d.evidence.call_class is CallClass.SIT_UNRECOGNISED
    assert d.action is Action.RECORD


def test_not_working_needs_a_final_result_and_no_contradicting_cause() -> None:
    partial = PhraseFacts(True, CallClass.ANN_DOES_NOT_EXIST, 0.95, "номер не существует", "номер не существует")
    assert fuse(NetworkFacts(progress=True), AudioFacts(available=True), partial, 3000).action is Action.WAIT
    final = PhraseFacts(True, CallClass.ANN_DOES_NOT_EXIST, 0.95, "номер не существует", "номер не существует", True)
    busy_net = NetworkFacts(progress=True, ended=True, hangup_cause=17, dial_status="BUSY")
    d = fuse(busy_net, AudioFacts(available=True), final, 6000)
    assert d.evidence.call_class is CallClass.BUSY
    assert "not trusted" in d.evidence.reason


def test_confident_announcement_in_early_media_hangs_up_before_network() -> None:
    phrase = PhraseFacts(
        True, CallClass.ANN_DOES_NOT_EXIST, 0.95, "номер не существует", "номер не существует", final=True
    )
    d = fuse(NetworkFacts(progress=True), AudioFacts(available=True, sit=True), phrase, 3000)
    assert d.action is Action.HANGUP
    assert d.evidence.call_class is CallClass.ANN_DOES_NOT_EXIST
    assert d.evidence.asr_text == "номер не существует"


def test_weak_not_working_match_falls_back_to_retry_path() -> None:
    phrase = PhraseFacts(True, CallClass.ANN_DOES_NOT_EXIST, 0.8, "номер не существует", "номер не")
    d = fuse(NetworkFacts(progress=True, ended=True, hangup_cause=1), AudioFacts(available=True), phrase, 9000)
    assert d.evidence.call_class is CallClass.UNALLOCATED
    assert "not trusted" in d.evidence.reason


def test_temporary_announcement_needs_lower_score_than_not_working() -> None:
    phrase = PhraseFacts(True, CallClass.ANN_TEMPORARILY_UNAVAILABLE, 0.8, "абонент временно недоступен")
    d = fuse(NetworkFacts(progress=True), AudioFacts(available=True), phrase, 2000)
    assert d.evidence.call_class is CallClass.ANN_TEMPORARILY_UNAVAILABLE


def test_busy_tone_decides_without_cause() -> None:
    d = fuse(NetworkFacts(progress=True), AudioFacts(available=True, tone=ToneKind.BUSY), PhraseFacts(), 1100)
    assert (d.action, d.evidence.call_class) == (Action.HANGUP, CallClass.BUSY)


def test_answered_without_audio_goes_to_operator() -> None:
    d = fuse(NetworkFacts(answered=True, answered_at_ms=3000), AudioFacts(), PhraseFacts(), 3001)
    assert d.action is Action.HAND_TO_OPERATOR
    assert d.evidence.call_class is CallClass.UNSURE_ANSWERED


def test_answered_person_to_operator_voicemail_hung_up() -> None:
    net = NetworkFacts(answered=True, answered_at_ms=0)
    person = fuse(net, AudioFacts(available=True, speech=SpeechVerdict.PERSON, speech_ms=900), PhraseFacts(), 1800)
    assert (person.action, person.evidence.call_class) == (Action.HAND_TO_OPERATOR, CallClass.PERSON)
    vm = fuse(net, AudioFacts(available=True, beep=True, speech_ms=5000), PhraseFacts(), 6000)
    assert (vm.action, vm.evidence.call_class) == (Action.HANGUP, CallClass.VOICEMAIL)


def test_answered_unsure_goes_to_an_operator_at_the_first_pause_never_hung_up() -> None:
    net = NetworkFacts(answered=True, answered_at_ms=1000)
    talking = AudioFacts(
        available=True,
        speech=SpeechVerdict.UNSURE,
        speech_ms=700,
        speech_reason="short noise",
        frames_after_answer_ms=900,
        speaking=True,
    )
    assert fuse(net, talking, PhraseFacts(), 2000).action is Action.WAIT
    paused = AudioFacts(
        available=True,
        speech=SpeechVerdict.UNSURE,
        speech_ms=700,
        speech_reason="short noise",
        frames_after_answer_ms=900,
        quiet_ms=400,
    )
    at_pause = fuse(net, paused, PhraseFacts(), 2000)
    assert at_pause.action is Action.HAND_TO_OPERATOR  # at once: no waiting for a 5 s mark any more
    assert "short noise" in at_pause.evidence.reason and "at a pause for us" in at_pause.evidence.reason


def test_unsure_waits_for_a_pause_then_operator() -> None:
    net = NetworkFacts(answered=True, answered_at_ms=0)
    talking = AudioFacts(
        available=True, speech=SpeechVerdict.UNSURE, speech_ms=4000, speaking=True, frames_after_answer_ms=6000
    )
    assert fuse(net, talking, PhraseFacts(), 6000).action is Action.WAIT
    assert fuse(net, talking, PhraseFacts(), 8000).action is Action.HAND_TO_OPERATOR
    breath = AudioFacts(
        available=True, speech=SpeechVerdict.UNSURE, speech_ms=4000, quiet_ms=200, frames_after_answer_ms=6000
    )
    assert fuse(net, breath, PhraseFacts(), 6000).action is Action.WAIT
    paused = AudioFacts(
        available=True, speech=SpeechVerdict.UNSURE, speech_ms=4000, quiet_ms=360, frames_after_answer_ms=6000
    )
    assert fuse(net, paused, PhraseFacts(), 6000).action is Action.HAND_TO_OPERATOR


def test_a_monologue_alone_never_hangs_up_it_waits_a_moment_for_a_beep() -> None:
    """Issue 9: the speech pattern (long greeting, no pause) is no machine evidence."""
    net = NetworkFacts(answered=True, answered_at_ms=0)
    cfg = FusionConfig()
    facts = {
        "available": True,
        "speech": SpeechVerdict.VOICEMAIL,
        "speech_reason": "monologue of 3.1 s",
        "speech_ms": 3100,
        "frames_after_answer_ms": 5000,
    }
    still = fuse(net, AudioFacts(**facts, speaking=True), PhraseFacts(), 5000)  # type: ignore[arg-type]
    assert still.action is Action.WAIT
    assert cfg.pause_for_us_ms + cfg.beep_wait_ms <= 500  # the dead-air budget (issue 9)
    assert cfg.pause_for_us_ms + cfg.beep_wait_ms + cfg.decode_wait_ms < 2000  # never 2 s of dead air
    short_pause = cfg.pause_for_us_ms + cfg.beep_wait_ms - 20
    waiting = fuse(net, AudioFacts(**facts, quiet_ms=short_pause), PhraseFacts(), 5000)  # type: ignore[arg-type]
    assert waiting.action is Action.WAIT  # a voicemail's beep may still come
    no_beep = fuse(net, AudioFacts(**facts, quiet_ms=short_pause + 20), PhraseFacts(), 5000)  # type: ignore[arg-type]
    assert no_beep.action is Action.HAND_TO_OPERATOR and no_beep.evidence.call_class is CallClass.UNSURE_ANSWERED
    assert "no beep" in no_beep.evidence.reason
    # while the recognizer is still decoding the monologue, its words are waited for a little longer
    awaiting = PhraseFacts(available=True, awaiting_words=True)
    later = short_pause + 20 + cfg.decode_wait_ms
    still_decoding = fuse(net, AudioFacts(**facts, quiet_ms=later - 20), awaiting, 5000)  # type: ignore[arg-type]
    assert still_decoding.action is Action.WAIT
    no_words = fuse(net, AudioFacts(**facts, quiet_ms=later), awaiting, 5000)  # type: ignore[arg-type]
    assert no_words.action is Action.HAND_TO_OPERATOR
    beep = fuse(net, AudioFacts(**facts, quiet_ms=300, beep=True), PhraseFacts(), 5000)  # type: ignore[arg-type]
    assert (beep.action, beep.evidence.call_class) == (Action.HANGUP, CallClass.VOICEMAIL)
    for quiet in range(0, 3000, 100):  # whatever the timing, a monologue alone is never hung up
        d = fuse(net, AudioFacts(**facts, quiet_ms=quiet), PhraseFacts(), 3100 + quiet)  # type: ignore[arg-type]
        assert d.action is not Action.HANGUP


def test_answered_silence_is_hung_up_after_timeout() -> None:
    net = NetworkFacts(answered=True, answered_at_ms=0)
    assert fuse(net, AudioFacts(available=True, frames_after_answer_ms=2000), PhraseFacts(), 2000).action is Action.WAIT
    d = fuse(net, AudioFacts(available=True, frames_after_answer_ms=6000), PhraseFacts(), 6000)
    assert (d.action, d.evidence.call_class) == (Action.HANGUP, CallClass.ANSWERED_SILENCE)


def test_answered_but_no_audio_arrives_goes_to_operator() -> None:
    net = NetworkFacts(answered=True, answered_at_ms=0)
    assert fuse(net, AudioFacts(available=True), PhraseFacts(), 1000).action is Action.WAIT
    d = fuse(net, AudioFacts(available=True), PhraseFacts(), 1500)
    assert d.action is Action.HAND_TO_OPERATOR
    assert "no audio" in d.evidence.reason


def test_ivr_phrase_after_answer() -> None:
    phrase = PhraseFacts(True, CallClass.IVR, 0.9, "наберите добавочный номер")
    d = fuse(NetworkFacts(answered=True, answered_at_ms=0), AudioFacts(available=True), phrase, 4000)
    assert (d.action, d.evidence.call_class) == (Action.HANGUP, CallClass.IVR)


def test_a_not_working_class_from_free_text_needs_a_confident_decode_or_two_agreeing() -> None:
    """Whisper writes free text («набираем мы и номер не существует»): its match scores lower than a
    grammar recognizer's, and its confidence says how sure it is of the words."""
    base = {"available": True, "call_class": CallClass.ANN_DOES_NOT_EXIST, "phrase": "номер не существует"}
    net = NetworkFacts(progress=True)
    audio = AudioFacts(available=True)

    def decided(**kw: object) -> CallClass | None:
        d = fuse(net, audio, PhraseFacts(**{**base, **kw}), 4000)  # type: ignore[arg-type]
        return d.evidence.call_class if d.action is not Action.WAIT else None

    assert decided(score=0.8, final=True, asr_confidence=0.72) is CallClass.ANN_DOES_NOT_EXIST
    assert decided(score=0.8, final=True, asr_confidence=0.4) is None  # an unsure decode at a pause
    assert decided(score=0.8, final=True, asr_confidence=0.4, agreeing_decodes=2) is CallClass.ANN_DOES_NOT_EXIST
    assert decided(score=0.8, final=False, agreeing_decodes=2) is CallClass.ANN_DOES_NOT_EXIST  # two early decodes
    assert decided(score=0.8, final=False, agreeing_decodes=1) is None
    assert decided(score=0.7, final=True, asr_confidence=0.9) is None  # too loose a match whatever the decode
    assert decided(score=0.95, final=True) is CallClass.ANN_DOES_NOT_EXIST  # a grammar recognizer's close match
    # a cause saying the subscriber exists still wins
    busy = NetworkFacts(progress=True, ended=True, hangup_cause=17, dial_status="BUSY")
    d = fuse(busy, audio, PhraseFacts(**{**base, "score": 0.8, "final": True, "asr_confidence": 0.9}), 4000)  # type: ignore[arg-type]
    assert d.evidence.call_class is CallClass.BUSY
