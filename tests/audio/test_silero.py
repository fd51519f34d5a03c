"""Silero voice activity: speech in a clip (also in noise the energy detector takes for speech),
nothing in silence, tones or noise; 20 ms slots buffered into 32 ms windows; the choice of
detector from ``[audio] vad`` with a missing or broken model falling back to energy in one line."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import numpy as np
import pytest

from dialer.app import session_setup, vad_choice
from dialer.audio.analyzer import CallAudioAnalyzer, SpeechEnded, SpeechPattern, SpeechStarted
from dialer.audio.levels import level_dbm0, power_spectrum
from dialer.audio.silero import (
    CONTEXT,
    ENERGY_VAD,
    F32,
    WINDOW,
    SileroModel,
    SileroVad,
    choose_vad,
)
from dialer.audio.toneplan import TonePlans
from dialer.audio.vad import Vad
from dialer.config import AudioSettings, load_settings
from dialer.corpus.audio import dbm0_to_rms, noise
from dialer.domain.model import SpeechVerdict
from dialer.errors import ConfigError
from dialer.sim.audio import clip
from tests.audio.synth import codec, feed, render_tone, rms_dbm0_scale, sine, synthetic_voice, to_int16

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def model(silero_model_path: Path) -> SileroModel:
    return SileroModel.load(silero_model_path)


def person(name: str = "person_hello") -> np.ndarray:  # type: ignore[type-arg]
    return np.frombuffer(clip(name).pcm, dtype="<i2").astype(np.float64)


def call(speech: np.ndarray, *, noise_kind: str | None = None, noise_dbm0: float = -70.0, seed: int = 1) -> np.ndarray:  # type: ignore[type-arg]
    """1 s of the line, the speech, 2 s of the line; through A-law."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([np.zeros(8000), speech, np.zeros(16000)])
    kind = noise_kind or "white"
    return codec(to_int16(x + noise(kind, len(x), rng) * dbm0_to_rms(noise_dbm0)), "alaw")  # type: ignore[arg-type]


def segments(vad: Vad, x: np.ndarray) -> list[tuple[int, int]]:  # type: ignore[type-arg]
    out: list[tuple[int, int]] = []
    start: int | None = None
    for i in range(len(x) // 160):
        f = x[i * 160 : (i + 1) * 160].astype(np.float64)
        for e in vad.push(power_spectrum(f), level_dbm0(float(f @ f) / 160), i * 20, f):
            if e.started:
                start = e.at_ms
            elif start is not None:
                out.append((start, e.at_ms))
                start = None
    if start is not None:
        out.append((start, len(x) // 160 * 20))
    return out


# -- the model on real audio ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["person_hello", "person_again"])
def test_speech_in_a_clip_is_found_where_it_is(model: SileroModel, name: str) -> None:
    speech = person(name)
    nonzero = np.flatnonzero(np.abs(speech) > 300)
    first_ms, last_ms = 1000 + nonzero[0] // 8, 1000 + nonzero[-1] // 8
    segs = segments(SileroVad(model), call(speech))
    assert segs, "no speech found"
    assert first_ms - 200 <= segs[0][0] <= first_ms + 300, (segs, first_ms)
    assert last_ms - 300 <= segs[-1][1] <= last_ms + 400, (segs, last_ms)
    covered = sum(b - a for a, b in segs)
    assert covered >= 0.6 * (last_ms - first_ms)


def test_quiet_speech_at_minus_40_dbm0_is_found(model: SileroModel) -> None:
    speech = person("person_again")
    speech *= dbm0_to_rms(-40.0) / float(np.sqrt(np.mean(speech[np.abs(speech) > 300] ** 2)))
    assert segments(SileroVad(model), call(speech))


@pytest.mark.parametrize(
    "what",
    ["digital silence", "hiss −60 dBm0", "ringback", "busy", "beep 1 kHz", "pink −30 dBm0", "brown −25 dBm0"],
)
def test_nothing_in_silence_tones_or_noise(model: SileroModel, toneplans: TonePlans, what: str) -> None:
    rng = np.random.default_rng(5)
    n = 5 * 8000
    plan = toneplans.get("ru")
    signals = {
        "digital silence": np.zeros(n),
        "hiss −60 dBm0": noise("white", n, rng) * dbm0_to_rms(-60.0),
        "ringback": render_tone(plan.tone("ring"), 5000, -10.0),
        "busy": render_tone(plan.tone("busy"), 5000, -10.0),
        "beep 1 kHz": np.concatenate([np.zeros(8000), sine(1000, 1000, -12.0), np.zeros(24000)]),
        "pink −30 dBm0": noise("pink", n, rng) * dbm0_to_rms(-30.0),
        "brown −25 dBm0": noise("brown", n, rng) * dbm0_to_rms(-25.0),
    }
    vad = SileroVad(model)
    assert segments(vad, codec(to_int16(signals[what]), "alaw")) == []
    assert vad.voiced_ms_total == 0


def test_a_person_in_pink_noise_is_a_person_for_silero_not_for_energy(model: SileroModel, toneplans: TonePlans) -> None:
    """The energy detector takes coloured noise from the answer on for speech (a monologue); with
    Silero the session's classifier hears the greeting, the pause, and says PERSON."""
    x = call(person("person_hello") * (dbm0_to_rms(-20.0) / 3000), noise_kind="pink", noise_dbm0=-32.0, seed=2)

    def verdicts(vad: Vad | None) -> list[SpeechVerdict]:
        a = CallAudioAnalyzer(toneplans.get("ru"), answered_at_ms=0, vad=vad)
        obs = feed(a, x)
        if isinstance(vad, SileroVad):
            assert any(isinstance(o, SpeechStarted) for o in obs) and any(isinstance(o, SpeechEnded) for o in obs)
        return [o.verdict for o in obs if isinstance(o, SpeechPattern)]

    assert verdicts(SileroVad(model)) == [SpeechVerdict.PERSON]
    assert SpeechVerdict.PERSON not in verdicts(None)


# -- buffering, without the model -----------------------------------------------------------------


class CountingModel(SileroModel):
    """Answers ``probability`` for every window; counts windows and checks their shape."""

    def __init__(self, probability: float = 0.9) -> None:
        super().__init__(None, Path("fake"))
        self.windows: list[F32] = []
        self.probability = probability

    def step(self, window: F32, state: F32) -> tuple[float, F32]:
        assert window.shape == (1, CONTEXT + WINDOW) and window.dtype == np.float32
        self.windows.append(window.copy())
        return self.probability, state + 1


def push_frames(vad: SileroVad, x: np.ndarray, first: int = 0) -> None:  # type: ignore[type-arg]
    for i in range(len(x) // 160):
        f = x[i * 160 : (i + 1) * 160]
        vad.push(power_spectrum(f), level_dbm0(float(f @ f) / 160), (first + i) * 20, f)


def test_twenty_ms_slots_make_32_ms_windows_with_context() -> None:
    m = CountingModel()
    vad = SileroVad(m)
    x = np.arange(8 * 160, dtype=np.float64) + 1000.0  # loud enough to be shown to the model
    push_frames(vad, x)
    assert len(m.windows) == 5  # 8 slots × 160 = 5 windows × 256
    for k, w in enumerate(m.windows):
        assert np.allclose(w[0, CONTEXT:] * 32768.0, x[k * WINDOW : (k + 1) * WINDOW])
        if k:  # the context is the previous window's tail
            assert np.array_equal(w[0, :CONTEXT], m.windows[k - 1][0, -CONTEXT:])
    assert vad.probability == 0.9 and vad.last_frame_voiced


def test_a_silent_line_is_not_shown_to_the_model_and_a_gap_restarts_the_window() -> None:
    m = CountingModel()
    vad = SileroVad(m)
    push_frames(vad, np.zeros(50 * 160))
    assert m.windows == [] and vad.probability == 0.0
    push_frames(vad, np.full(160, 5000.0), first=50)  # 160 samples: no window yet
    vad.hold(51 * 20)
    push_frames(vad, np.full(160, 5000.0), first=52)
    assert m.windows == []  # the half window before the gap was dropped, not joined to the next


def test_ringback_is_not_shown_to_the_model(toneplans: TonePlans) -> None:
    """Steady tone windows cannot be speech (tonal slots are never voiced): no model step."""
    m = CountingModel()
    vad = SileroVad(m)
    ring = render_tone(toneplans.get("ru").tone("ring"), 5000, -10.0)
    push_frames(vad, ring)
    on_windows = len(m.windows)
    speech = rms_dbm0_scale(synthetic_voice(1000, np.random.default_rng(3)), -20.0)
    push_frames(vad, speech, first=len(ring) // 160)
    # 1 s of tone is 31 windows; only the one where the tone stops (tone and silence) is shown
    assert on_windows <= 1 and len(m.windows) - on_windows >= 25  # 1 s of speech = 31 windows


@pytest.mark.parametrize(("probability", "voiced"), [(0.0, False), (0.1, False), (0.2, True), (0.6, True)])
def test_energy_voiced_frames_count_when_the_model_is_not_sure_they_are_not(probability: float, voiced: bool) -> None:
    """Quiet speech: the model rises late, the energy rule hears it; both are needed below threshold."""
    x = np.concatenate([np.zeros(8000), rms_dbm0_scale(synthetic_voice(1000, np.random.default_rng(2)), -40.0)])
    vad = SileroVad(CountingModel(probability))
    push_frames(vad, x)
    assert (vad.voiced_ms_total >= 400) is voiced, vad.voiced_ms_total
    energy = Vad()
    for i in range(len(x) // 160):
        f = x[i * 160 : (i + 1) * 160]
        energy.push(power_spectrum(f), level_dbm0(float(f @ f) / 160), i * 20)
    assert energy.voiced_ms_total >= 400


# -- choosing the detector ------------------------------------------------------------------------


def test_choice(silero_model_path: Path, tmp_path: Path) -> None:
    assert choose_vad("energy", silero_model_path) == (ENERGY_VAD, False)
    chosen, fallback = choose_vad("silero", silero_model_path)
    assert (chosen.name, fallback, type(chosen.new())) == ("silero", False, SileroVad)
    chosen, fallback = choose_vad("auto", silero_model_path)
    assert (chosen.name, fallback) == ("silero", False)
    missing = tmp_path / "none" / "silero_vad.onnx"
    chosen, fallback = choose_vad("auto", missing)
    assert (chosen.name, fallback, type(chosen.new())) == ("energy", True, Vad)
    assert "dialer models pull silero-vad" in chosen.reason
    chosen, fallback = choose_vad("silero", missing)
    assert (chosen.name, fallback) == ("energy", True)
    assert "dialer models pull silero-vad" in chosen.reason and "\n" not in chosen.reason


def test_a_broken_model_file_is_one_line_and_the_energy_detector(tmp_path: Path) -> None:
    bad = tmp_path / "silero_vad.onnx"
    bad.write_bytes(b"not an onnx model" * 10)
    chosen, fallback = choose_vad("silero", bad)
    assert (chosen.name, fallback) == ("energy", True)
    assert "not a loadable Silero VAD model" in chosen.reason and "\n" not in chosen.reason


def test_settings(tmp_path: Path) -> None:
    cfg = tmp_path / "dialer.toml"
    cfg.write_text('[audio]\nvad = "silero"\nvad_model_path = "m/v.onnx"\n', encoding="utf-8")
    s = load_settings(cfg).audio
    assert (s.vad, s.vad_model_path) == ("silero", (tmp_path / "m" / "v.onnx").resolve())
    cfg.write_text('\n[audio]\nvad = "webrtc"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"audio\.vad: must be one of auto, energy, silero") as err:
        load_settings(cfg)
    assert err.value.line == 3
    cfg.write_text('[audio]\nvda = "energy"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="vda"):
        load_settings(cfg)
    assert load_settings(ROOT / "config" / "dialer.toml").audio.vad == "auto"


def test_the_session_gets_the_configured_detector(
    silero_model_path: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(ROOT / "config" / "dialer.toml")
    from dataclasses import replace

    live = session_setup(replace(settings, audio=AudioSettings("silero", silero_model_path)))
    assert live.vad.name == "silero" and live.describe()["vad"] == "silero"
    assert isinstance(live.session(uuid.uuid4()).listening.analyzer._vad, SileroVad)
    assert vad_choice(AudioSettings("silero", silero_model_path)) is live.vad  # loaded once per process

    caplog.set_level(logging.INFO, logger="dialer.app")
    fallback = session_setup(replace(settings, audio=AudioSettings("silero", tmp_path / "missing.onnx")))
    assert fallback.vad.name == "energy"
    assert type(fallback.session(uuid.uuid4()).listening.analyzer._vad) is Vad
    warned = [r for r in caplog.records if r.levelno == logging.WARNING and "voice activity" in r.getMessage()]
    assert len(warned) == 1 and "dialer models pull silero-vad" in warned[0].getMessage()
    assert not any(r.exc_info for r in caplog.records)
