"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from service.engine import Engine
from service.server.errors import error_response, responses
from service.server.schemas import ErrorDetail

router = APIRouter(tags=["ops"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is alive (says nothing about the index)."""
    return {"status": "ok"}


@router.get("/readyz", responses=responses(503))
def readyz(request: Request) -> JSONResponse:
    """200 once the index is loaded and the models are warm; 503 before."""
    engine: Engine | None = getattr(request.app.state, "engine", None)
    if engine is None:
        message = "the index is loading or failed to load; see the service log."
        return error_response(503, [ErrorDetail(field=None, message=message)])
    index = engine.index
    body: dict[str, Any] = {
        "status": "ready",
        "generation": index.path.name,
        "documents": len(index.documents),
        "chunks": len(index.chunks),
    }
    return JSONResponse(body)
