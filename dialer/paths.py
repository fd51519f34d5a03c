"""Where the default data files and the worker's state live, in a source checkout and in an
installed package — the one place that knows the difference.

A checkout keeps the defaults at the top of the repository (``config/``,
``asr_models/manifest.json``), where they are edited. A built package (``pip install .``) carries
copies inside itself, in ``dialer/defaults/`` (setup.py copies them at build time), because
nothing beside ``site-packages/dialer`` belongs to us there.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

CHECKOUT_ROOT = Path(__file__).resolve().parent.parent
PACKAGED_DEFAULTS = Path(str(importlib.resources.files("dialer"))) / "defaults"
PACKAGED_MANIFEST = "asr_models_manifest.json"  # asr_models/manifest.json inside dialer/defaults/
# Looked for when neither --config nor DIALER_CONFIG names a settings file.
SYSTEM_CONFIG = Path("/etc/dialer/dialer.toml")


def installed() -> bool:
    """True for a built package: its defaults were copied inside it."""
    return (PACKAGED_DEFAULTS / "dialer.toml").is_file()


def default_config_dir() -> Path:
    """The shipped settings and data files (rules, phrases, tones, …)."""
    return PACKAGED_DEFAULTS if installed() else CHECKOUT_ROOT / "config"


def state_root() -> Path:
    """Where the shipped settings put the worker's own files (``var/``, ``asr_models/``): the
    repository in a checkout; the current directory for an installed package, never site-packages."""
    return Path.cwd() if installed() else CHECKOUT_ROOT


def models_dir() -> Path:
    return state_root() / "asr_models"


def models_manifest() -> Path:
    return PACKAGED_DEFAULTS / PACKAGED_MANIFEST if installed() else CHECKOUT_ROOT / "asr_models" / "manifest.json"
