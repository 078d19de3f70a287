"""The hybrid over retrievers it is handed, and the registry: pure logic, no models."""

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest

from service.config import Settings
from service.encode.query import analyse
from service.records import Chunk, Hit, Query
from service.retrieve.hybrid import HybridRetriever
from service.retrieve.registry import build_retrievers, registered

CHUNKS = [
    Chunk(f"c{i}", "doc", i * 10, i * 10 + 5, "text", "en" if i < 3 else "zh-Hans")
    for i in range(6)
]


@dataclass(frozen=True)
class _Fake:
    """Ranks the given rows; reads only ``languages`` (None: all)."""

    name: str
    rows: tuple[int, ...]
    languages: frozenset[str] | None = None
    encoder: str | None = None

    def asks(self, query: Query) -> bool:
        return self.languages is None or bool(query.languages & self.languages)

    def reads(self, query: Query, chunk: Chunk) -> bool:
        return self.languages is None or chunk.language in self.languages

    def search(self, query: Query, k: int) -> list[Hit]:
        return [
            Hit(CHUNKS[row], score=1.0 / rank, rank=rank, ranks={self.name: rank})
            for rank, row in enumerate(self.rows[:k], start=1)
        ]


def _hybrid(fusion: Any = "competent_zscore") -> HybridRetriever:
    english = _Fake("english", (0, 1, 2), frozenset({"en"}), encoder="english")
    everything = _Fake("everything", (4, 0, 3, 1), encoder="everything")
    words = _Fake("words", (2, 0))
    return HybridRetriever({r.name: r for r in (english, everything, words)}, fusion=fusion)


def test_a_retriever_that_cannot_read_the_query_is_not_asked_nor_encoded_for() -> None:
    hybrid = _hybrid()
    chinese = analyse("地震科技合作")
    assert hybrid.encoders_for(chinese) == ["everything"]
    runs = hybrid.runs(chinese)
    assert runs["english"] == [] and runs["everything"] and runs["words"]
    assert hybrid.encoders_for(analyse("earthquake cooperation")) == ["english", "everything"]


def test_without_a_competent_fusion_every_retriever_is_asked() -> None:
    hybrid = _hybrid("rrf")
    assert hybrid.encoders_for(analyse("地震科技合作")) == ["english", "everything"]
    assert hybrid.runs(analyse("地震科技合作"))["english"]


def test_fused_hits_keep_each_retrievers_rank() -> None:
    hybrid = _hybrid()
    hits = hybrid.search(analyse("earthquake cooperation"), 4)
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    first = next(h for h in hits if h.chunk.chunk_id == "c0")
    assert dict(first.ranks) == {"english": 1, "everything": 2, "words": 2}


def test_an_unknown_fusion_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match="competent_zscore"):
        _hybrid("best").search(analyse("earthquake"), 3)


def test_the_registry_builds_what_the_settings_name() -> None:
    assert {"dense", "multilingual", "bm25"} <= set(registered())
    index = SimpleNamespace(lexical=None, chunks=CHUNKS, stores={"dense": None})
    only = build_retrievers(index, Settings(retrievers=("bm25", "dense")))  # type: ignore[arg-type]
    assert list(only) == ["bm25", "dense"]
    assert only["dense"].encoder == "dense" and only["bm25"].encoder is None


def test_an_unknown_retriever_is_refused_with_the_registered_ones() -> None:
    index = SimpleNamespace(lexical=None, chunks=CHUNKS, stores={})
    with pytest.raises(ValueError, match="use some of dense, multilingual, e5, bm25"):
        build_retrievers(index, Settings(retrievers=("dense", "sparse")))  # type: ignore[arg-type]
