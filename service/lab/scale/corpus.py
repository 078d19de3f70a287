"""The synthetic corpus written as documents, for ``serve_scale``.

``write_corpus`` writes the N synthetic chunks as paragraphs, 20 to 60 a document, under a
headline and a ``Source: ... | date`` line (the shape of the seed pages), plus a copy of
the seed documents. It returns a ``Composition``: which encoded seed-sentence variants (rows
of ``vectors.sentence_bank``) each sentence is made of, which row of the synthetic stream each
paragraph is, and which texts are real, so ``stand_in.StandInEncoder`` can give every text
``build_index`` asks about a vector without encoding it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from service.ingest.chunk import ChunkingParams, chunk_document, indexed_text, sentence_spans
from service.ingest.chunk import weighted_length as _weighted_length
from service.ingest.documents import find_date, read_corpus
from service.lab.scale.synthetic import SeedPool, compose, vary
from service.lab.scale.vectors import BANK_VARIANTS, BLOCK, block_digest, sentence_bank

SERVE_SOURCE = "Synthetic Wire"
_DOC_PARAGRAPHS = (20, 60)  # synthetic chunks a document holds (uniform): some dozens
_FIRST_DAY = 735_234  # 2014-01-01 as a date ordinal
_DAYS = 4_383  # to the end of 2025


def text_key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()


@dataclass
class Composition:
    """How the texts of a written synthetic corpus were made, for the stand-in encoders.

    Every sentence (``sentence_spans`` of a synthetic paragraph, and every title) maps to
    the seed-sentence variants it is made of: rows of the bank (``sentence_bank``) and their
    weighted lengths. ``paragraphs`` maps each synthetic paragraph to its row in the
    synthetic stream (whose encoded vectors the cache may hold); ``real_texts`` are the
    texts of the copied seed documents, which are encoded for real."""

    segments: dict[bytes, int] = field(default_factory=dict)  # sentence key -> entry
    ends: dict[bytes, int] = field(default_factory=dict)  # a part's first/last 16 -> row
    starts: list[int] = field(default_factory=lambda: [0])  # entry -> first part
    rows: list[int] = field(default_factory=list)  # part -> bank row
    weights: list[float] = field(default_factory=list)  # part -> weighted length
    paragraphs: dict[bytes, int] = field(default_factory=dict)  # paragraph key -> row
    blocks: list[str] = field(default_factory=list)  # block_digest of each full 1,000 paragraphs
    real_texts: set[bytes] = field(default_factory=set)
    documents: int = 0

    def add_sentence(self, text: str, parts: Sequence[tuple[int, float]]) -> None:
        key = text_key(text)
        if key in self.segments:
            return
        self.segments[key] = len(self.starts) - 1
        for row, weight in parts:
            self.rows.append(row)
            self.weights.append(weight)
        self.starts.append(len(self.rows))

    def parts(self, text: str) -> tuple[list[int], list[float]] | None:
        entry = self.segments.get(text_key(text))
        if entry is None:
            return None
        start, end = self.starts[entry], self.starts[entry + 1]
        return self.rows[start:end], self.weights[start:end]

    def piece(self, text: str) -> int | None:
        """The bank row of the seed sentence a piece of one begins or ends like (the
        splitter cuts long paragraphs inside sentences, at commas or spaces)."""
        if len(text) < _END:
            return None
        found = self.ends.get(text_key("<" + text[:_END]))
        return found if found is not None else self.ends.get(text_key(">" + text[-_END:]))


_END = 16  # characters of a part's start and end that identify a piece of it


def _bank_row(offsets: dict[str, int], language: str, pick: int, part: str) -> int:
    """The bank row of a varied seed sentence: one of its ``BANK_VARIANTS`` encoded
    variants, chosen by the text (the same text always gets the same)."""
    return offsets[language] + pick * BANK_VARIANTS + text_key(part)[0] % BANK_VARIANTS


def _register(
    composition: Composition,
    offsets: dict[str, int],
    language: str,
    picks: Sequence[int],
    parts: Sequence[str],
    text: str,
) -> None:
    """Map each sentence of the paragraph ``text`` (joined ``parts``) to its parts."""
    joiner = len(text) - sum(map(len, parts))
    joiner = joiner // (len(parts) - 1) if len(parts) > 1 else 0
    spans, position = [], 0
    for pick, part in zip(picks, parts, strict=True):
        spans.append(
            (
                position,
                position + len(part),
                _bank_row(offsets, language, pick, part),
                _weighted_length(part),
            )
        )
        position += len(part) + joiner
        if len(part) >= _END:
            composition.ends.setdefault(text_key("<" + part[:_END]), spans[-1][2])
            composition.ends.setdefault(text_key(">" + part[-_END:]), spans[-1][2])
    for start, end in sentence_spans(text):
        composition.add_sentence(
            text[start:end],
            [
                (row, weight * (min(end, b) - max(start, a)) / max(1, b - a))
                for a, b, row, weight in spans
                if a < end and b > start
            ],
        )


def _title(
    rng: random.Random, pool: SeedPool, language: str, offsets: dict[str, int]
) -> tuple[str, int]:
    """A headline: a varied seed sentence of ``language`` of 40 to 140 weighted characters
    without a date in it (the dateline is the line below), and its bank row."""
    sentences = pool.sentences[language]
    fitting = [i for i, s in enumerate(sentences) if 40 <= _weighted_length(s) <= 140]
    fitting = fitting or list(range(len(sentences)))
    for _ in range(20):
        pick = rng.choice(fitting)
        title = vary(sentences[pick], rng)
        if "\n" not in title and find_date(title) is None:
            break
    return title, _bank_row(offsets, language, pick, title)


def write_corpus(
    pool: SeedPool,
    n: int,
    seed: int,
    corpus_dir: Path,
    *,
    seeds_dir: Path | None = None,
    params: ChunkingParams | None = None,
    progress: bool = False,
) -> Composition:
    """Write the ``n`` synthetic chunks of ``seed`` as documents in ``corpus_dir``, one a
    paragraph, 20 to 60 a document, under a headline and a ``Source: ... | date`` line (the
    shape of the seed pages), plus a copy of every file of ``seeds_dir`` (so the eval
    questions have their answers). Files of earlier corpora there are removed."""
    corpus_dir.mkdir(parents=True, exist_ok=True)
    for old in corpus_dir.iterdir():
        if old.is_file() and old.suffix in (".txt", ".md"):
            old.unlink()
    _, offsets = sentence_bank(pool, seed)
    composition = Composition()
    rng = random.Random(f"documents-{seed}")
    block: list[str] = []
    paragraphs: list[str] = []
    size = rng.randint(*_DOC_PARAGRAPHS)
    header: tuple[str, str] = ("", "")

    def flush() -> None:
        title, date = header
        text = f"{title}\n\nSource: {SERVE_SOURCE} | {date}\n\n" + "\n\n".join(paragraphs) + "\n"
        name = f"syn{seed}-{composition.documents:07d}.txt"
        (corpus_dir / name).write_text(text, encoding="utf-8")
        composition.documents += 1

    stream = tqdm(
        compose(pool, n, seed), total=n, desc="write corpus", unit="chunk", disable=not progress
    )
    for row, (language, picks, parts, text) in enumerate(stream):
        if not paragraphs:
            title, title_row = _title(rng, pool, language, offsets)
            composition.add_sentence(title, [(title_row, float(_weighted_length(title)))])
            day = dt.date.fromordinal(_FIRST_DAY + rng.randrange(_DAYS)).isoformat()
            header = (title, day)
        _register(composition, offsets, language, picks, parts, text)
        composition.paragraphs[text_key(text)] = row
        paragraphs.append(text)
        block.append(text)
        if len(block) == BLOCK:
            composition.blocks.append(block_digest(block))
            block = []
        if len(paragraphs) == size:
            flush()
            paragraphs, size = [], rng.randint(*_DOC_PARAGRAPHS)
    if paragraphs:
        flush()
    if seeds_dir is not None:
        _copy_seeds(seeds_dir, corpus_dir, params or ChunkingParams(600, 90), composition)
    return composition


def _copy_seeds(
    seeds_dir: Path, corpus_dir: Path, params: ChunkingParams, composition: Composition
) -> None:
    """Copy the seed documents into the corpus; their chunk and sentence texts are the
    ones the stand-in encoders encode for real."""
    for path in sorted(seeds_dir.iterdir()):
        if path.is_file() and path.suffix in (".txt", ".md"):
            (corpus_dir / path.name).write_bytes(path.read_bytes())
    for document in read_corpus(seeds_dir):
        for chunk in chunk_document(document, params):
            composition.real_texts.add(text_key(indexed_text(chunk, document)))
            composition.real_texts.update(
                text_key(document.text[a:b])
                for a, b in sentence_spans(chunk.text, chunk.char_start)
            )
