"""What the storage needs to announce a change: the :class:`Notifier` that turns the facts of a
change into outbox rows, and the plain facts it is given.

The storage never builds an event: inside the transaction of a state change it hands the facts
(who, which attempt, what the contact rule said to announce, which exclusion) to its notifier
and writes the rows it gets back in the same transaction (transactional outbox). The
implementation, the events package's ``EventNotifier`` (events/notifier.py), builds the
payloads; the composition root (dialer.app, the CLI, tests) passes it to
:class:`~dialer.storage.repo.Repository`. The storage does not import the events package.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from dialer.domain.contact_rule import Announcement
from dialer.domain.model import AttemptKind, ExclusionKind
from dialer.storage.outbox import OutboxEvent

__all__ = ["AttemptRef", "ContactRef", "ExclusionAdded", "ExclusionLifted", "Notifier", "OperatorRef"]


@dataclass(frozen=True, slots=True)
class ContactRef:
    """Who an event is about: the fields every contact event carries."""

    campaign: str
    contact_id: int
    external_id: str
    e164: str | None


@dataclass(frozen=True, slots=True)
class AttemptRef:
    """The attempt a contact event belongs to, as stored."""

    attempt_id: uuid.UUID
    attempt_no: int
    kind: AttemptKind
    started_at: datetime
    worker_id: str | None = None
    asterisk_uniqueid: str | None = None


@dataclass(frozen=True, slots=True)
class OperatorRef:
    """Where an operator's result came from (travels in the operator_result event only)."""

    operator: str = ""
    command_id: str | None = None
    attempt_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class ExclusionAdded:
    """A number was excluded (first time for this kind); ``requested_by`` is who asked,
    ``comment`` their free text; campaign, contact and command say where it was asked."""

    number: str
    kind: ExclusionKind
    not_a_client: bool = False
    campaign: str | None = None
    contact_id: int | None = None
    external_id: str | None = None
    requested_by: str = ""
    comment: str = ""
    command_id: str | None = None


@dataclass(frozen=True, slots=True)
class ExclusionLifted:
    """An exclusion was removed: ``calls_allowed`` is false while another exclusion of the number
    still blocks calls; ``contacts_released`` counts the held-back contacts now due."""

    number: str
    kind: ExclusionKind
    calls_allowed: bool
    contacts_released: int


class Notifier(Protocol):
    """Builds the outbox rows of a change; pure (no I/O), called inside the change's transaction."""

    def contact_events(
        self,
        ref: ContactRef,
        facts: Sequence[Announcement],
        now: datetime,
        *,
        attempt: AttemptRef | None = None,
        by: OperatorRef | None = None,
    ) -> list[OutboxEvent]:
        """The rows of the facts the contact rule announced, in order."""
        ...

    def exclusion_added(self, fact: ExclusionAdded, now: datetime) -> OutboxEvent: ...

    def exclusion_lifted(self, fact: ExclusionLifted, now: datetime) -> OutboxEvent: ...
