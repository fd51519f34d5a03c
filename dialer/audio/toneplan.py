"""Tone plans (busy, congestion, ringback, SIT … per country) in Asterisk indications.conf syntax.

``parse_toneplans(text, source)`` is pure; ``load_toneplans(path)`` only reads the file. Every
bad entry raises ConfigError naming the file and line, so an ops engineer can fix it at start-up.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from dialer import paths
from dialer.errors import ConfigError

#: The shipped plans (config/tones.yaml): the detector's default, what the corpus renders and the
#: simulated carrier plays — one source for every cadence.
SHIPPED_TONES_FILE = paths.default_config_dir() / "tones.yaml"
#: Tones the call-progress detector needs from every plan.
REQUIRED_TONES = ("busy", "congestion", "ring", "info")
#: Trunk audio is 8 kHz: a tone must sit below Nyquist with room for the codec's band edge.
MAX_FREQUENCY_HZ = 3800.0

_PART = re.compile(r"^(?P<once>!)?(?P<freqs>[^/]+?)(?:/(?P<ms>[^/]+))?$")
_NUMBER = re.compile(r"^\d+(?:\.\d+)?$")


@dataclass(frozen=True, slots=True)
class ToneSegment:
    """One comma-separated part of a tone: frequencies (empty = silence) for a duration."""

    freqs_hz: tuple[float, ...]
    duration_ms: int | None  # None: lasts until the tone stops
    once: bool = False  # "!" prefix: played once, not part of the repeating cadence

    @property
    def silent(self) -> bool:
        return not self.freqs_hz


@dataclass(frozen=True, slots=True)
class ToneSpec:
    name: str
    text: str
    segments: tuple[ToneSegment, ...]
    line: int | None = None

    @property
    def frequencies_hz(self) -> frozenset[float]:
        return frozenset(f for s in self.segments for f in s.freqs_hz)


@dataclass(frozen=True, slots=True)
class TonePlan:
    country: str
    description: str
    tones: Mapping[str, ToneSpec]

    def tone(self, name: str) -> ToneSpec:
        try:
            return self.tones[name]
        except KeyError:
            raise KeyError(f"tone plan {self.country!r} has no tone {name!r}") from None


@dataclass(frozen=True, slots=True)
class TonePlans:
    default: str
    plans: Mapping[str, TonePlan]

    def get(self, country: str | None = None) -> TonePlan:
        """The plan for ``country`` (case-insensitive), or the default plan."""
        key = (country or self.default).lower()
        try:
            return self.plans[key]
        except KeyError:
            known = ", ".join(sorted(self.plans))
            raise ConfigError(f"no tone plan {key!r} (known: {known})") from None


def parse_tone(name: str, text: str, *, source: str = "<tones>", line: int | None = None) -> ToneSpec:
    """Parse one indications.conf tone string, e.g. ``"425/350,0/350"`` or ``"!950/330,0"``."""

    def fail(msg: str) -> ConfigError:
        return ConfigError(f"tone {name!r} = {text!r}: {msg}", source=source, line=line)

    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or any(not p for p in parts):
        raise fail("empty part (expected e.g. '425/350,0/350')")
    segments = tuple(_parse_part(part, i == len(parts) - 1, fail) for i, part in enumerate(parts))
    return ToneSpec(name=name, text=text, segments=segments, line=line)


def _parse_part(part: str, last: bool, fail: Callable[[str], ConfigError]) -> ToneSegment:
    """One ``[!]freq[+freq2][/ms]`` part of a tone."""
    m = _PART.match(part)
    if m is None:
        raise fail(f"cannot read part {part!r} (expected [!]freq[+freq2][/ms])")
    freqs = _frequencies(m.group("freqs").strip(), part, fail)
    duration: int | None = None
    if m.group("ms") is not None:
        ms_text = m.group("ms").strip()
        if not ms_text.isdigit() or int(ms_text) <= 0:
            raise fail(f"duration {ms_text!r} in {part!r} must be a positive whole number of ms")
        duration = int(ms_text)
    if duration is None and not last:
        raise fail(f"only the last part may run without a duration, not {part!r}")
    return ToneSegment(tuple(f for f in freqs if f != 0), duration, once=m.group("once") is not None)


def _frequencies(freqs_text: str, part: str, fail: Callable[[str], ConfigError]) -> list[float]:
    """The ``a`` or ``a+b`` of a part, in Hz (0: silence)."""
    if freqs_text.upper().startswith("M"):
        raise fail(f"MIDI note notation in {part!r} is not supported: give frequencies in Hz")
    if "*" in freqs_text:
        raise fail(f"modulated tone {part!r} (a*b) is not supported: use a+b or a single frequency")
    freqs: list[float] = []
    for f_text in freqs_text.split("+"):
        f_text = f_text.strip()
        if not _NUMBER.match(f_text):
            raise fail(f"frequency {f_text!r} in {part!r} is not a number of Hz")
        freqs.append(float(f_text))
    if len(freqs) > 2:
        raise fail(f"{part!r} has {len(freqs)} frequencies; at most two (a+b)")
    if any(f == 0 for f in freqs) and len(freqs) > 1:
        raise fail(f"silence (0) cannot be mixed with a frequency in {part!r}")
    for f in freqs:
        if f > MAX_FREQUENCY_HZ:
            raise fail(f"{f:g} Hz is above {MAX_FREQUENCY_HZ:g} Hz (8 kHz telephone audio)")
    return freqs


def _check_detectable(spec: ToneSpec, source: str) -> None:
    """The cadence detector needs at least one timed tone part in each required tone."""
    timed = [s for s in spec.segments if not s.silent and s.duration_ms is not None]
    if not timed:
        raise ConfigError(
            f"tone {spec.name!r} = {spec.text!r} has no timed tone part: "
            "a cadence (e.g. 425/350,0/350) is needed to detect it",
            source=source,
            line=spec.line,
        )


def _scalar(node: yaml.Node, what: str, source: str) -> str:
    if not isinstance(node, yaml.ScalarNode):
        raise ConfigError(f"{what} must be a plain value", source=source, line=node.start_mark.line + 1)
    return str(node.value)


def _mapping(node: yaml.Node, what: str, source: str) -> list[tuple[yaml.Node, yaml.Node]]:
    if not isinstance(node, yaml.MappingNode):
        raise ConfigError(f"{what} must be a mapping", source=source, line=node.start_mark.line + 1)
    seen: set[str] = set()
    for key, _ in node.value:
        k = _scalar(key, f"a key of {what}", source)
        if k in seen:
            raise ConfigError(f"duplicate key {k!r} in {what}", source=source, line=key.start_mark.line + 1)
        seen.add(k)
    return list(node.value)


def parse_toneplans(text: str, source: str = "<tones.yaml>") -> TonePlans:
    """Parse a tones.yaml document (see config/tones.yaml). Pure: no I/O."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise ConfigError(
            f"not valid YAML: {exc.problem}", source=source, line=mark.line + 1 if mark else None
        ) from exc
    if root is None:
        raise ConfigError("empty tone plan file", source=source)
    default: str | None = None
    default_line: int | None = None
    plans: dict[str, TonePlan] = {}
    plans_seen = False
    for key, value in _mapping(root, "the top level", source):
        k = _scalar(key, "a top-level key", source)
        if k == "default":
            default = _scalar(value, "default", source).lower()
            default_line = key.start_mark.line + 1
        elif k == "plans":
            plans_seen = True
            for pkey, pvalue in _mapping(value, "plans", source):
                country = _scalar(pkey, "a plan name", source).lower()
                plans[country] = _parse_plan(country, pvalue, source)
        else:
            raise ConfigError(
                f"unknown key {k!r} (expected 'default' and 'plans')", source=source, line=key.start_mark.line + 1
            )
    if not plans_seen or not plans:
        raise ConfigError("no tone plans under 'plans:'", source=source)
    if default is None:
        raise ConfigError("missing 'default: <plan>'", source=source)
    if default not in plans:
        raise ConfigError(
            f"default plan {default!r} is not among the plans ({', '.join(sorted(plans))})",
            source=source,
            line=default_line,
        )
    return TonePlans(default=default, plans=plans)


def _parse_plan(country: str, node: yaml.Node, source: str) -> TonePlan:
    description = ""
    tones: dict[str, ToneSpec] = {}
    for key, value in _mapping(node, f"plan {country!r}", source):
        name = _scalar(key, f"a tone name in plan {country!r}", source)
        line = value.start_mark.line + 1
        if name == "description":
            description = _scalar(value, "description", source)
            continue
        tones[name] = parse_tone(name, _scalar(value, f"tone {name!r}", source), source=source, line=line)
    for name in REQUIRED_TONES:
        if name not in tones:
            raise ConfigError(
                f"plan {country!r} lacks tone {name!r} (needed: {', '.join(REQUIRED_TONES)})",
                source=source,
                line=node.start_mark.line + 1,
            )
        _check_detectable(tones[name], source)
    return TonePlan(country=country, description=description, tones=tones)


def load_toneplans(path: str | Path) -> TonePlans:
    """Read and parse a tones.yaml file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read tone plans: {exc.strerror}", source=str(p)) from exc
    return parse_toneplans(text, source=str(p))


@cache
def shipped_plan(country: str | None = None) -> TonePlan:
    """A plan of the shipped tones.yaml (its default plan when ``country`` is None)."""
    return load_toneplans(SHIPPED_TONES_FILE).get(country)
