"""Domain vocabulary shared by every part of the dialer.

Call classes name *what was heard/observed* on one attempt; the rules table (config/rules.yaml,
dialer.domain.rules) turns a class plus the attempt number into a result. Keeping the two apart
lets ops engineers retune the rules without touching the classifiers.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


class OwnerKind(enum.StrEnum):
    PERSON = "person"
    ORGANISATION = "organisation"


class CardFlag(enum.StrEnum):
    """Marks on the CRM card that change what the dialer may do."""

    DO_NOT_CALL = "do_not_call"  # «ВНИМАНИЕ, НЕ ЗВОНИТЬ КЛИЕНТУ!»


class NumberProblem(enum.StrEnum):
    """Why a contact's number cannot be dialled (known without dialling)."""

    MISSING = "missing"
    NOT_A_NUMBER = "not_a_number"  # letters, garbage
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    INVALID_FOR_REGION = "invalid_for_region"  # wrong prefix / not valid in RU


class ToneKind(enum.StrEnum):
    """In-band tones the audio analysis recognises (dialer.audio) and the fusion weighs."""

    BUSY = "busy"
    CONGESTION = "congestion"
    RINGBACK = "ringback"
    SIT = "sit"
    BEEP = "beep"
    FAX = "fax"  # a fax machine's answer tone (CED, 2100 Hz)


class SpeechVerdict(enum.StrEnum):
    """Who is on the line after a real answer, from the shape of the speech alone."""

    PERSON = "person"
    VOICEMAIL = "voicemail"
    SILENCE = "silence"
    UNSURE = "unsure"


class CallClass(enum.StrEnum):
    """Everything an attempt can end as. One value per situation of docs/rules.md §2–§3 and
    config/phrases.yaml. Values are stable identifiers (stored, published, used as keys in
    config/rules.yaml and config/phrases.yaml)."""

    # --- settled without dialling -------------------------------------------------------------
    NO_NUMBER = "no_number"
    INVALID_NUMBER = "invalid_number"  # too few digits, wrong prefix … (phonenumbers)
    DO_NOT_CALL = "do_not_call"  # card carries «ВНИМАНИЕ, НЕ ЗВОНИТЬ КЛИЕНТУ!»
    OWN_NUMBER = "own_number"  # one of the company's own numbers (config list)

    # --- network signals / tones, nobody answered ----------------------------------------------
    BUSY = "busy"  # short beeps, user busy (cause 17), rejected
    CONGESTION = "congestion"  # fast busy / network congestion (34, 38, 41, 42)
    NO_ANSWER = "no_answer"  # rings, nobody picks up
    NO_CONNECTION = "no_connection"  # silence, nothing happens, or dropped at once
    REJECTED = "rejected"  # call rejected (cause 21) with no announcement
    UNALLOCATED = "unallocated"  # cause 1 with no announcement heard: weak evidence alone
    SIT_UNRECOGNISED = "sit_unrecognised"  # SIT tone, announcement not understood

    # --- announcements: temporary → retry, «Недоступен» after the 3rd attempt ------------------
    ANN_SUBSCRIBER_BUSY = "ann_subscriber_busy"  # «абонент занят, оставайтесь на линии…»
    ANN_TEMPORARILY_UNAVAILABLE = "ann_temporarily_unavailable"  # «временно недоступен»
    ANN_SWITCHED_OFF = "ann_switched_off"  # «выключен или находится вне зоны действия сети»
    ANN_NOT_REGISTERED = "ann_not_registered"  # «не зарегистрирован в сети»
    ANN_TEMPORARILY_BLOCKED = "ann_temporarily_blocked"  # «временно заблокирован»
    ANN_SUSPENDED = "ann_suspended"  # «обслуживание … временно приостановлено»
    ANN_SERVICE_NOT_AVAILABLE = "ann_service_not_available"  # «данный вид связи недоступен»
    ANN_CONNECTION_IMPOSSIBLE = "ann_connection_impossible"  # «соединение невозможно»
    ANN_NETWORK_CONGESTED = "ann_network_congested"  # «направление перегружено»
    ANN_ABROAD = "ann_abroad"  # «находится за пределами российской федерации»
    ANN_STILL_TRYING = "ann_still_trying"  # «продолжается попытка дозвониться…»

    # --- announcements: not a working number → «Некорректный контакт» after the 1st -----------
    ANN_NOT_IN_SERVICE = "ann_not_in_service"  # «не обслуживается или не используется»
    ANN_BLOCKED = "ann_blocked"  # «номер/абонент заблокирован» (not «временно»)
    ANN_WRONG_NUMBER = "ann_wrong_number"  # «неправильно набран номер»
    ANN_DOES_NOT_EXIST = "ann_does_not_exist"  # «номер не существует», «несуществующий формат»
    ANN_FOR_SALE = "ann_for_sale"  # «доступен для приобретения», «номер свободен»
    ANN_DISCONNECTED = "ann_disconnected"  # «отключён оператором», «услуги прекращены», «доступ запрещён»
    ANN_NUMBER_CHANGED = "ann_number_changed"  # «номер изменён», «сменил оператора»

    # --- answered ------------------------------------------------------------------------------
    PERSON = "person"  # a person answered → operator (recorded once an operator answered)
    PERSON_LOST = "person_lost"  # a person was handed over but lost before an operator answered
    VOICEMAIL = "voicemail"  # answering machine / voicemail greeting
    FAX = "fax"  # a fax machine answered (2100 Hz answer tone)
    IVR = "ivr"  # organisation IVR asking for an extension
    ANSWERED_SILENCE = "answered_silence"  # picked up, says nothing
    ANSWERED_HANGUP = "answered_hangup"  # picked up and hung up at once
    BAD_LINE = "bad_line"  # picked up but cannot hear (operator-set or detected)
    DROPPED = "dropped"  # dropped mid-call
    UNSURE_ANSWERED = "unsure_answered"  # answered, classifier unsure → operator, reason recorded

    # --- our side ------------------------------------------------------------------------------
    ORIGINATE_FAILED = "originate_failed"  # Asterisk refused or lost the originate
    ABORTED = "aborted"  # worker stopped/crashed mid-call; attempt closed without a verdict


class ResultCode(enum.StrEnum):
    """The call result written to the contact card («Результат звонка»)."""

    UNAVAILABLE = "unavailable"  # «Недоступен»
    HANDED_TO_OPERATOR = "handed_to_operator"  # a person answered, an operator took the call
    REFUSED = "refused"  # «Отказался разговаривать» (operator-set)
    CALLBACK = "callback"  # operator agreed a call-back time
    COMPLETED = "completed"  # operator finished the survey / conversation
    DO_NOT_CALL = "do_not_call"  # card marked «НЕ ЗВОНИТЬ»; never dialled


RESULT_TITLES_RU: dict[ResultCode, str] = {
    ResultCode.UNAVAILABLE: "Недоступен",
    ResultCode.HANDED_TO_OPERATOR: "Передан оператору",
    ResultCode.REFUSED: "Отказался разговаривать",
    ResultCode.CALLBACK: "Перезвонить",
    ResultCode.COMPLETED: "Завершён",
    ResultCode.DO_NOT_CALL: "Не звонить",
}

INCORRECT_CONTACT_RU = "Некорректный контакт"


class ContactState(enum.StrEnum):
    PENDING = "pending"  # waiting for its next attempt (next_due_at)
    IN_PROGRESS = "in_progress"  # claimed by a worker, attempt under way
    SETTLED = "settled"  # has a final result; never dialled again by the campaign
    EXCLUDED = "excluded"  # number excluded from survey calls


class ExclusionKind(enum.StrEnum):
    """docs/rules.md §7: what the person asked to be excluded from."""

    CALLS = "calls"  # survey calls only
    ONLINE = "online"  # e-mail / SMS surveys only (calls still allowed)
    ALL = "all"  # both

    @property
    def blocks_calls(self) -> bool:
        return self in (ExclusionKind.CALLS, ExclusionKind.ALL)

    @property
    def notifies_sms_manager(self) -> bool:
        return self in (ExclusionKind.ONLINE, ExclusionKind.ALL)


class AttemptKind(enum.StrEnum):
    CAMPAIGN = "campaign"  # ordinary campaign attempt
    CALLBACK = "callback"  # operator-agreed call-back
    DROPPED_CALLBACK = "dropped_callback"  # docs/rules.md §6: dropped inbound call, +1/+2/+3 min


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the classifier saw; stored with the attempt so a human can audit the decision."""

    call_class: CallClass
    confidence: float  # 0..1
    reason: str  # human-readable, e.g. "DialEnd BUSY, cause 17 (User busy)"
    hangup_cause: int | None = None
    dial_status: str | None = None
    answered: bool = False
    asr_text: str | None = None
    dead_air_ms: int | None = None  # handed over: the far end's silence from its greeting's end
    queue_wait_ms: int | None = None  # handed over: from the Redirect to an operator answering (or the loss)
    operator: str | None = None  # who answered (the queue member / agent interface)
    decision_ms: int | None = None  # from the call's first audio frame to the decision (None: no audio)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the rules decided for one attempt."""

    settled: bool
    # Set when settled; also set with settled=False for an agreed call-back (CALLBACK), which
    # keeps the contact open until the call-back happens.
    result: ResultCode | None
    incorrect_contact: bool
    next_due_at: datetime | None  # set when not settled
    journal_line: str  # the exact line appended to the comment journal, "DD/MM text"
    rule: str  # which rule fired (class key in the rules file), for audit
    # False for our own failures (originate failed, worker aborted): they do not use up one of
    # the contact's attempts.
    counts_as_attempt: bool = True


@dataclass(slots=True)
class Contact:
    """A contact of a campaign as the domain sees it (storage maps rows to this)."""

    id: int
    campaign: str
    external_id: str  # the CRM's id, unique per campaign; re-import is idempotent on it
    raw_number: str  # as given in the card/CSV, byte for byte
    e164: str | None  # normalised "+7XXXXXXXXXX", None when unusable
    number_problem: NumberProblem | None
    owner_kind: OwnerKind = OwnerKind.PERSON
    owner_name: str = ""
    flags: frozenset[CardFlag] = field(default_factory=frozenset)
    journal: str = ""  # the comment field: lines by people and by the dialer
    state: ContactState = ContactState.PENDING
    attempts_made: int = 0
    next_due_at: datetime | None = None
    result: ResultCode | None = None
    incorrect_contact: bool = False
    timezone: str | None = None  # IANA zone resolved at import (fixed line / registry / campaign)
    extension: str | None = None  # «доб. 123»: digits to send (DTMF) when an organisation's IVR answers
