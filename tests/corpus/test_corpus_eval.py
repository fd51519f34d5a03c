"""Evaluation: metric arithmetic on hand-made outcomes, threshold checks and file errors, the
phrase tracker, the replay of a corpus call through the call session (with a scripted recogniser
behind the recognizer port), and the CLI's exit status."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest

from dialer.asr.catalogue import load_catalogue
from dialer.asr.matcher import PhraseMatcher
from dialer.asr.port import Hypothesis
from dialer.audio import load_toneplans
from dialer.audio.speech import SpeechParams
from dialer.config import DEFAULT_CONFIG_DIR
from dialer.corpus.evaluate import (
    UNDECIDED,
    CallOutcome,
    ClassLimit,
    LatencyLimit,
    NaturalLimits,
    Thresholds,
    announcement_score,
    build_report,
    check,
    class_scores,
    confusion,
    format_report,
    load_thresholds,
    percentile,
    safety_counts,
)
from dialer.corpus.generate import BUSY_CADENCE_MS, TONE_HZ, Recipe, cadence, render_corpus
from dialer.corpus.labels import NetworkScript
from dialer.domain.fusion import Action
from dialer.domain.model import CallClass, ToneKind
from dialer.errors import ConfigError
from dialer.session.inputs import Answered, AudioEnded, AudioFrame, ChannelRole, DialEnded, Gone, HungUp, Progress
from dialer.session.phrases import PhraseTracker
from dialer.session.replay import SILENT_TAIL_MS, Replayed, corpus_timeline, drive
from dialer.session.session import CallSession, SessionSetup

from .cli_harness import run_cli

C = CallClass
PLAN = load_toneplans(DEFAULT_CONFIG_DIR / "tones.yaml").get()
CATALOGUE = load_catalogue(DEFAULT_CONFIG_DIR / "phrases.yaml")
SETUP = SessionSetup(PLAN, matcher=PhraseMatcher(CATALOGUE))


def session(decoding: bool = False) -> CallSession:
    return SETUP.session(uuid.uuid4(), decoding=decoding)


def hyp(text: str, final: bool) -> Hypothesis:
    return Hypothesis(text, final)


def out(
    i: int,
    expected: CallClass,
    decided: CallClass | None,
    at: int | None = 1000,
    disc: int = 400,
    action: Action | None = Action.HANGUP,
    answered: bool = False,
    signal: int | None = None,
) -> CallOutcome:
    return CallOutcome(
        f"c{i}", expected, decided, action if decided else None, at if decided else None, disc, answered, signal
    )


# A hand-made corpus: 4 busy (3 right, 1 → congestion), 2 congestion (both right), 3 person
# (2 right, 1 hung up on as voicemail), 1 voicemail → person, 1 no answer undecided,
# announcements: 1 temporary → no_answer (retry path), 1 not-working → ann_blocked (!).
HAND = [
    out(1, C.BUSY, C.BUSY, at=1200, disc=500),
    out(2, C.BUSY, C.BUSY, at=1300, disc=500),
    out(3, C.BUSY, C.BUSY, at=1400, disc=500),
    out(4, C.BUSY, C.CONGESTION, at=2000, disc=500),
    out(5, C.CONGESTION, C.CONGESTION),
    out(6, C.CONGESTION, C.CONGESTION),
    out(7, C.PERSON, C.PERSON, action=Action.HAND_TO_OPERATOR, answered=True),
    out(8, C.PERSON, C.PERSON, action=Action.HAND_TO_OPERATOR, answered=True),
    out(9, C.PERSON, C.VOICEMAIL, action=Action.HANGUP, answered=True),
    out(10, C.VOICEMAIL, C.PERSON, action=Action.HAND_TO_OPERATOR, answered=True),
    out(11, C.NO_ANSWER, None),
    out(12, C.ANN_TEMPORARILY_UNAVAILABLE, C.NO_ANSWER, action=Action.RECORD),
    out(13, C.ANN_NOT_IN_SERVICE, C.ANN_BLOCKED, action=Action.RECORD),
]


def test_confusion_and_precision_recall_by_hand() -> None:
    conf = confusion(HAND)
    assert conf[("busy", "busy")] == 3 and conf[("busy", "congestion")] == 1
    assert conf[("no_answer", UNDECIDED)] == 1
    scores = class_scores(conf)
    busy, cong, person = scores["busy"], scores["congestion"], scores["person"]
    assert (busy.support, busy.predicted, busy.correct) == (4, 3, 3)
    assert busy.precision == 1.0 and busy.recall == 0.75
    assert cong.precision == pytest.approx(2 / 3) and cong.recall == 1.0
    assert person.precision == pytest.approx(2 / 3) and person.recall == pytest.approx(2 / 3)
    # no_answer: decided once (call 12), never right; expected once, undecided
    na = scores["no_answer"]
    assert (na.support, na.predicted, na.correct) == (1, 1, 0)
    assert na.precision == 0.0 and na.recall == 0.0
    # a class never expected and never decided has no entry; one only decided has support 0
    assert scores["ann_blocked"].recall is None and scores["ann_blocked"].precision == 0.0


def test_nearest_rank_percentile() -> None:
    assert percentile([], 50) is None
    assert percentile([5.0], 95) == 5.0
    vals = [float(v) for v in range(1, 21)]  # 1..20
    assert percentile(vals, 50) == 10.0
    assert percentile(vals, 95) == 19.0
    assert percentile(vals, 100) == 20.0
    assert percentile(list(reversed(vals)), 50) == 10.0
    with pytest.raises(ValueError):
        percentile(vals, 0)


def test_safety_counts_by_hand() -> None:
    s = safety_counts(HAND)
    assert (s.person_calls, s.person_hung_up, s.person_handed_over) == (3, 1, 2)
    assert (s.announcement_calls, s.announcement_retry_path, s.announcement_not_working) == (2, 1, 1)
    assert s.temporary_as_not_working == 0


def test_report_scope_and_latency() -> None:
    no_model = build_report(HAND, model=False)
    assert sum(no_model.scored.values()) == 11  # the two announcement calls are judged apart
    assert "ann_blocked" not in no_model.scores
    with_model = build_report(HAND, model=True)
    # with a model too, the tone/pattern classes are judged on the calls decidable without words;
    # the classes that need words on every call
    assert sum(with_model.scored.values()) == 11 and sum(with_model.full.values()) == 13
    assert "ann_blocked" in with_model.full_scores and "ann_blocked" not in with_model.scores
    lat = no_model.latency["busy"]
    assert (lat.n, lat.p50_start_ms, lat.p95_start_ms) == (4, 1300.0, 2000.0)
    assert (lat.p50_disc_ms, lat.p95_disc_ms) == (800.0, 1500.0)
    assert no_model.latency["no_answer"].n == 0


def test_check_reports_every_failed_threshold() -> None:
    th = Thresholds(
        classes={
            "busy": ClassLimit(precision=0.9, recall=0.9),
            "congestion": ClassLimit(precision=0.5),
            "ann_blocked": ClassLimit(recall=0.5),
        },
        latency={"busy": LatencyLimit(p95_from_disc_ms=1000)},
        no_model_announcement_retry_path_min_rate=1.0,
    )
    failures = check(build_report(HAND, model=False), th)
    assert "busy: recall 0.750 < 0.900" in failures
    assert not any(f.startswith("congestion") for f in failures)
    assert not any("ann_blocked" in f for f in failures)  # needs ASR: not checked without a model
    assert "safety: hung up on 1 of 3 person calls (max 0)" in failures
    assert any(
        f.startswith("without model: 1 announcement calls decided as a «Некорректный контакт»") for f in failures
    )
    assert "without model: 0.500 of announcement calls on the retry path < 1.000" in failures
    assert "latency busy: p95 from the discriminating point 1500 > 1000 ms" in failures
    text = format_report(build_report(HAND, model=False), failures)
    assert "FAILED" in text and "person calls hung up on: 1 of 3" in text
    # with a model the announcement limits apply and the no-model rules do not
    failures_m = check(build_report(HAND, model=True), th)
    assert "ann_blocked: no calls of this class in the corpus" in failures_m
    assert not any(f.startswith("without model") for f in failures_m)


def test_all_met_when_outcomes_are_right() -> None:
    good = [o for o in HAND if o.decided is o.expected]
    th = Thresholds(
        classes={c: ClassLimit(precision=1.0, recall=1.0) for c in ("busy", "congestion", "person")},
        latency={"busy": LatencyLimit(p95_from_disc_ms=1000)},
        no_model_announcement_retry_path_min_rate=1.0,
    )
    assert check(build_report(good, model=False), th) == []


def test_ivr_recall_is_judged_on_natural_voices() -> None:
    def call(i: int, decided: CallClass, voice: str) -> CallOutcome:
        return CallOutcome(f"i{i}", CallClass.IVR, decided, Action.HANGUP, 3000, 2000, True, voice=voice)

    outcomes = [
        call(1, CallClass.IVR, "festival"),
        call(2, CallClass.UNSURE_ANSWERED, "festival"),
        call(3, CallClass.UNSURE_ANSWERED, "espeak"),  # robotic: safety only, not counted
    ]
    a = announcement_score(outcomes)
    assert (a.ivr_calls, a.ivr_correct) == (2, 1) and a.ivr_recall == 0.5
    th = Thresholds(natural=NaturalLimits(ClassLimit(), ivr_recall=0.9))
    assert "with model: natural-voice IVR recall 0.500 < 0.900" in check(build_report(outcomes, model=True), th)
    th_ok = Thresholds(natural=NaturalLimits(ClassLimit(), ivr_recall=0.5))
    assert not any("IVR" in f for f in check(build_report(outcomes, model=True), th_ok))


def test_shipped_thresholds_load() -> None:
    th = load_thresholds(DEFAULT_CONFIG_DIR / "eval_thresholds.yaml")
    assert th.person_hung_up_max == 0 and th.no_model_announcement_not_working_max == 0
    assert th.person_handed_over_min_rate == 1.0
    assert th.dead_air_p95_ms == 500 and th.dead_air_max_ms == 2000
    assert th.classes["busy"].recall is not None and th.latency["busy"].p95_from_disc_ms == 1100
    assert th.natural is not None and th.natural.robotic_not_working_max == 0
    assert th.natural.announcements.precision is not None and th.natural.announcements.precision >= 0.97
    assert th.natural.p95_from_disc_ms == 1000 and th.natural.ivr_recall is not None


def test_threshold_file_errors_name_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "t.yaml"
    p.write_text("version: 1\nclasses:\n  busy: {precision: 0.9}\n  bussy: {recall: 0.5}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"t.yaml:4: unknown call class 'bussy'"):
        load_thresholds(p)
    p.write_text("classes:\n  busy: {precision: 1.5}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"t.yaml:2: classes.busy.precision must be a number between 0 and 1"):
        load_thresholds(p)
    p.write_text("clases: {}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"t.yaml:1: unknown key 'clases'"):
        load_thresholds(p)


def test_corpus_timeline_follows_the_script() -> None:
    pcm = np.zeros(8000, dtype=np.int16).tobytes()  # 1 s: 50 frames
    answered = list(corpus_timeline(pcm, NetworkScript(progress_ms=0, answered_ms=300, dial_status="ANSWER"), 8000))
    frames = [t for t in answered if isinstance(t.input, AudioFrame)]
    assert frames[0].at_ms == 20 and frames[49].at_ms == 1000  # each arrives as it ends
    tail = frames[50:]  # nobody hung up: the line stays open and silent, then the stream ends
    assert len(tail) == SILENT_TAIL_MS // 20 and all(not any(f.input.pcm) for f in tail)  # type: ignore[union-attr]
    assert [t.input for t in answered if t.at_ms == 300] == [
        AudioFrame(pcm[14 * 320 : 15 * 320], 14),  # the frame ending at the answer was heard by then
        DialEnded("ANSWER"),
        Answered(),
    ]
    assert isinstance(answered[-1].input, AudioEnded) and answered[-1].at_ms == 1000 + SILENT_TAIL_MS
    busy = list(corpus_timeline(pcm, NetworkScript(hangup_ms=500, cause=17, dial_status="BUSY"), 8000))
    assert busy[0].input == Progress()
    assert max(t.at_ms for t in busy if isinstance(t.input, AudioFrame)) == 500  # the hang-up cuts the audio
    hang_up = [t.input for t in busy if t.at_ms == 500][-4:]
    assert hang_up == [DialEnded("BUSY"), HungUp(ChannelRole.TRUNK, 17), Gone(17, "BUSY"), AudioEnded("hung up")]


def test_network_facts_follow_the_timeline() -> None:
    script = NetworkScript(progress_ms=0, answered_ms=3000, hangup_ms=None, dial_status="ANSWER")
    s = session()
    for t in corpus_timeline(np.zeros(8000 * 4, dtype=np.int16).tobytes(), script, 8000):
        if t.at_ms > 3000:
            break
        if t.at_ms == 3000 and isinstance(t.input, Answered):
            assert not s.net.answered
        s.feed(t.input, t.at_ms)
    assert s.net.answered and s.net.answered_at_ms == 3000 and s.net.dial_status == "ANSWER" and not s.net.ended
    busy = session()
    for t in corpus_timeline(np.zeros(8000 * 6, dtype=np.int16).tobytes(), NetworkScript(hangup_ms=5000, cause=17,
                             dial_status="BUSY"), 8000):  # fmt: skip
        busy.feed(t.input, t.at_ms)
        if t.at_ms < 5000:
            assert busy.net.hangup_cause is None
    g = busy.net
    assert g.ended and g.hangup_cause == 17 and g.dial_status == "BUSY" and g.ended_at_ms == 5000


def test_phrase_tracker_partial_then_final_and_sticky() -> None:
    tracker = PhraseTracker(PhraseMatcher(CATALOGUE), decoding=True)
    tracker.update(hyp("абонент", final=False))
    assert tracker.facts().call_class is None
    tracker.update(hyp("номер временно заблокирован", final=True))
    f = tracker.facts()
    assert f.call_class is C.ANN_TEMPORARILY_BLOCKED and f.final and f.available
    # the repetition starts: a partial with no decisive match must not erase the final one
    tracker.update(hyp("извините", final=False))
    g = tracker.facts()
    assert g.call_class is C.ANN_TEMPORARILY_BLOCKED
    assert g.text == "номер временно заблокирован извините"
    assert PhraseTracker(None, decoding=True).facts().available is False
    assert PhraseTracker(PhraseMatcher(CATALOGUE), decoding=False).facts().available is False


def test_phrase_tracker_partial_match_needs_confirmation() -> None:
    tracker = PhraseTracker(PhraseMatcher(CATALOGUE), decoding=True, confirm_partials=3)
    base = "аппарат абонента выключен или находится"
    texts = [base, f"{base} вне", f"{base} вне зоны", f"{base} вне зоны действия"]
    seen = []
    for t in texts:
        tracker.update(hyp(t, final=False))
        seen.append(tracker.facts().call_class)
    # the matcher names the class from the first of these partials; the tracker waits for three
    assert seen[:2] == [None, None]
    assert seen[2] is C.ANN_SWITCHED_OFF and seen[3] is C.ANN_SWITCHED_OFF
    # a different class in between restarts the count
    other = PhraseTracker(PhraseMatcher(CATALOGUE), decoding=True, confirm_partials=2)
    other.update(hyp(base, final=False))
    assert other.facts().call_class is None
    other.update(hyp("абонент временно недоступен", final=True))
    assert other.facts().call_class is C.ANN_TEMPORARILY_UNAVAILABLE


def test_call_session_reports_a_busy_tone() -> None:
    on_ms, off_ms = BUSY_CADENCE_MS
    x = cadence(TONE_HZ, on_ms, off_ms, 3000, -10.0)
    pcm = np.round(x).astype("<i2").tobytes()
    s = session()
    s.feed(Progress(), 0)
    decided_at = None
    for i in range(0, len(pcm) // 320):
        s.feed(AudioFrame(pcm[i * 320 : (i + 1) * 320], i), (i + 1) * 20)
        if s.decision is not None and decided_at is None:
            decided_at = (i + 1) * 20
    facts = s.audio_facts()
    assert facts.available and facts.tone is ToneKind.BUSY
    assert facts.tone_at_ms is not None and facts.tone_at_ms <= 1100
    assert s.phrase_facts().available is False
    assert s.evidence is not None and s.evidence.call_class is C.BUSY and decided_at == facts.tone_at_ms


class ScriptedRecognizer:
    """Stands in for an engine behind the recognizer port: says the given texts when the given
    amount of audio has been fed, and ``at_finish`` when flushed."""

    def __init__(self, script: list[tuple[int, str, bool]], at_finish: str = "") -> None:
        self.script = list(script)
        self.fed_ms = 0
        self.at_finish = at_finish
        self.flushed = self.closed = False

    def accept(self, pcm: bytes, voiced: bool) -> list[Hypothesis]:
        self.fed_ms += len(pcm) // 16
        if self.script and self.fed_ms >= self.script[0][0]:
            _, text, final = self.script.pop(0)
            return [Hypothesis(text, final)]
        return []

    def flush(self) -> list[Hypothesis]:
        self.flushed = True
        return [Hypothesis(self.at_finish, True)] if self.at_finish else []

    def close(self) -> None:
        self.closed = True


def replay(pcm: np.ndarray, script: NetworkScript, rec: ScriptedRecognizer | None = None) -> Replayed:  # type: ignore[type-arg]
    return drive(session(decoding=rec is not None), corpus_timeline(pcm.tobytes(), script, 8000), recognizer=rec,
                 network_confirms=True)  # fmt: skip


def test_replay_decides_on_a_recognised_announcement_in_early_media() -> None:
    pcm = np.zeros(8000 * 6, dtype=np.int16)
    script = NetworkScript(progress_ms=0, hangup_ms=6000, cause=1, dial_status="NOANSWER")
    rec = ScriptedRecognizer([(1000, "набранный", False), (2000, "набранный вами номер не обслуживается", True)])
    res = replay(pcm, script, rec)
    assert res.decided and res.decided_at_ms == 2000
    assert res.evidence is not None and res.evidence.call_class is C.ANN_NOT_IN_SERVICE
    assert res.action is Action.HANGUP and rec.closed and not rec.flushed  # decided: decoding stopped
    # without the recogniser the same call is decided by the network at the hang-up: retry path
    plain = replay(pcm, script)
    assert plain.decided_at_ms == 6000 and plain.evidence is not None
    assert plain.evidence.call_class is C.UNALLOCATED and plain.action is Action.RECORD


def test_replay_flushes_the_recogniser_at_hangup() -> None:
    pcm = np.zeros(8000 * 3, dtype=np.int16)
    script = NetworkScript(progress_ms=0, hangup_ms=3000, cause=16, dial_status="NOANSWER")
    rec = ScriptedRecognizer([], at_finish="абонент временно недоступен")
    res = replay(pcm, script, rec)
    assert rec.flushed and rec.closed
    assert res.decided and res.decided_at_ms == 3000
    assert res.evidence is not None and res.evidence.call_class is C.ANN_TEMPORARILY_UNAVAILABLE
    assert res.action is Action.RECORD
    steps = [st.text for st in res.session.trace if st.kind == "flush"]
    assert steps == ["audio over: flushing the recognizer before deciding", "recognizer flushed"]


def test_an_answered_line_that_stays_silent_is_answered_silence() -> None:
    # 2 s of silence after an answer at 0 and nobody hangs up: the line stays open and quiet, and
    # nothing said on a quiet line is the positive evidence to hang up (policy row 6)
    res = replay(np.zeros(8000 * 2, dtype=np.int16), NetworkScript(answered_ms=0, dial_status="ANSWER"))
    assert res.action is Action.HANGUP
    assert res.decided_at_ms == SpeechParams().initial_silence_ms
    assert res.evidence is not None and res.evidence.call_class is C.ANSWERED_SILENCE


def test_an_answered_call_over_loud_background_noise_is_never_hung_up_as_silence() -> None:
    # nobody speaks, but the line carries a live room's noise: a person may be there unheard
    rng = np.random.default_rng(7)
    noise = (rng.normal(0, 400, 8000 * 8)).astype(np.int16)  # ≈ −38 dBm0 of white noise
    res = replay(noise, NetworkScript(answered_ms=0, dial_status="ANSWER"))
    assert res.action is Action.HAND_TO_OPERATOR
    assert res.evidence is not None and "over background noise" in res.evidence.reason
    assert res.evidence is not None and res.evidence.call_class is C.UNSURE_ANSWERED


# --- the command ----------------------------------------------------------------------------------
SMALL_SET = [
    Recipe("busy1", "busy", C.BUSY, tone_ms=3000, tone_level_dbm0=-10.0, lead_gap_ms=0, cause=17, dial_status="BUSY"),
    Recipe(
        "cong1",
        "congestion",
        C.CONGESTION,
        tone_ms=3000,
        tone_level_dbm0=-20.0,
        lead_gap_ms=100,
        cause=34,
        dial_status="CONGESTION",
    ),
]


@pytest.fixture(scope="module")
def two_calls(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("two")
    render_corpus(d, SMALL_SET, seed=1)
    return d


def test_cli_exits_nonzero_and_says_which_threshold_failed(two_calls: Path, tmp_path: Path) -> None:
    impossible = tmp_path / "impossible.yaml"
    impossible.write_text("version: 1\nlatency_ms:\n  busy: {p95_from_disc: 1}\n", encoding="utf-8")
    rc, text = run_cli(["eval", str(two_calls), "--no-model", "--thresholds", str(impossible)])
    assert rc == 1
    assert "no speech model: evaluating with network+tone+VAD signals only" in text
    assert "FAILED 1 threshold(s):" in text and "latency busy: p95 from the discriminating point" in text


def test_cli_passes_when_thresholds_are_met(two_calls: Path, tmp_path: Path) -> None:
    ok = tmp_path / "ok.yaml"
    ok.write_text(
        "version: 1\nclasses:\n  busy: {precision: 1.0, recall: 1.0}\n  congestion: {precision: 1.0, recall: 1.0}\n",
        encoding="utf-8",
    )
    rc, text = run_cli(["eval", str(two_calls), "--no-model", "--thresholds", str(ok)])
    assert rc == 0, text
    assert "All thresholds met." in text
    assert text.count("no speech model") == 1


def test_cli_bad_inputs_are_one_line_errors(tmp_path: Path) -> None:
    rc, text = run_cli(["eval", str(tmp_path / "nowhere")])
    assert rc == 1 and "not a directory" in text
    rc, text = run_cli(["eval", str(tmp_path), "--model", str(tmp_path / "no-model")])
    assert rc == 1 and "no-model: no Whisper or Vosk model there" in text


def test_natural_voice_announcements_are_pooled_and_robotic_ones_judged_for_safety() -> None:
    def call(i: int, expected: CallClass, decided: CallClass, voice: str, at: int = 3000) -> CallOutcome:
        return CallOutcome(f"n{i}", expected, decided, Action.HANGUP, at, 2000, False, voice=voice)

    outcomes = [
        call(1, CallClass.ANN_SWITCHED_OFF, CallClass.ANN_SWITCHED_OFF, "festival", 2500),
        call(2, CallClass.ANN_DOES_NOT_EXIST, CallClass.ANN_DOES_NOT_EXIST, "festival", 4000),
        call(3, CallClass.ANN_BLOCKED, CallClass.NO_ANSWER, "festival"),  # not read: retry path
        call(4, CallClass.PERSON, CallClass.ANN_SUSPENDED, "festival"),  # a wrong announcement
        call(5, CallClass.ANN_ABROAD, CallClass.ANN_DOES_NOT_EXIST, "espeak"),  # robotic, not working
        call(6, CallClass.ANN_ABROAD, CallClass.NO_ANSWER, "espeak"),
    ]
    a = announcement_score(outcomes)
    assert (a.calls, a.decided, a.correct) == (3, 3, 2)
    assert a.recall == pytest.approx(2 / 3) and a.precision == pytest.approx(2 / 3)
    assert a.p95_from_disc_ms == 2000.0  # 500 and 2000 ms after the discriminating word
    assert (a.robotic_calls, a.robotic_not_working) == (2, 1)
    th = Thresholds(natural=NaturalLimits(ClassLimit(precision=0.97, recall=0.6), 1000, 0))
    failures = check(build_report(outcomes, model=True), th)
    assert "with model: natural-voice announcements precision 0.667 < 0.970" in failures
    assert not any("recall" in f and "natural" in f for f in failures)  # 0.667 ≥ 0.6
    assert any("decided p95 2000 ms after the discriminating word > 1000 ms" in f for f in failures)
    assert any("1 robotic-voice calls decided as a «Некорректный контакт» class" in f for f in failures)
    assert not any("natural" in f or "robotic" in f for f in check(build_report(outcomes, model=False), th))
