"""What every request shares: settings, a pool of index connections, the backend, limits, metrics.

A sqlite3 connection must not be used by two threads at once, and a transaction on a shared
connection would swallow other requests' statements. So each request (or streamed response, or
briefing worker) checks one ``SQLiteIndex`` out of the pool for as long as it needs it; the file is
in WAL mode, so readers never block on the single writer and never see half a write.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TypeVar

import anyio
import anyio.to_thread

from ..backends import Backend, get_backend
from ..config import Settings
from ..index import SQLiteIndex
from .metrics import Metrics
from .security import Auth, RateLimiter, parse_keys

T = TypeVar("T")


class StorePool:
    """Index connections handed to one user at a time; created on demand, at most ``keep`` kept idle."""

    def __init__(self, path: Path, *, keep: int = 16) -> None:
        self.path = path
        self._idle: queue.LifoQueue[SQLiteIndex] = queue.LifoQueue()
        self._keep = keep
        self._closed = False
        # Only `rag index` creates or migrates an index: the first connection checks that it exists and is current.
        self._idle.put(SQLiteIndex(path))

    @contextmanager
    def use(self) -> Iterator[SQLiteIndex]:
        store = self.acquire()
        try:
            yield store
        finally:
            self.release(store)

    def acquire(self) -> SQLiteIndex:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            return SQLiteIndex(self.path)

    def release(self, store: SQLiteIndex) -> None:
        if store.db.in_transaction:  # a caller died mid-transaction: never hand that connection on
            store.close()
        elif self._closed or self._idle.qsize() >= self._keep:
            store.close()
        else:
            self._idle.put(store)

    def close(self) -> None:
        self._closed = True
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


class SessionLocks:
    """One lock per chat session, so two turns of the same conversation never interleave."""

    def __init__(self) -> None:
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, name: str) -> threading.Lock:
        with self._guard:
            if len(self._locks) > 10_000:
                self._locks = {k: v for k, v in self._locks.items() if v.locked()}
            return self._locks.setdefault(name, threading.Lock())


@dataclass
class Services:
    settings: Settings
    pool: StorePool
    backend: Backend
    auth: Auth
    limiter: RateLimiter
    metrics: Metrics = field(default_factory=Metrics)
    sessions: SessionLocks = field(default_factory=SessionLocks)
    request_timeout: float = 180.0
    jobs: object | None = None  # BriefingJobs, attached by the app factory

    @classmethod
    def open(cls, settings: Settings) -> "Services":
        return cls(
            settings=settings,
            pool=StorePool(settings.index),
            backend=get_backend(settings),
            auth=Auth(parse_keys(settings.api_keys)),
            limiter=RateLimiter(settings.server.rate_limit_per_minute),
            request_timeout=settings.server.request_timeout,
        )

    def close(self) -> None:
        self.backend.close()
        self.pool.close()

    async def run(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        """Run blocking library code in a worker thread; give up (TimeoutError -> 503) after the request timeout.

        The abandoned thread finishes on its own and returns its connection to the pool.
        """
        with anyio.fail_after(self.request_timeout):
            return await anyio.to_thread.run_sync(partial(fn, *args, **kwargs), abandon_on_cancel=True)
