"""Scale: synthetic corpora of N chunks, and what building and searching them costs.

Nothing is downloaded: a synthetic chunk recombines varied sentences of the seed corpus
(``seeds/``), in one language, to the length of a real chunk of that language. The same
seed gives the same texts, and the first N texts of a larger corpus are the corpus of N.
Three studies run on these corpora, each from ``python -m service.lab.scale`` (``__main__``):

- ``run_scale`` (``measure``): build the encoders' vectors, the dense indexes and BM25 for
  each N, then in a fresh process loaded as the server loads them measure seconds, bytes,
  RSS, dense and BM25 search p50/p99 and recall@10 against exact search;
- ``compare_dense`` (``compare``): one corpus's vectors behind each index of
  ``comparison_grid`` (HNSW and IVF-PQ at several parameters): the figures behind the
  defaults in ``service.config``;
- ``serve_scale`` (``serve``): the whole service: the corpus written as documents, a real
  generation built with stand-in encoders, loaded and asked in process and over HTTP.

Encoding is the expensive part: vectors are cached under ``work_dir/vectors``, and above a
limit they are approximated from encoded sentence variants (``vectors``).

The modules, in the order they build on each other:

- ``synthetic``: the seed pool, synthetic chunk texts and held-out queries;
- ``metrics``: bytes on disk, timed searches, exact search and recall@k (fresh processes
  and /proc memory are ``service.lab.processes``, percentiles ``service.lab.stats``);
- ``vectors``: the vector cache and encoder processes, encoder throughput, the bank of
  encoded sentence variants and the approximated vectors;
- ``measure``: ``run_scale``, ``ScaleResult`` and ``DenseFigures``;
- ``compare``: ``compare_dense`` and ``comparison_grid``;
- ``corpus``: ``write_corpus`` and its ``Composition``;
- ``stand_in``: ``StandInEncoder``;
- ``serve``, ``serve_http``, ``serve_report``: ``serve_scale``, its HTTP probe, and the
  markdown of ``serve.md`` (``render`` rewrites it from ``serve.jsonl``);
- ``__main__``: the command line.

Every name other code imports is re-exported here: import from ``service.lab.scale``.
"""

from __future__ import annotations

from typing import Any

from service.lab.scale.compare import compare_dense, comparison_grid
from service.lab.scale.corpus import SERVE_SOURCE, Composition, write_corpus
from service.lab.scale.measure import DenseFigures, ScaleResult, run_scale
from service.lab.scale.metrics import RECALL_K, query_encoder, recall_at_k, recall_per_set
from service.lab.scale.serve import TARGETS, serve_scale
from service.lab.scale.serve_report import serve_markdown
from service.lab.scale.stand_in import StandInEncoder
from service.lab.scale.synthetic import (
    GENERATOR_VERSION,
    SeedPool,
    held_out,
    seed_pool,
    synthetic_queries,
    synthetic_texts,
)
from service.lab.scale.vectors import (
    BANK_VARIANTS,
    approximate_vectors,
    cache_key,
    encode_cached,
    encode_throughput,
    sentence_bank,
)

__all__ = [
    "BANK_VARIANTS",
    "GENERATOR_VERSION",
    "RECALL_K",
    "SERVE_SOURCE",
    "TARGETS",
    "Composition",
    "DenseFigures",
    "ScaleResult",
    "SeedPool",
    "StandInEncoder",
    "approximate_vectors",
    "cache_key",
    "compare_dense",
    "comparison_grid",
    "encode_cached",
    "encode_throughput",
    "held_out",
    "query_encoder",
    "recall_at_k",
    "recall_per_set",
    "run_scale",
    "seed_pool",
    "sentence_bank",
    "serve_markdown",
    "serve_scale",
    "synthetic_queries",
    "synthetic_texts",
    "write_corpus",
]


def __getattr__(name: str) -> Any:
    """``main``, the command line, from ``__main__`` (imported only when asked for)."""
    if name == "main":
        from service.lab.scale.__main__ import main

        return main
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
