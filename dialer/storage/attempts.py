"""Attempts: started before the originate, finished with the rules' verdict (the contact rule,
dialer.domain.contact_rule, decides the contact's change), recovered after a crash."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dialer.domain.contact_rule import (
    AttemptEnded,
    aborted_verdict,
    apply_outcome,
)
from dialer.domain.model import (
    AttemptKind,
    ContactState,
    Evidence,
    Outcome,
)
from dialer.errors import StorageError, StorageUnavailable
from dialer.storage.changes import change_columns, contact_now, contact_ref, locked_contact, verdict_columns
from dialer.storage.db import Database
from dialer.storage.dialling import ClaimedContact, FinishResult, RecoveredAttempt
from dialer.storage.notify import AttemptRef, Notifier
from dialer.storage.outbox import add_events
from dialer.storage.rows import ATTEMPT_FINISHED, ATTEMPT_IN_PROGRESS, BLOCKING_KINDS, UNCLAIMED, Store
from dialer.storage.tables import (
    attempts,
    contacts,
    exclusions,
)

log = logging.getLogger(__name__)
UNAVAILABLE_RETRY_S: Final = 300.0


class Attempts(Store):
    """An attempt's rows, each method one transaction."""

    def __init__(self, db: Database, notifier: Notifier) -> None:
        super().__init__(db, notifier)
        # How long a verdict waits for a database that is away (restart, fail-over) before failing.
        self.unavailable_retry_s = UNAVAILABLE_RETRY_S

    async def start_attempt(
        self,
        claimed: ClaimedContact,
        attempt_id: uuid.UUID,
        now: datetime,
        *,
        server_name: str | None = None,
        asterisk_uniqueid: str | None = None,
    ) -> None:
        """Record that the attempt is under way (before the originate). Refuses a stale claim."""
        async with self.db.write() as conn:
            owner = (
                await conn.execute(
                    sa.select(contacts.c.claim_token, contacts.c.state).where(contacts.c.id == claimed.contact.id)
                )
            ).first()
            if (
                owner is None
                or owner.claim_token != claimed.claim_token
                or (owner.state != ContactState.IN_PROGRESS.value)
            ):
                raise StorageError(f"contact {claimed.contact.id} is no longer claimed by {claimed.worker_id}")
            await conn.execute(
                sa.insert(attempts).values(
                    id=attempt_id,
                    contact_id=claimed.contact.id,
                    attempt_no=claimed.attempt_no,
                    kind=claimed.attempt_kind.value,
                    state=ATTEMPT_IN_PROGRESS,
                    started_at=now,
                    worker_id=claimed.worker_id,
                    server_name=server_name,
                    asterisk_uniqueid=asterisk_uniqueid,
                    answered=False,
                    incorrect_contact=False,
                )
            )

    async def note_channel(
        self, attempt_id: uuid.UUID, *, asterisk_uniqueid: str | None, server_name: str | None
    ) -> None:
        async with self.db.write() as conn:
            await conn.execute(
                sa.update(attempts)
                .where(attempts.c.id == attempt_id)
                .values(asterisk_uniqueid=asterisk_uniqueid, server_name=server_name)
            )

    async def finish_attempt(
        self,
        attempt_id: uuid.UUID,
        evidence: Evidence,
        outcome: Outcome,
        now: datetime,
        *,
        counts_as_attempt: bool = True,
        dropped_callbacks: Sequence[datetime] = (),
    ) -> FinishResult:
        """Close an attempt: attempt row, contact state/result/journal/next due time and the
        outbox events, in one transaction. Calling it twice for one attempt changes nothing.

        ``counts_as_attempt=False`` (rules: originate failed, aborted) keeps the contact's attempt
        counter where it was.

        ``dropped_callbacks`` (``schedule.dropped_callback_times``): this attempt lost a person on
        the way to an operator, so a dropped-call series starts (docs/rules.md §6: the contact is called
        back at these times, whatever the attempt counter says, then settled). An attempt that is
        itself a try of a series continues that series instead: 3 tries in all.

        A verdict is never dropped because the database is away for a while (restarting,
        failing over): the transaction is retried for up to ``unavailable_retry_s``; being
        idempotent, a retry after a commit whose reply was lost changes nothing."""
        delay_s = 0.2
        deadline = time.monotonic() + self.unavailable_retry_s
        while True:
            try:
                async with self.db.write() as conn:
                    return await self._finish(
                        conn,
                        attempt_id,
                        evidence,
                        outcome,
                        now,
                        count_attempt=counts_as_attempt,
                        dropped_callbacks=dropped_callbacks,
                    )
            except StorageUnavailable as exc:
                if time.monotonic() + delay_s > deadline:
                    raise
                log.warning("attempt %s: database unavailable (%s); retrying in %.1f s", attempt_id, exc, delay_s)
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, 5.0)

    async def _finish(
        self,
        conn: AsyncConnection,
        attempt_id: uuid.UUID,
        evidence: Evidence,
        outcome: Outcome,
        now: datetime,
        *,
        count_attempt: bool = True,
        dropped_callbacks: Sequence[datetime] = (),
    ) -> FinishResult:
        q = sa.select(attempts).where(attempts.c.id == attempt_id)
        if not self.db.is_sqlite:
            q = q.with_for_update()
        a = (await conn.execute(q)).mappings().first()
        if a is None:
            raise StorageError(f"no attempt {attempt_id}")
        c = await locked_contact(conn, int(a["contact_id"]), lock=not self.db.is_sqlite)
        if a["state"] == ATTEMPT_FINISHED:
            return FinishResult(int(c["id"]), True, ContactState(c["state"]), c["state"] == "settled")
        attempt = AttemptRef(
            attempt_id,
            int(a["attempt_no"]),
            AttemptKind(a["kind"]),
            a["started_at"],
            a["worker_id"],
            a["asterisk_uniqueid"],
        )
        ended = AttemptEnded(
            attempt.attempt_no, attempt.kind, evidence, outcome, count_attempt, tuple(dropped_callbacks)
        )
        change = apply_outcome(contact_now(c, await self._number_blocked(conn, c["e164"])), ended)
        fact = change.attempt
        assert fact is not None
        await conn.execute(
            sa.update(attempts)
            .where(attempts.c.id == attempt_id)
            .values(state=ATTEMPT_FINISHED, ended_at=now, **verdict_columns(fact.evidence, fact.outcome))
        )
        await conn.execute(
            sa.update(contacts)
            .where(contacts.c.id == c["id"])
            .values(**change_columns(change), **UNCLAIMED, updated_at=now, version=contacts.c.version + 1)
        )
        await add_events(conn, self.notifier.contact_events(contact_ref(c), change.announce, now, attempt=attempt), now)
        return FinishResult(int(c["id"]), False, change.state, change.settles)

    @staticmethod
    async def _number_blocked(conn: AsyncConnection, e164: str | None) -> bool:
        blocked = (
            await conn.execute(
                sa.select(sa.func.count())
                .select_from(exclusions)
                .where(exclusions.c.number == e164, exclusions.c.kind.in_(BLOCKING_KINDS))
            )
        ).scalar_one()
        return bool(blocked)

    async def recover_in_progress(self, worker_id: str | None, now: datetime) -> list[RecoveredAttempt]:
        """After a crash: close attempts left open (class ``aborted``, not counted against the
        contact's attempts, no journal line — the contact never heard a verdict) and put their
        contacts back as due now; claims never started are simply released.

        ``worker_id`` limits recovery to one worker's claims; None recovers every claim (single
        worker deployments at start-up)."""
        recovered: list[RecoveredAttempt] = []
        async with self.db.write() as conn:
            q = sa.select(contacts.c.id, contacts.c.claimed_by).where(
                contacts.c.state == ContactState.IN_PROGRESS.value
            )
            if worker_id is not None:
                q = q.where(contacts.c.claimed_by == worker_id)
            stuck = list((await conn.execute(q)).mappings())
            for s in stuck:
                open_ids = [
                    x
                    for x in (
                        await conn.execute(
                            sa.select(attempts.c.id).where(
                                attempts.c.contact_id == s["id"], attempts.c.state == ATTEMPT_IN_PROGRESS
                            )
                        )
                    ).scalars()
                ]
                if not open_ids:
                    await conn.execute(
                        sa.update(contacts)
                        .where(contacts.c.id == s["id"])
                        .values(
                            state=ContactState.PENDING.value,
                            next_due_at=now,
                            **UNCLAIMED,
                            updated_at=now,
                            version=contacts.c.version + 1,
                        )
                    )
                    recovered.append(RecoveredAttempt(int(s["id"]), None, s["claimed_by"]))
                    continue
                for attempt_id in open_ids:
                    evidence, outcome = aborted_verdict(now)
                    await self._finish(conn, attempt_id, evidence, outcome, now, count_attempt=False)
                    recovered.append(RecoveredAttempt(int(s["id"]), attempt_id, s["claimed_by"]))
        return recovered
