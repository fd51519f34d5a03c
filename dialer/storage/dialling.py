"""What the worker needs of the storage (:class:`DiallingStore`) and the values it gets back.

The worker and its lease keeper depend on this Protocol only; :class:`~dialer.storage.repo.Repository`
implements it (claims: dialer.storage.claims, attempts: dialer.storage.attempts)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from dialer.domain.compliance import ComplianceConfig
from dialer.domain.model import AttemptKind, Contact, ContactState, Evidence, Outcome

if TYPE_CHECKING:
    from dialer.storage.campaigns import CampaignSettings
    from dialer.storage.db import Database

__all__ = ["ClaimedContact", "DiallingStore", "FinishResult", "RecoveredAttempt"]


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


class DiallingStore(Protocol):
    """The storage as the worker and its lease keeper use it."""

    @property
    def db(self) -> Database: ...  # the lease queries (dialer.storage.leases) share it

    compliance: ComplianceConfig  # COMPLIANCE: the claim skips capped contacts

    async def campaign_names(self) -> list[str]: ...

    async def campaign_settings(self, name: str) -> CampaignSettings: ...

    async def claim_due(
        self,
        campaign: str,
        worker_id: str,
        now: datetime,
        limit: int,
        concurrency_cap: int | None = None,
        *,
        lease_until: datetime | None = None,
    ) -> list[ClaimedContact]: ...

    async def release(self, claimed: ClaimedContact, now: datetime, next_due_at: datetime | None = None) -> bool: ...

    async def start_attempt(
        self,
        claimed: ClaimedContact,
        attempt_id: uuid.UUID,
        now: datetime,
        *,
        server_name: str | None = None,
        asterisk_uniqueid: str | None = None,
    ) -> None: ...

    async def note_channel(
        self, attempt_id: uuid.UUID, *, asterisk_uniqueid: str | None, server_name: str | None
    ) -> None: ...

    async def finish_attempt(
        self,
        attempt_id: uuid.UUID,
        evidence: Evidence,
        outcome: Outcome,
        now: datetime,
        *,
        counts_as_attempt: bool = True,
        dropped_callbacks: Sequence[datetime] = (),
    ) -> FinishResult: ...
