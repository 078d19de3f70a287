"""The load that ``citeqa load`` sends: a locust user per concurrent client.

Run by ``service.lab.load`` as ``locust -f service/lab/locustfile.py --headless ...``; each user
sends its next request as soon as the last one answered (a closed loop, so the user count
is the number of concurrent clients). Questions carry a request number so no cache answers.

With ``--invalid-share S`` a share S of the requests are hostile or malformed, each with
the one status the service must answer (422, 413, 404, 401). Any other status, a 5xx, a
timeout or a dropped connection is counted as a failure, and so is a 200 whose citation
does not slice out of its document.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from locust import FastHttpUser, events, task
from locust.argument_parser import LocustArgumentParser

_counter = itertools.count()


@events.init_command_line_parser.add_listener
def _arguments(parser: LocustArgumentParser) -> None:
    parser.add_argument("--questions", required=True, help="questions.jsonl to ask from")
    parser.add_argument("--claims", default="", help="claims.jsonl for POST /verify (optional)")
    parser.add_argument("--invalid-share", type=float, default=0.0, help="share of bad requests")
    parser.add_argument("--check-share", type=float, default=0.05, help="citations checked")
    parser.add_argument("--admin-key-set", action="store_true", help="admin routes are on")


def _read(path: str, field: str) -> list[str]:
    if not path:
        return []
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [json.loads(line)[field] for line in lines if line.strip()]


_HOSTILE = [
    "\u202eWho organized the NEAR forum?\u202c",  # right-to-left override
    "中日韩\u200d合作\u200b秘书处在哪里？",  # zero-width joiner and space
    "When\x00 was the summit held?",  # NUL
    "秘" * 1999,  # long, no spaces
]


class Client(FastHttpUser):
    """One concurrent client of the service."""

    network_timeout = 30.0
    connection_timeout = 10.0

    def on_start(self) -> None:
        options = self.environment.parsed_options
        self.questions = _read(options.questions, "question")
        self.claims = _read(options.claims, "claim")
        self.invalid_share = options.invalid_share
        self.check_share = options.check_share
        self.admin_status = 401 if options.admin_key_set else 404
        self.rng = random.Random(next(_counter))

    def _expect(self, method: str, path: str, status: int, name: str, **kwargs: Any) -> Any:
        with self.client.request(
            method, path, name=name, catch_response=True, **kwargs
        ) as response:
            if response.status_code != status:
                response.failure(f"{method} {path}: {response.status_code}, expected {status}")
                return None
            response.success()
            return response

    def _check_citation(self, answer: dict[str, Any] | None) -> None:
        """The cited quote must be the document's text at the cited offsets."""
        if not answer:
            return
        citation = answer["citation"]
        start, end = citation["char_start"], citation["char_end"]
        response = self._expect(
            "GET",
            f"/documents/{citation['doc_id']}?start={start}&end={end}",
            200,
            "GET /documents/{id}?start&end",
        )
        if response is not None and response.json()["slice"]["text"] != citation["quote"]:
            events.request.fire(
                request_type="CHECK",
                name="citation slices out of its document",
                response_time=0,
                response_length=0,
                exception=AssertionError(f"mismatched citation {citation}"),
            )

    @task
    def request(self) -> None:
        if self.rng.random() < self.invalid_share:
            self.rng.choice(self._invalid)(self)
            return
        number = next(_counter)
        if self.claims and number % 10 == 0:
            claim = self.claims[number % len(self.claims)]
            self._expect("POST", "/verify", 200, "POST /verify", json={"claim": claim})
            return
        question = f"{self.questions[number % len(self.questions)]} (#{number})"
        response = self._expect(
            "POST", "/ask", 200, "POST /ask", json={"question": question, "top_k": 5}
        )
        if response is not None and self.rng.random() < self.check_share:
            self._check_citation(response.json()["answer"])

    # -- hostile and malformed requests, each with the status the service must give ----

    def _empty(self) -> None:
        self._expect("POST", "/ask", 422, "bad: empty question", json={"question": ""})

    def _too_long(self) -> None:
        body = {"question": "x " * 1500}
        self._expect("POST", "/ask", 422, "bad: question too long", json=body)

    def _not_json(self) -> None:
        headers = {"Content-Type": "application/json"}
        self._expect("POST", "/ask", 422, "bad: not JSON", data="{not json", headers=headers)

    def _bad_top_k(self) -> None:
        body = {"question": "Who?", "top_k": 0}
        self._expect("POST", "/ask", 422, "bad: top_k 0", json=body)

    def _unknown_field(self) -> None:
        body = {"question": "Who?", "sudo": True}
        self._expect("POST", "/ask", 422, "bad: unknown field", json=body)

    def _too_big(self) -> None:
        body = json.dumps({"question": "q", "filters": {"doc_ids": ["a" * 70_000]}})
        headers = {"Content-Type": "application/json"}
        self._expect("POST", "/ask", 413, "bad: body over 64 KiB", data=body, headers=headers)

    def _unknown_document(self) -> None:
        self._expect("GET", "/documents/no-such-document", 404, "bad: unknown document")

    def _admin_without_key(self) -> None:
        self._expect("POST", "/admin/rebuild", self.admin_status, "bad: admin without key")

    def _hostile_text(self) -> None:
        question = self.rng.choice(_HOSTILE)
        response = self._expect(
            "POST", "/ask", 200, "hostile: unicode question", json={"question": question}
        )
        if response is not None:
            self._check_citation(response.json()["answer"])

    _invalid: ClassVar[tuple[Callable[[Client], None], ...]] = (
        _empty,
        _too_long,
        _not_json,
        _bad_top_k,
        _unknown_field,
        _too_big,
        _unknown_document,
        _admin_without_key,
        _hostile_text,
    )
