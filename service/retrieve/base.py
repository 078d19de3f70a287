"""The contract every retriever keeps, and the one way a ranking becomes hits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from service.records import Chunk, Hit, Query

__all__ = ["Retriever", "ranked_hits"]


class Retriever(Protocol):
    """One ranking of the chunks for a query.

    ``encoder`` names the query vector it reads (``Query.vectors``), or is None for a
    retriever that reads the text. ``asks`` and ``reads`` say what it is competent to judge:
    the competent fusions (``service.retrieve.fusion``) neither ask a retriever that cannot
    read the query nor let it vote on a passage it cannot read.
    """

    @property
    def name(self) -> str: ...

    @property
    def encoder(self) -> str | None: ...

    def asks(self, query: Query) -> bool:
        """Whether it can read the query at all."""
        ...

    def reads(self, query: Query, chunk: Chunk) -> bool:
        """Whether its score of ``chunk`` for ``query`` means anything."""
        ...

    def search(self, query: Query, k: int) -> list[Hit]:
        """The ``k`` best chunks, best first, ranks from 1."""
        ...


def ranked_hits(rows: Sequence[tuple[int, float]], chunks: Sequence[Chunk], name: str) -> list[Hit]:
    """``(row, score)`` pairs, best first, as hits ranked by retriever ``name``."""
    return [
        Hit(chunk=chunks[row], score=score, rank=rank, ranks={name: rank})
        for rank, (row, score) in enumerate(rows, start=1)
    ]
