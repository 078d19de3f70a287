"""What routes receive through ``Depends``: the engine the lifespan loaded."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from service.engine import Engine

__all__ = ["EngineDep", "get_engine"]


def get_engine(request: Request) -> Engine:
    """The app's engine, or 503 while the lifespan has not loaded it."""
    engine: Engine | None = getattr(request.app.state, "engine", None)
    if engine is None:
        raise HTTPException(
            status_code=503,
            detail="the index is not loaded yet; retry once GET /readyz answers 200.",
        )
    return engine


EngineDep = Annotated[Engine, Depends(get_engine)]
