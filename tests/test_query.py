"""The Query record: worked out once per question, read by every stage. No models."""

from collections.abc import Sequence

import numpy as np
import pytest

from service.encode.query import QueryEncoder, analyse


class _Counting:
    """A fake encoder: the text's length as a 2-d vector; counts its calls."""

    dim = 2

    def __init__(self, name: str) -> None:
        self.name = name
        self.calls = 0

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        self.calls += 1
        return np.array([[len(t), 1.0] for t in texts], dtype=np.float32)


def test_analyse_reads_a_mixed_question_once() -> None:
    query = analyse("NEAR論壇在哪裡舉行？")
    assert query.language == "zh-Hant"
    assert {"en", "zh"} <= query.languages and query.scripts == {"latin", "han"}
    assert query.folded == "near论坛在哪里举行?"
    assert "near" in query.terms and query.vectors == {}


def test_the_encoder_adds_only_the_asked_vectors_and_caches_them() -> None:
    english, multilingual = _Counting("english"), _Counting("multilingual")
    encoder = QueryEncoder({"english": english, "multilingual": multilingual})
    timings: dict[str, float] = {}
    query = encoder.encode(analyse("Who met?"), ["multilingual"], timings)
    assert list(query.vectors) == ["multilingual"] and {"encode", "encode_multilingual"} <= set(
        timings
    )
    assert not query.vector("multilingual").flags.writeable
    again = encoder.encode(analyse("Who met?"), ["multilingual", "english"])
    assert multilingual.calls == 1 and english.calls == 1  # the first vector came from the cache
    assert np.array_equal(again.vector("multilingual"), query.vector("multilingual"))


def test_a_vector_not_encoded_says_which_were() -> None:
    query = QueryEncoder({"english": _Counting("english")}).encode(analyse("x"), ["english"])
    with pytest.raises(KeyError, match="encoded: english"):
        query.vector("multilingual")


def test_an_unknown_encoder_is_refused() -> None:
    with pytest.raises(KeyError, match="the index has english"):
        QueryEncoder({"english": _Counting("english")}).encode(analyse("x"), ["usem3"])


class _Slow(_Counting):
    """A fake encoder that takes ``seconds`` and records the thread it ran on."""

    def __init__(self, name: str, seconds: float) -> None:
        super().__init__(name)
        self.seconds = seconds
        self.threads: list[str] = []

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        import threading
        import time

        self.threads.append(threading.current_thread().name)
        time.sleep(self.seconds)
        return super().encode(texts)


def test_side_by_side_the_slowest_encoder_runs_on_its_own_thread(monkeypatch) -> None:
    import service.encode.query as query_module

    monkeypatch.setattr(query_module, "_PARALLEL_ENCODE", True)
    fast, slow, other = _Slow("fast", 0.001), _Slow("slow", 0.02), _Slow("other", 0.001)
    encoder = QueryEncoder({"fast": fast, "slow": slow, "other": other})
    names = ["fast", "slow", "other"]
    encoder.encode(analyse("first question"), names)  # learns each encoder's cost
    query = encoder.encode(analyse("second question"), names, parallel=True)
    assert slow.threads[-1].startswith("citeqa-encode")
    assert not fast.threads[-1].startswith("citeqa-encode")
    assert not other.threads[-1].startswith("citeqa-encode")
    assert set(query.vectors) == set(names)
