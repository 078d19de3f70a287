"""What the encoders of an index encode: each chunk under its title, and every sentence.

Every encoder encodes the same texts, in the row order of its files: the chunks as
``indexed_text`` makes them (their vectors are the chunk store), then the sentences of the
sentence table (``sentences.npy``: chunk row, start, end in the document), whose vectors
let a question be matched to a sentence without encoding the sentence again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from service.index.layout import CHUNKS, SENTENCES, read_documents, read_jsonl
from service.ingest.chunk import ChunkTable, indexed_text, sentence_spans
from service.records import Chunk, Document

__all__ = ["IndexTexts", "chunk_texts", "read_texts", "sentence_table", "sentence_texts"]


@dataclass(frozen=True)
class IndexTexts:
    """The texts each encoder encodes for a generation, in row order."""

    chunks: list[str]  # row i: chunk i under its document's title
    sentences: list[str]  # row i: sentence i of the sentence table


def sentence_table(chunks: Sequence[Chunk]) -> np.ndarray:
    """(chunk row, char_start, char_end in the document) of every sentence of every chunk,
    an int64 (n, 3) array."""
    return np.array(
        [
            (row, start, end)
            for row, chunk in enumerate(chunks)
            for start, end in sentence_spans(chunk.text, chunk.char_start)
        ],
        dtype=np.int64,
    ).reshape(-1, 3)


def chunk_texts(documents: Mapping[str, Document], chunks: Iterable[Chunk]) -> list[str]:
    """What the encoders encode for each of ``chunks`` (of ``documents``, by id)."""
    return [indexed_text(chunk, documents[chunk.doc_id]) for chunk in chunks]


def sentence_texts(
    documents: Mapping[str, Document], chunks: Sequence[Chunk], sentences: np.ndarray
) -> list[str]:
    """The text of each row of the sentence table ``sentences`` of ``chunks``."""
    return [documents[chunks[r].doc_id].text[a:b] for r, a, b in sentences.tolist()]


def read_texts(generation: Path) -> IndexTexts:
    """The texts a generation's vectors encode, read from its files (not checked against
    its manifest: ``check_index`` does that)."""
    documents = {document.doc_id: document for document in read_documents(generation)}
    chunks = ChunkTable.from_rows(documents, read_jsonl(generation / CHUNKS))
    sentences = np.load(generation / SENTENCES, allow_pickle=False)
    return IndexTexts(
        chunks=chunk_texts(documents, chunks),
        sentences=sentence_texts(documents, chunks, sentences),
    )
