"""The storage's seam to the events (dialer.storage.notify): it hands the facts of a change to the
notifier it is given and writes exactly the rows it gets back, in the change's transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest

from dialer.domain.contact_rule import AnnounceAttempt, Announcement
from dialer.domain.model import CallClass, ContactState, ExclusionKind
from dialer.domain.rules import RulesTable
from dialer.storage.db import Database
from dialer.storage.notify import AttemptRef, ContactRef, ExclusionAdded, ExclusionLifted, OperatorRef
from dialer.storage.outbox import OutboxEvent
from dialer.storage.repo import Repository

from .conftest import CAMPAIGN, NOW, count_rows
from .helpers import csv_row, mobile, outcome_for, prepare


class RecordingNotifier:
    """Records what the storage hands over; answers one row per fact, named after it."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.contacts: list[
            tuple[ContactRef, tuple[Announcement, ...], datetime, AttemptRef | None, OperatorRef | None]
        ] = []
        self.exclusions: list[tuple[ExclusionAdded | ExclusionLifted, datetime]] = []

    def contact_events(
        self,
        ref: ContactRef,
        facts: Sequence[Announcement],
        now: datetime,
        *,
        attempt: AttemptRef | None = None,
        by: OperatorRef | None = None,
    ) -> list[OutboxEvent]:
        self.contacts.append((ref, tuple(facts), now, attempt, by))
        return [OutboxEvent(f"t/{type(f).__name__}", {"n": i}, f"k{ref.contact_id}") for i, f in enumerate(facts)]

    def exclusion_added(self, fact: ExclusionAdded, now: datetime) -> OutboxEvent:
        if self.fail:
            raise RuntimeError("notifier broke")
        self.exclusions.append((fact, now))
        return OutboxEvent("t/added", {"number": fact.number}, None)

    def exclusion_lifted(self, fact: ExclusionLifted, now: datetime) -> OutboxEvent:
        self.exclusions.append((fact, now))
        return OutboxEvent("t/lifted", {"released": fact.contacts_released}, None)


async def test_exclusions_are_announced_with_the_facts_and_the_rows_of_the_notifier(
    db: Database, rules: RulesTable
) -> None:
    notifier = RecordingNotifier()
    repo = await Repository.open(db, notifier)
    await repo.import_contacts(CAMPAIGN, prepare(rules, [csv_row("a", mobile(1))], NOW), NOW)
    await repo.add_exclusion(mobile(1), ExclusionKind.CALLS, NOW, source="crm", reason="просил", command_id="c1")
    later = NOW + timedelta(hours=1)
    assert await repo.remove_exclusion(mobile(1), ExclusionKind.CALLS, later)
    assert notifier.contacts == []
    assert notifier.exclusions == [
        (ExclusionAdded(mobile(1), ExclusionKind.CALLS, requested_by="crm", comment="просил", command_id="c1"), NOW),
        (ExclusionLifted(mobile(1), ExclusionKind.CALLS, calls_allowed=True, contacts_released=1), later),
    ]
    rows = await repo.fetch_unpublished(10)
    assert [(r.topic, r.payload, r.key) for r in rows] == [
        ("t/added", {"number": mobile(1)}, None),
        ("t/lifted", {"released": 1}, None),
    ]


async def test_a_finished_attempt_hands_over_its_contact_attempt_and_announcements(
    db: Database, rules: RulesTable
) -> None:
    notifier = RecordingNotifier()
    repo = await Repository.open(db, notifier)
    await repo.import_contacts(CAMPAIGN, prepare(rules, [csv_row("a", mobile(1))], NOW), NOW)
    (claimed,) = await repo.claim_due("autumn", "w1", NOW, 10)
    aid = uuid.uuid4()
    await repo.start_attempt(claimed, aid, NOW, asterisk_uniqueid="1700.1")
    ev, out = outcome_for(rules, claimed, CallClass.BUSY, NOW)
    end = NOW + timedelta(seconds=20)
    await repo.finish_attempt(aid, ev, out, end)
    assert notifier.exclusions == []
    ((ref, facts, at, attempt, by),) = notifier.contacts
    assert ref == ContactRef("autumn", claimed.contact.id, "a", mobile(1))
    assert attempt == AttemptRef(aid, 1, claimed.attempt_kind, NOW, "w1", "1700.1")
    assert at == end and by is None
    (fact,) = facts  # a first busy settles nothing: the attempt alone is announced
    assert isinstance(fact, AnnounceAttempt) and fact.evidence == ev
    rows = await repo.fetch_unpublished(10)
    assert [(r.topic, r.payload, r.key) for r in rows] == [("t/AnnounceAttempt", {"n": 0}, f"k{claimed.contact.id}")]


async def test_a_notifier_that_fails_undoes_the_change(db: Database, rules: RulesTable) -> None:
    """The rows are built inside the change's transaction: no change without its events."""
    repo = await Repository.open(db, RecordingNotifier(fail=True))
    await repo.import_contacts(CAMPAIGN, prepare(rules, [csv_row("a", mobile(1))], NOW), NOW)
    with pytest.raises(RuntimeError, match="notifier broke"):
        await repo.add_exclusion(mobile(1), ExclusionKind.CALLS, NOW)
    assert await repo.list_exclusions() == []
    assert (await repo.get_contact("autumn", "a")).state is ContactState.PENDING
    assert await count_rows(repo.db, "outbox") == 0
