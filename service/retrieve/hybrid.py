"""The hybrid: the configured retrievers over one chunk table, fused into a single ranking.

Every retriever keeps the contract of ``service.retrieve.base.Retriever``,
``search(query: Query, k) -> list[Hit]``, and comes from the registry by name
(``Settings.retrievers``; the defaults are ``dense``, ``multilingual`` and ``bm25``).
``HybridRetriever`` asks each for ``depth`` hits and fuses them
(``service.retrieve.fusion``). With the default ``fitted`` fusion (and the other competent
ones) a retriever only votes on passages it can read for this query: the English encoder
on English passages of an English question, BM25 on passages that share a script with the
question, the multilingual encoder on everything; the fitted fusion weighs each retriever
by the question's group, as ``service/tuned.json`` says.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, MutableMapping

from service.config import Settings
from service.index import CorpusIndex
from service.records import Hit, Query
from service.retrieve.base import Retriever
from service.retrieve.fusion import COMPETENT, FusionName, fuse
from service.retrieve.registry import build_retrievers
from service.tuned import FusionTuning, query_group

__all__ = ["HybridRetriever"]


class HybridRetriever:
    """Fuses the rankings of several retrievers."""

    def __init__(
        self,
        retrievers: Mapping[str, Retriever],
        *,
        fusion: FusionName = "competent_zscore",
        rrf_k: int = 60,
        depth: int = 50,
        tuning: FusionTuning | None = None,
    ) -> None:
        """Args:
        retrievers: by name, in the order their runs are fused.
        fusion: how the runs become one ranking (``service.retrieve.fusion``).
        rrf_k: the constant of the RRF methods.
        depth: hits taken from each retriever.
        tuning: the fitted fusion's weights (``service.tuned``; needed by ``fitted``).
        """
        if fusion == "fitted" and tuning is None:
            raise ValueError("the fitted fusion needs its tuning (service/tuned.json)")
        self.retrievers = dict(retrievers)
        self.fusion: FusionName = fusion
        self.rrf_k = rrf_k
        self.depth = depth
        self.tuning = tuning

    @classmethod
    def from_index(
        cls, index: CorpusIndex, settings: Settings, tuning: FusionTuning | None = None
    ) -> HybridRetriever:
        """The configured retrievers over ``index``, fused as the settings say."""
        return cls(
            build_retrievers(index, settings),
            fusion=settings.fusion,
            rrf_k=settings.rrf_k,
            depth=settings.retriever_depth,
            tuning=tuning,
        )

    def with_tuning(self, tuning: FusionTuning) -> HybridRetriever:
        """The same retrievers fused with other fitted weights (for the fitting command)."""
        return HybridRetriever(
            self.retrievers, fusion="fitted", rrf_k=self.rrf_k, depth=self.depth, tuning=tuning
        )

    @property
    def competent(self) -> bool:
        """Whether retrievers only vote on what they can read (and are only asked then)."""
        return self.fusion in COMPETENT

    def asked(self, query: Query) -> list[Retriever]:
        """The retrievers that run for ``query``: with a competent fusion, a retriever that
        cannot read the query's languages is not asked (the English encoder has no say on a
        Chinese question)."""
        return [r for r in self.retrievers.values() if not self.competent or r.asks(query)]

    def encoders_for(self, query: Query) -> list[str]:
        """The query vectors the asked retrievers read, in order."""
        return list(dict.fromkeys(r.encoder for r in self.asked(query) if r.encoder))

    def runs(
        self, query: Query, timings: MutableMapping[str, float] | None = None
    ) -> dict[str, list[Hit]]:
        """Each retriever's own ranking, ``depth`` deep (empty for one not asked);
        ``timings`` gets each search in milliseconds as ``search_<name>``."""
        timings = {} if timings is None else timings
        asked = {r.name for r in self.asked(query)}
        runs: dict[str, list[Hit]] = {}
        for name, retriever in self.retrievers.items():
            if name not in asked:
                runs[name] = []
                continue
            started = time.perf_counter()
            runs[name] = retriever.search(query, self.depth)
            timings[f"search_{name}"] = (time.perf_counter() - started) * 1000
        return runs

    def search(self, query: Query, k: int) -> list[Hit]:
        """The fused top ``k`` passages for ``query`` (encoded for ``encoders_for``)."""
        return self.fuse(query, self.runs(query), k)

    def fuse(self, query: Query, runs: Mapping[str, list[Hit]], k: int) -> list[Hit]:
        """Fuse already computed rankings (lets callers time retrieval and fusion apart)."""
        by_id = {hit.chunk.chunk_id: hit.chunk for hits in runs.values() for hit in hits}
        ranks: dict[str, dict[str, int]] = {}
        for name, hits in runs.items():
            for hit in hits:
                ranks.setdefault(hit.chunk.chunk_id, {})[name] = hit.rank
        scored = {
            name: [(hit.chunk.chunk_id, hit.score) for hit in hits] for name, hits in runs.items()
        }

        def can_read(name: str, chunk_id: str) -> bool:
            return self.retrievers[name].reads(query, by_id[chunk_id])

        fitted = None
        if self.tuning is not None:
            group = query_group(query.language)
            protected = [
                name
                for name, hits in runs.items()
                if hits and self.tuning.protects(group, query_group(hits[0].chunk.language), name)
            ]
            fitted = (self.tuning.weights_for(group), protected, self.tuning.keep_within)
        fused = fuse(self.fusion, scored, can_read, rrf_k=self.rrf_k, k=k, fitted=fitted)
        return [
            Hit(chunk=by_id[item], score=score, rank=rank, ranks=ranks[item])
            for rank, (item, score) in enumerate(fused, start=1)
        ]
