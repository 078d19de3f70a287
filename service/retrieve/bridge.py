"""The bridge retriever: BM25 over the question's words carried into the other language.

An English question is searched among the Chinese passages with the Chinese headwords
CC-CEDICT gives its words; a Chinese or Japanese question among the English passages with
the English words of its words' definitions (``service.text.bridge``). The question's own
terms go along (numbers, names in Latin letters, acronyms such as JETRO are written the
same in a passage of either language). Korean questions are not asked: the dictionary
has no Korean, and the dense retrievers read them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from service.config import Settings
from service.index import CorpusIndex
from service.records import Chunk, Hit, Query
from service.retrieve.base import ranked_hits
from service.retrieve.registry import register
from service.store.bm25 import LexicalIndex
from service.text.bridge import Dictionary, bridged_script, cedict
from service.text.language import Script, scripts_of
from service.text.words import segmenter

__all__ = ["BridgeRetriever", "bridged_script"]


@dataclass(frozen=True)
class BridgeRetriever:
    """BM25 with dictionary translations of the question, over the other language's
    passages only."""

    name: str
    index: LexicalIndex
    chunks: Sequence[Chunk]
    dictionary: Dictionary
    rows: Mapping[Script, np.ndarray]  # per script, the chunks written in it

    @classmethod
    def over(
        cls, name: str, index: LexicalIndex, chunks: Sequence[Chunk], dictionary: Dictionary
    ) -> BridgeRetriever:
        """The retriever over ``chunks`` (the rows of ``index``)."""
        scripts = [scripts_of(chunk.language) for chunk in chunks]
        targets: tuple[Script, ...] = ("latin", "han")
        rows = {t: np.array([t in own for own in scripts], dtype=bool) for t in targets}
        return cls(name, index, chunks, dictionary, rows)

    @property
    def encoder(self) -> None:
        return None

    def asks(self, query: Query) -> bool:
        return bridged_script(query) is not None

    def reads(self, query: Query, chunk: Chunk) -> bool:
        """It only ranks passages in the script it carries the question into."""
        script = bridged_script(query)
        return script is not None and script in scripts_of(chunk.language)

    def terms(self, query: Query) -> dict[str, float]:
        """The weighted index terms it searches with: the translations and the question's
        own content terms (weight 1 each)."""
        script = bridged_script(query)
        if script is None:
            return {}
        bridged = dict(self.dictionary.carried(query.text, script, self.index.knows))
        for term in query.terms:
            bridged[term] = bridged.get(term, 0.0) + 1.0
        return bridged

    def search(self, query: Query, k: int) -> list[Hit]:
        script = bridged_script(query)
        if script is None:
            return []
        rows = self.index.search_terms(self.terms(query), k, self.rows[script])
        return ranked_hits(rows, self.chunks, self.name)


@register("bridge")
def bridge_retriever(index: CorpusIndex, settings: Settings) -> BridgeRetriever:
    """Reads CC-CEDICT (a few seconds, once per process) and jieba's dictionary."""
    segmenter()
    return BridgeRetriever.over("bridge", index.lexical, index.chunks, cedict())
