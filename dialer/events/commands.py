"""Inbound commands: operator results, call-backs of dropped inbound calls, exclusion requests.

Transport-free core (:func:`parse_command`, :class:`CommandProcessor`) plus the MQTT subscriber
(:class:`CommandSubscriber`). The CLI can feed the same processor, so a command means the same
thing whichever way it arrives.

Topics: ``<prefix>/cmd/<type>`` in, ``<prefix>/cmd/<type>/ack`` or ``…/error`` out (QoS 1).
Every message is answered: applied, duplicate (the same ``command_id`` with the same content was
seen before — nothing changes) or error with the reason; the same ``command_id`` with other
content is a conflict (an error reply; nothing changes). A command that could not be applied
(unknown contact, database down) is not remembered, so it may be sent again with the same id.
A malformed message never stops the subscriber.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import json
import logging
import random
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

import aiomqtt
import phonenumbers

from dialer.config import MqttSettings
from dialer.domain.model import ExclusionKind, ResultCode
from dialer.domain.schedule import DROPPED_CALLBACK_OFFSETS
from dialer.errors import DialerError, InputError
from dialer.events import payloads, topics
from dialer.events.broker import QOS_AT_LEAST_ONCE, Backoff, MqttLink, OutageLog, utc_now
from dialer.events.publisher import encode

log = logging.getLogger(__name__)

MAX_COMMAND_BYTES = 64 * 1024
MAX_ID_CHARS = 200
MAX_TEXT_CHARS = 2000
# docs/rules.md §6: a dropped inbound call is called back 3 times, at +1, +2 and +3 minutes (the
# domain's schedule is the one source of these offsets).
DROPPED_CALLBACK_OFFSETS_S: tuple[float, ...] = tuple(o.total_seconds() for o in DROPPED_CALLBACK_OFFSETS)
# A call-back time this far in the past is a mistake (clock skew of a few seconds is not).
CALLBACK_PAST_TOLERANCE_S = 60.0


class CommandType(enum.StrEnum):
    OPERATOR_RESULT = "operator-result"
    DROPPED_CALLBACK = "dropped-callback"
    EXCLUSION = "exclusion"


class OperatorOutcome(enum.StrEnum):
    """What an operator can set on a human-answered call (docs/rules.md §5)."""

    REFUSED = "refused"  # «Отказался разговаривать»
    CALLBACK = "callback"  # a call-back time was agreed
    WRONG_PERSON = "wrong_person"  # not the owner / not responsible → «Некорректный контакт»
    COMPLETED = "completed"  # survey done
    # The same values as dialer.domain.rules.OperatorResult (the rules table decides the result):
    INCONVENIENT = "inconvenient"  # «неудобно разговаривать», no call-back time given
    BAD_LINE = "bad_line"  # picked up but cannot hear
    NOT_RESPONSIBLE = "not_responsible"  # organisation employee not responsible for the car
    COMPANY_EMPLOYEE = "company_employee"  # an employee's mobile while the owner is a client

    @property
    def result(self) -> ResultCode:
        return _OUTCOME_RESULTS[self]

    @property
    def incorrect_contact(self) -> bool:
        return self in (OperatorOutcome.WRONG_PERSON, OperatorOutcome.NOT_RESPONSIBLE, OperatorOutcome.COMPANY_EMPLOYEE)

    @property
    def contact_verdict(self) -> bool | None:
        """What the result says about «Некорректный контакт»: True wrong contact, False the
        operator spoke with the right person, None nothing (a bad line)."""
        if self.incorrect_contact:
            return True
        return None if self is OperatorOutcome.BAD_LINE else False


_OUTCOME_RESULTS = {
    OperatorOutcome.REFUSED: ResultCode.REFUSED,
    OperatorOutcome.CALLBACK: ResultCode.CALLBACK,
    OperatorOutcome.WRONG_PERSON: ResultCode.UNAVAILABLE,  # «Недоступен» + «Некорректный контакт»
    OperatorOutcome.COMPLETED: ResultCode.COMPLETED,
    # What these lead to in the default rules (the ack of the real handler reports the rules' verdict):
    OperatorOutcome.INCONVENIENT: ResultCode.REFUSED,
    OperatorOutcome.BAD_LINE: ResultCode.UNAVAILABLE,
    OperatorOutcome.NOT_RESPONSIBLE: ResultCode.UNAVAILABLE,
    OperatorOutcome.COMPANY_EMPLOYEE: ResultCode.UNAVAILABLE,
}


@dataclass(frozen=True, slots=True)
class OperatorResult:
    command_id: str
    campaign: str
    external_id: str  # the contact's CRM id
    outcome: OperatorOutcome
    attempt_id: uuid.UUID | None
    callback_at: datetime | None  # set iff outcome is CALLBACK; aware
    comment: str  # journal text from the operator; the dialer adds the DD/MM prefix
    operator: str
    received_at: datetime

    @property
    def result(self) -> ResultCode:
        return self.outcome.result

    @property
    def incorrect_contact(self) -> bool:
        return self.outcome.incorrect_contact


@dataclass(frozen=True, slots=True)
class DroppedCallback:
    command_id: str
    campaign: str
    number: str  # E.164
    raw_number: str
    external_id: str | None
    name: str
    dropped_at: datetime
    tries_at: tuple[datetime, ...]  # the call-back plan: dropped_at + each offset
    comment: str
    received_at: datetime


@dataclass(frozen=True, slots=True)
class ExclusionRequest:
    command_id: str
    number: str  # E.164
    raw_number: str
    kind: ExclusionKind
    not_a_client: bool  # docs/rules.md §7: not a client at all → always «all»
    campaign: str | None
    external_id: str | None
    requested_by: str
    comment: str
    received_at: datetime


Command = OperatorResult | DroppedCallback | ExclusionRequest


class CommandRejected(InputError):
    """A command that cannot be applied; the message names the field and the problem."""

    def __init__(self, message: str, *, field: str | None = None, command_id: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.command_id = command_id


# --- Protocols the application implements -------------------------------------------------------


CommandSeen = Literal["new", "duplicate", "conflict"]


class CommandStore(Protocol):
    async def remember_command(self, command_id: str, now: datetime, fingerprint: str, /) -> CommandSeen:
        """Record ``command_id`` with the ``fingerprint`` of its content: "new" the first time,
        "duplicate" when it was seen with the same content, "conflict" with other content. Must
        be atomic across workers (a unique key), so only one worker applies a command."""
        ...

    async def forget_command(self, command_id: str, /) -> None:
        """Drop a remembered id whose command could not be applied (it may come again)."""
        ...


class CommandHandler(Protocol):
    """Applies validated commands to storage. Each method returns JSON-able details for the
    ack; raising InputError (e.g. unknown contact) turns into an error reply. Writing the
    resulting events (payloads.contact_settled, payloads.exclusion_notice) into the outbox, in
    the same transaction, is the handler's job."""

    async def apply_operator_result(self, command: OperatorResult, /) -> Mapping[str, Any]: ...

    async def request_dropped_callback(self, command: DroppedCallback, /) -> Mapping[str, Any]: ...

    async def apply_exclusion(self, command: ExclusionRequest, /) -> Mapping[str, Any]: ...


# --- validation ---------------------------------------------------------------------------------


class _Fields:
    """Typed reads from a decoded JSON object with messages naming the field."""

    def __init__(self, data: Mapping[str, Any], command_id: str | None) -> None:
        self._data = data
        self._cid = command_id

    def reject(self, message: str, field: str | None = None) -> CommandRejected:
        return CommandRejected(message, field=field, command_id=self._cid)

    def text(self, name: str, *, required: bool = True, max_chars: int = MAX_ID_CHARS) -> str | None:
        value = self._data.get(name)
        if value is None:
            if required:
                raise self.reject(f"missing required field '{name}'", name)
            return None
        if not isinstance(value, str):
            raise self.reject(f"field '{name}' must be a string, got {_json_type(value)}", name)
        value = value.strip()
        if required and not value:
            raise self.reject(f"field '{name}' must not be empty", name)
        if len(value) > max_chars:
            raise self.reject(f"field '{name}' is longer than {max_chars} characters", name)
        return value

    def req(self, name: str, max_chars: int = MAX_ID_CHARS) -> str:
        value = self.text(name, required=True, max_chars=max_chars)
        assert value is not None
        return value

    def opt(self, name: str, max_chars: int = MAX_ID_CHARS) -> str:
        return self.text(name, required=False, max_chars=max_chars) or ""

    def flag(self, name: str) -> bool:
        value = self._data.get(name, False)
        if not isinstance(value, bool):
            raise self.reject(f"field '{name}' must be true or false, got {_json_type(value)}", name)
        return value

    def time(self, name: str, *, required: bool) -> datetime | None:
        raw = self.text(name, required=required, max_chars=64)
        if not raw:
            return None
        try:
            when = datetime.fromisoformat(raw)
        except ValueError:
            raise self.reject(
                f"field '{name}' is not an ISO 8601 time: {raw!r} (expected e.g. 2025-01-04T15:30:00+03:00)",
                name,
            ) from None
        if when.tzinfo is None:
            raise self.reject(
                f"field '{name}' has no UTC offset: {raw!r} (add Z or +03:00, the time must be unambiguous)",
                name,
            )
        return when

    def choice(self, name: str, enum_type: type[enum.StrEnum]) -> str:
        value = self.req(name, max_chars=64)
        allowed = [m.value for m in enum_type]
        if value not in allowed:
            raise self.reject(f"field '{name}' is {value!r}; expected one of {', '.join(allowed)}", name)
        return value


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null" if value is None else type(value).__name__


_COMMON = frozenset({"command_id", "type"})
_ALLOWED: dict[CommandType, frozenset[str]] = {
    CommandType.OPERATOR_RESULT: _COMMON
    | {"campaign", "contact", "attempt_id", "result", "callback_at", "comment", "operator"},
    CommandType.DROPPED_CALLBACK: _COMMON | {"campaign", "number", "contact", "name", "dropped_at", "comment"},
    CommandType.EXCLUSION: _COMMON
    | {"number", "kind", "not_a_client", "campaign", "contact", "requested_by", "comment"},
}


def normalise_number(raw: str, region: str, field: _Fields, name: str = "number") -> str:
    """E.164 of a number as an operator or CRM wrote it (8 495 …, +7 (495) …)."""
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise field.reject(f"field '{name}' is not a phone number: {raw!r} ({exc})", name) from None
    if not phonenumbers.is_valid_number(parsed):
        raise field.reject(f"field '{name}' is not a valid phone number for region {region}: {raw!r}", name)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def fingerprint(data: Mapping[str, Any]) -> str:
    """sha256 of a command's content (its JSON without ``command_id`` and ``type``, keys sorted):
    equal for a re-sent command, different when an id is reused for another command."""
    content = {k: v for k, v in data.items() if k not in ("command_id", "type")}
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def decode(raw: bytes) -> tuple[dict[str, Any], str | None]:
    """JSON object and its command_id (when one can be read, for the error reply)."""
    if len(raw) > MAX_COMMAND_BYTES:
        raise CommandRejected(f"message is {len(raw)} bytes; the limit is {MAX_COMMAND_BYTES}")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise CommandRejected(f"message is not UTF-8: {exc}") from None
    except json.JSONDecodeError as exc:
        raise CommandRejected(f"message is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(data, dict):
        raise CommandRejected(f"message must be a JSON object, got {_json_type(data)}")
    cid = data.get("command_id")
    return data, cid.strip() if isinstance(cid, str) and cid.strip() else None


def parse_command(
    command_type: str,
    raw: bytes,
    *,
    now: datetime,
    region: str = "RU",
    dropped_callback_offsets_s: Sequence[float] = DROPPED_CALLBACK_OFFSETS_S,
) -> Command:
    """Validate one command. Raises CommandRejected with a message naming the field."""
    data, cid = decode(raw)
    f = _Fields(data, cid)
    ctype = _command_type(command_type, data, f)
    command_id = f.req("command_id")
    unknown = sorted(set(data) - _ALLOWED[ctype])
    if unknown:
        raise f.reject(
            f"unknown field(s) {', '.join(map(repr, unknown))} for {ctype.value}; "
            f"allowed: {', '.join(sorted(_ALLOWED[ctype]))}",
            unknown[0],
        )
    if ctype is CommandType.OPERATOR_RESULT:
        return _operator_result(f, data, command_id, now)
    if ctype is CommandType.DROPPED_CALLBACK:
        return _dropped_callback(f, data, command_id, now, region, dropped_callback_offsets_s)
    return _exclusion(f, data, command_id, now, region)


def _command_type(command_type: str, data: Mapping[str, Any], f: _Fields) -> CommandType:
    """The type the topic names, which the message's own ``type`` (if any) must repeat."""
    try:
        ctype = CommandType(command_type)
    except ValueError:
        raise f.reject(
            f"unknown command type {command_type!r}; expected one of {', '.join(t.value for t in CommandType)}",
            "type",
        ) from None
    if "type" in data and data["type"] != ctype.value:
        raise f.reject(f"field 'type' is {data['type']!r} but the message came for {ctype.value!r}", "type")
    return ctype


def _operator_result(f: _Fields, data: Mapping[str, Any], command_id: str, now: datetime) -> OperatorResult:
    outcome = OperatorOutcome(f.choice("result", OperatorOutcome))
    callback_at = f.time("callback_at", required=outcome is OperatorOutcome.CALLBACK)
    if callback_at is not None and outcome is not OperatorOutcome.CALLBACK:
        raise f.reject(
            f"field 'callback_at' is only allowed with result 'callback', not {outcome.value!r}", "callback_at"
        )
    if callback_at is not None and callback_at < now - timedelta(seconds=CALLBACK_PAST_TOLERANCE_S):
        raise f.reject(f"field 'callback_at' is in the past: {data['callback_at']!r}", "callback_at")
    attempt_raw = f.opt("attempt_id", max_chars=64)
    attempt_id = None
    if attempt_raw:
        try:
            attempt_id = uuid.UUID(attempt_raw)
        except ValueError:
            raise f.reject(f"field 'attempt_id' is not a UUID: {attempt_raw!r}", "attempt_id") from None
    return OperatorResult(
        command_id=command_id,
        campaign=f.req("campaign"),
        external_id=f.req("contact"),
        outcome=outcome,
        attempt_id=attempt_id,
        callback_at=callback_at,
        comment=f.opt("comment", MAX_TEXT_CHARS),
        operator=f.opt("operator"),
        received_at=now,
    )


def _dropped_callback(
    f: _Fields, data: Mapping[str, Any], command_id: str, now: datetime, region: str, offsets_s: Sequence[float]
) -> DroppedCallback:
    raw_number = f.req("number", max_chars=64)
    dropped_at = f.time("dropped_at", required=False) or now
    if dropped_at > now + timedelta(seconds=CALLBACK_PAST_TOLERANCE_S):
        raise f.reject(f"field 'dropped_at' is in the future: {data['dropped_at']!r}", "dropped_at")
    return DroppedCallback(
        command_id=command_id,
        campaign=f.req("campaign"),
        number=normalise_number(raw_number, region, f),
        raw_number=raw_number,
        external_id=f.opt("contact") or None,
        name=f.opt("name"),
        dropped_at=dropped_at,
        tries_at=tuple(dropped_at + timedelta(seconds=s) for s in offsets_s),
        comment=f.opt("comment", MAX_TEXT_CHARS),
        received_at=now,
    )


def _exclusion(f: _Fields, data: Mapping[str, Any], command_id: str, now: datetime, region: str) -> ExclusionRequest:
    raw_number = f.req("number", max_chars=64)
    not_a_client = f.flag("not_a_client")
    if not_a_client and data.get("kind") is None:
        kind = ExclusionKind.ALL
    else:
        kind = ExclusionKind(f.choice("kind", ExclusionKind))
    if not_a_client and kind is not ExclusionKind.ALL:
        raise f.reject(
            f"someone who is not a client is excluded from everything: 'kind' must be 'all', not {kind.value!r}",
            "kind",
        )
    return ExclusionRequest(
        command_id=command_id,
        number=normalise_number(raw_number, region, f),
        raw_number=raw_number,
        kind=kind,
        not_a_client=not_a_client,
        campaign=f.opt("campaign") or None,
        external_id=f.opt("contact") or None,
        requested_by=f.opt("requested_by"),
        comment=f.opt("comment", MAX_TEXT_CHARS),
        received_at=now,
    )


# --- processing ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reply:
    """The answer to one command: ``topic`` is relative to the prefix."""

    topic: str
    payload: dict[str, Any]

    @property
    def ok(self) -> bool:
        return bool(self.payload["type"] == payloads.EventType.COMMAND_ACK.value)


class CommandProcessor:
    """Validation → idempotency → handler → reply. Never raises for a bad message."""

    def __init__(
        self,
        store: CommandStore,
        handler: CommandHandler,
        *,
        clock: Callable[[], datetime] = utc_now,
        region: str = "RU",
        dropped_callback_offsets_s: Sequence[float] = DROPPED_CALLBACK_OFFSETS_S,
    ) -> None:
        self._store = store
        self._handler = handler
        self._clock = clock
        self._region = region
        self._offsets = tuple(dropped_callback_offsets_s)

    async def process(self, command_type: str, raw: bytes) -> Reply:
        now = self._clock()
        reply_type = command_type if _is_topic_safe(command_type) else "unknown"
        try:
            command = parse_command(
                command_type, raw, now=now, region=self._region, dropped_callback_offsets_s=self._offsets
            )
        except CommandRejected as exc:
            log.warning("command %s rejected: %s", command_type, exc)
            return self._error(reply_type, exc.command_id, str(exc), exc.field, now)
        cid = command.command_id
        data, _ = decode(raw)
        try:
            seen = await self._store.remember_command(cid, now, fingerprint(data))
        except DialerError as exc:
            log.error("command %s %s not taken: %s", command_type, cid, exc)
            return self._error(reply_type, cid, str(exc), None, now)
        if seen == "duplicate":
            log.info("command %s %s is a duplicate; nothing changed", command_type, cid)
            return Reply(
                topics.command_ack(reply_type),
                payloads.command_ack(command_id=cid, command_type=reply_type, occurred_at=now, duplicate=True),
            )
        if seen == "conflict":
            log.warning("command %s %s reuses a command id for other content; refused", command_type, cid)
            return self._error(
                reply_type,
                cid,
                f"command_id {cid!r} was already used for a different command; nothing changed "
                "(give each command its own id; re-send a command only with identical content)",
                "command_id",
                now,
            )
        try:
            detail = await self._apply(command)
        except InputError as exc:
            log.warning("command %s %s could not be applied: %s", command_type, cid, exc)
            await self._forget(cid)
            return self._error(reply_type, cid, str(exc), getattr(exc, "field", None), now)
        except DialerError as exc:
            log.error("command %s %s failed: %s", command_type, cid, exc)
            await self._forget(cid)
            return self._error(reply_type, cid, str(exc), None, now)
        except Exception as exc:
            log.exception("command %s %s failed unexpectedly", command_type, cid)
            await self._forget(cid)
            return self._error(reply_type, cid, f"internal error ({type(exc).__name__})", None, now)
        log.info("command %s %s applied", command_type, cid)
        return Reply(
            topics.command_ack(reply_type),
            payloads.command_ack(
                command_id=cid, command_type=reply_type, occurred_at=now, duplicate=False, detail=detail
            ),
        )

    async def _forget(self, cid: str) -> None:
        try:
            await self._store.forget_command(cid)
        except DialerError as exc:  # the database went away too: a re-send reads "duplicate"
            log.error("command %s could not be forgotten after failing: %s", cid, exc)

    async def _apply(self, command: Command) -> Mapping[str, Any]:
        if isinstance(command, OperatorResult):
            return await self._handler.apply_operator_result(command)
        if isinstance(command, DroppedCallback):
            return await self._handler.request_dropped_callback(command)
        return await self._handler.apply_exclusion(command)

    @staticmethod
    def _error(ctype: str, cid: str | None, error: str, field: str | None, now: datetime) -> Reply:
        return Reply(
            topics.command_error(ctype),
            payloads.command_error(command_id=cid, command_type=ctype, occurred_at=now, error=error, field=field),
        )


def _is_topic_safe(level: str) -> bool:
    return bool(level) and not any(ch in level for ch in "/+#\x00") and len(level) <= 64


# --- the MQTT subscriber ------------------------------------------------------------------------


class CommandSubscriber:
    """Subscribes ``<prefix>/cmd/+`` (QoS 1) and answers every message.

    Uses a persistent session (``clean_session=False`` under a fixed client id,
    ``<client_id>-cmd``), so commands sent while the worker was briefly away are delivered when
    it is back; it re-subscribes after each reconnect anyway, because a restarted broker may have
    lost the session. Messages are handled one at a time, in arrival order.
    """

    def __init__(
        self,
        processor: CommandProcessor,
        settings: MqttSettings,
        *,
        client_id: str | None = None,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        timeout_s: float = 10.0,
        rng: random.Random | None = None,
    ) -> None:
        self._processor = processor
        self._prefix = settings.topic_prefix
        self._link = MqttLink(
            settings,
            role="command subscriber",
            logger=log,
            identifier=client_id or f"{settings.client_id}-cmd",
            clean_session=False,
            timeout_s=timeout_s,
            backoff=Backoff(backoff_initial_s, backoff_max_s, rng or random.Random()),
        )
        self._idle = asyncio.Event()  # clear while a command is being applied and answered
        self._idle.set()
        self.handled_total = 0

    @property
    def subscribed(self) -> bool:
        return self._link.up

    async def wait_subscribed(self) -> None:
        await self._link.wait_up()

    @property
    def outage(self) -> OutageLog:
        """The link's state: ``failures``, ``last_error`` and a ``changed`` event."""
        return self._link.outage

    async def start(self) -> None:
        self._link.start(
            self._serve, task_name="command-subscriber", subscription=topics.command_subscription(self._prefix)
        )

    async def stop(self, *, deadline_s: float = 5.0) -> None:
        """Stop taking commands: a command being applied is allowed to finish and be answered
        (up to ``deadline_s``), then the subscription is cancelled. Messages not yet taken stay
        with the broker's persistent session for the next start."""
        # Busy: the loop finishes this command and whatever the client already received
        # (acknowledged to the broker, so it would be lost), then leaves by itself.
        await self._link.stop(deadline_s=deadline_s, let_finish=not self._idle.is_set())

    async def _serve(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            self._idle.clear()
            try:
                await self._handle(client, message)
            finally:
                self._idle.set()
            if self._link.stopping.is_set() and len(client.messages) == 0:
                return  # leaves `async with`: a clean disconnect
        # aiomqtt ends the stream only by raising; should it ever just end, reconnect.
        raise aiomqtt.MqttError("message stream ended")

    async def _handle(self, client: aiomqtt.Client, message: aiomqtt.Message) -> None:
        base = topics.join(self._prefix, topics.COMMANDS) + "/"
        topic = message.topic.value
        command_type = topic[len(base) :] if topic.startswith(base) else topic
        raw = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
        reply = await self._processor.process(command_type, raw)
        self.handled_total += 1
        # A lost reply is recovered by the sender re-sending the same command_id: it gets a
        # "duplicate" ack and nothing is applied twice.
        await client.publish(topics.join(self._prefix, reply.topic), encode(reply.payload), qos=QOS_AT_LEAST_ONCE)
