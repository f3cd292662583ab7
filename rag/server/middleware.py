"""One pure-ASGI middleware around the app: request-body size limit and request metrics.

The body is read here, up to the limit, before the app sees it: an oversized request gets 413
whether it declares a Content-Length or streams chunks, and no route ever parses more than the
limit. (Pure ASGI rather than BaseHTTPMiddleware, which buffers streaming responses.)
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import ApiError
from .metrics import Metrics


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"request body is larger than the {limit} byte limit")


class ServiceMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, metrics: Metrics) -> None:
        self.app = app
        self.limit = max_body_bytes
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            replay = await self._read_body(scope, receive)
            if isinstance(replay, ApiError):
                await replay.response()(scope, receive, send_wrapper)
                return
            await self.app(scope, replay, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or ("static" if scope["path"].startswith("/static/") else "unmatched")
            self.metrics.observe_request(template, scope["method"], status, time.perf_counter() - started)

    async def _read_body(self, scope: Scope, receive: Receive) -> Receive | ApiError:
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if declared is not None:
            try:
                if int(declared) > self.limit:
                    return _too_large(self.limit)
            except ValueError:
                return ApiError(400, "bad_request", "invalid Content-Length header")
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                chunks = []
                pending: list[Message] = [message]
                break
            body = message.get("body", b"")
            size += len(body)
            if size > self.limit:
                return _too_large(self.limit)
            chunks.append(body)
            if not message.get("more_body", False):
                pending = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]
                break

        async def replay() -> Message:
            # The buffered body first, then the real channel (so disconnects still reach streaming responses).
            if pending:
                return pending.pop(0)
            return await receive()

        return replay
