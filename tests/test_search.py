"""Search quality on the seeds, through the real models and the real index."""

import functools
import itertools
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from service.encode.query import QueryEncoder, _Batcher, _encode_pool, analyse
from service.engine import Engine
from service.index import CorpusIndex
from service.records import Hit, Query
from service.retrieve.hybrid import HybridRetriever

EARTHQUAKE_AGENCIES = "中國地震局、日本氣象廳和韓國氣象廳"


@pytest.fixture(scope="module")
def ask(engine: Engine) -> Callable[..., Query]:
    """A question's Query record, encoded as the engine encodes it for retrieval."""
    return functools.partial(engine.query, reader=False)


def _rank_of(hits: list[Hit], doc_id: str, phrase: str) -> int | None:
    for hit in hits:
        if hit.chunk.doc_id == doc_id and phrase in hit.chunk.text:
            return hit.rank
    return None


@pytest.mark.parametrize(
    "query",
    [
        "中日韩地震减灾三边会议由哪些机构举行？",
        "Which agencies held the trilateral meetings on earthquake disaster reduction?",
    ],
    ids=["simplified-over-traditional", "english-over-traditional"],
)
def test_earthquake_agencies_passage_in_top_5(
    retriever: HybridRetriever, ask: Callable[..., Query], query: str
) -> None:
    hits = retriever.search(ask(query), 5)
    rank = _rank_of(hits, "004_f0aa982511d8ddb1", EARTHQUAKE_AGENCIES)
    assert rank is not None and rank <= 5, [h.chunk.text[:40] for h in hits]


def test_near_forum_organizer_is_first(
    retriever: HybridRetriever, ask: Callable[..., Query]
) -> None:
    hits = retriever.search(ask("Who organized the NEAR International Forum 2023?"), 5)
    assert hits[0].chunk.doc_id == "003_94041ec9e2685c6c"
    assert "Gyeongsangbuk-do" in hits[0].chunk.text


def test_english_question_finds_chinese_only_answer(
    retriever: HybridRetriever, ask: Callable[..., Query]
) -> None:
    question = "Which kinds of economy will the secretariat focus on to stabilize supply chains?"
    hits = retriever.search(ask(question), 5)
    assert _rank_of(hits, "000_8e6ebfa50e614d2c", "数字经济与绿色经济") is not None


def test_fusion_keeps_what_the_multilingual_retriever_finds(
    retriever: HybridRetriever, ask: Callable[..., Query]
) -> None:
    """A cross-lingual first place must survive fusion (min-max blending loses it)."""
    query = ask("Which agencies held the trilateral meetings on earthquake disaster reduction?")
    runs = retriever.runs(query)
    top_multilingual = runs["multilingual"][0].chunk.chunk_id
    fused = retriever.fuse(query, runs, 5)
    assert top_multilingual in [hit.chunk.chunk_id for hit in fused]


def test_hits_are_ranked_and_scored(retriever: HybridRetriever, ask: Callable[..., Query]) -> None:
    hits = retriever.search(ask("trilateral summit Seoul"), 8)
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    assert all(a.score >= b.score for a, b in itertools.pairwise(hits))
    assert len({h.chunk.chunk_id for h in hits}) == len(hits)
    for hit in hits:
        assert hit.ranks and all(r >= 1 for r in hit.ranks.values())


def test_only_retrievers_that_read_chinese_judge_it_for_an_english_query(
    retriever: HybridRetriever, ask: Callable[..., Query]
) -> None:
    query = ask("earthquake cooperation between the three weather agencies")
    runs = retriever.runs(query)
    chinese = [hit for hit in retriever.fuse(query, runs, 10) if hit.chunk.language != "en"]
    assert chinese
    for hit in chinese:  # the English encoder and English BM25 terms have no say on it
        judges = {n for n, r in retriever.retrievers.items() if r.reads(query, hit.chunk)}
        assert judges and not judges & {"dense", "bm25"}
        assert judges <= {"multilingual", "e5", "bridge"}


def test_chinese_query_ranks_chinese_first(
    retriever: HybridRetriever, ask: Callable[..., Query]
) -> None:
    assert retriever.search(ask("地震科技合作"), 5)[0].chunk.language == "zh-Hant"


def test_a_chinese_query_does_not_ask_the_english_encoder(
    retriever: HybridRetriever, ask: Callable[..., Query]
) -> None:
    timings: dict[str, float] = {}
    runs = retriever.runs(ask("地震科技合作", timings), timings)
    assert runs["dense"] == [] and runs["multilingual"] and runs["bm25"]
    assert "encode_dense" not in timings and "encode_multilingual" in timings
    english: dict[str, float] = {}
    assert retriever.runs(ask("earthquake cooperation", english), english)["dense"]
    assert {"encode_dense", "search_dense", "search_bm25"} <= english.keys()


def test_concurrent_questions_share_a_use_batch_with_the_same_vectors(
    corpus_index: CorpusIndex,
) -> None:
    encoder = corpus_index.encoders["multilingual"]
    query_encoder = QueryEncoder({"multilingual": encoder})
    questions = [f"Which agencies met in round {i} of the trilateral talks?" for i in range(24)]

    def encoded(question: str) -> np.ndarray:
        return query_encoder.encode(analyse(question), ["multilingual"]).vector("multilingual")

    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(encoded, questions))
    for question, vector in zip(questions, together, strict=True):
        alone = encoder.encode([question])[0]
        assert np.abs(vector - alone).max() < 1e-5  # batching changes no vector
        assert not vector.flags.writeable  # shared through the cache


class _Broken:
    """An encoder that fails: every question of its batch must see the failure."""

    name, dim = "broken", 2

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        time.sleep(0.01)  # long enough for the other threads to queue behind it
        raise ValueError(f"cannot encode {len(texts)} texts")


def test_a_failed_batch_fails_every_question_in_it() -> None:
    batcher = _Batcher(_Broken())
    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(batcher.encode, f"question {i}") for i in range(6)]
    for future in futures:
        with pytest.raises(ValueError, match="cannot encode"):
            future.result()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_the_encode_thread_works_in_a_forked_child() -> None:
    """A child forked after the parent used the encode thread gets a thread of its own
    (the parent's does not exist there, and work sent to it would never run)."""
    assert _encode_pool().submit(lambda: 1).result(timeout=10) == 1
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child: answer through the pipe, then leave without cleanup
        code = 1
        try:
            value = _encode_pool().submit(lambda: 42).result(timeout=10)
            os.write(write, str(value).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    _, status = os.waitpid(child, 0)
    answer = os.read(read, 16)
    os.close(read)
    assert os.waitstatus_to_exitcode(status) == 0 and answer == b"42"
