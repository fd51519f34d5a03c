"""The Russian numbering-plan registry: parse its CSV export, look up a number's range, and map
the range's region to an IANA time zone.

Mobile numbers do not tell their zone (phonenumbers lists all of Russia), but the public registry
of the ministry of digital development says which operator and region hold every range. Format
(the ministry's export): UTF-8 with a BOM, ``;`` separated, header
``АВС/ DEF;От;До;Емкость;Оператор;Регион;Территория ГАР;ИНН``; older exports stop after ``Регион``
or lack ``Территория ГАР``. Columns are found by name, so any of these variants parses.
"""

from __future__ import annotations

import bisect
import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from dialer.domain.phone import fixed_line_timezone
from dialer.domain.schedule import zone
from dialer.errors import ConfigError
from dialer.yamlload import YNode, load_yaml, load_yaml_file

__all__ = [
    "NumberRange",
    "NumberingIndex",
    "RegionZones",
    "RegistryError",
    "normalise_region",
    "parse_registry",
    "resolve_timezone",
]


@dataclass(frozen=True, slots=True)
class NumberRange:
    code: int  # ABC/DEF code, 3 digits (e.g. 905, 495)
    start: int  # first subscriber number, 7 digits as an int
    end: int  # last, inclusive
    operator: str
    region: str
    territory: str | None = None
    inn: str | None = None


@dataclass(frozen=True, slots=True)
class RegistryError:
    source: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.message}"


# Header names, normalised (lower case, Latin look-alikes, no spaces): the first column is
# spelled with Cyrillic «АВС» in the real files.
_LOOKALIKES: Final = str.maketrans("авсеокрхм", "abcekopxm")
_COLUMNS: Final[dict[str, str]] = {
    "code": "code",
    "от": "start",
    "до": "end",
    "емкость": "capacity",
    "ёмкость": "capacity",
    "оператор": "operator",
    "регион": "region",
    "территориягар": "territory",
    "инн": "inn",
}
_REQUIRED: Final = ("code", "start", "end", "operator", "region")
_DASHES: Final = {"", "-", "–", "—", "‐"}


def _header_key(cell: str) -> str:
    key = re.sub(r"\s+", "", cell.strip().lstrip("\ufeff").lower())
    latin = key.translate(_LOOKALIKES)
    if "def" in latin or "abc" in latin:
        return "code"
    return _COLUMNS.get(key, key)


def parse_registry(text: str, source: str) -> tuple[list[NumberRange], list[RegistryError]]:
    """Parse one registry file. Bad rows are reported with their line numbers; good rows are kept.

    A missing or unrecognisable header is reported as an error on line 1 with no rows.
    """
    if text.startswith("\ufeff"):
        text = text[1:]
    reader = csv.reader(text.splitlines(), delimiter=";", quotechar='"')
    ranges: list[NumberRange] = []
    errors: list[RegistryError] = []
    columns: dict[str, int] | None = None
    width = 0
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if columns is None:
            keys = [_header_key(c) for c in row]
            columns = {k: i for i, k in enumerate(keys) if k in set(_COLUMNS.values())}
            missing = [k for k in _REQUIRED if k not in columns]
            if missing:
                errors.append(
                    RegistryError(
                        source,
                        line,
                        "not a numbering-plan registry header (expected "
                        f"'АВС/ DEF;От;До;Емкость;Оператор;Регион…'; missing {', '.join(missing)})",
                    )
                )
                return [], errors
            width = len(row)
            continue
        try:
            ranges.append(_parse_row(row, columns, width))
        except ValueError as exc:
            errors.append(RegistryError(source, line, str(exc)))
    if columns is None:
        errors.append(RegistryError(source, 1, "empty file: no header"))
    return ranges, errors


def _parse_row(row: list[str], columns: dict[str, int], width: int) -> NumberRange:
    # Trailing empty cells (a final ";") are harmless; anything else off-width is a broken row.
    cells = [c.strip() for c in row]
    while len(cells) > width and cells[-1] == "":
        cells.pop()
    if len(cells) != width:
        raise ValueError(f"expected {width} fields, got {len(cells)}")

    def cell(name: str) -> str:
        i = columns.get(name)
        return cells[i] if i is not None else ""

    code_s, start_s, end_s = cell("code"), cell("start"), cell("end")
    if not re.fullmatch(r"\d{3}", code_s):
        raise ValueError(f"code {code_s!r} is not 3 digits")
    for name, value in (("От", start_s), ("До", end_s)):
        if not re.fullmatch(r"\d{1,7}", value):
            raise ValueError(f"{name} {value!r} is not a number of up to 7 digits")
    start, end = int(start_s), int(end_s)
    if start > end:
        raise ValueError(f"От {start_s} is after До {end_s}")
    capacity = cell("capacity")
    if capacity and not capacity.replace(" ", "").isdigit():
        raise ValueError(f"Емкость {capacity!r} is not a number")
    operator = cell("operator")
    if not operator:
        raise ValueError("Оператор is empty")
    region = cell("region")
    territory = cell("territory") or None
    inn = cell("inn") or None
    if region in _DASHES:
        region = ""
    if not region and not territory:
        raise ValueError("neither Регион nor Территория ГАР is given")
    return NumberRange(int(code_s), start, end, operator, region, territory, inn)


class NumberingIndex:
    """Ranges sorted for binary search: ``lookup`` is O(log n) over the whole plan (~17 000 DEF rows)."""

    def __init__(self, ranges: Iterable[NumberRange]) -> None:
        self._ranges = sorted(ranges, key=lambda r: (r.code, r.start))
        self._starts = [r.code * 10_000_000 + r.start for r in self._ranges]

    def __len__(self) -> int:
        return len(self._ranges)

    def lookup(self, e164: str) -> NumberRange | None:
        """The range holding ``+7CCCNNNNNNN``, or None (other countries, gaps in the plan)."""
        if len(e164) != 12 or not e164.startswith("+7") or not e164[2:].isdigit():
            return None
        key = int(e164[2:])
        i = bisect.bisect_right(self._starts, key) - 1
        if i < 0:
            return None
        r = self._ranges[i]
        if r.code == key // 10_000_000 and r.start <= key % 10_000_000 <= r.end:
            return r
        return None


# --- region names → IANA zones ---------------------------------------------------------------------

_ABBREVIATIONS: Final = (
    (r"\bобл\.?(?=\s|$)", "область"),
    (r"\bресп\.?(?=\s|$)", "республика"),
    (r"\bавт\.?\s*окр\.?(?=\s|$)", "автономный округ"),
    (r"\bао\b", "автономный округ"),
    (r"\bаобл\.?(?=\s|$)", "автономная область"),
)


def normalise_region(name: str) -> str:
    """A comparable form of a region name: lower case, ё→е, no «г.»/«город», no parenthesised
    aside, abbreviations spelled out, «Республика X» = «X Республика», hyphens without spaces."""
    s = name.strip().lower().replace("ё", "е").replace("\u00a0", " ")
    s = re.sub(r"\([^)]*\)|/[^/]*/", " ", s)
    s = re.sub(r'["«»]', " ", s)
    s = re.sub(r"^\s*(г\.|г\s|город\s|гор\.)\s*", "", s)
    for pattern, repl in _ABBREVIATIONS:
        s = re.sub(pattern, repl, s)
    s = re.sub(r"\s*[-–—]\s*", "-", s)
    words = [w for w in re.split(r"[\s,]+", s) if w and w != "республика"]
    return " ".join(words).strip("-. ")


class RegionZones:
    """Region name → IANA zone (config/region_zones.yaml: ``zones: {zone: [region, …]}`` and
    ``aliases: {alias: region}``)."""

    def __init__(self, table: dict[str, str]) -> None:
        self._table = table  # normalised name → zone

    def __len__(self) -> int:
        return len(self._table)

    @classmethod
    def load(cls, path: Path) -> RegionZones:
        return cls._build(load_yaml_file(path))

    @classmethod
    def from_text(cls, text: str, source: str = "<region zones>") -> RegionZones:
        return cls._build(load_yaml(text, source))

    @classmethod
    def _build(cls, root: YNode) -> RegionZones:
        root.check_keys({"zones", "aliases"}, "the region zones file")
        table: dict[str, str] = {}
        where: dict[str, int] = {}
        zones_node = root.require("zones")
        for zone_name, regions in zones_node.items():
            try:
                zone(zone_name)
            except ConfigError:
                raise zones_node.key_error(zone_name, f"unknown IANA time zone {zone_name!r}") from None
            for item in regions.as_list(f"regions of {zone_name}"):
                key = normalise_region(item.as_str("region name"))
                if key in table and table[key] != zone_name:
                    raise item.error(f"region {item.value!r} is already mapped to {table[key]} (line {where[key]})")
                table[key] = zone_name
                where[key] = item.line
        aliases = root.get("aliases")
        if aliases is not None:
            for alias, target in aliases.items():
                t = normalise_region(target.as_str(f"alias {alias!r}"))
                if t not in table:
                    raise target.error(f"alias {alias!r} points to unknown region {target.value!r}")
                table[normalise_region(alias)] = table[t]
        return cls(table)

    def zone_for(self, name: str | None) -> str | None:
        """The zone of a registry region/territory, trying ``город|регион`` and «X и Y» parts."""
        if not name:
            return None
        found = self._table.get(normalise_region(name))
        if found:
            return found
        parts = [p for p in name.split("|") if p.strip()]
        for part in reversed(parts):  # «город|регион»: the region part is the safer answer
            found = self._table.get(normalise_region(part))
            if found:
                return found
        for part in re.split(r"\s+и\s+", name):
            if part.strip() and part.strip() != name.strip():
                found = self._table.get(normalise_region(part))
                if found:
                    return found
        return None


def resolve_timezone(
    e164: str,
    number_type: str,
    index: NumberingIndex | None,
    zones: RegionZones | None,
    default_tz: str,
) -> tuple[str, str]:
    """The contact's zone and where it came from: ``fixed_line`` (phonenumbers), ``registry``
    (the imported numbering plan), else ``campaign`` (the campaign's default zone)."""
    if number_type == "fixed":
        tz = fixed_line_timezone(e164)
        if tz is not None:
            return tz, "fixed_line"
    if index is not None and zones is not None:
        r = index.lookup(e164)
        if r is not None:
            tz = zones.zone_for(r.region) or zones.zone_for(r.territory)
            if tz is not None:
                return tz, "registry"
    return default_tz, "campaign"
