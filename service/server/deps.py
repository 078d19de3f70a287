"""What routes receive through ``Depends``: the engine of the newest published generation,
the claim checker over it, the settings, and the settings once the admin key is proved.

Each request takes the engine once and keeps it, so it reads one generation from start to
end. At most once a second a request looks at the index's ``CURRENT`` pointer; when another
process (``citeqa add``, an admin route in another worker) has published a new generation,
that request loads it, reusing the loaded models, and later requests get the new engine.
While an older generation is served because the current one is damaged, the current one is
checked again every ``RETRY_DAMAGED_SECONDS`` and served once it passes (repaired).
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, TypeVar

from fastapi import Depends, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from service.cite.matcher import Citer
from service.config import Settings
from service.engine import Engine
from service.errors import IndexCorruptError
from service.index import check_index, current_generation
from service.verify.verifier import Verifier

__all__ = [
    "ADMIN_PREFIX",
    "AdminSettingsDep",
    "CiterDep",
    "EngineDep",
    "PublicUrlDep",
    "SettingsDep",
    "VerifierDep",
    "admin_refusal",
    "app_settings",
    "get_engine",
    "get_public_url",
    "get_verifier",
    "is_admin_path",
    "reload_engine",
    "require_admin",
    "serve_generation",
]

ADMIN_PREFIX = "/admin"
RELOAD_CHECK_SECONDS = 1.0
RETRY_DAMAGED_SECONDS = 10.0  # while a fallback is served, how often the current is retried
_reload_lock = threading.Lock()
logger = logging.getLogger(__name__)


def reload_engine(state: object, settings: Settings) -> Engine:
    """Load the current generation into a new engine (models reused) and make it the app's."""
    old: Engine = state.engine  # type: ignore[attr-defined]
    engine = Engine.from_settings(settings, encoders=old.index.encoders)
    index = engine.index
    state.engine = engine  # type: ignore[attr-defined]
    logger.info("serving %s (%d documents)", index.path.name, len(index.documents))
    return engine


def serve_generation(request: Request, generation: Path) -> None:
    """Serve ``generation`` (just published by this worker) from this request on."""
    state = request.app.state
    if state.engine.index.path != generation:
        reload_engine(state, state.settings)


def _maybe_reload(request: Request) -> None:
    state = request.app.state
    now = time.monotonic()
    if now - getattr(state, "checked_at", 0.0) < RELOAD_CHECK_SECONDS:
        return
    if not _reload_lock.acquire(blocking=False):
        return  # another request is loading it; keep serving the current one meanwhile
    try:
        state.checked_at = now
        settings: Settings = state.settings
        current = current_generation(settings.index_dir)
        if current is None or current.name == state.engine.index.path.name:
            return
        seen = getattr(state, "seen_generation", None)
        if current.name == seen or (seen is None and state.engine.index.warning):
            # a damaged current generation: retried (its checksums only) now and then, so a
            # repaired one is served without a restart
            if now - getattr(state, "retried_at", 0.0) < RETRY_DAMAGED_SECONDS:
                return
            state.retried_at = now
            check_index(settings, current)  # raises while it is still damaged
        state.seen_generation = current.name
        reload_engine(state, settings)
    except IndexCorruptError as error:  # keep serving what is loaded
        logger.warning("the current index generation is still damaged: %s", error)
    except Exception:  # keep serving what is loaded; the log says why
        logger.exception("could not load the new index generation")
    finally:
        _reload_lock.release()


async def get_engine(request: Request) -> Engine:
    """The app's engine, or 503 while the lifespan has not loaded it.

    Asynchronous, so a request does not cross to the thread pool and back just to read
    the engine; the once-a-second look for a new generation runs there (it may load one)."""
    state = request.app.state
    if getattr(state, "engine", None) is None:
        raise HTTPException(
            status_code=503,
            detail="the index is not loaded yet; retry once GET /readyz answers 200.",
        )
    if time.monotonic() - getattr(state, "checked_at", 0.0) >= RELOAD_CHECK_SECONDS:
        await run_in_threadpool(_maybe_reload, request)
    engine: Engine = state.engine
    return engine


EngineDep = Annotated[Engine, Depends(get_engine)]


_Over = TypeVar("_Over", Verifier, Citer)


def _over_engine(request: Request, engine: Engine, kind: type[_Over]) -> _Over:
    """One ``kind`` (a claim checker, a quote tracer) over the app's engine: made once per
    engine and kept, as each caches what it learns of the corpus."""
    name = kind.__name__.lower()
    made = getattr(request.app.state, name, None)
    if not isinstance(made, kind) or made.engine is not engine:
        made = kind(engine)
        setattr(request.app.state, name, made)
    return made


def get_verifier(request: Request, engine: EngineDep) -> Verifier:
    """The claim checker over the app's engine."""
    return _over_engine(request, engine, Verifier)


VerifierDep = Annotated[Verifier, Depends(get_verifier)]


def get_citer(request: Request, engine: EngineDep) -> Citer:
    """Citation retrieval over the app's engine."""
    return _over_engine(request, engine, Citer)


CiterDep = Annotated[Citer, Depends(get_citer)]


def app_settings(request: Request) -> Settings:
    """The settings the app was made with."""
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(app_settings)]


def get_public_url(settings: SettingsDep) -> str:
    """``CITEQA_PUBLIC_URL``: where citation links point (empty: relative links)."""
    return settings.public_url


PublicUrlDep = Annotated[str, Depends(get_public_url)]


def is_admin_path(path: str) -> bool:
    """``/admin`` and the paths under it (not ``/adminX``)."""
    return path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")


def admin_refusal(settings: Settings, headers: Mapping[str, str]) -> HTTPException | None:
    """Why a request with these headers may not use the admin routes, or None if it may:
    404 while they are off, 401 without the right key (compared in constant time)."""
    if settings.admin_key is None:
        return HTTPException(
            status_code=404,
            detail="the admin routes are off; set CITEQA_ADMIN_KEY to turn them on.",
        )
    sent = headers.get("x-api-key", "")
    authorization = headers.get("authorization", "")
    if not sent and authorization.lower().startswith("bearer "):
        sent = authorization[7:].strip()
    expected = settings.admin_key.get_secret_value().encode()
    if not hmac.compare_digest(sent.encode(), expected):
        return HTTPException(
            status_code=401,
            detail="a valid admin key is required: send 'Authorization: Bearer KEY'.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return None


def require_admin(request: Request, settings: SettingsDep) -> Settings:
    """The settings, once the request proved it holds the admin key (``admin_refusal``;
    ``BodySizeLimit`` has checked it already, before reading the body)."""
    refusal = admin_refusal(settings, request.headers)
    if refusal is not None:
        raise refusal
    return settings


AdminSettingsDep = Annotated[Settings, Depends(require_admin)]
