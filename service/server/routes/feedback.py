"""POST /feedback: a reader reports a wrong answer (or a wrong claim check) for review.

The report goes to the feedback log (``service.feedback``, ``CITEQA_FEEDBACK_DIR``), which
``citeqa feedback`` lists. Besides the service-wide rate limit, the path has its own bucket
per client (``CITEQA_FEEDBACK_RATE_PER_MINUTE``, bursts of ``CITEQA_FEEDBACK_RATE_BURST``;
the middleware is added in ``service.server.app``), and a day's log is capped in bytes.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request

from service.feedback import FeedbackLog, FeedbackLogFullError
from service.server.errors import responses
from service.server.schemas import ErrorBody, FeedbackCreated, FeedbackRequest

__all__ = ["LIMITED_PATHS", "get_feedback_log", "router"]

LIMITED_PATHS = frozenset({"/feedback"})  # the paths of the feedback rate limit

router = APIRouter(tags=["feedback"])


def get_feedback_log(request: Request) -> FeedbackLog:
    """The app's feedback log (``create_app`` makes it; it writes nothing until a report)."""
    log: FeedbackLog = request.app.state.feedback_log
    return log


FeedbackLogDep = Annotated[FeedbackLog, Depends(get_feedback_log)]

_FULL: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorBody, "description": "Today's feedback log is full; `Retry-After`."}
}


@router.post(
    "/feedback",
    summary="Report a wrong answer",
    status_code=201,
    response_model=FeedbackCreated,
    responses={**responses(413, 422, 429), **_FULL},
)
def report(body: FeedbackRequest, log: FeedbackLogDep) -> FeedbackCreated:
    """Record that an answer is wrong: the question (or claim), the answer and citation
    shown, and the reader's note. The newsroom reviews the reports with ``citeqa
    feedback``; the answer here is only the report's id."""
    try:
        record = log.add(body.to_entry())
    except FeedbackLogFullError as full:
        raise HTTPException(
            status_code=503, detail=str(full), headers={"Retry-After": str(full.retry_after)}
        ) from None
    return FeedbackCreated(id=record.id)
