"""Catalogue loading and validation: every problem names the file and the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from dialer.asr.catalogue import load_catalogue, parse_catalogue
from dialer.domain.model import CallClass
from dialer.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_catalogue_loads_and_covers_every_announcement_class() -> None:
    cat = load_catalogue(ROOT / "config" / "phrases.yaml")
    expected = {
        CallClass.ANN_TEMPORARILY_UNAVAILABLE, CallClass.ANN_SWITCHED_OFF, CallClass.ANN_NOT_REGISTERED,
        CallClass.ANN_TEMPORARILY_BLOCKED, CallClass.ANN_SUSPENDED, CallClass.ANN_SERVICE_NOT_AVAILABLE,
        CallClass.ANN_CONNECTION_IMPOSSIBLE, CallClass.ANN_NETWORK_CONGESTED, CallClass.ANN_SUBSCRIBER_BUSY,
        CallClass.ANN_ABROAD, CallClass.ANN_STILL_TRYING, CallClass.ANN_NOT_IN_SERVICE, CallClass.ANN_BLOCKED,
        CallClass.ANN_WRONG_NUMBER, CallClass.ANN_DOES_NOT_EXIST, CallClass.ANN_FOR_SALE,
        CallClass.ANN_DISCONNECTED, CallClass.ANN_NUMBER_CHANGED, CallClass.VOICEMAIL, CallClass.IVR,
        CallClass.PERSON,
    }  # fmt: skip
    assert cat.classes() == expected
    assert "временно" in cat.qualifiers
    person = [p for p in cat.phrases if p.call_class is CallClass.PERSON]
    assert person and all(p.hint for p in person)
    assert not any(p.hint for p in cat.phrases if p.call_class is not CallClass.PERSON)


def test_shipped_korean_catalogue_loads() -> None:
    cat = load_catalogue(ROOT / "config" / "phrases_ko.yaml")
    assert CallClass.VOICEMAIL in cat.classes()
    assert len(cat) >= 3


def test_qualifiers_become_required_or_forbidden() -> None:
    cat = parse_catalogue(
        "version: 1\nqualifiers: [временно]\nphrases:\n"
        "  ann_blocked: [номер заблокирован]\n"
        "  ann_temporarily_blocked: [номер временно заблокирован]\n",
        "t.yaml",
    )
    blocked, temp = cat.phrases
    assert blocked.forbid == {"временно"} and not blocked.require
    assert temp.require == {"временно"} and not temp.forbid


def test_words_keep_the_spelling_for_the_grammar() -> None:
    cat = parse_catalogue("phrases:\n  ann_number_changed: ['Номер изменён!']\n", "t.yaml")
    (p,) = cat.phrases
    assert p.words == ("номер", "изменён")
    assert p.tokens == ("номер", "изменен")
    assert cat.vocabulary() == ["изменён", "номер"]
    assert cat.grammar_phrases() == ["номер изменён"]


def test_mapping_entry_with_require_and_forbid() -> None:
    cat = parse_catalogue(
        "phrases:\n  voicemail:\n    - {say: оставьте сообщение, require: [сообщение], forbid: [оператора]}\n",
        "t.yaml",
    )
    (p,) = cat.phrases
    assert p.require == {"сообщение"} and p.forbid == {"оператора"} and p.line == 3


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("phrases:\n  ann_blocked:\n    - номер заблокирован\n  no_such_class:\n    - x\n", 4, "unknown call class"),
        ("phrases:\n  ann_blocked:\n    - номер заблокирован\n    - ''\n", 4, "empty phrase"),
        ("phrases:\n  ann_blocked:\n    - номер заблокирован\n    -\n", 4, "empty phrase"),
        ("phrases:\n  ann_blocked:\n    - '!!! ...'\n", 3, "has no words"),
        (
            "phrases:\n  ann_blocked:\n    - номер заблокирован\n  ann_temporarily_blocked:\n"
            "    - Номер  заблокирован.\n",
            5,
            "to 'ann_blocked' at line 3",
        ),
        ("phrases:\n  ann_blocked:\n    - номер заблокирован\n    - номер заблокирован\n", 4, "duplicate"),
        ("phrases:\n  ann_blocked: []\n", 2, "non-empty list"),
        ("phrases:\n  ann_blocked: номер\n", 2, "non-empty list"),
        ("phrasez:\n  ann_blocked: [номер]\n", 1, "unknown key 'phrasez'"),
        ("version: 2\nphrases:\n  ann_blocked: [номер]\n", 1, "unsupported version"),
        ("phrases:\n  ann_blocked:\n    - {say: номер, require: [абонент]}\n", 3, "not in the phrase"),
        ("phrases:\n  ann_blocked:\n    - {say: номер, forbid: [номер]}\n", 3, "words of the phrase"),
        ("phrases:\n  ann_blocked:\n    - {text: номер}\n", 3, "unknown key 'text'"),
        ("phrases:\n  ann_blocked:\n    - {require: [номер]}\n", 3, "without 'say'"),
        ("phrases:\n  ann_blocked:\n    - [номер]\n", 3, "must be text"),
        ("phrases:\n  ann_blocked:\n    - номер\n  - broken\n", 4, "not valid YAML"),
        ("hints:\n  person: [алло]\n", 1, "no 'phrases' section"),
        ("qualifiers: временно\nphrases:\n  ann_blocked: [номер]\n", 1, "must be a list"),
    ],
)
def test_bad_catalogue_names_file_line_and_problem(text: str, line: int, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_catalogue(text, "phrases.yaml")
    assert info.value.source == "phrases.yaml"
    assert info.value.line == line
    assert fragment in str(info.value)
    assert str(info.value).startswith(f"phrases.yaml:{line}: ")


def test_empty_file_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="empty file"):
        parse_catalogue("# nothing\n", "p.yaml")
    with pytest.raises(ConfigError, match="not found") as info:
        load_catalogue(tmp_path / "nope.yaml")
    assert info.value.source == str(tmp_path / "nope.yaml")


def test_ops_engineer_adds_a_phrase(tmp_path: Path) -> None:
    """The documented way: append a line under a class, and it is picked up and matched."""
    from dialer.asr.matcher import PhraseMatcher

    src = (ROOT / "config" / "phrases.yaml").read_text(encoding="utf-8")
    marker = "  ann_number_changed:\n"
    assert marker in src
    edited = src.replace(marker, marker + "    - абонент поменял номер телефона\n")
    path = tmp_path / "phrases.yaml"
    path.write_text(edited, encoding="utf-8")
    cat = load_catalogue(path)
    m = PhraseMatcher(cat).best_match("абонент поменял номер телефона")
    assert m is not None and m.call_class is CallClass.ANN_NUMBER_CHANGED
    assert m.phrase == "абонент поменял номер телефона"
