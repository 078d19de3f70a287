import numpy as np
import pytest

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
