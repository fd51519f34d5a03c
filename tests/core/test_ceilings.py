"""Ceilings that keep the code in rooms a newcomer can read: no function over 60 lines in the
project's Python (the database migrations aside: each is one linear script), and ruff's
complexity limit (C90, max 13) in pyproject.toml, which `scripts/test.sh` runs."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 60


def long_functions(root: Path, base: Path = ROOT, max_lines: int = MAX_LINES) -> list[str]:
    out = []
    for path in sorted(root.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                if n > max_lines:
                    out.append(f"{path.relative_to(base)}:{node.lineno} {node.name} ({n} lines)")
    return out


def test_no_function_is_over_sixty_lines() -> None:
    found = [f for d in ("dialer", "tests", "bench") for f in long_functions(ROOT / d)]
    assert found == [], "\n".join(found)


def test_the_checker_sees_a_long_function(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(60))
    (tmp_path / "m.py").write_text(f"def short():\n    pass\n\n\ndef long():\n{body}\n", encoding="utf-8")
    assert long_functions(tmp_path, base=tmp_path) == ["m.py:5 long (61 lines)"]


def test_ruff_enforces_the_complexity_ceiling() -> None:
    lint = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["ruff"]["lint"]
    assert "C90" in lint["select"] and lint["mccabe"]["max-complexity"] == 13
    mypy = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]
    assert set(mypy["files"]) == {"dialer", "tests", "bench"} and mypy["strict"] is True
