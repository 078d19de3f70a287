"""Shared fixtures: the real models and a real index built from seeds/ once per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service.config import Settings
from service.engine import Engine
from service.index import CorpusIndex, build_index, load_index
from service.ingest.documents import read_corpus
from service.records import Document
from service.retrieve.hybrid import HybridRetriever

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "seeds"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--soak-seconds",
        type=float,
        default=1800.0,
        help="length of the soak test (run with -m slow); default 30 minutes",
    )


@pytest.fixture(scope="session")
def soak_seconds(request: pytest.FixtureRequest) -> float:
    return float(request.config.getoption("--soak-seconds"))


@pytest.fixture(scope="session")
def seeds_dir() -> Path:
    return SEEDS


@pytest.fixture(scope="session")
def documents() -> dict[str, Document]:
    return {document.doc_id: document for document in read_corpus(SEEDS)}


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    # the tests are one fast client: the rate limit has its own test
    return Settings(
        corpus_dir=SEEDS, index_dir=tmp_path_factory.mktemp("index"), rate_limit_per_minute=0
    )


@pytest.fixture(scope="session")
def corpus_index(settings: Settings) -> CorpusIndex:
    build_index(settings, progress=False)
    return load_index(settings)


@pytest.fixture(scope="session")
def engine(corpus_index: CorpusIndex, settings: Settings) -> Engine:
    return Engine.from_settings(settings, index=corpus_index)


@pytest.fixture(scope="session")
def retriever(engine: Engine) -> HybridRetriever:
    return engine.retriever


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One chromium per browser test module (``chromium_kit``: Debian's, by playwright)."""
    from chromium_kit import chromium

    with chromium() as launched:
        yield launched
