"""FastAPI application factory.

The index and the models load once, in the lifespan, never at import time; routes get the
engine, the settings and the admin check through ``Annotated`` dependencies
(``service.server.deps``). The engine is CPU-bound and must never run on the event loop:

- ``/ask``, ``/verify`` and ``/search`` are ``async def`` and hand the engine's work to the
  thread pool through ``service.server.limits.within_budget``, which answers 503 when it
  outlasts ``CITEQA_REQUEST_BUDGET_SECONDS``;
- every other route is a plain ``def`` (documents, pages, probes, admin changes), which
  FastAPI runs in its thread pool;
- ``get_engine`` is ``async`` (reading the engine needs no thread) and sends its
  once-a-second look for a new index generation, which may load one, to the thread pool.

Middleware, outermost first: security headers, CORS for the public routes, the rate limit
(and a tighter one of its own for ``POST /feedback``), the admin key and the body-size
limit; the error handlers turn every exception into one JSON shape. ``server_options``
are uvicorn's for ``citeqa serve`` (trusted proxies, read deadlines). ``/docs`` and
``/redoc`` are served from local assets (``service.server.routes.apidocs``), never a CDN.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from service import __version__
from service.config import Settings, get_settings
from service.engine import Engine
from service.feedback import FeedbackLog
from service.server.deps import is_admin_path
from service.server.errors import (
    MAX_BODY_BYTES,
    BodySizeLimit,
    error_response,
    install_error_handlers,
)
from service.server.limits import RateLimit, SecurityHeaders, server_options
from service.server.pages import STATIC_DIR
from service.server.routes import (
    admin,
    apidocs,
    ask,
    cite,
    documents,
    feedback,
    ops,
    search,
    verify,
    view,
    widget,
)
from service.server.schemas import ErrorDetail

__all__ = ["LOCALHOST_ORIGIN", "create_app", "server_options"]

# Pages on this machine may always call the API (the widget during development); other
# origins only when listed in CITEQA_CORS_ORIGINS. Same-origin calls need no CORS at all.
LOCALHOST_ORIGIN = r"^https?://(localhost|127\.0\.0\.1|\[::1\])(:\d+)?$"

logger = logging.getLogger(__name__)


def _load_engine(settings: Settings) -> Engine:
    engine = Engine.from_settings(settings)
    # The first calls allocate buffers and fill caches: make them before reporting ready.
    engine.ask("warm up 预热", top_k=1)
    return engine


ADMIN_MAX_BODY_BYTES = 8 * 1024 * 1024  # a whole article, not a question


class PublicCORS(CORSMiddleware):
    """CORS for the public routes; the admin routes never answer a cross-origin browser.
    A refused preflight is the one JSON error shape, not Starlette's plain text."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_admin_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        reason = bytes(response.body).decode("utf-8", "replace")
        message = f"the cross-origin request is refused: {reason}."
        return error_response(response.status_code, [ErrorDetail(field=None, message=message)])


def _add_middleware(app: FastAPI, settings: Settings) -> None:
    """The last added runs first: security headers, CORS, rate limit, the feedback log's
    own rate limit, body-size limit (which checks the admin key, then reads the body)."""
    app.add_middleware(
        BodySizeLimit,
        settings=settings,
        max_bytes=MAX_BODY_BYTES,
        admin_max_bytes=ADMIN_MAX_BODY_BYTES,
    )
    app.add_middleware(
        RateLimit,
        settings=settings,
        per_minute=settings.feedback_rate_per_minute,
        burst=settings.feedback_rate_burst,
        paths=feedback.LIMITED_PATHS,
    )
    app.add_middleware(RateLimit, settings=settings)
    app.add_middleware(
        PublicCORS,
        allow_origins=list(settings.cors_origins),
        allow_origin_regex=LOCALHOST_ORIGIN,
        allow_methods=["GET", "POST"],
        allow_headers=["Content-Type"],
        max_age=600,
    )
    app.add_middleware(SecurityHeaders, frame_ancestors=settings.frame_ancestors)


def create_app(settings: Settings | None = None) -> FastAPI:
    """An app bound to ``settings`` (default: from the environment)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.engine = None
        engine = _load_engine(settings)  # nothing is served until this returns
        logger.info(
            "citeqa ready: %d documents, %d chunks from %s",
            len(engine.documents),
            len(engine.index.chunks),
            engine.index.path,
        )
        app.state.engine = engine
        yield
        app.state.engine = None

    app = FastAPI(
        title="citeqa",
        version=__version__,
        summary="Cited, extractive question answering over a multilingual news corpus.",
        description=(
            "Every answer and passage carries character offsets into the original document: "
            "`GET /documents/{doc_id}` sliced at them gives the quote back, letter for letter. "
            'Errors are always `{"error": {"field", "message"}, "errors": [...]}`.'
        ),
        lifespan=lifespan,
        # Starlette's redirect to the path without its slash is absolute, built from the
        # Host header the client sent (307 Location: http://evil.example/...): none.
        redirect_slashes=False,
        # /docs and /redoc are ours (service.server.routes.apidocs): FastAPI's load from a CDN
        docs_url=None,
        redoc_url=None,
    )
    app.state.engine = None
    app.state.settings = settings
    app.state.feedback_log = FeedbackLog(
        settings.feedback_folder(), settings.feedback_max_day_bytes
    )
    _add_middleware(app, settings)
    install_error_handlers(app)
    for module in (
        ask,
        verify,
        cite,
        search,
        documents,
        view,
        ops,
        widget,
        admin,
        feedback,
        apidocs,
    ):
        app.include_router(module.router)
    # before /static, which would otherwise take these paths
    app.mount(apidocs.ASSETS_URL, StaticFiles(directory=apidocs.assets_dir()), name="apidocs")
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
