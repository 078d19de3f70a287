"""FastAPI application factory.

The index and the models load once, in the lifespan, never at import time. Until the
*Answer service* lands, the app exposes liveness and readiness only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from service import __version__
from service.config import Settings, get_settings
from service.index import load_index
from service.search import HybridRetriever

__all__ = ["create_app"]


def create_app(settings: Settings | None = None) -> FastAPI:
    """An app bound to ``settings`` (default: from the environment)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        index = load_index(settings)
        retriever = HybridRetriever.from_index(index, settings)
        retriever.search("warm up 预热", 1)  # first calls allocate; do it before ready
        app.state.index = index
        app.state.retriever = retriever
        yield

    app = FastAPI(title="citeqa", version=__version__, lifespan=lifespan)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    def readyz() -> JSONResponse:
        """The index is loaded and the models are warm."""
        index = getattr(app.state, "index", None)
        if index is None:
            return JSONResponse({"status": "loading"}, status_code=503)
        return JSONResponse(
            {
                "status": "ready",
                "generation": index.path.name,
                "documents": len(index.documents),
                "chunks": len(index.chunks),
            }
        )

    return app
