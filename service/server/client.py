"""Where the CLI's questions go: the engine loaded in this process, or a running service.

``citeqa ask``, ``search``, ``verify`` and ``cite`` print the API's JSON bodies (``POST /ask``,
``GET /search``, ``POST /verify``), whichever answers them: a ``Remote`` sends the request to
the service at ``CITEQA_SERVER`` (or ``--server``) and returns its body; a ``Local`` loads
the models once and builds the same body in process. A batch (``--file``) pays for loading
once either way.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Protocol

from service.config import Settings
from service.errors import CiteqaError, InputError

__all__ = ["Backend", "Local", "Remote", "ServerError", "backend"]

Body = dict[str, Any]


class ServerError(CiteqaError):
    """The service at ``--server`` refused a request or could not be reached."""


class Backend(Protocol):
    def ask(self, question: str, top_k: int, filters: Body | None) -> Body: ...
    def search(self, query: str, top_k: int, filters: Body | None) -> Body: ...
    def verify(self, claim: str, top_k: int) -> Body: ...
    def cite(self, quote: str, top_k: int) -> Body: ...


class Local:
    """The engine in this process (loaded on the first request)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._engine: Any = None
        self._verifier: Any = None
        self._citer: Any = None

    @property
    def engine(self) -> Any:
        if self._engine is None:
            from service.engine import Engine

            self._engine = Engine.from_settings(self.settings)
        return self._engine

    def ask(self, question: str, top_k: int, filters: Body | None) -> Body:
        from service.server.schemas import AskResponse

        result = self.engine.ask(question, top_k=top_k, filters=_filters(filters))
        response = AskResponse.from_result(result, self.engine.documents, self.settings.public_url)
        return response.model_dump(mode="json")

    def search(self, query: str, top_k: int, filters: Body | None) -> Body:
        from service.server.schemas import PassageOut

        passages = self.engine.search(query, top_k=top_k, filters=_filters(filters))
        documents, base = self.engine.documents, self.settings.public_url
        hits = [
            PassageOut.from_passage(p, documents, base).model_dump(mode="json") for p in passages
        ]
        return {"query": query, "hits": hits}

    def verify(self, claim: str, top_k: int) -> Body:
        from service.server.schemas import VerifyResponse
        from service.verify.verifier import Verifier

        if self._verifier is None:
            self._verifier = Verifier(self.engine)
        check = self._verifier.verify(claim, top_k=top_k)
        return VerifyResponse.from_check(check, self.settings.public_url).model_dump(mode="json")

    def cite(self, quote: str, top_k: int) -> Body:
        from service.cite.matcher import Citer
        from service.server.schemas import CiteResponse

        if self._citer is None:
            self._citer = Citer(self.engine)
        result = self._citer.cite(quote, top_k=top_k)
        response = CiteResponse.from_result(result, self.engine.documents, self.settings.public_url)
        return response.model_dump(mode="json")


def _filters(filters: Body | None) -> Any:
    if not filters:
        return None
    from service.server.schemas import FiltersIn

    return FiltersIn(**filters).to_filters()


class Remote:
    """A running service: each call is one HTTP request to ``base``."""

    def __init__(self, base: str, timeout: float = 60.0) -> None:
        self.base = base.rstrip("/")
        self.timeout = timeout

    def ask(self, question: str, top_k: int, filters: Body | None) -> Body:
        payload: Body = {"question": question, "top_k": top_k}
        if filters:
            payload["filters"] = filters
        return self._send("POST", "/ask", payload)

    def search(self, query: str, top_k: int, filters: Body | None) -> Body:
        params: list[tuple[str, Any]] = [("q", query), ("k", top_k)]
        filters = filters or {}
        params += [("doc_id", d) for d in filters.get("doc_ids") or ()]
        params += [("language", lang) for lang in filters.get("languages") or ()]
        for key in ("published_from", "published_to"):
            if filters.get(key):
                params.append((key, filters[key]))
        hits = self._send("GET", "/search?" + urllib.parse.urlencode(params), None)
        return {"query": query, "hits": hits}

    def verify(self, claim: str, top_k: int) -> Body:
        return self._send("POST", "/verify", {"claim": claim, "top_k": top_k})

    def cite(self, quote: str, top_k: int) -> Body:
        return self._send("POST", "/cite", {"quote": quote, "top_k": top_k})

    def _send(self, method: str, path: str, payload: Body | None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(
            self.base + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise _refused(error) from error
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise ServerError(
                f"cannot reach the citeqa service at {self.base} ({reason}); start it with "
                "`citeqa serve`, or leave out --server / CITEQA_SERVER to answer locally"
            ) from error


def _refused(error: urllib.error.HTTPError) -> CiteqaError:
    """The service's JSON error as the error the local engine would have raised."""
    try:
        body = json.loads(error.read())["error"]
    except (ValueError, KeyError, TypeError):
        return ServerError(f"the service answered HTTP {error.code}")
    if error.code == 422 and body.get("field"):
        return InputError(str(body["field"]), str(body.get("message", "")))
    return ServerError(f"the service answered HTTP {error.code}: {body.get('message', '')}")


def backend(settings: Settings) -> Backend:
    """A ``Remote`` when a server is configured, else a ``Local``."""
    return Remote(settings.server) if settings.server else Local(settings)
