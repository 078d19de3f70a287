"""The encoders an index is built and served with, loaded as the settings say."""

from __future__ import annotations

from service.config import Settings
from service.encode.encoders import Encoder, load_encoder

__all__ = ["load_encoders"]


def load_encoders(settings: Settings, threads: int, *, query: bool) -> dict[str, Encoder]:
    """The encoders of ``Settings.encoder_models()`` by name, with the configured backend
    (ONNX exports cached under the index).

    Args:
        threads: the threads each encoder may use.
        query: encoders for questions ("query: " for e5), which may be int8 where the
            settings allow it; passages are encoded at full precision, but by e5 with
            ``e5_int8``.
    """
    cache = settings.index_dir / "onnx"
    return {
        name: load_encoder(
            model,
            threads=threads,
            backend=settings.dense_backend,
            cache_dir=cache,
            int8=_int8(settings, name, query=query),
            query=query,
        )
        for name, model in settings.encoder_models().items()
    }


def _int8(settings: Settings, name: str, *, query: bool) -> bool:
    """Whether encoder ``name`` runs its int8 copy: e5 for passages and questions alike
    (``e5_int8``), the others for questions only (``query_int8``, ``int8_encoders``)."""
    if name == "e5" and settings.e5_int8:
        return True
    return query and settings.query_int8 and name in settings.int8_encoders
