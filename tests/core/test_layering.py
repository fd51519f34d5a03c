"""The storage never builds an event (issue 15): no module under dialer/storage imports the events
package; it is handed a notifier (dialer.storage.notify) by the composition root instead."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(path: Path, package: str) -> set[str]:
    """Absolute names of every module ``path`` imports (``package`` resolves relative imports;
    ``from a import b`` yields both ``a`` and ``a.b``, as b may be a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def imports_of(root: Path, package: str, forbidden: str) -> list[str]:
    out: list[str] = []
    for path in sorted(root.rglob("*.py")):
        sub = path.relative_to(root).with_suffix("").parts
        module_package = ".".join([package, *sub[:-1]])
        bad = sorted(
            m for m in imported_modules(path, module_package) if m == forbidden or m.startswith(forbidden + ".")
        )
        out.extend(f"{path.relative_to(root)}: {m}" for m in bad)
    return out


def test_no_storage_module_imports_the_events_package() -> None:
    found = imports_of(ROOT / "dialer" / "storage", "dialer.storage", "dialer.events")
    assert found == [], "\n".join(found)


def test_the_checker_sees_every_form_of_import(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.py").write_text("from dialer.events import payloads\n", encoding="utf-8")
    (tmp_path / "b.py").write_text("import dialer.events.notifier\n", encoding="utf-8")
    (tmp_path / "c.py").write_text("from dialer import events\n", encoding="utf-8")
    (tmp_path / "sub" / "d.py").write_text("from ...events.payloads import OutboxEvent\n", encoding="utf-8")
    (tmp_path / "e.py").write_text(
        "from dialer.eventsx import y\nfrom dialer.storage import outbox\n", encoding="utf-8"
    )
    assert imports_of(tmp_path, "dialer.storage", "dialer.events") == [
        "a.py: dialer.events",
        "a.py: dialer.events.payloads",
        "b.py: dialer.events.notifier",
        "c.py: dialer.events",
        "sub/d.py: dialer.events.payloads",
        "sub/d.py: dialer.events.payloads.OutboxEvent",
    ]
