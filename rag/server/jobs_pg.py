"""Briefing jobs on PostgreSQL: ``rag_jobs`` rows claimed with ``FOR UPDATE SKIP LOCKED`` under a lease, and
each finished document in ``rag_job_items``, so a job can resume on any worker of any machine."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from .. import pg
from ..index_pg import PostgresIndex
from ..types import StrategySummary, Usage
from .jobs import UNFINISHED, Job, _COLS, _row_job
from .shared import claimable
from .state import StorePool

T = TypeVar("T")
_SELECT = f"{_COLS}, lease_owner"


class PostgresJobStore:
    def __init__(self, pool: StorePool) -> None:
        self.pool = pool

    def _with(self, fn: Callable[[Any], T], action: str = "write") -> T:
        psycopg = pg._psycopg()
        with self.pool.use() as store:
            assert isinstance(store, PostgresIndex)
            try:
                return fn(store.conn)
            except psycopg.Error as err:
                raise pg.store_error(err, store.url, action) from err

    def create(self, kind: str, request: dict[str, Any], *, owner: str | None = None) -> Job:
        now = time.time()
        job = Job(id=secrets.token_hex(8), kind=kind, status="queued", request=request, created_at=now, updated_at=now,
                  owner=owner)
        self._with(lambda c: c.execute(f"INSERT INTO rag_jobs ({_COLS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                                       (job.id, kind, job.status, json.dumps(request), "{}", None, None, now, now, owner)))
        return job

    def get(self, job_id: str) -> Job | None:
        row = self._with(lambda c: c.execute(f"SELECT {_SELECT} FROM rag_jobs WHERE id = %s", (job_id,)).fetchone(), "read")
        return _row_job(row) if row else None

    def update(self, job_id: str, *, status: str | None = None, progress: dict[str, Any] | None = None,
               result: str | None = None, error: str | None = None, worker: str | None = None) -> bool:
        sets, params = ["updated_at = %s"], [time.time()]
        for column, value in (("status", status), ("progress", None if progress is None else json.dumps(progress)),
                              ("result", result), ("error", error)):
            if value is not None:
                sets.append(f"{column} = %s")
                params.append(value)
        if status is not None and status not in UNFINISHED:
            sets.append("lease_until = NULL")
        where = "id = %s" + (" AND lease_owner = %s" if worker is not None else "")
        params += [job_id] + ([worker] if worker is not None else [])
        return self._with(lambda c: c.execute(f"UPDATE rag_jobs SET {', '.join(sets)} WHERE {where}", params).rowcount > 0)

    def unfinished(self, kind: str) -> list[Job]:
        rows = self._with(lambda c: c.execute(f"SELECT {_SELECT} FROM rag_jobs WHERE kind = %s AND status = ANY(%s) "
                                              "ORDER BY created_at", (kind, list(UNFINISHED))).fetchall(), "read")
        return [_row_job(r) for r in rows]

    def claim(self, kind: str, worker: str, *, lease: float) -> Job | None:
        """The oldest unfinished job whose lease is free, expired, or held by a dead process of this machine.
        Rows another worker is claiming right now are skipped, not waited for."""
        def step(conn: Any) -> Job | None:
            now = time.time()
            with conn.transaction():
                rows = conn.execute("SELECT id, lease_owner, lease_until FROM rag_jobs WHERE kind = %s AND status = ANY(%s) "
                                    "ORDER BY created_at FOR UPDATE SKIP LOCKED", (kind, list(UNFINISHED))).fetchall()
                for job_id, owner, until in rows:
                    if claimable(owner, until, now):
                        row = conn.execute(f"UPDATE rag_jobs SET status = 'running', lease_owner = %s, lease_until = %s, "
                                           f"updated_at = %s WHERE id = %s RETURNING {_SELECT}",
                                           (worker, now + lease, now, job_id)).fetchone()
                        return _row_job(row)
            return None
        return self._with(step)

    def renew(self, job_id: str, worker: str, *, lease: float) -> bool:
        return self._with(lambda c: c.execute("UPDATE rag_jobs SET lease_until = %s WHERE id = %s AND lease_owner = %s "
                                              "AND status = 'running'", (time.time() + lease, job_id, worker)).rowcount > 0)

    def release(self, job_id: str, worker: str) -> None:
        self._with(lambda c: c.execute("UPDATE rag_jobs SET lease_until = 0 WHERE id = %s AND lease_owner = %s",
                                       (job_id, worker)))

    def directory(self, job_id: str) -> Path | None:
        return None  # everything a job keeps is in the database, for workers on any machine

    def load_item(self, job_id: str, doc_id: str, key: str) -> tuple[StrategySummary, Usage] | None:
        row = self._with(lambda c: c.execute("SELECT summary, usage FROM rag_job_items WHERE job_id = %s AND doc_id = %s "
                                             "AND key = %s", (job_id, doc_id, key)).fetchone(), "read")
        if row is None:
            return None
        try:
            return StrategySummary.model_validate_json(row[0]), Usage.model_validate_json(row[1])
        except ValueError:
            return None  # unreadable: redo the document

    def save_item(self, job_id: str, doc_id: str, key: str, summary: StrategySummary, usage: Usage) -> None:
        self._with(lambda c: c.execute(
            "INSERT INTO rag_job_items VALUES (%s, %s, %s, %s, %s) ON CONFLICT (job_id, doc_id) DO UPDATE "
            "SET key = excluded.key, summary = excluded.summary, usage = excluded.usage",
            (job_id, doc_id, key, summary.model_dump_json(), usage.model_dump_json())))
