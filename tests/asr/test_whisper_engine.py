"""The Whisper engine with the real whisper-base model (CTranslate2, int8, one thread), fed 20 ms
frames with the project's VAD flag the way the call session feeds it. Speech is festival's Russian
voice at 8 kHz through a G.711 μ-law round trip. Tests assert on the class the text names (via
today's PhraseMatcher), never on exact text, and on *when* and *whether* decoding happened."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from dialer.asr.catalogue import load_catalogue
from dialer.asr.matcher import PhraseMatcher
from dialer.asr.port import Recognizer, RecognizerEngine
from dialer.asr.replay import final_text, run_recognizer, silence
from dialer.asr.whisper_engine import (
    Decoded,
    WhisperEngine,
    WhisperParams,
    is_sound_annotation,
    load_whisper,
    upsample_2x,
)
from dialer.audio.frames import SAMPLE_RATE_HZ
from dialer.corpus.audio import codec_roundtrip
from dialer.corpus.tts import Say, Synthesiser, Voice
from dialer.domain.model import CallClass
from dialer.errors import AsrUnavailable

ROOT = Path(__file__).resolve().parents[2]
MATCHER = PhraseMatcher(load_catalogue(ROOT / "config" / "phrases.yaml"))
RATE = SAMPLE_RATE_HZ  # the project's one line rate (dialer.audio.frames)
TEXTS = {
    "temporary": "абонент временно недоступен попробуйте позвонить позже",
    "blocked": "номер заблокирован",
    "ivr": "здравствуйте вы позвонили в компанию ромашка наберите добавочный номер или дождитесь ответа оператора",
}


def _pcm(x: np.ndarray) -> bytes:
    return np.clip(np.round(x), -32768, 32767).astype("<i2").tobytes()


@pytest.fixture(scope="module")
def speech() -> dict[str, bytes]:
    synth = Synthesiser()
    says = {k: Say(Voice("festival", 100), t) for k, t in TEXTS.items()}
    synth.synthesise(says.values())
    out = {}
    for k, say in says.items():
        x = synth.get(say).astype(np.float64)
        x *= 2000.0 / max(1.0, float(np.sqrt(np.mean(x * x))))  # about −21 dBm0
        out[k] = codec_roundtrip(np.round(x).astype(np.int16), "ulaw").astype("<i2").tobytes()
    return out


@pytest.fixture(scope="module")
def engine(whisper_model_dir: Path) -> WhisperEngine:
    e = WhisperEngine(whisper_model_dir)
    e.load()
    return e


def _voiced_end_ms(pcm: bytes) -> int:
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    loud = np.nonzero(np.abs(x) > 500)[0]
    return int(loud[-1] * 1000 / RATE)


def test_engine_implements_the_port(engine: WhisperEngine) -> None:
    e: RecognizerEngine = engine
    rec: Recognizer = e.open()
    assert e.name == "whisper"
    rec.close()
    assert rec.accept(b"\0" * 320, True) == () and rec.flush() == ()


def test_one_model_per_process(whisper_model_dir: Path) -> None:
    assert load_whisper(whisper_model_dir) is load_whisper(Path(str(whisper_model_dir) + "/"))


def test_missing_or_broken_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(AsrUnavailable, match=r"not found.*dialer models pull whisper-base"):
        WhisperEngine(tmp_path / "whisper-base").load()
    with pytest.raises(AsrUnavailable, match="incomplete"):
        WhisperEngine(tmp_path).load()
    for name in ("model.bin", "config.json", "tokenizer.json"):
        (tmp_path / name).write_bytes(b"not a model")
    with pytest.raises(AsrUnavailable, match="cannot be loaded"):
        WhisperEngine(tmp_path).load()
    with pytest.raises(AsrUnavailable, match="not loaded"):
        WhisperEngine(tmp_path).open()


@pytest.mark.parametrize("kind", ["temporary", "blocked"])
def test_announcement_is_decoded_at_the_pause_and_names_its_class(
    engine: WhisperEngine, speech: dict[str, bytes], kind: str
) -> None:
    pcm = silence(800) + speech[kind] + silence(1500)
    rec = engine.open()
    heard = run_recognizer(rec, pcm, flush=False)
    finals = [h for h in heard if h.hypothesis.final]
    assert len(finals) == 1, heard
    h = finals[0]
    match = MATCHER.best_match(h.hypothesis.text)
    want = CallClass.ANN_TEMPORARILY_UNAVAILABLE if kind == "temporary" else CallClass.ANN_BLOCKED
    assert match is not None and match.call_class == want, h.hypothesis.text
    # well above what Whisper invents on noise (0.1-0.33, dropped under 0.35)
    assert h.hypothesis.confidence is not None and h.hypothesis.confidence >= 0.45
    # decoded when the pause had lasted end_pause_ms, not at the end of the audio
    end = 800 + _voiced_end_ms(speech[kind])
    assert end < h.at_ms <= end + engine.params.end_pause_ms + 300
    assert h.hypothesis.audio_ms == h.at_ms


def test_long_speech_is_read_early_then_settled(engine: WhisperEngine, speech: dict[str, bytes]) -> None:
    pcm = silence(500) + speech["ivr"] + silence(1000)
    rec = engine.open()
    heard = run_recognizer(rec, pcm)
    partial = [h for h in heard if not h.hypothesis.final]
    final = [h for h in heard if h.hypothesis.final]
    speech_end = 500 + _voiced_end_ms(speech["ivr"])
    assert partial and partial[0].at_ms < speech_end - 2000  # read while the prompt goes on
    # after ~2.5 s of speech (counted from the pre-roll before the first voiced frame)
    assert partial[0].at_ms >= 500 + engine.params.early_decode_ms - engine.params.pre_roll_ms
    assert len(final) == 1
    m = MATCHER.best_match(final_text(heard))
    assert m is not None and m.call_class == CallClass.IVR


def test_flush_decodes_what_is_buffered(engine: WhisperEngine, speech: dict[str, bytes]) -> None:
    rec = engine.open()
    heard = run_recognizer(rec, silence(300) + speech["blocked"], flush=False)  # no closing pause
    assert not [h for h in heard if h.hypothesis.final]
    out = rec.flush()
    assert len(out) == 1 and out[0].final
    m = MATCHER.best_match(out[0].text)
    assert m is not None and m.call_class == CallClass.ANN_BLOCKED
    assert rec.flush() == ()  # nothing left


def _tone(freq: float, ms: int, level: float = 8000.0, on_off: tuple[int, int] | None = None) -> bytes:
    n = ms * RATE // 1000
    t = np.arange(n) / RATE
    x = level * np.sin(2 * math.pi * freq * t)
    if on_off is not None:
        period = sum(on_off) * RATE // 1000
        x[(np.arange(n) % period) >= on_off[0] * RATE // 1000] = 0.0
    return _pcm(x)


def _noise(ms: int, colour: str, rms: float, seed: int = 3) -> bytes:
    rng = np.random.default_rng(seed)
    n = ms * RATE // 1000
    w = rng.normal(0, 1, n)
    if colour == "brown":
        w = np.cumsum(w)
        w -= np.convolve(w, np.ones(400) / 400, mode="same")
    w *= rms / float(np.sqrt(np.mean(w * w)))
    return _pcm(w)


@pytest.mark.parametrize(
    ("what", "pcm"),
    [
        ("digital silence", silence(6000)),
        ("ringback", _tone(425, 10000, on_off=(1000, 4000))),
        ("busy", _tone(425, 4000, on_off=(350, 350))),
        ("voicemail beep", silence(500) + _tone(1000, 600) + silence(2000)),
        ("SIT", _tone(950, 330) + _tone(1400, 330) + _tone(1800, 330) + silence(1000)),
        ("white noise", _noise(5000, "white", 300.0)),
    ],
)
def test_no_speech_is_never_decoded(engine: WhisperEngine, what: str, pcm: bytes) -> None:
    rec = engine.open()
    heard = run_recognizer(rec, pcm)
    assert heard == [] and rec.decodes == 0, what


def test_noise_the_vad_lets_through_yields_no_text(engine: WhisperEngine) -> None:
    """Loud brown noise starts with frames the VAD calls voiced (its floor has not caught up
    yet): they are decoded, and what Whisper invents there is dropped by its own no-speech
    rule — no text reaches the session (only the stretch's empty final result, which tells the
    session the decode is over)."""
    rec = engine.open()
    heard = run_recognizer(rec, _noise(5000, "brown", 300.0))
    assert rec.decodes >= 1
    assert all(h.hypothesis.final and h.hypothesis.text == "" for h in heard)


def test_a_click_is_too_short_to_decode(engine: WhisperEngine, speech: dict[str, bytes]) -> None:
    rec = engine.open()
    click = speech["blocked"][: 60 * 16]  # 60 ms
    run_recognizer(rec, silence(500) + click + silence(1000))
    assert rec.decodes == 0


def test_window_and_beam_parameters(whisper_model_dir: Path, speech: dict[str, bytes]) -> None:
    """A longer minimum window and greedy decoding still read the same class: the parameters
    reach the decoder (a window longer than 30 s is clipped to what the model takes)."""
    e = WhisperEngine(whisper_model_dir, params=WhisperParams(beam_size=1, min_window_ms=40_000))
    e.load()
    out = run_recognizer(e.open(), silence(300) + speech["temporary"] + silence(800))
    m = MATCHER.best_match(final_text(out))
    assert m is not None and m.call_class == CallClass.ANN_TEMPORARILY_UNAVAILABLE


def test_upsampling_keeps_the_band_and_leaves_no_image() -> None:
    t = np.arange(8000) / 8000
    x = (0.5 * np.sin(2 * math.pi * 1000 * t)).astype(np.float32)
    y = upsample_2x(x)
    assert len(y) == 16000
    spec = np.abs(np.fft.rfft(y[1000:-1000] * np.hanning(14000)))
    freqs = np.fft.rfftfreq(14000, 1 / 16000)

    def at(f_hz: float) -> float:
        return float(spec[np.argmin(np.abs(freqs - f_hz))])

    assert 20 * math.log10(at(7000) / at(1000)) < -60  # the 7 kHz image is gone
    assert abs(float(np.sqrt(np.mean(y[1000:-1000] ** 2))) - 0.5 / math.sqrt(2)) < 0.01  # level kept


@pytest.mark.parametrize(
    ("text", "annotation"),
    [
        ("СПОКОЙНАЯ МУЗЫКА", True),
        ("ДИНАМИЧНАЯ МУЗЫКА ДИНАМИЧНАЯ МУЗЫКА", True),
        ("(музыка)", True),
        ("[аплодисменты]", True),
        ("Номер заблокирован.", False),
        ("Алло!", False),
        ("МТС", False),
    ],
)
def test_sound_annotations_are_not_speech(text: str, annotation: bool) -> None:
    assert is_sound_annotation(text) is annotation


def test_confidence_follows_the_log_probability_and_leans_on_no_speech() -> None:
    clean = Decoded("номер заблокирован", -0.2, 0.05, 1.0)
    noisy = Decoded("номер заблокирован", -0.2, 0.95, 1.0)
    loop = Decoded("номер номер номер номер", -0.2, 0.05, 3.0)
    unsure = Decoded("блин", -1.5, 0.3, 0.5)
    assert clean.confidence > noisy.confidence >= clean.confidence / 2
    assert loop.confidence == pytest.approx(clean.confidence / 2, abs=0.01)
    assert unsure.confidence < WhisperParams().min_confidence < noisy.confidence
