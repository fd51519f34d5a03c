"""The operators' context on the call's channel (dialer.handover): what the Originate carries."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from dialer.domain.model import AttemptKind, Contact
from dialer.handover import MAX_VALUE_CHARS, handover_variables, last_journal_lines
from dialer.storage.dialling import ClaimedContact

JOURNAL = "01/11 Не дозвонились\n02/11 Перезвонить, после 18:00\n\n03/11 Занято\n04/11 Автоответчик\n"


def claimed(journal: str = JOURNAL) -> ClaimedContact:
    contact = Contact(42, "ТО-январь", "crm, 7", "+79161234567", "+79161234567", None, journal=journal)
    return ClaimedContact(contact, 3, AttemptKind.CAMPAIGN, uuid.uuid4(), datetime(2026, 1, 5, tzinfo=UTC), "w1")


def test_variables_carry_contact_campaign_attempt_and_journal() -> None:
    v = handover_variables(claimed(), "ТО-январь")
    assert v == {
        "DIALER_ATTEMPT": "3",
        "__DIALER_CONTACT": "crm; 7",  # Asterisk splits Variable headers on commas
        "__DIALER_CONTACT_ID": "42",
        "__DIALER_CAMPAIGN": "ТО-январь",
        "__DIALER_ATTEMPT_NO": "3",
        "__DIALER_JOURNAL": "02/11 Перезвонить; после 18:00 | 03/11 Занято | 04/11 Автоответчик",
    }
    assert all("," not in x and "\n" not in x and "\r" not in x for x in v.values())


def test_long_journal_keeps_the_newest_text() -> None:
    value = last_journal_lines("01/11 старое\n" + "05/11 " + "я" * 1000 + " конец")
    assert len(value) == MAX_VALUE_CHARS and value.endswith("конец")
    assert last_journal_lines("") == ""
