"""Limits on what one client and one request may take: a per-client rate limit, a time
budget per request, and security headers on every response.

- Rate limit: a token bucket per client (``CITEQA_RATE_LIMIT_PER_MINUTE``, bursts of
  ``CITEQA_RATE_LIMIT_BURST``), counted in each worker process; over it, 429 with
  ``Retry-After``. The client is the connection's address or, when the connection comes
  from one of ``CITEQA_TRUSTED_PROXIES``, the rightmost ``X-Forwarded-For`` hop that is not
  a trusted proxy (IP addresses only); IPv6 clients count by their /64. Probes and static
  files are not counted. A second ``RateLimit`` limited to some ``paths`` gives them
  buckets of their own on top: ``POST /feedback`` (``CITEQA_FEEDBACK_RATE_PER_MINUTE``).
- Time budget: ``within_budget`` answers 503 when a request's work takes longer than
  ``CITEQA_REQUEST_BUDGET_SECONDS``; the thread doing it finishes on its own, so the
  worker recovers.
- Every response gets ``X-Content-Type-Options: nosniff``; the API documentation pages
  their CSP, which allows nothing from another host.
- Connections: ``server_options`` are uvicorn's for ``citeqa serve``: which proxies it
  believes, and ``DeadlineProtocol``, which closes a connection whose request headers do
  not arrive within ``CITEQA_READ_TIMEOUT_SECONDS``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ipaddress
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from service.config import Settings
from service.errors import BudgetExceededError
from service.server.errors import error_response
from service.server.schemas import ErrorDetail

__all__ = [
    "API_DOC_PAGES",
    "MAX_CLIENTS",
    "DeadlineProtocol",
    "DeadlineProtocols",
    "RateLimit",
    "SecurityHeaders",
    "api_doc_policy",
    "client_key",
    "forwarded_client",
    "server_options",
    "within_budget",
]

T = TypeVar("T")
_UNCOUNTED = ("/healthz", "/readyz", "/static/", "/favicon.ico")
MAX_CLIENTS = 100_000  # about 25 MB of buckets per worker
_PRUNED_PER_REQUEST = 4


def client_key(address: str) -> str:
    """The rate limit's key for an address: IPv4 as is, IPv6 by its /64 (one subscriber's
    prefix: a client owns all of it, so each of its addresses must not count anew)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address  # not an IP (a test client, a Unix socket): itself
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return f"{ipaddress.IPv6Network((ip, 64), strict=False).network_address}/64"
    return str(ip)


def forwarded_client(peer: str, forwarded: str, trusted: frozenset[str]) -> str:
    """The client behind ``peer``: ``X-Forwarded-For`` read from the right, each trusted
    proxy skipped, so the first hop no proxy of ours vouches for. The client writes the
    left of the header, so the left is never believed; a hop that is not an IP address
    ends the walk at the last address a trusted proxy gave."""
    client = peer
    if peer not in trusted:
        return client
    for hop in reversed(forwarded.split(",")):
        try:
            address = str(ipaddress.ip_address(hop.strip()))
        except ValueError:
            break
        client = address
        if address not in trusted:
            break
    return client


class RateLimit:
    """ASGI middleware: a token bucket per client, in a table of at most ``max_clients``.

    The table is ordered by last use: a request moves its client to the end, the least
    recently seen client goes when the table is full, and a few clients idle long enough
    to have refilled their bucket (which is the same as no entry) are dropped from the
    front. Each request does a bounded amount of work, however many clients were seen.
    """

    def __init__(
        self,
        app: ASGIApp,
        settings: Settings,
        max_clients: int = MAX_CLIENTS,
        *,
        per_minute: int | None = None,
        burst: int | None = None,
        paths: frozenset[str] | None = None,
    ) -> None:
        """``per_minute`` and ``burst`` default to ``CITEQA_RATE_LIMIT_*``; with ``paths``
        only requests to those paths are counted (their own buckets, on top of the
        service-wide limit: the feedback log's)."""
        self.app = app
        per_minute = settings.rate_limit_per_minute if per_minute is None else per_minute
        self.rate = per_minute / 60.0
        self.burst = max(1, settings.rate_limit_burst if burst is None else burst)
        self.paths = paths
        self.refilled_after = self.burst / self.rate if self.rate > 0 else 0.0
        self.trusted = frozenset(settings.trusted_proxies)
        self.max_clients = max_clients
        self.buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # (tokens, at)
        self.lock = threading.Lock()

    def client(self, scope: Scope) -> str:
        peer = str((scope.get("client") or ("unknown", 0))[0])
        if peer in self.trusted:
            values = [v for k, v in scope["headers"] if k == b"x-forwarded-for"]
            peer = forwarded_client(peer, b",".join(values).decode("latin-1"), self.trusted)
        return client_key(peer)

    def _forget(self, now: float) -> None:
        """Drop the least recently seen clients over the size, and a few refilled ones."""
        while len(self.buckets) > self.max_clients:
            self.buckets.popitem(last=False)
        for _ in range(_PRUNED_PER_REQUEST):
            oldest = next(iter(self.buckets.values()), None)
            if oldest is None or now - oldest[1] < self.refilled_after:
                return
            self.buckets.popitem(last=False)

    def counts(self, scope: Scope) -> bool:
        """Whether this request is counted (probes and static files never are)."""
        if scope["type"] != "http" or self.rate <= 0 or scope["path"].startswith(_UNCOUNTED):
            return False
        return self.paths is None or scope["path"] in self.paths

    def take(self, client: str) -> float:
        """0 if the request may go now, else the seconds until it may."""
        now = time.monotonic()
        with self.lock:
            tokens, at = self.buckets.pop(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.rate)
            allowed = tokens >= 1
            self.buckets[client] = (tokens - 1 if allowed else tokens, now)
            self._forget(now)
        return 0.0 if allowed else (1 - tokens) / self.rate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.counts(scope):
            await self.app(scope, receive, send)
            return
        wait = self.take(self.client(scope))
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        seconds = max(1, math.ceil(wait))
        where = f" to {scope['path']}" if self.paths is not None else ""
        message = (
            f"too many requests from this client{where}: the limit is {round(self.rate * 60)} "
            f"a minute (bursts of {self.burst}); retry in {seconds} s."
        )
        response = error_response(
            429, [ErrorDetail(field=None, message=message)], {"Retry-After": str(seconds)}
        )
        await response(scope, receive, send)


# The API documentation pages (/docs: Swagger UI, /redoc: ReDoc) load their scripts, styles
# and favicon from this service (``service.server.routes.apidocs``, assets shipped by the
# fastapi-offline package): nothing from another host. Their CSP allows exactly that, plus
# each page's own inline script by its hash; ReDoc's and Swagger UI's styles are injected at
# run time (inline), their icons are data: URLs, and ReDoc searches in a blob: worker.
API_DOC_PAGES = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})
API_DOC_POLICY = (
    "default-src 'none'; script-src 'self'{hashes}; style-src 'self' 'unsafe-inline'; "
    "font-src 'self' data:; img-src 'self' data:; connect-src 'self'; worker-src blob:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors {ancestors}"
)
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


def api_doc_policy(html: bytes, frame_ancestors: str) -> str:
    """The CSP of an API documentation page: this service's assets and its inline scripts."""
    hashes = "".join(
        f" 'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(html)
    )
    return API_DOC_POLICY.format(hashes=hashes, ancestors=frame_ancestors)


class SecurityHeaders:
    """ASGI middleware: ``X-Content-Type-Options: nosniff`` on every response (the CORS
    layer's and the rate limit's too: it runs outermost), and the pages' headers (a CSP,
    ``Referrer-Policy``) on the API documentation pages."""

    def __init__(self, app: ASGIApp, frame_ancestors: str = "'none'") -> None:
        self.app = app
        self.frame_ancestors = frame_ancestors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] in API_DOC_PAGES:
            await self._doc_page(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = _with_nosniff(message.get("headers", []))
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _doc_page(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Hold the page (a few KiB) until its inline scripts can be hashed into its CSP."""
        start: Message | None = None
        body: list[bytes] = []

        async def send_page(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            body.append(message.get("body", b""))
            if message.get("more_body", False) or start is None:
                return
            html = b"".join(body)
            policy = api_doc_policy(html, self.frame_ancestors)
            headers = [(k, v) for k, v in _with_nosniff(start.get("headers", []))]
            headers += [
                (b"content-security-policy", policy.encode()),
                (b"referrer-policy", b"no-referrer"),
            ]
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": html, "more_body": False})

        await self.app(scope, receive, send_page)


def _with_nosniff(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    listed = list(headers)
    if not any(name.lower() == b"x-content-type-options" for name, _ in listed):
        listed.append((b"x-content-type-options", b"nosniff"))
    return listed


# ----------------------------------------------------------------------------- connections


class DeadlineProtocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol with a deadline on a request's headers, and JSON 400s.

    uvicorn times a connection out only between a response and the next request's first
    byte: a client that connects and sends nothing, or half the headers, is kept for ever.
    Here the headers must be complete within ``read_timeout`` seconds of connecting, or of
    the previous response; otherwise the connection is closed. (The body's deadline is
    ``BodySizeLimit``'s.) uvicorn's own 400 for a request that does not parse is the
    service's JSON error shape, with ``nosniff``.
    """

    def __init__(self, *args: Any, read_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.read_timeout = read_timeout
        self.header_deadline: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        self._disarm()
        self.header_deadline = self.loop.call_later(self.read_timeout, self._headers_late)

    def _disarm(self) -> None:
        if self.header_deadline is not None:
            self.header_deadline.cancel()
            self.header_deadline = None

    def _headers_late(self) -> None:
        self.header_deadline = None
        idle = self.cycle is None or self.cycle.response_complete
        if idle and not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        idle = self.cycle is None or self.cycle.response_complete
        if idle and not self.transport.is_closing():
            self._arm()

    def send_400_response(self, msg: str) -> None:
        body = error_response(400, [ErrorDetail(field=None, message=msg)]).body
        head = (
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"
            b"x-content-type-options: nosniff\r\nconnection: close\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n\r\n"
        )
        self.transport.write(head + bytes(body))
        self.transport.close()


@dataclass(frozen=True)
class DeadlineProtocols:
    """Makes a ``DeadlineProtocol`` for each connection (uvicorn's ``http=``); a plain
    value, so it travels to the worker processes."""

    read_timeout: float

    def __call__(self, **kwargs: Any) -> DeadlineProtocol:
        return DeadlineProtocol(read_timeout=self.read_timeout, **kwargs)


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options for ``citeqa serve``: X-Forwarded-For believed only from
    ``CITEQA_TRUSTED_PROXIES`` (uvicorn's default believes any from loopback, which lets a
    local client forge its address in the logs and the rate limit), and the read deadlines."""
    proxies = ",".join(settings.trusted_proxies)
    return {
        "proxy_headers": bool(proxies),
        "forwarded_allow_ips": proxies,
        "http": DeadlineProtocols(settings.read_timeout_seconds),
        "timeout_keep_alive": min(5, math.ceil(settings.read_timeout_seconds)),
    }


async def within_admin_budget(
    request: Request, work: Callable[..., T], *args: Any, **kwargs: Any
) -> T:
    """Run an admin change in the thread pool; 503 if it outlasts the admin budget. The
    change is not undone: its thread goes on, publishes, and every worker serves it."""
    settings: Settings = request.app.state.settings
    budget = settings.admin_budget_seconds
    try:
        return await asyncio.wait_for(run_in_threadpool(work, *args, **kwargs), budget)
    except TimeoutError:
        raise BudgetExceededError(
            f"the change is taking longer than the admin budget of {budget:g} s "
            "(CITEQA_ADMIN_BUDGET_SECONDS); it goes on in the background and is served once "
            "published: GET /readyz names the generation served. Do not send it again."
        ) from None


async def within_budget(request: Request, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``work`` in the thread pool; 503 if it outlasts the request budget."""
    settings: Settings = request.app.state.settings
    try:
        return await asyncio.wait_for(
            run_in_threadpool(work, *args, **kwargs), settings.request_budget_seconds
        )
    except TimeoutError:
        raise BudgetExceededError(
            f"the request took longer than its budget of {settings.request_budget_seconds:g} s; "
            "retry, or ask a shorter question."
        ) from None
