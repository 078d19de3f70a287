"""Engine.from_settings: the one place an engine is wired."""

from pathlib import Path

import pytest

from service.config import Settings
from service.engine import Engine
from service.errors import ConfigError
from service.index import CorpusIndex


def test_a_baseline_engine_ranks_with_the_named_retriever_alone(
    corpus_index: CorpusIndex, settings: Settings
) -> None:
    bm25 = Engine.from_settings(settings, index=corpus_index, retrievers=["bm25"])
    result = bm25.ask(
        "When was the China-Japan-Korea Cooperation Secretariat established?", top_k=5
    )
    assert result.passages and all(set(p.hit.ranks) == {"bm25"} for p in result.passages)
    assert result.answer is not None  # the reader still reads with the multilingual vectors


def test_an_unknown_retriever_is_refused_with_the_known_ones(
    corpus_index: CorpusIndex, settings: Settings
) -> None:
    with pytest.raises(ValueError, match="use some of dense, multilingual, bm25"):
        Engine.from_settings(settings, index=corpus_index, retrievers=["sparse"])


def test_a_bad_tuned_file_fails_before_any_model_loads(tmp_path: Path) -> None:
    settings = Settings(index_dir=tmp_path / "no-index", tuned_file=tmp_path / "tuned.json")
    with pytest.raises(ConfigError, match="tuned constants"):
        Engine.from_settings(settings)  # no index here: the tuned file is checked first
