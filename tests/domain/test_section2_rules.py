"""One case per bullet of docs/rules.md §2–§3, through the default config/rules.yaml and apply_attempt.

"after the 3rd" bullets: attempts 1 and 2 schedule a retry inside the calling window and only the
3rd settles «Недоступен» without «Некорректный контакт». "after the 1st" bullets settle at once.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dialer.domain.model import (
    CallClass,
    CardFlag,
    Contact,
    NumberProblem,
    OwnerKind,
    ResultCode,
)
from dialer.domain.phone import normalise
from dialer.domain.policy import OperatorResult, apply_attempt, apply_operator_result, predial_check
from dialer.domain.rules import RulesTable
from dialer.domain.schedule import CallingWindows, in_window

NOW = datetime(2026, 1, 12, 8, 0, tzinfo=UTC)  # Monday 11:00 Moscow
TZ = "Europe/Moscow"
OWN = frozenset({"+74957304487"})


def contact(raw: str = "+7 905 770-89-45", owner: OwnerKind = OwnerKind.PERSON, **kw: object) -> Contact:
    n = normalise(raw)
    return Contact(
        id=1,
        campaign="c",
        external_id="x1",
        raw_number=raw,
        e164=n.e164,
        number_problem=n.problem,
        owner_kind=owner,
        **kw,  # type: ignore[arg-type]
    )


def assert_after_third(
    rules: RulesTable, windows: CallingWindows, call_class: CallClass, text: str, owner: OwnerKind = OwnerKind.PERSON
) -> None:
    c = contact(owner=owner)
    for attempt in (1, 2):
        o = apply_attempt(c, call_class, attempt, NOW, rules, windows, TZ)
        assert not o.settled, (call_class, attempt)
        assert o.result is None and not o.incorrect_contact
        assert o.next_due_at is not None and o.next_due_at > NOW
        assert in_window(o.next_due_at, TZ, windows)
        assert o.journal_line == f"12/01 {text}"
    o = apply_attempt(c, call_class, 3, NOW, rules, windows, TZ)
    assert o.settled and o.result is ResultCode.UNAVAILABLE and not o.incorrect_contact
    assert o.next_due_at is None
    assert o.journal_line == f"12/01 {text}"


def assert_after_first_flagged(
    rules: RulesTable, windows: CallingWindows, call_class: CallClass, c: Contact | None = None
) -> None:
    o = apply_attempt(c or contact(), call_class, 1, NOW, rules, windows, TZ)
    assert o.settled and o.result is ResultCode.UNAVAILABLE and o.incorrect_contact
    assert o.next_due_at is None
    assert o.journal_line.startswith("12/01 ")


# --- «Недоступен» WITHOUT «Некорректный контакт», after the 1st attempt --------------------------


def test_bullet_organisation_general_number_ivr_after_first(rules: RulesTable, windows: CallingWindows) -> None:
    o = apply_attempt(contact(owner=OwnerKind.ORGANISATION), CallClass.IVR, 1, NOW, rules, windows, TZ)
    assert o.settled and o.result is ResultCode.UNAVAILABLE and not o.incorrect_contact
    assert o.rule == "ivr/organisation"
    # the same IVR on a person's number is not this bullet: retried like voicemail
    p = apply_attempt(contact(owner=OwnerKind.PERSON), CallClass.IVR, 1, NOW, rules, windows, TZ)
    assert not p.settled


# --- «Недоступен» WITHOUT «Некорректный контакт», after the 3rd attempt --------------------------


@pytest.mark.parametrize(
    ("cls", "text"), [(CallClass.BUSY, "Занято"), (CallClass.REJECTED, "Сбрасывает (короткие гудки)")]
)
def test_bullet_short_beeps_busy_or_rejected(
    rules: RulesTable, windows: CallingWindows, cls: CallClass, text: str
) -> None:
    assert_after_third(rules, windows, cls, text)


def test_bullet_line_busy_announcement(rules: RulesTable, windows: CallingWindows) -> None:
    assert_after_third(rules, windows, CallClass.ANN_SUBSCRIBER_BUSY, "Абонент занят")


def test_bullet_no_connection_silence_or_immediate_drop(rules: RulesTable, windows: CallingWindows) -> None:
    assert_after_third(rules, windows, CallClass.NO_CONNECTION, "Нет соединения (тишина или сброс при наборе)")


def test_bullet_no_answer(rules: RulesTable, windows: CallingWindows) -> None:
    assert_after_third(rules, windows, CallClass.NO_ANSWER, "Не отвечает")


@pytest.mark.parametrize(
    ("cls", "text"),
    [(CallClass.ANSWERED_SILENCE, "Поднял трубку, молчит"), (CallClass.ANSWERED_HANGUP, "Поднял трубку и сбросил")],
)
def test_bullet_picked_up_silent_or_hangs_up(
    rules: RulesTable, windows: CallingWindows, cls: CallClass, text: str
) -> None:
    assert_after_third(rules, windows, cls, text)


def test_bullet_picked_up_cannot_hear(rules: RulesTable, windows: CallingWindows) -> None:
    assert_after_third(rules, windows, CallClass.BAD_LINE, "Плохое качество связи, не слышно")


@pytest.mark.parametrize(
    ("cls", "text"),
    [
        (CallClass.ANN_TEMPORARILY_UNAVAILABLE, "Абонент временно недоступен"),
        (CallClass.ANN_TEMPORARILY_BLOCKED, "Номер временно заблокирован"),
        (CallClass.ANN_SUSPENDED, "Обслуживание номера временно приостановлено"),
        (CallClass.ANN_NOT_REGISTERED, "Абонент не зарегистрирован в сети"),
        (CallClass.ANN_SERVICE_NOT_AVAILABLE, "Данный вид связи недоступен для абонента"),
        (CallClass.ANN_SWITCHED_OFF, "Аппарат абонента выключен или вне зоны действия сети"),
        (CallClass.ANN_CONNECTION_IMPOSSIBLE, "Соединение невозможно"),
    ],
)
def test_bullet_system_announcement_temporary(
    rules: RulesTable, windows: CallingWindows, cls: CallClass, text: str
) -> None:
    assert_after_third(rules, windows, cls, text)


# --- «Недоступен» WITH «Некорректный контакт», after the 1st attempt ------------------------------


@pytest.mark.parametrize(
    ("cls", "text"),
    [
        (CallClass.ANN_NOT_IN_SERVICE, "Номер не обслуживается или не используется"),
        (CallClass.ANN_BLOCKED, "Номер заблокирован"),
        (CallClass.ANN_WRONG_NUMBER, "Неправильно набран номер"),
        (CallClass.ANN_DOES_NOT_EXIST, "Номер не существует"),
        (CallClass.ANN_FOR_SALE, "Номер доступен для приобретения"),
    ],
)
def test_bullet_system_announcement_not_working(
    rules: RulesTable, windows: CallingWindows, cls: CallClass, text: str
) -> None:
    o = apply_attempt(contact(), cls, 1, NOW, rules, windows, TZ)
    assert o.settled and o.result is ResultCode.UNAVAILABLE and o.incorrect_contact
    assert o.journal_line == f"12/01 {text}"


@pytest.mark.parametrize(
    ("raw", "problem"),
    [("8905770894", NumberProblem.TOO_SHORT), ("+7 100 123 45 67", NumberProblem.INVALID_FOR_REGION)],
)
def test_bullet_wrong_number_in_card_known_without_dialling(
    rules: RulesTable, windows: CallingWindows, raw: str, problem: NumberProblem
) -> None:
    c = contact(raw)
    assert c.number_problem is problem
    assert predial_check(c, OWN) is CallClass.INVALID_NUMBER
    assert_after_first_flagged(rules, windows, CallClass.INVALID_NUMBER, c)
    line = apply_attempt(c, CallClass.INVALID_NUMBER, 1, NOW, rules, windows, TZ).journal_line
    assert line.startswith("12/01 Номер в карточке указан неверно: ")


def test_bullet_no_number_in_card(rules: RulesTable, windows: CallingWindows) -> None:
    c = contact("")
    assert predial_check(c, OWN) is CallClass.NO_NUMBER
    assert_after_first_flagged(rules, windows, CallClass.NO_NUMBER, c)


def test_bullet_no_number_and_do_not_call_mark_never_dialled(rules: RulesTable, windows: CallingWindows) -> None:
    c = contact("+7 ( )", flags=frozenset({CardFlag.DO_NOT_CALL}))
    assert predial_check(c, OWN) is CallClass.DO_NOT_CALL
    o = apply_attempt(c, CallClass.DO_NOT_CALL, 1, NOW, rules, windows, TZ)
    assert o.settled and o.result is ResultCode.UNAVAILABLE and o.incorrect_contact
    assert "НЕ ЗВОНИТЬ" in o.journal_line


# --- found by operators on a human-answered call --------------------------------------------------


@pytest.mark.parametrize(
    "result",
    [
        OperatorResult.WRONG_PERSON,  # nothing to do with the car or its owner
        OperatorResult.NOT_RESPONSIBLE,  # organisation employee not responsible for the car
        OperatorResult.COMPANY_EMPLOYEE,  # an employee's mobile while the owner is a client
    ],
)
def test_bullet_operator_found_incorrect_contact(
    rules: RulesTable, windows: CallingWindows, result: OperatorResult
) -> None:
    o = apply_operator_result(contact(), result, 1, NOW, rules, windows, TZ)
    assert o.settled and o.result is ResultCode.UNAVAILABLE and o.incorrect_contact


def test_bullet_company_own_number_checked_before_dialling(rules: RulesTable, windows: CallingWindows) -> None:
    c = contact("+7 (495) 7304487")
    assert predial_check(c, OWN) is CallClass.OWN_NUMBER
    assert_after_first_flagged(rules, windows, CallClass.OWN_NUMBER, c)
