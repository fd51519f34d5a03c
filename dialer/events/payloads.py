"""Typed builders of the JSON events the dialer publishes (docs/events.md shows each one).

Every event is a flat JSON object with the same envelope:

    schema       int   payload schema version (bumped on incompatible change)
    type         str   EventType value
    event_id     str   UUID; consumers deduplicate on it (delivery is at least once)
    occurred_at  str   ISO 8601 UTC, "2025-01-04T10:00:00.000000Z"

Builders take every time as an argument (they never read the clock) and return an
:class:`~dialer.storage.outbox.OutboxEvent` — the relative topic, the payload and the per-contact
ordering key — ready for the storage's outbox inside the state change's transaction. The storage
hands its notifier (:class:`dialer.events.notifier.EventNotifier`) the facts the contact rule
(dialer.domain.contact_rule) said to announce, and :func:`contact_events` turns them into events,
so what is stored is exactly what is published. Stable codes
(``result: "refused"``) travel together with the Russian titles the contact centre uses
(«Отказался разговаривать»).
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from dialer.domain.contact_rule import (
    AnnounceAttempt,
    Announcement,
    AnnounceOperatorConnected,
    AnnounceOperatorResult,
    AnnounceSettled,
    SettledBy,
)
from dialer.domain.model import (
    INCORRECT_CONTACT_RU,
    RESULT_TITLES_RU,
    AttemptKind,
    Evidence,
    ExclusionKind,
    Outcome,
    ResultCode,
)
from dialer.events import topics
from dialer.storage.notify import AttemptRef, ContactRef, OperatorRef
from dialer.storage.outbox import OutboxEvent

SCHEMA_VERSION = 1

JsonObject = dict[str, Any]


class EventType(enum.StrEnum):
    ATTEMPT_FINISHED = "attempt_finished"
    CONTACT_SETTLED = "contact_settled"
    OPERATOR_RESULT = "operator_result"
    OPERATOR_CONNECTED = "operator_connected"
    EXCLUSION_NOTICE = "exclusion_notice"
    EXCLUSION_REMOVED = "exclusion_removed"
    CAMPAIGN_STATUS = "campaign_status"
    WORKER_HEALTH = "worker_health"
    COMMAND_ACK = "command_ack"
    COMMAND_ERROR = "command_error"
    ANNOUNCEMENT_DRIFT = "announcement_drift"


class WorkerStatus(enum.StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"  # also the Last Will: the broker publishes it when the worker vanishes


class Notify(enum.StrEnum):
    """Who must act on an exclusion notice (docs/rules.md §7: «создать напоминание … ИСКЛЮЧИТЬ»)."""

    SURVEY_COORDINATOR = "survey_coordinator"  # «Координатор опросов»
    SMS_MANAGER = "sms_manager"  # «СМС-менеджер»


# docs/rules.md §7: the comment line the operator records for each kind of request.
EXCLUSION_COMMENTS_RU: dict[ExclusionKind, str] = {
    ExclusionKind.CALLS: "Клиент просит исключить из звонков с опросом",
    ExclusionKind.ONLINE: "Клиент просит исключить из рассылок анкет с опросом по e-mail и(или) смс",
    ExclusionKind.ALL: "Клиент просит исключить из звонков с опросом и рассылок по e-mail и(или) смс",
}
NOT_A_CLIENT_COMMENT_RU = (
    "При звонке на номер отвечает человек, не являющийся клиентом и не имеющий отношения "
    "к обслуживанию/покупке автомобиля. Просит исключить из звонков с опросом и рассылок "
    "по e-mail и(или) смс"
)
EXCLUSION_SUBJECT_RU = "ИСКЛЮЧИТЬ"


def iso_utc(when: datetime) -> str:
    """``2025-01-04T10:00:00.000000Z``; naive datetimes are refused (they hide a zone bug)."""
    if when.tzinfo is None:
        raise ValueError(f"naive datetime {when!r}: pass an aware time")
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _iso_or_none(when: datetime | None) -> str | None:
    return None if when is None else iso_utc(when)


def envelope(event_type: EventType, occurred_at: datetime, event_id: uuid.UUID | None = None) -> JsonObject:
    return {
        "schema": SCHEMA_VERSION,
        "type": event_type.value,
        "event_id": str(event_id or uuid.uuid4()),
        "occurred_at": iso_utc(occurred_at),
    }


def contact_key(contact_id: int) -> str:
    return f"contact:{contact_id}"


def number_key(number: str) -> str:
    """Exclusions are ordered per number: a notice and the removal of one number never swap."""
    return f"number:{number}"


def result_fields(result: ResultCode | None, incorrect_contact: bool) -> JsonObject:
    """Stable code plus the Russian titles shown on the CRM card."""
    title = RESULT_TITLES_RU[result] if result is not None else None
    flag = INCORRECT_CONTACT_RU if incorrect_contact else None
    return {
        "result": result.value if result is not None else None,
        "result_title": title,
        "incorrect_contact": incorrect_contact,
        "incorrect_contact_title": flag,
        "result_text": ", ".join(t for t in (title, flag) if t) or None,  # «Недоступен, Некорректный контакт»
    }


def attempt_finished(
    *,
    campaign: str,
    contact_id: int,
    external_id: str,
    e164: str | None,
    attempt_id: uuid.UUID,
    attempt_no: int,
    attempt_kind: AttemptKind,
    started_at: datetime,
    ended_at: datetime,
    evidence: Evidence,
    outcome: Outcome,
    worker_id: str | None = None,
    asterisk_uniqueid: str | None = None,
    event_id: uuid.UUID | None = None,
) -> OutboxEvent:
    """One attempt ended (whatever its class); published for every attempt."""
    payload = envelope(EventType.ATTEMPT_FINISHED, ended_at, event_id)
    payload.update(
        campaign=campaign,
        contact_id=contact_id,
        external_id=external_id,
        e164=e164,
        attempt_id=str(attempt_id),
        attempt_no=attempt_no,
        attempt_kind=attempt_kind.value,
        started_at=iso_utc(started_at),
        ended_at=iso_utc(ended_at),
        duration_s=round((ended_at - started_at).total_seconds(), 3),
        call_class=evidence.call_class.value,
        confidence=evidence.confidence,
        reason=evidence.reason,
        hangup_cause=evidence.hangup_cause,
        dial_status=evidence.dial_status,
        answered=evidence.answered,
        asr_text=evidence.asr_text,
        # A hand-over to the operators (null otherwise): the far end's silence after its greeting,
        # the wait from the Redirect to an operator answering (or the loss), who answered.
        dead_air_ms=evidence.dead_air_ms,
        queue_wait_ms=evidence.queue_wait_ms,
        operator=evidence.operator,
        # ms from the start of the call's audio to the decision (null: no audio came)
        decision_ms=evidence.decision_ms,
        settled=outcome.settled,
        **result_fields(outcome.result, outcome.incorrect_contact),
        next_due_at=_iso_or_none(outcome.next_due_at),
        journal_line=outcome.journal_line,
        rule=outcome.rule,
        counted=outcome.counts_as_attempt,  # false: our own failure, the attempt is not used up
        worker_id=worker_id,
        asterisk_uniqueid=asterisk_uniqueid,
    )
    return OutboxEvent(topics.attempt_finished(campaign), payload, contact_key(contact_id))


def contact_settled(
    *,
    campaign: str,
    contact_id: int,
    external_id: str,
    e164: str | None,
    result: ResultCode | None,
    incorrect_contact: bool,
    attempts_made: int,
    journal: str,
    occurred_at: datetime,
    source: SettledBy = SettledBy.DIALER,
    last_attempt_id: uuid.UUID | None = None,
    callback_at: datetime | None = None,
    event_id: uuid.UUID | None = None,
) -> OutboxEvent:
    """The contact has its final result (by the rules, by an operator, or before dialling).

    ``source`` says who decided: ``dialer`` (rules), ``operator`` (an inbound command),
    ``import`` (known without dialling)."""
    payload = envelope(EventType.CONTACT_SETTLED, occurred_at, event_id)
    payload.update(
        campaign=campaign,
        contact_id=contact_id,
        external_id=external_id,
        e164=e164,
        **result_fields(result, incorrect_contact),
        attempts_made=attempts_made,
        journal=journal,
        source=SettledBy(source).value,
        last_attempt_id=str(last_attempt_id) if last_attempt_id else None,
        callback_at=_iso_or_none(callback_at),
    )
    return OutboxEvent(topics.contact_settled(campaign), payload, contact_key(contact_id))


def operator_connected(
    *,
    campaign: str,
    contact_id: int,
    external_id: str,
    e164: str | None,
    attempt_id: uuid.UUID,
    attempt_no: int,
    operator: str,
    queue_wait_ms: int | None,
    occurred_at: datetime,
    event_id: uuid.UUID | None = None,
) -> OutboxEvent:
    """An operator answered a person the dialer handed over: who took which contact, after how
    long a wait (issue 12; the agent pop-up's key is ``external_id``)."""
    payload = envelope(EventType.OPERATOR_CONNECTED, occurred_at, event_id)
    payload.update(
        campaign=campaign,
        contact_id=contact_id,
        external_id=external_id,
        e164=e164,
        attempt_id=str(attempt_id),
        attempt_no=attempt_no,
        operator=operator,
        queue_wait_ms=queue_wait_ms,
    )
    return OutboxEvent(topics.operator_connected(campaign), payload, contact_key(contact_id))


def operator_result(
    *,
    campaign: str,
    contact_id: int,
    external_id: str,
    e164: str | None,
    outcome: Outcome,
    occurred_at: datetime,
    operator: str = "",
    command_id: str | None = None,
    attempt_id: uuid.UUID | None = None,
    event_id: uuid.UUID | None = None,
) -> OutboxEvent:
    """An operator set a result on the contact (docs/rules.md §5). ``settled: false`` with
    ``result: "callback"`` is an agreed call-back at ``callback_at``; any other unsettled
    result is retried at ``next_due_at`` by the rules."""
    payload = envelope(EventType.OPERATOR_RESULT, occurred_at, event_id)
    payload.update(
        campaign=campaign,
        contact_id=contact_id,
        external_id=external_id,
        e164=e164,
        settled=outcome.settled,
        **result_fields(outcome.result, outcome.incorrect_contact),
        next_due_at=None if outcome.settled else _iso_or_none(outcome.next_due_at),
        callback_at=_iso_or_none(outcome.next_due_at) if outcome.result is ResultCode.CALLBACK else None,
        journal_line=outcome.journal_line,
        rule=outcome.rule,
        operator=operator,
        command_id=command_id,
        attempt_id=str(attempt_id) if attempt_id else None,
    )
    return OutboxEvent(topics.operator_result(campaign), payload, contact_key(contact_id))


def exclusion_notice(
    *,
    number: str,
    kind: ExclusionKind,
    occurred_at: datetime,
    not_a_client: bool = False,
    campaign: str | None = None,
    contact_id: int | None = None,
    external_id: str | None = None,
    requested_by: str = "",
    comment: str = "",
    command_id: str | None = None,
    event_id: uuid.UUID | None = None,
) -> OutboxEvent:
    """docs/rules.md §7: a person asked to be excluded; the survey coordinator (and the SMS manager for
    online/all) must act, subject «ИСКЛЮЧИТЬ»."""
    notify = [Notify.SURVEY_COORDINATOR.value]
    if kind.notifies_sms_manager:
        notify.append(Notify.SMS_MANAGER.value)
    payload = envelope(EventType.EXCLUSION_NOTICE, occurred_at, event_id)
    payload.update(
        number=number,
        kind=kind.value,
        blocks_calls=kind.blocks_calls,
        not_a_client=not_a_client,
        notify=notify,
        subject=EXCLUSION_SUBJECT_RU,
        comment_ru=NOT_A_CLIENT_COMMENT_RU if not_a_client else EXCLUSION_COMMENTS_RU[kind],
        comment=comment,
        campaign=campaign,
        contact_id=contact_id,
        external_id=external_id,
        requested_by=requested_by,
        command_id=command_id,
    )
    return OutboxEvent(topics.EXCLUSION, payload, number_key(number))


def exclusion_removed(
    *,
    number: str,
    kind: ExclusionKind,
    occurred_at: datetime,
    calls_allowed: bool,
    contacts_released: int,
    event_id: uuid.UUID | None = None,
) -> OutboxEvent:
    """An exclusion was lifted. ``calls_allowed`` is false when another exclusion of the number
    still blocks survey calls; ``contacts_released`` counts the held-back contacts now due."""
    payload = envelope(EventType.EXCLUSION_REMOVED, occurred_at, event_id)
    payload.update(
        number=number,
        kind=kind.value,
        blocks_calls=kind.blocks_calls,
        calls_allowed=calls_allowed,
        contacts_released=contacts_released,
    )
    return OutboxEvent(topics.EXCLUSION_REMOVED, payload, number_key(number))


def campaign_status(
    *,
    campaign: str,
    occurred_at: datetime,
    contacts: Mapping[str, int],
    results: Mapping[str, int] | None = None,
    live_calls: int = 0,
    running: bool = True,
    event_id: uuid.UUID | None = None,
) -> JsonObject:
    """Retained snapshot of a campaign: contacts per state, settled contacts per result."""
    payload = envelope(EventType.CAMPAIGN_STATUS, occurred_at, event_id)
    payload.update(
        campaign=campaign,
        running=running,
        live_calls=live_calls,
        contacts=dict(contacts),
        results=dict(results or {}),
    )
    return payload


def worker_health(
    *,
    worker_id: str,
    status: WorkerStatus,
    occurred_at: datetime | None,
    details: Mapping[str, Any] | None = None,
    event_id: uuid.UUID | None = None,
) -> JsonObject:
    """Heartbeat. ``occurred_at`` is None only in the Last Will, which is written at connect
    time and published by the broker later, so no honest time can be given."""
    payload: JsonObject = {
        "schema": SCHEMA_VERSION,
        "type": EventType.WORKER_HEALTH.value,
        "event_id": str(event_id or uuid.uuid4()),
        "occurred_at": _iso_or_none(occurred_at),
        "worker_id": worker_id,
        "status": status.value,
    }
    payload.update(details or {})
    return payload


def command_ack(
    *,
    command_id: str,
    command_type: str,
    occurred_at: datetime,
    duplicate: bool,
    detail: Mapping[str, Any] | None = None,
    event_id: uuid.UUID | None = None,
) -> JsonObject:
    payload = envelope(EventType.COMMAND_ACK, occurred_at, event_id)
    payload.update(
        command_id=command_id,
        command_type=command_type,
        status="duplicate" if duplicate else "applied",
        duplicate=duplicate,
        detail=dict(detail or {}),
    )
    return payload


def command_error(
    *,
    command_id: str | None,
    command_type: str,
    occurred_at: datetime,
    error: str,
    field: str | None = None,
    event_id: uuid.UUID | None = None,
) -> JsonObject:
    payload = envelope(EventType.COMMAND_ERROR, occurred_at, event_id)
    payload.update(command_id=command_id, command_type=command_type, error=error, field=field)
    return payload


def announcement_drift(
    *, kind: str, subject: str, value: float, baseline: float | None, message: str, occurred_at: datetime
) -> OutboxEvent:
    """A known recording not heard for long, or a carrier's unknown-announcement rate jumped
    (dialer.learn.drift): a carrier may have changed its recordings."""
    payload = envelope(EventType.ANNOUNCEMENT_DRIFT, occurred_at)
    payload.update(kind=kind, subject=subject, value=value, baseline=baseline, message=message)
    return OutboxEvent(topics.ANNOUNCEMENT_DRIFT, payload, key=f"drift:{kind}:{subject}")


def contact_events(
    ref: ContactRef,
    facts: Sequence[Announcement],
    occurred_at: datetime,
    *,
    attempt: AttemptRef | None = None,
    by: OperatorRef | None = None,
) -> list[OutboxEvent]:
    """The outbox events of the facts the contact rule announced, in order."""
    return [_contact_event(ref, fact, occurred_at, attempt, by or OperatorRef()) for fact in facts]


def _contact_event(
    ref: ContactRef, fact: Announcement, at: datetime, attempt: AttemptRef | None, by: OperatorRef
) -> OutboxEvent:
    who: dict[str, Any] = {
        "campaign": ref.campaign,
        "contact_id": ref.contact_id,
        "external_id": ref.external_id,
        "e164": ref.e164,
    }
    if isinstance(fact, AnnounceOperatorResult):
        return operator_result(
            **who,
            outcome=fact.outcome,
            occurred_at=at,
            operator=by.operator,
            command_id=by.command_id,
            attempt_id=by.attempt_id,
        )
    if isinstance(fact, AnnounceSettled):
        return contact_settled(
            **who,
            result=fact.result,
            incorrect_contact=fact.incorrect_contact,
            attempts_made=fact.attempts_made,
            journal=fact.journal,
            occurred_at=at,
            source=fact.source,
            last_attempt_id=attempt.attempt_id if attempt is not None else None,
        )
    if attempt is None:
        raise ValueError(f"{type(fact).__name__} needs its attempt")
    if isinstance(fact, AnnounceOperatorConnected):
        return operator_connected(
            **who,
            attempt_id=attempt.attempt_id,
            attempt_no=attempt.attempt_no,
            operator=fact.operator,
            queue_wait_ms=fact.queue_wait_ms,
            occurred_at=at,
        )
    return _attempt_event(who, fact, at, attempt)


def _attempt_event(who: dict[str, Any], fact: AnnounceAttempt, at: datetime, attempt: AttemptRef) -> OutboxEvent:
    return attempt_finished(
        **who,
        attempt_id=attempt.attempt_id,
        attempt_no=attempt.attempt_no,
        attempt_kind=attempt.kind,
        started_at=attempt.started_at,
        ended_at=at,
        evidence=fact.evidence,
        outcome=fact.outcome,
        worker_id=attempt.worker_id,
        asterisk_uniqueid=attempt.asterisk_uniqueid,
    )
