"""The dense stores of a generation: where each encoder's chunk vectors are written and
opened, as the settings (``store_kind``) and the manifest say.

- "faiss": ``<encoder>.faiss`` in the generation (``service.store.faiss_store``);
- "milvus-lite": Milvus Lite in ``<generation>/milvus.db``, a collection an encoder named
  for it;
- "milvus-uri": collections ``<prefix>_<generation>_<encoder>`` at CITEQA_MILVUS_URI.

``service.store.milvus`` (and pymilvus) is imported only when a store is in Milvus.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from service.config import Settings
from service.errors import VectorStoreError
from service.index.layout import MILVUS_LITE, config_of, dense_file, store_kind
from service.index.steps import StepObserver
from service.store.base import DenseParams, VectorStore
from service.store.faiss_store import DenseIndex

__all__ = [
    "check_store_supports",
    "close_store",
    "dense_specs",
    "drop_stale_collections",
    "open_store",
    "write_store",
]

_log = logging.getLogger(__name__)


def dense_specs(params: DenseParams, chunks: int, dims: dict[str, int]) -> dict[str, Any]:
    """The dense index kinds and parameters ``params`` choose for ``chunks`` chunks, by
    encoder name (``dims``: the encoders' dimensions); the manifest records them as
    ``dense_index`` and loading applies them."""
    return {name: params.spec_for(chunks, dim) for name, dim in dims.items()}


def _dense_spec(manifest: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The recorded spec of one dense index (None: built before specs were recorded: exact)."""
    spec: dict[str, Any] | None = manifest.get("dense_index", {}).get(name)
    return spec


def check_store_supports(settings: Settings, params: DenseParams, chunks: int) -> None:
    """Refuse an index kind the configured store cannot build (Milvus Lite has no IVF-PQ)."""
    approximate = chunks >= params.ann_threshold
    if approximate and params.ann_kind == "ivfpq" and settings.milvus_lite():
        raise VectorStoreError(
            f"Milvus Lite has no IVF_PQ index, which the settings choose from "
            f"{params.ann_threshold} chunks ({chunks} here); use CITEQA_DENSE_ANN_KIND=hnsw, "
            "or a Milvus server (CITEQA_MILVUS_URI=http://host:19530)."
        )


def _milvus_place(
    settings: Settings, kind: str, directory: Path, generation: str, name: str
) -> tuple[str, str]:
    """(uri, collection) of dense store ``name`` of ``generation``, a ``kind`` store
    (``store_kind``) whose files are in ``directory`` (the .building-* one while built)."""
    from service.store.milvus import collection_name

    if kind == "milvus-lite":
        return str(directory / MILVUS_LITE), name
    if not settings.milvus_uri:
        raise VectorStoreError(
            f"the dense vectors of {generation} are in Milvus collections at a URI, and "
            "CITEQA_MILVUS_URI is not set; set it (and CITEQA_MILVUS_TOKEN) to that Milvus."
        )
    return settings.milvus_uri, collection_name(generation, name, settings.milvus_prefix)


def _milvus_token(settings: Settings) -> str:
    return settings.milvus_token.get_secret_value() if settings.milvus_token else ""


def write_store(
    settings: Settings,
    params: DenseParams,
    name: str,
    vectors: np.ndarray,
    work: Path,
    generation: str,
    steps: StepObserver,
) -> dict[str, Any]:
    """Write dense store ``name`` of the generation being built in ``work``; its spec.
    Building the index is step "dense index build" (writing the FAISS file is not). A
    Milvus store is closed at once: Milvus Lite's files are checksummed and renamed next."""
    kind = store_kind(settings)
    if kind == "faiss":
        with steps.step("dense index build"):
            index = DenseIndex.build(vectors, params=params)
        index.save(work / dense_file(name))
        return index.spec
    from service.store.milvus import MilvusStore

    uri, collection = _milvus_place(settings, kind, work, generation, name)
    with steps.step("dense index build"):
        store = MilvusStore.build(
            vectors,
            uri=uri,
            collection=collection,
            token=_milvus_token(settings),
            params=params,
            timeout=settings.milvus_timeout_seconds,
        )
    store.close()
    return store.spec


def open_store(
    settings: Settings, generation: Path, manifest: dict[str, Any], name: str, *, mmap: bool = True
) -> VectorStore:
    """Dense store ``name`` of a generation, where its manifest says it is. A Milvus store
    lets go of its connection (and of Milvus Lite's lock) when closed or collected."""
    spec = _dense_spec(manifest, name)
    kind = config_of(manifest).get("dense_store", "faiss")
    if kind == "faiss":
        return DenseIndex.load(generation / dense_file(name), spec, mmap=mmap)
    from service.store.milvus import MilvusStore

    uri, collection = _milvus_place(settings, kind, generation, generation.name, name)
    return MilvusStore.open(
        uri=uri,
        collection=collection,
        token=_milvus_token(settings),
        spec=spec,
        timeout=settings.milvus_timeout_seconds,
    )


def close_store(store: VectorStore) -> None:
    """Let go of a store that holds a connection (Milvus); a FAISS index has nothing to close."""
    close = getattr(store, "close", None)
    if callable(close):
        close()


def drop_stale_collections(settings: Settings) -> None:
    """At CITEQA_MILVUS_URI, drop this deployment's collections whose generation is gone
    (removed by ``publish``, or a build that died). A failure only logs: the new
    generation is published, and the next build tries again."""
    from service.store.milvus import collection_name
    from service.store.milvus import drop_stale_collections as drop_stale

    keep = [
        collection_name(generation.name, name, settings.milvus_prefix)
        for generation in settings.index_dir.glob("gen-*")
        for name in settings.encoder_models()
    ]
    try:
        dropped = drop_stale(
            uri=settings.milvus_uri,
            keep=keep,
            prefix=settings.milvus_prefix,
            token=_milvus_token(settings),
            timeout=settings.milvus_timeout_seconds,
        )
    except VectorStoreError as error:
        _log.warning("old Milvus collections stay: %s", error)
        return
    if dropped:
        _log.info("dropped Milvus collections %s", ", ".join(dropped))
