"""POST /ask: an extractive answer with its citation, or the reason there is none."""

from __future__ import annotations

from fastapi import APIRouter, Request

from service.server.deps import EngineDep, PublicUrlDep
from service.server.errors import responses
from service.server.limits import within_budget
from service.server.schemas import AskRequest, AskResponse

router = APIRouter(tags=["answer"])


@router.post("/ask", response_model=AskResponse, responses=responses(404, 413, 422, 429, 503))
async def ask(
    body: AskRequest, engine: EngineDep, public_url: PublicUrlDep, request: Request
) -> AskResponse:
    """Answer the question from the corpus, quoting one document, or abstain and say why.

    With ``history`` (the previous turns, newest last) a follow-up whose subject is a
    pronoun or missing is answered about the previous question's subject, named in
    ``assumed_subject``.

    Every offset is a Python string index into the document's original text, so
    ``GET /documents/{doc_id}`` sliced at ``citation.char_start:char_end`` is the quote.
    """
    filters = body.filters.to_filters() if body.filters else None
    result = await within_budget(
        request,
        engine.ask,
        body.question,
        top_k=body.top_k,
        filters=filters,
        history=body.turns(),
    )
    return AskResponse.from_result(result, engine.documents, public_url)
