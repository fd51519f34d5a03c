"""Every event the repository writes into the outbox is what docs/events.md documents.

The documentation is parsed (topic headings, the JSON examples, the result-title table), the
repository is driven through each kind of state change on SQLite and PostgreSQL, and each stored
row — which the relay publishes unchanged — is checked against it: envelope, type, topic, the
exact set of fields and their JSON types, result codes with their Russian titles, e164 and the
ordering key.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from dialer.domain.model import CallClass, ExclusionKind, Outcome, ResultCode
from dialer.domain.rules import RulesTable
from dialer.events import topics
from dialer.storage.outbox import OutboxRow
from dialer.storage.repo import Repository

from .conftest import CAMPAIGN, NOW
from .helpers import csv_row, mobile, outcome_for, prepare

DOC = Path(__file__).resolve().parents[2] / "docs" / "events.md"
OUTBOX_TYPES = {
    "attempt_finished",
    "contact_settled",
    "operator_result",
    "operator_connected",
    "exclusion_notice",
    "exclusion_removed",
}
CONTACT_TYPES = {"attempt_finished", "contact_settled", "operator_result", "operator_connected"}
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


@dataclass(frozen=True)
class Documented:
    topic: str  # as written in the heading, e.g. "<p>/campaign/<campaign>/attempt"
    example: dict[str, Any]


def documented_events() -> dict[str, Documented]:
    """``### `type` — `topic` `` headings, each with the first JSON block after it."""
    text = DOC.read_text(encoding="utf-8")
    found: dict[str, Documented] = {}
    for m in re.finditer(r"^### `(\w+)` — `([^`]+)`.*?\n```json\n(.*?)\n```", text, re.M | re.S):
        found[m.group(1)] = Documented(m.group(2), json.loads(m.group(3)))
    return found


def documented_titles() -> dict[str, str]:
    text = DOC.read_text(encoding="utf-8")
    return {m.group(1): m.group(2).strip() for m in re.finditer(r"^\| `(\w+)` \| ([^|`]+) \|$", text, re.M)}


def documented_envelope() -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Common envelope", 1)[1].split("Results carry", 1)[0]
    return re.findall(r"^\| `(\w+)` \|", section, re.M)


def json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def topic_regex(documented: str) -> re.Pattern[str]:
    relative = documented.removeprefix("<p>/")
    return re.compile("^" + re.escape(relative).replace(re.escape("<campaign>"), "[^/+#]+") + "$")


async def drive_every_event_kind(repo: Repository, rules: RulesTable) -> dict[str, str | None]:
    """One of each state change that writes an event; returns external id → stored e164."""
    rows = [
        csv_row("nonum", ""),  # settled before dialling
        csv_row("gone", mobile(1)),  # «номер не существует» → settled by the rules
        csv_row("busy", mobile(2)),  # busy → retried
        csv_row("refuses", mobile(3)),
        csv_row("later", mobile(4)),
        csv_row("talks", mobile(5)),  # a person handed over, an operator answers
    ]
    await repo.import_contacts(CAMPAIGN, prepare(rules, rows, NOW), NOW)
    claimed = {c.contact.external_id: c for c in await repo.claim_due("autumn", "w1", NOW, 10)}
    for ext, cls in (("gone", CallClass.ANN_DOES_NOT_EXIST), ("busy", CallClass.BUSY)):
        aid = uuid.uuid4()
        await repo.start_attempt(claimed[ext], aid, NOW, asterisk_uniqueid=f"1736000000.{ext}")
        ev, out = outcome_for(rules, claimed[ext], cls, NOW)
        await repo.finish_attempt(aid, ev, out, NOW + timedelta(seconds=3))
    aid = uuid.uuid4()
    await repo.start_attempt(claimed["talks"], aid, NOW)
    ev, out = outcome_for(rules, claimed["talks"], CallClass.PERSON, NOW)
    ev = replace(ev, answered=True, operator="Local/op1@dialer-operators-00000001;1", queue_wait_ms=1200)
    await repo.finish_attempt(aid, ev, out, NOW + timedelta(seconds=9))
    await repo.recover_in_progress("w1", NOW)  # the others are released, never started
    refuses = await repo.get_contact("autumn", "refuses")
    await repo.record_operator_result(
        refuses.id,
        Outcome(True, ResultCode.REFUSED, False, None, "18/11 Клиент отказывается от анкетирования", "refused"),
        NOW,
        operator="op-17",
        command_id="op-1",
    )
    later = await repo.get_contact("autumn", "later")
    await repo.record_operator_result(
        later.id,
        Outcome(False, ResultCode.CALLBACK, False, NOW + timedelta(hours=3), "18/11 Перезвонить", "callback"),
        NOW,
        operator="op-17",
        callback=True,
    )
    await repo.add_exclusion(
        mobile(3), ExclusionKind.ONLINE, NOW, source="op-17", campaign="autumn", external_id="refuses"
    )
    await repo.add_exclusion(mobile(9), ExclusionKind.CALLS, NOW, source="list.csv", reason="просит")
    assert await repo.remove_exclusion(mobile(9), ExclusionKind.CALLS, NOW)
    names = ("nonum", "gone", "busy", "refuses", "later", "talks")
    return {ext: (await repo.get_contact("autumn", ext)).e164 for ext in names}


def check_row(
    row: OutboxRow, docs: dict[str, Documented], titles: dict[str, str], e164_of: dict[str, str | None]
) -> None:
    p = row.payload
    where = f"outbox row {row.id} ({row.topic})"
    envelope = documented_envelope()
    assert envelope, "docs/events.md: no envelope table found"
    for field in envelope:
        assert field in p, f"{where}: envelope field {field!r} missing"
    assert p["schema"] == 1 and uuid.UUID(p["event_id"]) and ISO_UTC.match(p["occurred_at"]), where
    doc = docs[p["type"]]
    assert topic_regex(doc.topic).match(row.topic), f"{where}: topic not {doc.topic}"
    assert list(p) == list(doc.example), f"{where}: fields differ from the documented example"
    for field, value in p.items():
        shown = doc.example[field]
        if value is not None and shown is not None:
            assert json_kind(value) == json_kind(shown), f"{where}: {field}={value!r}, documented {shown!r}"
    if "result" in p:
        assert p["result_title"] == (titles[p["result"]] if p["result"] else None), where
        flag = "Некорректный контакт" if p["incorrect_contact"] else None
        assert p["incorrect_contact_title"] == flag, where
        assert p["result_text"] == (", ".join(t for t in (p["result_title"], flag) if t) or None), where
    if p["type"] in CONTACT_TYPES:
        assert row.topic.split("/")[1] == topics.level(p["campaign"]), where
        assert p["e164"] == e164_of[p["external_id"]], where
        assert row.key == f"contact:{p['contact_id']}", where
    else:
        assert row.key == f"number:{p['number']}", where


def test_the_documentation_describes_every_outbox_event() -> None:
    docs = documented_events()
    assert OUTBOX_TYPES <= set(docs)
    assert documented_envelope() == ["schema", "type", "event_id", "occurred_at"]
    assert documented_titles()["unavailable"] == "Недоступен" and len(documented_titles()) == len(ResultCode)
    for name, d in docs.items():
        assert d.example["type"] == name  # each example sits under its own heading


async def test_every_event_the_repository_writes_is_documented(repo: Repository, rules: RulesTable) -> None:
    e164_of = await drive_every_event_kind(repo, rules)
    docs, titles = documented_events(), documented_titles()
    rows = await repo.fetch_unpublished(1000)
    for row in rows:
        check_row(row, docs, titles, e164_of)
    seen = [(r.payload["type"], r.payload.get("external_id") or r.payload.get("number")) for r in rows]
    assert set(t for t, _ in seen) == OUTBOX_TYPES  # every kind was exercised
    assert len({r.payload["event_id"] for r in rows}) == len(rows)
    # What each change announced, in outbox order per subject.
    assert [t for t, s in seen if s == "nonum"] == ["attempt_finished", "contact_settled"]
    assert [t for t, s in seen if s == "gone"] == ["attempt_finished", "contact_settled"]
    assert [t for t, s in seen if s == "busy"] == ["attempt_finished"]
    assert [t for t, s in seen if s == "refuses"] == ["operator_result", "contact_settled", "exclusion_notice"]
    assert [t for t, s in seen if s == "later"] == ["operator_result"]
    assert [t for t, s in seen if s == "talks"][:2] == ["attempt_finished", "operator_connected"]
    assert [t for t, s in seen if s == mobile(9)] == ["exclusion_notice", "exclusion_removed"]
    by_type = {(r.payload["type"], r.payload.get("external_id")): r.payload for r in rows}
    gone = by_type[("contact_settled", "gone")]
    assert (gone["result"], gone["result_title"], gone["source"]) == ("unavailable", "Недоступен", "dialer")
    assert gone["incorrect_contact_title"] == "Некорректный контакт" and gone["e164"] == mobile(1)
    assert by_type[("contact_settled", "nonum")]["source"] == "import"
    assert by_type[("contact_settled", "nonum")]["e164"] is None
    assert by_type[("attempt_finished", "nonum")]["call_class"] == "no_number"
    busy = by_type[("attempt_finished", "busy")]
    assert busy["settled"] is False and busy["result"] is None and busy["next_due_at"] is not None
    assert busy["asterisk_uniqueid"] == "1736000000.busy" and busy["worker_id"] == "w1"
    refused = by_type[("contact_settled", "refuses")]
    assert refused["source"] == "operator" and refused["result_title"] == "Отказался разговаривать"
    later = by_type[("operator_result", "later")]
    assert later["result_title"] == "Перезвонить" and later["callback_at"] == "2026-11-18T12:00:00.000000Z"
    notice = next(r.payload for r in rows if r.payload["type"] == "exclusion_notice" and r.payload["campaign"])
    assert notice["contact_id"] == (await repo.get_contact("autumn", "refuses")).id
    assert notice["notify"] == ["survey_coordinator", "sms_manager"] and notice["requested_by"] == "op-17"
