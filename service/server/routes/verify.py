"""POST /verify: is a claim supported, contradicted, or not found in the sources?"""

from __future__ import annotations

from fastapi import APIRouter, Request

from service.server.deps import PublicUrlDep, VerifierDep
from service.server.errors import responses
from service.server.limits import within_budget
from service.server.schemas import VerifyRequest, VerifyResponse

router = APIRouter(tags=["claims"])


@router.post("/verify", response_model=VerifyResponse, responses=responses(413, 422, 429, 503))
async def verify(
    body: VerifyRequest, verifier: VerifierDep, public_url: PublicUrlDep, request: Request
) -> VerifyResponse:
    """Check a claim against the closest sentences of the sources.

    ``supported``: a sentence about the same event states the claim's numbers, dates and
    places the same way; ``contradicted``: one states a number, date, person, place or
    organisation differently (each difference is listed under ``mismatches``);
    ``not_found``: no sentence is about the same event. Quotes slice their documents
    exactly at ``citation.char_start:char_end``.
    """
    check = await within_budget(request, verifier.verify, body.claim, top_k=body.top_k)
    return VerifyResponse.from_check(check, public_url)
