from __future__ import annotations

from pathlib import Path

import pytest

from dialer.audio.toneplan import TonePlans, load_toneplans

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def toneplans() -> TonePlans:
    return load_toneplans(REPO / "config" / "tones.yaml")


@pytest.fixture(scope="session")
def silero_model_path() -> Path:
    """The Silero VAD model, installed by the project's verified pull (PyPI wheel) when missing:
    the Silero tests run, they are never skipped."""
    from dialer.asr.models import SILERO_VAD_MODEL, ModelDownloadError, ensure_installed
    from dialer.audio.silero import MODEL_FILE

    try:
        return ensure_installed(SILERO_VAD_MODEL) / MODEL_FILE
    except ModelDownloadError as exc:
        pytest.fail(f"the Silero VAD model cannot be installed here ({exc}); the Silero tests need it")
