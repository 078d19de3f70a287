"""Milvus: the dense vectors in a Milvus collection, embedded (Milvus Lite) or on a server.

``MilvusStore`` keeps the contract of ``service.store.base.VectorStore`` that the FAISS
``DenseIndex`` keeps: rows are chunk row numbers (the int64 primary key), ``search`` returns
(row, score) pairs best first with inner-product scores (cosine: the vectors are
L2-normalised), ``vectors()`` every vector in row order.

Where the vectors live is the ``uri``:

- a path ending in ``.db``: **Milvus Lite**, embedded. pymilvus starts its gRPC server in
  this process (threads, a free port on 127.0.0.1). For an index generation the path is
  ``<generation>/milvus.db``, holding the collections ``dense`` and ``multilingual``, so a
  generation stays one self-contained directory;
- ``http://host:19530`` or ``https://...`` (with ``token``: ``user:password`` or an API
  key): a **Milvus server or cluster**. The collection name carries the generation's name
  (``collection_name``), and collections of generations no longer kept are dropped with
  ``drop_stale_collections``.

A collection holds ``row`` (INT64, primary key) and ``vector`` (FLOAT_VECTOR), metric IP.
Its index is chosen and configured by the same rule as FAISS (``DenseParams.spec_for``, the
``CITEQA_DENSE_*`` settings): under ``dense_ann_threshold`` vectors ``FLAT`` (exact), from
there ``HNSW`` (``M``, ``efConstruction``; a query keeps ``max(efSearch, k)`` candidates) or
``IVF_PQ`` (servers only: Milvus Lite has no IVF_PQ). The spec is stored as JSON in the
collection property ``citeqa.dense_spec`` (Milvus Lite drops collection descriptions), so
``open`` knows the search parameters without the manifest.

What Milvus Lite (milvus-lite 3.x, pure Python over FAISS and Parquet) means for the index
generations, each point tested in ``tests/test_milvus.py``:

- ``milvus.db`` is a directory (``LOCK``, per collection ``schema.json``,
  ``manifest.json``, Parquet segments and index files), so the generation's manifest
  checksums every file in it like any other (its file table must skip only its own
  top-level ``manifest.json``, not Milvus Lite's);
- opening, loading, searching, reading the vectors and closing change no file (size,
  sha256 and mtime alike; a process killed while holding it changes none either). Building
  writes, so a build must ``close()`` the store before the files are checksummed or the
  directory renamed: closing drains Milvus Lite's background compaction and index builds
  and deletes its empty write-ahead log. Paths inside are relative: a closed directory may
  be renamed (``.building-*`` to ``gen-*``) or copied;
- one process at a time: Milvus Lite takes an exclusive ``flock`` on ``milvus.db/LOCK``.
  A second process (a second ``citeqa serve`` worker) gets ``VectorStoreError``, which
  says to run one worker or a Milvus server. Within a process, stores on the same path
  share one embedded server, released when the last of them is closed or collected;
- slow past a small corpus: every search walks every row in Python (deduplicating primary
  keys across segments and checking deletions: ``milvus_lite/search/executor_indexed.py``)
  before the index is asked, so a query over 100,000 vectors took about 120 ms even with
  HNSW, against 1.4 ms for FAISS IVF-PQ (``eval/reports/bench/stores``:
  ``service.lab.stores.compare_stores``, run by ``citeqa bench --scale 100000 --stores faiss
  milvus``). Milvus Lite suits
  development, tests and small corpora; serving a large one from Milvus means a Milvus
  server.
"""

from __future__ import annotations

import fcntl
import json
import re
import threading
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from pymilvus import DataType, MilvusClient
from pymilvus.exceptions import MilvusException

from service.config import is_milvus_lite_uri as is_local
from service.errors import IndexCorruptError, IndexMismatchError, VectorStoreError
from service.store.base import DenseParams

__all__ = [
    "LITE_FILE",
    "MilvusStore",
    "collection_name",
    "drop_stale_collections",
    "is_local",
    "milvus_index_type",
]

LITE_FILE = "milvus.db"  # the Milvus Lite data directory inside a generation
# Seconds for connecting and for each call that reads. The calls that write a build
# (insert, flush, index, load) have none: Milvus Lite (pure Python) took 39 s for 100,000
# vectors of 512 dims on 2 shared cores, one 16 MiB insert over 10 s while others ran, and
# its HNSW build 200 s.
DEFAULT_TIMEOUT = 10.0
_ROW = "row"
_VECTOR = "vector"
_METRIC = "IP"
# "ivfflat" is not a kind the settings choose (service.store.base has no such kind):
# ``build(spec=...)`` makes it, to compare Milvus Lite's IVF with FAISS's IVF-PQ
_MILVUS_TYPES = {"flat": "FLAT", "hnsw": "HNSW", "ivfpq": "IVF_PQ", "ivfflat": "IVF_FLAT"}
_SPEC_KEY = "citeqa.dense_spec"  # collection property: the spec, JSON
_MAX_TOPK = 16_384  # Milvus's cap on a search's limit and a query's offset + limit
_MESSAGE_BYTES = 16 << 20  # per insert or query batch; Milvus refuses messages over 64 MiB
_NAME_RE = re.compile(r"[^0-9A-Za-z_]")


def collection_name(generation: str, name: str, prefix: str = "citeqa") -> str:
    """The collection of index ``name`` ("dense", "multilingual") of ``generation``
    ("gen-...") on a Milvus server: ``<prefix>_<generation>_<name>`` with every character
    Milvus does not allow in a name (anything but letters, digits and ``_``) turned into
    ``_``. Deployments sharing a server need distinct prefixes."""
    result = _NAME_RE.sub("_", f"{prefix}_{generation}_{name}")
    if len(result) > 255:
        raise ValueError(f"collection name {result!r} is longer than Milvus's 255 characters")
    return result


# ------------------------------------------------------------------------- connections

# Stores open on each Milvus Lite path in this process: they share one embedded server,
# which is stopped (and its lock released) when the last of them closes.
_local_lock = threading.Lock()
_local_users: dict[str, int] = {}


def _acquire_local(path: str) -> None:
    with _local_lock:
        _local_users[path] = _local_users.get(path, 0) + 1


def _release_local(path: str) -> None:
    from milvus_lite import server_manager_instance

    with _local_lock:
        users = _local_users.get(path, 0) - 1
        if users > 0:
            _local_users[path] = users
            return
        _local_users.pop(path, None)
        server_manager_instance.release_server(path)


def _lite_locked(path: str) -> bool:
    """Whether another process holds the Milvus Lite lock of ``path`` (checked after a
    failed open only: it takes the lock for an instant)."""
    lock = Path(path, "LOCK")
    if not lock.is_file():
        return False
    with lock.open("rb") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


def _describe(uri: str, local: str | None) -> str:
    return f"Milvus Lite data at {local}" if local else f"the Milvus server at {uri}"


def _connect(
    uri: str, token: str, timeout: float, *, must_exist: bool
) -> tuple[MilvusClient, str | None]:
    """A client for ``uri``, and the absolute Milvus Lite path if it is one."""
    local = None
    if is_local(uri):
        if not uri.endswith(".db"):
            raise VectorStoreError(
                f"{uri!r} is neither a Milvus URI (http://host:19530) nor a Milvus Lite path "
                "(ending in .db); fix CITEQA_MILVUS_URI."
            )
        local = str(Path(uri).resolve())
        if must_exist and not Path(local).is_dir():
            raise VectorStoreError(
                f"there is no Milvus Lite data at {local}; the index was built without it or "
                "it was deleted. Rebuild with `citeqa build --force`."
            )
        if not Path(local).parent.is_dir():
            raise VectorStoreError(
                f"the folder {Path(local).parent} for Milvus Lite data does not exist."
            )
        try:
            import milvus_lite  # noqa: F401  (pymilvus needs it for a .db path)
        except ImportError as error:
            raise VectorStoreError(
                "Milvus Lite is not installed; install it with `pip install 'citeqa[milvus]'` "
                "or point CITEQA_MILVUS_URI at a Milvus server."
            ) from error
        _acquire_local(local)
    try:
        client = MilvusClient(uri=local or uri, token=token, timeout=timeout)
    except MilvusException as error:
        if local is not None:
            _release_local(local)
            if _lite_locked(local):
                raise VectorStoreError(
                    f"Milvus Lite data at {local} is open in another process, and Milvus Lite "
                    "lets one process open it at a time. Serve with one worker "
                    "(CITEQA_WORKERS=1), or run a Milvus server and set CITEQA_MILVUS_URI "
                    "to it (http://host:19530)."
                ) from error
            raise VectorStoreError(
                f"could not open Milvus Lite data at {local} ({error.message}). If it timed "
                "out, raise CITEQA_MILVUS_TIMEOUT_SECONDS; else rebuild with "
                "`citeqa build --force`."
            ) from error
        raise VectorStoreError(
            f"cannot reach the Milvus server at {uri} ({error.message}). Start it, or fix "
            "CITEQA_MILVUS_URI (http://host:19530) and CITEQA_MILVUS_TOKEN."
        ) from error
    return client, local


def _close(client: MilvusClient, local: str | None) -> None:
    try:
        client.close()
    finally:
        if local is not None:
            _release_local(local)


@contextmanager
def _calls(uri: str, local: str | None, collection: str, what: str) -> Iterator[None]:
    """Turn a failed Milvus call into a ``VectorStoreError`` that names the place. pymilvus
    raises its own exceptions, but lets some gRPC ones through as they are (a deadline
    exceeded, a connection lost mid-call)."""
    try:
        yield
    except (MilvusException, grpc.RpcError) as error:
        if isinstance(error, MilvusException):
            reason = error.message or type(error).__name__
        else:
            code = error.code() if isinstance(error, grpc.Call) else None
            reason = f"gRPC {code.name if code else type(error).__name__}"
        raise VectorStoreError(
            f"{_describe(uri, local)} failed to {what} collection {collection!r}: {reason}. "
            "Check that the server is up and reachable (CITEQA_MILVUS_URI, "
            "CITEQA_MILVUS_TOKEN, CITEQA_MILVUS_TIMEOUT_SECONDS), or rebuild with "
            "`citeqa build --force`."
        ) from error


# ------------------------------------------------------------------------------ indexes


def _index_params(spec: dict[str, Any], local: bool) -> tuple[str, dict[str, Any]]:
    """The Milvus index type and build parameters of a dense spec."""
    kind = spec["kind"]
    if kind == "flat":
        return "FLAT", {}
    if kind == "hnsw":
        return "HNSW", {"M": int(spec["M"]), "efConstruction": int(spec["efConstruction"])}
    if kind == "ivfpq":
        if local:
            raise VectorStoreError(
                "Milvus Lite has no IVF_PQ index; use CITEQA_DENSE_ANN_KIND=hnsw, or a Milvus "
                "server (CITEQA_MILVUS_URI=http://host:19530)."
            )
        return "IVF_PQ", {
            "nlist": int(spec["nlist"]),
            "m": int(spec["pq_m"]),
            "nbits": int(spec["pq_nbits"]),
        }
    if kind == "ivfflat":
        return "IVF_FLAT", {"nlist": int(spec["nlist"])}
    raise ValueError(f"unknown dense index kind {kind!r}")


def _wire_params(build: dict[str, Any], local: bool) -> dict[str, Any]:
    """The index's build parameters as ``add_index`` sends them. pymilvus 3 sends each
    parameter as its own key, which a Milvus server reads; Milvus Lite (3.2) reads only a
    ``params`` key holding them as JSON and otherwise builds with its defaults (HNSW
    M 16, efConstruction 200; IVF nlist 128), so for Lite they go there as well."""
    return {**build, "params": dict(build)} if local and build else dict(build)


def milvus_index_type(spec: dict[str, Any]) -> str:
    """Milvus's name for the index of a dense spec ("FLAT", "HNSW", "IVF_PQ")."""
    return _MILVUS_TYPES[spec["kind"]]


def _search_params(spec: dict[str, Any], k: int) -> dict[str, Any]:
    if spec["kind"] == "hnsw":
        return {"ef": max(int(spec["efSearch"]), k)}  # Milvus refuses ef < k
    if spec["kind"] in ("ivfpq", "ivfflat"):
        return {"nprobe": int(spec["nprobe"])}
    return {}


def _create(
    client: MilvusClient,
    uri: str,
    local: str | None,
    collection: str,
    spec: dict[str, Any],
    dim: int,
    timeout: float,
) -> None:
    """Create the empty collection of a build, refusing one that exists."""
    with _calls(uri, local, collection, "create"):
        if client.has_collection(collection, timeout=timeout):
            raise VectorStoreError(
                f"{_describe(uri, local)} already has a collection {collection!r}; "
                "every build makes a new one. Drop it or build a new generation."
            )
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field(_ROW, DataType.INT64, is_primary=True)
        schema.add_field(_VECTOR, DataType.FLOAT_VECTOR, dim=dim)
        client.create_collection(
            collection,
            schema=schema,
            consistency_level="Strong",
            properties={_SPEC_KEY: json.dumps(spec, sort_keys=True)},
            timeout=timeout,
        )


def _index_and_load(
    client: MilvusClient,
    uri: str,
    local: str | None,
    collection: str,
    index: tuple[str, dict[str, Any]],
) -> None:
    """Build the collection's index (``_index_params``: type and build parameters) and load
    it for searching."""
    index_type, index_build = index
    with _calls(uri, local, collection, "index"):
        prepared = client.prepare_index_params()
        prepared.add_index(
            field_name=_VECTOR,
            index_type=index_type,
            metric_type=_METRIC,
            params=_wire_params(index_build, local is not None),
        )
        client.create_index(collection, prepared)
        client.load_collection(collection)


class MilvusStore:
    """Chunk vectors in a Milvus collection; ``search`` returns (row, score) pairs, best
    first. Make one with ``build`` or ``open``; ``close`` it when done."""

    def __init__(
        self,
        client: MilvusClient,
        *,
        uri: str,
        local: str | None,
        collection: str,
        dim: int,
        size: int,
        spec: dict[str, Any],
        timeout: float,
    ) -> None:
        self._client = client
        self._uri = uri
        self._local = local
        self._collection = collection
        self._dim = dim
        self._size = size
        self._spec = dict(spec)
        self._timeout = timeout
        # A store dropped without close() (an engine replaced by a reload) still lets go
        # of its connection and, for Milvus Lite, of the embedded server and its lock.
        self._finalizer = weakref.finalize(self, _close, client, local)

    @property
    def size(self) -> int:
        return self._size

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def kind(self) -> str:
        return str(self._spec["kind"])

    @property
    def spec(self) -> dict[str, Any]:
        """The kind and its parameters (``DenseParams.spec_for``), as the manifest records."""
        return dict(self._spec)

    @property
    def collection(self) -> str:
        return self._collection

    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        *,
        uri: str,
        collection: str,
        token: str = "",
        kind: str = "auto",
        params: DenseParams | None = None,
        spec: dict[str, Any] | None = None,
        batch_rows: int | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> MilvusStore:
        """A new collection over ``vectors`` (L2-normalised rows; row i gets key i), indexed
        and loaded. ``kind="auto"`` picks exact or approximate by the number of rows, as
        for FAISS; ``spec`` instead names the index itself (also ``{"kind": "ivfflat",
        "nlist": ..., "nprobe": ...}``, which the settings never choose). ``batch_rows``:
        vectors per insert call (default: what fits in 16 MiB). With Milvus Lite,
        ``close()`` the store before checksumming, copying or moving its directory."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] < 2:
            raise ValueError(
                f"vectors must be an (n, d) array with d >= 2 (Milvus's minimum); "
                f"got shape {vectors.shape}"
            )
        n, dim = (int(x) for x in vectors.shape)
        spec = dict(spec) if spec else (params or DenseParams.defaults()).spec_for(n, dim, kind)
        index = _index_params(spec, is_local(uri))  # refuses IVF_PQ on Lite before connecting
        client, local = _connect(uri, token, timeout, must_exist=False)
        try:
            _create(client, uri, local, collection, spec, dim, timeout)
            with _calls(uri, local, collection, "insert into"):
                batch = batch_rows or max(1, _MESSAGE_BYTES // (4 * dim + 8))
                for start in range(0, n, batch):
                    rows = range(start, min(n, start + batch))
                    client.insert(collection, [{_ROW: i, _VECTOR: vectors[i]} for i in rows])
                client.flush(collection)
            _index_and_load(client, uri, local, collection, index)
        except BaseException:
            _close(client, local)
            raise
        return cls(
            client,
            uri=uri,
            local=local,
            collection=collection,
            dim=dim,
            size=n,
            spec=spec,
            timeout=timeout,
        )

    @classmethod
    def open(
        cls,
        *,
        uri: str,
        collection: str,
        token: str = "",
        spec: dict[str, Any] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> MilvusStore:
        """An existing collection, loaded. ``spec`` (the manifest's) must agree with the one
        the collection was built with; None takes the collection's own."""
        client, local = _connect(uri, token, timeout, must_exist=True)
        try:
            with _calls(uri, local, collection, "open"):
                if not client.has_collection(collection, timeout=timeout):
                    raise VectorStoreError(
                        f"{_describe(uri, local)} has no collection {collection!r}; the index "
                        "was built elsewhere or its collection was dropped. Rebuild with "
                        "`citeqa build --force`, or fix CITEQA_MILVUS_URI."
                    )
                described = client.describe_collection(collection, timeout=timeout)
                stored, dim = _stored_spec(described, collection)
                index = client.describe_index(collection, _VECTOR, timeout=timeout)
                index_type = str(index.get("index_type", ""))
                if index_type != _MILVUS_TYPES[stored["kind"]] or index.get("metric_type") != (
                    _METRIC
                ):
                    raise IndexCorruptError(
                        f"collection {collection!r} has a {index_type} "
                        f"{index.get('metric_type')} index but was built as {stored}; rebuild "
                        "with `citeqa build --force`."
                    )
                if spec is not None and _build_part(spec) != _build_part(stored):
                    raise IndexMismatchError(
                        f"collection {collection!r} was built as {stored}, the manifest says "
                        f"{spec}; rebuild with `citeqa build --force`."
                    )
                client.load_collection(collection)
                counted = client.query(
                    collection, filter="", output_fields=["count(*)"], timeout=timeout
                )
                size = int(counted[0]["count(*)"])
        except BaseException:
            _close(client, local)
            raise
        return cls(
            client,
            uri=uri,
            local=local,
            collection=collection,
            dim=dim,
            size=size,
            spec=spec if spec is not None else stored,
            timeout=timeout,
        )

    def close(self) -> None:
        """Let go of the connection (and of the embedded Milvus Lite server when this was
        its last store). Idempotent."""
        self._finalizer()

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        k = min(k, self._size, _MAX_TOPK)
        if k <= 0:
            return []
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(-1)
        if query.shape[0] != self._dim:
            raise ValueError(f"the query has {query.shape[0]} dimensions, the store {self._dim}")
        with _calls(self._uri, self._local, self._collection, "search"):
            result = self._client.search(
                self._collection,
                data=[query],
                limit=k,
                anns_field=_VECTOR,
                output_fields=[_ROW],
                search_params={"metric_type": _METRIC, "params": _search_params(self._spec, k)},
                timeout=self._timeout,
            )
        return [(int(hit[_ROW]), float(hit["distance"])) for hit in result[0]]

    def vectors(self) -> np.ndarray:
        """Every stored vector, in row order, as it was inserted (Milvus keeps the floats)."""
        out = np.zeros((self._size, self._dim), dtype=np.float32)
        seen = np.zeros(self._size, dtype=bool)
        batch = max(1, min(_MAX_TOPK, _MESSAGE_BYTES // (4 * self._dim + 8)))
        with _calls(self._uri, self._local, self._collection, "read"):
            for start in range(0, self._size, batch):
                stop = min(self._size, start + batch)
                rows = self._client.query(
                    self._collection,
                    filter=f"{_ROW} >= {start} and {_ROW} < {stop}",
                    output_fields=[_VECTOR],
                    limit=stop - start,
                    timeout=self._timeout,
                )
                for row in rows:
                    out[row[_ROW]] = row[_VECTOR]
                    seen[row[_ROW]] = True
        if not seen.all():
            missing = np.flatnonzero(~seen)
            raise IndexCorruptError(
                f"collection {self._collection!r} counts {self._size} vectors but lacks rows "
                f"{missing[:5].tolist()} ({len(missing)} in all); rebuild with "
                "`citeqa build --force`."
            )
        return out


def _stored_spec(described: dict[str, Any], collection: str) -> tuple[dict[str, Any], int]:
    """The spec a collection was built with (a collection property) and its dimension;
    a collection citeqa did not make is refused."""
    stored = described.get("properties", {}).get(_SPEC_KEY)
    fields = {field["name"]: field for field in described.get("fields", [])}
    vector, row = fields.get(_VECTOR), fields.get(_ROW)
    if (
        stored is None
        or vector is None
        or row is None
        or vector.get("type") != DataType.FLOAT_VECTOR
        or not row.get("is_primary")
    ):
        raise IndexMismatchError(
            f"collection {collection!r} was not made by citeqa (it needs an INT64 primary key "
            f"{_ROW!r}, a FLOAT_VECTOR {_VECTOR!r} and the property {_SPEC_KEY!r}); point "
            "CITEQA_MILVUS_URI elsewhere or rebuild with `citeqa build --force`."
        )
    try:
        spec = json.loads(stored)
    except json.JSONDecodeError as error:
        raise IndexCorruptError(
            f"collection {collection!r} has an unreadable {_SPEC_KEY!r} ({error}); "
            "rebuild with `citeqa build --force`."
        ) from error
    if spec.get("kind") not in _MILVUS_TYPES:
        raise IndexCorruptError(
            f"collection {collection!r} names an unknown index kind {spec.get('kind')!r}; "
            "rebuild with `citeqa build --force`."
        )
    return spec, int(vector["params"]["dim"])


def _build_part(spec: dict[str, Any]) -> dict[str, Any]:
    """What of a spec the built index fixes (search-time settings may differ)."""
    search_time = {"efSearch", "nprobe", "refine"}
    return {key: value for key, value in spec.items() if key not in search_time}


def drop_stale_collections(
    *,
    uri: str,
    keep: Iterable[str],
    prefix: str = "citeqa",
    token: str = "",
    timeout: float = DEFAULT_TIMEOUT,
) -> list[str]:
    """Drop every collection of a generation of this deployment (``<prefix>_gen_*``, see
    ``collection_name``) that is not in ``keep``: those of generations no longer kept and
    of builds that died. Returns their names."""
    keep = set(keep)
    mine = _NAME_RE.sub("_", f"{prefix}_gen_")
    client, local = _connect(uri, token, timeout, must_exist=True)
    try:
        with _calls(uri, local, f"{mine}*", "drop stale"):
            stale = [
                name
                for name in client.list_collections(timeout=timeout)
                if name.startswith(mine) and name not in keep
            ]
            for name in stale:
                client.drop_collection(name, timeout=timeout)
    finally:
        _close(client, local)
    return stale
