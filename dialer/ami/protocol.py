"""AMI wire codec (main/manager.c), pure: bytes in, messages out, and back.

The one codec of the package: the client (under panoramisk's action matching), the simulator's
server and the transcript loader all frame and parse through it.

A message is a block of ``Key: Value`` lines closed by an empty line. Asterisk writes ``\\r\\n``
and accepts a bare ``\\n``; header names match case-insensitively and the first occurrence wins
(``Variable:`` may repeat and every occurrence is kept). Right after the TCP connect the server
sends one banner line, ``Asterisk Call Manager/<version>``, with no empty line after it.

Lines that are not ``Key: Value`` (and are not the banner) are reported in ``Parser.garbage`` and
otherwise ignored, so one broken line never loses the rest of the stream.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

BANNER_PREFIX = "Asterisk Call Manager/"
EOL = "\r\n"
# A peer that never sends an end of line must not make us buffer without bound.
MAX_LINE_BYTES = 64 * 1024

Header = tuple[str, str]


@dataclass(frozen=True, slots=True)
class AmiMessage:
    """One AMI message: the ordered headers exactly as on the wire."""

    headers: tuple[Header, ...]

    @classmethod
    def build(cls, *pairs: Header, **extra: str) -> AmiMessage:
        return cls(tuple(pairs) + tuple(extra.items()))

    def get(self, key: str, default: str | None = None) -> str | None:
        """The first header named ``key`` (case-insensitive), as Asterisk's astman_get_header."""
        low = key.lower()
        for k, v in self.headers:
            if k.lower() == low:
                return v
        return default

    def get_all(self, key: str) -> list[str]:
        low = key.lower()
        return [v for k, v in self.headers if k.lower() == low]

    def __getitem__(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def __iter__(self) -> Iterator[Header]:
        return iter(self.headers)

    @property
    def event(self) -> str | None:
        return self.get("Event")

    @property
    def response(self) -> str | None:
        return self.get("Response")

    @property
    def action(self) -> str | None:
        return self.get("Action")

    @property
    def action_id(self) -> str | None:
        return self.get("ActionID")

    @property
    def kind(self) -> str:
        """``Event:X``, ``Response:X`` or ``Action:X`` — handy in logs and tests."""
        for key in ("Event", "Response", "Action"):
            value = self.get(key)
            if value is not None:
                return f"{key}:{value}"
        return "?"

    def to_dict(self) -> dict[str, str]:
        """First occurrence of each header, keys as first written."""
        out: dict[str, str] = {}
        seen: set[str] = set()
        for k, v in self.headers:
            if k.lower() not in seen:
                seen.add(k.lower())
                out[k] = v
        return out

    def to_multidict(self) -> dict[str, str | list[str]]:
        """Every header, keys as first written; a repeated header's values become a list."""
        out: dict[str, str | list[str]] = {}
        for k, v in self.headers:
            previous = out.get(k)
            if previous is None:
                out[k] = v
            else:
                out[k] = [*previous, v] if isinstance(previous, list) else [previous, v]
        return out

    def encode(self) -> bytes:
        return serialize(self.headers)


def serialize(headers: Iterable[Header]) -> bytes:
    """``Key: Value\\r\\n`` lines and the closing empty line.

    Line breaks inside a value would split the message on the peer's side: they are refused.
    """
    parts: list[str] = []
    for key, value in headers:
        if "\n" in key or "\r" in key or ":" in key or "\n" in value or "\r" in value:
            raise ValueError(f"AMI header {key!r} cannot carry a line break or a colon in its name")
        parts.append(f"{key}: {value}{EOL}")
    parts.append(EOL)
    return "".join(parts).encode("utf-8")


@dataclass(slots=True)
class GarbageLine:
    """A line that is neither ``Key: Value`` nor the banner; kept for logs, never fatal."""

    line: str
    reason: str


@dataclass(slots=True)
class Parser:
    """Incremental parser: ``feed()`` whatever the socket gave, get whole messages back.

    ``expect_banner`` (client side): the first line is the server's banner when it starts with
    ``Asterisk Call Manager/``; it is stored in ``banner`` and not part of any message.
    """

    expect_banner: bool = False
    banner: str | None = None
    garbage: list[GarbageLine] = field(default_factory=list)
    max_garbage_kept: int = 100
    _buf: bytearray = field(default_factory=bytearray)
    _current: list[Header] = field(default_factory=list)
    _first_line: bool = True

    def feed(self, data: bytes) -> list[AmiMessage]:
        self._buf += data
        out: list[AmiMessage] = []
        while True:
            nl = self._buf.find(b"\n")
            if nl < 0:
                if len(self._buf) > MAX_LINE_BYTES:
                    self._note(self._buf[:80].decode("utf-8", "replace"), "line too long, dropped")
                    self._buf.clear()
                break
            raw = bytes(self._buf[:nl])
            del self._buf[: nl + 1]
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            line = raw.decode("utf-8", "replace")
            message = self._line(line)
            if message is not None:
                out.append(message)
        return out

    def _line(self, line: str) -> AmiMessage | None:
        first, self._first_line = self._first_line, False
        if first and self.expect_banner and line.startswith(BANNER_PREFIX):
            self.banner = line
            return None
        if line == "":
            if not self._current:
                return None  # stray empty lines between messages
            message = AmiMessage(tuple(self._current))
            self._current = []
            return message
        key, colon, value = line.partition(":")
        if not colon or not key.strip() or key != key.strip():
            self._note(line, "not a 'Key: Value' line")
            return None
        self._current.append((key, value.lstrip(" \t")))
        return None

    def _note(self, line: str, reason: str) -> None:
        if len(self.garbage) < self.max_garbage_kept:
            self.garbage.append(GarbageLine(line, reason))

    @property
    def version(self) -> str | None:
        """The version part of the banner (``13.0.0``), if one was seen."""
        if self.banner is None:
            return None
        return self.banner[len(BANNER_PREFIX) :].strip()

    @property
    def pending(self) -> bool:
        """True when a message was started but not closed (stream cut mid-message)."""
        return bool(self._current) or bool(self._buf)


def parse_all(data: bytes, *, expect_banner: bool = False) -> list[AmiMessage]:
    """Parse a complete byte string; a last message without its empty line is still returned."""
    parser = Parser(expect_banner=expect_banner)
    messages = parser.feed(data)
    tail = parser.feed(b"\n\n") if parser.pending else []
    return messages + tail
