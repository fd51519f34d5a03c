"""Phone number normalisation: E.164 or the reason a number is unusable (known without dialling).

Cards hold numbers as people typed them: ``8 (905) 770-89-45``, ``+7 905 7708945``, ``79057708945``.
:func:`normalise` accepts those and refuses letters, wrong lengths and numbers not valid in the
campaign's region (``+7 7xx`` is Kazakhstan: possible for +7, invalid for a Russian campaign).

An organisation's number may carry an extension: ``8 (495) 123-45-67 доб. 123``, ``… ext. 123``,
``… x123``, ``…,123`` (the dial-string pause). The number part is normalised as usual and the
extension kept apart (digits only): the worker sends it as DTMF when the organisation's IVR
answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

import phonenumbers
from phonenumbers import PhoneNumberType, ValidationResult
from phonenumbers import timezone as pn_timezone

from dialer.domain.model import NumberProblem

__all__ = [
    "PROBLEM_TITLES_RU",
    "NormalisedNumber",
    "fixed_line_timezone",
    "normalise",
    "split_extension",
]

# What may surround the digits in a hand-typed number. Anything else (letters, «/», two numbers in
# one cell) makes the card's number not a number: we would rather flag it than guess. An extension
# is split off first (_EXTENSION).
_ALLOWED: Final = re.compile(r"[\d\s()+\-.\u00a0\u2010-\u2015]+")
# «доб. 123», «доб 123», «добавочный 123», «вн. 123», «ext. 123», «ext 123», «x123», «#123» or a
# bare «,123» after the number; optionally in parentheses.
_EXTENSION: Final = re.compile(
    r"^(?P<number>.*?\d[\s)\u00a0]*?)\s*"
    r"(?:,\s*|\(?\s*(?:доб(?:авочный)?|вн(?:утр(?:енний)?)?|ext(?:ension)?|x|#)\s*\.?\s*(?:номер\s*)?[:#№]?\s*)"
    r"(?P<ext>\d{1,10})\s*\)?\s*$",
    re.IGNORECASE,
)
MAX_EXTENSION_DIGITS: Final = 10

PROBLEM_TITLES_RU: Final[dict[NumberProblem, str]] = {
    NumberProblem.MISSING: "номер отсутствует",
    NumberProblem.NOT_A_NUMBER: "в поле номера не номер",
    NumberProblem.TOO_SHORT: "недостаточно цифр",
    NumberProblem.TOO_LONG: "лишние цифры",
    NumberProblem.INVALID_FOR_REGION: "неправильный префикс",
}

# phonenumbers names a zone with the right UTC offset but not always the right country: Kaliningrad
# fixed lines come back as Europe/Bucharest, which has DST (Kaliningrad has none).
_ZONE_FIXUPS: Final[dict[str, dict[str, str]]] = {"RU": {"Europe/Bucharest": "Europe/Kaliningrad"}}

_NSN_LENGTH: Final[dict[int, int]] = {7: 10}  # +7: national significant numbers have 10 digits


@dataclass(frozen=True)
class NormalisedNumber:
    e164: str | None  # "+7XXXXXXXXXX" when usable
    problem: NumberProblem | None  # why not, when unusable
    number_type: str  # "mobile" | "fixed" | "other" | "unknown"
    extension: str | None = None  # digits of «доб. 123» (only with a usable number)

    @property
    def ok(self) -> bool:
        return self.e164 is not None


def _bad(problem: NumberProblem) -> NormalisedNumber:
    return NormalisedNumber(None, problem, "unknown")


def _type_name(num: phonenumbers.PhoneNumber) -> str:
    kind = phonenumbers.number_type(num)
    if kind == PhoneNumberType.MOBILE:
        return "mobile"
    if kind == PhoneNumberType.FIXED_LINE:
        return "fixed"
    if kind in (PhoneNumberType.FIXED_LINE_OR_MOBILE, PhoneNumberType.UNKNOWN):
        return "unknown"
    return "other"  # toll-free, VoIP, premium …


def split_extension(raw: str) -> tuple[str, str | None]:
    """(number part, extension digits) of a hand-typed number; (raw, None) without an extension."""
    m = _EXTENSION.match(raw.strip())
    if m is None:
        return raw, None
    return m.group("number"), m.group("ext")


def normalise(raw: str, region: str = "RU") -> NormalisedNumber:
    """Normalise a hand-typed number for a campaign in ``region`` (ISO country code)."""
    number, extension = split_extension(raw)
    if extension is not None:
        n = _normalise(number, region)
        return NormalisedNumber(n.e164, None, n.number_type, extension) if n.ok else n
    return _normalise(raw, region)


# What phonenumbers' parse errors and possibility checks mean here (others: not a number / valid).
_PARSE_PROBLEMS = {
    phonenumbers.NumberParseException.TOO_SHORT_NSN: NumberProblem.TOO_SHORT,
    phonenumbers.NumberParseException.TOO_LONG: NumberProblem.TOO_LONG,
    phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: NumberProblem.INVALID_FOR_REGION,
}
_POSSIBILITY_PROBLEMS = {
    ValidationResult.TOO_SHORT: NumberProblem.TOO_SHORT,
    ValidationResult.TOO_LONG: NumberProblem.TOO_LONG,
    ValidationResult.INVALID_COUNTRY_CODE: NumberProblem.INVALID_FOR_REGION,
}


def _normalise(raw: str, region: str) -> NormalisedNumber:
    text = raw.strip()
    digits = "".join(ch for ch in text if ch.isdigit())
    problem = _text_problem(text, digits)
    if problem is not None:
        return _bad(problem)
    try:
        num = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        return _bad(_PARSE_PROBLEMS.get(exc.error_type, NumberProblem.NOT_A_NUMBER))
    if num.extension:
        return _bad(NumberProblem.NOT_A_NUMBER)
    possible = _POSSIBILITY_PROBLEMS.get(phonenumbers.is_possible_number_with_reason(num))
    if possible is not None:
        return _bad(possible)
    if not phonenumbers.is_valid_number_for_region(num, region):
        return _bad(_invalid_for_region(num, text, digits, region))
    e164 = phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)
    return NormalisedNumber(e164, None, _type_name(num))


def _text_problem(text: str, digits: str) -> NumberProblem | None:
    """What is wrong with the typed text before it is parsed as a number (None: nothing)."""
    if not text:
        return NumberProblem.MISSING
    if not _ALLOWED.fullmatch(text):
        return NumberProblem.NOT_A_NUMBER
    if digits in ("", "7", "8"):
        # An empty template such as «+7 ( )» (the card of seeds/02): there is no number at all.
        return NumberProblem.MISSING
    if "+" in text[1:]:
        return NumberProblem.NOT_A_NUMBER
    return None


def _invalid_for_region(num: phonenumbers.PhoneNumber, text: str, digits: str, region: str) -> NumberProblem:
    """Same country code but an invalid number: say "too short/long" when the length is off,
    otherwise it is a wrong prefix (or another country sharing the code, e.g. +7 7xx)."""
    expected = _NSN_LENGTH.get(num.country_code or 0)
    nsn = phonenumbers.national_significant_number(num)
    if expected is not None and num.country_code == phonenumbers.country_code_for_region(region):
        if region == "RU" and not text.startswith("+") and digits.startswith("8") and len(digits) < 11:
            return NumberProblem.TOO_SHORT  # "8" trunk prefix + too few digits
        if len(nsn) < expected:
            return NumberProblem.TOO_SHORT
        if len(nsn) > expected:
            return NumberProblem.TOO_LONG
    return NumberProblem.INVALID_FOR_REGION


def fixed_line_timezone(e164: str) -> str | None:
    """The IANA zone of a fixed line, or None for mobiles, unknown numbers and ambiguous answers.

    For Russian mobiles phonenumbers lists every zone of the country, so it is useless there; the
    numbering-plan registry (dialer.domain.numbering) answers those.
    """
    try:
        num = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return None
    if phonenumbers.number_type(num) != PhoneNumberType.FIXED_LINE:
        return None
    zones = [z for z in pn_timezone.time_zones_for_number(num) if z != "Etc/Unknown"]
    if len(zones) != 1:
        return None
    region = phonenumbers.region_code_for_number(num) or ""
    return _ZONE_FIXUPS.get(region, {}).get(zones[0], zones[0])
