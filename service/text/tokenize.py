"""Tokenizing: the index terms of a text, the same for documents and queries.

Whitespace tokenizers see a whole Chinese paragraph as one "word". Ours folds the text
(NFKC, case, Traditional to Simplified, see ``service.text.language.fold``) and then emits:

- for Latin-script words: the Snowball English stem, minus a short stop list;
- for numbers: the number itself (``2023``, ``1.5``);
- for runs of Chinese, Japanese or Korean characters: every character and every pair of
  adjacent characters, so 地震减灾 matches 地震 and 减灾 without a dictionary.
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache

import snowballstemmer

from service.text.language import CJK_RE, fold

__all__ = ["TOKENIZER_VERSION", "content_terms", "tokenize"]

# Bump when tokenize() changes: the manifest records it and a stale index is refused.
TOKENIZER_VERSION = "cjk-uni-bi+snowball-en+irregular/2"

_TOKEN_RE = re.compile(
    r"(?P<num>\d+(?:[.,]\d+)*)"
    r"|(?P<word>[^\W\d_]+(?:['’][^\W\d_]+)?)",
)
_CJK_RUN_RE = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]+")
_STOPWORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "by",
        "did",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "how",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "their",
        "there",
        "these",
        "they",
        "this",
        "those",
        "to",
        "was",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "whom",
        "whose",
        "why",
        "will",
        "with",
        "would",
    }
)


class _ThreadStemmers(threading.local):
    """One English stemmer per thread. A snowballstemmer object keeps the word it is
    stemming in its own attributes (``current``, ``cursor``, ``limit``), so threads sharing
    one stem each other's words: wrong stems and ``IndexError``. A lock would do too, but
    costs more: 175 ns a call against 60 ns alone, and with eight threads stemming at once
    23.5 to 31 µs a stem against 22.3 µs (a stem takes about 23 µs); a stemmer is a small
    object, made once a thread.
    """

    def __init__(self) -> None:
        self.english = snowballstemmer.stemmer("english")


_stemmers = _ThreadStemmers()
# Irregular English past forms the stemmer cannot reach ("took place" vs "take place").
_IRREGULAR = {
    "began": "begin", "begun": "begin", "brought": "bring", "built": "build",
    "chose": "choose", "chosen": "choose", "came": "come", "drew": "draw", "drawn": "draw",
    "fell": "fall", "fallen": "fall", "found": "find", "gave": "give", "given": "give",
    "got": "get", "gotten": "get", "grew": "grow", "grown": "grow", "held": "hold",
    "kept": "keep", "knew": "know", "known": "know", "led": "lead", "left": "leave",
    "made": "make", "meant": "mean", "met": "meet", "paid": "pay", "ran": "run",
    "said": "say", "saw": "see", "seen": "see", "sent": "send", "set": "set", "spoke": "speak",
    "spoken": "speak", "spent": "spend", "stood": "stand", "taken": "take", "took": "take",
    "taught": "teach", "told": "tell", "thought": "think", "went": "go", "gone": "go",
    "won": "win", "wrote": "write", "written": "write",
}  # fmt: skip


@lru_cache(maxsize=100_000)
def _stem(word: str) -> str:
    # The cache is shared (lru_cache is thread-safe); each stem it keeps was made by the
    # calling thread's own stemmer, so none is a stem of another thread's word.
    return str(_stemmers.english.stemWord(word))


def _cjk_grams(run: str) -> list[str]:
    return [*run, *(run[i : i + 2] for i in range(len(run) - 1))]


def tokenize(text: str) -> list[str]:
    """Index terms of ``text``; the same function serves documents and queries."""
    tokens: list[str] = []
    folded = fold(text)
    position = 0
    for run in _CJK_RUN_RE.finditer(folded):
        tokens.extend(_latin_tokens(folded[position : run.start()]))
        tokens.extend(_cjk_grams(run.group()))
        position = run.end()
    tokens.extend(_latin_tokens(folded[position:]))
    return tokens


def _latin_tokens(text: str) -> list[str]:
    tokens = []
    for match in _TOKEN_RE.finditer(text):
        if match["num"]:
            tokens.append(match["num"].replace(",", ""))
        else:
            word = match["word"].replace("’", "'")
            if word not in _STOPWORDS:
                tokens.append(_stem(_IRREGULAR.get(word, word)))
    return tokens


# Question words say what kind of answer is wanted, not what a source must contain.
_QUESTION_WORDS = frozenset(
    tokenize(
        "who whom whose what when where which why how many much year date kind kinds type "
        "name did does do is are was were"
    )
)


@lru_cache(maxsize=8192)
def content_terms(text: str) -> frozenset[str]:
    """Content terms for overlap: stems and Chinese bigrams (unigrams are too common),
    without question words.

    Cached: the same sentences and titles come back query after query."""
    return frozenset(
        token
        for token in tokenize(text)
        if not (CJK_RE.match(token) and len(token) == 1) and token not in _QUESTION_WORDS
    )
