"""Text normalisation shared by the phrase catalogue, the matcher and the grammar builder.

Pure functions, no I/O. Recognisers print lower-case words without punctuation; catalogue
phrases are written by people. Both go through :func:`tokenize` so they meet on equal terms.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

# Hyphens split words: Whisper joins words it is unsure of («Амашка-наберитета»).
_WORD_RE = re.compile(r"[^\W_]+(?:['’][^\W_]+)*", re.UNICODE)
_CYRILLIC_RE = re.compile(r"[а-я]")
_LATIN_RE = re.compile(r"[a-z]")

# Russian endings, tried longest first. A crude suffix stripper is enough here: it only has to
# make «недоступен/недоступна/недоступно» and «заблокирован/заблокирована» meet, not to be a
# linguist's stemmer. The minimum stem length keeps short words («или», «сети») intact.
_RU_ENDINGS: tuple[str, ...] = tuple(
    sorted(
        {
            *"ующийся ованный ованная ованное ованные ованного ующий ующая ующее ующие ующего".split(),
            *"ующему ующим ующих ющий ющая ющее ющие ащий ящий ованы овано ована ован".split(),
            *"ный ная ное ные ного ному ным ных ого его ому ему ыми ими ой ей ий ый ая яя".split(),
            *"ое ее ые ие".split(),  # adjectives and participles above
            *"ена ено ены ен на но ны".split(),  # short forms
            *"ается яется ется ится ются утся ятся ался ился ться ешь ете ите ает яет ует".split(),
            *"ит ет ют ут ят ать ять еть ить ть ала ало али ил ила ило или ал ан ся".split(),  # verbs
            *"ами ями ом ем ам ям ах ях ов ев ию ия ью а я о е у ю ы и ь й".split(),  # nouns
        },
        key=len,
        reverse=True,
    )
)
_EN_ENDINGS: tuple[str, ...] = ("ing", "ed", "es", "ly", "s")
_MIN_STEM = 3
_NEGATION_RU = "не"
_MIN_NEGATED_WORD = 3  # «не в сети» stays three words; «не существует» becomes «несуществует»


def normalise_word(word: str) -> str:
    """Lower case, «ё» → «е», typographic apostrophe → ASCII."""
    return word.lower().replace("ё", "е").replace("’", "'")


def words(text: str) -> list[str]:
    """The words of ``text`` as a recogniser would print them (lower case, no punctuation).
    «ё» is kept here because some model vocabularies spell it; see :func:`normalise_word`."""
    return [m.group(0).lower() for m in _WORD_RE.finditer(text)]


def tokenize(text: str) -> list[str]:
    """Words normalised for matching: lower case, «ё» → «е», and Russian «не X» joined into one
    token «неX» so that «не существует» meets «несуществующий» and «недоступен» stays apart from
    «доступен»."""
    raw = [normalise_word(w) for w in words(text)]
    out: list[str] = []
    i = 0
    while i < len(raw):
        w = raw[i]
        if w == _NEGATION_RU and i + 1 < len(raw) and len(raw[i + 1]) >= _MIN_NEGATED_WORD:
            nxt = raw[i + 1]
            if _CYRILLIC_RE.match(nxt):
                out.append(w + nxt)
                i += 2
                continue
        out.append(w)
        i += 1
    return out


@lru_cache(maxsize=65536)
def stem(token: str) -> str:
    """A crude stem of one normalised token (see module notes). Other scripts pass unchanged."""
    if _CYRILLIC_RE.search(token):
        for ending in _RU_ENDINGS:
            if token.endswith(ending) and len(token) - len(ending) >= _MIN_STEM:
                return token[: -len(ending)]
        return token
    if _LATIN_RE.search(token):
        base = token
        for ending in _EN_ENDINGS:
            if base.endswith(ending) and len(base) - len(ending) >= _MIN_STEM:
                base = base[: -len(ending)]
                if ending == "ed" and len(base) > _MIN_STEM and base[-1] == base[-2]:
                    base = base[:-1]  # dialled → dial
                break
        if base.endswith("y") and len(base) > _MIN_STEM:
            base = base[:-1] + "i"  # temporary / temporarily → temporari
        return base
    return token


# --- free-text tolerance (Whisper writes what it hears: «Обонент», «внизону», «заблакирован») ----
_VOWEL_REDUCTION = str.maketrans({"о": "а", "е": "и", "э": "и", "я": "и", "ы": "и", "й": "и", "ю": "у"})
_FINAL_DEVOICING = str.maketrans({"б": "п", "в": "ф", "г": "к", "д": "т", "ж": "ш", "з": "с"})


@lru_cache(maxsize=65536)
def phonetic(token: str) -> str:
    """A crude sound key of a Russian token: unstressed vowels reduced (о→а, е/э/я/ы→и), soft and
    hard signs dropped, doubled letters single, the last consonant devoiced. «Обонент» and
    «абонент» meet; «недоступен» and «доступен» do not. Other scripts pass unchanged."""
    if not _CYRILLIC_RE.search(token):
        return token
    k = token.replace("ь", "").replace("ъ", "").translate(_VOWEL_REDUCTION)
    out: list[str] = []
    for ch in k:
        if not out or out[-1] != ch:
            out.append(ch)
    if out:
        out[-1] = out[-1].translate(_FINAL_DEVOICING)
    return "".join(out)


def edit_distance(a: str, b: str, limit: int) -> int:
    """Levenshtein distance, or ``limit + 1`` as soon as it must exceed ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        best = cur[0]
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
            best = min(best, cur[j])
        if best > limit:
            return limit + 1
        prev = cur
    return prev[-1]


def negated(token: str) -> bool:
    """A token that carries Russian «не» (joined by :func:`tokenize` or written together; free
    text often spells it «ни»: «нитравильно»)."""
    return token.startswith(("не", "ни")) and len(token) > 4


def reglue_negation(tokens: list[str], negated_words: frozenset[str]) -> list[str]:
    """Free text sometimes glues «не» to the word before it («номерни обслуживается», «но мирний
    обслуживается»): when a token ends in a «не»-like syllable and the next token, with «не»
    in front, is a negated catalogue word, move the syllable back («номер необслуживается»)."""
    out = list(tokens)
    for i in range(len(out) - 1):
        prev, nxt = out[i], out[i + 1]
        if negated(nxt) or ("не" + nxt) not in negated_words:
            continue
        for tail in ("ний", "ни", "не", "ней"):
            if prev.endswith(tail) and len(prev) - len(tail) >= 2:
                out[i], out[i + 1] = prev[: -len(tail)], "не" + nxt
                break
    return out


_RESPLIT_MIN = 10  # shortest two-word join re-cut by its sound (shorter ones have look-alikes)


@dataclass(frozen=True)
class WordPairs:
    """Adjacent words of the catalogue's phrases, joined and sound-keyed once (what
    :func:`resplit` cuts text back into): looked up, not scanned, for every decode's text."""

    by_letters: dict[str, tuple[str, str]]
    by_sound: dict[str, list[tuple[str, str]]]  # pairs of at least _RESPLIT_MIN letters

    @classmethod
    def of(cls, pairs: Iterable[tuple[str, str]]) -> WordPairs:
        by_letters: dict[str, tuple[str, str]] = {}
        by_sound: dict[str, list[tuple[str, str]]] = {}
        for pair in sorted(set(pairs)):
            whole = pair[0] + pair[1]
            by_letters.setdefault(whole, pair)
            if len(whole) >= _RESPLIT_MIN:
                by_sound.setdefault(phonetic(whole), []).append(pair)
        return cls(by_letters, by_sound)

    def pair_for(self, joined: str) -> tuple[str, str] | None:
        """The pair ``joined`` spells, letter for letter or, for a long pair, by its sound."""
        exact = self.by_letters.get(joined)
        if exact is not None:
            return exact
        for pair in self.by_sound.get(phonetic(joined), ()):
            if abs(len(pair[0]) + len(pair[1]) - len(joined)) <= 2:
                return pair
        return None


def resplit(tokens: list[str], pairs: WordPairs, known: frozenset[str]) -> list[str]:
    """Free text sometimes cuts two catalogue words in the wrong place («но мерзаблокирован» for
    «номер заблокирован», «но мирно обран» for «номер набран»): when two or three tokens, none a
    known word but a short one, join into a catalogue word pair — letter for letter, or by their
    sound key for a long pair — cut them as that pair. Never across «не» (the sound key keeps it)."""
    out: list[str] = []
    i = 0
    while i < len(tokens):
        cut = _recut(tokens, i, pairs, known)
        if cut is None:
            out.append(tokens[i])
            i += 1
        else:
            n, pair = cut
            out.extend(pair)
            i += n
    return out


def _recut(tokens: list[str], i: int, pairs: WordPairs, known: frozenset[str]) -> tuple[int, tuple[str, str]] | None:
    for n in (2, 3):
        span = tokens[i : i + n]
        if len(span) < n or any(t in known and len(t) > 2 for t in span):
            continue
        pair = pairs.pair_for("".join(span))
        if pair is not None:
            return n, pair
    return None
