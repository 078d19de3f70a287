"""Admin routes: add and remove documents, rebuild, while the service answers.

Off unless ``CITEQA_ADMIN_KEY`` is set; then every call must carry the key
(``Authorization: Bearer KEY`` or ``X-API-Key: KEY``), compared in constant time. No CORS
headers are ever sent for these routes: browsers on other sites cannot call them.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from service.config import Settings
from service.index import BuildResult
from service.index.live import add_text, rebuild, remove_documents
from service.server.deps import EngineDep, reload_engine
from service.server.errors import responses
from service.server.schemas import IsoDate

router = APIRouter(prefix="/admin", tags=["admin"])


def require_admin(request: Request) -> Settings:
    """The settings, once the request proved it holds the admin key."""
    settings: Settings = request.app.state.settings
    if settings.admin_key is None:
        raise HTTPException(
            status_code=404,
            detail="the admin routes are off; set CITEQA_ADMIN_KEY to turn them on.",
        )
    sent = request.headers.get("x-api-key", "")
    authorization = request.headers.get("authorization", "")
    if not sent and authorization.lower().startswith("bearer "):
        sent = authorization[7:].strip()
    expected = settings.admin_key.get_secret_value().encode()
    if not hmac.compare_digest(sent.encode(), expected):
        raise HTTPException(
            status_code=401,
            detail="a valid admin key is required: send 'Authorization: Bearer KEY'.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return settings


AdminSettings = Annotated[Settings, Depends(require_admin)]


class DocumentIn(BaseModel):
    """A document to add; ``text`` is stored as sent, under the title and source lines."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, description="The document's text (plain or markdown).")
    title: str | None = Field(None, max_length=500)
    source: str | None = Field(None, max_length=200, description="The publisher.")
    published: IsoDate | None = Field(None, description="Publication date, YYYY-MM-DD.")
    doc_id: str | None = Field(
        None, description="Its id (a new one is made from the title if absent); same id: replaced."
    )
    markdown: bool = Field(False, description="Store as .md rather than .txt.")


class Published(BaseModel):
    generation: str
    documents: int
    chunks: int
    doc_id: str | None = None


def _published(request: Request, result: BuildResult, doc_id: str | None = None) -> Published:
    state: Any = request.app.state
    if state.engine.index.path != result.path:
        reload_engine(state, state.settings)  # this worker serves the change at once
    return Published(
        generation=result.path.name,
        documents=result.documents,
        chunks=result.chunks,
        doc_id=doc_id,
    )


@router.post(
    "/documents", status_code=201, response_model=Published, responses=responses(401, 404, 413, 422)
)
def add_document(
    body: DocumentIn, request: Request, settings: AdminSettings, engine: EngineDep
) -> Published:
    """Add (or replace) a document and publish the new index generation."""
    doc_id, result = add_text(
        settings,
        body.text,
        doc_id=body.doc_id,
        title=body.title,
        source=body.source,
        published=body.published,
        markdown=body.markdown,
    )
    return _published(request, result, doc_id)


@router.delete("/documents/{doc_id}", response_model=Published, responses=responses(401, 404, 422))
def delete_document(
    doc_id: str, request: Request, settings: AdminSettings, engine: EngineDep
) -> Published:
    """Remove a document; its citation links answer 410 Gone from then on."""
    return _published(request, remove_documents(settings, [doc_id]), doc_id)


@router.post("/rebuild", response_model=Published, responses=responses(401, 404))
def rebuild_index(request: Request, settings: AdminSettings, engine: EngineDep) -> Published:
    """Encode the whole corpus anew and publish it."""
    return _published(request, rebuild(settings))
