"""What an attacker or a careless client can do to the service's limits: forge its address,
flood the rate limiter's table, make a worker buffer bodies before it is authenticated,
hold connections open, and get responses without the pages' headers. The fast tests call
the app in the process; the others speak raw HTTP to a real ``citeqa serve``."""

from __future__ import annotations

import asyncio
import json
import random
import re
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from service.config import Settings
from service.index import CorpusIndex
from service.lab.processes import Server, serve
from service.server import limits
from service.server.app import create_app
from service.server.limits import RateLimit, client_key, forwarded_client, server_options

KEY = "hardening-admin-key"
READ_TIMEOUT = 1.5
BURST = 20


@pytest.fixture(scope="module")
def client(settings: Settings, corpus_index: CorpusIndex) -> Iterator[TestClient]:
    admin = settings.model_copy(update={"admin_key": SecretStr(KEY)})
    with TestClient(create_app(admin)) as client:
        yield client


# ----------------------------------------------------------------------------- addresses


def test_forwarded_for_is_read_from_the_right_past_trusted_proxies_only() -> None:
    trusted = frozenset({"10.0.0.5", "10.0.0.6"})
    # the client writes the left; our proxies append on the right
    assert forwarded_client("10.0.0.5", "1.2.3.4, 198.51.100.7", trusted) == "198.51.100.7"
    assert forwarded_client("10.0.0.5", "1.2.3.4, 198.51.100.7, 10.0.0.6", trusted) == (
        "198.51.100.7"
    )
    assert forwarded_client("10.0.0.5", "10.0.0.6", trusted) == "10.0.0.6"
    # only IP addresses: a forged word stops the walk at the last proxy that spoke
    assert forwarded_client("10.0.0.5", "evil, 10.0.0.6", trusted) == "10.0.0.6"
    assert forwarded_client("10.0.0.5", "198.51.100.7:80", trusted) == "10.0.0.5"
    assert forwarded_client("10.0.0.5", "", trusted) == "10.0.0.5"
    # from anyone else the header means nothing
    assert forwarded_client("203.0.113.1", "1.2.3.4", trusted) == "203.0.113.1"


def test_ipv6_clients_count_by_their_64() -> None:
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:ffff::9")
    assert client_key("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert client_key("192.0.2.1") == "192.0.2.1"
    assert client_key("testclient") == "testclient"


def test_uvicorn_believes_forwarded_for_only_from_trusted_proxies() -> None:
    assert server_options(Settings())["proxy_headers"] is False
    proxied = server_options(Settings(trusted_proxies=("10.0.0.5", "::1")))
    assert proxied["proxy_headers"] is True and proxied["forwarded_allow_ips"] == "10.0.0.5,::1"


def test_a_proxied_client_cannot_pick_its_bucket_by_the_left_of_the_header(
    settings: Settings, corpus_index: CorpusIndex
) -> None:
    trusting = settings.model_copy(
        update={
            "rate_limit_per_minute": 60,
            "rate_limit_burst": 3,
            "trusted_proxies": ("testclient",),
        }
    )
    with TestClient(create_app(trusting)) as proxied:
        forged = [
            proxied.get("/documents", headers={"X-Forwarded-For": f"203.0.113.{n}, 10.0.0.1"})
            for n in range(5)
        ]
        assert [r.status_code for r in forged] == [200, 200, 200, 429, 429]
        other = proxied.get("/documents", headers={"X-Forwarded-For": "10.0.0.2"})
        assert other.status_code == 200  # another client behind the proxy has its own bucket


# ----------------------------------------------------------------------------- the table


def test_take_stays_fast_and_the_table_bounded_after_100000_clients() -> None:
    limiter = RateLimit(lambda *_: None, Settings(rate_limit_per_minute=1200))  # type: ignore[arg-type]
    for n in range(100_001):
        limiter.take(f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}")
    started = time.perf_counter()
    for n in range(200):
        limiter.take(f"11.0.{n >> 8}.{n & 255}")
    per_take = (time.perf_counter() - started) / 200
    assert per_take < 0.0005, f"{per_take * 1e6:.0f} µs a take"
    assert len(limiter.buckets) <= limits.MAX_CLIENTS


def test_idle_clients_leave_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(limits.time, "monotonic", lambda: now[0])
    limiter = RateLimit(lambda *_: None, Settings(rate_limit_per_minute=60, rate_limit_burst=5))  # type: ignore[arg-type]
    for n in range(50):
        limiter.take(f"192.0.2.{n}")
    now[0] += 6  # every bucket has refilled: an entry is the same as none
    for _ in range(20):
        limiter.take("198.51.100.1")
    assert len(limiter.buckets) == 1


def test_the_default_limit_lets_a_fast_honest_client_through(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1000.0]
    monkeypatch.setattr(limits.time, "monotonic", lambda: now[0])
    limiter = RateLimit(lambda *_: None, Settings())  # type: ignore[arg-type]
    waits = []
    for _ in range(150 * 10):  # 150 requests a second for 10 s
        waits.append(limiter.take("192.0.2.1"))
        now[0] += 1 / 150
    assert max(waits) == 0


# ----------------------------------------------------------------------------- bodies


def _call(app: Any, method: str, path: str, headers: dict[str, str]) -> tuple[int, dict]:
    """Call the ASGI app with a body that must never be read; the status and the JSON."""
    sent: list[dict] = []

    async def receive() -> dict:
        raise AssertionError("the body was read")

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("192.0.2.1", 1234),
        "server": ("testserver", 80),
        "state": {},
    }
    asyncio.run(app(scope, receive, send))
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], json.loads(body)


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer wrong-key-wrong-key"}, 401),
        ({"Content-Type": "application/json", "Content-Length": "8000000"}, 401),
    ],
)
def test_admin_key_is_checked_before_the_body_is_read(
    client: TestClient, headers: dict[str, str], status: int
) -> None:
    for path in ("/admin/documents", "/admin/rebuild"):
        code, body = _call(client.app, "POST", path, headers)
        assert code == status and "admin key" in body["error"]["message"]


def test_admin_routes_are_matched_exactly(client: TestClient) -> None:
    # /adminX is no admin route: the public limit (64 KiB) applies, not 8 MiB
    response = client.post("/adminX", content=b"x" * 100_000)
    assert response.status_code == 413
    assert client.post("/adminX").status_code == 404


def test_an_admin_document_over_the_limit_is_refused_as_a_document(client: TestClient) -> None:
    headers = {"Authorization": f"Bearer {KEY}", "Content-Length": str(9 * 1024 * 1024)}
    code, body = _call(client.app, "POST", "/admin/documents", headers)
    assert code == 413
    message = body["error"]["message"]
    assert "document" in message and "question" not in message


# ----------------------------------------------------------------------------- headers


def test_a_trailing_slash_is_never_redirected_to_the_host_header(client: TestClient) -> None:
    response = client.get("/documents/", headers={"Host": "evil.example"}, follow_redirects=False)
    assert "location" not in response.headers
    assert response.status_code == 404
    assert "/documents?" in response.json()["error"]["message"]


def test_refused_cors_preflight_is_json_with_nosniff(client: TestClient) -> None:
    response = client.options(
        "/ask",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert response.status_code == 400
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "refused" in response.json()["error"]["message"]


def _sources(policy: str, directive: str) -> list[str]:
    for part in policy.split(";"):
        name, *values = part.split()
        if name == directive:
            return values
    return []


def _allowed(url: str, sources: list[str]) -> bool:
    if url.startswith("/") and not url.startswith("//"):  # this service
        return "'self'" in sources
    return any(url.startswith(source) for source in sources if source.startswith("https://"))


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/docs/oauth2-redirect"])
def test_api_doc_pages_have_a_policy_that_allows_what_they_load(
    client: TestClient, path: str
) -> None:
    response = client.get(path)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    page = response.text
    scripts = _sources(policy, "script-src")
    for url in re.findall(r'<script src="([^"]+)"', page):
        assert _allowed(url, scripts), url
    inline = re.findall(r"<script>(.*?)</script>", page, re.DOTALL)
    assert len([s for s in scripts if s.startswith("'sha256-")]) == len(inline)
    assert "'unsafe-inline'" not in scripts
    for url in re.findall(r'<link[^>]+href="([^"]+)"', page):
        kind = "img-src" if "favicon" in url else "style-src"
        assert _allowed(url, _sources(policy, kind)), url
    assert not [s for s in scripts + _sources(policy, "style-src") if s.startswith("https:")]


# ----------------------------------------------------------------------------- a real server


@pytest.fixture(scope="module")
def server(settings: Settings, corpus_index: CorpusIndex) -> Iterator[Server]:
    """``citeqa serve`` with a tight limit (1 a minute, bursts of 20) and short deadlines.
    Only the spoofing test connects from 127.0.0.1; the others from 127.0.0.2."""
    env = {
        "CITEQA_ADMIN_KEY": KEY,
        "CITEQA_RATE_LIMIT_PER_MINUTE": "1",
        "CITEQA_RATE_LIMIT_BURST": str(BURST),
        "CITEQA_READ_TIMEOUT_SECONDS": str(READ_TIMEOUT),
    }
    with serve(settings, env=env) as running:
        yield running


def _passed(server: Server, local: str, spoof: bool) -> int:
    transport = httpx.HTTPTransport(local_address=local)
    with httpx.Client(transport=transport, base_url=server.url, timeout=30) as http:
        passed = 0
        for _ in range(200):
            forged = ".".join(str(random.randint(1, 254)) for _ in range(4))
            headers = {"X-Forwarded-For": forged} if spoof else {}
            passed += http.get("/documents", headers=headers).status_code == 200
    return passed


def test_a_forged_forwarded_for_changes_nothing(server: Server) -> None:
    # from loopback, which uvicorn's default believed: each forged address had a bucket
    assert _passed(server, "127.0.0.1", spoof=True) == _passed(server, "127.0.0.3", spoof=False)
    assert _passed(server, "127.0.0.4", spoof=False) == BURST


def _exchange(server: Server, data: bytes, wait: float = 10.0) -> tuple[bytes, float]:
    """Send ``data`` from 127.0.0.2 and read until the server closes: what came, and when."""
    with socket.create_connection(
        ("127.0.0.1", server.port), timeout=wait, source_address=("127.0.0.2", 0)
    ) as raw:
        started = time.monotonic()
        if data:
            raw.sendall(data)
        received = b""
        try:
            while chunk := raw.recv(65536):
                received += chunk
        except TimeoutError:
            return received + b"<still open>", time.monotonic() - started
        return received, time.monotonic() - started


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"GET /documents HTTP/1.1\r\nHost: x\r\n",
        b"POST /ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100\r\n\r\n" + b'{"question": "wh',
    ],
    ids=["no bytes", "partial headers", "partial body"],
)
def test_a_request_that_never_completes_is_closed(server: Server, data: bytes) -> None:
    received, seconds = _exchange(server, data)
    assert not received.endswith(b"<still open>")
    assert READ_TIMEOUT - 0.2 < seconds < READ_TIMEOUT + 3
    if b"Content-Length" in data:
        assert received.startswith(b"HTTP/1.1 408")


def test_an_idle_kept_alive_connection_with_half_a_request_is_closed(server: Server) -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    received, seconds = _exchange(server, request + b"GET /healthz HTTP/1.1\r\n")
    assert received.startswith(b"HTTP/1.1 200") and not received.endswith(b"<still open>")
    assert seconds < READ_TIMEOUT + 3


def test_an_unauthenticated_admin_body_is_refused_unread(server: Server) -> None:
    head = b"POST /admin/documents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    received, seconds = _exchange(server, head + b"Content-Length: 8000000\r\n\r\n")
    assert received.startswith(b"HTTP/1.1 401")
    assert seconds < 1.0  # answered at once, not after waiting for 8 MB


def test_an_unparsable_request_gets_json_with_nosniff(server: Server) -> None:
    received, _ = _exchange(server, b"NOT HTTP AT ALL\r\n\r\n")
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert b"x-content-type-options: nosniff" in head.lower()
    assert json.loads(body)["error"]["message"]
