"""State that several service workers share: rate-limit buckets, metrics, and (SQLite) job leases.

One worker alone keeps these in memory. Several workers on one SQLite index share a small SQLite file
beside it (``<index>-state.db``, WAL, one short write transaction per change); workers on a PostgreSQL
index share tables in that database, so a per-key limit holds however many workers or machines serve
it, and ``/metrics`` on any worker adds up every worker's counters.
"""

from __future__ import annotations

import json
import logging
import math
import os
import secrets
import socket
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from ..errors import IndexStoreError
from .errors import ApiError
from .metrics import Metrics
from .security import Bucket, RateLimiter, take_token

log = logging.getLogger("rag.server.shared")
HOST = socket.gethostname()


def worker_id() -> str:
    """host:pid:nonce, so a lease holder on this machine can be checked for being alive."""
    return f"{HOST}:{os.getpid()}:{secrets.token_hex(3)}"


def holder_alive(owner: str) -> bool:
    """False when ``owner`` is a process of this machine that has gone (killed, crashed); other machines' holders
    are trusted until their lease runs out."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != HOST or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (killed, not yet reaped by its supervisor) is gone too
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def claimable(owner: str | None, until: float | None, now: float) -> bool:
    return owner is None or until is None or until < now or not holder_alive(owner)


class SharedState(Protocol):
    def take(self, name: str, *, per_minute: int, now: float, spend: bool) -> tuple[float, float]: ...
    def publish(self, worker: str, snapshot: dict[str, Any]) -> None: ...
    def snapshots(self) -> list[dict[str, Any]]: ...
    def close(self) -> None: ...


def _bucket_step(tokens: float | None, updated: float | None, *, per_minute: int, now: float,
                 spend: bool) -> tuple[Bucket, float, float]:
    """(new bucket, wait, tokens before spending) by the same rule as the in-memory limiter."""
    bucket = Bucket(tokens=float(per_minute) if tokens is None else tokens, updated=now if updated is None else updated)
    rate = per_minute / 60.0
    have = min(float(per_minute), bucket.tokens + max(0.0, now - bucket.updated) * rate)
    if not spend:
        return bucket, 0.0, have
    wait = take_token(bucket, max(now, bucket.updated), per_minute=per_minute)
    return bucket, wait, have


def _granted(granted: bool, tokens: float, per_minute: int) -> tuple[float, float]:
    """(wait, tokens before spending) from what the bucket upsert returned."""
    if granted:
        return 0.0, tokens + 1.0
    return (1.0 - tokens) / (per_minute / 60.0), tokens


class SQLiteSharedState:
    """Buckets, metric snapshots and job leases in one SQLite file shared by the workers of one machine."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            self.db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode = WAL")
            self.db.execute("PRAGMA synchronous = NORMAL")
            for sql in ("CREATE TABLE IF NOT EXISTS buckets (name TEXT PRIMARY KEY, tokens REAL NOT NULL, updated REAL NOT NULL, "
                        "granted INTEGER NOT NULL DEFAULT 1)",
                        "CREATE TABLE IF NOT EXISTS worker_metrics (worker TEXT PRIMARY KEY, snapshot TEXT NOT NULL, "
                        "updated_at REAL NOT NULL)",
                        "CREATE TABLE IF NOT EXISTS job_leases (job_id TEXT PRIMARY KEY, owner TEXT NOT NULL, until REAL NOT NULL)"):
                self.db.execute(sql)
        except sqlite3.Error as err:
            raise IndexStoreError(f"cannot open the workers' shared state {path}: {err}") from err

    def _write(self, fn: Any) -> Any:
        with self._lock:
            try:
                self.db.execute("BEGIN IMMEDIATE")
                try:
                    result = fn(self.db)
                    self.db.execute("COMMIT")
                    return result
                except BaseException:
                    if self.db.in_transaction:
                        self.db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as err:
                raise IndexStoreError(f"the workers' shared state {self.path} failed: {err}") from err

    def take(self, name: str, *, per_minute: int, now: float, spend: bool) -> tuple[float, float]:
        if not spend:
            with self._lock:
                row = self.db.execute("SELECT tokens, updated FROM buckets WHERE name = ?", (name,)).fetchone()
            return _bucket_step(*(row or (None, None)), per_minute=per_minute, now=now, spend=False)[1:]
        # One statement (atomic on its own): refill, spend a token if there is one, and say whether it did.
        have = "min(:cap, tokens + max(0, :now - updated) * :rate)"
        sql = (f"INSERT INTO buckets (name, tokens, updated, granted) VALUES (:name, :cap - 1, :now, 1) "
               f"ON CONFLICT (name) DO UPDATE SET granted = {have} >= 1, "
               f"tokens = {have} - CASE WHEN {have} >= 1 THEN 1 ELSE 0 END, updated = max(updated, :now) "
               "RETURNING granted, tokens")
        params = {"name": name, "cap": float(per_minute), "now": now, "rate": per_minute / 60.0}
        with self._lock:
            try:
                granted, tokens = self.db.execute(sql, params).fetchone()
            except sqlite3.Error as err:
                raise IndexStoreError(f"the workers' shared state {self.path} failed: {err}") from err
        return _granted(bool(granted), tokens, per_minute)

    def publish(self, worker: str, snapshot: dict[str, Any]) -> None:
        self._write(lambda db: db.execute("INSERT OR REPLACE INTO worker_metrics VALUES (?, ?, ?)",
                                          (worker, json.dumps(snapshot), time.time())))

    def snapshots(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self.db.execute("SELECT snapshot FROM worker_metrics").fetchall()
        return [json.loads(r[0]) for r in rows]

    # -------------------------------------------------------------- job leases (the jobs live in the index file)
    def claim_lease(self, job_id: str, owner: str, *, until: float, now: float) -> bool:
        def step(db: sqlite3.Connection) -> bool:
            row = db.execute("SELECT owner, until FROM job_leases WHERE job_id = ?", (job_id,)).fetchone()
            if row and not claimable(row[0], row[1], now):
                return False
            db.execute("INSERT OR REPLACE INTO job_leases VALUES (?, ?, ?)", (job_id, owner, until))
            return True
        return self._write(step)

    def renew_lease(self, job_id: str, owner: str, *, until: float) -> bool:
        return self._write(lambda db: db.execute("UPDATE job_leases SET until = ? WHERE job_id = ? AND owner = ?",
                                                 (until, job_id, owner)).rowcount > 0)

    def release_lease(self, job_id: str, owner: str) -> None:
        self._write(lambda db: db.execute("UPDATE job_leases SET until = 0 WHERE job_id = ? AND owner = ?", (job_id, owner)))

    def holder(self, job_id: str) -> str | None:
        with self._lock:
            row = self.db.execute("SELECT owner FROM job_leases WHERE job_id = ?", (job_id,)).fetchone()
        return row[0] if row else None

    def close(self) -> None:
        with self._lock:
            self.db.close()


class LocalLeases:
    """Job leases of a single worker process (nothing to share): the same interface, in memory."""

    def __init__(self) -> None:
        self._leases: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def claim_lease(self, job_id: str, owner: str, *, until: float, now: float) -> bool:
        with self._lock:
            held = self._leases.get(job_id)
            if held and not claimable(held[0], held[1], now):
                return False
            self._leases[job_id] = (owner, until)
            return True

    def renew_lease(self, job_id: str, owner: str, *, until: float) -> bool:
        with self._lock:
            if self._leases.get(job_id, ("", 0))[0] != owner:
                return False
            self._leases[job_id] = (owner, until)
            return True

    def release_lease(self, job_id: str, owner: str) -> None:
        with self._lock:
            if self._leases.get(job_id, ("", 0))[0] == owner:
                self._leases[job_id] = (owner, 0.0)

    def holder(self, job_id: str) -> str | None:
        with self._lock:
            held = self._leases.get(job_id)
        return held[0] if held else None


class PostgresSharedState:
    """Buckets and metric snapshots in the index database (job leases are columns of ``rag_jobs`` there)."""

    def __init__(self, url: str) -> None:
        from .. import pg

        self.url = url
        self._pg = pg
        self._lock = threading.Lock()
        self._conn = pg.connect(url, application="rag-shared")

    def _run(self, fn: Any, action: str) -> Any:
        psycopg = self._pg._psycopg()
        with self._lock:
            if self._conn.closed or self._conn.broken:
                self._conn = self._pg.connect(self.url, application="rag-shared")
            try:
                return fn(self._conn)
            except psycopg.Error as err:
                raise self._pg.store_error(err, self.url, action) from err

    def take(self, name: str, *, per_minute: int, now: float, spend: bool) -> tuple[float, float]:
        if not spend:
            row = self._run(lambda c: c.execute("SELECT tokens, updated FROM rag_rate_buckets WHERE name = %s",
                                                (name,)).fetchone(), "read")
            return _bucket_step(*(row or (None, None)), per_minute=per_minute, now=now, spend=False)[1:]
        # One statement, one round trip: the row lock of the upsert makes concurrent workers take turns.
        have = "least(%(cap)s, b.tokens + greatest(0, %(now)s - b.updated) * %(rate)s)"
        sql = (f"INSERT INTO rag_rate_buckets AS b (name, tokens, updated, granted) VALUES (%(name)s, %(cap)s - 1, %(now)s, true) "
               f"ON CONFLICT (name) DO UPDATE SET granted = {have} >= 1, "
               f"tokens = {have} - CASE WHEN {have} >= 1 THEN 1 ELSE 0 END, updated = greatest(b.updated, %(now)s) "
               "RETURNING granted, tokens")
        params = {"name": name, "cap": float(per_minute), "now": now, "rate": per_minute / 60.0}
        granted, tokens = self._run(lambda c: c.execute(sql, params).fetchone(), "write")
        return _granted(bool(granted), tokens, per_minute)

    def publish(self, worker: str, snapshot: dict[str, Any]) -> None:
        self._run(lambda conn: conn.execute(
            "INSERT INTO rag_worker_metrics VALUES (%s, %s, %s) ON CONFLICT (worker) DO UPDATE "
            "SET snapshot = excluded.snapshot, updated_at = excluded.updated_at", (worker, json.dumps(snapshot), time.time())),
            "write")

    def snapshots(self) -> list[dict[str, Any]]:
        rows = self._run(lambda conn: conn.execute("SELECT snapshot FROM rag_worker_metrics").fetchall(), "read")
        return [json.loads(r[0]) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class SharedRateLimiter(RateLimiter):
    """The token-bucket limiter with its buckets in shared state: one limit per key across all workers."""

    def __init__(self, per_minute: int, state: SharedState, *, scope: str, clock: Any = time.time) -> None:
        super().__init__(per_minute, clock=clock)
        self.state, self.scope = state, scope

    def spend(self, identity: str) -> float:
        return self.state.take(f"{self.scope}:{identity}", per_minute=self.per_minute, now=self.clock(), spend=True)[0]

    def exhausted(self, identity: str) -> bool:
        return self.state.take(f"{self.scope}:{identity}", per_minute=self.per_minute, now=self.clock(), spend=False)[1] < 1.0

    def refusal(self, identity: str, *, what: str = "requests") -> ApiError:
        have = self.state.take(f"{self.scope}:{identity}", per_minute=self.per_minute, now=self.clock(), spend=False)[1]
        rate = self.per_minute / 60.0
        seconds = max(1, math.ceil((1.0 - have) / rate)) if have < 1 else 1
        return ApiError(429, "rate_limited", f"too many {what}: the limit is {self.per_minute} per minute; "
                        f"retry in {seconds} s", headers={"Retry-After": str(seconds)})


class SharedMetrics(Metrics):
    """This worker's counters, published every ``interval`` seconds (and on every scrape); rendering adds up
    the last snapshot of every worker that ever served, so totals never go backwards when one is replaced."""

    def __init__(self, state: SharedState, worker: str, *, interval: float = 1.0) -> None:
        super().__init__()
        self.state, self.worker, self.interval = state, worker, interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def publish(self) -> None:
        try:
            self.state.publish(self.worker, self.snapshot())
        except Exception as err:  # noqa: BLE001 - metrics must never take a worker down
            log.warning("could not publish metrics: %s", err)

    def start(self) -> None:
        def loop() -> None:
            while not self._stop.wait(self.interval):
                self.publish()
        self._thread = threading.Thread(target=loop, daemon=True, name="rag-metrics-publisher")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)
        self.publish()

    def render(self, *, documents: int | None = None) -> str:
        self.publish()
        total = Metrics()
        for snap in self.state.snapshots():
            total.absorb(snap)
        return Metrics.render(total, documents=documents)
