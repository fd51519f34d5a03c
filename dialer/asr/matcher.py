"""Tolerant matching of recogniser text against the phrase catalogue. Pure: text in, matches out.

Each phrase is aligned to the text word by word (a Smith–Waterman local alignment over stems):

* words meet when their crude stems agree (недоступен/недоступна), when one stem is a prefix of
  the other, or when the text word is a cut-off start of the phrase word (recogniser cut-offs);
* phrase words may be missing (lost credit only), extra text words inside the match cost a small
  penalty, two neighbouring words may be swapped;
* words are weighted: a word used by many classes («абонент», «номер») says little, a word of one
  class («существует», «перегружено») says a lot.

The confidence of a phrase is its aligned weight minus penalties over its total weight.

Qualifiers keep look-alike classes apart: the catalogue turns «временно» into a *required* word
for phrases that carry it and a *forbidden* word for those that do not, checked in the matched
span widened by :data:`QUALIFIER_WINDOW` words. So «номер временно заблокирован» never matches
«номер заблокирован», and «временно недоступен» never meets «не существует».

Partial (not yet final) recogniser text may decide early only when the decision cannot change
with more words: the best phrase is well covered (or heard whole), no phrase of another class can
still grow out of the text's last words into a match the final text would accept, the text is not
turning into another class's words past the match, and a phrase that differs from a look-alike
only by a missing qualifier waits until the qualifier can no longer come: until its own last word
is heard when the look-alike says the qualifier before it («номер заблокирован» / «номер временно
заблокирован»), else until the text has moved past the match.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from dialer.asr.catalogue import Catalogue, Phrase
from dialer.asr.text import WordPairs, edit_distance, negated, phonetic, reglue_negation, resplit, stem, tokenize
from dialer.domain.model import CallClass

QUALIFIER_WINDOW = 2  # words either side of the matched span checked for required/forbidden words
ACCEPT_FINAL = 0.6  # confidence a final text needs
ACCEPT_PARTIAL = 0.75  # confidence over the heard stretch a partial text needs to decide early
MIN_EVIDENCE = (
    0.95  # aligned weight a partial decision needs (one single-class word, or a two-class word and a common one)
)
# … or a whole phrase heard this well, first word to last (a short phrase with a misheard word,
# «Абонян заблокирован», carries a little less than MIN_EVIDENCE)
ACCEPT_WHOLE = 0.9
MIN_PARTIAL_COVERAGE = 0.4  # share of the phrase a partial decision needs
MIN_PARTIAL_WORDS = 2  # one word alone never decides early (a grammar recogniser invents words)
MIN_FINAL_EVIDENCE = 0.5  # aligned weight a final match needs (one two-class word, or more)
KEY_WORD_MAX_CLASSES = 3  # a key word is used by at most this many classes; every match needs one
_KEY_SIM = 0.7
PARTIAL_MARGIN = 1.25  # the winner's aligned weight over the best other class, on partial text
_GAP = 0.2  # penalty per extra text word inside a match
_SWAP = 0.15  # penalty per swapped word pair
_CUT_MIN = 4  # shortest cut-off word credited as the start of a phrase word
_STEM_PREFIX_MIN = 5
_FUZZY_MIN = 5  # shortest phrase word matched by sound (shorter ones have too many look-alikes)
_MERGE_SIM = 0.75  # a word split in two («вне зоны» / «внизону»), credited at most this much
_FUNCTION_WORDS = frozenset(
    "и или в на вы вами вас для по к с за до а the a an is are you to of or and have has been be "
    "please your this that".split()
)


# What partial text must show before a phrase with a temporary look-alike may decide (_twin_wait_of)
TwinWait = Literal["past", "last", ""]


@dataclass(frozen=True, slots=True)
class Match:
    call_class: CallClass
    confidence: float  # 0..1
    phrase: str  # the catalogue phrase as written
    span: tuple[int, int]  # [start, end) in the text's tokens
    span_text: str  # those tokens
    line: int  # catalogue line of the phrase
    hint: bool  # weak evidence (e.g. a person's «алло»), never decisive alone
    decisive: bool  # safe to act on (always true for final text)
    weight: float  # aligned weight (ranks matches of different lengths)


@dataclass(frozen=True, slots=True)
class _Aligned:
    phrase: Phrase
    score: float  # aligned weight minus penalties
    total: float  # total phrase weight
    pairs: tuple[tuple[int, int, float], ...]  # (phrase index, text index, similarity)
    weights: tuple[float, ...]  # per phrase token
    forbidden: bool  # a forbidden word present: it can never match, however the text goes on
    missing: bool  # a required word not (yet) heard

    @property
    def rejected(self) -> bool:
        return self.forbidden or self.missing

    @property
    def local_confidence(self) -> float:
        """Confidence over the stretch of the phrase heard so far (first to last matched word):
        what partial text can be judged on."""
        if not self.pairs:
            return 0.0
        idx = [i for i, _, _ in self.pairs]
        part = sum(self.weights[min(idx) : max(idx) + 1])
        return max(0.0, self.score) / part if part > 0 else 0.0

    @property
    def confidence(self) -> float:
        return max(0.0, self.score) / self.total if self.total > 0 else 0.0

    @property
    def qualifier_to_come(self) -> bool:
        """A required word of the phrase comes after its last word matched so far."""
        if not self.pairs:
            return False
        return any(t in self.phrase.require for t in self.phrase.tokens[self.pairs[-1][0] + 1 :])

    def whole_heard(self, floor: float) -> bool:
        """Its first and last words are matched and its confidence reaches ``floor``."""
        return (
            bool(self.pairs)
            and self.pairs[0][0] == 0
            and self.pairs[-1][0] == len(self.weights) - 1
            and self.confidence >= floor
        )

    @property
    def best_possible_confidence(self) -> float:
        """Its confidence if every phrase word after the last one matched were still heard, in
        full: the words before its first match are in the past and stay missing."""
        if not self.pairs or self.total <= 0:
            return 0.0
        rest = sum(self.weights[self.pairs[-1][0] + 1 :])
        return min(1.0, (max(0.0, self.score) + rest) / self.total)

    @property
    def span(self) -> tuple[int, int]:
        if not self.pairs:
            return (0, 0)
        return (self.pairs[0][1], self.pairs[-1][1] + 1)


@lru_cache(maxsize=262144)
def similarity(phrase_token: str, text_token: str) -> float:
    """How well one text token stands for one phrase token (0..1)."""
    if phrase_token == text_token:
        return 1.0
    ps, ts = stem(phrase_token), stem(text_token)
    if ps == ts:
        return 1.0
    short, long_ = (ps, ts) if len(ps) <= len(ts) else (ts, ps)
    if len(short) >= _STEM_PREFIX_MIN and long_.startswith(short):
        return 0.9
    if len(text_token) >= _CUT_MIN and phrase_token.startswith(text_token):
        # The recogniser cut the word (partial result, clipped audio).
        return 0.5 + 0.5 * len(text_token) / len(phrase_token)
    if len(phrase_token) >= _CUT_MIN and text_token.startswith(phrase_token):
        return 0.9
    return 0.0


def _sounds_like(phrase_token: str, text_token: str) -> float:
    """Free-text misspellings: the sound keys agree, or differ by one edit (two in long words).
    Never across «не»: «доступен» is not «недоступен»."""
    if len(phrase_token) < _FUZZY_MIN or len(text_token) < _FUZZY_MIN - 1:
        return 0.0
    if negated(phrase_token) != negated(text_token):
        return 0.0
    pk, tk = phonetic(phrase_token), phonetic(text_token)
    if pk == tk:
        return 0.85
    limit = 1 if len(pk) < 8 else 2
    d = edit_distance(pk, tk, limit)
    if d > limit:
        return 0.0
    return 0.8 - 0.1 * (d - 1) - (0.1 if pk[0] != tk[0] else 0.0)


@lru_cache(maxsize=262144)
def _merged(phrase_part: str, text_part: str) -> float:
    """A word boundary misplaced: the joined words sound alike (never a mere prefix)."""
    if phrase_part == text_part:
        return _MERGE_SIM
    return min(_MERGE_SIM, _sounds_like(phrase_part, text_part))


Move = tuple[str, int, int]  # (kind, i, j of the cell it came from); kind "" ends a match


class _Grid:
    """The local alignment of a phrase's words (rows) with a text's words (columns): weighted
    matches, phrase words missing, extra text words, swapped pairs, and words split or run
    together («но мир» / «номер», «внизону» / «вне зоны»)."""

    def __init__(self, tokens: tuple[str, ...], text: list[str], w: list[float], sim: list[list[float]]) -> None:
        self.tokens, self.text, self.w, self.sim = tokens, text, w, sim
        m, n = len(tokens), len(text)
        self.h = [[0.0] * (n + 1) for _ in range(m + 1)]
        self.back: list[list[Move]] = [[("", 0, 0)] * (n + 1) for _ in range(m + 1)]

    def fill(self) -> tuple[float, int, int]:
        """Score every cell; the best score and its cell."""
        h, back = self.h, self.back
        best, bi, bj = 0.0, 0, 0
        for i in range(1, len(self.tokens) + 1):
            for j in range(1, len(self.text) + 1):
                cand, move = self._step(i, j)
                if self.sim[i - 1][j - 1] < _MERGE_SIM:
                    cand, move = self._merge(i, j, cand, move)
                h[i][j] = cand
                back[i][j] = move
                if cand > best:
                    best, bi, bj = cand, i, j
        return best, bi, bj

    def _step(self, i: int, j: int) -> tuple[float, Move]:
        """The best of a match, a missing phrase word, an extra text word and a swapped pair."""
        h, w, sim = self.h, self.w, self.sim
        cand = 0.0
        move: Move = ("", 0, 0)
        s = sim[i - 1][j - 1]
        if s > 0 and h[i - 1][j - 1] + w[i - 1] * s > cand:
            cand, move = h[i - 1][j - 1] + w[i - 1] * s, ("m", i - 1, j - 1)
        if h[i - 1][j] > cand:  # phrase word missing from the text
            cand, move = h[i - 1][j], ("d", i - 1, j)
        if h[i][j - 1] - _GAP > cand:  # extra word in the text
            cand, move = h[i][j - 1] - _GAP, ("i", i, j - 1)
        if i >= 2 and j >= 2:
            s1, s2 = sim[i - 1][j - 2], sim[i - 2][j - 1]
            if s1 > 0 and s2 > 0:
                v = h[i - 2][j - 2] + w[i - 1] * s1 + w[i - 2] * s2 - _SWAP
                if v > cand:
                    cand, move = v, ("x", i - 2, j - 2)
        return cand, move

    def _merge(self, i: int, j: int, cand: float, move: Move) -> tuple[float, Move]:
        """``cand``/``move`` bettered by words split or run together, if that scores higher."""
        h, w, tokens, text = self.h, self.w, self.tokens, self.text
        if j >= 2:
            # one phrase word written as two («но мир» for «номер»)
            s2 = _merged(tokens[i - 1], text[j - 2] + text[j - 1])
            if s2 > 0 and h[i - 1][j - 2] + w[i - 1] * s2 > cand:
                cand, move = h[i - 1][j - 2] + w[i - 1] * s2, ("t", i - 1, j - 2)
        if i >= 2:
            # two phrase words written as one («внизону» for «вне зоны»)
            s2 = _merged(tokens[i - 2] + tokens[i - 1], text[j - 1])
            if s2 > 0 and h[i - 2][j - 1] + (w[i - 2] + w[i - 1]) * s2 > cand:
                cand, move = h[i - 2][j - 1] + (w[i - 2] + w[i - 1]) * s2, ("p", i - 2, j - 1)
        if i >= 3:
            # three short phrase words run together («услупаетому» for «услуг по этому»)
            s3 = _merged(tokens[i - 3] + tokens[i - 2] + tokens[i - 1], text[j - 1])
            w3 = w[i - 3] + w[i - 2] + w[i - 1]
            if s3 > 0 and h[i - 3][j - 1] + w3 * s3 > cand:
                cand, move = h[i - 3][j - 1] + w3 * s3, ("q", i - 3, j - 1)
        return cand, move

    def trace(self, bi: int, bj: int) -> list[tuple[int, int, float]]:
        """The (phrase word, text word, similarity) pairs of the best match ending at (bi, bj),
        in text order."""
        pairs: list[tuple[int, int, float]] = []
        i, j = bi, bj
        while i > 0 and j > 0 and self.h[i][j] > 0:
            kind, pi, pj = self.back[i][j]
            if kind == "":
                break
            pairs.extend(self._pairs(kind, i, j))
            i, j = pi, pj
        pairs.sort(key=lambda x: x[1])
        return pairs

    def _pairs(self, kind: str, i: int, j: int) -> list[tuple[int, int, float]]:
        tokens, text, sim = self.tokens, self.text, self.sim
        if kind == "m":
            return [(i - 1, j - 1, sim[i - 1][j - 1])]
        if kind == "x":
            return [(i - 1, j - 2, sim[i - 1][j - 2]), (i - 2, j - 1, sim[i - 2][j - 1])]
        if kind == "t":
            s2 = _merged(tokens[i - 1], text[j - 2] + text[j - 1])
            return [(i - 1, j - 2, s2), (i - 1, j - 1, s2)]
        if kind == "q":
            s3 = _merged(tokens[i - 3] + tokens[i - 2] + tokens[i - 1], text[j - 1])
            return [(i - k, j - 1, s3) for k in (3, 2, 1)]
        if kind == "p":
            s2 = _merged(tokens[i - 2] + tokens[i - 1], text[j - 1])
            return [(i - 2, j - 1, s2), (i - 1, j - 1, s2)]
        return []  # "d", "i": no pair


def _qualifier_heard(word: str, text_token: str, *, lenient: bool = False) -> bool:
    """Stricter than :func:`similarity`: a decisive word counts as heard only when the stems
    agree or the text token is its cut-off start («времен…»), never for mere look-alikes
    («время» is not «временно»). ``lenient`` (checking that a qualifier is *absent*) also takes
    a misspelling one edit away («времено»): a temporary announcement must never pass for a
    not-working one."""
    if stem(word) == stem(text_token):
        return True
    if len(text_token) >= _CUT_MIN and word.startswith(text_token):
        return True
    if lenient and len(word) >= _FUZZY_MIN and len(text_token) >= _FUZZY_MIN:
        return edit_distance(phonetic(word), phonetic(text_token), 1) <= 1
    return False


class PhraseMatcher:
    """Matches text against one :class:`Catalogue`. Build once and share, also between threads
    (its only mutable state is a cache that grows by whole entries)."""

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        classes_of: dict[str, set[CallClass]] = defaultdict(set)
        for p in catalogue.phrases:
            for t in p.tokens:
                classes_of[stem(t)].add(p.call_class)
        # A word shared by k classes says less: weight 1/√k.
        self._weight = {s: 1.0 / math.sqrt(len(cls)) for s, cls in classes_of.items()}
        self._n_classes = {s: len(cls) for s, cls in classes_of.items()}
        self._twin_wait = {id(p): self._twin_wait_of(p) for p in catalogue.phrases}
        self._vocabulary = sorted({t for p in catalogue.phrases for t in p.tokens})
        self._phrases_of: dict[str, list[int]] = defaultdict(list)
        for k, p in enumerate(catalogue.phrases):
            for t in dict.fromkeys(p.tokens):
                self._phrases_of[t].append(k)
        self._candidates_cache: dict[str, tuple[int, ...]] = {}
        self._negated_words = frozenset(t for t in self._vocabulary if negated(t))
        self._stems = frozenset(stem(t) for t in self._vocabulary)
        self._known = frozenset(self._vocabulary)
        self._word_pairs = WordPairs.of(
            pair for p in catalogue.phrases if not p.hint for pair in zip(p.tokens, p.tokens[1:], strict=False)
        )

    def _similarity(self, phrase_token: str, text_token: str) -> float:
        """:func:`similarity`, and for a word the catalogue does not know, how it sounds
        («Обонент»): a known word («выключен») never passes for another («отключён»)."""
        s = similarity(phrase_token, text_token)
        if s > 0 or stem(text_token) in self._stems:
            return s
        return _sounds_like(phrase_token, text_token)

    def tokens(self, text: str) -> list[str]:
        """``text`` tokenised for matching, with «не» glued to the wrong word moved back and two
        catalogue words cut in the wrong place cut right."""
        return resplit(reglue_negation(tokenize(text), self._negated_words), self._word_pairs, self._known)

    def _candidates(self, token: str) -> tuple[int, ...]:
        """Indexes of the phrases with a word ``token`` can stand for (cached per token)."""
        hit = self._candidates_cache.get(token)
        if hit is None:
            ks: set[int] = set()
            for v in self._vocabulary:
                if self._similarity(v, token) > 0:
                    ks.update(self._phrases_of[v])
            hit = tuple(sorted(ks))
            if len(self._candidates_cache) < 100_000:
                self._candidates_cache[token] = hit
        return hit

    def token_weight(self, token: str) -> float:
        w = self._weight.get(stem(token), 1.0)
        return w * 0.4 if token in _FUNCTION_WORDS else w

    def _is_key_word(self, token: str) -> bool:
        """A word that names few classes («заблокирован», «недоступен»)."""
        return self._n_classes.get(stem(token), 1) <= KEY_WORD_MAX_CLASSES

    def _has_key_word(self, a: _Aligned) -> bool:
        """A match must rest on at least one key word, not only on «the number you have dialled is»."""
        return any(s >= _KEY_SIM and self._is_key_word(a.phrase.tokens[i]) for i, _, s in a.pairs)

    def _twin_wait_of(self, p: Phrase) -> TwinWait:
        """What partial text must show before ``p`` may decide, when ``p`` is, word for word,
        contained in a phrase of another class that also carries a qualifier ``p`` forbids: then
        the *absence* of the qualifier is what decides.

        ``"past"``: a twin's qualifier may come after ``p``'s last word, so the text must have
        moved past the match. ``"last"``: every twin's qualifier sits before ``p``'s last word
        («номер заблокирован» in «номер временно заблокирован»), so once that last word is heard
        with no qualifier in the window around the match, no twin can grow out of the text.
        ``""``: no twin."""
        stems = {stem(t) for t in p.tokens}
        last = stem(p.tokens[-1])
        wait: TwinWait = ""
        for q in self.catalogue.phrases:
            if q.call_class == p.call_class or q.hint or not (p.forbid & set(q.tokens)):
                continue
            if not stems <= {stem(t) for t in q.tokens if t not in p.forbid}:
                continue
            last_at = max(i for i, t in enumerate(q.tokens) if stem(t) == last)
            if any(t in p.forbid for t in q.tokens[last_at:]):
                return "past"
            wait = "last"
        return wait

    # --- alignment ---------------------------------------------------------------------------

    def _align(self, p: Phrase, text: list[str]) -> _Aligned | None:
        w = [self.token_weight(t) for t in p.tokens]
        sim = [[self._similarity(pt, tt) for tt in text] for pt in p.tokens]
        if not any(any(row) for row in sim):
            return None
        grid = _Grid(p.tokens, text, w, sim)
        best, bi, bj = grid.fill()
        pairs = grid.trace(bi, bj)
        if not pairs:
            return None
        span = (pairs[0][1], pairs[-1][1] + 1)
        # a text word the match reads as one of the phrase's own words is that word, not a
        # qualifier: «в настоящее времен(я) вызов …» (Whisper's «времен» for «время»)
        own = {j for i, j, _ in pairs if p.tokens[i] not in p.require}
        forbidden, missing = self._qualifiers_fail(p, text, span, own)
        return _Aligned(p, best, sum(w), tuple(pairs), tuple(w), forbidden, missing)

    @staticmethod
    def _qualifiers_fail(p: Phrase, text: list[str], span: tuple[int, int], own: Collection[int]) -> tuple[bool, bool]:
        """(a forbidden word is heard, a required word is not) in the window around the match;
        ``own``: indexes of text words matched as the phrase's own words (never a forbidden one)."""
        lo = max(0, span[0] - QUALIFIER_WINDOW)
        hi = min(len(text), span[1] + QUALIFIER_WINDOW)
        window = [t for k, t in enumerate(text[lo:hi], lo) if k not in own]
        forbidden = any(_qualifier_heard(f, t, lenient=True) for f in p.forbid for t in window)
        missing = any(not any(_qualifier_heard(r, t) for t in window) for r in p.require)
        return forbidden, missing

    # --- public API --------------------------------------------------------------------------

    def match_all(self, text: str, *, floor: float = 0.3) -> list[Match]:
        """Every phrase whose confidence reaches ``floor`` (qualifier-rejected ones left out),
        best first. ``decisive`` is set as for final text."""
        tokens = self.tokens(text)
        out = [
            self._to_match(a, tokens, decisive=a.confidence >= ACCEPT_FINAL)
            for a in self._aligned(tokens)
            if not a.rejected and a.confidence >= floor
        ]
        out.sort(key=lambda mt: (mt.hint, -mt.weight, -mt.confidence))
        return out

    def _aligned(self, tokens: list[str]) -> list[_Aligned]:
        if not tokens:
            return []
        ks: set[int] = set()
        for t in set(tokens):
            ks.update(self._candidates(t))
        out = []
        for k in sorted(ks):
            a = self._align(self.catalogue.phrases[k], tokens)
            if a is not None:
                out.append(a)
        return out

    def best_match(self, text: str, partial: bool = False) -> Match | None:
        """The class ``text`` announces, or None when unsure.

        Final text: the best-ranked phrase with confidence ≥ :data:`ACCEPT_FINAL`; person hints
        only when no other phrase matched. Partial text: a match only when it is decisive
        already (see the module notes); hints never decide on partial text.
        """
        tokens = self.tokens(text)
        aligned = self._aligned(tokens)
        live = [a for a in aligned if not a.rejected and self._has_key_word(a)]
        if partial:
            # Judge what has been heard so far: a well-matched stretch carrying enough
            # class-specific weight, with no other class still in the running.
            heard = [
                a
                for a in live
                if not a.phrase.hint
                and a.local_confidence >= ACCEPT_PARTIAL
                and (a.score >= MIN_EVIDENCE or a.whole_heard(ACCEPT_WHOLE))
                and a.confidence >= MIN_PARTIAL_COVERAGE
                and len(a.pairs) >= min(MIN_PARTIAL_WORDS, len(a.phrase.tokens))
            ]
            if not heard:
                return None
            top = max(heard, key=lambda a: (a.score, a.confidence))
            # Any phrase the text may still grow into competes, key word heard or not, and so does
            # one whose required qualifier («временно») is still to come in its word order.
            rivals = [a for a in aligned if not a.forbidden and (not a.rejected or a.qualifier_to_come)]
            if not self._decisive_partial(top, rivals, len(tokens)):
                return None
            # judged on what has been heard: the phrase's words still to come cost nothing yet
            return self._to_match(top, tokens, decisive=True, heard_only=True)
        strong = [
            a for a in live if not a.phrase.hint and a.confidence >= ACCEPT_FINAL and a.score >= MIN_FINAL_EVIDENCE
        ]
        if strong:
            top = max(strong, key=lambda a: (a.score, a.confidence))
            return self._to_match(top, tokens, decisive=True)
        hints = [a for a in live if a.phrase.hint and a.confidence >= ACCEPT_FINAL]
        if not hints:
            return None
        top = max(hints, key=lambda a: (a.score, a.confidence))
        return self._to_match(top, tokens, decisive=True)

    def _decisive_partial(self, top: _Aligned, rivals: list[_Aligned], n_tokens: int) -> bool:
        wait = self._twin_wait[id(top.phrase)]
        if wait == "past" and top.span[1] > n_tokens - QUALIFIER_WINDOW:
            return False
        if wait == "last" and top.pairs[-1][0] < len(top.phrase.tokens) - 1:
            return False
        if top.span[1] < n_tokens and self._turning_elsewhere(top, rivals, n_tokens - 1):
            return False
        for a in rivals:
            if a.phrase.hint or a.phrase.call_class == top.phrase.call_class:
                continue
            last_phrase_idx = a.pairs[-1][0]
            if a.best_possible_confidence < ACCEPT_FINAL:
                # Its opening words are in the past and even its every word still to come would
                # leave it under what a final text needs, so it can never win (an IVR's «все
                # операторы заняты … оставайтесь на линии» on «абонент занят оставайтесь на линии»).
                continue
            if a.score * PARTIAL_MARGIN > top.score:
                return False
            tail = set(range(max(0, n_tokens - 2), n_tokens))
            if (
                tail <= {j for _, j, _ in a.pairs}
                and last_phrase_idx < len(a.phrase.tokens) - 1
                and a.local_confidence >= ACCEPT_PARTIAL
            ):
                # This phrase explains the newest words too and has more to come: it may still
                # win («вызываемый абонент недоступен» → voicemail, «…номер временно» → ?).
                return False
        return True

    def _turning_elsewhere(self, top: _Aligned, rivals: list[_Aligned], last: int) -> bool:
        """The text went on past ``top``'s match with a word only another class explains, and
        that class's word says something («…вами номер забл…» is turning into «… заблокирован»,
        not «… не обслуживается»); «или», «на» or a word ``top``'s own class explains do not."""
        other = False
        for a in rivals:
            if a.phrase.hint:
                continue
            at_last = [i for i, j, _ in a.pairs if j == last]
            if not at_last:
                continue
            if a.phrase.call_class == top.phrase.call_class:
                return False
            other = other or any(
                a.phrase.tokens[i] not in _FUNCTION_WORDS and self._is_key_word(a.phrase.tokens[i]) for i in at_last
            )
        return other

    @staticmethod
    def _to_match(a: _Aligned, tokens: list[str], *, decisive: bool, heard_only: bool = False) -> Match:
        lo, hi = a.span
        return Match(
            call_class=a.phrase.call_class,
            confidence=round(max(a.confidence, a.local_confidence) if heard_only else a.confidence, 3),
            phrase=a.phrase.text,
            span=(lo, hi),
            span_text=" ".join(tokens[lo:hi]),
            line=a.phrase.line,
            hint=a.phrase.hint,
            decisive=decisive,
            weight=round(a.score, 3),
        )
