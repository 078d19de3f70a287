"""Every failure becomes one JSON shape, ``ErrorBody``: the field to fix and what is allowed.

InputError                  422  (the engine's checks: empty question, top_k, language)
 └── UnknownDocumentError   404  (a doc_id in a path or in filters.doc_ids)
      └── DocumentGoneError 410  (a document removed from the corpus: its citations)
other CiteqaError           503  (the index cannot serve, or BudgetExceededError)
RequestValidationError      422  (pydantic: types, ranges, dates, JSON that does not parse)
HTTPException               its status (unknown route, wrong method, not ready, admin key)
admin path without the key  401  (``BodySizeLimit``, before the body is read; 404: admin off)
body over the limit         413  (``BodySizeLimit``, before the app reads it)
body too slow to arrive     408  (``BodySizeLimit``, after CITEQA_READ_TIMEOUT_SECONDS)
too many requests           429  (``service.server.limits.RateLimit``, with Retry-After)
anything else               500  (a bug; the message says so, never a stack trace)
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.config import Settings
from service.errors import CiteqaError, DocumentGoneError, InputError, UnknownDocumentError
from service.server.deps import admin_refusal, is_admin_path
from service.server.schemas import ErrorBody, ErrorDetail

__all__ = [
    "MAX_BODY_BYTES",
    "BodySizeLimit",
    "ErrorResponse",
    "error_response",
    "install_error_handlers",
    "responses",
]

MAX_BODY_BYTES = 64 * 1024
_ASK_EXAMPLE = '{"question": "..."}'
logger = logging.getLogger(__name__)


class ErrorResponse(JSONResponse):
    """JSON that survives text the client sent us, lone surrogates included."""

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:
            return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def error_response(
    status_code: int,
    errors: Sequence[ErrorDetail],
    headers: Mapping[str, str] | None = None,
) -> ErrorResponse:
    """The one error shape: the first problem under ``error``, all of them under ``errors``."""
    body = ErrorBody(error=errors[0], errors=list(errors))
    return ErrorResponse(
        body.model_dump(mode="json"), status_code=status_code, headers=dict(headers or {})
    )


def responses(*codes: int, html: bool = False) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route can answer with.

    An HTML route's errors are still JSON: FastAPI would file a ``model`` under the route's
    own media type, so those entries point at the schema explicitly.
    """
    described = {
        401: "The admin key is missing or wrong.",
        404: "No document with that id (or, on /admin, the admin routes are off).",
        410: "The document was removed from the corpus; its citations no longer resolve.",
        429: "Too many requests from this client; `Retry-After` says when to retry.",
        413: f"The body is over {MAX_BODY_BYTES // 1024} KiB (8 MiB on /admin).",
        422: "A field is missing, malformed or out of range; `error.field` names it.",
        503: "The index is not loaded yet, or the request outlasted its time budget.",
    }
    if html:
        schema = {"$ref": "#/components/schemas/ErrorBody"}
        content = {"application/json": {"schema": schema}}
        return {code: {"description": described[code], "content": content} for code in codes}
    return {code: {"model": ErrorBody, "description": described[code]} for code in codes}


# ----------------------------------------------------------------------------- validation


def _field(loc: Sequence[str | int]) -> str | None:
    """``("body", "filters", "doc_ids", 0)`` -> ``filters.doc_ids[0]``; ``("query", "k")`` -> k."""
    parts = list(loc)
    where = str(parts.pop(0)) if parts and parts[0] in {"body", "query", "path", "header"} else None
    name = ""
    for part in parts:
        name += f"[{part}]" if isinstance(part, int) else f"{'.' if name else ''}{part}"
    return name or where


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:60] + "…"


def _validation_detail(error: dict[str, Any]) -> ErrorDetail:
    kind = error.get("type", "")
    loc = tuple(error.get("loc", ()))
    value = error.get("input")
    msg = str(error.get("msg", "is invalid"))
    if kind == "json_invalid":
        reason = (error.get("ctx") or {}).get("error", "it does not parse")
        position = loc[1] if len(loc) > 1 else "?"
        return ErrorDetail(
            field="body",
            message=(
                f"the body is not valid JSON ({reason} at character {position}); send a JSON "
                f"object such as {_ASK_EXAMPLE} with Content-Type: application/json."
            ),
        )
    field = _field(loc)
    if loc == ("body",):
        if kind == "missing":
            message = f"the request has no body; send a JSON object such as {_ASK_EXAMPLE}."
        elif isinstance(value, bytes):
            message = (
                "the body was not read as JSON; send a JSON object such as "
                f"{_ASK_EXAMPLE} with Content-Type: application/json."
            )
        elif kind in {"model_attributes_type", "model_type", "dict_type"}:
            message = f"the body must be a JSON object such as {_ASK_EXAMPLE}."
        else:
            message = f"the body is invalid: {msg}."
        return ErrorDetail(field="body", message=message)
    if kind == "missing":
        message = f"{field} is required."
    elif kind == "extra_forbidden":
        message = f"{field} is not a field of this request; /docs lists the fields allowed."
    elif msg.startswith("Value error, "):
        message = f"{field}: {msg.removeprefix('Value error, ')}."
    elif msg.startswith("Input should"):
        message = f"{field} should{msg.removeprefix('Input should')}; got {_shown(value)}."
    else:
        message = f"{field}: {msg}."
    return ErrorDetail(field=field, message=message)


# ----------------------------------------------------------------------------- handlers


async def _on_validation(request: Request, exc: RequestValidationError) -> ErrorResponse:
    return error_response(422, [_validation_detail(dict(e)) for e in exc.errors()])


async def _on_unknown_document(request: Request, exc: UnknownDocumentError) -> ErrorResponse:
    status = 410 if isinstance(exc, DocumentGoneError) else 404
    return error_response(status, [ErrorDetail(field=exc.field, message=exc.message)])


async def _on_input(request: Request, exc: InputError) -> ErrorResponse:
    return error_response(422, [ErrorDetail(field=exc.field, message=exc.message)])


async def _on_citeqa(request: Request, exc: CiteqaError) -> ErrorResponse:
    logger.error("cannot serve %s: %s", request.url.path, exc)
    return error_response(503, [ErrorDetail(field=None, message=str(exc))])


async def _on_http(request: Request, exc: StarletteHTTPException) -> ErrorResponse:
    message = str(exc.detail)
    field = None
    if exc.status_code == 404 and message == "Not Found":
        path = request.url.path
        hint = f"; did you mean {path.rstrip('/')}?" if len(path) > 1 and path.endswith("/") else ""
        message = f"no route {request.method} {path}{hint}; /docs lists the routes."
    elif exc.status_code == 400 and message == "There was an error parsing the body":
        field = "body"
        message = (
            "the body could not be parsed (JSON nested too deeply, or not UTF-8); send a JSON "
            f"object such as {_ASK_EXAMPLE} with Content-Type: application/json."
        )
    elif exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        message = f"{request.method} is not allowed on {request.url.path}; use {allowed}."
    return error_response(exc.status_code, [ErrorDetail(field=field, message=message)], exc.headers)


async def _on_bug(request: Request, exc: Exception) -> ErrorResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    message = f"internal error ({type(exc).__name__}); this is a bug in citeqa, please report it."
    return error_response(500, [ErrorDetail(field=None, message=message)])


def install_error_handlers(app: FastAPI) -> None:
    """Route every exception to the one JSON error shape."""
    # Starlette picks the handler of the nearest class in the MRO, so order does not matter.
    app.exception_handler(RequestValidationError)(_on_validation)
    app.exception_handler(UnknownDocumentError)(_on_unknown_document)
    app.exception_handler(InputError)(_on_input)
    app.exception_handler(CiteqaError)(_on_citeqa)
    app.exception_handler(StarletteHTTPException)(_on_http)
    app.exception_handler(Exception)(_on_bug)


# ----------------------------------------------------------------------------- body limit


class _TooLarge(Exception):
    """The body grew over the limit while it was read."""


class BodySizeLimit:
    """Admin requests prove the key, bodies stay under the limit and arrive in time, all
    before the app reads a byte.

    - An admin path (``/admin`` and under it) without the key is refused at once (401, or
      404 while the admin routes are off), its body never read.
    - A declared ``Content-Length`` over the limit (``max_bytes``; ``admin_max_bytes`` on
      the admin paths) is refused without reading. Otherwise the body is read here,
      counting bytes as they stream in (chunked bodies declare no length), and replayed
      to the app once complete, so no route ever sees more than the limit.
    - A body that takes longer than ``read_timeout`` seconds to arrive is answered 408 and
      its connection closed (a client that stops sending holds nothing for long).
    Every refusal closes the connection: the rest of the body is not worth reading.
    """

    def __init__(
        self,
        app: ASGIApp,
        settings: Settings,
        max_bytes: int = MAX_BODY_BYTES,
        admin_max_bytes: int | None = None,
    ) -> None:
        self.app = app
        self.settings = settings
        self.max_bytes = max_bytes
        self.admin_max_bytes = admin_max_bytes or max_bytes
        self.read_timeout = settings.read_timeout_seconds

    def _too_large(self, size: str, limit: int, admin: bool) -> ErrorResponse:
        shorter = "a shorter document" if admin else "a shorter question or fewer filters"
        message = (
            f"the body is {size} bytes; the limit is {limit} bytes "
            f"({limit // 1024} KiB). Send {shorter}."
        )
        return _closing(413, ErrorDetail(field="body", message=message))

    def _refusal(self, scope: Scope, admin: bool) -> ErrorResponse | None:
        """The answer to give before reading the body, if any."""
        headers = Headers(scope=scope)
        if admin:
            refused = admin_refusal(self.settings, headers)
            if refused is not None:
                detail = ErrorDetail(field=None, message=str(refused.detail))
                return _closing(refused.status_code, detail, refused.headers)
        declared = headers.get("content-length")
        if declared is None:
            return None
        length = int(declared) if declared.isascii() and declared.isdigit() else -1
        if length < 0:
            detail = ErrorDetail(field="Content-Length", message="Content-Length is not a size.")
            return _closing(400, detail)
        limit = self.admin_max_bytes if admin else self.max_bytes
        return self._too_large(str(length), limit, admin) if length > limit else None

    async def _read(self, receive: Receive, limit: int) -> bytes | None:
        """The whole body (None if the client went away); ``_TooLarge`` over ``limit``."""
        parts: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _TooLarge
            parts.append(chunk)
            more = message.get("more_body", False)
        return b"".join(parts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        admin = is_admin_path(scope["path"])
        refusal = self._refusal(scope, admin)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        limit = self.admin_max_bytes if admin else self.max_bytes
        try:
            async with asyncio.timeout(self.read_timeout):
                read = await self._read(receive, limit)
        except _TooLarge:
            await self._too_large(f"over {limit}", limit, admin)(scope, receive, send)
            return
        except TimeoutError:
            message = (
                f"the request's body did not arrive within {self.read_timeout:g} s; "
                "send it whole, without pauses."
            )
            await _closing(408, ErrorDetail(field="body", message=message))(scope, receive, send)
            return
        if read is None:
            return  # the client went away; nobody is waiting for an answer
        body: Message | None = {"type": "http.request", "body": read, "more_body": False}

        async def replay() -> Message:
            nonlocal body
            if body is not None:
                message, body = body, None
                return message
            return await receive()

        await self.app(scope, replay, send)


def _closing(
    status: int, detail: ErrorDetail, headers: Mapping[str, str] | None = None
) -> ErrorResponse:
    """An error answered before the body was read: the connection closes after it."""
    return error_response(status, [detail], {**(headers or {}), "Connection": "close"})
