"""GET /documents and GET /documents/{doc_id}: the corpus as the offsets refer to it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from service.errors import InputError
from service.server.deps import EngineDep
from service.server.errors import responses
from service.server.links import view_url
from service.server.schemas import DocumentOut, DocumentSummary, SliceOut

router = APIRouter(tags=["documents"])


@router.get("/documents", response_model=list[DocumentSummary], responses=responses(503))
def list_documents(engine: EngineDep) -> list[DocumentSummary]:
    """Every document: id, title, source, date, languages and length in characters."""
    return [DocumentSummary.from_document(d) for d in engine.documents.values()]


def _slice(text: str, start: int | None, end: int | None) -> SliceOut | None:
    if start is None and end is None:
        return None
    length = len(text)
    first = 0 if start is None else start
    last = length if end is None else end
    allowed = f"the document has {length} characters; use 0 <= start <= end <= {length}"
    if first > length:
        raise InputError("start", f"start is {first} but {allowed}.")
    if last > length:
        raise InputError("end", f"end is {last} but {allowed}.")
    if first > last:
        raise InputError("end", f"end ({last}) is before start ({first}); {allowed}.")
    return SliceOut(start=first, end=last, text=text[first:last])


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
    document = engine.document(doc_id)
    summary = DocumentSummary.from_document(document)
    return DocumentOut(
        **summary.model_dump(),
        sha256=document.sha256,
        view_url=view_url("", doc_id),
        text=document.text,
        slice=_slice(document.text, start, end),
    )
