"""Bylines and datelines: "Author: GONG Qian", "Source: 科技日报 | 2024-06-12". A field
answers a question in other words ("Who wrote ...?")."""

from __future__ import annotations

import re

from service.text.tokenize import content_terms

__all__ = ["RELATED", "asked_field", "byline_fields"]

# Words a news page's byline and dateline use for what questions ask in other words: "Who
# wrote ...?" is stated by "Author: ...", "When was it published?" by "Release time: ...".
_RELATED_WORDS = (
    ("write", "wrote", "written", "writer", "author", "authors", "byline"),
    # "Source: X | 2024-06-12" dates a page, so "source" answers "when was it published"
    ("publish", "published", "release", "released", "post", "posted", "date", "time", "source"),
    ("edit", "edited", "editor"),
    ("photo", "photograph", "photographed", "picture", "image", "credit", "credited", "courtesy"),
    ("source", "newspaper", "outlet", "publication"),
)


def _related_terms() -> dict[str, frozenset[str]]:
    related: dict[str, frozenset[str]] = {}
    for group in _RELATED_WORDS:
        terms = frozenset().union(*(content_terms(word) for word in group))
        for term in terms:
            related[term] = related.get(term, frozenset()) | terms
    return related


# Byline and dateline fields: "Author: GONG Qian", "Source: 科技日报 | 2024-06-12",
# "Editor in charge: [Liu Xian]", "Photo by Liu Xu", "(PHOTO: BFSU)", "Author Liu Xu".
_FIELD_RE = re.compile(
    r"(?:^|(?<=[|｜(（\s]))(?P<key>[A-Za-z][A-Za-z ]{1,24}?|来源|來源|作者|编辑|編輯|责任编辑|"
    r"責任編輯|记者|記者|摄影|攝影)\s*[:：]\s*\[?"
    r"(?P<value>(?:[^|｜\[\]()（）\n:：]|(?<=\d)[:：](?=\d))+?)\]?\s*"
    r"(?=$|[|｜)）]|\s+[A-Z][a-z]+(?: [a-z]+)*\s*[:：])"
    r"|(?P<bykey>Photo|Photos|Photograph|Text|Story|Reported|Written|Edited)\s+by\s+"
    r"(?P<byvalue>[^|｜\n]+?)\s*$"
    r"|^(?P<linekey>Authors?|Editor|Source|Photo)\s+(?P<linevalue>[A-Z][^|｜\n:：]+?)\s*$"
)


def asked_field(text: str, keys: frozenset[str]) -> tuple[int, int] | None:
    """The value of the first byline field of ``text`` whose name is one of ``keys``."""
    for key, start, end in byline_fields(text):
        if content_terms(key) & keys:
            return start, end
    return None


def byline_fields(text: str) -> list[tuple[str, int, int]]:
    """``(key, start, end)`` of each field value in a byline or dateline sentence."""
    fields = []
    for match in _FIELD_RE.finditer(text):
        for key, value in (("key", "value"), ("bykey", "byvalue"), ("linekey", "linevalue")):
            if match.group(key) and match.group(value) and match.group(value).strip():
                fields.append((match.group(key), match.start(value), match.end(value)))
    return fields


RELATED = _related_terms()  # term -> the terms of its byline group
