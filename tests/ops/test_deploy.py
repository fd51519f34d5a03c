"""The deploy kit (issue 13): the systemd unit and the compose file are checked as far as this
machine can — the unit by systemd-analyze and by what it must say, the compose file by its
structure (no docker compose here), the compose worker's settings by the real loader."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from dialer.commands.init import write_starter
from dialer.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNIT = DEPLOY / "systemd" / "dialer.service"
COMPOSE = DEPLOY / "compose" / "compose.yaml"


def _unit() -> configparser.ConfigParser:
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str  # type: ignore[assignment,method-assign]
    cp.read(UNIT)
    return cp


def test_unit_restarts_drains_on_sigterm_and_reads_secrets_from_a_file() -> None:
    svc = _unit()["Service"]
    assert svc["Restart"] == "on-failure"
    assert svc["KillSignal"] == "SIGTERM"
    assert svc["KillMode"] == "mixed"
    drain_s = float(re.search(r"--drain-s (\d+)", svc["ExecStart"]).group(1))  # type: ignore[union-attr]
    assert float(svc["TimeoutStopSec"]) > drain_s  # SIGKILL only after the drain
    assert svc["EnvironmentFile"] == "/etc/dialer/dialer.env"
    assert "SECRET" not in svc.get("Environment", "")
    example = (DEPLOY / "systemd" / "dialer.env.example").read_text()
    for var in re.findall(r'secret_env = "(\w+)"', (ROOT / "config" / "dialer.toml").read_text()):
        assert f"{var}=" in example


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_unit_passes_systemd_analyze(tmp_path: Path) -> None:
    dialer = shutil.which("dialer") or str(Path(__import__("sys").executable).parent / "dialer")
    text = UNIT.read_text().replace("/opt/dialer/bin/dialer", dialer)
    text = re.sub(r"^(User|Group)=dialer$", r"\1=root", text, flags=re.M)
    text = text.replace("EnvironmentFile=/etc/dialer/dialer.env", f"EnvironmentFile=-{tmp_path}/dialer.env")
    copy = tmp_path / "dialer.service"
    copy.write_text(text)
    out = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert str(copy) not in out.stderr, out.stderr  # "file:line: Failed to parse …" warnings


def test_compose_file_is_complete() -> None:
    doc = yaml.safe_load(COMPOSE.read_text())
    services = doc["services"]
    assert set(services) == {"worker", "postgres", "mosquitto"}  # Asterisk is external
    for name, svc in services.items():
        assert "image" in svc or "build" in svc, name
        for dep in svc.get("depends_on", {}):
            assert dep in services
        for vol in svc.get("volumes", []):
            src = vol.split(":")[0]
            if src.startswith("."):
                assert (COMPOSE.parent / src).exists(), vol
            else:
                assert src in doc["volumes"], vol
        for port in svc.get("ports", []):
            assert re.fullmatch(r"(\d+\.\d+\.\d+\.\d+:)?\d+:\d+", port), port
    worker = services["worker"]
    build = worker["build"]
    assert (COMPOSE.parent / build["context"] / build["dockerfile"]).is_file()
    assert worker["stop_signal"] == "SIGTERM"
    assert services["postgres"]["healthcheck"]["test"]
    # every variable the file needs is in .env.example, and no secret is written in it
    needed = set(re.findall(r"\$\{(\w+)", COMPOSE.read_text()))
    example = (COMPOSE.parent / ".env.example").read_text()
    assert needed and all(f"{v}=" in example for v in needed)
    # the Dockerfile copies what setup.py needs to ship the defaults
    docker = (COMPOSE.parent / "Dockerfile").read_text()
    for needed_path in ("setup.py", "MANIFEST.in", "config", "asr_models/manifest.json", "LICENSE"):
        assert needed_path in docker


def test_compose_worker_settings_load(tmp_path: Path) -> None:
    """As in the image: `dialer init /etc/dialer`, then compose's dialer.toml mounted over it."""
    etc = tmp_path / "etc"
    write_starter(etc, tmp_path / "state")
    shutil.copy2(COMPOSE.parent / "dialer.toml", etc / "dialer.toml")
    s = load_settings(etc / "dialer.toml")
    assert s.metrics.address == ("0.0.0.0", 9108)
    assert s.ami[0].secret._env == "DIALER_AMI_SECRET"
    assert s.rules_path == etc / "rules.yaml" and s.rules_path.is_file()
