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
    "CsvScan",
    "LineTally",
    "RowError",
    "clip",
    "detect_encoding",
    "iter_contacts",
    "iter_exclusions",
    "open_text",
    "parse_flags",
    "parse_owner_kind",
    "scan_file",
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
    span: int = 1  # physical lines of the record

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
    span: int = 1  # physical lines of the record (a quoted cell may hold line breaks)


@dataclass(slots=True)
class LineTally:
    """Where the physical lines of a file went, filled while iterating: with the records' own
    spans they add up to every line read."""

    header_lines: int = 0
    blank_lines: int = 0  # empty lines and rows of empty cells
    records: int = 0
    record_lines: int = 0
    multiline_records: int = 0

    def add_record(self, span: int) -> None:
        self.records += 1
        self.record_lines += span
        if span > 1:
            self.multiline_records += 1


@dataclass(frozen=True, slots=True)
class CsvExclusion:
    line: int
    raw_number: str
    kind: ExclusionKind
    reason: str
    source: str


# ---- encoding and structure: the file is scanned whole before anything is imported ------------

# cp1251 bytes 0x80–0xBF that real Russian text uses (« » № – — ё Ё ’ “ ” „ … and the no-break
# space); the rest of that range (Ђ Ѓ ‰ Љ ‹ Њ Ќ Ћ Џ …) in bulk means the bytes are not cp1251 text.
_CP1251_COMMON: Final = frozenset(b"\xab\xbb\xb9\x96\x97\xb8\xa8\x92\x93\x94\x84\x85\xa0\x91\xb3\xb2")
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LINE_END: Final = re.compile(r"[^\r\n]*(?:\r\n|\n|\r)|[^\r\n]+")
_UTF16_BOMS: Final = {codecs.BOM_UTF16_LE: "utf-16", codecs.BOM_UTF16_BE: "utf-16"}


@dataclass(frozen=True, slots=True)
class CsvScan:
    """What the scan of a whole file found: how to read it and how many physical lines it has."""

    encoding: str  # the Python codec to read it with
    label: str  # for people: "UTF-8", "UTF-8 with BOM", "cp1251", "UTF-16"
    lines: int  # physical lines (\r\n, \n or \r ends one)
    delimiter: str
    width: int  # fields of the first (header) line


class _Refused(Exception):
    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line = line
        self.reason = reason


def detect_encoding(chunks: Iterable[bytes]) -> str:
    """``utf-8-sig`` when the bytes are valid UTF-8 (BOM or not), else ``cp1251`` (a quick check
    without the per-line rules of :func:`scan_file`)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        for chunk in chunks:
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return "cp1251"
    return "utf-8-sig"


def _utf16_without_bom(head: bytes) -> str | None:
    """``utf-16-le``/``-be`` when every other byte of the head is NUL (text mostly ASCII or
    Cyrillic in UTF-16 without a BOM), else None."""
    sample = head[: len(head) // 2 * 2]
    if len(sample) < 4:
        return None
    even = sample[0::2].count(0) / (len(sample) // 2)
    odd = sample[1::2].count(0) / (len(sample) // 2)
    if odd > 0.3 and even < 0.05:
        return "utf-16-le"
    if even > 0.3 and odd < 0.05:
        return "utf-16-be"
    return None


def _cp1251_plausible(raw: bytes) -> bool:
    high = [b for b in raw if b >= 0x80]
    odd = sum(1 for b in high if b < 0xC0 and b not in _CP1251_COMMON)
    return odd * 3 <= len(high)


class _Structure:
    """Quote and field structure, line by line, as the csv module will read it: a quoted field
    must close, a closing quote must be followed by a delimiter or the line end, and a quoted
    field that runs over following lines must not swallow what looks like whole rows (a stray
    quote: «"Ромашка»). Line breaks inside a properly quoted cell (a multi-line comment) are fine."""

    def __init__(self) -> None:
        self.delimiter = ""
        self.width = 0
        self._whole_line = re.compile("")
        self.in_quotes = False
        self.after_quote = False
        self.field_start = True
        self.quote_line = 0

    def header(self, line: str) -> None:
        self.delimiter = sniff_delimiter(line)
        self.width = _count_outside_quotes(line, self.delimiter) + 1
        d = re.escape(self.delimiter)
        cell = f'(?:"(?:[^"]|"")*"|[^"{d}\r\n][^{d}\r\n]*|)'
        # A whole line of well-formed cells (quoted ones closed on the same line): the common case,
        # checked in C; anything else goes through the character loop below.
        self._whole_line = re.compile(f"{cell}(?:{d}{cell})*(?:\r\n|\n|\r)?")

    def feed(self, text: str, n: int) -> None:
        if not self.delimiter:
            if not text.strip():
                return
            self.header(text)
        if self.in_quotes and '"' not in text:
            self._inside_quoted_cell(text, n)
            return
        if not self.in_quotes and ('"' not in text or self._whole_line.fullmatch(text)):
            self.field_start = True
            self.after_quote = False
            return
        continuation, delims_inside = self._walk(text, n)
        if continuation and self.width >= 2 and delims_inside >= max(1, self.width - 1):
            raise _Refused(
                self.quote_line,
                f"a quote opens a cell here and runs over line {n}, which looks like a row of its own (a stray quote?)",
            )
        if not self.in_quotes:
            self.field_start = True
            self.after_quote = False

    def _inside_quoted_cell(self, text: str, n: int) -> None:
        """The whole line lies inside a quoted cell that began on an earlier line."""
        if self.width >= 2 and text.count(self.delimiter) >= max(1, self.width - 1):
            raise _Refused(
                self.quote_line,
                f"a quote opens a cell here and runs over line {n}, which looks like a row of its own (a stray quote?)",
            )

    def _walk(self, text: str, n: int) -> tuple[bool, int]:
        """Follow the quotes of ``text`` character by character. Returns whether the line began
        inside a quoted cell still open at its end (a continuation) and how many delimiters lie
        inside that cell."""
        d = self.delimiter
        continuation = self.in_quotes
        delims_inside = 0
        for ch in text:
            if self.in_quotes:
                if ch == '"':
                    self.in_quotes = False
                    self.after_quote = True
                elif ch == d and continuation:
                    delims_inside += 1
                continue
            if self.after_quote:
                self.after_quote = False
                if ch == '"':
                    self.in_quotes = True  # a doubled quote inside the cell
                    continue
                if ch != d and ch not in "\r\n":
                    raise _Refused(
                        self.quote_line,
                        f"the quoted cell that opens here is closed on line {n} and more text follows the "
                        'closing quote: quotes inside a quoted cell must be doubled ("")',
                    )
                self.field_start = True
                continue
            if ch == '"' and self.field_start:
                self.in_quotes = True
                self.quote_line = n
                self.field_start = False
                continuation = False
                continue
            self.field_start = ch == d or ch in "\r\n"
        return continuation, delims_inside

    def finish(self, last_line: int) -> None:
        if self.in_quotes:
            raise _Refused(self.quote_line, f"a quote opens a cell here and is never closed (up to line {last_line})")


def _count_outside_quotes(line: str, delimiter: str) -> int:
    if '"' not in line:
        return line.count(delimiter)
    n = 0
    quoted = False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif ch == delimiter and not quoted:
            n += 1
    return n


def clip(text: str, limit: int = 60) -> str:
    """``text`` for an error message: repr, cut to about ``limit`` characters."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"… ({len(text)} characters)"


def _utf16_plausible(line: str) -> bool:
    """Text decoded as UTF-16 that is mostly CJK or other scripts was not UTF-16 text at all."""
    odd = sum(
        1
        for ch in line
        if ord(ch) >= 0x250 and not (0x400 <= ord(ch) <= 0x52F or 0x2000 <= ord(ch) <= 0x21FF or ch == "\ufeff")
    )
    return odd * 5 <= max(len(line), 1)


def _split_lines(text: str) -> list[str]:
    """Physical lines of a chunk that ends at most with one line end; a lone \r ends a line too."""
    if "\r" not in text[:-2]:
        return [text]
    return _LINE_END.findall(text)


def scan_file(path: Path) -> CsvScan:
    """Read the whole file once, before anything is imported: detect the encoding (UTF-8 with or
    without BOM, cp1251, UTF-16) and check that it can be parsed reliably. Refused with an
    InputError naming the first bad line: NUL bytes or control characters, bytes that are no
    known encoding, lines in different encodings (reported by line), unbalanced or stray quotes."""
    try:
        with path.open("rb") as f:
            head = f.read(4096)
            f.seek(0)
            if not head:
                raise InputError(f"{path}: the file is empty")
            utf16 = next((enc for bom, enc in _UTF16_BOMS.items() if head.startswith(bom)), None)
            utf16 = utf16 or _utf16_without_bom(head)
            if utf16 is not None:
                return _scan_utf16(path, f, utf16)
            return _scan_8bit(path, f, head.startswith(codecs.BOM_UTF8))
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _refuse(path: Path, exc: _Refused) -> InputError:
    return InputError(f"{path}:{exc.line}: {exc.reason}; nothing was imported")


def _scan_utf16(path: Path, f: BinaryIO, encoding: str) -> CsvScan:
    structure = _Structure()
    text = io.TextIOWrapper(f, encoding=encoding, newline="")
    n = 0
    try:
        for chunk in text:
            for line in _split_lines(chunk):
                n += 1
                control = _CONTROL.search(line)
                if control is not None:
                    raise _Refused(n, f"control character {control.group()!r} in a UTF-16 text: not a CSV file?")
                if not _utf16_plausible(line):
                    raise _Refused(n, "not text in UTF-8, cp1251 or UTF-16 (unknown encoding)")
                structure.feed(line, n)
        structure.finish(n)
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}:{n + 1}: not valid UTF-16 ({exc.reason}); nothing was imported") from None
    except _Refused as exc:
        raise _refuse(path, exc) from None
    finally:
        text.detach()
    return CsvScan(encoding, "UTF-16", n, structure.delimiter or ";", structure.width)


def _line_encoding(data: bytes, n: int) -> str:
    """ "ascii", "utf-8" or "cp1251" for one physical line; _Refused when it is none of them."""
    if data.isascii():
        return "ascii"
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        data.decode("cp1251")
    except UnicodeDecodeError:
        raise _Refused(n, "bytes that are neither UTF-8, cp1251 nor UTF-16 (unknown encoding)") from None
    if not _cp1251_plausible(data):
        raise _Refused(n, "bytes that are neither UTF-8 nor cp1251 text (unknown encoding)")
    return "cp1251"


def _scan_8bit(path: Path, f: BinaryIO, bom: bool) -> CsvScan:
    structure = _Structure()
    n = 0
    utf8_lines: list[int] = []
    other_lines: list[int] = []
    utf8_count = other_count = 0
    try:
        for raw in f:
            if n == 0 and bom:
                raw = raw[len(codecs.BOM_UTF8) :]
            for piece in _split_lines(raw.decode("latin-1")):
                n += 1
                data = piece.encode("latin-1")
                if b"\x00" in data:
                    raise _Refused(n, "NUL byte: not a text CSV file (or UTF-16 that cannot be recognised)")
                control = _CONTROL.search(piece)
                if control is not None:
                    raise _Refused(n, f"control character {control.group()!r}: not a text CSV file?")
                kind = _line_encoding(data, n)
                if kind == "utf-8":
                    utf8_count += 1
                    if len(utf8_lines) < 3:
                        utf8_lines.append(n)
                elif kind == "cp1251":
                    other_count += 1
                    if len(other_lines) < 3:
                        other_lines.append(n)
                structure.feed(piece, n)
        structure.finish(n)
    except _Refused as exc:
        raise _refuse(path, exc) from None
    if utf8_count and other_count:
        first_bad = other_lines[0] if utf8_count >= other_count else utf8_lines[0]
        raise InputError(
            f"{path}:{first_bad}: mixed encodings: {utf8_count} line(s) are UTF-8 (line "
            f"{', '.join(map(str, utf8_lines))}{' …' if utf8_count > 3 else ''}) and {other_count} are not "
            f"(cp1251? line {', '.join(map(str, other_lines))}{' …' if other_count > 3 else ''}); "
            "save the file in one encoding; nothing was imported"
        )
    if other_count:
        return CsvScan("cp1251", "cp1251", n, structure.delimiter or ";", structure.width)
    label = "UTF-8 with BOM" if bom else "UTF-8"
    return CsvScan("utf-8-sig", label, n, structure.delimiter or ";", structure.width)


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
    scan: CsvScan | None = None

    @property
    def bytes_read(self) -> int:
        return self._counter.bytes_read

    def close(self) -> None:
        self.text.close()


def open_text(path: Path) -> OpenedText:
    """Scan the whole file (:func:`scan_file`: refused whole when it cannot be parsed reliably),
    then open it with the detected encoding for streaming (csv module: ``newline=""``)."""
    scan = scan_file(path)
    try:
        size = path.stat().st_size
        counter = _CountingReader(path.open("rb"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    text = io.TextIOWrapper(io.BufferedReader(counter, 1 << 16), encoding=scan.encoding, newline="")
    return OpenedText(text, scan.encoding, size, counter, scan)


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
            problems.append(f"columns {clip(header[found[field]])} and {clip(name)} both mean {field}")
            continue
        found[field] = idx
    return found, problems


def _records(
    text: Iterable[str], delimiter: str, tally: LineTally, first_line: int = 1
) -> Iterator[tuple[int, int, list[str]]]:
    """(start line, physical lines, cells) per record; blank records are counted, not yielded."""
    reader = csv.reader(text, delimiter=delimiter, strict=False)
    prev_end = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield first_line + prev_end, reader.line_num - prev_end, [f"\x00csv error: {exc}"]
            prev_end = reader.line_num
            continue
        start = prev_end + 1
        span = reader.line_num - prev_end
        prev_end = reader.line_num
        if not cells or all(not c.strip() for c in cells):
            tally.blank_lines += span
            continue
        yield first_line + start - 1, span, cells


def _header_and_rest(lines: Iterable[str], tally: LineTally) -> tuple[str, Iterator[str], int]:
    """The first non-blank line, the stream from it on, and its line number."""
    it = iter(lines)
    n = 0
    for first in it:
        n += 1
        if first.strip():
            return first, _chain(first, it), n
        tally.blank_lines += 1
    raise InputError("the file is empty")


def _chain(first: _T, rest: Iterator[_T]) -> Iterator[_T]:
    yield first
    yield from rest


def iter_contacts(
    lines: Iterable[str], source: str = "<csv>", tally: LineTally | None = None
) -> Iterator[CsvContact | RowError]:
    """Contacts and row errors, in file order. ``lines`` must keep their line ends (open the file
    with ``newline=""``). A header problem (no id or number column) raises InputError. ``tally``
    (optional) learns where every physical line went."""
    tally = tally if tally is not None else LineTally()
    header_line, stream, first = _header_and_rest(lines, tally)
    delimiter = sniff_delimiter(header_line)
    records = _records(stream, delimiter, tally, first)
    try:
        header_at, header_span, header = next(records)
    except StopIteration:
        raise InputError(f"{source}: the file is empty") from None
    tally.header_lines = header_span
    cols, problems = _columns(header, CONTACT_COLUMNS)
    if problems:
        raise InputError(f"{source}:{header_at}: {'; '.join(problems)}")
    for required in ("external_id", "number"):
        if required not in cols:
            names = ", ".join(CONTACT_COLUMNS[required][:6])
            raise InputError(
                f"{source}:{header_at}: no {required.replace('_', ' ')} column (one of: {names} …); "
                f"header is {clip(delimiter.join(header), 120)}"
            )
    seen: dict[str, int] = {}
    width = len(header)
    for line, span, cells in records:
        tally.add_record(span)
        item = _contact_row(line, span, cells, cols, width, delimiter, seen)
        if isinstance(item, CsvContact):
            seen[item.external_id] = line
        yield item


def _contact_row(
    line: int, span: int, cells: list[str], cols: dict[str, int], width: int, delimiter: str, seen: dict[str, int]
) -> CsvContact | RowError:
    """One record as a contact, or why it is not one (``seen``: the line of each id so far)."""

    def bad(reason: str) -> RowError:
        return RowError(line, reason, span)

    if cells and cells[0].startswith("\x00csv error: "):
        return bad(cells[0][1:])
    if len(cells) > width and any(c.strip() for c in cells[width:]):
        return bad(f"{len(cells)} fields, the header has {width} (a stray {delimiter!r}?)")

    def cell(name: str) -> str:
        idx = cols.get(name)
        return cells[idx] if idx is not None and idx < len(cells) else ""

    external_id = cell("external_id").strip()
    if not external_id:
        return bad("empty external id")
    if external_id in seen:
        return bad(f"external id {clip(external_id)} already on line {seen[external_id]}")
    kind = parse_owner_kind(cell("owner_kind"))
    if kind is None:
        return bad(f"owner kind {clip(cell('owner_kind'))} not understood (person/organisation)")
    flags, unknown = parse_flags(cell("flags"))
    if unknown:
        return bad(f"unknown card flag {clip(unknown[0])}")
    return CsvContact(
        line=line,
        external_id=external_id,
        raw_number=cell("number"),
        owner_kind=kind,
        owner_name=cell("owner_name").strip(),
        flags=flags,
        journal=cell("journal"),
        span=span,
    )


def parse_exclusion_kind(text: str) -> ExclusionKind | None:
    return _EXCLUSION_KINDS.get(_norm(text))


def iter_exclusions(
    lines: Iterable[str],
    source: str = "<csv>",
    default_kind: ExclusionKind | None = None,
    tally: LineTally | None = None,
) -> Iterator[CsvExclusion | RowError]:
    """Exclusion rows: a number column, a kind column (calls/online/all; or ``default_kind``),
    optional reason and source. A file of bare numbers (one per line, no header) works with
    ``default_kind``."""
    tally = tally if tally is not None else LineTally()
    header_line, stream, first = _header_and_rest(lines, tally)
    delimiter = sniff_delimiter(header_line)
    records = _records(stream, delimiter, tally, first)
    try:
        first_line, first_span, header = next(records)
    except StopIteration:
        raise InputError(f"{source}: the file is empty") from None
    cols, problems = _columns(header, EXCLUSION_COLUMNS)
    if problems:
        raise InputError(f"{source}:{first_line}: {'; '.join(problems)}")
    rows: Iterable[tuple[int, int, list[str]]] = records
    if "number" not in cols:
        if any(ch.isdigit() for ch in header[0]) and len(header) <= 3:
            cols = {"number": 0}  # no header: bare numbers (optionally "number;kind;reason")
            if len(header) > 1:
                cols["kind"] = 1
            if len(header) > 2:
                cols["reason"] = 2
            rows = _chain((first_line, first_span, header), records)
        else:
            raise InputError(f"{source}:{first_line}: no number column (one of: number, phone, телефон, номер …)")
    else:
        tally.header_lines = first_span
    if "kind" not in cols and default_kind is None:
        raise InputError(f"{source}:{first_line}: no kind column (calls/online/all) and no --kind given")
    for line, span, cells in rows:
        tally.add_record(span)
        if cells and cells[0].startswith("\x00csv error: "):
            yield RowError(line, cells[0][1:], span)
            continue

        def cell(name: str, cells: list[str] = cells) -> str:
            idx = cols.get(name)
            return cells[idx] if idx is not None and idx < len(cells) else ""

        raw_kind = cell("kind")
        kind = parse_exclusion_kind(raw_kind) if raw_kind.strip() else default_kind
        if kind is None:
            yield RowError(line, f"exclusion kind {clip(raw_kind)} not understood (calls/online/all)", span)
            continue
        number = cell("number")
        if not number.strip():
            yield RowError(line, "empty number", span)
            continue
        yield CsvExclusion(line, number, kind, cell("reason").strip(), cell("source").strip())
