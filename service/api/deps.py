"""What routes receive through ``Depends``: the engine the lifespan loaded."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from service.engine import Engine
from service.verify import Verifier

__all__ = ["EngineDep", "VerifierDep", "get_engine", "get_verifier"]


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


def get_verifier(request: Request, engine: EngineDep) -> Verifier:
    """The claim checker over the app's engine (made once, it caches name statistics)."""
    verifier: Verifier | None = getattr(request.app.state, "verifier", None)
    if verifier is None or verifier.engine is not engine:
        verifier = Verifier(engine)
        request.app.state.verifier = verifier
    return verifier


VerifierDep = Annotated[Verifier, Depends(get_verifier)]
