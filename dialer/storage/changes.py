"""Persisting the contact rule's changes (dialer.domain.contact_rule): the rule decides, these
map the stored row to its input and its change back to columns."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from dialer.domain.contact_rule import (
    ContactChange,
    ContactNow,
)
from dialer.domain.model import (
    ContactState,
    Evidence,
    Outcome,
    ResultCode,
)
from dialer.errors import StorageError
from dialer.storage.notify import ContactRef
from dialer.storage.tables import (
    campaigns,
    contacts,
)


def contact_now(c: RowMapping, number_blocked: bool = False) -> ContactNow:
    plan = c["callback_plan"]
    return ContactNow(
        ContactState(c["state"]),
        ResultCode(c["result"]) if c["result"] else None,
        bool(c["incorrect_contact"]),
        c["journal"],
        c["next_due_at"],
        int(c["attempts_made"]),
        None if plan is None else tuple(datetime.fromisoformat(t) for t in plan),
        number_blocked,
    )


def contact_ref(c: RowMapping) -> ContactRef:
    return ContactRef(c["campaign_name"], int(c["id"]), c["external_id"], c["e164"])


def change_columns(change: ContactChange) -> dict[str, Any]:
    """The contact columns a change sets (the rest stay as stored)."""
    v: dict[str, Any] = {
        "state": change.state.value,
        "attempts_made": change.attempts_made,
        "journal": change.journal,
        "result": change.result.value if change.result else None,
        "incorrect_contact": change.incorrect_contact,
        "next_due_at": change.next_due_at,
    }
    if change.next_attempt_kind is not None:
        v["next_attempt_kind"] = change.next_attempt_kind.value
    if not change.keeps_plan:
        plan = change.callback_plan
        v["callback_plan"] = None if plan is None else [t.isoformat() for t in plan]
    return v


def verdict_columns(evidence: Evidence, outcome: Outcome) -> dict[str, Any]:
    """The attempt columns of its verdict: what was seen and what was decided."""
    return {
        "call_class": evidence.call_class.value,
        "confidence": evidence.confidence,
        "reason": evidence.reason,
        "hangup_cause": evidence.hangup_cause,
        "dial_status": evidence.dial_status,
        "answered": evidence.answered,
        "asr_text": evidence.asr_text,
        "result": outcome.result.value if outcome.result else None,
        "incorrect_contact": outcome.incorrect_contact,
        "rule": outcome.rule,
        "journal_line": outcome.journal_line,
        "dead_air_ms": evidence.dead_air_ms,
        "queue_wait_ms": evidence.queue_wait_ms,
        "operator": evidence.operator,
        "decision_ms": evidence.decision_ms,
    }


async def locked_contact(conn: AsyncConnection, contact_id: int, *, lock: bool) -> RowMapping:
    """The contact row with its campaign's name; ``lock``: for the change (PostgreSQL)."""
    c = await find_contact(conn, contact_id, lock=lock)
    if c is None:
        raise StorageError(f"no contact {contact_id}")
    return c


async def find_contact(conn: AsyncConnection, contact_id: int, *, lock: bool) -> RowMapping | None:
    """:func:`locked_contact`, None when there is no such contact."""
    q = sa.select(contacts, campaigns.c.name.label("campaign_name")).join(campaigns)
    q = q.where(contacts.c.id == contact_id)
    if lock:
        q = q.with_for_update(of=contacts)
    return (await conn.execute(q)).mappings().first()
