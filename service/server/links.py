"""Links to documents: the one place that spells the ``/view`` and ``/documents`` URLs."""

from __future__ import annotations

from urllib.parse import quote

__all__ = ["document_url", "view_url"]


def view_url(base_url: str, doc_id: str, start: int | None = None, end: int | None = None) -> str:
    """The document page; with ``start`` and ``end`` the fragment that highlights that range.

    ``base_url`` is ``CITEQA_PUBLIC_URL`` (empty: a link relative to the service)."""
    url = f"{base_url.rstrip('/')}/view/{quote(doc_id, safe='')}"
    return url if start is None or end is None else f"{url}#{start}-{end}"


def document_url(base_url: str, doc_id: str) -> str:
    """The document's JSON (metadata and original text)."""
    return f"{base_url.rstrip('/')}/documents/{quote(doc_id, safe='')}"
