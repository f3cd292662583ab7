"""What every request shares: settings, a pool of index connections, the backend, limits, metrics.

A connection (sqlite3 or psycopg) must not be used by two threads at once, and a transaction on a
shared connection would swallow other requests' statements. So each request (or streamed response,
or briefing worker) checks one store out of the pool for as long as it needs it. An SQLite file is in
WAL mode, so readers never block on the single writer and never see half a write; PostgreSQL gives
each connection its own snapshot. A connection left broken or mid-transaction is never handed on.
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
from ..index import IndexStore
from ..stores import open_index, usable
from .metrics import Metrics
from .security import Auth, RateLimiter, parse_keys

T = TypeVar("T")


class StorePool:
    """Index connections handed to one user at a time; created on demand, at most ``keep`` kept idle."""

    def __init__(self, index: Path | str | Callable[[], IndexStore], *, keep: int = 16) -> None:
        self.opener: Callable[[], IndexStore] = index if callable(index) else partial(open_index, index)
        self._idle: queue.LifoQueue[IndexStore] = queue.LifoQueue()
        self._keep = keep
        self._closed = False
        # Only `rag index` creates or migrates an index: the first connection checks that it exists and is current.
        self._idle.put(self.opener())

    @contextmanager
    def use(self) -> Iterator[IndexStore]:
        store = self.acquire()
        try:
            yield store
        finally:
            self.release(store)

    def acquire(self) -> IndexStore:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            return self.opener()

    def release(self, store: IndexStore) -> None:
        if not usable(store):  # a caller died mid-transaction, or the database went away: never hand that on
            store.close()  # type: ignore[attr-defined]
        elif self._closed or self._idle.qsize() >= self._keep:
            store.close()  # type: ignore[attr-defined]
        else:
            self._idle.put(store)

    def close(self) -> None:
        self._closed = True
        while True:
            try:
                self._idle.get_nowait().close()  # type: ignore[attr-defined]
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
    failures: RateLimiter
    metrics: Metrics = field(default_factory=Metrics)
    sessions: SessionLocks = field(default_factory=SessionLocks)
    request_timeout: float = 180.0
    jobs: object | None = None  # BriefingJobs, attached by the app factory
    shared: object | None = None  # SharedState when several workers share limits, metrics and job leases
    worker: str = ""

    @classmethod
    def open(cls, settings: Settings, *, workers: int = 1) -> "Services":
        """``workers`` > 1 (or an index on PostgreSQL, which other machines may serve too) shares rate limits,
        metrics and job leases through the store instead of keeping them in this process."""
        from .shared import PostgresSharedState, SQLiteSharedState, SharedMetrics, SharedRateLimiter, worker_id

        pool = StorePool(settings.index)
        worker = worker_id()
        shared = None
        try:
            if settings.index_is_database:
                shared = PostgresSharedState(str(settings.index))
            elif workers > 1:
                shared = SQLiteSharedState(shared_state_path(settings))
        except BaseException:
            pool.close()
            raise
        server = settings.server
        if shared is not None:
            limiter: RateLimiter = SharedRateLimiter(server.rate_limit_per_minute, shared, scope="requests")
            failures: RateLimiter = SharedRateLimiter(server.auth_failures_per_minute, shared, scope="auth-failures")
            metrics: Metrics = SharedMetrics(shared, worker, interval=server.metrics_interval)
        else:
            limiter, failures = RateLimiter(server.rate_limit_per_minute), RateLimiter(server.auth_failures_per_minute)
            metrics = Metrics()
        return cls(settings=settings, pool=pool, backend=get_backend(settings), auth=Auth(parse_keys(settings.api_keys)),
                   limiter=limiter, failures=failures, metrics=metrics, request_timeout=server.request_timeout,
                   shared=shared, worker=worker)

    def close(self) -> None:
        self.backend.close()
        self.pool.close()
        close = getattr(self.shared, "close", None)
        if close:
            close()

    async def run(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        """Run blocking library code in a worker thread; give up (TimeoutError -> 503) after the request timeout.

        The abandoned thread finishes on its own and returns its connection to the pool.
        """
        with anyio.fail_after(self.request_timeout):
            return await anyio.to_thread.run_sync(partial(fn, *args, **kwargs), abandon_on_cancel=True)


def shared_state_path(settings: Settings) -> Path:
    """Where the workers of an SQLite index share limits, metrics and job leases: beside the index."""
    index = settings.index_file
    return index.parent / f"{index.stem}-state.db"
