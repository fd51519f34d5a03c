"""The rules table: loading/validation errors and the default file's behaviour per call class."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from dialer.domain.model import CallClass, OwnerKind, ResultCode
from dialer.domain.rules import OperatorResult, RulesTable
from dialer.errors import ConfigError

PERSON = OwnerKind.PERSON


def test_default_file_covers_every_class_and_operator_result(rules: RulesTable) -> None:
    assert rules.max_attempts == 3
    for c in CallClass:
        for kind in OwnerKind:
            d = rules.decide(c, 1, kind)
            assert d.journal_text.strip()
    for r in OperatorResult:
        assert rules.decide_operator(r, 1, PERSON).journal_text.strip()


def test_counted_classes_all_settle_by_max_attempts(rules: RulesTable) -> None:
    for c in CallClass:
        for kind in OwnerKind:
            d = rules.decide(c, rules.max_attempts, kind)
            assert d.settled or not d.counts_as_attempt, c


def test_person_and_unsure_go_to_operator(rules: RulesTable) -> None:
    for c in (CallClass.PERSON, CallClass.UNSURE_ANSWERED):
        d = rules.decide(c, 1, PERSON)
        assert d.hand_to_operator and d.settled
        assert d.result is ResultCode.HANDED_TO_OPERATOR
        assert not d.incorrect_contact


def test_weak_evidence_never_flags(rules: RulesTable) -> None:
    for c in (CallClass.UNALLOCATED, CallClass.SIT_UNRECOGNISED):
        assert not rules.decide(c, 1, PERSON).settled
        d3 = rules.decide(c, 3, PERSON)
        assert d3.settled and not d3.incorrect_contact and d3.result is ResultCode.UNAVAILABLE


def test_number_changed_is_not_working(rules: RulesTable) -> None:
    d = rules.decide(CallClass.ANN_NUMBER_CHANGED, 1, PERSON)
    assert d.settled and d.incorrect_contact and d.result is ResultCode.UNAVAILABLE


def test_our_failures_never_settle_and_do_not_count(rules: RulesTable) -> None:
    for c in (CallClass.ORIGINATE_FAILED, CallClass.ABORTED):
        for n in (1, 3, 7):
            d = rules.decide(c, n, PERSON)
            assert not d.settled and not d.counts_as_attempt
            assert d.retry_delay is not None and d.retry_delay <= timedelta(minutes=15)


def test_do_not_call_with_and_without_number(rules: RulesTable) -> None:
    no_number = rules.decide(CallClass.DO_NOT_CALL, 1, PERSON, has_number=False)
    assert (no_number.result, no_number.incorrect_contact) == (ResultCode.UNAVAILABLE, True)
    with_number = rules.decide(CallClass.DO_NOT_CALL, 1, PERSON, has_number=True)
    assert (with_number.result, with_number.incorrect_contact) == (ResultCode.DO_NOT_CALL, False)
    assert with_number.rule == "do_not_call/with_number"


def test_attempt_numbers_start_at_one(rules: RulesTable) -> None:
    with pytest.raises(ValueError):
        rules.decide(CallClass.BUSY, 0, PERSON)


def test_operator_results(rules: RulesTable) -> None:
    refused = rules.decide_operator(OperatorResult.REFUSED, 1, PERSON)
    assert refused.settled and refused.result is ResultCode.REFUSED
    for n in (1, 2):
        inc = rules.decide_operator(OperatorResult.INCONVENIENT, n, PERSON)
        assert not inc.settled and inc.retry_delay is not None
    inc3 = rules.decide_operator(OperatorResult.INCONVENIENT, 3, PERSON)
    assert inc3.settled and inc3.result is ResultCode.REFUSED  # docs/rules.md §5.2: after the 3rd
    done = rules.decide_operator(OperatorResult.COMPLETED, 2, PERSON)
    assert done.settled and done.result is ResultCode.COMPLETED
    bad = rules.decide_operator(OperatorResult.BAD_LINE, 1, PERSON)
    assert not bad.settled
    assert rules.decide_operator(OperatorResult.BAD_LINE, 3, PERSON).result is ResultCode.UNAVAILABLE


# --- validation ---------------------------------------------------------------------------------

MINIMAL_OPERATOR = """
operator_results:
  completed: {settle_at: 1, result: completed, journal: "ok"}
  refused: {settle_at: 1, result: refused, journal: "Отказался"}
  inconvenient: {settle_at: 3, result: refused, retry_delay: 1d, journal: "Неудобно"}
  callback: {journal: "Перезвонить"}
  bad_line: {settle_at: 3, result: unavailable, retry_delay: 30m, journal: "Плохая связь"}
  wrong_person: {settle_at: 1, result: unavailable, incorrect_contact: true, journal: "Не тот"}
  not_responsible: {settle_at: 1, result: unavailable, incorrect_contact: true, journal: "Не отв."}
  company_employee: {settle_at: 1, result: unavailable, incorrect_contact: true, journal: "Сотр."}
"""


def table(body: str, *, default: bool = True) -> str:
    head = "max_attempts: 3\n"
    if default:
        head += 'default: {settle_at: 3, result: unavailable, retry_delay: 2h, journal: "Не отвечает"}\n'
    return head + textwrap.dedent(body) + MINIMAL_OPERATOR


def error_of(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        RulesTable.from_text(text, "rules.yaml")
    return info.value


def line_of(text: str, needle: str, after: str = "classes:") -> int:
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if after in line)
    return next(i for i, line in enumerate(lines, 1) if i > first and needle in line)


def test_default_entry_fills_missing_classes() -> None:
    t = RulesTable.from_text(table("classes:\n  busy: {settle_at: 1, result: unavailable, journal: Занято}\n"))
    assert t.decide(CallClass.BUSY, 1, PERSON).settled
    d = t.decide(CallClass.NO_ANSWER, 1, PERSON)
    assert not d.settled and d.rule == "no_answer" and d.retry_delay == timedelta(hours=2)


def test_missing_class_without_default_is_an_error() -> None:
    text = table("classes:\n  busy: {settle_at: 1, result: unavailable, journal: Занято}\n", default=False)
    err = error_of(text)
    assert "no rule for call class" in str(err) and "no_answer" in str(err)
    assert err.source == "rules.yaml" and err.line == line_of(text, "classes:", after="max_attempts")


@pytest.mark.parametrize(
    ("body", "needle", "message"),
    [
        ("classes:\n  buzy: {settle_at: 1, result: unavailable, journal: x}\n", "buzy", "unknown call class 'buzy'"),
        (
            "classes:\n  busy:\n    settle_at: 1\n    result: unavalable\n    journal: x\n",
            "unavalable",
            "unknown result",
        ),
        ("classes:\n  busy:\n    settle_at: 1\n    result: unavailable\n", "busy:", "missing journal"),
        (
            "classes:\n  busy:\n    settle_at: 3\n    result: unavailable\n    retry_delay: soon\n    journal: x\n",
            "retry_delay",
            "bad delay",
        ),
        (
            "classes:\n  busy:\n    settle_at: 3\n    result: unavailable\n    retry_delay: 0m\n    journal: x\n",
            "retry_delay",
            "longer than zero",
        ),
        (
            "classes:\n  busy:\n    settle_at: 3\n    result: unavailable\n    journal: x\n",
            "busy:",
            "missing retry_delay",
        ),
        (
            "classes:\n  busy:\n    settle_at: 4\n    result: unavailable\n    retry_delay: 1h\n    journal: x\n",
            "settle_at",
            "out of range 1..3",
        ),
        ("classes:\n  busy:\n    settle_at: 0\n    result: unavailable\n    journal: x\n", "settle_at", "out of range"),
        ("classes:\n  busy:\n    settle_at: never\n    retry_delay: 1h\n    journal: x\n", "settle_at", "never"),
        ("classes:\n  busy:\n    setle_at: 1\n    journal: x\n", "setle_at", "unknown field 'setle_at'"),
        ("classes:\n  busy:\n    settle_at: 1\n    journal: x\n", "busy:", "missing result"),
        ('classes:\n  busy:\n    settle_at: 1\n    result: unavailable\n    journal: ""\n', "journal", "empty"),
        (
            "classes:\n  ivr:\n    settle_at: 3\n    result: unavailable\n    retry_delay: 1h\n    journal: x\n"
            "    owner_kind:\n      company: {settle_at: 1}\n",
            "company",
            "unknown owner kind",
        ),
        (
            "classes:\n  person:\n    hand_to_operator: true\n    settle_at: 1\n    journal: x\n",
            "settle_at",
            "hand_to_operator",
        ),
        (
            "classes:\n  busy: {settle_at: 1, result: unavailable, journal: x}\n"
            "  busy: {settle_at: 1, result: unavailable, journal: y}\n",
            "journal: y",
            "duplicate key",
        ),
        ("classes:\n  busy: [1, 2\n", "busy", "YAML syntax"),
    ],
)
def test_validation_errors_name_file_line_and_problem(body: str, needle: str, message: str) -> None:
    text = table(body)
    err = error_of(text)
    assert message in str(err)
    assert err.source == "rules.yaml"
    assert str(err).startswith("rules.yaml:")
    if "YAML syntax" not in message:
        assert err.line == line_of(text, needle), str(err)


def test_max_attempts_range_and_top_level_typos() -> None:
    err = error_of("max_attempts: 0\nclasses: {}\noperator_results: {}\n")
    assert "max_attempts" in str(err) and err.line == 1
    err = error_of("max_attempts: 3\nclases: {}\n")
    assert "unknown field 'clases'" in str(err) and err.line == 2


def test_operator_results_must_be_complete() -> None:
    text = "max_attempts: 3\nclasses: {}\ndefault: {settle_at: 1, result: unavailable, journal: x}\n"
    text += "operator_results:\n  refused: {settle_at: 1, result: refused, journal: x}\n"
    err = error_of(text)
    assert "no rule for operator result" in str(err) and "callback" in str(err)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        RulesTable.load(tmp_path / "nope.yaml")
