"""Which recognizer engine a worker (or ``dialer eval``) uses: ``[asr] engine`` in the settings.

``auto`` picks Whisper when its model is installed (it reads free speech: announcements in any
wording, IVR prompts, voicemail greetings), else Vosk when its model is installed (grammar
decoding of the catalogue: cheaper, streaming), else none — the other signals still classify
calls. ``whisper`` / ``vosk`` name one engine; its model missing is reported the same way.

The engine is returned *not loaded*: :meth:`RecognizerEngine.load` is blocking (the caller runs
it off the event loop, once per process).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from dialer.asr.catalogue import Catalogue
from dialer.asr.models import MODELS_DIR, VOSK_MODEL, WHISPER_MODEL, is_vosk_model, is_whisper_model
from dialer.asr.port import RecognizerEngine
from dialer.asr.whisper_engine import WhisperParams
from dialer.config import AsrSettings


@dataclass(frozen=True, slots=True)
class EngineChoice:
    """The engine to use, or None with the reason (one line for the log)."""

    engine: RecognizerEngine | None
    reason: str


def whisper_model_path(settings: AsrSettings, models_dir: Path = MODELS_DIR) -> Path:
    return settings.whisper_model_path or models_dir / WHISPER_MODEL


def vosk_model_path(settings: AsrSettings, models_dir: Path = MODELS_DIR) -> Path:
    return settings.model_path or models_dir / VOSK_MODEL


def _whisper_params(settings: AsrSettings) -> WhisperParams:
    """The engine's defaults, with the early-decode cadence of ``[asr]`` where it is set."""
    params = WhisperParams()
    if settings.early_decode_ms is not None:
        params = replace(params, early_decode_ms=settings.early_decode_ms)
    if settings.early_every_ms is not None:
        params = replace(params, early_every_ms=settings.early_every_ms)
    return params


def choose_engine(settings: AsrSettings, catalogue: Catalogue, models_dir: Path = MODELS_DIR) -> EngineChoice:
    """The engine ``settings`` ask for, when its model is on disk (see the module notes)."""
    wpath = whisper_model_path(settings, models_dir)
    vpath = vosk_model_path(settings, models_dir)
    kind = settings.engine
    if kind in ("auto", "whisper") and is_whisper_model(wpath):
        from dialer.asr.whisper_engine import WhisperEngine

        engine = WhisperEngine(
            wpath,
            cpu_threads=settings.cpu_threads,
            num_workers=settings.max_workers,
            sample_rate=settings.sample_rate,
            params=_whisper_params(settings),
        )
        return EngineChoice(engine, f"whisper model at {wpath}")
    if kind in ("auto", "vosk") and is_vosk_model(vpath):
        from dialer.asr.vosk_engine import VoskEngine

        return EngineChoice(VoskEngine(vpath, catalogue, sample_rate=settings.sample_rate), f"vosk model at {vpath}")
    if kind == "whisper":
        return EngineChoice(None, f"no Whisper model at {wpath} (install it: `dialer models pull {WHISPER_MODEL}`)")
    if kind == "vosk":
        return EngineChoice(None, f"no Vosk model at {vpath} (install it: `dialer models pull {VOSK_MODEL}`)")
    return EngineChoice(
        None,
        f"no speech model installed (neither {wpath} nor {vpath}; `dialer models pull {WHISPER_MODEL}` installs one)",
    )


def engine_from_settings(
    settings: AsrSettings, catalogue: Catalogue, models_dir: Path = MODELS_DIR
) -> tuple[RecognizerEngine | None, str]:
    """``(engine, reason)``: the not-yet-loaded engine ``[asr]`` selects, or ``(None, why not)``."""
    choice = choose_engine(settings, catalogue, models_dir)
    return choice.engine, choice.reason
