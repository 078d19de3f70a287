"""``StandInEncoder``: vectors for a written synthetic corpus without encoding it all.

Each text gets the cached encoded vector of its paragraph, the bank vectors of the seed
sentences it is made of (``corpus.Composition``), or, for what neither covers, the real
model's; ``real_vectors`` reads the cached encoded paragraphs that match the corpus.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from service.encode.encoders import Encoder
from service.ingest.chunk import sentence_spans
from service.ingest.chunk import weighted_length as _weighted_length
from service.lab.scale.corpus import Composition, text_key
from service.lab.scale.vectors import BLOCK, VectorCache, cache_key


class StandInEncoder:
    """An encoder with a configured model's ``name`` and ``dim`` whose vectors stand in for
    the model's own, for corpora too large to encode (see ``serve_scale``). Each text gets:

    - ``real``: the model's cached vector of that synthetic paragraph;
    - ``real body + title from bank``: a paragraph under its document's headline (what
      ``indexed_text`` indexes): the cached vector of the paragraph and the bank vector of
      the headline, weighted by length;
    - ``sentence from bank``: a sentence made of one seed sentence: the encoded vector of a
      variant of it (``sentence_bank``);
    - ``approximated``: the length-weighted sum of the bank vectors of its sentences'
      seed sentences, L2-normalised (``approximate_vectors``' way); a piece of a sentence
      (the splitter cuts long paragraphs at commas and spaces) counts as its seed sentence
      when it begins or ends like it (``sentence piece from bank`` when it is the whole
      text); sentences of no seed (a dateline) are left out of the sum;
    - ``encoded``: the copied seed documents' texts, by the model itself;
    - ``fallback (encoded)``: a text with nothing known (a dateline alone), by the model
      itself, the first ``fallback_budget`` of them (the English model encodes about 13
      chunks a second here); ``fallback (random)``: the others, a random unit vector
      seeded by the text.

    ``counts`` adds up what each text got."""

    def __init__(
        self,
        name: str,
        dim: int,
        *,
        bank: np.ndarray,
        composition: Composition,
        real: np.ndarray | None,
        load_real: Callable[[], Encoder],
        fallback_budget: int = 2000,
    ) -> None:
        self.name = name
        self.dim = dim
        self.counts: dict[str, int] = {}
        self._bank = bank
        self._composition = composition
        self._real = real if real is not None else np.zeros((0, dim), dtype=np.float32)
        self._load_real = load_real
        self._model: Encoder | None = None
        self._fallback_budget = fallback_budget
        self._fallbacks_encoded = 0

    def __hash__(self) -> int:
        return id(self)

    def _count(self, kind: str, number: int = 1) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + number

    def _sentences(self, text: str) -> tuple[np.ndarray | None, int, int, int]:
        """Weighted bank sum of the sentences of ``text`` (pieces of sentences by their
        start or end); how many sentences were known, pieces, unknown."""
        total = np.zeros(self.dim, dtype=np.float32)
        known = pieces = unknown = 0
        for start, end in sentence_spans(text):
            sentence = text[start:end]
            found = self._composition.parts(sentence)
            if found is not None:
                rows, weights = found
                total += np.asarray(weights, dtype=np.float32) @ self._bank[rows]
                known += 1
            elif (row := self._composition.piece(sentence)) is not None:
                total += _weighted_length(sentence) * self._bank[row]
                pieces += 1
            else:
                unknown += 1
        return (total if known or pieces else None), known, pieces, unknown

    def _vector(self, text: str) -> tuple[np.ndarray | None, str]:
        composition = self._composition
        key = text_key(text)
        if key in composition.real_texts:
            return None, "encoded"
        row = composition.paragraphs.get(key)
        if row is not None and row < len(self._real):
            return self._real[row], "real"
        title, newline, body = text.partition("\n")
        row = composition.paragraphs.get(text_key(body)) if newline else None
        if row is not None and row < len(self._real):
            found = composition.parts(title)
            if found is not None:
                rows, weights = found
                vector = np.asarray(weights, dtype=np.float32) @ self._bank[rows]
                vector = vector + _weighted_length(body) * self._real[row]
                return _unit(vector), "real body + title from bank"
        vector, known, pieces, unknown = self._sentences(text)
        if vector is None:
            if self._fallbacks_encoded < self._fallback_budget:
                self._fallbacks_encoded += 1
                return None, "fallback (encoded)"
            vector = np.random.default_rng(int.from_bytes(key, "little")).normal(size=self.dim)
            return _unit(vector.astype(np.float32)), "fallback (random)"
        if known == 1 and not (pieces or unknown):
            return _unit(vector), "sentence from bank"
        if pieces == 1 and not (known or unknown):
            return _unit(vector), "sentence piece from bank"
        return _unit(vector), "approximated"

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        todo: list[int] = []
        for i, text in enumerate(
            tqdm(texts, desc=f"stand-in {self.name}", unit="text", disable=not progress)
        ):
            vector, kind = self._vector(text)
            self._count(kind)
            if vector is None:
                todo.append(i)
            else:
                out[i] = vector
        if todo:
            if self._model is None:
                self._model = self._load_real()
            out[todo] = self._model.encode([texts[i] for i in todo], progress=progress)
        return out


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / max(float(np.linalg.norm(vector)), 1e-12)


def real_vectors(
    cache_dir: Path, model: str, seed: int, blocks: Sequence[str]
) -> np.ndarray | None:
    """The cached encoded vectors of the synthetic stream's first blocks, as many as match
    ``blocks`` (the text digests of the corpus written now), or None."""
    cache = VectorCache(cache_dir, cache_key(model, seed))
    if not (cache.meta.is_file() and cache.data.is_file()):
        return None
    meta = json.loads(cache.meta.read_text())
    cache.dim = int(meta["dim"])
    matching = 0
    for cached, wanted in zip(meta["digests"], blocks, strict=False):
        if cached != wanted:
            break
        matching += 1
    return cache.rows(matching * BLOCK) if matching else None
