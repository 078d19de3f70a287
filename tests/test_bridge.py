"""Dictionary bridging: the weights on a small dictionary by hand, CC-CEDICT's translations,
and the bridge retriever on the seeds' index."""

from __future__ import annotations

import pytest

from service.config import Settings
from service.encode.query import analyse
from service.index import CorpusIndex
from service.retrieve.bridge import BridgeRetriever, bridge_retriever
from service.retrieve.lexical import bm25_retriever
from service.retrieve.registry import registered
from service.text.bridge import Dictionary, cedict
from service.text.language import fold, fold_kanji
from service.text.tokenize import tokenize

COUNTER_TERRORISM = "反恐磋商"
YOUNG_SCHOLARS = "Young Scholars Forum"


def _always(term: str) -> bool:
    return True


# ------------------------------------------------------------ the weights, by hand


@pytest.fixture(scope="module")
def small() -> Dictionary:
    """Four entries: one word with one translation, one with two, a cross-reference."""
    return Dictionary(
        [
            ("秘書處", "秘书处", "mi4 shu1 chu4", ["secretariat"]),
            ("磋商", "磋商", "cuo1 shang1", ["to consult", "negotiations"]),
            ("協商", "协商", "xie2 shang1", ["to consult with", "agreement"]),
            ("恊商", "恊商", "xie2 shang1", ["variant of 協商|协商[xie2 shang1]"]),
        ]
    )


def test_a_word_with_one_translation_gives_it_all_its_weight(small: Dictionary) -> None:
    assert small.to_chinese("the secretariat", _always) == {
        "秘书": pytest.approx(1 / 3),  # 秘书处's three terms share its weight
        "书处": pytest.approx(1 / 3),
        "秘书处": pytest.approx(1 / 3),
    }


def test_an_ambiguous_word_shares_its_weight_among_its_translations(small: Dictionary) -> None:
    assert small.to_chinese("consultations", _always) == {
        "磋商": pytest.approx(0.5),
        "协商": pytest.approx(0.5),
    }


def test_only_translations_the_corpus_holds_share_the_weight(small: Dictionary) -> None:
    assert small.to_chinese("consult", lambda term: term == "磋商") == {"磋商": pytest.approx(1.0)}


def test_each_definition_of_a_chinese_word_weighs_one_over_their_number(
    small: Dictionary,
) -> None:
    assert small.to_english("磋商") == {"consult": 0.5, "negoti": 0.5}


def test_a_cross_reference_translates_nothing(small: Dictionary) -> None:
    assert small.senses("恊商") == [frozenset()]
    assert small.to_english("恊商") == {}


# ------------------------------------------------------------ CC-CEDICT


@pytest.fixture(scope="module")
def dictionary() -> Dictionary:
    return cedict()


def test_a_question_is_carried_into_the_other_language_once(dictionary: Dictionary) -> None:
    """What the bridge retriever searches with and the reader measures sentences by: one
    cached, read-only translation of the question (moved here from the question analysis,
    which no longer carries one of its own)."""
    known = _every_term
    english = dictionary.carried("When was the counter-terrorism consultation held?", "han", known)
    assert "磋商" in english
    assert (
        dictionary.carried("When was the counter-terrorism consultation held?", "han", known)
        is english
    )
    chinese = dictionary.carried("反恐磋商于何时举行？", "latin", known)
    assert "consult" in chinese
    assert "terror" in chinese
    with pytest.raises(TypeError):
        chinese["consult"] = 0.0  # type: ignore[index]


def _every_term(term: str) -> bool:
    return True


def test_counter_terrorism_reaches_anti_terrorism(dictionary: Dictionary) -> None:
    """反恐 is "anti-terrorism" in the dictionary; "terrorism" is most of it, so it counts
    for "counter-terrorism", beside 磋商 for "consultation"."""
    weights = dictionary.to_chinese("the counter-terrorism consultation", _always)
    assert weights.get("反恐", 0) > 0 and weights.get("磋商", 0) > 0


def test_both_scripts_of_a_question_bridge_alike(dictionary: Dictionary) -> None:
    assert dictionary.to_english("磋商會議") == dictionary.to_english("磋商会议")
    assert {"consult", "meet"} <= set(dictionary.to_english("磋商会议"))


def test_japanese_kanji_are_read_in_their_chinese_forms(dictionary: Dictionary) -> None:
    assert fold_kanji("気象庁") == "氣象廳" and fold(fold_kanji("気象庁")) == "气象厅"
    assert "meteorolog" in dictionary.to_english("気象庁の発表")


def test_a_name_the_dictionary_does_not_list_goes_as_pinyin(dictionary: Dictionary) -> None:
    assert "boqian" in tokenize("Ambassador Ou Boqian")
    assert dictionary.to_english("欧渤芊说")["boqian"] == pytest.approx(1.0)


def test_a_word_the_dictionary_does_not_list_is_read_in_listed_parts(
    dictionary: Dictionary,
) -> None:
    """jieba joins 秘书处; the dictionary lists 秘书 (secretary)."""
    assert dictionary.parts("秘书处") == ["秘书"]
    assert "secretari" in dictionary.to_english("秘书处")


def test_listed_words_are_not_taken_for_names(dictionary: Dictionary) -> None:
    """是 + 哪个 would read "shine" in pinyin; both are dictionary words."""
    assert dictionary.romanised(["这", "是", "哪个", "国家"]) == {}


# ------------------------------------------------------------ the retriever


@pytest.fixture(scope="module")
def bridge(corpus_index: CorpusIndex, settings: Settings) -> BridgeRetriever:
    return bridge_retriever(corpus_index, settings)


def _rank_of(hits: list, doc_id: str, phrase: str) -> int | None:
    return next((h.rank for h in hits if h.chunk.doc_id == doc_id and phrase in h.chunk.text), None)


def test_english_question_finds_the_counter_terrorism_passage_through_the_dictionary(
    bridge: BridgeRetriever, corpus_index: CorpusIndex, settings: Settings
) -> None:
    query = analyse(
        "Where did the three countries hold their first counter-terrorism consultation?"
    )
    rank = _rank_of(bridge.search(query, 5), "004_f0aa982511d8ddb1", COUNTER_TERRORISM)
    assert rank is not None and rank <= 5
    # BM25 has no term of the question in that Traditional Chinese passage
    lexical = bm25_retriever(corpus_index, settings)
    assert _rank_of(lexical.search(query, 50), "004_f0aa982511d8ddb1", COUNTER_TERRORISM) is None


def test_simplified_question_finds_an_english_passage_through_its_gloss_words(
    bridge: BridgeRetriever,
) -> None:
    query = analyse("秘书处计划举办什么面向青年学者的论坛？")
    assert query.language == "zh-Hans"
    assert {"scholar", "forum", "youth"} <= set(bridge.terms(query))
    rank = _rank_of(bridge.search(query, 5), "000_8e6ebfa50e614d2c", YOUNG_SCHOLARS)
    assert rank is not None and rank <= 5


@pytest.mark.parametrize(
    ("question", "scripts"),
    [
        ("Where was the first counter-terrorism consultation held?", {"zh-Hant", "zh-Hans"}),
        ("秘书处计划举办什么面向青年学者的论坛？", {"en"}),
        ("事務局は若手研究者のためにどんなフォーラムを開きますか？", {"en"}),
    ],
    ids=["english", "chinese", "japanese"],
)
def test_it_ranks_only_passages_in_the_other_language(
    bridge: BridgeRetriever, question: str, scripts: set[str]
) -> None:
    query = analyse(question)
    hits = bridge.search(query, 20)
    assert hits and {hit.chunk.language for hit in hits} <= scripts
    assert all(bridge.reads(query, hit.chunk) for hit in hits)


def test_korean_questions_are_left_to_the_dense_retrievers(bridge: BridgeRetriever) -> None:
    query = analyse("사무국은 젊은 학자들을 위해 어떤 포럼을 엽니까?")
    assert not bridge.asks(query) and bridge.search(query, 5) == []


def test_bridge_is_registered_and_one_of_the_products_retrievers() -> None:
    assert "bridge" in registered()
    assert "bridge" in Settings().retrievers
