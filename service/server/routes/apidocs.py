"""The API documentation pages, offline: Swagger UI at /docs and ReDoc at /redoc.

FastAPI's own pages load Swagger UI and ReDoc from a public CDN, so behind a proxy or with
no network they are blank. Here the pages are FastAPI's HTML builders pointed at copies of
the assets served by this service, under ``ASSETS_URL``: the Swagger UI dist (its bundle
and stylesheet), ReDoc's standalone bundle and a favicon, as the ``fastapi-offline``
package ships them (MIT; Swagger UI is Apache-2.0, ReDoc MIT). Nothing a page loads comes
from another host; their CSP (``service.server.limits.API_DOC_POLICY``) says so too. (ReDoc
draws Redocly's logo from their CDN in its sidebar footer, a URL written into its bundle:
the CSP blocks it and ReDoc then shows the footer's text alone.)
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse

__all__ = ["ASSETS_URL", "OAUTH2_REDIRECT_URL", "assets_dir", "router"]

ASSETS_URL = "/static/apidocs"  # under /static: not counted by the rate limit
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"

router = APIRouter(include_in_schema=False)


def assets_dir() -> Path:
    """The folder of the Swagger UI and ReDoc files inside the fastapi-offline package."""
    return Path(str(files("fastapi_offline").joinpath("static")))


def _urls(request: Request) -> tuple[str, str]:
    """The OpenAPI document's URL and the assets' base, under the app's root path (a proxy
    that serves the service under a prefix sets it)."""
    root = request.scope.get("root_path", "")
    return f"{root}{request.app.openapi_url}", f"{root}{ASSETS_URL}"


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI over the OpenAPI document, from the local assets."""
    openapi_url, assets = _urls(request)
    return get_swagger_ui_html(
        openapi_url=openapi_url,
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=f"{assets}/swagger-ui-bundle.js",
        swagger_css_url=f"{assets}/swagger-ui.css",
        swagger_favicon_url=f"{assets}/favicon.png",
        oauth2_redirect_url=OAUTH2_REDIRECT_URL,
        # no "valid" badge fetched from validator.swagger.io
        swagger_ui_parameters={**(request.app.swagger_ui_parameters or {}), "validatorUrl": None},
    )


@router.get(OAUTH2_REDIRECT_URL)
def swagger_ui_redirect() -> HTMLResponse:
    """The page Swagger UI's OAuth2 flow returns to (FastAPI's)."""
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    """ReDoc over the OpenAPI document, from the local assets, without Google's fonts."""
    openapi_url, assets = _urls(request)
    return get_redoc_html(
        openapi_url=openapi_url,
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=f"{assets}/redoc.standalone.js",
        redoc_favicon_url=f"{assets}/favicon.png",
        with_google_fonts=False,
    )
