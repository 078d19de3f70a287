import numpy as np
import pytest

from service.index import CorpusIndex
from service.store.bm25 import LexicalIndex, top_k
from service.text.tokenize import tokenize


def test_chinese_becomes_bigrams_and_jieba_words_not_single_characters() -> None:
    assert tokenize("地震减灾") == ["地震", "震减", "减灾"]
    terms = tokenize("中日韩首次反恐磋商在韩国济州岛举行")
    assert {"中日韩", "济州岛"} <= set(terms)  # jieba's words of three characters or more
    assert {"反恐", "磋商", "恐磋"} <= set(terms)  # every bigram, across words too
    assert not [term for term in terms if len(term) == 1]


def test_traditional_and_simplified_share_tokens() -> None:
    assert tokenize("韓國氣象廳") == tokenize("韩国气象厅")
    assert tokenize("裡") == tokenize("里")


def test_english_is_stemmed_cased_and_stopped() -> None:
    assert tokenize("The Agencies HELD meetings") == ["agenc", "hold", "meet"]
    assert tokenize("took place") == tokenize("take place")
    assert tokenize("agency") == tokenize("agencies")
    assert "the" not in tokenize("The forum")


def test_numbers_keep_their_decimals_and_drop_thousands_commas() -> None:
    assert tokenize("1.5 billion and 2,000 people") == ["1.5", "billion", "2000", "peopl"]


def test_mixed_script_text() -> None:
    assert tokenize("NEAR论坛") == ["near", "论坛"]


def test_bm25_finds_traditional_text_from_a_simplified_query() -> None:
    texts = [
        "中國地震局、日本氣象廳和韓國氣象廳舉行了地震減災三邊會議",
        "三國在經貿投資、財政金融等領域不斷深化互利合作",
        "The NEAR forum took place in Gyeongju-si.",
    ]
    index = LexicalIndex.build(texts)
    assert index.search("韩国气象厅", 3)[0][0] == 0
    assert index.search("Gyeongju forum", 3)[0][0] == 2
    assert index.search("nothing matches this", 3) == []


def _brute_top_k(scores: np.ndarray, k: int) -> list[int]:
    rows = sorted(range(len(scores)), key=lambda r: (-scores[r], r))
    return [r for r in rows[:k] if scores[r] > 0]


@pytest.mark.parametrize("n", [0, 7, 5_000, 60_000, 300_000])
@pytest.mark.parametrize("k", [1, 10, 50])
def test_top_k_is_exact_with_zeros_and_ties(n: int, k: int) -> None:
    """The block-maxima shortcut returns what sorting every score returns: the k highest
    positive scores, ties by row, whether most scores are zero or most are not."""
    rng = np.random.default_rng(n + k)
    for density in (0.001, 0.5, 1.0):
        scores = rng.integers(0, 40, n).astype(np.float32)  # few values: many ties
        scores[rng.random(n) > density] = 0
        assert top_k(scores, k).tolist() == _brute_top_k(scores, k)


# ----------------------------------------------------------------------- names and stop words


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("WHO", ["who"]),  # an acronym in capitals
        ("who", []),
        ("Who", []),  # capitalised only because a sentence begins
        ("What did IT say?", ["it", "say"]),
        ("They met in The Hague.", ["meet", "the", "hagu"]),  # capitalised inside a sentence
        ("The Hague.", ["hagu"]),
        ("It rained. The forum met", ["rain", "forum", "meet"]),
    ],
    ids=["acronym", "lower", "sentence-start", "caps-in-question", "inside", "start", "after-stop"],
)
def test_a_name_is_never_a_stop_word(text: str, expected: list[str]) -> None:
    assert tokenize(text) == expected


def test_the_casing_of_the_question_decides_not_a_list_of_names() -> None:
    index = LexicalIndex.build(
        ["The office of the WHO in Seoul.", "Who knows who came first?", "The office."]
    )
    assert index.search("WHO office", 3)[0][0] == 0
    assert index.search("who", 3) == []  # the pronoun is still a stop word


# ------------------------------------------------------------------------- Chinese terms


def test_single_cjk_characters_are_not_query_terms() -> None:
    index = LexicalIndex.build(["的的的国国", "中国的经济", "The economy of China"])
    assert tokenize("的") == [] and tokenize("国") == []
    assert index.search("的", 3) == [] and not index.knows("的")
    assert [row for row, _ in index.search("中国", 3)] == [1]


def test_a_jieba_word_outweighs_its_bigrams_scattered_across_a_passage() -> None:
    """中日韩 in one passage beats 中日 and 日韩 apart in another: the word is a term."""
    index = LexicalIndex.build(["中日关系与日韩关系", "中日韩合作秘书处"])
    assert "中日韩" in tokenize("中日韩合作秘书处")
    assert index.search("中日韩", 2)[0][0] == 1


def test_japanese_kanji_meet_the_chinese_forms() -> None:
    """気象庁 (Japanese) is 氣象廳 (Traditional) and 气象厅 (Simplified)."""
    japanese = tokenize("気象庁の発表")
    assert "气象厅" in japanese and "气象" in japanese
    index = LexicalIndex.build(["日本氣象廳發布地震信息", "动物园的大象表演"])
    assert index.search("気象庁は何を発表しましたか", 2)[0][0] == 0


def test_kanji_alone_are_not_folded_as_japanese() -> None:
    """Only text with kana is Japanese: 芸 is 藝 in Japanese but its own character in
    Chinese."""
    assert tokenize("芸香") == ["芸香"]


# ------------------------------------------------------------------------- weighted search


def test_weighted_search_scores_a_weighted_sum_of_bm25_terms() -> None:
    index = LexicalIndex.build(["磋商 会议", "会议 会议 举行", "反恐 磋商"])
    single = dict(index.search_terms({"磋商": 1.0}, 3))
    doubled = dict(index.search_terms({"磋商": 2.0}, 3))
    assert doubled == pytest.approx({row: 2 * score for row, score in single.items()})
    both = dict(index.search_terms({"磋商": 1.0, "反恐": 0.5}, 3))
    alone = dict(index.search_terms({"反恐": 1.0}, 3))
    assert both[2] == pytest.approx(single[2] + 0.5 * alone[2])


def test_weighted_search_returns_only_the_rows_asked_for() -> None:
    index = LexicalIndex.build(["forum one", "forum two", "forum three"])
    rows = np.array([False, True, True])
    assert {row for row, _ in index.search_terms({"forum": 1.0}, 3, rows)} == {1, 2}


def test_search_counts_a_repeated_term_as_bm25s_does() -> None:
    texts = ["地震减灾会议", "The NEAR forum took place in Gyeongju-si.", "地震 地震 forum"]
    index = LexicalIndex.build(texts)
    query = "地震 forum 地震"
    terms = [term for term in tokenize(query) if index.knows(term)]
    expected = index._model.get_scores(terms)
    for row, score in index.search(query, 3):
        assert score == pytest.approx(float(expected[row]), rel=1e-6)


# ------------------------------------------------------------------------- on the seeds


def test_near_as_a_query_ranks_the_near_forum_passages(corpus_index: CorpusIndex) -> None:
    """003 says NEAR (the Association of North East Asia Regional Governments) nine times;
    BM25 ranks its passages first for the acronym alone."""
    hits = corpus_index.lexical.search("NEAR", 3)
    assert len(hits) == 3
    assert {corpus_index.chunks[row].doc_id for row, _ in hits} == {"003_94041ec9e2685c6c"}
