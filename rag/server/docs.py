"""The API docs (Swagger UI at ``/docs``, ReDoc at ``/redoc``) served from local files, so they work offline.

FastAPI's defaults load both from a CDN, which leaves the pages blank without a network. The assets
come from the ``fastapi-offline`` package (MIT; Swagger UI is Apache-2.0, ReDoc MIT), mounted under
``/docs/assets/``; the pages are FastAPI's own, pointed at them, with nothing fetched from elsewhere.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs/assets"
# The pages may load nothing from elsewhere: ReDoc's footer logo (cdn.redoc.ly) is blocked and hides itself.
# Inline script and style: FastAPI's pages start the UIs inline; ReDoc runs its search in a blob: worker.
DOCS_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
                               "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def assets_dir() -> Path:
    return Path(str(files("fastapi_offline") / "static"))


def install(app: FastAPI) -> None:
    """Add ``/docs`` and ``/redoc`` (create the app with ``docs_url=None, redoc_url=None``)."""
    title = f"{app.title} API"
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        # validatorUrl null: Swagger UI would otherwise send the spec to validator.swagger.io for a badge.
        page = get_swagger_ui_html(openapi_url=openapi_url, title=title, swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{ASSETS}/swagger-ui.css", swagger_favicon_url=f"{ASSETS}/favicon.png",
                                   swagger_ui_parameters={"validatorUrl": None})
        page.headers.update(DOCS_HEADERS)
        return page

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        page = get_redoc_html(openapi_url=openapi_url, title=title, redoc_js_url=f"{ASSETS}/redoc.standalone.js",
                              redoc_favicon_url=f"{ASSETS}/favicon.png", with_google_fonts=False)
        page.headers.update(DOCS_HEADERS)
        return page

    app.mount(ASSETS, StaticFiles(directory=assets_dir()), name="docs-assets")
