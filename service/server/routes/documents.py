"""GET /documents and GET /documents/{doc_id}: the corpus as the offsets refer to it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from service.server.deps import EngineDep
from service.server.errors import responses
from service.server.schemas import DocumentOut, DocumentSummary

router = APIRouter(tags=["documents"])


@router.get("/documents", response_model=list[DocumentSummary], responses=responses(503))
def list_documents(engine: EngineDep) -> list[DocumentSummary]:
    """Every document: id, title, source, date, languages and length in characters."""
    return [DocumentSummary.from_document(d) for d in engine.documents.values()]


@router.get(
    "/documents/{doc_id}", response_model=DocumentOut, responses=responses(404, 410, 422, 503)
)
def get_document(
    doc_id: str,
    engine: EngineDep,
    start: Annotated[int | None, Query(ge=0, description="Slice start (character offset).")] = None,
    end: Annotated[int | None, Query(ge=0, description="Slice end, exclusive.")] = None,
) -> DocumentOut:
    """A document's metadata and original text; with ``start``/``end``, that slice as well."""
    return DocumentOut.from_document(engine.document(doc_id), start, end)
