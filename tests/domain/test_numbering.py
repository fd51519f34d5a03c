from __future__ import annotations

import random
from pathlib import Path

import pytest

from dialer.domain.numbering import (
    NumberingIndex,
    NumberRange,
    RegionZones,
    normalise_region,
    parse_registry,
    resolve_timezone,
)
from dialer.errors import ConfigError
from dialer.yamlload import load_yaml_file

from .conftest import CONFIG, DATA

HEADER = "АВС/ DEF;От;До;Емкость;Оператор;Регион;Территория ГАР;ИНН"


@pytest.fixture(scope="module")
def zones() -> RegionZones:
    return RegionZones.load(CONFIG / "region_zones.yaml")


@pytest.fixture(scope="module")
def index() -> NumberingIndex:
    ranges: list[NumberRange] = []
    for name in ("DEF-9xx-sample.csv", "ABC-4xx-sample.csv"):
        got, errors = parse_registry((DATA / name).read_text(encoding="utf-8"), name)
        assert errors == []
        ranges += got
    return NumberingIndex(ranges)


def test_sample_files_are_in_the_registry_format() -> None:
    for name in ("DEF-9xx-sample.csv", "ABC-4xx-sample.csv"):
        raw = (DATA / name).read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM
        first = raw[3:].decode("utf-8").splitlines()[0]
        assert first.startswith("АВС/ DEF;От;До;Емкость;Оператор;Регион")


def test_parse_new_format_sample() -> None:
    ranges, errors = parse_registry((DATA / "DEF-9xx-sample.csv").read_text(encoding="utf-8"), "DEF")
    assert errors == []
    assert len(ranges) == 20
    first = ranges[0]
    assert first == NumberRange(
        900, 0, 61999, 'ООО "Т2 Мобайл"', "Краснодарский край", "Краснодарский край", "7743895280"
    )
    dash = next(r for r in ranges if r.code == 952)
    assert dash.region == "" and dash.territory == "г.о. Тольятти|Самарская область"


def test_parse_old_format_without_territory_and_inn() -> None:
    ranges, errors = parse_registry((DATA / "ABC-4xx-sample.csv").read_text(encoding="utf-8"), "ABC")
    assert errors == []
    assert {r.code for r in ranges} >= {401, 495}
    assert all(r.territory is None and r.inn is None for r in ranges)


def test_parse_variant_with_inn_but_no_territory_and_lf_and_trailing_semicolon() -> None:
    text = (
        "\ufeffАВС/ DEF;От;До;Емкость;Оператор;Регион;ИНН\n"
        "912;0000000;0999999;1000000;ПАО X;Свердловская обл.;7700000000;\n"
    )
    ranges, errors = parse_registry(text, "t")
    assert errors == []
    assert ranges[0].inn == "7700000000" and ranges[0].territory is None


def test_bad_rows_reported_with_line_numbers_good_rows_kept() -> None:
    text = "\n".join(
        [
            HEADER,
            "900;0000000;0061999;62000;ООО X;Краснодарский край;Краснодарский край;1",  # 2 ok
            "90;0000000;0061999;62000;ООО X;Краснодарский край;Краснодарский край;1",  # 3 bad code
            "901;0000100;0000099;0;ООО X;Калининградская обл.;Калининградская область;1",  # 4 start > end
            "902;00A0000;0000099;100;ООО X;Калининградская обл.;Калининградская область;1",  # 5 letters
            "903;0000000;0000099;100;ООО X;Москва",  # 6 too few fields
            "",  # 7 blank: skipped
            "904;0000000;0000099;100;;Москва;Москва;1",  # 8 no operator
            "905;0000000;0000099;100;ООО X;-;;1",  # 9 no region at all
            '906;0000000;0000099;100;"ООО ""Кавычки""";Москва;Москва;1',  # 10 ok, quoted
            "907;0000000;99999999;100;ООО X;Москва;Москва;1",  # 11 До too long
        ]
    )
    ranges, errors = parse_registry(text, "DEF-9xx.csv")
    assert [r.code for r in ranges] == [900, 906]
    assert ranges[1].operator == 'ООО "Кавычки"'
    assert [e.line for e in errors] == [3, 4, 5, 6, 8, 9, 11]
    assert str(errors[0]).startswith("DEF-9xx.csv:3: ")
    assert "3 digits" in errors[0].message
    assert "after" in errors[1].message
    assert "expected 8 fields" in errors[3].message


def test_not_a_registry() -> None:
    ranges, errors = parse_registry("name;phone\nИван;123\n", "x.csv")
    assert ranges == [] and len(errors) == 1 and errors[0].line == 1
    assert parse_registry("", "empty.csv")[1][0].message.startswith("empty")


def test_lookup(index: NumberingIndex) -> None:
    r = index.lookup("+79000061999")
    assert r is not None and r.region == "Краснодарский край"
    r = index.lookup("+79000062000")
    assert r is not None and r.region == "Ростовская обл."
    assert index.lookup("+79000100000") is None  # gap after the last 900 range
    assert index.lookup("+79020000000") is None  # code not in the sample
    assert index.lookup("+380441234567") is None
    assert index.lookup("garbage") is None
    r = index.lookup("+74957304487")
    assert r is not None and r.code == 495


def test_lookup_matches_linear_scan_on_many_ranges() -> None:
    rnd = random.Random(7)
    ranges = []
    for code in range(900, 1000):
        start = 0
        while start < 10_000_000:
            size = rnd.randint(1, 3_000_000)
            if rnd.random() < 0.8:
                ranges.append(NumberRange(code, start, min(start + size, 10_000_000) - 1, "op", "r"))
            start += size
    idx = NumberingIndex(reversed(ranges))
    assert len(idx) == len(ranges)
    for _ in range(2000):
        n = rnd.randrange(9_000_000_000, 10_000_000_000)
        e164 = f"+7{n}"
        expected = [r for r in ranges if r.code == n // 10_000_000 and r.start <= n % 10_000_000 <= r.end]
        assert idx.lookup(e164) == (expected[0] if expected else None)


def test_region_table_covers_all_subjects(zones: RegionZones) -> None:
    offsets = {
        "Калининградская область": "Europe/Kaliningrad",
        "г. Москва": "Europe/Moscow",
        "Самарская обл.": "Europe/Samara",
        "Свердловская область": "Asia/Yekaterinburg",
        "Омская обл.": "Asia/Omsk",
        "Красноярский край": "Asia/Krasnoyarsk",
        "Иркутская область": "Asia/Irkutsk",
        "Республика Саха /Якутия/": "Asia/Yakutsk",
        "Приморский край": "Asia/Vladivostok",
        "Магаданская обл.": "Asia/Magadan",
        "Камчатский край": "Asia/Kamchatka",
    }
    for name, tz in offsets.items():
        assert zones.zone_for(name) == tz, name
    # 85 subjects + 4 listed in the registry since 2022, each with its own entry
    root = load_yaml_file(CONFIG / "region_zones.yaml")
    subjects = [item.as_str() for _, regions in root.require("zones").items() for item in regions.as_list()]
    assert len(subjects) == 89


@pytest.mark.parametrize(
    ("name", "tz"),
    [
        ("Республика Татарстан (Татарстан)", "Europe/Moscow"),
        ("Татарстан Республика", "Europe/Moscow"),
        ("Респ. Башкортостан", "Asia/Yekaterinburg"),
        ("г.о. Тольятти|Самарская обл.", "Europe/Samara"),
        ("Ханты - Мансийский - Югра АО", "Asia/Yekaterinburg"),
        ("Ямало-Ненецкий АО", "Asia/Yekaterinburg"),
        ("Кемеровская область - Кузбасс", "Asia/Novokuznetsk"),
        ("Чувашская Республика - Чувашия", "Europe/Moscow"),
        ("г. Санкт-Петербург и Ленинградская область", "Europe/Moscow"),
        ("Чукотский АО", "Asia/Anadyr"),
        ("ЁЛКИ", None),
        ("-", None),
        ("", None),
    ],
)
def test_region_name_variants(zones: RegionZones, name: str, tz: str | None) -> None:
    assert zones.zone_for(name) == tz


def test_normalise_region() -> None:
    assert normalise_region("  Г. Москва ") == "москва"
    assert normalise_region("Республика Марий Эл") == normalise_region("Марий Эл Республика") == "марий эл"
    assert normalise_region("Орловская обл.") == "орловская область"
    assert normalise_region("Алёшино") == "алешино"


def test_region_zones_errors() -> None:
    with pytest.raises(ConfigError) as info:
        RegionZones.from_text("zones:\n  Europe/Moskva:\n    - Москва\n", "rz.yaml")
    assert info.value.line == 2 and "Europe/Moskva" in str(info.value)
    with pytest.raises(ConfigError) as info:
        RegionZones.from_text("zones:\n  Europe/Moscow: [Москва]\n  Asia/Omsk: [г. Москва]\n", "rz.yaml")
    assert info.value.line == 3 and "already mapped" in str(info.value)
    with pytest.raises(ConfigError, match="unknown region"):
        RegionZones.from_text("zones:\n  Europe/Moscow: [Москва]\naliases:\n  Мск: Масква\n", "rz.yaml")


def test_resolve_timezone(index: NumberingIndex, zones: RegionZones) -> None:
    d = "Europe/Moscow"
    # fixed line: phonenumbers knows
    assert resolve_timezone("+73832123456", "fixed", index, zones, d) == ("Asia/Novosibirsk", "fixed_line")
    # mobile: the registry
    assert resolve_timezone("+79140500000", "mobile", index, zones, d) == ("Asia/Kamchatka", "registry")
    assert resolve_timezone("+79130000001", "mobile", index, zones, d) == ("Asia/Novosibirsk", "registry")
    # dash region, territory «город|регион»
    assert resolve_timezone("+79520000001", "mobile", index, zones, d) == ("Europe/Samara", "registry")
    # not in the registry, or no registry imported: the campaign's zone
    assert resolve_timezone("+79020000000", "mobile", index, zones, d) == (d, "campaign")
    assert resolve_timezone("+79140500000", "mobile", None, None, "Asia/Omsk") == ("Asia/Omsk", "campaign")


def test_sample_read_with_bom_through_file(tmp_path: Path) -> None:
    # callers may read with plain utf-8: the BOM stays in the text and the parser drops it
    ranges, errors = parse_registry((DATA / "DEF-9xx-sample.csv").read_bytes().decode("utf-8"), "x")
    assert errors == [] and len(ranges) == 20
