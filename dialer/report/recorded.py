"""Decision latencies of a campaign's recorded calls (``[recording]``): the database does not keep
them, the recordings do — the decision's time and the first audio frame's, both on the call's
clock. Reads only each call's ``call.json`` and the head of its ``events.jsonl`` (never the audio)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from dialer.session.recording import CALL_FILE, EVENTS_FILE, call_dirs


def decision_latencies_s(
    root: Path, campaign: str, since: datetime | None = None, until: datetime | None = None
) -> list[float]:
    """Seconds from the first audio frame to the decision, per recorded call of ``campaign``
    started in [since, until); calls without audio or without a decision are left out."""
    out = []
    for call in call_dirs(root):
        try:
            meta = json.loads((call / CALL_FILE).read_text(encoding="utf-8"))
            if meta.get("campaign") != campaign:
                continue
            started = datetime.fromisoformat(str(meta["started_at"]))
            if (since is not None and started < since) or (until is not None and started >= until):
                continue
            decided = (meta.get("decision") or {}).get("decided_at_ms")
            first = _first_frame_ms(call / EVENTS_FILE)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue  # a damaged or half-written call says nothing about latency
        if decided is not None and first is not None and decided >= first:
            out.append((int(decided) - first) / 1000)
    return out


def _first_frame_ms(events: Path) -> int | None:
    with events.open(encoding="utf-8") as fh:
        for line in fh:
            if '"k":"frame"' in line:
                return int(json.loads(line)["t"])
    return None
