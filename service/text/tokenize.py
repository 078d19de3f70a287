"""Tokenizing: the index terms of a text, the same for documents and queries.

Whitespace tokenizers see a whole Chinese paragraph as one "word". Ours normalises the
text (NFKC) and then emits:

- for Latin-script words: the Snowball English stem of the case-folded word, minus a short
  stop list. A name is never a stop word: a word written in capitals (NEAR, WHO, IT) or
  capitalised inside a sentence (Will, The Hague) keeps its stem, so the acronym NEAR finds
  the passages about the NEAR forum and "near" the preposition finds nothing;
- for numbers: the number itself (``2023``, ``1.5``);
- for runs of Chinese, Japanese or Korean characters, folded to Simplified Chinese (and
  Japanese kanji to their Chinese forms first, ``fold_kanji``): every pair of adjacent
  characters, so 地震减灾 matches 地震 and 减灾 without a dictionary, and the words of
  three characters or more that jieba finds in the Han characters (反恐磋商 is 反恐 + 磋商,
  中日韩 a word of its own). Single characters are not terms: the most frequent of them
  (的, 国, 日) are in nearly every Chinese passage and drown the bigrams that say more;
  jieba's two-character words are bigrams already.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from functools import lru_cache

import snowballstemmer

from service.text.language import CJK_RE, fold, fold_kanji, has_kana
from service.text.words import cut

__all__ = ["TOKENIZER_VERSION", "content_terms", "literal", "tokenize", "word_term"]

# Bump when tokenize() changes: the manifest records it and a stale index is refused.
TOKENIZER_VERSION = "cjk-bi+jieba3+kanji+snowball-en+irregular+names/3"

_TOKEN_RE = re.compile(
    r"(?P<num>\d+(?:[.,]\d+)*)"
    r"|(?P<word>[^\W\d_]+(?:['’][^\W\d_]+)?)",
)
_CJK_RUN_RE = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]+")
_HAN_RUN_RE = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]{3,}")
# What ends a sentence (or a heading line): the capital of the word after it says nothing.
_SENTENCE_END = frozenset(".!?:;\n\r\u2028\u2029。！？：；")
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

    With PyStemmer installed (a dependency) ``snowballstemmer.stemmer`` returns its C
    stemmer, about 1 µs a stem; it is the same Snowball algorithm (the same stems on the
    50,000 words of the seeds, the evaluation sets and CC-CEDICT's definitions), and no
    more thread-safe, so still one per thread.
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


def tokenize(text: str) -> list[str]:
    """Index terms of ``text``; the same function serves documents and queries."""
    return _terms(text, words=True)


def _terms(text: str, *, words: bool) -> list[str]:
    tokens: list[str] = []
    text = unicodedata.normalize("NFKC", text)
    japanese = has_kana(text)
    position = 0
    for run in _CJK_RUN_RE.finditer(text):
        tokens.extend(_latin_tokens(text, position, run.start()))
        tokens.extend(_cjk_terms(run.group(), japanese=japanese, words=words))
        position = run.end()
    tokens.extend(_latin_tokens(text, position, len(text)))
    return tokens


def _cjk_terms(run: str, *, japanese: bool, words: bool) -> list[str]:
    """The bigrams of a run of CJK characters, then jieba's longer words in it."""
    run = fold(fold_kanji(run) if japanese else run)
    terms = [run[i : i + 2] for i in range(len(run) - 1)]
    if words:
        for han in _HAN_RUN_RE.finditer(run):
            terms.extend(word for word in cut(han.group()) if len(word) > 2)
    return terms


def _latin_tokens(text: str, start: int, end: int) -> list[str]:
    tokens = []
    for match in _TOKEN_RE.finditer(text, start, end):
        if match["num"]:
            tokens.append(match["num"].replace(",", ""))
            continue
        word = match["word"].replace("’", "'")
        folded = word.casefold()
        if folded not in _STOPWORDS or _is_name(word, text, match.start()):
            tokens.append(_stem(_IRREGULAR.get(folded, folded)))
    return tokens


def word_term(word: str) -> str | None:
    """The index term of one Latin-script word read in lower case ("consultations" ->
    "consult"); None for a stop word."""
    folded = word.casefold()
    return None if folded in _STOPWORDS else _stem(_IRREGULAR.get(folded, folded))


def _is_name(word: str, text: str, start: int) -> bool:
    """Whether the casing of ``word`` (at ``start`` in ``text``) marks a name: all in
    capitals (two letters or more), or capitalised where a sentence does not begin."""
    letters = word.split("'")[0]
    if len(letters) > 1 and letters.isupper():
        return True
    return letters[:1].isupper() and not _starts_sentence(text, start)


def _starts_sentence(text: str, start: int) -> bool:
    """Whether nothing but spaces, quotes and brackets stands between ``start`` and the
    beginning of the text, of a line, or the end of the sentence before."""
    for index in range(start - 1, -1, -1):
        if text[index] in _SENTENCE_END:
            return True
        if text[index].isalnum():
            return False
    return True


# Question words say what kind of answer is wanted, not what a source must contain.
_QUESTION_WORDS = frozenset(
    tokenize(
        "who whom whose what when where which why how many much year date kind kinds type "
        "name did does do is are was were"
    )
)


@lru_cache(maxsize=8192)
def content_terms(text: str) -> frozenset[str]:
    """Content terms for overlap: stems and Chinese bigrams (jieba's words left out, as the
    reader and the claim check were fitted without them), without question words.

    Cached: the same sentences and titles come back query after query."""
    return frozenset(
        token
        for token in _terms(text, words=False)
        if not (CJK_RE.match(token) and len(token) == 1) and token not in _QUESTION_WORDS
    )


# Compiled once per term: the questions' terms outnumber the re module's own cache.
@lru_cache(maxsize=4096)
def literal(term: str) -> re.Pattern[str]:
    """A pattern matching ``term`` literally (where a question's terms occur in a text)."""
    return re.compile(re.escape(term))
