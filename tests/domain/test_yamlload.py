from __future__ import annotations

from pathlib import Path

import pytest

from dialer.errors import ConfigError
from dialer.yamlload import load_yaml, load_yaml_file


def test_lines_and_accessors() -> None:
    root = load_yaml("a: 1\nb:\n  - x\n  - y\nc: {d: true}\n", "f.yaml")
    assert root.require("a").as_int() == 1 and root.require("a").line == 1
    items = root.require("b").as_list()
    assert [i.as_str() for i in items] == ["x", "y"] and [i.line for i in items] == [3, 4]
    assert root.require("c").require("d").as_bool() is True
    assert root.key_line("c") == 5
    assert root.plain() == {"a": 1, "b": ["x", "y"], "c": {"d": True}}


def test_type_errors_name_file_and_line() -> None:
    root = load_yaml("a: text\nb: 3\n", "f.yaml")
    with pytest.raises(ConfigError, match=r"^f\.yaml:1: a must be a whole number"):
        root.require("a").as_int("a")
    with pytest.raises(ConfigError, match=r"^f\.yaml:2: b must be text"):
        root.require("b").as_str("b")
    with pytest.raises(ConfigError, match="missing 'zz'"):
        root.require("zz")
    with pytest.raises(ConfigError, match=r"^f\.yaml:2: unknown field 'b'"):
        root.check_keys({"a"})


def test_duplicate_keys_and_syntax_errors() -> None:
    with pytest.raises(ConfigError, match=r"^f\.yaml:3: duplicate key 'a'"):
        load_yaml("a: 1\nb: 2\na: 3\n", "f.yaml")
    with pytest.raises(ConfigError) as info:
        load_yaml("a: [1, 2\nb: 3\n", "f.yaml")
    assert info.value.line is not None and "syntax" in str(info.value)


def test_empty_document_and_files(tmp_path: Path) -> None:
    assert load_yaml("", "f").plain() == {}
    p = tmp_path / "x.yaml"
    p.write_bytes("\ufeffключ: значение\n".encode())
    assert load_yaml_file(p).require("ключ").as_str() == "значение"
    with pytest.raises(ConfigError, match="file not found"):
        load_yaml_file(tmp_path / "missing.yaml")
