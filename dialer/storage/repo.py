"""The repository: every read and write the dialer does, each method one transaction.

Time is always passed in (``now``), never read here. Domain decisions (what an attempt means, when
to call next) come from ``dialer.domain`` as :class:`~dialer.domain.model.Outcome` values; this
module only stores them atomically together with the outbox events that announce them
(transactional outbox: an event exists if and only if its state change was committed).

Claiming (``claim_due``) is the one place where workers race:

* PostgreSQL: the campaign row is locked ``FOR NO KEY UPDATE`` (serialises the concurrency-cap
  count per campaign without blocking contact inserts) and candidate contacts are taken with
  ``FOR UPDATE SKIP LOCKED``;
* SQLite: the write transaction is ``BEGIN IMMEDIATE`` (db.py) and the claim is one
  ``UPDATE … WHERE id IN (SELECT … LIMIT n) RETURNING …``.

In both, a number with a blocking exclusion (kind calls/all) is filtered *in the claim query*, and
each claimed contact is re-checked against its calling window in its own time zone; one outside
its window is put back with ``next_due_at`` moved to the window's next opening.

Re-import policy (``import_contacts``): a row whose (campaign, external_id) already exists never
changes the stored number, journal, attempts, state or result. It updates owner name, owner kind
and card flags; when the new flags carry «НЕ ЗВОНИТЬ» and the contact is still pending, the contact
is settled with the pre-dial outcome the caller prepared (never dialled).

Outbox rows are built only by :mod:`dialer.events.payloads` (pure functions, no MQTT): the row
holds the relative topic, the complete payload with its envelope (``event_id`` is fixed when
the row is written, so a re-send carries the same id) and the ordering key ``contact:<id>``
(exclusions: ``number:<e164>``). docs/events.md documents them.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, Literal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from dialer.domain import schedule
from dialer.domain.compliance import NOT_COUNTED, AttemptCaps, ComplianceConfig, cap_release, counted_since
from dialer.domain.contact_rule import (
    AttemptEnded,
    ContactChange,
    ContactNow,
    OperatorSet,
    SettledBeforeDialling,
    aborted_verdict,
    apply_outcome,
)
from dialer.domain.model import (
    INCORRECT_CONTACT_RU,
    RESULT_TITLES_RU,
    AttemptKind,
    CallClass,
    CardFlag,
    Contact,
    ContactState,
    Evidence,
    ExclusionKind,
    NumberProblem,
    Outcome,
    OwnerKind,
    ResultCode,
)
from dialer.domain.schedule import HolidayCalendar
from dialer.errors import StorageConflict, StorageError, StorageUnavailable
from dialer.events import payloads
from dialer.events.payloads import OutboxEvent
from dialer.storage.db import Database
from dialer.storage.migrate import ensure_current
from dialer.storage.tables import (
    attempts,
    campaigns,
    contacts,
    exclusions,
    inbound_commands,
    numbering_ranges,
    outbox,
)

log = logging.getLogger(__name__)

ATTEMPT_IN_PROGRESS: Final = "in_progress"
ATTEMPT_FINISHED: Final = "finished"

_BLOCKING_KINDS: Final = tuple(k.value for k in ExclusionKind if k.blocks_calls)
_CLAIM_ROUNDS: Final = 4  # re-fill a batch after putting back contacts outside their window
_CLAIM_CONFLICT_RETRIES: Final = 5  # another campaign's claimer took one of our numbers meanwhile
UNAVAILABLE_RETRY_S: Final = 300.0
# A claim made without an explicit lease (tools, tests) runs out this long after ``now``.
DEFAULT_LEASE: Final = timedelta(seconds=60)
ABORTED_REASON: Final = "worker restarted; attempt closed without a verdict"
PREDIAL_REASON: Final = "settled before dialling"


# --------------------------------------------------------------------------------------------
# values in and out
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CampaignSettings:
    name: str
    timezone: str = "Europe/Moscow"
    weekday_window: str = "09:00-21:00"
    weekend_window: str = "10:00-20:00"
    concurrency: int = 10


@dataclass(frozen=True, slots=True)
class PredialSettlement:
    """A contact settled without dialling: the class found and what the rules made of it."""

    call_class: CallClass
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class NewContact:
    """One prepared contact row for :meth:`Repository.import_contacts` (see dialer.storage.ingest)."""

    external_id: str
    raw_number: str
    e164: str | None
    number_problem: NumberProblem | None
    number_type: str
    timezone: str | None
    tz_source: str | None
    owner_kind: OwnerKind
    owner_name: str
    flags: frozenset[CardFlag]
    journal: str
    next_due_at: datetime | None  # first due time (inside the calling window) when dialable
    predial: PredialSettlement | None = None
    extension: str | None = None  # «доб. 123» of an organisation's number


@dataclass(slots=True)
class ImportCounts:
    inserted: int = 0  # new contacts, including those settled at once
    updated: int = 0
    unchanged: int = 0
    settled_without_dialling: int = 0  # new or re-imported contacts settled without dialling
    number_differs_kept: int = 0  # re-import gave another number: the stored one is kept
    inserted_settled: int = 0  # of ``inserted``: settled without dialling

    def add(self, other: ImportCounts) -> None:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.settled_without_dialling += other.settled_without_dialling
        self.number_differs_kept += other.number_differs_kept
        self.inserted_settled += other.inserted_settled


@dataclass(frozen=True, slots=True)
class ClaimedContact:
    contact: Contact  # contact.extension: the digits to send as DTMF when an IVR answers
    attempt_no: int
    attempt_kind: AttemptKind
    claim_token: uuid.UUID
    claimed_at: datetime
    worker_id: str
    lease_expires_at: datetime | None = None  # the owner renews it (dialer.leases)


@dataclass(frozen=True, slots=True)
class FinishResult:
    contact_id: int
    already_finished: bool  # a repeated call for the same attempt id changed nothing
    state: ContactState
    settled: bool


@dataclass(frozen=True, slots=True)
class RecoveredAttempt:
    contact_id: int
    attempt_id: uuid.UUID | None  # None: claimed but never started (released, nothing to close)
    worker_id: str | None


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    topic: str
    payload: dict[str, Any]
    key: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ExclusionRow:
    number: str
    kind: ExclusionKind
    source: str
    reason: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AddExclusionResult:
    new: bool
    contacts_excluded: int


@dataclass(frozen=True, slots=True)
class NumberingRangeRow:
    code: int
    start: int
    end: int
    operator: str
    region: str
    territory: str
    inn: str


@dataclass(frozen=True, slots=True)
class CampaignStatus:
    name: str
    total: int
    by_state: dict[str, int]
    by_result: dict[str, int]
    by_attempts: dict[int, int]
    incorrect_contact: int
    due_now: int


@dataclass(frozen=True, slots=True)
class AttemptRow:
    id: uuid.UUID
    contact_id: int
    attempt_no: int
    kind: AttemptKind
    state: str
    started_at: datetime
    ended_at: datetime | None
    call_class: CallClass | None
    result: ResultCode | None
    incorrect_contact: bool
    reason: str | None
    journal_line: str | None
    dead_air_ms: int | None = None  # handed over: the far end's silence after its greeting
    queue_wait_ms: int | None = None  # handed over: Redirect → an operator answered (or the loss)
    operator: str | None = None  # the queue member who answered
    decision_ms: int | None = None  # from the start of the call's audio to the decision


@dataclass(frozen=True, slots=True)
class ExportRow:
    external_id: str
    raw_number: str
    e164: str
    owner_kind: str
    owner_name: str
    state: str
    attempts_made: int
    result: str  # Russian title («Недоступен» …) or ""
    incorrect_contact: str  # «Некорректный контакт» or ""
    last_call_class: str
    next_due_at: str
    timezone: str
    journal: str
    extension: str = ""
    # The last finished attempt's hand-over (issue 9): "" when it was not handed over.
    dead_air_ms: str = ""
    queue_wait_ms: str = ""
    operator: str = ""
    decision_ms: str = ""  # from the start of the call's audio to the decision ("" without audio)


@dataclass(slots=True)
class _CampaignInfo:
    id: int
    name: str
    timezone: str
    windows: Any  # schedule.CallingWindows
    concurrency: int
    caps: AttemptCaps = field(default_factory=AttemptCaps)


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _flags_to_text(flags: Iterable[CardFlag]) -> str:
    return ",".join(sorted(f.value for f in flags))


def _flags_from_text(text: str) -> frozenset[CardFlag]:
    return frozenset(CardFlag(v) for v in text.split(",") if v)


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _ends_dropped_series(outcome: Outcome) -> bool:
    """Does this attempt's outcome end a dropped-call series (seeds/04) before its planned tries
    are used up? A person reached (handed over) or a number shown not to work does; a plain
    «Недоступен» does not: it only says the contact's attempts ran out, and a missing call-back
    counts as a critical error («Отсутствие перезвона расценивается как критическая ошибка»)."""
    if not outcome.settled:
        return False
    return outcome.result is not ResultCode.UNAVAILABLE or outcome.incorrect_contact


def _contact_from_row(r: RowMapping, campaign: str) -> Contact:
    return Contact(
        id=int(r["id"]),
        campaign=campaign,
        external_id=r["external_id"],
        raw_number=r["raw_number"],
        e164=r["e164"],
        number_problem=NumberProblem(r["number_problem"]) if r["number_problem"] else None,
        owner_kind=OwnerKind(r["owner_kind"]),
        owner_name=r["owner_name"],
        flags=_flags_from_text(r["flags"]),
        journal=r["journal"],
        state=ContactState(r["state"]),
        attempts_made=int(r["attempts_made"]),
        next_due_at=r["next_due_at"],
        result=ResultCode(r["result"]) if r["result"] else None,
        incorrect_contact=bool(r["incorrect_contact"]),
        timezone=r["timezone"],
        extension=r["extension"],
    )


def _contact_now(c: RowMapping, number_blocked: bool = False) -> ContactNow:
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


def _ref(c: RowMapping) -> payloads.ContactRef:
    return payloads.ContactRef(c["campaign_name"], int(c["id"]), c["external_id"], c["e164"])


def _predial_change(now: ContactNow, row: NewContact) -> ContactChange:
    assert row.predial is not None
    return apply_outcome(now, SettledBeforeDialling(row.predial.call_class, row.predial.outcome))


def _change_columns(change: ContactChange) -> dict[str, Any]:
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


def _verdict_columns(evidence: Evidence, outcome: Outcome) -> dict[str, Any]:
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


# A contact no worker holds.
_UNCLAIMED: Final[dict[str, Any]] = {
    "claimed_by": None,
    "claimed_at": None,
    "claim_token": None,
    "lease_expires_at": None,
}


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _insert_ignore(db: Database, table: sa.Table) -> Any:
    """INSERT … ON CONFLICT DO NOTHING: concurrent inserts of one unique key do not fail."""
    if db.is_sqlite:
        return sqlite_insert(table).on_conflict_do_nothing()
    return pg_insert(table).on_conflict_do_nothing()


async def add_events(conn: AsyncConnection, events: Sequence[OutboxEvent], now: datetime) -> None:
    for event in events:
        await add_event(conn, event, now)


async def add_event(conn: AsyncConnection, event: OutboxEvent, now: datetime) -> None:
    """Queue an event (built by dialer.events.payloads) in the outbox inside the caller's
    transaction."""
    await conn.execute(
        sa.insert(outbox).values(topic=event.topic, payload=event.payload, key=event.key, created_at=now, attempts=0)
    )


# --------------------------------------------------------------------------------------------
# the repository
# --------------------------------------------------------------------------------------------


class Repository:
    """All persistence of the dialer. Build with :meth:`open`, which checks the schema."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._windows_cache: dict[tuple[str, str, HolidayCalendar], Any] = {}
        # Attempt caps and holiday calendars by campaign name (issue 12; off by default): the
        # claim gives back a capped contact with its next due time moved past the cap.
        self.compliance = ComplianceConfig()
        # Wall-clock seconds of the recent claim_due calls (benchmarks and the run summary).
        self.claim_latencies_s: deque[float] = deque(maxlen=10_000)
        # How long a verdict waits for a database that is away (restart, fail-over) before failing.
        self.unavailable_retry_s = UNAVAILABLE_RETRY_S

    @classmethod
    async def open(cls, db: Database) -> Repository:
        await ensure_current(db)
        return cls(db)

    # ---- campaigns ----------------------------------------------------------------------

    def _windows(self, weekday: str, weekend: str, calendar: HolidayCalendar | None = None) -> Any:
        key = (weekday, weekend, calendar or HolidayCalendar())
        w = self._windows_cache.get(key)
        if w is None:
            w = schedule.CallingWindows.parse(weekday=weekday, weekend=weekend, calendar=key[2])
            self._windows_cache[key] = w
        return w

    def _info(self, r: RowMapping) -> _CampaignInfo:
        rules = self.compliance.for_campaign(r["name"])
        return _CampaignInfo(
            id=int(r["id"]),
            name=r["name"],
            timezone=r["timezone"],
            windows=self._windows(r["weekday_window"], r["weekend_window"], rules.calendar),
            concurrency=int(r["concurrency"]),
            caps=rules.caps,
        )

    async def _campaign(self, conn: AsyncConnection, name: str, *, lock: bool = False) -> _CampaignInfo:
        q = sa.select(campaigns).where(campaigns.c.name == name)
        if lock and not self.db.is_sqlite:
            q = q.with_for_update(key_share=True)  # FOR NO KEY UPDATE
        r = (await conn.execute(q)).mappings().first()
        if r is None:
            raise StorageError(f"no campaign named {name!r}")
        return self._info(r)

    async def ensure_campaign(self, settings: CampaignSettings, now: datetime) -> int:
        """Create the campaign if it does not exist (an existing one keeps its stored settings)."""
        self._windows(settings.weekday_window, settings.weekend_window)  # validate before storing
        async with self.db.write() as conn:
            return await self._ensure_campaign(conn, settings, now)

    async def _ensure_campaign(self, conn: AsyncConnection, s: CampaignSettings, now: datetime) -> int:
        existing = (await conn.execute(sa.select(campaigns.c.id).where(campaigns.c.name == s.name))).scalar()
        if existing is not None:
            return int(existing)
        res = await conn.execute(
            sa.insert(campaigns)
            .values(
                name=s.name,
                timezone=s.timezone,
                weekday_window=s.weekday_window,
                weekend_window=s.weekend_window,
                concurrency=s.concurrency,
                created_at=now,
            )
            .returning(campaigns.c.id)
        )
        return int(res.scalar_one())

    async def campaign_settings(self, name: str) -> CampaignSettings:
        async with self.db.read() as conn:
            r = (await conn.execute(sa.select(campaigns).where(campaigns.c.name == name))).mappings().first()
        if r is None:
            raise StorageError(f"no campaign named {name!r}")
        return CampaignSettings(
            name=r["name"],
            timezone=r["timezone"],
            weekday_window=r["weekday_window"],
            weekend_window=r["weekend_window"],
            concurrency=int(r["concurrency"]),
        )

    async def campaign_names(self) -> list[str]:
        async with self.db.read() as conn:
            res = await conn.execute(sa.select(campaigns.c.name).order_by(campaigns.c.name))
            return [str(n) for n in res.scalars()]

    # ---- import ---------------------------------------------------------------------------

    async def import_contacts(
        self, campaign: CampaignSettings, rows: Sequence[NewContact], now: datetime
    ) -> ImportCounts:
        """Import one batch in one transaction (callers feed batches of a few thousand rows).

        Idempotent on (campaign, external_id); see the module docstring for what a re-import
        updates. Pre-dial settlements become a finished attempt of kind ``campaign`` with the
        rules' result and journal line, and the contact is settled, never dialled."""
        counts = ImportCounts()
        if not rows:
            return counts
        seen: set[str] = set()
        for row in rows:
            if row.external_id in seen:
                raise StorageError(f"external id {row.external_id!r} twice in one import batch")
            seen.add(row.external_id)
        async with self.db.write() as conn:
            campaign_id = await self._ensure_campaign(conn, campaign, now)
            existing: dict[str, RowMapping] = {}
            for chunk in _chunks([r.external_id for r in rows], 500):
                res = await conn.execute(
                    sa.select(
                        contacts.c.id,
                        contacts.c.external_id,
                        contacts.c.raw_number,
                        contacts.c.owner_kind,
                        contacts.c.owner_name,
                        contacts.c.flags,
                        contacts.c.state,
                        contacts.c.journal,
                        contacts.c.e164,
                    ).where(contacts.c.campaign_id == campaign_id, contacts.c.external_id.in_(chunk))
                )
                for r in res.mappings():
                    existing[r["external_id"]] = r
            new_rows = [r for r in rows if r.external_id not in existing]
            if new_rows:
                await self._insert_new(conn, campaign, campaign_id, new_rows, now, counts)
            for row in rows:
                old = existing.get(row.external_id)
                if old is not None:
                    await self._reimport(conn, campaign, old, row, now, counts)
        return counts

    async def _insert_new(
        self,
        conn: AsyncConnection,
        campaign: CampaignSettings,
        campaign_id: int,
        rows: Sequence[NewContact],
        now: datetime,
        counts: ImportCounts,
    ) -> None:
        values = []
        changes: dict[str, ContactChange] = {}
        for r in rows:
            v: dict[str, Any] = {
                "campaign_id": campaign_id,
                "external_id": r.external_id,
                "raw_number": r.raw_number,
                "e164": r.e164,
                "number_problem": r.number_problem.value if r.number_problem else None,
                "number_type": r.number_type,
                "timezone": r.timezone,
                "tz_source": r.tz_source,
                "owner_kind": r.owner_kind.value,
                "owner_name": r.owner_name,
                "flags": _flags_to_text(r.flags),
                "journal": r.journal,
                "state": ContactState.PENDING.value,
                "attempts_made": 0,
                "next_due_at": r.next_due_at,
                "next_attempt_kind": AttemptKind.CAMPAIGN.value,
                "callback_plan": None,
                "result": None,
                "incorrect_contact": False,
                "claimed_by": None,
                "claimed_at": None,
                "claim_token": None,
                "lease_expires_at": None,
                "extension": r.extension,
                "version": 1,
                "imported_at": now,
                "updated_at": now,
            }
            if r.predial is not None:
                changes[r.external_id] = _predial_change(
                    ContactNow(ContactState.PENDING, None, False, r.journal, None), r
                )
                v.update(_change_columns(changes[r.external_id]))
            elif r.e164 is None or r.next_due_at is None:
                raise StorageError(
                    f"contact {r.external_id!r} has neither a usable number and due time nor a pre-dial settlement"
                )
            values.append(v)
        await conn.execute(sa.insert(contacts), values)
        counts.inserted += len(rows)
        predial = [r for r in rows if r.predial is not None]
        if predial:
            ids: dict[str, int] = {}
            for chunk in _chunks([r.external_id for r in predial], 500):
                res = await conn.execute(
                    sa.select(contacts.c.id, contacts.c.external_id).where(
                        contacts.c.campaign_id == campaign_id, contacts.c.external_id.in_(chunk)
                    )
                )
                ids.update({str(x.external_id): int(x.id) for x in res})
            for r in predial:
                ref = payloads.ContactRef(campaign.name, ids[r.external_id], r.external_id, r.e164)
                await self._record_predial(conn, ref, changes[r.external_id], now)
            counts.settled_without_dialling += len(predial)
            counts.inserted_settled += len(predial)

    async def _record_predial(
        self, conn: AsyncConnection, ref: payloads.ContactRef, change: ContactChange, now: datetime
    ) -> None:
        """The pre-dial attempt row (the contact's ``change.attempts_made``-th) and its events."""
        fact = change.attempt
        assert fact is not None
        attempt = payloads.AttemptRef(uuid.uuid4(), change.attempts_made, AttemptKind.CAMPAIGN, now)
        await conn.execute(
            sa.insert(attempts).values(
                id=attempt.attempt_id,
                contact_id=ref.contact_id,
                attempt_no=attempt.attempt_no,
                kind=attempt.kind.value,
                state=ATTEMPT_FINISHED,
                started_at=now,
                ended_at=now,
                **_verdict_columns(fact.evidence, fact.outcome),
            )
        )
        await add_events(conn, payloads.contact_events(ref, change.announce, now, attempt=attempt), now)

    async def _reimport(
        self,
        conn: AsyncConnection,
        campaign: CampaignSettings,
        old: RowMapping,
        row: NewContact,
        now: datetime,
        counts: ImportCounts,
    ) -> None:
        if old["raw_number"] != row.raw_number:
            counts.number_differs_kept += 1
        new_flags = _flags_to_text(row.flags)
        changes: dict[str, Any] = {}
        if old["owner_kind"] != row.owner_kind.value:
            changes["owner_kind"] = row.owner_kind.value
        if old["owner_name"] != row.owner_name:
            changes["owner_name"] = row.owner_name
        if old["flags"] != new_flags:
            changes["flags"] = new_flags
        settle = (
            CardFlag.DO_NOT_CALL in row.flags
            and CardFlag.DO_NOT_CALL.value not in old["flags"].split(",")
            and old["state"] in (ContactState.PENDING.value, ContactState.EXCLUDED.value)
            and row.predial is not None
        )
        if not changes:
            counts.unchanged += 1
            return
        if settle:
            attempts_made = (
                await conn.execute(sa.select(contacts.c.attempts_made).where(contacts.c.id == old["id"]))
            ).scalar_one()
            now_ = ContactNow(ContactState(old["state"]), None, False, old["journal"], None, int(attempts_made))
            change = _predial_change(now_, row)
            changes.update(_change_columns(change))
            ref = payloads.ContactRef(campaign.name, int(old["id"]), row.external_id, old["e164"])
            await self._record_predial(conn, ref, change, now)
            counts.settled_without_dialling += 1
        changes["updated_at"] = now
        changes["version"] = contacts.c.version + 1
        await conn.execute(sa.update(contacts).where(contacts.c.id == old["id"]).values(**changes))
        counts.updated += 1

    async def unsettled_with_numbers(self, numbers: Iterable[str]) -> dict[str, list[tuple[str, str]]]:
        """(campaign, external id) of the contacts not yet settled that have one of ``numbers``
        (E.164): an import reports a number it shares with them."""
        out: dict[str, list[tuple[str, str]]] = {}
        wanted = sorted(set(numbers))
        if not wanted:
            return out
        async with self.db.read() as conn:
            for chunk in _chunks(wanted, 500):
                res = await conn.execute(
                    sa.select(contacts.c.e164, campaigns.c.name, contacts.c.external_id)
                    .join(campaigns)
                    .where(contacts.c.e164.in_(chunk), contacts.c.state != ContactState.SETTLED.value)
                    .order_by(contacts.c.id)
                )
                for e164, campaign, external_id in res:
                    out.setdefault(str(e164), []).append((str(campaign), str(external_id)))
        return out

    async def analyze(self) -> None:
        """Refresh planner statistics after a big import (autovacuum may be off or lagging)."""
        async with self.db.write() as conn:
            await conn.execute(sa.text("ANALYZE contacts" if not self.db.is_sqlite else "ANALYZE"))

    # ---- claim / attempts -----------------------------------------------------------------

    async def claim_due(
        self,
        campaign: str,
        worker_id: str,
        now: datetime,
        limit: int,
        concurrency_cap: int | None = None,
        *,
        lease_until: datetime | None = None,
    ) -> list[ClaimedContact]:
        """Claim up to ``limit`` due contacts for ``worker_id``; never more than the campaign's
        concurrency cap in progress at once (``concurrency_cap`` overrides the stored one).

        Each claim is a lease owned by ``worker_id`` until ``lease_until`` (wall-clock UTC; the
        owner renews it, see dialer.leases; default ``now`` + DEFAULT_LEASE). A number that is
        already live — on any contact of any campaign — is not claimed, and a batch never holds
        one number twice; the partial unique index ``uq_contacts_live_e164`` backs this up when
        claimers of two campaigns race (the loser retries)."""
        if limit <= 0:
            return []
        until = lease_until if lease_until is not None else now + DEFAULT_LEASE
        started = time.perf_counter()
        for attempt in range(_CLAIM_CONFLICT_RETRIES):
            try:
                async with self.db.write() as conn:
                    claimed = await self._claim_due(conn, campaign, worker_id, now, limit, concurrency_cap, until)
                break
            except StorageConflict:
                if attempt == _CLAIM_CONFLICT_RETRIES - 1:
                    raise
        self.claim_latencies_s.append(time.perf_counter() - started)
        return claimed

    async def _claim_due(
        self,
        conn: AsyncConnection,
        campaign: str,
        worker_id: str,
        now: datetime,
        limit: int,
        concurrency_cap: int | None,
        until: datetime,
    ) -> list[ClaimedContact]:
        claimed: list[ClaimedContact] = []
        info = await self._campaign(conn, campaign, lock=True)
        cap = info.concurrency if concurrency_cap is None else concurrency_cap
        busy = (
            await conn.execute(
                sa.select(sa.func.count())
                .select_from(contacts)
                .where(
                    contacts.c.campaign_id == info.id,
                    contacts.c.state == ContactState.IN_PROGRESS.value,
                )
            )
        ).scalar_one()
        room = min(limit, cap - int(busy))
        for _ in range(_CLAIM_ROUNDS):
            if room <= 0:
                break
            rows = await self._claim_rows(conn, info, worker_id, now, room, until)
            if not rows:
                break
            outside: list[tuple[int, datetime]] = []
            starts = await self._counted_starts(conn, info, rows, now)
            for r in rows:
                tz = r["timezone"] or info.timezone
                # Dropped-call call-backs ignore the window on purpose (schedule.dropped_callback_times).
                dropped = r["next_attempt_kind"] == AttemptKind.DROPPED_CALLBACK.value
                capped = cap_release(starts.get(int(r["id"]), ()), now, tz, info.caps) if starts else None
                if capped is not None:
                    # COMPLIANCE: a cap is the law's, not the campaign's: call-backs obey it too.
                    outside.append((int(r["id"]), schedule.next_allowed(capped, tz, info.windows)))
                elif dropped or schedule.in_window(now, tz, info.windows):
                    claimed.append(self._claimed(r, info.name, worker_id, now))
                else:
                    outside.append((int(r["id"]), schedule.next_allowed(now, tz, info.windows)))
            for contact_id, due in outside:
                await conn.execute(
                    sa.update(contacts)
                    .where(contacts.c.id == contact_id)
                    .values(
                        state=ContactState.PENDING.value,
                        next_due_at=due,
                        claimed_by=None,
                        claimed_at=None,
                        claim_token=None,
                        lease_expires_at=None,
                        updated_at=now,
                    )
                )
            room = min(limit, cap - int(busy)) - len(claimed)
            if not outside:
                break
        return claimed

    async def _counted_starts(
        self, conn: AsyncConnection, info: _CampaignInfo, rows: Sequence[RowMapping], now: datetime
    ) -> dict[int, list[datetime]]:
        """Start times of the attempts that count against the caps (compliance.NOT_COUNTED), of
        the contacts in ``rows``; empty when the campaign has no caps."""
        if not info.caps.active or not rows:
            return {}
        return await self.counted_attempt_starts(conn, [int(r["id"]) for r in rows], now)

    @staticmethod
    async def counted_attempt_starts(
        conn: AsyncConnection, contact_ids: Sequence[int], now: datetime
    ) -> dict[int, list[datetime]]:
        """contact id → start times of its attempts that count against the attempt caps, since
        ``compliance.counted_since(now)``; a contact without any is absent."""
        out: dict[int, list[datetime]] = {}
        not_counted = sorted(c.value for c in NOT_COUNTED)
        for chunk in _chunks(contact_ids, 500):
            res = await conn.execute(
                sa.select(attempts.c.contact_id, attempts.c.started_at).where(
                    attempts.c.contact_id.in_(chunk),
                    attempts.c.started_at >= counted_since(now),
                    sa.or_(attempts.c.call_class.is_(None), attempts.c.call_class.not_in(not_counted)),
                )
            )
            for contact_id, started_at in res:
                out.setdefault(int(contact_id), []).append(started_at)
        return out

    def _due_query(self, info: _CampaignInfo, now: datetime, n: int) -> sa.Select[Any]:
        blocked = sa.exists().where(exclusions.c.number == contacts.c.e164, exclusions.c.kind.in_(_BLOCKING_KINDS))
        other = contacts.alias("live")
        live = sa.exists().where(other.c.e164 == contacts.c.e164, other.c.state == ContactState.IN_PROGRESS.value)
        return (
            sa.select(contacts.c.id, contacts.c.e164)
            .where(
                contacts.c.campaign_id == info.id,
                contacts.c.state == ContactState.PENDING.value,
                contacts.c.next_due_at <= now,
                contacts.c.e164.is_not(None),
                ~blocked,
                ~live,
            )
            .order_by(contacts.c.next_due_at, contacts.c.id)
            .limit(n)
        )

    async def _claim_rows(
        self, conn: AsyncConnection, info: _CampaignInfo, worker_id: str, now: datetime, n: int, until: datetime
    ) -> list[RowMapping]:
        token = uuid.uuid4()
        claim_values = {
            "state": ContactState.IN_PROGRESS.value,
            "claimed_by": worker_id,
            "claimed_at": now,
            "claim_token": token,
            "lease_expires_at": until,
            "updated_at": now,
            "version": contacts.c.version + 1,
        }
        q = self._due_query(info, now, n)
        if not self.db.is_sqlite:
            # SQLite: BEGIN IMMEDIATE already holds the write lock for the whole transaction.
            q = q.with_for_update(skip_locked=True, of=contacts)
        candidates = list(await conn.execute(q))
        ids_list: list[int] = []
        numbers: set[str] = set()
        for cid, e164 in candidates:
            if e164 in numbers:
                continue  # one number twice in the batch: the later contact waits its turn
            numbers.add(e164)
            ids_list.append(int(cid))
        if not ids_list:
            return []
        res = await conn.execute(
            sa.update(contacts).where(contacts.c.id.in_(ids_list)).values(**claim_values).returning(*contacts.c)
        )
        return list(res.mappings())

    @staticmethod
    def _claimed(r: RowMapping, campaign: str, worker_id: str, now: datetime) -> ClaimedContact:
        contact = _contact_from_row(r, campaign)
        return ClaimedContact(
            contact=contact,
            attempt_no=contact.attempts_made + 1,
            attempt_kind=AttemptKind(r["next_attempt_kind"]),
            claim_token=r["claim_token"],
            claimed_at=now,
            worker_id=worker_id,
            lease_expires_at=r["lease_expires_at"],
        )

    async def release(self, claimed: ClaimedContact, now: datetime, next_due_at: datetime | None = None) -> bool:
        """Give back a claim that was never started (e.g. the worker is stopping)."""
        async with self.db.write() as conn:
            res = await conn.execute(
                sa.update(contacts)
                .where(
                    contacts.c.id == claimed.contact.id,
                    contacts.c.claim_token == claimed.claim_token,
                    contacts.c.state == ContactState.IN_PROGRESS.value,
                )
                .values(
                    state=ContactState.PENDING.value,
                    next_due_at=next_due_at or now,
                    claimed_by=None,
                    claimed_at=None,
                    claim_token=None,
                    lease_expires_at=None,
                    updated_at=now,
                    version=contacts.c.version + 1,
                )
            )
            return bool(res.rowcount)

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
        the way to an operator, so a dropped-call series starts (seeds/04: the contact is called
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
        c = await self._locked_contact(conn, int(a["contact_id"]))
        if a["state"] == ATTEMPT_FINISHED:
            return FinishResult(int(c["id"]), True, ContactState(c["state"]), c["state"] == "settled")
        attempt = payloads.AttemptRef(
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
        change = apply_outcome(_contact_now(c, await self._number_blocked(conn, c["e164"])), ended)
        fact = change.attempt
        assert fact is not None
        await conn.execute(
            sa.update(attempts)
            .where(attempts.c.id == attempt_id)
            .values(state=ATTEMPT_FINISHED, ended_at=now, **_verdict_columns(fact.evidence, fact.outcome))
        )
        await conn.execute(
            sa.update(contacts)
            .where(contacts.c.id == c["id"])
            .values(**_change_columns(change), **_UNCLAIMED, updated_at=now, version=contacts.c.version + 1)
        )
        await add_events(conn, payloads.contact_events(_ref(c), change.announce, now, attempt=attempt), now)
        return FinishResult(int(c["id"]), False, change.state, change.settles)

    async def _locked_contact(self, conn: AsyncConnection, contact_id: int) -> RowMapping:
        """The contact row with its campaign's name, locked for the change (PostgreSQL)."""
        q = sa.select(contacts, campaigns.c.name.label("campaign_name")).join(campaigns)
        q = q.where(contacts.c.id == contact_id)
        if not self.db.is_sqlite:
            q = q.with_for_update(of=contacts)
        c = (await conn.execute(q)).mappings().first()
        if c is None:
            raise StorageError(f"no contact {contact_id}")
        return c

    @staticmethod
    async def _number_blocked(conn: AsyncConnection, e164: str | None) -> bool:
        blocked = (
            await conn.execute(
                sa.select(sa.func.count())
                .select_from(exclusions)
                .where(exclusions.c.number == e164, exclusions.c.kind.in_(_BLOCKING_KINDS))
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
                            claimed_by=None,
                            claimed_at=None,
                            claim_token=None,
                            lease_expires_at=None,
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

    # ---- operator results and call-backs ----------------------------------------------------

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
            c = await self._locked_contact(conn, contact_id)
            change = apply_outcome(_contact_now(c), OperatorSet(outcome, verdict_incorrect, callback))
            if not change.changed:
                return change
            await conn.execute(
                sa.update(contacts)
                .where(contacts.c.id == contact_id)
                .values(**_change_columns(change), updated_at=now, version=contacts.c.version + 1)
            )
            by = payloads.OperatorRef(operator, command_id, attempt_id)
            await add_events(conn, payloads.contact_events(_ref(c), change.announce, now, by=by), now)
            return change

    async def schedule_dropped_callbacks(self, contact_id: int, times: Sequence[datetime], now: datetime) -> None:
        """A dropped/held-and-lost call (seeds/04): call back at ``times`` (from
        ``schedule.dropped_callback_times``), no longer-term follow-up."""
        if not times:
            raise StorageError("no call-back times given")
        async with self.db.write() as conn:
            res = await conn.execute(
                sa.update(contacts)
                .where(contacts.c.id == contact_id, contacts.c.state != ContactState.IN_PROGRESS.value)
                .values(
                    state=ContactState.PENDING.value,
                    next_due_at=times[0],
                    next_attempt_kind=AttemptKind.DROPPED_CALLBACK.value,
                    callback_plan=[t.isoformat() for t in times[1:]],
                    updated_at=now,
                    version=contacts.c.version + 1,
                )
            )
            if not res.rowcount:
                raise StorageError(f"no contact {contact_id} (or it is being called right now)")

    # ---- exclusions ---------------------------------------------------------------------------

    async def add_exclusion(
        self,
        number: str,
        kind: ExclusionKind,
        now: datetime,
        *,
        source: str = "",
        reason: str = "",
        not_a_client: bool = False,
        campaign: str | None = None,
        external_id: str | None = None,
        command_id: str | None = None,
    ) -> AddExclusionResult:
        """Exclude ``number`` (idempotent per number and kind) and announce it once with an
        exclusion_notice. ``source`` is who asked (the notice's ``requested_by``), ``reason`` the
        free comment; ``campaign``/``external_id`` say where it was asked (optional context)."""
        async with self.db.write() as conn:
            return await self._add_exclusion(
                conn,
                number,
                kind,
                now,
                source,
                reason,
                not_a_client=not_a_client,
                campaign=campaign,
                external_id=external_id,
                command_id=command_id,
            )

    async def _add_exclusion(
        self,
        conn: AsyncConnection,
        number: str,
        kind: ExclusionKind,
        now: datetime,
        source: str,
        reason: str,
        *,
        not_a_client: bool = False,
        campaign: str | None = None,
        external_id: str | None = None,
        command_id: str | None = None,
    ) -> AddExclusionResult:
        res = await conn.execute(
            _insert_ignore(self.db, exclusions).values(
                number=number, kind=kind.value, source=source, reason=reason, created_at=now
            )
        )
        if not res.rowcount:
            return AddExclusionResult(False, 0)
        excluded = 0
        if kind.blocks_calls:
            res = await conn.execute(
                sa.update(contacts)
                .where(contacts.c.e164 == number, contacts.c.state == ContactState.PENDING.value)
                .values(state=ContactState.EXCLUDED.value, updated_at=now, version=contacts.c.version + 1)
            )
            excluded = int(res.rowcount or 0)
        contact_id: int | None = None
        if campaign is not None and external_id is not None:
            found = (
                await conn.execute(
                    sa.select(contacts.c.id)
                    .join(campaigns)
                    .where(campaigns.c.name == campaign, contacts.c.external_id == external_id)
                )
            ).scalar()
            contact_id = int(found) if found is not None else None
        await add_event(
            conn,
            payloads.exclusion_notice(
                number=number,
                kind=kind,
                occurred_at=now,
                not_a_client=not_a_client,
                campaign=campaign,
                contact_id=contact_id,
                external_id=external_id,
                requested_by=source,
                comment=reason,
                command_id=command_id,
            ),
            now,
        )
        return AddExclusionResult(True, excluded)

    async def remove_exclusion(self, number: str, kind: ExclusionKind, now: datetime) -> bool:
        """Remove one exclusion; contacts it held back become due again when nothing else blocks
        their number."""
        async with self.db.write() as conn:
            res = await conn.execute(
                sa.delete(exclusions).where(exclusions.c.number == number, exclusions.c.kind == kind.value)
            )
            if not res.rowcount:
                return False
            still = (
                await conn.execute(
                    sa.select(sa.func.count())
                    .select_from(exclusions)
                    .where(exclusions.c.number == number, exclusions.c.kind.in_(_BLOCKING_KINDS))
                )
            ).scalar_one()
            released = 0
            if not still:
                res = await conn.execute(
                    sa.update(contacts)
                    .where(contacts.c.e164 == number, contacts.c.state == ContactState.EXCLUDED.value)
                    .values(
                        state=ContactState.PENDING.value,
                        next_due_at=now,
                        updated_at=now,
                        version=contacts.c.version + 1,
                    )
                )
                released = int(res.rowcount or 0)
            await add_event(
                conn,
                payloads.exclusion_removed(
                    number=number,
                    kind=kind,
                    occurred_at=now,
                    calls_allowed=not still,
                    contacts_released=released,
                ),
                now,
            )
            return True

    async def list_exclusions(self, number: str | None = None) -> list[ExclusionRow]:
        async with self.db.read() as conn:
            q = sa.select(exclusions).order_by(exclusions.c.number, exclusions.c.kind)
            if number is not None:
                q = q.where(exclusions.c.number == number)
            return [
                ExclusionRow(r["number"], ExclusionKind(r["kind"]), r["source"], r["reason"], r["created_at"])
                for r in (await conn.execute(q)).mappings()
            ]

    async def import_exclusions(
        self, rows: Iterable[tuple[str, ExclusionKind, str, str]], now: datetime
    ) -> tuple[int, int]:
        """Add (number, kind, source, reason) rows in one transaction; returns (new, already there)."""
        new = old = 0
        async with self.db.write() as conn:
            for number, kind, source, reason in rows:
                r = await self._add_exclusion(conn, number, kind, now, source, reason)
                if r.new:
                    new += 1
                else:
                    old += 1
        return new, old

    # ---- numbering plan ------------------------------------------------------------------------

    async def replace_numbering(self, ranges: Sequence[NumberingRangeRow], source: str, now: datetime) -> int:
        """Store registry ranges; ranges of the codes present in this import replace the stored
        ones (re-importing a newer DEF-9xx.csv replaces the old DEF ranges)."""
        codes = sorted({r.code for r in ranges})
        async with self.db.write() as conn:
            for chunk in _chunks(codes, 500):
                await conn.execute(sa.delete(numbering_ranges).where(numbering_ranges.c.code.in_(chunk)))
            for chunk in _chunks(list(ranges), 5000):
                await conn.execute(
                    sa.insert(numbering_ranges),
                    [
                        {
                            "code": r.code,
                            "start": r.start,
                            "end": r.end,
                            "operator": r.operator,
                            "region": r.region,
                            "territory": r.territory,
                            "inn": r.inn,
                            "source": source,
                            "imported_at": now,
                        }
                        for r in chunk
                    ],
                )
        return len(ranges)

    async def numbering_ranges(self) -> list[NumberingRangeRow]:
        async with self.db.read() as conn:
            res = await conn.execute(
                sa.select(
                    numbering_ranges.c.code,
                    numbering_ranges.c.start,
                    numbering_ranges.c.end,
                    numbering_ranges.c.operator,
                    numbering_ranges.c.region,
                    numbering_ranges.c.territory,
                    numbering_ranges.c.inn,
                ).order_by(numbering_ranges.c.code, numbering_ranges.c.start)
            )
            return [NumberingRangeRow(*r) for r in res]

    async def iter_retimezone_candidates(self, page: int = 5000) -> AsyncIterator[list[tuple[int, str, str, str, str]]]:
        """Pages of (id, e164, number_type, campaign timezone, current tz) for not-yet-settled
        contacts whose zone did not come from the number itself (fixed lines)."""
        last = 0
        while True:
            async with self.db.read() as conn:
                res = await conn.execute(
                    sa.select(
                        contacts.c.id,
                        contacts.c.e164,
                        contacts.c.number_type,
                        campaigns.c.timezone,
                        contacts.c.timezone,
                    )
                    .join(campaigns)
                    .where(
                        contacts.c.id > last,
                        contacts.c.e164.is_not(None),
                        contacts.c.state.in_([ContactState.PENDING.value, ContactState.EXCLUDED.value]),
                        sa.or_(contacts.c.tz_source.is_(None), contacts.c.tz_source != "fixed_line"),
                    )
                    .order_by(contacts.c.id)
                    .limit(page)
                )
                rows = [(int(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4] or "")) for r in res]
            if not rows:
                return
            yield rows
            last = rows[-1][0]

    async def set_timezones(self, updates: Sequence[tuple[int, str, str]], now: datetime) -> None:
        """(contact id, zone, source) updates; due times are left to the claim-time window check."""
        if not updates:
            return
        async with self.db.write() as conn:
            await conn.execute(
                sa.update(contacts)
                .where(contacts.c.id == sa.bindparam("cid"))
                .values(timezone=sa.bindparam("tz"), tz_source=sa.bindparam("src"), updated_at=now),
                [{"cid": cid, "tz": tz, "src": src} for cid, tz, src in updates],
            )

    # ---- reading ---------------------------------------------------------------------------------

    async def get_contact(self, campaign: str, external_id: str) -> Contact:
        async with self.db.read() as conn:
            r = (
                (
                    await conn.execute(
                        sa.select(contacts)
                        .join(campaigns)
                        .where(campaigns.c.name == campaign, contacts.c.external_id == external_id)
                    )
                )
                .mappings()
                .first()
            )
        if r is None:
            raise StorageError(f"no contact {external_id!r} in campaign {campaign!r}")
        return _contact_from_row(r, campaign)

    async def iter_contacts(self, campaign: str, page: int = 5000) -> AsyncIterator[list[Contact]]:
        """Pages of the campaign's contacts in import order."""
        async with self.db.read() as conn:
            info = await self._campaign(conn, campaign)
        last = 0
        while True:
            async with self.db.read() as conn:
                res = await conn.execute(
                    sa.select(contacts)
                    .where(contacts.c.campaign_id == info.id, contacts.c.id > last)
                    .order_by(contacts.c.id)
                    .limit(page)
                )
                rows = [_contact_from_row(r, campaign) for r in res.mappings()]
            if not rows:
                return
            yield rows
            last = rows[-1].id

    async def attempts_of(self, contact_id: int) -> list[AttemptRow]:
        async with self.db.read() as conn:
            res = await conn.execute(
                sa.select(attempts)
                .where(attempts.c.contact_id == contact_id)
                .order_by(attempts.c.started_at, attempts.c.attempt_no)
            )
            return [
                AttemptRow(
                    id=r["id"],
                    contact_id=int(r["contact_id"]),
                    attempt_no=int(r["attempt_no"]),
                    kind=AttemptKind(r["kind"]),
                    state=r["state"],
                    started_at=r["started_at"],
                    ended_at=r["ended_at"],
                    call_class=CallClass(r["call_class"]) if r["call_class"] else None,
                    result=ResultCode(r["result"]) if r["result"] else None,
                    incorrect_contact=bool(r["incorrect_contact"]),
                    reason=r["reason"],
                    journal_line=r["journal_line"],
                    dead_air_ms=r["dead_air_ms"],
                    queue_wait_ms=r["queue_wait_ms"],
                    operator=r["operator"],
                    decision_ms=r["decision_ms"],
                )
                for r in res.mappings()
            ]

    async def status(self, campaign: str | None, now: datetime) -> list[CampaignStatus]:
        out: list[CampaignStatus] = []
        async with self.db.read() as conn:
            q = sa.select(campaigns.c.id, campaigns.c.name).order_by(campaigns.c.name)
            if campaign is not None:
                q = q.where(campaigns.c.name == campaign)
            camps = list(await conn.execute(q))
            if campaign is not None and not camps:
                raise StorageError(f"no campaign named {campaign!r}")
            for cid, name in camps:

                def grouped(col: sa.ColumnElement[Any], cid: int = int(cid)) -> sa.Select[Any]:
                    return (
                        sa.select(col, sa.func.count())
                        .select_from(contacts)
                        .where(contacts.c.campaign_id == cid)
                        .group_by(col)
                    )

                by_state = {str(k): int(v) for k, v in await conn.execute(grouped(contacts.c.state))}
                by_result = {str(k) if k else "none": int(v) for k, v in await conn.execute(grouped(contacts.c.result))}
                by_attempts = {int(k): int(v) for k, v in await conn.execute(grouped(contacts.c.attempts_made))}
                incorrect = (
                    await conn.execute(
                        sa.select(sa.func.count())
                        .select_from(contacts)
                        .where(contacts.c.campaign_id == cid, contacts.c.incorrect_contact.is_(True))
                    )
                ).scalar_one()
                due = (
                    await conn.execute(
                        sa.select(sa.func.count())
                        .select_from(contacts)
                        .where(
                            contacts.c.campaign_id == cid,
                            contacts.c.state == ContactState.PENDING.value,
                            contacts.c.next_due_at <= now,
                        )
                    )
                ).scalar_one()
                out.append(
                    CampaignStatus(
                        name=str(name),
                        total=sum(by_state.values()),
                        by_state=by_state,
                        by_result=by_result,
                        by_attempts=dict(sorted(by_attempts.items())),
                        incorrect_contact=int(incorrect),
                        due_now=int(due),
                    )
                )
        return out

    def _with_last_attempt(self) -> tuple[sa.FromClause, list[sa.ColumnElement[Any]]]:
        """Contacts joined with their last finished attempt (NULLs when none): the FROM clause and
        the attempt's class and hand-over figures, labelled ``last_*``. PostgreSQL runs a LATERAL
        subquery per contact; SQLite, which has none, joins the attempt whose id a correlated
        subquery picks (the faster of the shapes tried on each: bench/bench_export.py)."""
        fields = (
            attempts.c.call_class,
            attempts.c.dead_air_ms,
            attempts.c.queue_wait_ms,
            attempts.c.operator,
            attempts.c.decision_ms,
        )
        names = ("last_class", "last_dead_air_ms", "last_queue_wait_ms", "last_operator", "last_decision_ms")
        if not self.db.is_sqlite:
            lat = (
                sa.select(*fields)
                .where(attempts.c.contact_id == contacts.c.id, attempts.c.state == ATTEMPT_FINISHED)
                .order_by(attempts.c.ended_at.desc(), attempts.c.attempt_no.desc())
                .limit(1)
                .lateral("last_attempt")
            )
            return contacts.outerjoin(lat, sa.true()), [
                lat.c[f.name].label(n) for f, n in zip(fields, names, strict=True)
            ]
        a = attempts.alias("a")
        last_id = (
            sa.select(a.c.id)
            .where(a.c.contact_id == contacts.c.id, a.c.state == ATTEMPT_FINISHED)
            .order_by(a.c.ended_at.desc(), a.c.attempt_no.desc())
            .limit(1)
            .correlate(contacts)
            .scalar_subquery()
        )
        return contacts.outerjoin(attempts, attempts.c.id == last_id), [
            f.label(n) for f, n in zip(fields, names, strict=True)
        ]

    async def iter_export(self, campaign: str, page: int = 5000) -> AsyncIterator[list[ExportRow]]:
        """Pages of result rows for ``campaign`` in import order (stream; fine at 1 M contacts)."""
        async with self.db.read() as conn:
            info = await self._campaign(conn, campaign)
        joined, last_attempt = self._with_last_attempt()
        last = 0
        while True:
            async with self.db.read() as conn:
                res = await conn.execute(
                    sa.select(contacts, *last_attempt)
                    .select_from(joined)
                    .where(contacts.c.campaign_id == info.id, contacts.c.id > last)
                    .order_by(contacts.c.id)
                    .limit(page)
                )
                rows = list(res.mappings())
            if not rows:
                return
            yield [
                ExportRow(
                    external_id=r["external_id"],
                    raw_number=r["raw_number"],
                    e164=r["e164"] or "",
                    owner_kind=r["owner_kind"],
                    owner_name=r["owner_name"],
                    state=r["state"],
                    attempts_made=int(r["attempts_made"]),
                    result=RESULT_TITLES_RU[ResultCode(r["result"])] if r["result"] else "",
                    incorrect_contact=INCORRECT_CONTACT_RU if r["incorrect_contact"] else "",
                    last_call_class=r["last_class"] or "",
                    next_due_at=_iso(r["next_due_at"]) or "",
                    timezone=r["timezone"] or info.timezone,
                    journal=r["journal"],
                    extension=r["extension"] or "",
                    dead_air_ms=_text(r["last_dead_air_ms"]),
                    queue_wait_ms=_text(r["last_queue_wait_ms"]),
                    operator=r["last_operator"] or "",
                    decision_ms=_text(r["last_decision_ms"]),
                )
                for r in rows
            ]
            last = int(rows[-1]["id"])

    # ---- outbox -------------------------------------------------------------------------------

    async def fetch_unpublished(self, limit: int) -> list[OutboxRow]:
        async with self.db.read() as conn:
            res = await conn.execute(
                sa.select(outbox.c.id, outbox.c.topic, outbox.c.payload, outbox.c.key, outbox.c.created_at)
                .where(outbox.c.published_at.is_(None))
                .order_by(outbox.c.id)
                .limit(limit)
            )
            return [OutboxRow(int(r.id), r.topic, dict(r.payload), r.key, r.created_at) for r in res]

    async def mark_published(self, ids: Sequence[int], at: datetime) -> None:
        if not ids:
            return
        async with self.db.write() as conn:
            for chunk in _chunks(list(ids), 500):
                await conn.execute(
                    sa.update(outbox)
                    .where(outbox.c.id.in_(chunk), outbox.c.published_at.is_(None))
                    .values(published_at=at, attempts=outbox.c.attempts + 1)
                )

    async def record_publish_error(self, event_id: int, error: str) -> None:
        async with self.db.write() as conn:
            await conn.execute(
                sa.update(outbox)
                .where(outbox.c.id == event_id)
                .values(attempts=outbox.c.attempts + 1, last_error=error[:2000])
            )

    async def add_event(self, event: OutboxEvent, now: datetime) -> None:
        """Queue an event on its own (no state change to go with it)."""
        async with self.db.write() as conn:
            await add_event(conn, event, now)

    # ---- inbound command idempotency ---------------------------------------------------------------

    async def remember_command(
        self, command_id: str, now: datetime, fingerprint: str | None = None
    ) -> Literal["new", "duplicate", "conflict"]:
        """Returns "new" when ``command_id`` is new (and now remembered with the ``fingerprint`` of its
        content); "duplicate" for a delivery of the same content again; "conflict" when the id was
        used for other content. Atomic across workers: the primary key decides, the insert never
        fails on a duplicate."""
        async with self.db.write() as conn:
            res = await conn.execute(
                _insert_ignore(self.db, inbound_commands).values(
                    command_id=command_id, received_at=now, fingerprint=fingerprint
                )
            )
            if res.rowcount:
                return "new"
            stored = (
                await conn.execute(
                    sa.select(inbound_commands.c.fingerprint).where(inbound_commands.c.command_id == command_id)
                )
            ).scalar()
            if stored is None or fingerprint is None or stored == fingerprint:
                return "duplicate"  # ids remembered before fingerprints existed cannot be compared
            return "conflict"

    async def forget_command(self, command_id: str) -> None:
        """Forget a command id whose command could not be applied, so it may be sent again."""
        async with self.db.write() as conn:
            await conn.execute(sa.delete(inbound_commands).where(inbound_commands.c.command_id == command_id))

    async def set_command_result(self, command_id: str, result: dict[str, Any]) -> None:
        async with self.db.write() as conn:
            await conn.execute(
                sa.update(inbound_commands).where(inbound_commands.c.command_id == command_id).values(result=result)
            )

    async def command_result(self, command_id: str) -> dict[str, Any] | None:
        async with self.db.read() as conn:
            r = (
                await conn.execute(
                    sa.select(inbound_commands.c.result).where(inbound_commands.c.command_id == command_id)
                )
            ).scalar()
            return dict(r) if r is not None else None


__all__ = [
    "AddExclusionResult",
    "AttemptRow",
    "CampaignSettings",
    "CampaignStatus",
    "ClaimedContact",
    "ExclusionRow",
    "ExportRow",
    "FinishResult",
    "ImportCounts",
    "NewContact",
    "NumberingRangeRow",
    "OutboxRow",
    "PredialSettlement",
    "RecoveredAttempt",
    "Repository",
    "add_event",
]
