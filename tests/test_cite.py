"""Citation retrieval: a quote traced to its exact source span, and what it changed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.cite.differences import differences, unstated_values
from service.cite.matcher import copies_to_read, in_passages
from service.cite.normalise import normalise
from service.cli import main
from service.config import Settings
from service.index import CorpusIndex
from service.lab.quotes import Quote, quote_metrics, trace_quotes
from service.server.app import create_app
from service.store.bm25 import LexicalIndex

SEOUL = "In September 2011, the China-Japan-Korea Cooperation Secretariat was officially established in Seoul, South Korea."  # noqa: E501
DOC = "000_8e6ebfa50e614d2c"


def test_the_folding_keeps_offsets_into_the_original() -> None:
    text = "  中日韓  “合作”—秘書處 "
    folded = normalise(text)
    assert folded.text == '中日韩"合作"-秘书处'  # no space in Chinese text or by punctuation
    start, end = folded.span(folded.text.index("合作"), folded.text.index("合作") + 2)
    assert text[start:end] == "合作"


@pytest.fixture(scope="module")
def client(settings: Settings, corpus_index: CorpusIndex) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def _cite(client: TestClient, quote: str, **fields: Any) -> dict[str, Any]:
    response = client.post("/cite", json={"quote": quote, **fields})
    assert response.status_code == 200, response.text
    return response.json()


def _text(client: TestClient, doc_id: str) -> str:
    return client.get(f"/documents/{doc_id}").json()["text"]


def test_an_exact_quote_is_found_with_its_offsets(client: TestClient) -> None:
    body = _cite(client, SEOUL)
    best = body["matches"][0]
    assert body["match"] == best["match"] == "exact" and best["doc_id"] == DOC
    assert _text(client, DOC)[best["char_start"] : best["char_end"]] == SEOUL == best["source_text"]
    assert best["similarity"] == 1.0 and best["differences"] == []


def test_a_requoted_or_other_script_quote_is_normalised(client: TestClient) -> None:
    quote = SEOUL.replace(",", " ,").replace("Japan-Korea", "Japan–Korea").upper()
    body = _cite(client, quote)
    best = body["matches"][0]
    assert best["match"] == "normalised", body["matches"]
    assert _text(client, DOC)[best["char_start"] : best["char_end"]] == SEOUL
    hans = _cite(client, "由三国核安全监管当局轮流举办")["matches"][0]  # the source is 繁體
    assert hans["match"] == "normalised"
    assert hans["source_text"] == "由三國核安全監管當局輪流舉辦"


def test_a_changed_number_is_a_near_match_that_names_the_change(client: TestClient) -> None:
    best = _cite(client, SEOUL.replace("2011", "2013"))["matches"][0]
    assert best["match"] == "near" and best["doc_id"] == DOC
    (change,) = best["differences"]  # the whole date, as a reader names it
    expected = ("September 2013", "September 2011", "date")
    assert (change["quote_text"], change["source_text"], change["type"]) == expected
    text = _text(client, DOC)
    assert text[change["source_start"] : change["source_end"]] == "September 2011"


@pytest.mark.parametrize(
    ("source", "quote", "expected"),
    [  # a change is named by its whole word and its whole value, not the edited characters
        ("逐步增進國民感情,鞏固", "逐步增進民眾感情,鞏固", ("民眾", "國民", None)),
        ("磋商有助于加強三方", "磋商無助于加強三方", ("無助于", "有助于", "negation")),
        ("more than 70 working", "fewer than 70 working",
         ("fewer than 70", "more than 70", "qualifier")),
        ("discussions ensued, featuring", "discussions took place, featuring",
         ("took place", "ensued", None)),
        ("on May 27, leaders", "on May 28, leaders", ("May 28", "May 27", "date")),
    ],
)  # fmt: skip
def test_differences_are_whole_words_and_values(
    source: str, quote: str, expected: tuple[str, str, str | None]
) -> None:
    padded = "x " + source
    (change,) = differences(quote, padded, 2, len(padded), 100)
    assert (change.quote_text, change.source_text, change.type) == expected
    assert quote[change.quote_start : change.quote_end] == change.quote_text
    assert padded[change.source_start - 100 : change.source_end - 100] == change.source_text


def test_a_quote_found_nowhere_matches_nothing(client: TestClient) -> None:
    body = _cite(client, "The Great Barrier Reef lies off the coast of Queensland, Australia.")
    assert body["match"] == "none" and body["matches"] == []


@pytest.mark.parametrize(
    ("quote", "field"), [("   ", "quote"), ("x" * 2001, "quote"), ("……!!", "quote")]
)
def test_bad_quotes_are_refused_naming_the_field(
    client: TestClient, quote: str, field: str
) -> None:
    response = client.post("/cite", json={"quote": quote})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == field


def test_the_cli_traces_a_file_of_quotes(
    settings: Settings,
    corpus_index: CorpusIndex,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    quotes = tmp_path / "quotes.txt"
    quotes.write_text(f"{SEOUL}\nThe Great Barrier Reef lies off Queensland.\n", encoding="utf-8")
    args = ["--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir)]
    assert main(["cite", "--file", str(quotes), *args, "--quiet"]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [row[1] for row in rows[1:]] == ["exact", "none"]


def test_the_quote_figures_count_spans_kinds_and_changes() -> None:
    quotes = [
        Quote("a", "test", "altered", "q", "d", 10, 20, ("2013",)),
        Quote("b", "test", "absent", "q", None, None, None, ()),
    ]
    bodies = iter([
        {"matches": [{"doc_id": "d", "char_start": 10, "char_end": 20, "match": "near",
                      "differences": [{"quote_text": "2013", "source_text": "2011"}]}]},
        {"matches": [{"doc_id": "d", "char_start": 0, "char_end": 5, "match": "near",
                      "differences": []}]},
    ])  # fmt: skip
    figures = quote_metrics(trace_quotes(lambda _: next(bodies), quotes))["by_split"]["test"]
    assert figures["span_accuracy"] == 0.5 and figures["changed_recall"] == 1.0
    assert figures["false_matches_on_absent"] == 1


def test_a_korean_quote_of_english_text_is_a_translation(client: TestClient) -> None:
    best = _cite(client, "한중일 협력사무국은 2011년 9월 서울에서 공식 출범했다.")["matches"][0]
    assert best["match"] == "translated" and best["source_text"] == SEOUL


def test_a_translation_that_changes_a_year_lists_it(client: TestClient) -> None:
    best = _cite(client, "2013年9月,中日韩合作秘书处在韩国首尔正式成立。")["matches"][0]
    assert best["match"] == "translated" and best["source_text"] == SEOUL
    (change,) = best["differences"]  # 9 (the month) is stated; 2013 is not
    assert (change["quote_text"], change["source_text"], change["type"]) == ("2013", "2011", "date")
    assert _text(client, DOC)[change["source_start"] : change["source_end"]] == "2011"


def test_digit_numbers_must_survive_a_translation() -> None:
    sentence = "三國于2008年啟動中日韓核安全監管高官會機制,每年舉行一次會議。"
    quote = "In 2008 the three countries launched the meeting, held once a year."
    assert unstated_values(quote, sentence, 0) == ([], 1)  # "three", "once": words, not compared
    (missing,), written = unstated_values(quote.replace("2008", "2009"), sentence, 50)
    assert written == 1 and (missing.quote_text, missing.source_text) == ("2009", "2008")
    assert sentence[missing.source_start - 50 : missing.source_end - 50] == "2008"
    assert unstated_values("forty-one goals, 41 in all", "完成了四十一项具体目标", 0) == ([], 1)


def test_a_verbatim_quote_is_found_among_many_copies_of_its_sentence() -> None:
    # 300 short copies of one sentence, each with its own count and country number; the
    # quote's own passage is long, so BM25 (which discounts long passages) ranks it low
    numbers = ("five", "six", "seven", "eight", "nine")
    texts = [
        f"The forum drew {n} delegates from {numbers[n % 5]} countries." for n in range(100, 400)
    ]
    quote = "The forum drew 223 delegates from eight countries."
    texts[123] = quote + " The rest of the report is long." * 60
    lexical = LexicalIndex.build(texts)
    passages = [(str(r), texts[r], 0, len(texts[r])) for r, _ in lexical.search(quote, 5)]
    first = in_passages(quote, passages, 5, 0.8)
    assert first and all(m.match == "near" for m in first)  # only copies in BM25's first five
    assert copies_to_read(lexical, quote, first, 5) == [123]  # the one holding "223"
    assert copies_to_read(lexical, quote, [], 5) == []  # nothing near found: nothing to do
