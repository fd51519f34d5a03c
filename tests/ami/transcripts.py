"""Tiny reader of the recorded AMI transcripts (shared/reference/ami/*), for the correlator tests.

Duplicates in spirit what the simulator's loader does; kept here so these tests do not depend on
another part's module.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
AMI_REFERENCE = REPO_ROOT.parent / "shared" / "reference" / "ami"


@dataclass(frozen=True)
class Recorded:
    t: float
    headers: dict[str, str]


def load(path: Path) -> list[Recorded]:
    """Every message of a transcript with its ``# t=`` stamp; the banner line is skipped."""
    out: list[Recorded] = []
    t = 0.0
    headers: dict[str, str] = {}

    def flush() -> None:
        nonlocal headers
        if headers:
            out.append(Recorded(t, headers))
        headers = {}

    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.rstrip("\r")
        if line.startswith("# t="):
            flush()
            t = float(line[4:])
            continue
        if not line.strip():
            flush()
            continue
        if line.startswith("Asterisk Call Manager/"):
            continue
        key, sep, value = line.partition(":")
        if sep and key not in headers:
            headers[key] = value.strip()
    flush()
    return out


def local_transcripts() -> list[Path]:
    return sorted((AMI_REFERENCE / "local").glob("*.txt")) + sorted((AMI_REFERENCE / "audiosocket").glob("*.ami.txt"))
