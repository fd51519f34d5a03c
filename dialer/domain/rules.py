"""The rules table: call class + attempt number (+ owner kind) → settle? result, flag, delay, text.

The table is data (config/rules.yaml) so ops engineers can retune it without touching the
classifiers; the default file reproduces DESIGN.md §2. Loading validates everything at start-up
and names the file, line and problem of the first error.

Schema of one entry (under ``classes:`` keyed by CallClass value, or under ``operator_results:``
keyed by OperatorResult value)::

    journal: "Не отвечает"      # required: the text of the DD/MM comment line
    settle_at: 3                # attempt number at which the contact is settled (1..max_attempts),
                                # or "never" (only for entries that do not count as attempts)
    result: unavailable         # ResultCode value, required when the entry can settle
    incorrect_contact: false    # «Некорректный контакт»
    retry_delay: 2h             # required when the entry can retry: 30s, 30m, 2h, 1d, 1h30m
    counts_as_attempt: true     # false: our own failures (originate failed, worker stopped)
    hand_to_operator: false     # true: settled as handed_to_operator, no settle_at/result
    owner_kind:                 # optional overrides of the fields above per owner kind
      organisation: {settle_at: 1, journal: "…"}
    with_number: {…}            # optional override when the card has a usable number

Classes missing from ``classes:`` take the ``default:`` entry if the file has one; without it a
missing class is an error, so adding a CallClass forces a conscious decision.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Final

from dialer.domain.model import CallClass, OwnerKind, ResultCode
from dialer.domain.schedule import parse_delay
from dialer.yamlload import YNode, load_yaml, load_yaml_file

__all__ = ["OperatorResult", "RuleDecision", "RuleSpec", "RulesTable"]


class OperatorResult(enum.StrEnum):
    """Results an operator sets on a human-answered call (seeds/01, seeds/02, DESIGN.md §2)."""

    COMPLETED = "completed"  # survey / conversation done
    REFUSED = "refused"  # «Отказался разговаривать»
    INCONVENIENT = "inconvenient"  # «неудобно разговаривать», no call-back time given
    CALLBACK = "callback"  # a call-back time was agreed (the time comes with the result)
    BAD_LINE = "bad_line"  # picked up but cannot hear
    WRONG_PERSON = "wrong_person"  # nothing to do with the car or its owner
    NOT_RESPONSIBLE = "not_responsible"  # organisation employee not responsible for the car
    COMPANY_EMPLOYEE = "company_employee"  # an employee's mobile while the owner is a client


NEVER: Final = "never"
_FIELDS: Final = frozenset(
    {
        "journal",
        "settle_at",
        "result",
        "incorrect_contact",
        "retry_delay",
        "counts_as_attempt",
        "hand_to_operator",
    }
)
_OVERRIDES: Final = frozenset({"owner_kind", "with_number"})
_TOP: Final = frozenset({"version", "max_attempts", "classes", "operator_results", "default"})


@dataclass(frozen=True)
class RuleDecision:
    settled: bool
    result: ResultCode | None
    incorrect_contact: bool
    retry_delay: timedelta | None  # set when not settled
    journal_text: str
    rule: str  # which entry fired, e.g. "busy", "ivr/organisation", "operator:refused"
    hand_to_operator: bool
    counts_as_attempt: bool = True  # False: the caller must not advance the attempt counter


@dataclass(frozen=True)
class RuleSpec:
    """One validated entry of the rules file (after overrides are merged)."""

    key: str
    journal: str
    settle_at: int | None  # None = never settles by itself
    result: ResultCode | None
    incorrect_contact: bool
    retry_delay: timedelta | None
    counts_as_attempt: bool
    hand_to_operator: bool

    def decide(self, attempt_no: int) -> RuleDecision:
        if attempt_no < 1:
            raise ValueError(f"attempt numbers start at 1, got {attempt_no}")
        if self.hand_to_operator:
            return RuleDecision(
                True,
                ResultCode.HANDED_TO_OPERATOR,
                False,
                None,
                self.journal,
                self.key,
                True,
                self.counts_as_attempt,
            )
        if self.settle_at is not None and attempt_no >= self.settle_at:
            return RuleDecision(
                True,
                self.result,
                self.incorrect_contact,
                None,
                self.journal,
                self.key,
                False,
                self.counts_as_attempt,
            )
        return RuleDecision(False, None, False, self.retry_delay, self.journal, self.key, False, self.counts_as_attempt)


@dataclass(frozen=True)
class _Entry:
    base: RuleSpec
    by_owner: dict[OwnerKind, RuleSpec]
    with_number: RuleSpec | None
    with_number_by_owner: dict[OwnerKind, RuleSpec]

    def pick(self, owner_kind: OwnerKind, has_number: bool) -> RuleSpec:
        if has_number and self.with_number is not None:
            return self.with_number_by_owner.get(owner_kind, self.with_number)
        return self.by_owner.get(owner_kind, self.base)


class RulesTable:
    """Validated rules; build with :meth:`load` (file) or :meth:`from_text`."""

    def __init__(
        self,
        max_attempts: int,
        classes: dict[CallClass, _Entry],
        operator: dict[OperatorResult, _Entry],
        source: str,
    ) -> None:
        self.max_attempts = max_attempts
        self._classes = classes
        self._operator = operator
        self.source = source

    # --- loading --------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: Path) -> RulesTable:
        return cls._build(load_yaml_file(path))

    @classmethod
    def from_text(cls, text: str, source: str = "<rules>") -> RulesTable:
        return cls._build(load_yaml(text, source))

    @classmethod
    def _build(cls, root: YNode) -> RulesTable:
        root.as_mapping("the rules file")
        root.check_keys(_TOP, "the rules file")
        max_node = root.require("max_attempts")
        max_attempts = max_node.as_int("max_attempts")
        if not 1 <= max_attempts <= 20:
            raise max_node.error(f"max_attempts must be between 1 and 20, got {max_attempts}")

        default_node = root.get("default")
        default = _parse_entry("default", default_node, max_attempts) if default_node is not None else None

        classes_node = root.require("classes")
        classes: dict[CallClass, _Entry] = {}
        known = {c.value: c for c in CallClass}
        for key, node in classes_node.as_mapping("classes").items():
            if key not in known:
                raise classes_node.key_error(key, f"unknown call class {key!r} (known: {', '.join(sorted(known))})")
            classes[known[key]] = _parse_entry(key, _at_key(classes_node, key, node), max_attempts)
        missing = [c.value for c in CallClass if c not in classes]
        if missing:
            if default is None:
                raise root.key_error(
                    "classes", f"no rule for call class(es) {', '.join(missing)}: add them or a 'default' entry"
                )
            for value in missing:
                classes[CallClass(value)] = _rekey(default, value)

        op_node = root.require("operator_results")
        operator: dict[OperatorResult, _Entry] = {}
        known_op = {r.value: r for r in OperatorResult}
        for key, node in op_node.as_mapping("operator_results").items():
            if key not in known_op:
                raise op_node.key_error(key, f"unknown operator result {key!r} (known: {', '.join(sorted(known_op))})")
            if known_op[key] is OperatorResult.CALLBACK:
                operator[OperatorResult.CALLBACK] = _parse_callback(_at_key(op_node, key, node))
            else:
                operator[known_op[key]] = _parse_entry(f"operator:{key}", _at_key(op_node, key, node), max_attempts)
        missing_op = [r.value for r in OperatorResult if r not in operator]
        if missing_op:
            raise root.key_error("operator_results", f"no rule for operator result(s) {', '.join(missing_op)}")
        return cls(max_attempts, classes, operator, root.source)

    # --- deciding -------------------------------------------------------------------------------
    def spec(self, call_class: CallClass, owner_kind: OwnerKind, *, has_number: bool = True) -> RuleSpec:
        return self._classes[call_class].pick(owner_kind, has_number)

    def decide(
        self, call_class: CallClass, attempt_no: int, owner_kind: OwnerKind, *, has_number: bool = True
    ) -> RuleDecision:
        """What attempt ``attempt_no`` (1-based) ending as ``call_class`` means for the contact.

        ``has_number``: the card has a usable number (only entries with a ``with_number`` override
        care, i.e. ``do_not_call``).
        """
        return self.spec(call_class, owner_kind, has_number=has_number).decide(attempt_no)

    def decide_operator(self, result: OperatorResult, attempt_no: int, owner_kind: OwnerKind) -> RuleDecision:
        return self._operator[result].pick(owner_kind, False).decide(attempt_no)


def _at_key(parent: YNode, key: str, node: YNode) -> YNode:
    """``node`` located at its key's line, so "missing field" errors point at the entry's name."""
    return replace(node, line=parent.key_line(key))


def _rekey(entry: _Entry, key: str) -> _Entry:
    return _Entry(
        replace(entry.base, key=key),
        {k: replace(v, key=f"{key}/{k.value}") for k, v in entry.by_owner.items()},
        replace(entry.with_number, key=f"{key}/with_number") if entry.with_number else None,
        {k: replace(v, key=f"{key}/with_number/{k.value}") for k, v in entry.with_number_by_owner.items()},
    )


def _parse_entry(key: str, node: YNode, max_attempts: int) -> _Entry:
    node.as_mapping(f"rule {key!r}")
    node.check_keys(_FIELDS | _OVERRIDES, f"rule {key!r}")
    fields = {k: v for k, v in node.items() if k in _FIELDS}
    base = _spec(key, fields, node, max_attempts)
    by_owner = _owner_overrides(key, node, fields, max_attempts)
    with_number: RuleSpec | None = None
    with_number_by_owner: dict[OwnerKind, RuleSpec] = {}
    wn = node.get("with_number")
    if wn is not None:
        wn.as_mapping(f"{key}.with_number")
        wn.check_keys(_FIELDS | {"owner_kind"}, f"{key}.with_number")
        wn_fields = {**fields, **{k: v for k, v in wn.items() if k in _FIELDS}}
        wn = _at_key(node, "with_number", wn)
        with_number = _spec(f"{key}/with_number", wn_fields, wn, max_attempts)
        with_number_by_owner = _owner_overrides(f"{key}/with_number", wn, wn_fields, max_attempts)
    return _Entry(base, by_owner, with_number, with_number_by_owner)


def _parse_callback(node: YNode) -> _Entry:
    """An agreed call-back is scheduled at the operator's time: only the journal text is data."""
    key = "operator:callback"
    node.as_mapping(f"rule {key!r}")
    node.check_keys({"journal"}, f"rule {key!r} (the time comes from the operator)")
    journal = node.require("journal", "journal text").as_str(f"rule {key!r}: journal").strip()
    spec = RuleSpec(key, journal, None, ResultCode.CALLBACK, False, None, True, False)
    return _Entry(spec, {}, None, {})


def _owner_overrides(key: str, node: YNode, fields: dict[str, YNode], max_attempts: int) -> dict[OwnerKind, RuleSpec]:
    out: dict[OwnerKind, RuleSpec] = {}
    ok_node = node.get("owner_kind")
    if ok_node is None:
        return out
    kinds = {k.value: k for k in OwnerKind}
    for kind_key, sub in ok_node.as_mapping(f"{key}.owner_kind").items():
        if kind_key not in kinds:
            raise ok_node.key_error(kind_key, f"unknown owner kind {kind_key!r} (known: {', '.join(kinds)})")
        sub.as_mapping(f"{key}.owner_kind.{kind_key}")
        sub.check_keys(_FIELDS, f"{key}.owner_kind.{kind_key}")
        merged = {**fields, **sub.as_mapping()}
        out[kinds[kind_key]] = _spec(f"{key}/{kind_key}", merged, _at_key(ok_node, kind_key, sub), max_attempts)
    return out


def _spec(key: str, fields: dict[str, YNode], where: YNode, max_attempts: int) -> RuleSpec:
    """Validate one (merged) set of fields; ``where`` locates errors about missing fields."""
    journal = _journal(key, fields, where)

    def flag(name: str, default: bool) -> bool:
        n = fields.get(name)
        return default if n is None else n.as_bool(f"rule {key!r}: {name}")

    incorrect = flag("incorrect_contact", False)
    counts = flag("counts_as_attempt", True)
    to_operator = flag("hand_to_operator", False)

    if to_operator:
        for name in ("settle_at", "result", "retry_delay", "incorrect_contact"):
            if name in fields:
                raise fields[name].error(
                    f"rule {key!r}: {name} makes no sense with hand_to_operator "
                    "(the contact is settled as handed_to_operator)"
                )
        return RuleSpec(key, journal, 1, ResultCode.HANDED_TO_OPERATOR, False, None, counts, True)

    settle_at = _settle_at(key, fields, where, counts=counts, max_attempts=max_attempts)
    result = _result(key, fields, where, settle_at)
    delay = _retry_delay(key, fields, where, settle_at)
    return RuleSpec(key, journal, settle_at, result, incorrect, delay, counts, False)


def _journal(key: str, fields: dict[str, YNode], where: YNode) -> str:
    if "journal" not in fields:
        raise where.error(f"rule {key!r}: missing journal text")
    journal = fields["journal"].as_str(f"rule {key!r}: journal").strip()
    if "\n" in journal or "\r" in journal:
        raise fields["journal"].error(f"rule {key!r}: journal text must be one line")
    return journal


def _settle_at(key: str, fields: dict[str, YNode], where: YNode, *, counts: bool, max_attempts: int) -> int | None:
    """The attempt number the contact settles at; None: never (only for attempts not counted)."""
    sn = fields.get("settle_at")
    if sn is None:
        raise where.error(f"rule {key!r}: missing settle_at (an attempt number, or 'never')")
    if sn.value == NEVER:
        if counts:
            raise sn.error(
                f"rule {key!r}: settle_at 'never' is only allowed with counts_as_attempt: false "
                "(a counted attempt must settle by max_attempts)"
            )
        return None
    settle_at = sn.as_int(f"rule {key!r}: settle_at")
    if not 1 <= settle_at <= max_attempts:
        raise sn.error(f"rule {key!r}: settle_at {settle_at} is out of range 1..{max_attempts} (max_attempts)")
    return settle_at


def _result(key: str, fields: dict[str, YNode], where: YNode, settle_at: int | None) -> ResultCode | None:
    """The result the contact settles with; required when it settles."""
    rn = fields.get("result")
    if rn is None:
        if settle_at is not None:
            raise where.error(f"rule {key!r}: missing result (the contact settles at attempt {settle_at})")
        return None
    text = rn.as_str(f"rule {key!r}: result")
    try:
        result = ResultCode(text)
    except ValueError:
        raise rn.error(
            f"rule {key!r}: unknown result {text!r} (known: {', '.join(r.value for r in ResultCode)})"
        ) from None
    if result is ResultCode.HANDED_TO_OPERATOR:
        raise rn.error(f"rule {key!r}: use hand_to_operator: true instead of result handed_to_operator")
    return result


def _retry_delay(key: str, fields: dict[str, YNode], where: YNode, settle_at: int | None) -> timedelta | None:
    """The wait before the next attempt; required when the contact can be retried."""
    dn = fields.get("retry_delay")
    if dn is None:
        if settle_at is None or settle_at > 1:
            raise where.error(f"rule {key!r}: missing retry_delay (the contact can be retried)")
        return None
    raw = dn.value
    if not isinstance(raw, str):
        raise dn.error(f"rule {key!r}: bad retry_delay {raw!r}: use e.g. 30m, 2h, 1d")
    try:
        return parse_delay(raw)
    except ValueError as exc:
        raise dn.error(f"rule {key!r}: {exc}") from None
