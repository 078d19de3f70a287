"""Limits on what one client and one request may take: a per-client rate limit, a time
budget per request, and security headers on every response.

- Rate limit: a token bucket per client address (``CITEQA_RATE_LIMIT_PER_MINUTE``, bursts
  of ``CITEQA_RATE_LIMIT_BURST``); over it, 429 with ``Retry-After``. The address is the
  connection's, or the first ``X-Forwarded-For`` hop when the connection comes from one of
  ``CITEQA_TRUSTED_PROXIES``. Probes and static files are not counted.
- Time budget: ``within_budget`` answers 503 when a request's work takes longer than
  ``CITEQA_REQUEST_BUDGET_SECONDS``; the thread doing it finishes on its own, so the
  worker recovers.
- Every response gets ``X-Content-Type-Options: nosniff``.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.config import Settings
from service.errors import BudgetExceededError
from service.server.errors import error_response
from service.server.schemas import ErrorDetail

__all__ = ["RateLimit", "SecurityHeaders", "within_budget"]

T = TypeVar("T")
_UNCOUNTED = ("/healthz", "/readyz", "/static/", "/favicon.ico")


class RateLimit:
    """ASGI middleware: a token bucket per client."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.rate = settings.rate_limit_per_minute / 60.0
        self.burst = max(1, settings.rate_limit_burst)
        self.trusted = frozenset(settings.trusted_proxies)
        self.buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, at)
        self.lock = threading.Lock()

    def client(self, scope: Scope) -> str:
        host = (scope.get("client") or ("unknown", 0))[0]
        if host in self.trusted:
            forwarded = dict(scope["headers"]).get(b"x-forwarded-for", b"").decode("latin-1")
            first = forwarded.split(",")[0].strip()
            if first:
                return first
        return str(host)

    def take(self, client: str) -> float:
        """0 if the request may go now, else the seconds until it may."""
        now = time.monotonic()
        with self.lock:
            tokens, at = self.buckets.get(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.rate)
            if tokens >= 1:
                self.buckets[client] = (tokens - 1, now)
                if len(self.buckets) > 100_000:  # forget idle clients
                    self.buckets = {c: v for c, v in self.buckets.items() if now - v[1] < 600}
                return 0.0
            self.buckets[client] = (tokens, now)
            return (1 - tokens) / self.rate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.rate <= 0 or scope["path"].startswith(_UNCOUNTED):
            await self.app(scope, receive, send)
            return
        wait = self.take(self.client(scope))
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        seconds = max(1, math.ceil(wait))
        message = (
            f"too many requests from this client: the limit is {round(self.rate * 60)} a "
            f"minute (bursts of {self.burst}); retry in {seconds} s."
        )
        response = error_response(
            429, [ErrorDetail(field=None, message=message)], {"Retry-After": str(seconds)}
        )
        await response(scope, receive, send)


class SecurityHeaders:
    """ASGI middleware: ``X-Content-Type-Options: nosniff`` on every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"x-content-type-options" for name, _ in headers):
                    headers.append((b"x-content-type-options", b"nosniff"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


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
