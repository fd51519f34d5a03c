"""Application services: the inbound commands (operator results, dropped-call call-backs,
exclusion requests) applied to storage through the domain rules.

Used by the MQTT command subscriber and by the CLI verbs `dialer operator-result`,
`dialer dropped-callback` and `dialer exclusions request`, which feed the same JSON through the same
:class:`~dialer.events.commands.CommandProcessor`: one validation, one idempotency table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from dialer.csvio import CsvContact
from dialer.domain.model import CardFlag, ExclusionKind, OwnerKind
from dialer.domain.policy import apply_operator_result, load_own_numbers
from dialer.domain.rules import OperatorResult as DomainOperatorResult
from dialer.domain.rules import RulesTable
from dialer.domain.schedule import CallingWindows
from dialer.errors import InputError, StorageError
from dialer.events.commands import CommandProcessor, DroppedCallback, ExclusionRequest, OperatorResult
from dialer.storage.campaigns import CampaignSettings
from dialer.storage.ingest import ContactPreparer
from dialer.storage.repo import Repository

log = logging.getLogger(__name__)


class RepositoryCommandHandler:
    """Implements dialer.events.commands.CommandHandler on the real repository."""

    def __init__(
        self,
        repo: Repository,
        rules: RulesTable,
        *,
        own_numbers: frozenset[str],
        clock: Callable[[], datetime],
        default_campaign: CampaignSettings,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.repo = repo
        self.rules = rules
        self.own_numbers = own_numbers
        self.clock = clock
        self.default_campaign = default_campaign
        self.on_change = on_change  # wake the worker: something may be due now

    async def _campaign(self, name: str) -> CampaignSettings:
        if name in await self.repo.campaign_names():
            return await self.repo.campaign_settings(name)
        raise InputError(f"unknown campaign {name!r}")

    async def apply_operator_result(self, command: OperatorResult, /) -> Mapping[str, Any]:
        campaign = await self._campaign(command.campaign)
        try:
            contact = await self.repo.get_contact(command.campaign, command.external_id)
        except StorageError as exc:
            raise InputError(str(exc)) from None
        now = self.clock()
        tz = contact.timezone or campaign.timezone
        windows = CallingWindows.parse(campaign.weekday_window, campaign.weekend_window)
        result = DomainOperatorResult(command.outcome.value)
        outcome = apply_operator_result(
            contact,
            result,
            max(1, contact.attempts_made),
            now,
            self.rules,
            windows,
            tz,
            callback_at=command.callback_at,
            comment=command.comment or None,
        )
        stored = await self.repo.record_operator_result(
            contact.id,
            outcome,
            now,
            operator=command.operator,
            callback=result is DomainOperatorResult.CALLBACK,
            command_id=command.command_id,
            attempt_id=command.attempt_id,
            verdict_incorrect=command.outcome.contact_verdict,
        )
        if stored.changed:
            self.on_change()
        return {
            "result": stored.result.value if stored.result else None,
            "incorrect_contact": stored.incorrect_contact,
            "settled": stored.settles,
            "next_due_at": stored.next_due_at.isoformat() if stored.next_due_at else None,
            "journal_line": outcome.journal_line if stored.line_appended else None,
            "unchanged": not stored.changed,
        }

    async def request_dropped_callback(self, command: DroppedCallback, /) -> Mapping[str, Any]:
        now = self.clock()
        names = await self.repo.campaign_names()
        campaign = (
            await self.repo.campaign_settings(command.campaign)
            if command.campaign in names
            else CampaignSettings(
                name=command.campaign,
                timezone=self.default_campaign.timezone,
                weekday_window=self.default_campaign.weekday_window,
                weekend_window=self.default_campaign.weekend_window,
                concurrency=self.default_campaign.concurrency,
            )
        )
        await self.repo.ensure_campaign(campaign, now)
        external_id = command.external_id or f"dropped:{command.number}"
        try:
            contact = await self.repo.get_contact(campaign.name, external_id)
        except StorageError:
            # An inbound caller we do not know yet: make them a contact of the call-back campaign.
            prep = ContactPreparer(campaign, self.rules, self.own_numbers)
            row = CsvContact(
                0, external_id, command.raw_number, OwnerKind.PERSON, command.name, frozenset[CardFlag](), ""
            )
            await self.repo.import_contacts(campaign, [prep.prepare(row, now)], now)
            contact = await self.repo.get_contact(campaign.name, external_id)
        await self.repo.schedule_dropped_callbacks(contact.id, list(command.tries_at), now)
        self.on_change()
        return {"contact": external_id, "tries_at": [t.isoformat() for t in command.tries_at]}

    async def apply_exclusion(self, command: ExclusionRequest, /) -> Mapping[str, Any]:
        kind = ExclusionKind.ALL if command.not_a_client else command.kind
        res = await self.repo.add_exclusion(
            command.number,
            kind,
            self.clock(),
            source=command.requested_by,
            reason=command.comment,
            not_a_client=command.not_a_client,
            campaign=command.campaign,
            external_id=command.external_id,
            command_id=command.command_id,
        )
        return {
            "number": command.number,
            "kind": kind.value,
            "new": res.new,
            "contacts_excluded": res.contacts_excluded,
        }


def command_processor(
    repo: Repository,
    rules: RulesTable,
    *,
    own_numbers_path: Any,
    clock: Callable[[], datetime],
    default_campaign: CampaignSettings,
    region: str = "RU",
    on_change: Callable[[], None] = lambda: None,
) -> CommandProcessor:
    handler = RepositoryCommandHandler(
        repo,
        rules,
        own_numbers=load_own_numbers(own_numbers_path),
        clock=clock,
        default_campaign=default_campaign,
        on_change=on_change,
    )
    return CommandProcessor(repo, handler, clock=clock, region=region)
