"""The phrase catalogue (config/phrases.yaml): what networks, voicemail and IVRs say → call class.

Loaded and validated once at start-up. Every problem is a :class:`ConfigError` naming the file
and the line, so an ops engineer who adds a phrase learns at once what is wrong and where.

File format (see the comment at the top of config/phrases.yaml)::

    version: 1
    qualifiers: [временно, temporarily]     # words that change the class on their own
    phrases:
      <call class>:
        - plain phrase
        - {say: phrase, require: [word, …], forbid: [word, …]}
    hints:
      person: [алло, слушаю]                 # weak evidence: reported, never decisive alone
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from dialer.asr.text import normalise_word, stem, tokenize, words
from dialer.domain.model import CallClass
from dialer.errors import ConfigError

_TOP_KEYS = frozenset({"version", "language", "qualifiers", "phrases", "hints"})
_ENTRY_KEYS = frozenset({"say", "require", "forbid"})
SUPPORTED_VERSION = 1


@dataclass(frozen=True, slots=True)
class Phrase:
    """One catalogue phrase.

    ``tokens`` are normalised for matching (:func:`dialer.asr.text.tokenize`); ``words`` are the
    words as a recogniser prints them (grammar vocabulary). ``require``/``forbid`` hold
    normalised tokens: the text must (must not) carry them near the match. Qualifiers of the
    catalogue are already folded in: a phrase with «временно» requires it, one without forbids it.
    """

    text: str
    call_class: CallClass
    tokens: tuple[str, ...]
    words: tuple[str, ...]
    require: frozenset[str]
    forbid: frozenset[str]
    hint: bool
    line: int


@dataclass(frozen=True, slots=True)
class Catalogue:
    phrases: tuple[Phrase, ...]
    qualifiers: tuple[str, ...]
    source: str
    language: str = ""

    def vocabulary(self) -> list[str]:
        """Every distinct word of every phrase, as a recogniser prints it (sorted)."""
        return sorted({w for p in self.phrases for w in p.words})

    def grammar_phrases(self) -> list[str]:
        """The phrases themselves, one string each (for a recogniser grammar)."""
        return [" ".join(p.words) for p in self.phrases]

    def classes(self) -> frozenset[CallClass]:
        return frozenset(p.call_class for p in self.phrases)

    def __len__(self) -> int:
        return len(self.phrases)


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


class _Loader:
    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, message: str, node: yaml.Node | None) -> ConfigError:
        return ConfigError(message, source=self.source, line=_line(node) if node is not None else None)

    def mapping(self, node: yaml.Node, what: str) -> Iterator[tuple[str, yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            raise self.error(f"{what} must be a mapping", node)
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.error(f"{what}: keys must be plain names", key_node)
            yield str(key_node.value), key_node, value_node

    def string(self, node: yaml.Node, what: str) -> str:
        if not isinstance(node, yaml.ScalarNode) or node.tag not in (
            "tag:yaml.org,2002:str",
            "tag:yaml.org,2002:int",
        ):
            raise self.error(f"{what} must be text", node)
        return str(node.value)

    def string_list(self, node: yaml.Node, what: str) -> list[tuple[str, yaml.Node]]:
        if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
            return []
        if not isinstance(node, yaml.SequenceNode):
            raise self.error(f"{what} must be a list", node)
        return [(self.string(item, what), item) for item in node.value]

    def word_set(self, node: yaml.Node, what: str) -> frozenset[str]:
        out: set[str] = set()
        for value, item in self.string_list(node, what):
            toks = tokenize(value)
            if not toks:
                raise self.error(f"{what}: empty word", item)
            out.update(toks)
        return frozenset(out)


def parse_catalogue(text: str, source: str) -> Catalogue:
    """Parse and validate catalogue ``text``; ``source`` names it in error messages."""
    ld = _Loader(source)
    root = _compose(text, source)
    top = _top_level(ld, root)
    phrases: list[Phrase] = []
    seen: dict[tuple[str, ...], Phrase] = {}
    for section, hint in ((top.phrases, False), (top.hints, True)):
        if section is not None:
            phrases += _section(ld, section, hint, top.qualifiers, seen)
    if not any(not p.hint for p in phrases):
        raise ld.error("the catalogue has no phrases", top.phrases)
    return Catalogue(phrases=tuple(phrases), qualifiers=top.qualifiers, source=source, language=top.language)


def _compose(text: str, source: str) -> yaml.Node:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = int(mark.line) + 1 if mark is not None else None
        raise ConfigError(f"not valid YAML: {exc.problem or exc}", source=source, line=line) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", source=source) from None
    if root is None:
        raise ConfigError("empty file: no phrases", source=source)
    return root


@dataclass(frozen=True)
class _TopLevel:
    language: str
    qualifiers: tuple[str, ...]
    phrases: yaml.Node
    hints: yaml.Node | None


def _top_level(ld: _Loader, root: yaml.Node) -> _TopLevel:
    """The file's keys, checked; the phrase and hint sections still to read."""
    qualifiers: tuple[str, ...] = ()
    language = ""
    phrase_node: yaml.Node | None = None
    hints_node: yaml.Node | None = None
    for key, key_node, value in ld.mapping(root, "the file"):
        if key not in _TOP_KEYS:
            raise ld.error(f"unknown key {key!r} (expected one of {', '.join(sorted(_TOP_KEYS))})", key_node)
        if key == "version":
            v = ld.string(value, "version")
            if v != str(SUPPORTED_VERSION):
                raise ld.error(f"unsupported version {v!r} (this dialer reads {SUPPORTED_VERSION})", value)
        elif key == "language":
            language = ld.string(value, "language")
        elif key == "qualifiers":
            qualifiers = tuple(sorted(ld.word_set(value, "qualifiers")))
        elif key == "phrases":
            phrase_node = value
        else:
            hints_node = value
    if phrase_node is None:
        raise ld.error("no 'phrases' section", root)
    return _TopLevel(language, qualifiers, phrase_node, hints_node)


def _section(
    ld: _Loader, section: yaml.Node, hint: bool, qualifiers: tuple[str, ...], seen: dict[tuple[str, ...], Phrase]
) -> list[Phrase]:
    """The phrases (or hints) of one section, by class; each new to ``seen`` (which it extends)."""
    out: list[Phrase] = []
    for class_name, key_node, entries in ld.mapping(section, "hints" if hint else "phrases"):
        try:
            call_class = CallClass(class_name)
        except ValueError:
            raise ld.error(
                f"unknown call class {class_name!r} (see CallClass in dialer/domain/model.py)", key_node
            ) from None
        if not isinstance(entries, yaml.SequenceNode) or not entries.value:
            raise ld.error(f"class {class_name!r}: expected a non-empty list of phrases", entries)
        for entry in entries.value:
            phrase = _phrase(ld, entry, call_class, hint, qualifiers)
            prior = seen.get(phrase.tokens)
            if prior is not None:
                if prior.call_class != phrase.call_class:
                    raise ld.error(
                        f"phrase {phrase.text!r} is mapped to {phrase.call_class.value!r} here and to "
                        f"{prior.call_class.value!r} at line {prior.line}",
                        entry,
                    )
                raise ld.error(f"duplicate phrase {phrase.text!r} (first at line {prior.line})", entry)
            seen[phrase.tokens] = phrase
            out.append(phrase)
    return out


def _phrase(ld: _Loader, entry: yaml.Node, call_class: CallClass, hint: bool, qualifiers: tuple[str, ...]) -> Phrase:
    require: frozenset[str] = frozenset()
    forbid: frozenset[str] = frozenset()
    if isinstance(entry, yaml.MappingNode):
        say: str | None = None
        for key, key_node, value in ld.mapping(entry, "phrase entry"):
            if key not in _ENTRY_KEYS:
                raise ld.error(f"unknown key {key!r} in a phrase (expected say, require, forbid)", key_node)
            if key == "say":
                say = ld.string(value, "say")
            elif key == "require":
                require = ld.word_set(value, "require")
            else:
                forbid = ld.word_set(value, "forbid")
        if say is None:
            raise ld.error("phrase entry without 'say'", entry)
        text = say
    else:
        if isinstance(entry, yaml.ScalarNode) and entry.tag == "tag:yaml.org,2002:null":
            raise ld.error("empty phrase", entry)
        text = ld.string(entry, "phrase")
    text = " ".join(text.split())
    tokens = tuple(tokenize(text))
    if not tokens:
        raise ld.error("empty phrase" if not text else f"phrase {text!r} has no words", entry)
    token_set = set(tokens)
    bad_req = require - token_set
    if bad_req:
        raise ld.error(f"require {sorted(bad_req)} names words that are not in the phrase {text!r}", entry)
    clash = require & forbid
    if clash:
        raise ld.error(f"{sorted(clash)} both required and forbidden", entry)
    if forbid & token_set:
        raise ld.error(f"forbid {sorted(forbid & token_set)} names words of the phrase itself", entry)
    # Qualifiers decide the class: with one the phrase needs it, without it the phrase refuses it.
    # Spellings of one qualifier (temporary/temporarily) share a stem and act as one.
    stems = {stem(t) for t in tokens}
    require = require | {q for q in qualifiers if q in token_set}
    forbid = forbid | {q for q in qualifiers if stem(q) not in stems}
    return Phrase(
        text=text,
        call_class=call_class,
        tokens=tokens,
        words=tuple(words(text)),
        require=require,
        forbid=forbid,
        hint=hint,
        line=_line(entry),
    )


def load_catalogue(path: Path) -> Catalogue:
    """Read and validate the catalogue at ``path``."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("phrase catalogue not found", source=source) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the phrase catalogue: {exc}", source=source) from None
    return parse_catalogue(text, source)


__all__ = ["Catalogue", "Phrase", "load_catalogue", "normalise_word", "parse_catalogue"]
