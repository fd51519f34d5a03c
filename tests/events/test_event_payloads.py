"""Topic layout and event payloads: pure, no broker."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from dialer.domain.contact_rule import AnnounceAttempt, AnnounceOperatorConnected, AnnounceSettled, SettledBy
from dialer.domain.model import AttemptKind, CallClass, Evidence, ExclusionKind, Outcome, ResultCode
from dialer.errors import InputError
from dialer.events import payloads, topics
from dialer.storage.notify import AttemptRef, ContactRef

T0 = datetime(2025, 1, 4, 10, 0, tzinfo=UTC)


def test_campaign_names_cannot_escape_their_topic_level() -> None:
    assert topics.attempt_finished("Опрос ТО") == "campaign/Опрос ТО/attempt"
    assert topics.attempt_finished("a/b") == "campaign/a%2Fb/attempt"
    assert topics.campaign_status("x+#%") == "campaign/x%2B%23%25/status"
    with pytest.raises(InputError, match="NUL"):
        topics.level("a\x00b")
    with pytest.raises(InputError, match="empty"):
        topics.level("")


def test_join_adds_prefix_and_refuses_wildcards() -> None:
    assert topics.join("dialer", "exclusion") == "dialer/exclusion"
    assert topics.join("dialer/", "exclusion") == "dialer/exclusion"
    with pytest.raises(InputError, match="invalid MQTT topic"):
        topics.join("dialer", "campaign/#")
    assert topics.command_subscription("p") == "p/cmd/+"
    assert topics.command_ack("exclusion") == "cmd/exclusion/ack"


def test_only_status_and_health_are_retained() -> None:
    assert topics.is_retained(topics.campaign_status("c"))
    assert topics.is_retained(topics.worker_health("w1"))
    assert not topics.is_retained(topics.attempt_finished("c"))
    assert not topics.is_retained(topics.EXCLUSION)


def test_iso_utc_converts_zones_and_refuses_naive() -> None:
    msk = timezone(timedelta(hours=3))
    assert payloads.iso_utc(datetime(2025, 1, 4, 13, 0, tzinfo=msk)) == "2025-01-04T10:00:00.000000Z"
    with pytest.raises(ValueError, match="naive"):
        payloads.iso_utc(datetime(2025, 1, 4, 13, 0))


def test_attempt_finished_carries_codes_titles_and_ordering_key() -> None:
    attempt_id = uuid.uuid4()
    ev = payloads.attempt_finished(
        campaign="ТО-январь",
        contact_id=42,
        external_id="crm-42",
        e164="+74951234567",
        attempt_id=attempt_id,
        attempt_no=1,
        attempt_kind=AttemptKind.CAMPAIGN,
        started_at=T0,
        ended_at=T0 + timedelta(seconds=12.5),
        evidence=Evidence(CallClass.ANN_DOES_NOT_EXIST, 0.93, "ASR: номер не существует", hangup_cause=1),
        outcome=Outcome(
            settled=True,
            result=ResultCode.UNAVAILABLE,
            incorrect_contact=True,
            next_due_at=None,
            journal_line="04/01 Номер не существует",
            rule="ann_does_not_exist",
        ),
        asterisk_uniqueid="1736000000.17",
    )
    p = ev.payload
    assert ev.topic == "campaign/ТО-январь/attempt"
    assert ev.key == "contact:42"
    assert p["schema"] == payloads.SCHEMA_VERSION and p["type"] == "attempt_finished"
    assert uuid.UUID(p["event_id"]) and ev.event_id == p["event_id"]
    assert p["occurred_at"] == "2025-01-04T10:00:12.500000Z"
    assert p["attempt_id"] == str(attempt_id) and p["e164"] == "+74951234567"
    assert p["external_id"] == "crm-42" and p["duration_s"] == 12.5
    assert p["call_class"] == "ann_does_not_exist" and p["hangup_cause"] == 1
    assert p["result"] == "unavailable" and p["result_title"] == "Недоступен"
    assert p["incorrect_contact_title"] == "Некорректный контакт"
    assert p["result_text"] == "Недоступен, Некорректный контакт"
    assert p["next_due_at"] is None and p["journal_line"] == "04/01 Номер не существует"
    assert json.loads(json.dumps(p, ensure_ascii=False)) == p  # JSON-able as is


def test_retry_attempt_has_no_result_but_a_due_time() -> None:
    ev = payloads.attempt_finished(
        campaign="c",
        contact_id=1,
        external_id="x",
        e164="+79161234567",
        attempt_id=uuid.uuid4(),
        attempt_no=1,
        attempt_kind=AttemptKind.CAMPAIGN,
        started_at=T0,
        ended_at=T0,
        evidence=Evidence(CallClass.NO_ANSWER, 1.0, "DialEnd NOANSWER"),
        outcome=Outcome(False, None, False, T0 + timedelta(hours=2), "04/01 Не отвечает", "no_answer"),
    )
    assert ev.payload["result"] is None and ev.payload["result_text"] is None
    assert ev.payload["next_due_at"] == "2025-01-04T12:00:00.000000Z"


def test_contact_settled_by_operator() -> None:
    ev = payloads.contact_settled(
        campaign="c",
        contact_id=7,
        external_id="crm-7",
        e164="+79161234567",
        result=ResultCode.REFUSED,
        incorrect_contact=False,
        attempts_made=2,
        journal="04/01 Не отвечает\n05/01 Клиент отказывается от анкетирования",
        occurred_at=T0,
        source=SettledBy.OPERATOR,
    )
    assert ev.topic == "campaign/c/contact" and ev.key == "contact:7"
    assert ev.payload["result_title"] == "Отказался разговаривать"
    assert ev.payload["incorrect_contact_title"] is None and ev.payload["source"] == "operator"


@pytest.mark.parametrize(
    ("kind", "notify", "comment"),
    [
        (ExclusionKind.CALLS, ["survey_coordinator"], "из звонков с опросом"),
        (ExclusionKind.ONLINE, ["survey_coordinator", "sms_manager"], "из рассылок анкет"),
        (ExclusionKind.ALL, ["survey_coordinator", "sms_manager"], "из звонков с опросом и рассылок"),
    ],
)
def test_exclusion_notice_names_who_must_act(kind: ExclusionKind, notify: list[str], comment: str) -> None:
    ev = payloads.exclusion_notice(number="+79161234567", kind=kind, occurred_at=T0)
    assert ev.topic == "exclusion" and ev.key == "number:+79161234567"
    assert ev.payload["notify"] == notify
    assert ev.payload["blocks_calls"] is kind.blocks_calls
    assert ev.payload["subject"] == "ИСКЛЮЧИТЬ"
    assert comment in ev.payload["comment_ru"]


def test_exclusion_for_someone_not_a_client() -> None:
    ev = payloads.exclusion_notice(
        number="+79161234567", kind=ExclusionKind.ALL, occurred_at=T0, not_a_client=True, contact_id=5
    )
    assert ev.key == "number:+79161234567"  # ordered per number, like its removal
    assert ev.payload["contact_id"] == 5 and ev.payload["not_a_client"] is True
    assert ev.payload["comment_ru"].startswith("При звонке на номер отвечает человек, не являющийся клиентом")


def test_worker_health_will_has_no_time() -> None:
    body = payloads.worker_health(worker_id="w1", status=payloads.WorkerStatus.OFFLINE, occurred_at=None)
    assert body["status"] == "offline" and body["occurred_at"] is None and body["worker_id"] == "w1"


def test_attempt_not_counted_says_so() -> None:
    ev = payloads.attempt_finished(
        campaign="c",
        contact_id=1,
        external_id="x",
        e164="+79161234567",
        attempt_id=uuid.uuid4(),
        attempt_no=2,
        attempt_kind=AttemptKind.CAMPAIGN,
        started_at=T0,
        ended_at=T0,
        evidence=Evidence(CallClass.ABORTED, 0.0, "worker restarted"),
        outcome=Outcome(False, None, False, T0, "", "aborted", counts_as_attempt=False),
    )
    assert ev.payload["counted"] is False and ev.payload["settled"] is False


def test_operator_callback_result() -> None:
    at = T0 + timedelta(hours=8)
    ev = payloads.operator_result(
        campaign="ТО-январь",
        contact_id=7,
        external_id="crm-7",
        e164="+79161234567",
        outcome=Outcome(False, ResultCode.CALLBACK, False, at, "04/01 Перезвонить вечером", "operator:callback"),
        occurred_at=T0,
        operator="op-17",
        command_id="op-1",
    )
    p = ev.payload
    assert ev.topic == "campaign/ТО-январь/operator-result" and ev.key == "contact:7"
    assert p["type"] == "operator_result" and p["settled"] is False
    assert p["result"] == "callback" and p["result_title"] == "Перезвонить"
    assert p["callback_at"] == p["next_due_at"] == "2025-01-04T18:00:00.000000Z"
    assert p["operator"] == "op-17" and p["command_id"] == "op-1" and p["attempt_id"] is None


def test_operator_result_that_retries_has_no_callback_time() -> None:
    due = T0 + timedelta(days=1)
    ev = payloads.operator_result(
        campaign="c",
        contact_id=7,
        external_id="crm-7",
        e164=None,
        outcome=Outcome(False, None, False, due, "04/01 Неудобно говорить", "operator:inconvenient"),
        occurred_at=T0,
    )
    assert ev.payload["callback_at"] is None and ev.payload["next_due_at"] == "2025-01-05T10:00:00.000000Z"


def test_exclusion_removed_is_ordered_with_the_notices_of_its_number() -> None:
    ev = payloads.exclusion_removed(
        number="+79161234567", kind=ExclusionKind.CALLS, occurred_at=T0, calls_allowed=True, contacts_released=2
    )
    notice = payloads.exclusion_notice(number="+79161234567", kind=ExclusionKind.CALLS, occurred_at=T0)
    assert ev.topic == "exclusion/removed" and ev.key == notice.key
    assert ev.payload["type"] == "exclusion_removed" and ev.payload["blocks_calls"] is True
    assert ev.payload["calls_allowed"] is True and ev.payload["contacts_released"] == 2


def test_contact_events_carry_one_contact_reference_and_the_facts_in_order() -> None:
    ref = ContactRef("autumn", 7, "ext-7", "+79161234567")
    attempt = AttemptRef(uuid.uuid4(), 2, AttemptKind.CAMPAIGN, T0, "w1", "1700.1")
    ev = Evidence(CallClass.PERSON, 0.9, "person", answered=True, operator="SIP/101", queue_wait_ms=800)
    outcome = Outcome(True, ResultCode.HANDED_TO_OPERATOR, False, None, "04/01 Передан", "person")
    facts = (
        AnnounceAttempt(ev, outcome),
        AnnounceOperatorConnected("SIP/101", 800),
        AnnounceSettled(SettledBy.DIALER, ResultCode.HANDED_TO_OPERATOR, False, 2, "04/01 Передан"),
    )
    events = payloads.contact_events(ref, facts, T0 + timedelta(seconds=30), attempt=attempt)
    assert [e.payload["type"] for e in events] == ["attempt_finished", "operator_connected", "contact_settled"]
    for e in events:
        who = {k: e.payload[k] for k in ("campaign", "contact_id", "external_id", "e164")}
        assert who == {"campaign": "autumn", "contact_id": 7, "external_id": "ext-7", "e164": "+79161234567"}
        assert e.key == "contact:7"
    assert events[0].payload["duration_s"] == 30.0 and events[0].payload["worker_id"] == "w1"
    assert events[2].payload["last_attempt_id"] == str(attempt.attempt_id)
    with pytest.raises(ValueError, match="needs its attempt"):
        payloads.contact_events(ref, facts[:1], T0)
