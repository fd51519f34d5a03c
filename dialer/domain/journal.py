"""The comment journal of a contact card: one ``DD/MM text`` line per attempt.

The journal is shared with people (operators write there too), so the dialer only ever appends:
every byte already present — odd whitespace, CRLF line ends, trailing spaces, Cyrillic — is kept
exactly. ``append(j, …).startswith(j)`` always holds.
"""

from __future__ import annotations

import re
from datetime import date

__all__ = ["append", "append_line", "format_line", "newline_style"]

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def format_line(day: date, text: str) -> str:
    """``04/01 Не отвечает``. Line breaks inside ``text`` become spaces: one attempt, one line."""
    one_line = " ".join(part.strip() for part in text.splitlines() if part.strip())
    if not one_line:
        raise ValueError("journal text must not be empty")
    return f"{day:%d/%m} {one_line}"


def newline_style(journal: str) -> str:
    """The line break the journal already uses (its last one), ``\\n`` when it has none."""
    breaks = _LINE_BREAK.findall(journal)
    return breaks[-1] if breaks else "\n"


def append_line(journal: str, line: str) -> str:
    """Append a ready line. A journal not ending with a line break gets one in its own style first;
    nothing is added after the new line, so the next append behaves the same way."""
    if not journal:
        return line
    if journal.endswith(("\n", "\r")):
        return journal + line
    return journal + newline_style(journal) + line


def append(journal: str, day: date, text: str) -> str:
    """Append ``DD/MM text`` for ``day`` (the contact's local date) to ``journal``."""
    return append_line(journal, format_line(day, text))
