"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from service.engine import Engine
from service.server.errors import error_response, responses
from service.server.schemas import ErrorDetail, Readiness

router = APIRouter(tags=["ops"])


@router.head("/healthz", include_in_schema=False)
@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is alive (says nothing about the index)."""
    return {"status": "ok"}


@router.head("/readyz", response_model=Readiness, include_in_schema=False)
@router.get("/readyz", response_model=Readiness, responses=responses(503))
def readyz(request: Request) -> Readiness | JSONResponse:
    """200 once the index is loaded and the models are warm; 503 before. ``status`` is
    "degraded", with the reason, while a damaged current generation is passed over.

    Reads the app's state itself rather than through ``EngineDep``, whose 503 while loading
    would send clients here."""
    engine: Engine | None = getattr(request.app.state, "engine", None)
    if engine is None:
        message = "the index is loading or failed to load; see the service log."
        return error_response(503, [ErrorDetail(field=None, message=message)])
    return Readiness.from_engine(engine)
