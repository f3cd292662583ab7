"""The guard in front of the app: every request is checked here before routing or body parsing.

In order: the ``Host`` header must be one of ours (DNS rebinding), the caller must authenticate
(a wrong key counts against its address, and too many get 429 before the key is even checked),
then the per-caller rate limit, then the Origin rule for anything that changes state. The accepted
``Principal`` is left in ``request.state.principal`` for the routes' ownership checks.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import RagError
from .errors import ApiError, from_rag_error
from .metrics import Metrics
from .security import Auth, Principal, RateLimiter, host_allowed, mutation_refusal

log = logging.getLogger("rag.server.guard")

# Reachable without a key: the page and its assets, health checks and the API docs.
PUBLIC_PATHS = frozenset({"/", "/healthz", "/readyz", "/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect",
                          "/favicon.ico"})
PUBLIC_PREFIXES = ("/static/", "/docs/")


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


class GuardMiddleware:
    def __init__(self, app: ASGIApp, *, auth: Auth, limiter: RateLimiter, failures: RateLimiter, host_names: set[str],
                 allowed_hosts: list[str], allowed_origins: list[str], metrics: Metrics) -> None:
        self.app, self.auth, self.limiter, self.failures = app, auth, limiter, failures
        self.host_names, self.allowed_hosts, self.allowed_origins = host_names, allowed_hosts, allowed_origins
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        try:
            try:
                principal = self.check(scope)
            except RagError as failure:  # shared limits live in the store: a store that is away is a 503, not a bug
                log.error("guard: %s", failure)
                raise from_rag_error(failure) from failure
        except ApiError as err:
            await err.response()(scope, receive, send)
            self.metrics.observe_request("refused", scope["method"], err.status, time.perf_counter() - started)
            return
        if principal is not None:
            scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)

    def check(self, scope: Scope) -> Principal | None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if not host_allowed(headers.get("host"), names=self.host_names, extra=self.allowed_hosts):
            raise ApiError(421, "misdirected_request", "this server does not answer to that Host name "
                           "(set RAG_SERVER__ALLOWED_HOSTS to add one)")
        path, method = scope["path"], scope["method"]
        if is_public(path) and method in ("GET", "HEAD"):
            return None
        client = scope["client"][0] if scope.get("client") else "unknown"
        principal = self.authenticate(headers, client)
        self.limiter.check(principal.identity)
        refusal = mutation_refusal(method, headers, scheme=scope.get("scheme", "http"), allowed_origins=self.allowed_origins)
        if refusal:
            raise ApiError(403, "forbidden", refusal)
        return principal

    def authenticate(self, headers: dict[str, str], client: str) -> Principal:
        if not self.auth.required:
            return self.auth.identify(None, client)
        if self.failures.exhausted(f"addr:{client}"):
            raise self.failures.refusal(f"addr:{client}", what="failed authentications")
        raw = headers.get("authorization")
        token = None
        if raw is not None:
            scheme, _, credentials = raw.partition(" ")
            if scheme.lower() != "bearer" or not credentials.strip():
                self.failures.spend(f"addr:{client}")
                raise ApiError(401, "unauthorized", "malformed Authorization header: expected 'Bearer <key>'",
                               headers={"WWW-Authenticate": "Bearer"})
            token = credentials.strip()
        try:
            return self.auth.identify(token, client)
        except ApiError:
            if token is not None:  # a wrong key; a missing one is a client that forgot, not a guess
                self.failures.spend(f"addr:{client}")
            raise
