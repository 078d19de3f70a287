"""POST /cite: where does this quote come from, and did the source really say it?"""

from __future__ import annotations

from fastapi import APIRouter, Request

from service.server.deps import CiterDep, PublicUrlDep
from service.server.errors import responses
from service.server.limits import within_budget
from service.server.schemas import CiteRequest, CiteResponse

router = APIRouter(tags=["claims"])


@router.post("/cite", response_model=CiteResponse, responses=responses(413, 422, 429, 503))
async def cite(
    body: CiteRequest, citer: CiterDep, public_url: PublicUrlDep, request: Request
) -> CiteResponse:
    """The source spans that best correspond to a quote, best first, with exact offsets:
    `exact`, `normalised`, `near` (the words inserted, deleted and changed are listed,
    typed as number, date, negation, qualifier or name where they can be), `translated`;
    no match when nothing corresponds (`match`: none)."""
    result = await within_budget(request, citer.cite, body.quote, top_k=body.top_k)
    return CiteResponse.from_result(result, citer.engine.documents, public_url)
