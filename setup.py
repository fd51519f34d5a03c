"""Build hook (metadata lives in pyproject.toml): the default data files are edited at the top of
the repository (config/, asr_models/manifest.json); a built package carries copies inside
dialer/defaults/ so an installed worker finds them (dialer.paths). Editable installs read the
repository's own copies and need none."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.warnings import InformationOnly

# An editable install of this flat layout uses setuptools' meta-path finder, which then emits an
# InformationOnly note ("Editable installation ... folders with the same name as your package") as a
# UserWarning; pip >= 25 forwards build-backend warnings, so every `pip install -e .` printed it.
# It is information, not a fault: silence exactly that note. Deprecations and other warnings pass.
warnings.filterwarnings("ignore", message=r"Editable installation\.", category=InformationOnly)

ROOT = Path(__file__).resolve().parent


class BuildPyWithDefaults(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        dest = Path(self.build_lib) / "dialer" / "defaults"
        shutil.copytree(ROOT / "config", dest, dirs_exist_ok=True)
        shutil.copy2(ROOT / "asr_models" / "manifest.json", dest / "asr_models_manifest.json")


setup(cmdclass={"build_py": BuildPyWithDefaults})
