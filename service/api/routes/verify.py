"""POST /verify: is a claim supported, contradicted, or not found in the sources?"""

from __future__ import annotations

from fastapi import APIRouter

from service.api.deps import VerifierDep
from service.api.errors import responses
from service.api.schemas import VerifyRequest, VerifyResponse

router = APIRouter(tags=["claims"])


@router.post("/verify", response_model=VerifyResponse, responses=responses(413, 422, 503))
def verify(body: VerifyRequest, verifier: VerifierDep) -> VerifyResponse:
    """Check a claim against the closest sentences of the sources.

    ``supported``: a sentence about the same event states the claim's numbers, dates and
    places the same way; ``contradicted``: one states a number, date, person, place or
    organisation differently (each difference is listed under ``mismatches``);
    ``not_found``: no sentence is about the same event. Quotes slice their documents
    exactly at ``citation.char_start:char_end``.
    """
    return VerifyResponse.from_check(verifier.verify(body.claim, top_k=body.top_k))
