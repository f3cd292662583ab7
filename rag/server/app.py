"""The application factory: ``create_app(settings)`` wires routes, auth, limits, errors and jobs.

Public: the chat page (``/``, ``/static/*``), ``/healthz``, ``/readyz`` and the OpenAPI docs
(``/docs``, ``/redoc``, ``/openapi.json``, served offline by ``docs``). Everything else needs ``Authorization: Bearer <key>`` when
``RAG_API_KEYS`` is set, and is rate-limited per key (per client address without keys); the
Host, Origin and role rules are in ``guard`` and ``security``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from fastapi.security import HTTPBearer
from fastapi.staticfiles import StaticFiles

from ..briefing import Runner
from ..config import Settings, load_settings
from ..errors import IndexStoreError
from .. import __version__
from . import api, docs, errors, openai_compat
from .errors import ApiError
from .guard import GuardMiddleware
from ..stores import count_documents as count_indexed
from .jobs import BriefingJobs, JobStore, SQLiteJobStore
from .middleware import ServiceMiddleware
from .security import local_names
from .shared import SQLiteSharedState, SharedMetrics
from .state import Services


log = logging.getLogger("rag.server")
STATIC = Path(__file__).resolve().parent / "static"
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                               "img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

# The guard middleware authenticates; this dependency only documents the scheme in the OpenAPI spec.
_bearer = HTTPBearer(auto_error=False, description="One of the keys in RAG_API_KEYS (not needed when none are set).")


def _listed(raw: str) -> list[str]:
    return [item.strip().lower().rstrip("/") for item in raw.split(",") if item.strip()]


def jobs_dir(settings: Settings) -> Path:
    index = settings.index_file
    return index.parent / f"{index.stem}-jobs"


def _job_store(services: Services) -> JobStore:
    if services.settings.index_is_database:
        from .jobs_pg import PostgresJobStore

        return PostgresJobStore(services.pool)
    leases = services.shared if isinstance(services.shared, SQLiteSharedState) else None
    return SQLiteJobStore(services.pool, root=jobs_dir(services.settings), leases=leases)


def create_app(settings: Settings | None = None, *, bound_host: str | None = None, workers: int = 1) -> FastAPI:
    """The service over the existing index ``settings.index`` with the configured backend.

    ``bound_host`` is the address ``rag serve`` listens on: the Host names the server answers to
    follow from it (plus localhost and ``server.allowed_hosts``). ``workers`` > 1: this is one of
    several processes serving the same index, so limits, metrics and job leases are shared."""
    settings = settings or load_settings()
    services = Services.open(settings, workers=workers)
    try:
        services.jobs = BriefingJobs(store=_job_store(services), pool=services.pool,
                                     runner=Runner(settings=settings, backend=services.backend), metrics=services.metrics,
                                     worker=services.worker, lease=settings.server.job_lease_seconds)
    except BaseException:
        services.close()
        raise

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        assert isinstance(services.jobs, BriefingJobs)
        services.jobs.start()
        if isinstance(services.metrics, SharedMetrics):
            services.metrics.start()
        try:
            yield
        finally:
            services.jobs.stop()
            if isinstance(services.metrics, SharedMetrics):
                services.metrics.stop()
            services.close()

    app = FastAPI(
        title="rag", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
        description="Grounded answers with verified citations, summaries and briefings over your documents. "
                    "Errors are `{\"error\": {\"type\", \"message\"}}`.",
    )
    app.state.services = services
    errors.install(app)
    # Added last = runs first: the guard answers before the body is read or a route is chosen.
    app.add_middleware(ServiceMiddleware, max_body_bytes=settings.server.max_body_bytes, metrics=services.metrics)
    app.add_middleware(GuardMiddleware, auth=services.auth, limiter=services.limiter,
                       failures=services.failures, host_names=local_names(bound_host),
                       allowed_hosts=_listed(settings.server.allowed_hosts),
                       allowed_origins=_listed(settings.server.allowed_origins), metrics=services.metrics)

    documented = [Depends(_bearer)]
    app.include_router(api.router, dependencies=documented)
    app.include_router(openai_compat.router, dependencies=documented)

    @app.get("/healthz", tags=["health"], summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    def count_documents() -> int:
        if not settings.index_is_database and not settings.index_file.is_file():
            # deleted or replaced under us: open connections would serve a ghost
            raise IndexStoreError(f"the index {settings.index} is no longer there")
        with services.pool.use() as store:
            return count_indexed(store)

    @app.get("/readyz", tags=["health"], summary="Readiness: index open and backend configured")
    async def readyz() -> JSONResponse:
        try:
            documents = await services.run(count_documents)
        except Exception as err:  # noqa: BLE001 - any failure means not ready; the detail is for the log only
            log.error("not ready: %s", err)
            return ApiError(503, "unavailable", "the index is not usable (see the server log)").response()
        return JSONResponse({"status": "ready", "documents": documents, "backend": services.backend.name,
                             "model": services.backend.model, "auth": services.auth.required})

    @app.get("/metrics", tags=["health"], summary="Prometheus metrics", response_class=PlainTextResponse, dependencies=documented)
    async def metrics() -> PlainTextResponse:
        documents = await services.run(count_documents)
        return PlainTextResponse(services.metrics.render(documents=documents),
                                 media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    docs.install(app)
    return app
