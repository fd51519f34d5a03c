"""The recorded AMI transcripts (shared/reference/ami/*) as plain header dicts, for the
correlator tests; parsing is the package's own loader (dialer.ami.transcript)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dialer.ami.transcript import load_transcript

REPO_ROOT = Path(__file__).resolve().parents[2]
AMI_REFERENCE = REPO_ROOT.parent / "shared" / "reference" / "ami"


@dataclass(frozen=True)
class Recorded:
    t: float
    headers: dict[str, str]


def load(path: Path) -> list[Recorded]:
    """Every message of a transcript with its ``# t=`` stamp (first occurrence of each header)."""
    return [Recorded(t, message.to_dict()) for t, message in load_transcript(path)]


def local_transcripts() -> list[Path]:
    return sorted((AMI_REFERENCE / "local").glob("*.txt")) + sorted((AMI_REFERENCE / "audiosocket").glob("*.ami.txt"))
