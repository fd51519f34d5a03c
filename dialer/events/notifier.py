"""The storage's notifier (:class:`dialer.storage.notify.Notifier`): turns the facts of a change
into the outbox rows the storage writes in the change's transaction, with the builders of
:mod:`dialer.events.payloads`. The composition root passes it to the repository::

    repo = await Repository.open(db, EventNotifier())
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from dialer.domain.contact_rule import Announcement
from dialer.events import payloads
from dialer.storage.notify import AttemptRef, ContactRef, ExclusionAdded, ExclusionLifted, OperatorRef
from dialer.storage.outbox import OutboxEvent

__all__ = ["EventNotifier"]


class EventNotifier:
    """The events of docs/events.md for the storage's changes."""

    def contact_events(
        self,
        ref: ContactRef,
        facts: Sequence[Announcement],
        now: datetime,
        *,
        attempt: AttemptRef | None = None,
        by: OperatorRef | None = None,
    ) -> list[OutboxEvent]:
        return payloads.contact_events(ref, facts, now, attempt=attempt, by=by)

    def exclusion_added(self, fact: ExclusionAdded, now: datetime) -> OutboxEvent:
        return payloads.exclusion_notice(
            number=fact.number,
            kind=fact.kind,
            occurred_at=now,
            not_a_client=fact.not_a_client,
            campaign=fact.campaign,
            contact_id=fact.contact_id,
            external_id=fact.external_id,
            requested_by=fact.requested_by,
            comment=fact.comment,
            command_id=fact.command_id,
        )

    def exclusion_lifted(self, fact: ExclusionLifted, now: datetime) -> OutboxEvent:
        return payloads.exclusion_removed(
            number=fact.number,
            kind=fact.kind,
            occurred_at=now,
            calls_allowed=fact.calls_allowed,
            contacts_released=fact.contacts_released,
        )
