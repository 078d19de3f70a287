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
        query: encoders for questions, which may be int8 where the settings allow it;
            passages are always encoded at full precision.
    """
    cache = settings.index_dir / "onnx"
    return {
        name: load_encoder(
            model,
            threads=threads,
            backend=settings.dense_backend,
            cache_dir=cache,
            int8=query and settings.query_int8 and name in settings.int8_encoders,
        )
        for name, model in settings.encoder_models().items()
    }
