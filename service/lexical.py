"""Lexical: BM25 (bm25s) over a tokenizer that reads Chinese as well as English.

Whitespace tokenizers see a whole Chinese paragraph as one "word". Ours folds the text
(NFKC, case, Traditional to Simplified, see ``service.language.fold``) and then emits:

- for Latin-script words: the Snowball English stem, minus a short stop list;
- for numbers: the number itself (``2023``, ``1.5``);
- for runs of Chinese, Japanese or Korean characters: every character and every pair of
  adjacent characters, so 地震减灾 matches 地震 and 减灾 without a dictionary.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import bm25s
import numpy as np
import snowballstemmer

from service.language import fold

__all__ = ["TOKENIZER_VERSION", "LexicalIndex", "tokenize", "top_k"]

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
_stemmer = snowballstemmer.stemmer("english")
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
    return str(_stemmer.stemWord(word))


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


class LexicalIndex:
    """BM25 over chunk texts; ``search`` returns (row, score) pairs, best first."""

    def __init__(self, model: bm25s.BM25) -> None:
        self._model = model
        self._df: np.ndarray | None = None

    @property
    def size(self) -> int:
        return int(self._model.scores["num_docs"])

    @classmethod
    def build(cls, texts: Sequence[str]) -> LexicalIndex:
        # Token ids as each text is tokenized: a list of token strings per text holds a new
        # string object for every Chinese unigram and bigram (about 10 GB at 1M chunks);
        # an id list holds pointers to the vocabulary's own ints.
        vocab: dict[str, int] = {}
        ids = [[vocab.setdefault(token, len(vocab)) for token in tokenize(text)] for text in texts]
        vocab.setdefault("", len(vocab))  # bm25s's empty token, a column of its own as before
        model = bm25s.BM25()
        model.index(bm25s.tokenization.Tokenized(ids=ids, vocab=vocab), show_progress=False)
        return cls(model)

    def save(self, directory: Path) -> None:
        self._model.save(str(directory), show_progress=False)

    @classmethod
    def load(cls, directory: Path, *, mmap: bool = True) -> LexicalIndex:
        model = bm25s.BM25.load(str(directory), mmap=mmap, show_progress=False)
        # Plain views of the mapped arrays: still mapped, but slicing a ``np.memmap``
        # makes a memmap object per query term, a tenth of BM25's time on the seeds.
        for key in ("data", "indices", "indptr"):
            if isinstance(model.scores.get(key), np.memmap):
                model.scores[key] = model.scores[key].view(np.ndarray)
        return cls(model)

    def idf(self, term: str) -> float:
        """Inverse document frequency over chunks (BM25's form); unseen terms weigh most."""
        if self._df is None:
            self._df = np.diff(np.asarray(self._model.scores["indptr"]))
        row = self._model.vocab_dict.get(term)
        df = 0 if row is None else int(self._df[row])
        return float(np.log(1 + (self.size - df + 0.5) / (df + 0.5)))

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        terms = [term for term in tokenize(query) if term in self._model.vocab_dict]
        if not terms or k <= 0:
            return []
        scores = self._model.get_scores(terms)
        return [(int(row), float(scores[row])) for row in top_k(scores, k)]


_BLOCK = 1024  # scores a block in top_k's first pass


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Rows of the ``k`` highest positive scores, best first (ties: lower row first).

    Exact, without ordering every score: the k-th largest of the block maxima is a floor
    that at least k scores reach, so only the scores at or above it are candidates. At 1M
    chunks this takes 1.2 ms instead of 5-7 ms for a partition of all the scores (half of
    them are above zero for a typical question)."""
    n = len(scores)
    if k <= 0 or n == 0:
        return np.zeros(0, dtype=np.int64)
    floor = 0.0
    if n >= k * _BLOCK:
        maxima = scores[: n // _BLOCK * _BLOCK].reshape(-1, _BLOCK).max(axis=1)
        floor = float(np.partition(maxima, len(maxima) - k)[len(maxima) - k])
    candidates = np.flatnonzero(scores >= floor) if floor > 0 else np.flatnonzero(scores > 0)
    if len(candidates) > k:  # keep every score tied with the k-th, then order by row
        values = scores[candidates]
        candidates = candidates[values >= np.partition(values, len(values) - k)[len(values) - k]]
    return candidates[np.lexsort((candidates, -scores[candidates]))][:k]
