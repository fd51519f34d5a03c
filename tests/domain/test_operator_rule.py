"""The rule for an operator's result on a contact that may already be settled (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dialer.domain.contact_rule import ContactChange, ContactNow, OperatorSet, apply_outcome, same_last_line
from dialer.domain.model import ContactState, Outcome, ResultCode

NOW = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)
OWN_NUMBER = ContactNow(ContactState.SETTLED, ResultCode.UNAVAILABLE, True, "17/11 Номер компании", None)


def operator_update(now: ContactNow, outcome: Outcome, verdict_incorrect: bool | None) -> ContactChange:
    return apply_outcome(now, OperatorSet(outcome, verdict_incorrect))


def settles(result: ResultCode, line: str) -> Outcome:
    return Outcome(True, result, False, None, line, f"operator:{result.value}")


def test_completed_on_a_settled_own_number_clears_the_flag() -> None:
    u = operator_update(OWN_NUMBER, settles(ResultCode.COMPLETED, "18/11 Анкетирование завершено"), False)
    assert (u.state, u.result, u.incorrect_contact) == (ContactState.SETTLED, ResultCode.COMPLETED, False)
    assert u.journal == "17/11 Номер компании\n18/11 Анкетирование завершено" and u.line_appended and u.changed


def test_wrong_person_sets_the_flag_and_bad_line_keeps_it() -> None:
    clean = ContactNow(ContactState.SETTLED, ResultCode.REFUSED, False, "", None)
    wrong = Outcome(True, ResultCode.UNAVAILABLE, True, None, "18/11 Не тот человек", "operator:wrong_person")
    assert operator_update(clean, wrong, True).incorrect_contact is True
    retry = Outcome(False, None, False, NOW + timedelta(days=1), "18/11 Плохо слышно", "operator:bad_line")
    assert operator_update(OWN_NUMBER, retry, None).incorrect_contact is True
    assert operator_update(clean, retry, None).incorrect_contact is False


def test_a_repeat_changes_nothing_and_writes_no_line() -> None:
    first = operator_update(OWN_NUMBER, settles(ResultCode.REFUSED, "18/11 Клиент отказывается"), False)
    now = ContactNow(first.state, first.result, first.incorrect_contact, first.journal, first.next_due_at)
    again = operator_update(now, settles(ResultCode.REFUSED, "19/11 Клиент отказывается"), False)  # next day
    assert not again.changed and not again.line_appended and again.journal == first.journal


def test_the_same_text_is_not_written_twice_even_when_the_result_changes() -> None:
    now = ContactNow(ContactState.PENDING, None, False, "18/11 Клиент просит перезвонить", NOW)
    cb = Outcome(False, ResultCode.CALLBACK, False, NOW + timedelta(hours=3), "18/11 Клиент просит перезвонить", "cb")
    u = operator_update(now, cb, False)
    assert u.changed and not u.line_appended and u.next_due_at == NOW + timedelta(hours=3)


def test_a_callback_reopens_a_settled_contact_and_a_live_call_keeps_its_state() -> None:
    cb = Outcome(False, ResultCode.CALLBACK, False, NOW + timedelta(hours=2), "18/11 Перезвонить в 14:00", "cb")
    u = operator_update(OWN_NUMBER, cb, False)
    assert (u.state, u.next_due_at, u.result) == (ContactState.PENDING, NOW + timedelta(hours=2), ResultCode.CALLBACK)
    live = ContactNow(ContactState.IN_PROGRESS, None, False, "", None)
    u = operator_update(live, settles(ResultCode.REFUSED, "18/11 Отказ"), False)
    assert u.state is ContactState.IN_PROGRESS and u.result is ResultCode.REFUSED and u.line_appended


def test_same_last_line_compares_text_after_the_date() -> None:
    assert same_last_line("01/11 a\r\n02/11 Не отвечает\r\n", "03/11 Не отвечает")
    assert not same_last_line("02/11 Не отвечает\n03/11 Занято", "04/11 Не отвечает")
    assert not same_last_line("", "04/11 Не отвечает")
    assert same_last_line("Звонил сам", "05/11 Звонил сам")
