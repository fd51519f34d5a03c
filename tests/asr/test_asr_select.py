"""[asr] engine selection: auto prefers Whisper, then Vosk, then none; a named engine without its
model is none with the reason; the engine comes back unloaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from dialer.asr.catalogue import load_catalogue
from dialer.asr.models import VOSK_MODEL, WHISPER_MODEL
from dialer.asr.select import engine_from_settings
from dialer.asr.vosk_engine import VoskEngine
from dialer.asr.whisper_engine import WhisperEngine
from dialer.config import AsrSettings, load_settings
from dialer.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
CAT = load_catalogue(ROOT / "config" / "phrases.yaml")


def _whisper(d: Path) -> None:
    (d / WHISPER_MODEL).mkdir(parents=True)
    for f in ("model.bin", "config.json", "tokenizer.json"):
        (d / WHISPER_MODEL / f).write_bytes(b"x")


def _vosk(d: Path) -> None:
    (d / VOSK_MODEL / "am").mkdir(parents=True)
    (d / VOSK_MODEL / "conf").mkdir()


@pytest.mark.parametrize(
    ("kind", "installed", "want", "reason"),
    [
        ("auto", (), None, "no speech model installed"),
        ("auto", ("vosk",), VoskEngine, "vosk model at"),
        ("auto", ("whisper", "vosk"), WhisperEngine, "whisper model at"),
        ("whisper", ("vosk",), None, "dialer models pull whisper-base"),
        ("vosk", ("whisper",), None, f"dialer models pull {VOSK_MODEL}"),
        ("vosk", ("whisper", "vosk"), VoskEngine, "vosk model at"),
    ],
)
def test_choice(tmp_path: Path, kind: str, installed: tuple[str, ...], want: type | None, reason: str) -> None:
    if "whisper" in installed:
        _whisper(tmp_path)
    if "vosk" in installed:
        _vosk(tmp_path)
    engine, why = engine_from_settings(AsrSettings(engine=kind), CAT, tmp_path)
    assert (type(engine) if engine else None) is want
    assert reason in why
    if isinstance(engine, WhisperEngine | VoskEngine):
        assert not engine.loaded  # the caller loads it off the loop


def test_configured_paths_and_threads(tmp_path: Path) -> None:
    _whisper(tmp_path / "elsewhere")
    s = AsrSettings(whisper_model_path=tmp_path / "elsewhere" / WHISPER_MODEL, cpu_threads=2, max_workers=3)
    engine, _ = engine_from_settings(s, CAT, tmp_path / "none")
    assert isinstance(engine, WhisperEngine)
    assert (engine.model_path, engine.cpu_threads, engine.num_workers) == (s.whisper_model_path, 2, 3)


def test_settings_keys(tmp_path: Path) -> None:
    cfg = tmp_path / "dialer.toml"
    cfg.write_text('[asr]\nengine = "whisper"\nwhisper_model_path = "m/wb"\ncpu_threads = 2\n', encoding="utf-8")
    s = load_settings(cfg).asr
    assert (s.engine, s.whisper_model_path, s.cpu_threads) == ("whisper", (tmp_path / "m" / "wb").resolve(), 2)
    cfg.write_text('[asr]\nengine = "kaldi"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"asr\.engine: must be one of auto, vosk, whisper"):
        load_settings(cfg)
    assert load_settings(ROOT / "config" / "dialer.toml").asr.engine == "auto"


def test_the_early_decode_cadence_comes_from_asr_settings(tmp_path: Path) -> None:
    _whisper(tmp_path)
    default, _ = engine_from_settings(AsrSettings(engine="whisper"), CAT, tmp_path)
    assert isinstance(default, WhisperEngine)
    assert (default.params.early_decode_ms, default.params.early_every_ms) == (1000, 500)
    cfg = tmp_path / "dialer.toml"
    cfg.write_text('[asr]\nengine = "whisper"\nearly_decode_ms = 2500\nearly_every_ms = 1000\n', encoding="utf-8")
    tuned, _ = engine_from_settings(load_settings(cfg).asr, CAT, tmp_path)
    assert isinstance(tuned, WhisperEngine)
    assert (tuned.params.early_decode_ms, tuned.params.early_every_ms) == (2500, 1000)
    cfg.write_text("[asr]\nearly_every_ms = 50\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"asr\.early_every_ms: must be at least 200"):
        load_settings(cfg)
