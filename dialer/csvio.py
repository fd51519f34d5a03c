"""Contact and exclusion CSV files as CRMs export them: pure parsing, no database.

* Encoding: UTF-8 (with or without BOM) or cp1251 (Excel on Russian Windows), detected from the
  bytes: a file that is not valid UTF-8 is read as cp1251.
* Delimiter: ``;`` or ``,``, taken from the header line.
* Headers: Russian or English aliases, case and spacing ignored (see ``CONTACT_COLUMNS``).
* Every bad row is reported with its line number (the line where the record starts) and why; the
  good rows are returned all the same.

Text fields (journal, owner name, number) are kept exactly as in the file, including line breaks
inside quoted cells.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final, TypeVar

from dialer.domain.model import CardFlag, ExclusionKind, OwnerKind
from dialer.errors import InputError

__all__ = [
    "CONTACT_COLUMNS",
    "EXCLUSION_COLUMNS",
    "CsvContact",
    "CsvExclusion",
    "RowError",
    "detect_encoding",
    "iter_contacts",
    "iter_exclusions",
    "open_text",
    "parse_flags",
    "parse_owner_kind",
    "sniff_delimiter",
]

_T = TypeVar("_T")


def _norm(header: str) -> str:
    return " ".join(header.replace("_", " ").replace("-", " ").strip().lower().replace("ё", "е").split())


CONTACT_COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "external_id": (
        "external id",
        "id",
        "ext id",
        "crm id",
        "contact id",
        "ид",
        "id контакта",
        "идентификатор",
        "код",
        "код контакта",
        "номер карточки",
        "карточка",
    ),
    "number": (
        "number",
        "phone",
        "phone number",
        "telephone",
        "tel",
        "номер",
        "телефон",
        "номер телефона",
        "тел",
        "контактный телефон",
    ),
    "owner_kind": ("owner kind", "owner type", "kind", "тип владельца", "вид владельца", "тип клиента", "тип", "лицо"),
    "owner_name": ("owner name", "owner", "name", "владелец", "имя", "фио", "клиент", "наименование", "имя владельца"),
    "flags": ("flags", "flag", "marks", "флаги", "отметки", "пометки", "метки", "признаки"),
    "journal": ("journal", "comment", "comments", "комментарий", "комментарии", "журнал"),
}

EXCLUSION_COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "number": CONTACT_COLUMNS["number"],
    "kind": ("kind", "type", "exclusion", "вид", "тип", "исключить из", "вид исключения"),
    "reason": ("reason", "comment", "причина", "комментарий"),
    "source": ("source", "источник"),
}

_OWNER_KINDS: Final[dict[str, OwnerKind]] = {
    **dict.fromkeys(
        (
            "person",
            "individual",
            "private",
            "p",
            "физ",
            "физлицо",
            "физ лицо",
            "физ. лицо",
            "физическое лицо",
            "фл",
            "частное лицо",
            "человек",
        ),
        OwnerKind.PERSON,
    ),
    **dict.fromkeys(
        (
            "organisation",
            "organization",
            "org",
            "company",
            "o",
            "юр",
            "юрлицо",
            "юр лицо",
            "юр. лицо",
            "юридическое лицо",
            "юл",
            "организация",
            "компания",
        ),
        OwnerKind.ORGANISATION,
    ),
}

_EXCLUSION_KINDS: Final[dict[str, ExclusionKind]] = {
    **dict.fromkeys(("calls", "call", "звонки", "звонков", "звонки с опросом"), ExclusionKind.CALLS),
    **dict.fromkeys(("online", "sms", "email", "e-mail", "онлайн", "рассылки", "смс"), ExclusionKind.ONLINE),
    **dict.fromkeys(("all", "both", "все", "всё", "все виды"), ExclusionKind.ALL),
}

_FLAG_SEPARATORS: Final = ("|", ";", "\n")
# «ВНИМАНИЕ, НЕ ЗВОНИТЬ КЛИЕНТУ!» and its shorter spellings; the comma inside is why flags are
# not simply split on commas.
_DO_NOT_CALL: Final = re.compile(r"(?:ВНИМАНИЕ\s*[,:!.-]?\s*)?НЕ\s+ЗВОНИТЬ(?:\s+КЛИЕНТУ)?\s*!*", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class RowError:
    line: int  # 1-based line of the file where the record starts
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass(frozen=True, slots=True)
class CsvContact:
    line: int
    external_id: str
    raw_number: str
    owner_kind: OwnerKind
    owner_name: str
    flags: frozenset[CardFlag]
    journal: str


@dataclass(frozen=True, slots=True)
class CsvExclusion:
    line: int
    raw_number: str
    kind: ExclusionKind
    reason: str
    source: str


# ---- encoding and delimiter -------------------------------------------------------------------


def detect_encoding(chunks: Iterable[bytes]) -> str:
    """``utf-8-sig`` when the bytes are valid UTF-8 (BOM or not), else ``cp1251``."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        for chunk in chunks:
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return "cp1251"
    return "utf-8-sig"


def _file_chunks(path: Path, size: int = 1 << 20) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(size):
            yield chunk


class _CountingReader(io.RawIOBase):
    """Counts bytes read, so a progress bar can follow a streamed file."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.bytes_read += n
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


@dataclass
class OpenedText:
    text: io.TextIOWrapper
    encoding: str
    size: int
    _counter: _CountingReader

    @property
    def bytes_read(self) -> int:
        return self._counter.bytes_read

    def close(self) -> None:
        self.text.close()


def open_text(path: Path) -> OpenedText:
    """Open a CSV file with its detected encoding for streaming (csv module: ``newline=""``)."""
    try:
        size = path.stat().st_size
        encoding = detect_encoding(_file_chunks(path))
        counter = _CountingReader(path.open("rb"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    text = io.TextIOWrapper(io.BufferedReader(counter, 1 << 16), encoding=encoding, newline="")
    return OpenedText(text, encoding, size, counter)


def sniff_delimiter(header_line: str) -> str:
    """``;`` or ``,`` — whichever the header line uses more (outside quotes)."""
    counts = {";": 0, ",": 0}
    quoted = False
    for ch in header_line:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    return ";" if counts[";"] >= counts[","] else ","


# ---- field parsers ------------------------------------------------------------------------------


def parse_owner_kind(text: str) -> OwnerKind | None:
    """Owner kind from a cell; empty → person (the common case); None when not understood."""
    key = _norm(text)
    if not key:
        return OwnerKind.PERSON
    return _OWNER_KINDS.get(key)


def parse_flags(text: str) -> tuple[frozenset[CardFlag], list[str]]:
    """Card flags from a cell, and the parts not understood.

    «ВНИМАНИЕ, НЕ ЗВОНИТЬ КЛИЕНТУ!» contains a comma, so the cell is first searched for the
    do-not-call mark as a whole; other marks may be separated by ``|``, ``;`` or line breaks."""
    flags: set[CardFlag] = set()
    unknown: list[str] = []
    rest, n = _DO_NOT_CALL.subn(" ", text)
    if n:
        flags.add(CardFlag.DO_NOT_CALL)
    parts = [rest]
    for sep in _FLAG_SEPARATORS:
        parts = [p for part in parts for p in part.split(sep)]
    for part in parts:
        key = _norm(part).strip(" ,!.")
        if not key:
            continue
        if key in ("do not call", "dnc", "не звонить"):
            flags.add(CardFlag.DO_NOT_CALL)
        else:
            unknown.append(part.strip())
    return frozenset(flags), unknown


# ---- rows -----------------------------------------------------------------------------------------


def _columns(header: list[str], aliases: dict[str, tuple[str, ...]]) -> tuple[dict[str, int], list[str]]:
    lookup = {alias: field for field, names in aliases.items() for alias in names}
    found: dict[str, int] = {}
    problems: list[str] = []
    for idx, name in enumerate(header):
        key = _norm(name.lstrip("\ufeff"))
        field = lookup.get(key)
        if field is None:
            continue
        if field in found:
            problems.append(f"columns {header[found[field]]!r} and {name!r} both mean {field}")
            continue
        found[field] = idx
    return found, problems


def _records(text: Iterable[str], delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(start line, cells) per record; blank lines skipped."""
    reader = csv.reader(text, delimiter=delimiter, strict=False)
    prev_end = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield prev_end + 1, [f"\x00csv error: {exc}"]
            prev_end = reader.line_num
            continue
        start = prev_end + 1
        prev_end = reader.line_num
        if not cells or all(not c.strip() for c in cells):
            continue
        yield start, cells


def _header_and_rest(lines: Iterable[str]) -> tuple[str, Iterator[str]]:
    it = iter(lines)
    for first in it:
        if first.strip():
            return first, _chain(first, it)
    raise InputError("the file is empty")


def _chain(first: _T, rest: Iterator[_T]) -> Iterator[_T]:
    yield first
    yield from rest


def iter_contacts(lines: Iterable[str], source: str = "<csv>") -> Iterator[CsvContact | RowError]:
    """Contacts and row errors, in file order. ``lines`` must keep their line ends (open the file
    with ``newline=""``). A header problem (no id or number column) raises InputError."""
    header_line, stream = _header_and_rest(lines)
    delimiter = sniff_delimiter(header_line)
    records = _records(stream, delimiter)
    try:
        _, header = next(records)
    except StopIteration:
        raise InputError(f"{source}: the file is empty") from None
    cols, problems = _columns(header, CONTACT_COLUMNS)
    if problems:
        raise InputError(f"{source}: line 1: {'; '.join(problems)}")
    for required in ("external_id", "number"):
        if required not in cols:
            names = ", ".join(CONTACT_COLUMNS[required][:6])
            raise InputError(
                f"{source}: line 1: no {required.replace('_', ' ')} column (one of: {names} …); "
                f"header is {delimiter.join(header)!r}"
            )
    seen: dict[str, int] = {}
    width = len(header)
    for line, cells in records:
        if cells and cells[0].startswith("\x00csv error: "):
            yield RowError(line, cells[0][1:])
            continue
        if len(cells) > width and any(c.strip() for c in cells[width:]):
            yield RowError(line, f"{len(cells)} fields, the header has {width} (a stray {delimiter!r}?)")
            continue

        def cell(name: str, cells: list[str] = cells) -> str:
            idx = cols.get(name)
            return cells[idx] if idx is not None and idx < len(cells) else ""

        external_id = cell("external_id").strip()
        if not external_id:
            yield RowError(line, "empty external id")
            continue
        if external_id in seen:
            yield RowError(line, f"external id {external_id!r} already on line {seen[external_id]}")
            continue
        kind = parse_owner_kind(cell("owner_kind"))
        if kind is None:
            yield RowError(line, f"owner kind {cell('owner_kind')!r} not understood (person/organisation)")
            continue
        flags, unknown = parse_flags(cell("flags"))
        if unknown:
            yield RowError(line, f"unknown card flag {unknown[0]!r}")
            continue
        seen[external_id] = line
        yield CsvContact(
            line=line,
            external_id=external_id,
            raw_number=cell("number"),
            owner_kind=kind,
            owner_name=cell("owner_name").strip(),
            flags=flags,
            journal=cell("journal"),
        )


def parse_exclusion_kind(text: str) -> ExclusionKind | None:
    return _EXCLUSION_KINDS.get(_norm(text))


def iter_exclusions(
    lines: Iterable[str], source: str = "<csv>", default_kind: ExclusionKind | None = None
) -> Iterator[CsvExclusion | RowError]:
    """Exclusion rows: a number column, a kind column (calls/online/all; or ``default_kind``),
    optional reason and source. A file of bare numbers (one per line, no header) works with
    ``default_kind``."""
    header_line, stream = _header_and_rest(lines)
    delimiter = sniff_delimiter(header_line)
    records = _records(stream, delimiter)
    try:
        first_line, header = next(records)
    except StopIteration:
        raise InputError(f"{source}: the file is empty") from None
    cols, problems = _columns(header, EXCLUSION_COLUMNS)
    if problems:
        raise InputError(f"{source}: line 1: {'; '.join(problems)}")
    rows: Iterable[tuple[int, list[str]]] = records
    if "number" not in cols:
        if any(ch.isdigit() for ch in header[0]) and len(header) <= 3:
            cols = {"number": 0}  # no header: bare numbers (optionally "number;kind;reason")
            if len(header) > 1:
                cols["kind"] = 1
            if len(header) > 2:
                cols["reason"] = 2
            rows = _chain((first_line, header), records)
        else:
            raise InputError(f"{source}: line 1: no number column (one of: number, phone, телефон, номер …)")
    if "kind" not in cols and default_kind is None:
        raise InputError(f"{source}: line 1: no kind column (calls/online/all) and no --kind given")
    for line, cells in rows:
        if cells and cells[0].startswith("\x00csv error: "):
            yield RowError(line, cells[0][1:])
            continue

        def cell(name: str, cells: list[str] = cells) -> str:
            idx = cols.get(name)
            return cells[idx] if idx is not None and idx < len(cells) else ""

        raw_kind = cell("kind")
        kind = parse_exclusion_kind(raw_kind) if raw_kind.strip() else default_kind
        if kind is None:
            yield RowError(line, f"exclusion kind {raw_kind!r} not understood (calls/online/all)")
            continue
        number = cell("number")
        if not number.strip():
            yield RowError(line, "empty number")
            continue
        yield CsvExclusion(line, number, kind, cell("reason").strip(), cell("source").strip())
