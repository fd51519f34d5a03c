from __future__ import annotations

import pytest

from dialer.domain.model import NumberProblem
from dialer.domain.phone import fixed_line_timezone, normalise


@pytest.mark.parametrize(
    "raw",
    [
        "89057708945",
        "8 905 770 89 45",
        "+7 (905) 7708945",
        "+7-905-770-89-45",
        "79057708945",
        "9057708945",
        "  8(905)770-89-45  ",
        "8.905.770.89.45",
    ],
)
def test_accepts_usual_spellings_of_one_mobile(raw: str) -> None:
    n = normalise(raw)
    assert n.e164 == "+79057708945"
    assert n.problem is None
    assert n.number_type == "mobile"
    assert n.ok


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("", NumberProblem.MISSING),
        ("   ", NumberProblem.MISSING),
        ("нет", NumberProblem.NOT_A_NUMBER),
        ("8905abc8945", NumberProblem.NOT_A_NUMBER),
        ("+7 905 770 89 45 / 8 916 000 00 01", NumberProblem.NOT_A_NUMBER),  # two numbers in one cell
        ("8 916 000 00 01, 8 916 000 00 02", NumberProblem.NOT_A_NUMBER),
        ("доб. 123", NumberProblem.NOT_A_NUMBER),  # an extension without a number
        ("8 495 123 45 67 доб.", NumberProblem.NOT_A_NUMBER),  # «доб.» without digits
        ("8 495 12 доб. 3", NumberProblem.TOO_SHORT),  # the number part decides
        ("+7 ( )", NumberProblem.MISSING),  # the example card of docs/rules.md §3.2: «Мобильный телефон: +7 ( )»
        ("8 (   )   -  -", NumberProblem.MISSING),
        ("()-", NumberProblem.MISSING),
        ("12345", NumberProblem.TOO_SHORT),
        ("8905770894", NumberProblem.TOO_SHORT),  # trunk 8 + 9 digits
        ("+7 905 770 89", NumberProblem.TOO_SHORT),
        ("890577089451", NumberProblem.TOO_LONG),
        ("+7 905 770 89 45 1", NumberProblem.TOO_LONG),
        ("+7 701 234 56 78", NumberProblem.INVALID_FOR_REGION),  # Kazakhstan shares +7
        ("+380 44 123 45 67", NumberProblem.INVALID_FOR_REGION),
        ("+7 100 123 45 67", NumberProblem.INVALID_FOR_REGION),  # no such prefix
    ],
)
def test_rejects_with_reason(raw: str, problem: NumberProblem) -> None:
    n = normalise(raw)
    assert n.e164 is None
    assert n.problem is problem
    assert n.number_type == "unknown"


@pytest.mark.parametrize(
    ("raw", "extension"),
    [
        ("8 (495) 123-45-67 доб. 123", "123"),
        ("8 (495) 123-45-67 доб 123", "123"),
        ("8 (495) 123-45-67 ДОБ.123", "123"),
        ("8 495 123 45 67 добавочный 1234", "1234"),
        ("8 (495) 123-45-67 (доб. 12)", "12"),
        ("8 495 123 45 67 вн. 22", "22"),
        ("+7 495 123-45-67 ext. 123", "123"),
        ("+7 495 123-45-67 ext 5", "5"),
        ("+7 495 123-45-67 x77", "77"),
        ("8(495)123-45-67,123", "123"),
        ("8 (495) 123-45-67, 123", "123"),
        ("8 (495) 123-45-67 #12", "12"),
    ],
)
def test_an_extension_is_split_off_and_the_number_stays_valid(raw: str, extension: str) -> None:
    n = normalise(raw)
    assert (n.e164, n.problem, n.extension) == ("+74951234567", None, extension)
    assert n.number_type == "fixed"


def test_a_number_without_an_extension_has_none() -> None:
    assert normalise("8 495 123 45 67").extension is None
    assert normalise("нет").extension is None


def test_number_types() -> None:
    assert normalise("+7 495 730-44-87").number_type == "fixed"
    assert normalise("8 800 100 20 30").number_type == "other"  # toll-free is dialable, not mobile


def test_fixed_line_timezone() -> None:
    assert fixed_line_timezone("+74957304487") == "Europe/Moscow"
    assert fixed_line_timezone("+73832123456") == "Asia/Novosibirsk"
    # phonenumbers says Europe/Bucharest (same offset, but with DST): corrected.
    assert fixed_line_timezone("+74012123456") == "Europe/Kaliningrad"
    assert fixed_line_timezone("+79057708945") is None  # mobile: every zone of Russia
    assert fixed_line_timezone("not a number") is None
