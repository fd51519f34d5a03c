"""What operators set by inbound command: results and dropped-call call-backs (dialer.services)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa

from dialer.domain.contact_rule import (
    CallbacksPlanned,
    ContactChange,
    OperatorSet,
    apply_outcome,
)
from dialer.domain.model import (
    Outcome,
)
from dialer.errors import StorageError
from dialer.storage.changes import change_columns, contact_now, contact_ref, find_contact, locked_contact
from dialer.storage.notify import OperatorRef
from dialer.storage.outbox import add_events
from dialer.storage.rows import Store
from dialer.storage.tables import (
    contacts,
)


class OperatorResults(Store):
    """Operator-set changes of a contact."""

    async def record_operator_result(
        self,
        contact_id: int,
        outcome: Outcome,
        now: datetime,
        *,
        operator: str = "",
        callback: bool = False,
        command_id: str | None = None,
        attempt_id: uuid.UUID | None = None,
        verdict_incorrect: bool | None = None,
    ) -> ContactChange:
        """Store what an operator set (e.g. «Отказался разговаривать», a call-back time) by the
        contact rule (dialer.domain.contact_rule: settled contacts, «Некорректный контакт», no
        journal line twice, repeats change nothing). When the outcome is not settled its
        ``next_due_at`` is the call-back time (attempt kind callback). ``verdict_incorrect``: what
        the result says about the contact (True wrong, False right, None nothing). ``command_id``
        and ``attempt_id`` only travel in the operator_result event."""
        async with self.db.write() as conn:
            c = await locked_contact(conn, contact_id, lock=not self.db.is_sqlite)
            change = apply_outcome(contact_now(c), OperatorSet(outcome, verdict_incorrect, callback))
            if not change.changed:
                return change
            await conn.execute(
                sa.update(contacts)
                .where(contacts.c.id == contact_id)
                .values(**change_columns(change), updated_at=now, version=contacts.c.version + 1)
            )
            by = OperatorRef(operator, command_id, attempt_id)
            await add_events(conn, self.notifier.contact_events(contact_ref(c), change.announce, now, by=by), now)
            return change

    async def schedule_dropped_callbacks(self, contact_id: int, times: Sequence[datetime], now: datetime) -> None:
        """A dropped/held-and-lost call (docs/rules.md §6): call back at ``times`` (from
        ``schedule.dropped_callback_times``), no longer-term follow-up (the contact rule)."""
        planned = CallbacksPlanned(tuple(times))  # refuses no times at all
        async with self.db.write() as conn:
            c = await find_contact(conn, contact_id, lock=not self.db.is_sqlite)
            change = apply_outcome(contact_now(c), planned) if c is not None else None
            if change is None or not change.changed:
                raise StorageError(f"no contact {contact_id} (or it is being called right now)")
            await conn.execute(
                sa.update(contacts)
                .where(contacts.c.id == contact_id)
                .values(**change_columns(change), updated_at=now, version=contacts.c.version + 1)
            )
