"""The application factory: ``create_app(settings)`` wires routes, auth, limits, errors and jobs.

Public: the chat page (``/``, ``/static/*``), ``/healthz``, ``/readyz`` and the OpenAPI docs
(``/docs``, ``/openapi.json``). Everything else needs ``Authorization: Bearer <key>`` when
``RAG_API_KEYS`` is set, and is rate-limited per key (per client address without keys).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles

from ..briefing import Runner
from ..config import Settings, load_settings
from . import api, errors, openai_compat
from .errors import ApiError
from .jobs import BriefingJobs, SQLiteJobStore
from .middleware import ServiceMiddleware
from .state import Services

log = logging.getLogger("rag.server")
STATIC = Path(__file__).resolve().parent / "static"
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                               "img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

_bearer = HTTPBearer(auto_error=False, description="One of the keys in RAG_API_KEYS (not needed when none are set).")


async def require_access(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> None:
    """Bearer-token check, then the per-key rate limit."""
    services: Services = request.app.state.services
    token = credentials.credentials if credentials else None
    if token is None and "authorization" in request.headers and services.auth.required:
        raise ApiError(401, "unauthorized", "malformed Authorization header: expected 'Bearer <key>'",
                       headers={"WWW-Authenticate": "Bearer"})
    identity = services.auth.identify(token, request.client.host if request.client else "unknown")
    services.limiter.check(identity)


def jobs_dir(settings: Settings) -> Path:
    return settings.index.parent / f"{settings.index.stem}-jobs"


def create_app(settings: Settings | None = None) -> FastAPI:
    """The service over ``settings.index`` (created empty if missing) with the configured backend."""
    settings = settings or load_settings()
    services = Services.open(settings)
    services.jobs = BriefingJobs(store=SQLiteJobStore(services.pool), pool=services.pool, root=jobs_dir(settings),
                                 runner=Runner(settings=settings, backend=services.backend), metrics=services.metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        assert isinstance(services.jobs, BriefingJobs)
        services.jobs.start()
        try:
            yield
        finally:
            services.jobs.stop()
            services.close()

    app = FastAPI(
        title="rag", version="0.1.0", lifespan=lifespan,
        description="Grounded answers with verified citations, summaries and briefings over your documents. "
                    "Errors are `{\"error\": {\"type\", \"message\"}}`.",
    )
    app.state.services = services
    errors.install(app)
    app.add_middleware(ServiceMiddleware, max_body_bytes=settings.server.max_body_bytes, metrics=services.metrics)

    protected = [Depends(require_access)]
    app.include_router(api.router, dependencies=protected)
    app.include_router(openai_compat.router, dependencies=protected)

    @app.get("/healthz", tags=["health"], summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    def count_documents() -> int:
        with services.pool.use() as store:
            return int(store.db.execute("SELECT count(*) FROM documents").fetchone()[0])

    @app.get("/readyz", tags=["health"], summary="Readiness: index open and backend configured")
    async def readyz() -> JSONResponse:
        try:
            documents = await services.run(count_documents)
        except Exception as err:  # noqa: BLE001 - any failure means not ready
            return ApiError(503, "unavailable", f"index {settings.index} is not usable: {err}").response()
        return JSONResponse({"status": "ready", "documents": documents, "backend": services.backend.name,
                             "model": services.backend.model, "auth": services.auth.required})

    @app.get("/metrics", tags=["health"], summary="Prometheus metrics", dependencies=protected,
             response_class=PlainTextResponse)
    async def metrics() -> PlainTextResponse:
        documents = await services.run(count_documents)
        return PlainTextResponse(services.metrics.render(documents=documents),
                                 media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
