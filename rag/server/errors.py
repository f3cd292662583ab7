"""Every error leaves the service as ``{"error": {"type", "message"}}`` with the right status code.

Library errors (``RagError``) map by what the caller can do about them: fix the request (400),
wait and retry (503), or report a bug (500). Validation errors name the field.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import BackendError, ConfigError, IndexStoreError, IngestError, QueryError, RagError, ValidationFailed

log = logging.getLogger("rag.server")

_HTTP_TYPES = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
               413: "payload_too_large", 415: "unsupported_media_type", 422: "validation_error",
               429: "rate_limited", 500: "internal_error", 503: "unavailable"}


class ApiError(Exception):
    """An HTTP error we mean to send: status, a short machine type, a one-line message."""

    def __init__(self, status: int, type: str, message: str, *, field: str | None = None,
                 headers: dict[str, str] | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.type, self.message, self.field = status, type, message, field
        self.headers = headers or {}
        self.code = code  # OpenAI's error code (e.g. model_not_found), for the OpenAI-compatible routes

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.field:
            err["field"] = self.field
        if self.code:
            err["code"] = self.code
            err["param"] = self.field
        return {"error": err}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def from_rag_error(err: RagError) -> ApiError:
    """The HTTP face of a library error."""
    message = str(err)
    if isinstance(err, QueryError):
        return ApiError(400, "query_error", message)
    if isinstance(err, IngestError):
        return ApiError(400, "ingest_error", message)
    if isinstance(err, BackendError):
        headers = {"Retry-After": "5"} if err.retryable else {}
        return ApiError(503, "backend_error", message, headers=headers)
    if isinstance(err, ValidationFailed):
        return ApiError(503, "backend_error", message)
    # The operator's problems: the detail (paths, file names) goes to the log, not to the caller.
    if isinstance(err, IndexStoreError):
        log.error("index unavailable: %s", message)
        return ApiError(503, "index_unavailable", "the index is busy or unavailable; try again", headers={"Retry-After": "1"})
    if isinstance(err, ConfigError):
        log.error("server misconfigured: %s", message)
        return ApiError(500, "config_error", "the server is misconfigured (see its log)")
    return ApiError(400, "rag_error", message)


def public_message(err: BaseException) -> str:
    """What a caller may read about a failure: the library's one line, minus the operator's details."""
    if isinstance(err, RagError):
        return from_rag_error(err).message
    return "internal error (see the server log)"


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def validation_error(errors: list[dict[str, Any]]) -> ApiError:
    """400 for a body that is not JSON at all, else 422 naming the first bad field."""
    for e in errors:
        if e.get("type") == "json_invalid":
            detail = (e.get("ctx") or {}).get("error", "invalid JSON")
            pos = next((p for p in reversed(e.get("loc") or ()) if isinstance(p, int)), None)
            where = f" at character {pos}" if pos is not None else ""
            return ApiError(400, "invalid_json", f"malformed JSON body: {detail}{where}")
    errors = errors or [{"loc": ("body",), "msg": "invalid request", "type": "invalid"}]
    problems = [f"{_field(e.get('loc', ()))}: {_message(e)}" for e in errors[:3]]
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return ApiError(422, "validation_error", "; ".join(problems) + more, field=_field(errors[0].get("loc", ())))


def _message(error: dict[str, Any]) -> str:
    if error.get("type") == "missing" and _field(error.get("loc", ())) == "body":
        return "a JSON request body is required"
    if error.get("type") == "extra_forbidden":
        return "unknown field"
    return str(error.get("msg", "invalid value"))


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(request: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RagError)
    async def _rag(request: Request, exc: RagError) -> JSONResponse:
        return from_rag_error(exc).response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_error(list(exc.errors())).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = _HTTP_TYPES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else kind.replace("_", " ")
        if exc.status_code == 404 and message == "Not Found":
            message = f"no route {request.method} {request.url.path}"
        return ApiError(exc.status_code, kind, message, headers=dict(exc.headers or {})).response()

    @app.exception_handler(TimeoutError)
    async def _timeout(request: Request, exc: TimeoutError) -> JSONResponse:
        return ApiError(503, "timeout", "the request took too long and was abandoned; try again",
                        headers={"Retry-After": "5"}).response()

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return ApiError(500, "internal_error", "internal server error (see the server log)").response()
