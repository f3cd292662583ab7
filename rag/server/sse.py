"""Streaming responses: Server-Sent Events framing and a generator that starts in a worker thread.

The first item is produced before the response starts, so a bad question or an unavailable
backend is still an ordinary HTTP error; a failure after that becomes an error event in the stream.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from ..errors import RagError
from .errors import ApiError, from_rag_error
from .state import Services

log = logging.getLogger("rag.server")
T = TypeVar("T")

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_INTERNAL = ApiError(500, "internal_error", "internal server error (see the server log)")


def sse(data: Any, *, event: str | None = None) -> str:
    """One SSE event; ``data`` is sent as compact JSON unless it is already a string."""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return head + "".join(f"data: {line}\n" for line in payload.split("\n")) + "\n"


def error_body(err: BaseException) -> dict[str, Any]:
    if isinstance(err, ApiError):
        return err.body()
    if isinstance(err, RagError):
        return from_rag_error(err).body()
    log.error("error while streaming", exc_info=err)
    return _INTERNAL.body()


async def open_stream(services: Services, make: Callable[[], Iterator[T]]) -> tuple[T | None, Iterator[T]]:
    """Create the generator and pull its first item in a worker thread (errors here are plain HTTP errors)."""

    def start() -> tuple[T | None, Iterator[T]]:
        gen = make()
        return next(gen, None), gen

    return await services.run(start)


def frames(first: T | None, gen: Iterator[T], render: Callable[[T], list[str]],
           on_error: Callable[[BaseException], list[str]], tail: Callable[[], list[str]] = list) -> Iterator[str]:
    """The SSE text of ``first`` and the rest of ``gen``; the generator is always closed (releasing its resources)."""
    try:
        if first is not None:
            yield from render(first)
        for item in gen:
            yield from render(item)
    except Exception as err:  # noqa: BLE001 - reported to the client as an error event
        yield from on_error(err)
    finally:
        close = getattr(gen, "close", None)
        if close:
            close()
    yield from tail()
