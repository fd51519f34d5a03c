"""The installed package (issue 13): its defaults ship inside it, it finds its settings through
--config, DIALER_CONFIG or /etc/dialer/dialer.toml, `dialer init` writes a starter configuration,
the licence is declared the PEP 639 way, the demo's set-up installs no test extras."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from dialer import paths
from dialer.cli import main
from dialer.commands.init import write_starter
from dialer.config import DEFAULT_CONFIG_DIR, load_settings, settings_path
from dialer.errors import InputError

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ("dialer.toml", "rules.yaml", "phrases.yaml", "tones.yaml", "own_numbers.txt", "region_zones.yaml")


def test_licence_declared_as_spdx_with_the_file() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"  # a string: the TOML table form is deprecated
    assert project["license-files"] == ["LICENSE"]
    assert not [c for c in project.get("classifiers", []) if c.startswith("License ::")]
    assert (ROOT / "LICENSE").read_text().lstrip().startswith("Apache License")


def test_checkout_reads_the_repository_config() -> None:
    assert not paths.installed()
    assert DEFAULT_CONFIG_DIR == ROOT / "config"
    assert paths.models_manifest() == ROOT / "asr_models" / "manifest.json"


def test_settings_path_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    system = tmp_path / "etc" / "dialer.toml"
    monkeypatch.setattr(paths, "SYSTEM_CONFIG", system)
    monkeypatch.delenv("DIALER_CONFIG", raising=False)
    assert settings_path() == DEFAULT_CONFIG_DIR / "dialer.toml"
    system.parent.mkdir()
    system.write_text('[campaign]\nregion = "RU"\n')
    assert settings_path() == system
    monkeypatch.setenv("DIALER_CONFIG", str(tmp_path / "other.toml"))
    assert settings_path() == tmp_path / "other.toml"


def test_init_writes_a_starter_that_loads(tmp_path: Path) -> None:
    dest, state = tmp_path / "etc", tmp_path / "state"
    n = write_starter(dest, state)
    assert n >= len(SHIPPED)
    for name in SHIPPED:
        assert (dest / name).read_bytes()
    assert not (dest / "demo_campaign.csv").exists()
    s = load_settings(dest / "dialer.toml")
    assert s.rules_path == dest / "rules.yaml"
    assert s.database_url == f"sqlite+aiosqlite:///{state / 'var' / 'dialer.sqlite'}"
    assert s.recording.dir == state / "var" / "recordings"
    with pytest.raises(InputError, match="already there"):
        write_starter(dest, state)
    assert write_starter(dest, None, force=True) == n
    assert load_settings(dest / "dialer.toml").database_url.endswith(f"{dest}/var/dialer.sqlite")


def test_init_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", str(tmp_path / "cfg")]) == 0
    assert "wrote" in capsys.readouterr().out
    assert main(["init", str(tmp_path / "cfg")]) == 1
    assert "already there" in capsys.readouterr().err


def test_demo_setup_installs_no_test_extras() -> None:
    demo = (ROOT / "scripts" / "demo.sh").read_text()
    assert 'DIALER_SETUP_EXTRAS=""' in demo
    env = {**os.environ, "DIALER_SETUP_EXTRAS": ""}
    # the pip target setup.sh computes from the variable
    line = next(x for x in (ROOT / "scripts" / "setup.sh").read_text().splitlines() if x.startswith("extras="))
    out = subprocess.run(
        ["bash", "-c", f'{line}; echo ".${{extras:+[$extras]}}"'], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "."
    del env["DIALER_SETUP_EXTRAS"]
    out = subprocess.run(
        ["bash", "-c", f'{line}; echo ".${{extras:+[$extras]}}"'], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ".[test]"


@pytest.mark.slow
def _sources(tmp_path: Path) -> Path:
    """What a build reads of the repository, copied (a build writes into its source tree)."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "dialer", src / "dialer", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "config", src / "config")
    (src / "asr_models").mkdir()
    shutil.copy2(ROOT / "asr_models" / "manifest.json", src / "asr_models" / "manifest.json")
    return src


def _editable_install(src: Path, target: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-build-isolation"]
    return subprocess.run([*cmd, "--no-deps", "--target", str(target), "-e", str(src)], capture_output=True, text=True)


def test_editable_install_is_quiet_but_real_warnings_pass(tmp_path: Path) -> None:
    """scripts/setup.sh's `pip install -e .` prints nothing: setuptools' InformationOnly note about
    the editable finder (which pip >= 25 forwards as a BuildBackendWarning) is filtered in
    setup.py — and only it: a real warning from the build still reaches the user."""
    src = _sources(tmp_path)
    quiet = _editable_install(src, tmp_path / "t1")
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout + quiet.stderr == ""
    setup_py = src / "setup.py"
    text = setup_py.read_text(encoding="utf-8").replace(
        "\nsetup(", '\nwarnings.warn("probe: a real build warning", UserWarning)\nsetup('
    )
    setup_py.write_text(text, encoding="utf-8")
    loud = _editable_install(src, tmp_path / "t2")
    assert loud.returncode == 0, loud.stderr
    assert "probe: a real build warning" in loud.stdout + loud.stderr
    assert "Editable installation" not in loud.stdout + loud.stderr


# Run from the unpacked wheel: where the settings, rules, database and models are found.
WHEEL_PROBE = (
    "import importlib.resources, json\n"
    "from dialer import paths\n"
    "from dialer.config import load_settings\n"
    "from dialer.asr.models import load_manifest\n"
    "s = load_settings()\n"
    "rules = (importlib.resources.files('dialer') / 'defaults' / 'rules.yaml').read_text()\n"
    "print(json.dumps({'installed': paths.installed(), 'rules': str(s.rules_path), 'db': s.database_url,\n"
    "  'models': sorted(load_manifest()), 'rules_len': len(rules)}))\n"
)


def _build_wheel(src: Path, dest: Path) -> Path:
    """The wheel of ``src`` (offline: the venv's setuptools), built without deprecation warnings."""
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-build-isolation", "--no-deps", "-w", str(dest), str(src)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert "Deprecat" not in out.stderr
    return next(dest.glob("dialer-*.whl"))


def test_built_wheel_ships_and_finds_its_defaults(tmp_path: Path) -> None:
    """Build the wheel (offline: the venv's setuptools), unpack it, and run it from a directory
    that is not the repository: the defaults come from inside the package, state goes to the
    current directory."""
    wheel = _build_wheel(_sources(tmp_path), tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in (*SHIPPED, "announcements/announcements.yaml", "asr_models_manifest.json"):
        assert f"dialer/defaults/{name}" in names
    assert any(n.endswith("licenses/LICENSE") for n in names)

    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("DIALER_CONFIG", "DIALER_DB_URL")}
    env["PYTHONPATH"] = str(site)
    run = subprocess.run([sys.executable, "-c", WHEEL_PROBE], cwd=work, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr

    got = json.loads(run.stdout)
    assert got["installed"] is True
    assert got["rules"] == str(site / "dialer" / "defaults" / "rules.yaml")
    assert got["db"] == f"sqlite+aiosqlite:///{work / 'var' / 'dialer.sqlite'}"
    assert "whisper-base" in got["models"]
    assert got["rules_len"] > 100
    # DIALER_CONFIG and `dialer init` work the same from the installed package
    cli = [sys.executable, "-m", "dialer"]
    run = subprocess.run([*cli, "init", "etc"], cwd=work, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    env["DIALER_CONFIG"] = str(work / "etc" / "dialer.toml")
    run = subprocess.run([*cli, "db", "upgrade"], cwd=work, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert (work / "etc" / "var" / "dialer.sqlite").is_file()
