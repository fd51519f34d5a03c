"""An approved cluster becomes a known recording of the fingerprint library (``[paths]
announcements``), versioned, with who approved it and from which calls.

The library stays what an ops engineer edits by hand (``announcements.yaml`` + audio files); an
approval adds the cluster's representative clip as ``learned-<cluster>-v<version>.wav`` and one
entry to the index (its ``note`` says who approved it, when, and the library version), and writes
the full provenance to ``learned.json`` beside it: the library version (one more per change), and
per learned entry its cluster, class, approver, time and the calls it was heard on. The index is
checked with the worker's own loader after every change; a change that would break it is undone.
"""

from __future__ import annotations

import json
import re
import wave
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from dialer.audio.fingerprint import parse_index
from dialer.audio.frames import SAMPLE_RATE_HZ
from dialer.domain.model import CallClass
from dialer.errors import ConfigError, InputError
from dialer.learn.cluster import Cluster, ClusterStatus
from dialer.learn.segments import Int16Array

INDEX_FILE = "announcements.yaml"
LEARNED_FILE = "learned.json"
FROM_CALLS_IN_NOTE = 3
_LIST_LINE = re.compile(r"^announcements:\s*(\[\s*\])?\s*(#.*)?$")
_NEW_INDEX = "# Known announcements (see config/announcements/announcements.yaml for the format).\nannouncements:\n"


@dataclass(frozen=True, slots=True)
class Approved:
    name: str
    file: Path
    version: int
    call_class: CallClass


def library_version(directory: Path) -> int:
    return int(_read_learned(directory).get("version", 0))


def learned_entries(directory: Path) -> list[dict[str, Any]]:
    entries = _read_learned(directory).get("entries", [])
    return [e for e in entries if isinstance(e, dict)]


def approve(
    cluster: Cluster, call_class: CallClass, by: str, now: datetime, clip: Int16Array, directory: Path
) -> Approved:
    """Add ``cluster``'s clip to the library in ``directory`` as ``call_class``; mark it approved."""
    if cluster.status is ClusterStatus.APPROVED:
        raise InputError(f"cluster {cluster.id} is already in the library as {cluster.library_name}")
    if not by.strip():
        raise InputError("an approval names who approves it (--by)")
    if not len(clip):
        raise InputError(f"cluster {cluster.id}: its clip is gone from the learning store")
    directory.mkdir(parents=True, exist_ok=True)
    learned = _read_learned(directory)
    version = int(learned.get("version", 0)) + 1
    name = f"learned-{cluster.id}"
    wav = directory / f"{name}-v{version}.wav"
    _write_wav(wav, clip)
    calls = list(cluster.members)
    shown = ", ".join(calls[:FROM_CALLS_IN_NOTE]) + (f" (+{len(calls) - FROM_CALLS_IN_NOTE})" if len(calls) > 3 else "")
    note = (
        f"learned v{version}: approved by {by} {now.isoformat(timespec='seconds')} from {cluster.count} calls: {shown}"
    )
    _add_to_index(
        directory,
        name,
        wav,
        [
            f"  - name: {_q(name)}",
            f"    file: {_q(wav.name)}",
            f"    class: {call_class.value}",
            f"    text: {_q(cluster.best_text)}",
            f"    note: {_q(note)}",
        ],
    )
    at = now.isoformat()
    learned["version"] = version
    learned.setdefault("entries", []).append(
        {
            "name": name,
            "file": wav.name,
            "class": call_class.value,
            "text": cluster.best_text,
            "cluster": cluster.id,
            "approved_by": by,
            "approved_at": at,
            "from_calls": calls,
            "heard_on_calls": cluster.count,
            "carriers": dict(cluster.carriers),
            "proposed": cluster.proposed.value if cluster.proposed is not None else None,
            "version": version,
        }
    )
    learned.setdefault("history", []).append(
        {"version": version, "at": at, "by": by, "action": "approve", "name": name, "class": call_class.value}
    )
    _write_learned(directory, learned)
    cluster.status = ClusterStatus.APPROVED
    cluster.approved_class, cluster.approved_by, cluster.approved_at = call_class.value, by, at
    cluster.library_name, cluster.library_version = name, version
    return Approved(name, wav, version, call_class)


def _add_to_index(directory: Path, name: str, wav: Path, entry: list[str]) -> None:
    """Append ``entry`` (the lines of recording ``name``, file ``wav``) to the library's index; when the
    library would then not load, put the index back as it was, delete ``wav`` and say why."""
    index = directory / INDEX_FILE
    before = index.read_text(encoding="utf-8") if index.exists() else None
    index.write_text(_with_entry(before, entry), encoding="utf-8")
    try:
        parse_index(index)
    except ConfigError as exc:
        if before is None:
            index.unlink()
        else:
            index.write_text(before, encoding="utf-8")
        wav.unlink(missing_ok=True)
        raise InputError(f"{index}: the library would not load after adding {name} ({exc}); nothing changed") from None


def reject(cluster: Cluster, by: str, now: datetime, directory: Path) -> None:
    """Not worth a fingerprint: the cluster stays (it absorbs its repeats) and leaves the review."""
    if cluster.status is ClusterStatus.APPROVED:
        raise InputError(f"cluster {cluster.id} is in the library ({cluster.library_name}): remove it there")
    cluster.status = ClusterStatus.REJECTED
    cluster.rejected_by = by
    learned = _read_learned(directory)
    if directory.is_dir():
        learned.setdefault("history", []).append(
            {
                "version": int(learned.get("version", 0)),
                "at": now.isoformat(),
                "by": by,
                "action": "reject",
                "cluster": cluster.id,
            }
        )
        _write_learned(directory, learned)


def _with_entry(text: str | None, entry: list[str]) -> str:
    if text is None or not text.strip():
        return _NEW_INDEX + "\n".join(entry) + "\n"
    lines = text.rstrip("\n").split("\n")
    for i, line in enumerate(lines):
        if _LIST_LINE.match(line):
            lines[i] = "announcements:"
            break
    else:
        lines.append("announcements:")
    return "\n".join([*lines, *entry]) + "\n"


def _q(s: str) -> str:
    """A YAML double-quoted scalar (JSON's string syntax is one)."""
    return json.dumps(s, ensure_ascii=False)


def _write_wav(path: Path, clip: Int16Array) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE_HZ)
        w.writeframes(clip.astype("<i2").tobytes())


def _read_learned(directory: Path) -> dict[str, Any]:
    path = directory / LEARNED_FILE
    if not path.exists():
        return {"version": 0, "entries": [], "history": []}
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: {exc}") from None
    if not isinstance(d, dict):
        raise InputError(f"{path}: not a learned-library file")
    return d


def _write_learned(directory: Path, d: dict[str, Any]) -> None:
    path = directory / LEARNED_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(d, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)
