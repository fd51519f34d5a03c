"""YAML loading that remembers where every value came from.

Config files are edited by hand; an error that says ``rules.yaml:42: unknown result 'unavalable'``
saves the ops engineer a search. :func:`load_yaml` returns a tree of :class:`YNode` objects, each
carrying its 1-based line, with typed accessors that raise :class:`dialer.errors.ConfigError`
naming the file and line. Duplicate mapping keys are an error (PyYAML silently keeps the last).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dialer.errors import ConfigError

__all__ = ["YNode", "load_yaml", "load_yaml_file"]


@dataclass(frozen=True, slots=True)
class YNode:
    """One YAML value: a scalar (str/int/float/bool/None), a list of nodes or a str-keyed mapping."""

    value: Any  # scalar | list[YNode] | dict[str, YNode]
    line: int  # 1-based
    source: str
    key_lines: tuple[tuple[str, int], ...] = ()  # for mappings: the line of each key

    # --- errors -------------------------------------------------------------------------------
    def error(self, message: str) -> ConfigError:
        return ConfigError(message, source=self.source, line=self.line)

    def key_line(self, key: str) -> int:
        for k, line in self.key_lines:
            if k == key:
                return line
        return self.line

    def key_error(self, key: str, message: str) -> ConfigError:
        return ConfigError(message, source=self.source, line=self.key_line(key))

    # --- shape checks ---------------------------------------------------------------------------
    @property
    def is_mapping(self) -> bool:
        return isinstance(self.value, dict)

    def as_mapping(self, what: str = "value") -> dict[str, YNode]:
        if not isinstance(self.value, dict):
            raise self.error(f"{what} must be a mapping (key: value), got {_kind(self.value)}")
        return self.value

    def as_list(self, what: str = "value") -> list[YNode]:
        if not isinstance(self.value, list):
            raise self.error(f"{what} must be a list, got {_kind(self.value)}")
        return self.value

    def as_str(self, what: str = "value", *, allow_empty: bool = False) -> str:
        if not isinstance(self.value, str):
            raise self.error(f"{what} must be text, got {_kind(self.value)}")
        if not allow_empty and not self.value.strip():
            raise self.error(f"{what} must not be empty")
        return self.value

    def as_int(self, what: str = "value") -> int:
        if isinstance(self.value, bool) or not isinstance(self.value, int):
            raise self.error(f"{what} must be a whole number, got {_kind(self.value)} {self.value!r}")
        return self.value

    def as_bool(self, what: str = "value") -> bool:
        if not isinstance(self.value, bool):
            raise self.error(f"{what} must be true or false, got {self.value!r}")
        return self.value

    # --- mapping helpers -------------------------------------------------------------------------
    def get(self, key: str) -> YNode | None:
        return self.as_mapping().get(key)

    def require(self, key: str, what: str | None = None) -> YNode:
        node = self.as_mapping().get(key)
        if node is None:
            raise self.error(f"missing {what or repr(key)}")
        return node

    def items(self) -> Iterator[tuple[str, YNode]]:
        yield from self.as_mapping().items()

    def check_keys(self, allowed: set[str] | frozenset[str], what: str = "entry") -> None:
        """Reject unknown keys (typos such as ``setle_at``) with the key's own line."""
        for key in self.as_mapping():
            if key not in allowed:
                raise self.key_error(key, f"unknown field {key!r} in {what} (allowed: {', '.join(sorted(allowed))})")

    def plain(self) -> Any:
        """The value without line information (nested dicts/lists/scalars)."""
        if isinstance(self.value, dict):
            return {k: v.plain() for k, v in self.value.items()}
        if isinstance(self.value, list):
            return [v.plain() for v in self.value]
        return self.value


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return "text"


def _convert(node: yaml.Node, constructor: yaml.SafeLoader, source: str) -> YNode:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, YNode] = {}
        key_lines: list[tuple[str, int]] = []
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            key = constructor.construct_object(key_node, deep=True)
            if isinstance(key, bool) or key is None or isinstance(key, (list, dict)):
                raise ConfigError(f"mapping key must be text, got {key!r}", source=source, line=key_line)
            key = str(key)
            if key in out:
                raise ConfigError(f"duplicate key {key!r}", source=source, line=key_line)
            out[key] = _convert(value_node, constructor, source)
            key_lines.append((key, key_line))
        return YNode(out, line, source, tuple(key_lines))
    if isinstance(node, yaml.SequenceNode):
        return YNode([_convert(item, constructor, source) for item in node.value], line, source)
    try:
        value = constructor.construct_object(node, deep=True)
    except ValueError as exc:  # an impossible date such as 2026-13-01 (PyYAML raises a bare ValueError)
        raise ConfigError(f"bad value {node.value!r}: {exc}", source=source, line=line) from None
    return YNode(value, line, source)


def load_yaml(text: str, source: str) -> YNode:
    """Parse YAML ``text``; ``source`` names it in errors. An empty document is an empty mapping."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or str(exc)
        raise ConfigError(f"YAML syntax error: {problem}", source=source, line=line) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"YAML error: {exc}", source=source) from None
    if root is None:
        return YNode({}, 1, source)
    constructor = yaml.SafeLoader("")
    try:
        return _convert(root, constructor, source)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise ConfigError(f"YAML error: {exc.problem}", source=source, line=mark.line + 1 if mark else None) from None


def load_yaml_file(path: Path) -> YNode:
    """Read and parse ``path`` (UTF-8, a BOM is tolerated)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError("file not found", source=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", source=str(path)) from None
    return load_yaml(text, str(path))
