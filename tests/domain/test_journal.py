from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialer.domain.journal import append, append_line, format_line

DAY = date(2026, 1, 4)


def test_format_line() -> None:
    assert format_line(DAY, "Не отвечает") == "04/01 Не отвечает"
    assert format_line(date(2026, 12, 31), "  Занято ") == "31/12 Занято"
    assert format_line(DAY, "Клиент\r\nпросит\nперезвонить") == "04/01 Клиент просит перезвонить"
    with pytest.raises(ValueError):
        format_line(DAY, " \n ")


def test_empty_journal_gets_just_the_line() -> None:
    assert append("", DAY, "Не отвечает") == "04/01 Не отвечает"


def test_journal_ending_with_newline_is_not_given_another() -> None:
    assert append("15/04 не отвечает\n", DAY, "Занято") == "15/04 не отвечает\n04/01 Занято"


def test_odd_journal_survives_byte_for_byte() -> None:
    odd = (
        "ВНИМАНИЕ, НЕ ЗВОНИТЬ КЛИЕНТУ!  \r\n"
        "\r\n"
        "\t15/04 не отвечает   \r\n"
        '17/04 Клиент отказался от анкетирования. Со слов клиента. "....я уже отвечал"  \u00a0'
    )
    out = append(odd, DAY, "Абонент временно недоступен")
    assert out.startswith(odd)
    assert out.encode("utf-8")[: len(odd.encode("utf-8"))] == odd.encode("utf-8")
    # the separator follows the journal's own CRLF style
    assert out[len(odd) :] == "\r\n04/01 Абонент временно недоступен"
    twice = append(out, date(2026, 1, 5), "Не отвечает")
    assert twice.startswith(out)
    assert twice.endswith("\r\n05/01 Не отвечает")


def test_single_line_journal_gets_lf() -> None:
    assert append("заметка оператора", DAY, "Занято") == "заметка оператора\n04/01 Занято"


@given(journal=st.text(), text=st.text(min_size=1).filter(lambda t: any(p.strip() for p in t.splitlines())))
def test_append_preserves_every_earlier_byte(journal: str, text: str) -> None:
    out = append(journal, DAY, text)
    assert out.startswith(journal)
    added = out[len(journal) :]
    line = format_line(DAY, text)
    assert added.endswith(line)
    separator = added[: -len(line)]
    assert separator in ("", "\n", "\r\n", "\r")
    if journal == "" or journal.endswith(("\n", "\r")):
        assert separator == ""
    else:
        assert separator != ""
    assert "\n" not in line and "\r" not in line


@given(st.lists(st.sampled_from(["\n", "\r\n", "x", "  ", "é", "Ж"]), max_size=30).map("".join))
def test_append_line_idempotent_structure(journal: str) -> None:
    once = append_line(journal, "04/01 A")
    twice = append_line(once, "05/01 B")
    assert twice.startswith(once) and once.startswith(journal)
    assert twice.endswith("05/01 B")
