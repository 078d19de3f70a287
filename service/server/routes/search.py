"""GET /search: the ranked passages alone, no answer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from service.errors import InputError, UnknownDocumentError
from service.server.deps import EngineDep, PublicUrlDep
from service.server.errors import responses
from service.server.limits import within_budget
from service.server.schemas import PassageOut, SearchParams

router = APIRouter(tags=["answer"])

# The engine names filter fields as /ask spells them; here they are query parameters.
_PARAMETER = {"filters.doc_ids": "doc_id", "filters.languages": "language"}


@router.get("/search", response_model=list[PassageOut], responses=responses(404, 422, 503))
async def search(
    params: Annotated[SearchParams, Query()],
    engine: EngineDep,
    public_url: PublicUrlDep,
    request: Request,
) -> list[PassageOut]:
    """The top ``k`` passages for ``q``, best first, with highlights on the query's terms."""
    try:
        passages = await within_budget(
            request, engine.search, params.q, top_k=params.k, filters=params.to_filters()
        )
    except UnknownDocumentError as error:
        raise UnknownDocumentError(error.doc_id, field="doc_id") from error
    except InputError as error:
        if error.field not in _PARAMETER:
            raise
        raise InputError(_PARAMETER[error.field], error.message) from error
    return [PassageOut.from_passage(p, engine.documents, public_url) for p in passages]
