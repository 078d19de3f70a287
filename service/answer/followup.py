"""Follow-up questions: a pronoun or a missing subject read against the previous question.

"When was it founded?" after "What is the Trilateral Cooperation Secretariat?" is asked as
"When was the Trilateral Cooperation Secretariat founded?". A conversation is the previous
turns (``Turn``, newest last, at most ``MAX_TURNS``); ``resolve`` returns the rewritten
question and the subject it assumed, or None when the question stands on its own.

Where the follow-up refers back (``_Reference``):

- **English**: spaCy's parser (the build's English pipeline, ``service.ingest.annotate``)
  marks third-person pronouns by their morphology (``Person=3``, ``Poss=Yes``, ``Gender``);
  one bound by a name earlier in the same question ("Who said Ou Boqian would visit his
  hometown?") refers to it, not to the conversation.
- **Chinese** (either script): jieba's pronoun tag (``r``) less its interrogatives (什么, 谁,
  哪) and the speaker and listener (我, 你); a question that opens on its verb or
  preposition with no noun before it (是什么时候成立的？) has lost its subject.
- **Japanese and Korean**: their demonstratives and pronouns are a small closed class of
  grammar words (その, それ, そこ, 彼 / 그것, 그곳, 그녀, 그); a question with no topic
  particle that opens on an interrogative (いつ設立されましたか, 언제 설립되었나요) has lost its
  subject.

The antecedent is the previous question's main subject: its named entity or noun phrase
(English: the parser's noun chunks with their "of" phrases, the subject before the object;
Chinese: jieba's noun runs; Japanese and Korean: the phrase before a particle), agreeing
with the pronoun in animacy where it says (he / 他 / 彼 a person, it / 它 / それ not). A
previous question that was itself a follow-up is resolved first. Failing a subject there,
the subject of the previous answer's sentence.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from service.answer.analysis import analyse_question, han_tokens, noun_kind
from service.encode.query import analyse
from service.errors import InputError
from service.ingest.chunk import sentence_spans
from service.records import Document
from service.text.language import fold

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc, Span, Token

__all__ = [
    "MAX_TURNS",
    "MAX_TURN_CHARS",
    "Resolution",
    "Turn",
    "TurnCitation",
    "check_history",
    "resolve",
]

MAX_TURNS = 5
MAX_TURN_CHARS = 2000


@dataclass(frozen=True)
class TurnCitation:
    """Where a previous answer was quoted from (``document.text[char_start:char_end]``)."""

    doc_id: str
    char_start: int
    char_end: int


@dataclass(frozen=True)
class Turn:
    """One previous question of a conversation, with its answer and citation if any."""

    question: str
    answer: str | None = None
    citation: TurnCitation | None = None


@dataclass(frozen=True)
class Resolution:
    """A follow-up as asked of the engine: the rewritten question and the subject assumed."""

    question: str
    subject: str


def check_history(history: Sequence[Turn]) -> tuple[Turn, ...]:
    """The history if within its bounds; else an ``InputError`` naming the field to fix."""
    if len(history) > MAX_TURNS:
        raise InputError(
            "history",
            f"history has {len(history)} turns; send at most the last {MAX_TURNS}, newest last.",
        )
    for i, turn in enumerate(history):
        for name, text in (("question", turn.question), ("answer", turn.answer)):
            if text is not None and len(text) > MAX_TURN_CHARS:
                raise InputError(
                    f"history[{i}].{name}",
                    f"history[{i}].{name} has {len(text)} characters; the limit is "
                    f"{MAX_TURN_CHARS}.",
                )
        if not turn.question.strip():
            raise InputError(f"history[{i}].question", f"history[{i}].question is empty.")
    return tuple(history)


# ---------------------------------------------------------------------------- the records
@dataclass(frozen=True)
class _Reference:
    """Where a follow-up refers back: characters ``start:end`` of it (empty: a missing
    subject, to be inserted at ``start``), how to fill them, and the animacy asked."""

    start: int
    end: int
    form: str  # "pronoun", "possessive" (its theme -> the theme of X), "determiner"
    # (その -> Xの), "missing" (the subject slot is empty), "about" (the question names
    # nothing of its own: "how many delegates attended?" is asked about X)
    person: bool | None  # he / 他: True; it / 它: False; they / 其: None
    possessed_end: int = 0  # English possessive: the end of the possessed noun
    plural: bool | None = None  # they: True; it, he: False


@dataclass(frozen=True)
class _Candidate:
    """A possible antecedent: its phrase as written and its bare name (no article)."""

    phrase: str
    name: str
    named: bool  # holds a named entity
    person: bool
    rank: int  # its role: 0 subject, 1 object, 2 other
    plural: bool | None = None  # English: a plural head or a coordination


# ------------------------------------------------------------------------------- English
_PARSER_LOCK = threading.Lock()
_WH_TAGS = frozenset({"WDT", "WP", "WP$", "WRB"})
_ROLES = {"nsubj": 0, "nsubjpass": 0, "attr": 1, "dobj": 1, "pobj": 2}


@lru_cache(maxsize=1)
def _parser() -> Language:
    """The build's English pipeline (tagger, parser, entities), loaded once."""
    from service.ingest.annotate import Annotator

    return Annotator().model()


def _parse(text: str) -> Doc:
    nlp = _parser()
    with _PARSER_LOCK:  # a spaCy pipeline is not documented as safe across threads
        return nlp(text)


def _english_reference(text: str) -> _Reference | None:
    doc = _parse(text)
    for token in doc:
        if token.morph.get("PronType", []) == ["Dem"] and token.dep_ != "mark":
            return _demonstrative(token)  # "that forum's", "this secretary-general"
        if token.tag_ not in {"PRP", "PRP$"} or token.morph.get("Person", []) != ["3"]:
            continue
        gender = token.morph.get("Gender", [])
        person = None if not gender else gender != ["Neut"]
        plural = token.morph.get("Number", []) == ["Plur"]
        if _bound(doc, token, person):
            continue
        start, end = token.idx, token.idx + len(token)
        if token.morph.get("Poss", []) == ["Yes"] and token.head.i > token.i:
            head = token.head
            return _Reference(start, end, "possessive", person, head.idx + len(head), plural)
        return _Reference(start, end, "pronoun", person, plural=plural)
    if analyse_question(analyse(text)).entities or any(t.pos_ == "PROPN" for t in doc):
        return None
    return _Reference(0, 0, "about", None)


def _demonstrative(token: Token) -> _Reference:
    """this / that, alone or with its noun: the whole phrase stands for the subject."""
    head = token.head
    if token.dep_ == "det" and head.i > token.i and head.pos_ in {"NOUN", "PROPN"}:
        person = noun_kind(head.text) == "person"
        plural = head.tag_ in {"NNS", "NNPS"}
        return _Reference(token.idx, head.idx + len(head), "pronoun", person, plural=plural)
    plural = token.morph.get("Number", []) == ["Plur"]
    return _Reference(token.idx, token.idx + len(token), "pronoun", None, plural=plural)


def _bound(doc: Doc, pronoun: Token, person: bool | None) -> bool:
    """Whether a noun phrase earlier in the question, not asked about (which forum), can be
    the pronoun's antecedent: then it refers inside the question."""
    for chunk in doc.noun_chunks:
        if chunk.end > pronoun.i:
            break
        if chunk.root.pos_ == "PRON" or any(t.tag_ in _WH_TAGS for t in chunk):
            continue
        if person is None or _is_person(chunk) == person:
            return True
    return False


def _is_person(chunk: Span) -> bool:
    labels = {ent.label_ for ent in chunk.ents}
    if labels:
        return "PERSON" in labels
    return any(noun_kind(t.text) == "person" for t in chunk if t.pos_ in {"NOUN", "PROPN"})


def _english_candidates(text: str) -> list[_Candidate]:
    doc = _parse(text)
    found = []
    for chunk in doc.noun_chunks:
        root = chunk.root
        if root.pos_ == "PRON" or any(t.tag_ in _WH_TAGS for t in chunk):
            continue
        end = chunk.end
        for child in root.rights:  # "Forum 2023", "Secretary General of the Secretariat"
            if child.dep_ in {"nummod", "compound", "appos"} or (
                child.dep_ == "prep" and child.lower_ == "of"
            ):
                end = max(end, child.right_edge.i + 1)
        while end > chunk.end and doc[end - 1].pos_ in {"ADP", "PUNCT", "CCONJ"}:
            end -= 1  # "LEE Hyuk president of?": the preposition is stranded
        span = doc[chunk.start : end]
        bare = span[1:] if span[0].tag_ in {"DT", "PRP$"} else span
        if not len(bare):
            continue
        named = any(t.pos_ == "PROPN" for t in span) or bool(chunk.ents)
        plural = root.tag_ in {"NNS", "NNPS"} or any(c.dep_ == "conj" for c in root.children)
        rank = _ROLES.get(root.dep_, 3)
        found.append(_Candidate(span.text, bare.text, named, _is_person(chunk), rank, plural))
    return found


def _english_rewrite(text: str, ref: _Reference, subject: _Candidate) -> str:
    if ref.form == "about":  # "On what date?" -> "About the forum: on what date?"
        return f"About {subject.phrase}: {text[:1].lower()}{text[1:]}"
    if ref.form == "possessive":  # "its theme" -> "the theme of the forum"
        possessed = text[ref.end : ref.possessed_end].strip()
        return f"{text[: ref.start]}the {possessed} of {subject.phrase}{text[ref.possessed_end :]}"
    phrase = subject.phrase
    if ref.start == 0 and phrase[:1].islower():
        phrase = phrase[:1].upper() + phrase[1:]
    return f"{text[: ref.start]}{phrase}{text[ref.end :]}"


# ------------------------------------------------------------------------------- Chinese
_ZH_NOT_BACK = re.compile(
    "^(?:什么|什麼|谁|誰|哪|怎|多少|几|幾|如何|何|为何|我|你|您|咱|自己|大家|本人|各|每|某|其他|其它|别人)"
)
_ZH_PERSON = re.compile("^(?:他|她)")
_ZH_THING = re.compile("^(?:它)")
_ZH_NOUN_FLAGS = frozenset(
    {"n", "nr", "nrfg", "nrt", "ns", "nt", "nz", "nl", "ng", "vn", "j", "eng"}
)
_ZH_NAME_FLAGS = frozenset({"nr", "nrfg", "nrt", "ns", "nt", "nz", "j", "eng"})
_ZH_TIME_ASKED = re.compile("^(?:什么时候|什么时间|何时|哪一年|哪年|哪天)")


def _chinese_reference(text: str) -> _Reference | None:
    tokens = han_tokens(text)
    for i, (word, flag, start) in enumerate(tokens):
        if flag != "r" or _ZH_NOT_BACK.match(word):
            continue
        if any(f in _ZH_NAME_FLAGS for _, f, _ in tokens[:i]) or _latin_before(text, start):
            return None  # a name before it is its antecedent
        person = True if _ZH_PERSON.match(word) else False if _ZH_THING.match(word) else None
        end = start + len(word)
        following = tokens[i + 1] if i + 1 < len(tokens) else None
        if following and following[1] in _ZH_NOUN_FLAGS and following[2] == end:
            # 该秘书处: the determiner and its noun stand for the subject
            return _Reference(start, following[2] + len(following[0]), "pronoun", person)
        return _Reference(start, end, "pronoun", person)
    if analyse_question(analyse(text)).entities:
        return None
    return _chinese_missing(text, tokens) or _Reference(0, 0, "about", None)


def _latin_before(text: str, at: int) -> bool:
    return re.search("[A-Za-z]{2,}", text[:at]) is not None


def _chinese_missing(text: str, tokens: list[tuple[str, str, int]]) -> _Reference | None:
    """A question opening on its verb or preposition, adverbs and an asked time aside
    (是什么时候成立的, 什么时候成立的, 在哪里举行), has no subject."""
    at = 0
    while at < len(tokens) and tokens[at][1] in {"d", "c"}:
        at += 1
    asked = _ZH_TIME_ASKED.match(fold(text[tokens[at][2] :])) if at < len(tokens) else None
    if asked:
        end = tokens[at][2] + asked.end()
        while at < len(tokens) and tokens[at][2] < end:
            at += 1
    if at < len(tokens) and tokens[at][1][:1] in {"v", "p"} and tokens[at][1] != "vn":
        return _Reference(0, 0, "missing", None)
    return None


def _chinese_candidates(text: str) -> list[_Candidate]:
    """jieba's noun runs (中日韩合作秘书处) and the Latin names beside them, in order."""
    tokens = han_tokens(text)
    spans: list[list[int]] = []  # [start, end, named]
    for i, (word, flag, start) in enumerate(tokens):
        between = (  # 高官 + 会 + 机制: a one-character verb inside a noun run
            flag == "v"
            and len(word) == 1
            and i + 1 < len(tokens)
            and tokens[i + 1][1] in _ZH_NOUN_FLAGS
            and bool(spans)
            and spans[-1][1] == start
        )
        if (flag not in _ZH_NOUN_FLAGS or flag == "t") and not between:
            continue
        named = int(flag in _ZH_NAME_FLAGS)
        if spans and spans[-1][1] == start:
            spans[-1][1], spans[-1][2] = start + len(word), spans[-1][2] | named
        else:
            spans.append([start, start + len(word), named])
    for match in re.finditer(r"[A-Za-z][A-Za-z0-9 .&'-]*[A-Za-z0-9]|[A-Za-z]{2,}", text):
        spans.append([match.start(), match.end(), 1])
    spans.sort()
    merged: list[list[int]] = []
    for span in spans:  # a Latin name run on into a noun (NEAR国际论坛) is one phrase
        if merged and span[0] <= merged[-1][1] + (text[merged[-1][1] : span[0]].isspace()):
            merged[-1][1], merged[-1][2] = max(merged[-1][1], span[1]), merged[-1][2] | span[2]
        else:
            merged.append(list(span))
    found = []
    for start, end, named in merged:
        phrase = text[start:end].strip()
        person = any(f in {"nr", "nrfg", "nrt"} for _, f, s in tokens if start <= s < end)
        found.append(_Candidate(phrase, phrase, bool(named), person, 0))
    return found


# --------------------------------------------------------------------- Japanese, Korean
# The demonstratives and pronouns: closed classes of grammar words.
_JA_REFERENCE = re.compile(
    "(?P<det>その|この|あの)(?!ため|後|他|まま|よう|上)"
    "|(?P<pro>それ|これ|あれ)(?!ぞれ|まで|から|以上|ほど|とも)"
    "|(?P<place>あそこ|そこ|ここ)"
    "|(?P<person>彼女ら|彼女|彼ら|彼)"
)
_JA_ASKED = re.compile("^(?:いつ|どこ|誰|だれ|何|なぜ|どのように|どう|どの|いくつ)")
_JA_TOPIC = re.compile("は|とは|が")
_JA_PHRASE = re.compile(
    r"[\u30a0-\u30ff\u3400-\u9fffA-Za-z0-9][\u30a0-\u30ff\u3400-\u9fffA-Za-z0-9・ .-]*"
)
_KO_REFERENCE = re.compile(
    r"(?<![가-힣])(?:(?P<pro>그것|이것|저것|그곳|이곳|저곳|거기|여기|저기|그녀|그들"
    r"|그게|이게|저게|그건|이건|저건|그걸|이걸)"
    r"|(?P<person>그)(?=는|가|를|의|에게)|(?P<det>그|이|저)(?=\s+[가-힣A-Za-z]))"
)
_KO_ASKED = re.compile("^(?:언제|어디|누가|누구|무엇|뭐|몇|얼마|왜|어떻게|어느|어떤)")
_KO_TOPIC = re.compile("[가-힣A-Za-z0-9](?:은|는|이|가)(?:\\s|$)")
_KO_PARTICLE = re.compile("(?:은|는|이|가|을|를|에서|에|으로|로|와|과|도)$")
_KO_RANKS = {"은": 0, "는": 0, "이": 0, "가": 0, "을": 1, "를": 1}


def _japanese_reference(text: str) -> _Reference | None:
    match = _JA_REFERENCE.search(text)
    if match:
        person = True if match.group("person") else False if match.group("pro") else None
        form = "determiner" if match.group("det") else "pronoun"
        return _Reference(match.start(), match.end(), form, person)
    if analyse_question(analyse(text)).entities:
        return None
    missing = _JA_ASKED.match(text) and not _JA_TOPIC.search(text)
    return _Reference(0, 0, "missing" if missing else "about", None)


def _japanese_candidates(text: str) -> list[_Candidate]:
    found = []
    for match in _JA_PHRASE.finditer(text):
        phrase = match.group().strip()
        if _JA_ASKED.match(phrase) or not phrase:
            continue
        topic = _JA_TOPIC.match(text, match.end()) is not None or text.startswith("を", match.end())
        named = bool(re.search("[A-Za-z\u30a0-\u30ff]", phrase)) or len(phrase) > 2
        found.append(_Candidate(phrase, phrase, named, False, 0 if topic else 2))
    return found


def _korean_reference(text: str) -> _Reference | None:
    match = _KO_REFERENCE.search(text)
    if match:
        person = True if match.group("person") or match.group(0) in {"그녀", "그들"} else None
        if match.group("pro") and match.group(0)[:2] not in {"그녀", "그들"}:
            person = False
        form = "determiner" if match.group("det") else "pronoun"
        return _Reference(match.start(), match.end(), form, person)
    if analyse_question(analyse(text)).entities:
        return None
    missing = _KO_ASKED.match(text) and not _KO_TOPIC.search(text)
    return _Reference(0, 0, "missing" if missing else "about", None)


def _korean_candidates(text: str) -> list[_Candidate]:
    """The words before a particle (NEAR 국제포럼 2023은 -> NEAR 국제포럼 2023)."""
    found: list[_Candidate] = []
    words: list[str] = []
    for word in text.rstrip("?？.!").split():
        if _KO_ASKED.match(word):
            words = []
            continue
        particle = _KO_PARTICLE.search(word)
        if particle is None:
            words.append(word)
            continue
        phrase = " ".join([*words, word[: particle.start()]]).strip()
        if phrase:
            rank = _KO_RANKS.get(particle.group(), 2)
            named = bool(re.search("[A-Za-z0-9]", phrase)) or len(words) > 0
            found.append(_Candidate(phrase, phrase, named, False, rank))
        words = []
    return found


def _particle_topic(subject: str) -> str:
    """The topic particle that follows ``subject``: 은 after a final consonant, else 는."""
    last = subject[-1:]
    if "가" <= last <= "힣":
        return "은" if (ord(last) - 0xAC00) % 28 else "는"
    return "은" if last.isdigit() else "는"


# ------------------------------------------------------------------------------ together
def _language(text: str) -> str:
    return analyse(text).language


def _reference(text: str, language: str) -> _Reference | None:
    if language == "ko":
        return _korean_reference(text)
    if language == "ja":
        return _japanese_reference(text)
    if language.startswith("zh"):
        return _chinese_reference(text)
    return _english_reference(text)


def _candidates(text: str) -> list[_Candidate]:
    language = _language(text)
    if language == "ko":
        return _korean_candidates(text)
    if language == "ja":
        return _japanese_candidates(text)
    if language.startswith("zh"):
        return _chinese_candidates(text)
    return _english_candidates(text)


def _choose(candidates: Sequence[_Candidate], ref: _Reference) -> _Candidate | None:
    """The main subject: one that agrees in number and animacy if any does, then a name
    before a common noun, then the subject before the object, then the first."""
    if not candidates:
        return None
    agreeing = [
        c
        for c in candidates
        if (ref.person is None or c.person == ref.person)
        and (ref.plural is None or c.plural is None or c.plural == ref.plural)
    ] or candidates
    return min(agreeing, key=lambda c: (not c.named, c.rank, candidates.index(c)))


def _rewrite(text: str, language: str, ref: _Reference, subject: _Candidate) -> str:
    if language == "en":
        return _english_rewrite(text, ref, subject)
    name = subject.name
    if ref.form == "about":
        about = {"ja": "{}について、", "ko": "{}에 대해 "}.get(language, "关于{}，")
        return about.format(name) + text
    if language == "ja":
        filler = (
            f"{name}の"
            if ref.form == "determiner"
            else f"{name}は"
            if ref.form == "missing"
            else name
        )
    elif language == "ko":
        filler = (
            f"{name}의"
            if ref.form == "determiner"
            else f"{name}{_particle_topic(name)} "
            if ref.form == "missing"
            else name
        )
    else:
        filler = name
    return f"{text[: ref.start]}{filler}{text[ref.end :]}"


def _answer_subjects(turn: Turn, documents: Mapping[str, Document] | None) -> list[_Candidate]:
    """The subjects of the sentence the previous answer was quoted from."""
    citation = turn.citation
    if citation is None or documents is None or citation.doc_id not in documents:
        return []
    text = documents[citation.doc_id].text
    for start, end in sentence_spans(text):
        if start <= citation.char_start < end:
            return _candidates(text[start:end])
    return []


def _antecedents(
    history: Sequence[Turn], documents: Mapping[str, Document] | None
) -> list[_Candidate]:
    previous = history[-1]
    earlier = resolve(previous.question, history[:-1], documents) if len(history) > 1 else None
    asked = earlier.question if earlier else previous.question
    return _candidates(asked) or _answer_subjects(previous, documents)


def resolve(
    question: str,
    history: Sequence[Turn],
    documents: Mapping[str, Document] | None = None,
) -> Resolution | None:
    """The follow-up as it should be asked, and the subject assumed; None when it stands
    on its own or there is nothing to resolve it against.

    Args:
        question: the follow-up, cleaned (``engine.clean_question``).
        history: the previous turns, newest last (``check_history``'s bounds).
        documents: the corpus, to read the previous answer's sentence when the previous
            question names no subject.

    Returns:
        The rewritten question and the subject, or None.
    """
    if not history:
        return None
    language = _language(question)
    ref = _reference(question, language)
    if ref is None:
        return None
    subject = _choose(_antecedents(history, documents), ref)
    if subject is None:
        return None
    return Resolution(_rewrite(question, language, ref, subject), subject.name)
