"""Loader of the reference transcript format (../shared/reference/ami/**.txt).

A transcript is every AMI message a client received, each preceded by ``# t=S`` (seconds since
the Originate was sent); the first block starts with the server banner line. Used by the
simulator's faithfulness tests and handy for replaying real traffic into a parser.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dialer.ami.protocol import BANNER_PREFIX, AmiMessage, Parser
from dialer.errors import InputError

TIME_PREFIX = "# t="


@dataclass(frozen=True, slots=True)
class Transcript:
    source: str
    banner: str | None
    entries: tuple[tuple[float, AmiMessage], ...]

    @property
    def version(self) -> str | None:
        return self.banner[len(BANNER_PREFIX) :].strip() if self.banner else None

    def events(self) -> list[tuple[float, AmiMessage]]:
        return [(t, m) for t, m in self.entries if m.event is not None]


def parse_transcript(text: str, *, source: str = "<text>") -> Transcript:
    """Parse transcript text; a message without a preceding ``# t=`` line is an error."""
    parser = Parser(expect_banner=True)
    entries: list[tuple[float, AmiMessage]] = []
    t: float | None = None
    for lineno, line in enumerate(text.splitlines(), start=1):
        if line.startswith(TIME_PREFIX):
            try:
                t = float(line[len(TIME_PREFIX) :])
            except ValueError:
                raise InputError(f"{source}:{lineno}: bad time stamp {line!r}") from None
            continue
        for message in parser.feed(line.encode("utf-8") + b"\n"):
            if t is None:
                raise InputError(f"{source}:{lineno}: message before the first '# t=' line")
            entries.append((t, message))
    if parser.pending and t is not None:
        entries.extend((t, m) for m in parser.feed(b"\n\n"))
    if parser.garbage:
        bad = parser.garbage[0]
        raise InputError(f"{source}: {bad.reason}: {bad.line!r}")
    return Transcript(source=source, banner=parser.banner, entries=tuple(entries))


def read_transcript(path: Path) -> Transcript:
    return parse_transcript(path.read_text(encoding="utf-8"), source=str(path))


def load_transcript(path: Path) -> list[tuple[float, AmiMessage]]:
    """``[(t, message), …]`` in file order (the banner is in ``read_transcript().banner``)."""
    return list(read_transcript(path).entries)
