"""Admin routes: add and remove documents, rebuild, while the service answers.

Off unless ``CITEQA_ADMIN_KEY`` is set; then every call must carry the key
(``Authorization: Bearer KEY`` or ``X-API-Key: KEY``), compared in constant time
(``service.server.deps.admin_refusal``), before the body is read (``BodySizeLimit``
refuses a request without it at once). No CORS headers are ever sent for these routes:
browsers on other sites cannot call them. Each change publishes a new index generation,
which this worker serves at once and the others within a second.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from service.index.live import add_text, rebuild, remove_documents
from service.server.deps import ADMIN_PREFIX, AdminSettingsDep, EngineDep, serve_generation
from service.server.errors import responses
from service.server.limits import within_admin_budget
from service.server.schemas import DocumentIn, Published

router = APIRouter(prefix=ADMIN_PREFIX, tags=["admin"])


@router.post(
    "/documents",
    status_code=201,
    response_model=Published,
    responses=responses(401, 404, 413, 422, 503),
)
async def add_document(
    body: DocumentIn, request: Request, settings: AdminSettingsDep, engine: EngineDep
) -> Published:
    """Add (or replace) a document and publish the new index generation."""
    doc_id, result = await within_admin_budget(
        request,
        add_text,
        settings,
        body.text,
        doc_id=body.doc_id,
        title=body.title,
        source=body.source,
        published=body.published,
        markdown=body.markdown,
        metadata=body.metadata.to_metadata() if body.metadata else None,
    )
    await run_in_threadpool(serve_generation, request, result.path)  # off the loop
    return Published.from_build(result, doc_id)


@router.delete(
    "/documents/{doc_id}", response_model=Published, responses=responses(401, 404, 422, 503)
)
async def delete_document(
    doc_id: str, request: Request, settings: AdminSettingsDep, engine: EngineDep
) -> Published:
    """Remove a document; its citation links answer 410 Gone from then on."""
    result = await within_admin_budget(request, remove_documents, settings, [doc_id])
    await run_in_threadpool(serve_generation, request, result.path)  # off the loop
    return Published.from_build(result, doc_id)


@router.post("/rebuild", response_model=Published, responses=responses(401, 404, 503))
async def rebuild_index(
    request: Request, settings: AdminSettingsDep, engine: EngineDep
) -> Published:
    """Encode the whole corpus anew and publish it."""
    result = await within_admin_budget(request, rebuild, settings)
    await run_in_threadpool(serve_generation, request, result.path)  # off the loop
    return Published.from_build(result)
