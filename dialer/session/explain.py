"""``dialer replay --explain``: a recorded call's timeline in words — when each signal arrived,
what the session concluded and why, and the dead air after a greeting."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dialer.session.recording import Recording
from dialer.session.replay import Replayed

FRAME_TOLERANCE_MS = 20  # a replay's ticks fire at the deadline; live timers a little after it


def verdict(res: Replayed) -> dict[str, Any] | None:
    ev = res.session.evidence
    if ev is None or res.action is None:
        return None
    return {
        "call_class": ev.call_class.value,
        "action": res.action.value,
        "confidence": ev.confidence,
        "reason": ev.reason,
        "decided_at_ms": res.decided_at_ms,
    }


def same_decision(live: Mapping[str, Any] | None, replayed: Mapping[str, Any] | None) -> bool:
    """Same class and action, decided within one frame of each other."""
    if live is None or replayed is None:
        return live is replayed
    a, b = live.get("decided_at_ms"), replayed.get("decided_at_ms")
    close = a is not None and b is not None and abs(int(a) - int(b)) <= FRAME_TOLERANCE_MS
    return live.get("call_class") == replayed["call_class"] and live.get("action") == replayed["action"] and close


def describe(v: Mapping[str, Any] | None) -> str:
    if v is None:
        return "no decision"
    return f"{v['action']} {v['call_class']} ({float(v['confidence']):.2f}) at {v['decided_at_ms']} ms — {v['reason']}"


def explain(rec: Recording, res: Replayed, *, timeline: bool = True) -> str:
    m = rec.meta
    lines = [
        f"call {m.get('attempt_id')}: campaign {m.get('campaign')}, contact {m.get('contact')}, "
        f"attempt {m.get('attempt_no')}, started {m.get('started_at')}",
        f"speech recognition: {m.get('engine') or 'none'}; audio analysed: {'yes' if m.get('audio', True) else 'no'}",
        f"live:   {describe(rec.decision)}",
    ]
    mine = verdict(res)
    same = same_decision(rec.decision, mine)
    lines.append(f"replay: {describe(mine)}" + ("  [same as live]" if same else "  [DIFFERS from live]"))
    if rec.label is not None:
        lines.append(f"label:  {rec.label.get('call_class')} (by {rec.label.get('by')})")
    dead = res.session.dead_air_ms
    if res.action is not None and res.action.value == "hand_to_operator":
        lines.append(
            "dead air after the greeting: "
            + (f"{dead} ms" if dead is not None else "n/a (no greeting heard after the answer)")
        )
    if timeline:
        lines.append("")
        lines.append(f"{'ms':>7}  {'what':11} detail")
        for st in res.session.trace:
            lines.append(f"{st.at_ms:7d}  {st.kind:11} {st.text}")
    return "\n".join(lines)
