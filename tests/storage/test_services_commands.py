"""Inbound commands applied to the real repository (SQLite and PostgreSQL) through the processor."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from dialer.config import load_settings
from dialer.domain.model import ContactState, ExclusionKind, ResultCode
from dialer.domain.rules import RulesTable
from dialer.events.commands import CommandProcessor
from dialer.services import command_processor
from dialer.storage.repo import Repository

from .conftest import CAMPAIGN
from .helpers import csv_row, mobile, prepare

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # Monday 11:00 Moscow


def processor(repo: Repository, rules: RulesTable, woke: list[int]) -> CommandProcessor:
    settings = load_settings()
    return command_processor(
        repo,
        rules,
        own_numbers_path=settings.own_numbers_path,
        clock=lambda: NOW,
        default_campaign=CAMPAIGN,
        on_change=lambda: woke.append(1),
    )


def raw(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode()


async def seed(repo: Repository, rules: RulesTable, n: int = 2) -> None:
    await repo.ensure_campaign(CAMPAIGN, NOW)
    await repo.import_contacts(CAMPAIGN, prepare(rules, [csv_row(f"e{i}", mobile(i)) for i in range(n)], NOW), NOW)


async def test_operator_callback_then_duplicate_changes_nothing(repo: Repository, rules: RulesTable) -> None:
    await seed(repo, rules)
    woke: list[int] = []
    p = processor(repo, rules, woke)
    body = {
        "command_id": "op-1",
        "campaign": CAMPAIGN.name,
        "contact": "e0",
        "result": "callback",
        "callback_at": "2026-11-24T15:00:00+03:00",
    }
    first = await p.process("operator-result", raw(body))
    assert first.ok and first.payload["duplicate"] is False
    c = await repo.get_contact(CAMPAIGN.name, "e0")
    assert c.state is ContactState.PENDING
    assert c.next_due_at == datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    journal_after_first = c.journal
    assert journal_after_first.endswith("23/11 Клиент просит перезвонить")
    assert woke == [1]

    again = await p.process("operator-result", raw(body))
    assert again.ok and again.payload["duplicate"] is True
    c2 = await repo.get_contact(CAMPAIGN.name, "e0")
    assert c2.journal == journal_after_first and c2.next_due_at == c.next_due_at
    assert woke == [1]


async def test_wrong_person_settles_with_incorrect_contact(repo: Repository, rules: RulesTable) -> None:
    await seed(repo, rules)
    p = processor(repo, rules, [])
    reply = await p.process(
        "operator-result",
        raw({"command_id": "op-2", "campaign": CAMPAIGN.name, "contact": "e1", "result": "wrong_person"}),
    )
    assert reply.ok, reply.payload
    c = await repo.get_contact(CAMPAIGN.name, "e1")
    assert c.state is ContactState.SETTLED
    assert c.result is ResultCode.UNAVAILABLE and c.incorrect_contact
    events = [e.payload for e in await repo.fetch_unpublished(100) if e.key == f"contact:{c.id}"]
    assert [e["type"] for e in events] == ["operator_result", "contact_settled"]
    assert events[0]["command_id"] == "op-2" and events[1]["source"] == "operator"
    assert events[1]["result_text"] == "Недоступен, Некорректный контакт"


async def test_unknown_contact_is_an_error_reply_not_an_exception(repo: Repository, rules: RulesTable) -> None:
    await seed(repo, rules)
    p = processor(repo, rules, [])
    reply = await p.process(
        "operator-result", raw({"command_id": "op-3", "campaign": CAMPAIGN.name, "contact": "zz", "result": "refused"})
    )
    assert not reply.ok
    assert "zz" in reply.payload["error"]


async def test_exclusion_request_blocks_claims(repo: Repository, rules: RulesTable) -> None:
    await seed(repo, rules, n=1)
    p = processor(repo, rules, [])
    reply = await p.process("exclusion", raw({"command_id": "ex-1", "number": mobile(0), "kind": "calls"}))
    assert reply.ok and reply.payload["detail"]["new"] is True
    assert [e.kind for e in await repo.list_exclusions(mobile(0))] == [ExclusionKind.CALLS]
    assert await repo.claim_due(CAMPAIGN.name, "w", NOW + timedelta(days=1), 10) == []


async def test_not_a_client_exclusion_notice_carries_the_request(repo: Repository, rules: RulesTable) -> None:
    await seed(repo, rules, n=1)
    p = processor(repo, rules, [])
    body = {
        "command_id": "ex-2",
        "number": mobile(0),
        "not_a_client": True,
        "campaign": CAMPAIGN.name,
        "contact": "e0",
        "requested_by": "op-17",
    }
    assert (await p.process("exclusion", raw(body))).ok
    (notice,) = [e for e in await repo.fetch_unpublished(100) if e.topic == "exclusion"]
    contact = await repo.get_contact(CAMPAIGN.name, "e0")
    assert notice.key == f"number:{mobile(0)}"
    assert notice.payload["kind"] == "all" and notice.payload["not_a_client"] is True
    assert notice.payload["comment_ru"].startswith("При звонке на номер отвечает человек, не являющийся клиентом")
    assert (notice.payload["command_id"], notice.payload["contact_id"]) == ("ex-2", contact.id)
    assert notice.payload["external_id"] == "e0" and notice.payload["requested_by"] == "op-17"


async def test_dropped_callback_for_unknown_caller_plans_three_tries(repo: Repository, rules: RulesTable) -> None:
    p = processor(repo, rules, [])
    dropped = "2026-11-23T10:58:00+03:00"
    reply = await p.process(
        "dropped-callback",
        raw({"command_id": "dc-1", "campaign": "inbound", "number": "8 916 555-12-34", "dropped_at": dropped}),
    )
    assert reply.ok, reply.payload
    tries = [datetime.fromisoformat(t) for t in reply.payload["detail"]["tries_at"]]
    base = datetime.fromisoformat(dropped)
    assert tries == [base + timedelta(minutes=m) for m in (1, 2, 3)]
    c = await repo.get_contact("inbound", "dropped:+79165551234")
    assert c.state is ContactState.PENDING and c.next_due_at == tries[0]
