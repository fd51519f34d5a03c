"""Shared pieces of the storage modules: the row ↔ domain mapping, the base of every store,
and small SQL helpers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import RowMapping

from dialer.domain.model import (
    CardFlag,
    Contact,
    ContactState,
    ExclusionKind,
    NumberProblem,
    OwnerKind,
    ResultCode,
)
from dialer.storage.db import Database

if TYPE_CHECKING:  # notify imports the outbox, which imports this module
    from dialer.storage.notify import Notifier

ATTEMPT_IN_PROGRESS: Final = "in_progress"
ATTEMPT_FINISHED: Final = "finished"
BLOCKING_KINDS: Final = tuple(k.value for k in ExclusionKind if k.blocks_calls)

# A contact no worker holds.
UNCLAIMED: Final[dict[str, Any]] = {
    "claimed_by": None,
    "claimed_at": None,
    "claim_token": None,
    "lease_expires_at": None,
}


class Store:
    """What every store holds: the database (one transaction per public method) and the notifier
    that builds the outbox rows of its changes (dialer.storage.notify)."""

    def __init__(self, db: Database, notifier: Notifier) -> None:
        self.db = db
        self.notifier = notifier


def flags_to_text(flags: Iterable[CardFlag]) -> str:
    return ",".join(sorted(f.value for f in flags))


def flags_from_text(text: str) -> frozenset[CardFlag]:
    return frozenset(CardFlag(v) for v in text.split(",") if v)


def contact_from_row(r: RowMapping, campaign: str) -> Contact:
    return Contact(
        id=int(r["id"]),
        campaign=campaign,
        external_id=r["external_id"],
        raw_number=r["raw_number"],
        e164=r["e164"],
        number_problem=NumberProblem(r["number_problem"]) if r["number_problem"] else None,
        owner_kind=OwnerKind(r["owner_kind"]),
        owner_name=r["owner_name"],
        flags=flags_from_text(r["flags"]),
        journal=r["journal"],
        state=ContactState(r["state"]),
        attempts_made=int(r["attempts_made"]),
        next_due_at=r["next_due_at"],
        result=ResultCode(r["result"]) if r["result"] else None,
        incorrect_contact=bool(r["incorrect_contact"]),
        timezone=r["timezone"],
        extension=r["extension"],
    )


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def insert_ignore(db: Database, table: sa.Table) -> Any:
    """INSERT … ON CONFLICT DO NOTHING: concurrent inserts of one unique key do not fail."""
    if db.is_sqlite:
        return sqlite_insert(table).on_conflict_do_nothing()
    return pg_insert(table).on_conflict_do_nothing()
