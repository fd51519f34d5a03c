from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialer.domain.compliance import AttemptCaps
from dialer.domain.journal import append_line
from dialer.domain.model import CallClass, CardFlag, Contact, ContactState, OwnerKind, ResultCode
from dialer.domain.phone import normalise
from dialer.domain.policy import (
    OperatorResult,
    PlanAction,
    apply_attempt,
    apply_operator_result,
    counts_as_attempt,
    load_own_numbers,
    parse_own_numbers,
    plan,
    predial_check,
)
from dialer.domain.rules import RulesTable
from dialer.domain.schedule import CallingWindows, in_window
from dialer.errors import ConfigError, InputError

from .conftest import CONFIG

NOW = datetime(2026, 1, 12, 8, 0, tzinfo=UTC)  # Monday 11:00 Moscow


def contact(raw: str = "89057708945", cid: int = 1, **kw: object) -> Contact:
    n = normalise(raw)
    return Contact(
        id=cid,
        campaign="c",
        external_id=f"x{cid}",
        raw_number=raw,
        e164=n.e164,
        number_problem=n.problem,
        **kw,  # type: ignore[arg-type]
    )


def test_own_numbers_file_is_valid_and_normalised() -> None:
    own = load_own_numbers(CONFIG / "own_numbers.txt")
    assert len(own) == 29
    assert "+74957304487" in own and "+79267117010" in own
    assert all(n.startswith("+7") and len(n) == 12 for n in own)


def test_own_numbers_parse_comments_and_errors(tmp_path: Path) -> None:
    assert parse_own_numbers("# c\n\n8 495 730-44-87  # reception\n", "x") == frozenset({"+74957304487"})
    with pytest.raises(ConfigError) as info:
        parse_own_numbers("+74957304487\n+7 495 730\n", "own.txt")
    assert info.value.line == 2 and "own.txt:2" in str(info.value)
    with pytest.raises(ConfigError, match="file not found"):
        load_own_numbers(tmp_path / "none.txt")


def test_predial_order() -> None:
    dnc = frozenset({CardFlag.DO_NOT_CALL})
    own = frozenset({"+79057708945"})
    assert predial_check(contact(), frozenset()) is None
    assert predial_check(contact(), own) is CallClass.OWN_NUMBER
    assert predial_check(contact(flags=dnc), own) is CallClass.DO_NOT_CALL  # mark wins
    assert predial_check(contact("", flags=dnc), own) is CallClass.DO_NOT_CALL
    assert predial_check(contact("abc"), own) is CallClass.INVALID_NUMBER
    # a contact built by hand without e164/problem is normalised on the fly
    raw = Contact(id=9, campaign="c", external_id="9", raw_number="+7 905 770 89 45", e164=None, number_problem=None)
    assert predial_check(raw, own) is CallClass.OWN_NUMBER


def test_do_not_call_with_a_usable_number(rules: RulesTable, windows: CallingWindows) -> None:
    c = contact(flags=frozenset({CardFlag.DO_NOT_CALL}))
    o = apply_attempt(c, CallClass.DO_NOT_CALL, 1, NOW, rules, windows, "Europe/Moscow")
    assert o.settled and o.result is ResultCode.DO_NOT_CALL and not o.incorrect_contact


def test_journal_line_uses_contacts_local_date(rules: RulesTable, windows: CallingWindows) -> None:
    late = datetime(2026, 1, 4, 22, 30, tzinfo=UTC)  # 4 Jan in Moscow, already 5 Jan in Vladivostok
    c = contact()
    assert apply_attempt(c, CallClass.NO_ANSWER, 1, late, rules, windows, "Europe/Moscow").journal_line == (
        "05/01 Не отвечает"  # 01:30 MSK
    )
    assert apply_attempt(c, CallClass.NO_ANSWER, 1, late, rules, windows, "Europe/Kaliningrad").journal_line == (
        "05/01 Не отвечает"  # 00:30
    )
    assert apply_attempt(c, CallClass.NO_ANSWER, 1, late, rules, windows, "America/New_York").journal_line == (
        "04/01 Не отвечает"
    )


def test_retry_lands_inside_window_in_local_time(rules: RulesTable, windows: CallingWindows) -> None:
    # Friday 20:30 Moscow, no answer, retry in 2h → 22:30 is closed → Saturday 10:00 (weekend hours)
    friday = datetime(2026, 1, 16, 17, 30, tzinfo=UTC)
    o = apply_attempt(contact(), CallClass.NO_ANSWER, 1, friday, rules, windows, "Europe/Moscow")
    assert o.next_due_at == datetime(2026, 1, 17, 7, 0, tzinfo=UTC)
    # the same contact in Kamchatka (UTC+12): 05:30 Saturday + 2h = 07:30 → 10:00 local = 22:00 UTC Fri
    o = apply_attempt(contact(), CallClass.NO_ANSWER, 1, friday, rules, windows, "Asia/Kamchatka")
    assert o.next_due_at == datetime(2026, 1, 16, 22, 0, tzinfo=UTC)


def test_busy_retry_delay_from_rules(rules: RulesTable, windows: CallingWindows) -> None:
    o = apply_attempt(contact(), CallClass.BUSY, 1, NOW, rules, windows, "Europe/Moscow")
    assert o.next_due_at == NOW + timedelta(minutes=30)
    assert o.rule == "busy"


def test_person_handed_to_operator(rules: RulesTable, windows: CallingWindows) -> None:
    o = apply_attempt(contact(), CallClass.PERSON, 2, NOW, rules, windows, "Europe/Moscow")
    assert o.settled and o.result is ResultCode.HANDED_TO_OPERATOR and o.next_due_at is None


def test_our_failures_are_not_counted(rules: RulesTable, windows: CallingWindows) -> None:
    c = contact()
    for cls in (CallClass.ORIGINATE_FAILED, CallClass.ABORTED):
        assert not counts_as_attempt(rules, cls, c)
        o = apply_attempt(c, cls, 3, NOW, rules, windows, "Europe/Moscow")
        assert not o.settled and o.next_due_at is not None
    assert counts_as_attempt(rules, CallClass.BUSY, c)


def test_operator_refused_and_comment_replaces_text(rules: RulesTable, windows: CallingWindows) -> None:
    o = apply_operator_result(contact(), OperatorResult.REFUSED, 1, NOW, rules, windows, "Europe/Moscow")
    assert o.settled and o.result is ResultCode.REFUSED
    assert o.journal_line == "12/01 Клиент отказывается от анкетирования"
    said = 'Клиент отказался от анкетирования. Со слов клиента: "меня все устроило"'
    o = apply_operator_result(contact(), OperatorResult.REFUSED, 2, NOW, rules, windows, "Europe/Moscow", comment=said)
    assert o.journal_line == f"12/01 {said}"


def test_operator_callback_kept_when_in_window_else_moved(rules: RulesTable, windows: CallingWindows) -> None:
    tz = "Europe/Moscow"
    at = datetime(2026, 1, 13, 12, 0, tzinfo=UTC)  # Tuesday 15:00 MSK
    o = apply_operator_result(contact(), OperatorResult.CALLBACK, 1, NOW, rules, windows, tz, callback_at=at)
    assert not o.settled and o.result is ResultCode.CALLBACK and o.next_due_at == at
    late = datetime(2026, 1, 13, 19, 0, tzinfo=UTC)  # 22:00 MSK: closed → Wednesday 09:00
    o = apply_operator_result(contact(), OperatorResult.CALLBACK, 1, NOW, rules, windows, tz, callback_at=late)
    assert o.next_due_at == datetime(2026, 1, 14, 6, 0, tzinfo=UTC)
    past = NOW - timedelta(hours=1)
    o = apply_operator_result(contact(), OperatorResult.CALLBACK, 1, NOW, rules, windows, tz, callback_at=past)
    assert o.next_due_at == NOW
    with pytest.raises(InputError):
        apply_operator_result(contact(), OperatorResult.CALLBACK, 1, NOW, rules, windows, tz)
    with pytest.raises(InputError):
        apply_operator_result(contact(), OperatorResult.REFUSED, 1, NOW, rules, windows, tz, callback_at=at)
    with pytest.raises(InputError):
        apply_operator_result(
            contact(), OperatorResult.CALLBACK, 1, NOW, rules, windows, tz, callback_at=datetime(2026, 1, 13, 12)
        )


def test_operator_inconvenient_then_refused_at_third(rules: RulesTable, windows: CallingWindows) -> None:
    tz = "Europe/Moscow"
    o = apply_operator_result(contact(), OperatorResult.INCONVENIENT, 1, NOW, rules, windows, tz)
    assert not o.settled and o.next_due_at == NOW + timedelta(days=1)
    o = apply_operator_result(contact(), OperatorResult.INCONVENIENT, 3, NOW, rules, windows, tz)
    assert o.settled and o.result is ResultCode.REFUSED


def test_operator_bad_line_and_completed(rules: RulesTable, windows: CallingWindows) -> None:
    tz = "Europe/Moscow"
    o = apply_operator_result(contact(), OperatorResult.BAD_LINE, 1, NOW, rules, windows, tz)
    assert not o.settled and in_window(o.next_due_at or NOW, tz, windows)
    o = apply_operator_result(contact(), OperatorResult.COMPLETED, 1, NOW, rules, windows, tz)
    assert o.settled and o.result is ResultCode.COMPLETED and not o.incorrect_contact


def test_naive_now_is_refused(rules: RulesTable, windows: CallingWindows) -> None:
    with pytest.raises(ValueError):
        apply_attempt(contact(), CallClass.BUSY, 1, datetime(2026, 1, 12, 8), rules, windows, "Europe/Moscow")


def test_plan(rules: RulesTable, windows: CallingWindows) -> None:
    own = load_own_numbers(CONFIG / "own_numbers.txt")
    night = datetime(2026, 1, 12, 20, 0, tzinfo=UTC)  # Monday 23:00 Moscow
    contacts = [
        contact("89057708945", 1, timezone="Europe/Moscow"),
        contact("", 2),
        contact("+7 (495) 7304487", 3),
        contact("", 4, flags=frozenset({CardFlag.DO_NOT_CALL})),
        contact("12345", 5),
        contact("89057708946", 6, timezone="Asia/Vladivostok"),  # Tuesday 06:00 local → 09:00
        contact("89057708947", 7, state=ContactState.SETTLED),
        contact("89057708948", 8, next_due_at=datetime(2026, 1, 14, 12, 0, tzinfo=UTC)),
        contact("8 4012 123456", 9, owner_kind=OwnerKind.ORGANISATION, timezone="Europe/Kaliningrad"),
    ]
    entries = {e.contact_id: e for e in plan(contacts, night, rules, windows, own, default_tz="Europe/Moscow")}
    assert entries[1].action is PlanAction.DIAL
    assert entries[1].dial_at == datetime(2026, 1, 13, 6, 0, tzinfo=UTC)
    assert "2026-01-13 09:00 Europe/Moscow" in entries[1].describe()
    for cid, cls in (
        (2, CallClass.NO_NUMBER),
        (3, CallClass.OWN_NUMBER),
        (4, CallClass.DO_NOT_CALL),
        (5, CallClass.INVALID_NUMBER),
    ):
        e = entries[cid]
        assert e.action is PlanAction.SETTLE and e.call_class is cls
        assert e.outcome is not None and e.outcome.settled and e.outcome.incorrect_contact
        assert "Недоступен + Некорректный контакт" in e.describe()
        assert e.outcome.journal_line.startswith("12/01 ")  # 23:00 Monday Moscow
    assert entries[6].dial_at == datetime(2026, 1, 12, 23, 0, tzinfo=UTC)  # 09:00 Tuesday Vladivostok
    assert entries[7].action is PlanAction.SKIP and "settled" in entries[7].describe()
    assert entries[8].dial_at == datetime(2026, 1, 14, 12, 0, tzinfo=UTC)  # its own due time
    assert entries[9].dial_at == datetime(2026, 1, 13, 7, 0, tzinfo=UTC)  # 09:00 Kaliningrad


def test_outcome_line_appends_to_journal(rules: RulesTable, windows: CallingWindows) -> None:
    c = contact(journal="15/04 не отвечает\r\n17/04 Клиент отказался  ")
    o = apply_attempt(c, CallClass.NO_ANSWER, 1, NOW, rules, windows, "Europe/Moscow")
    out = append_line(c.journal, o.journal_line)
    assert out == c.journal + "\r\n12/01 Не отвечает"


def test_rules_file_path_default_is_loadable() -> None:
    assert RulesTable.load(CONFIG / "rules.yaml").max_attempts == 3


def test_do_not_call_mark_in_comments() -> None:
    from dialer.domain.policy import has_do_not_call_mark

    assert has_do_not_call_mark("ВНИМАНИЕ, НЕ ЗВОНИТЬ КЛИЕНТУ!")
    assert has_do_not_call_mark("15/04 не отвечает\nвнимание не звонить клиенту")
    assert not has_do_not_call_mark("15/04 Клиент просит не звонить до обеда")
    c = contact(journal="Комментарии:\r\nВНИМАНИЕ, НЕ ЗВОНИТЬ КЛИЕНТУ!")
    assert predial_check(c, frozenset()) is CallClass.DO_NOT_CALL


@settings(max_examples=200, deadline=None)
@given(
    cls=st.sampled_from(list(CallClass)),
    attempt=st.integers(min_value=1, max_value=3),
    now=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)),
    tz=st.sampled_from(["Europe/Kaliningrad", "Europe/Moscow", "Asia/Omsk", "Asia/Kamchatka", "Europe/Berlin"]),
    owner=st.sampled_from(list(OwnerKind)),
)
def test_apply_attempt_properties(
    rules: RulesTable, windows: CallingWindows, cls: CallClass, attempt: int, now: datetime, tz: str, owner: OwnerKind
) -> None:
    o = apply_attempt(contact(owner_kind=owner), cls, attempt, now, rules, windows, tz)
    assert o.journal_line[:2].isdigit() and o.journal_line[2] == "/" and o.journal_line[5] == " "
    if o.settled:
        assert o.next_due_at is None and o.result is not None
    else:
        assert o.next_due_at is not None and o.next_due_at > now
        assert in_window(o.next_due_at, tz, windows)
        assert not o.incorrect_contact
    if attempt == rules.max_attempts and counts_as_attempt(rules, cls, contact(owner_kind=owner)):
        assert o.settled


def test_plan_moves_a_contact_past_its_attempt_caps(rules: RulesTable, windows: CallingWindows) -> None:
    """The claim's caps (230-ФЗ kind: 1 a day, 2 a week) in the plan: a contact called today is
    next dialled tomorrow at the window's opening, one called twice this week next Monday."""
    own = load_own_numbers(CONFIG / "own_numbers.txt")
    noon = datetime(2026, 1, 14, 9, 0, tzinfo=UTC)  # Wednesday 12:00 Moscow
    contacts = [contact("89057708945", 1), contact("89057708946", 2), contact("89057708947", 3)]
    counted = {
        1: [datetime(2026, 1, 14, 6, 30, tzinfo=UTC)],  # today 09:30
        2: [datetime(2026, 1, 12, 7, 0, tzinfo=UTC), datetime(2026, 1, 13, 7, 0, tzinfo=UTC)],  # Mon, Tue
        3: [datetime(2026, 1, 9, 7, 0, tzinfo=UTC)],  # last week
    }
    caps = AttemptCaps(per_day=1, per_week=2)
    entries = {
        e.contact_id: e
        for e in plan(contacts, noon, rules, windows, own, default_tz="Europe/Moscow", caps=caps, counted=counted)
    }
    assert entries[1].dial_at == datetime(2026, 1, 15, 6, 0, tzinfo=UTC)  # Thursday 09:00
    assert "past an attempt cap" in entries[1].describe()
    assert entries[2].dial_at == datetime(2026, 1, 19, 6, 0, tzinfo=UTC)  # Monday 09:00
    assert entries[3].dial_at == noon and entries[3].reason == ""
    # without caps the history does not matter
    free = {e.contact_id: e for e in plan(contacts, noon, rules, windows, own, counted=counted)}
    assert all(e.dial_at == noon for e in free.values())
