"""Briefing jobs: queued in the index's ``jobs`` table, run in the background, resumed after a restart.

Each job works in its own directory (``<index>-jobs/<id>/``): every per-document summary is written
there atomically as soon as it is done (same file layout and freshness key as ``rag brief``), so a
job interrupted by a crash or restart redoes only the documents that were not finished. On start-up
every job left ``queued`` or ``running`` is queued again.
"""

from __future__ import annotations

import json
import logging
import queue
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..briefing import Runner, build_briefing, clean_stale_temporaries, summarize_cached, write_atomic
from ..errors import RagError
from ..render import briefing_markdown
from ..types import Briefing, Failure, StrategySummary, Usage
from .errors import public_message
from .metrics import Metrics
from .state import StorePool

log = logging.getLogger("rag.server.jobs")

UNFINISHED = ("queued", "running")


@dataclass
class Job:
    id: str
    kind: str
    status: str  # queued | running | succeeded | failed
    request: dict[str, Any]
    progress: dict[str, Any] = field(default_factory=dict)
    result: str | None = None
    error: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    owner: str | None = None


class JobStore(Protocol):
    def create(self, kind: str, request: dict[str, Any], *, owner: str | None = None) -> Job: ...
    def get(self, job_id: str) -> Job | None: ...
    def update(self, job_id: str, *, status: str | None = None, progress: dict[str, Any] | None = None,
               result: str | None = None, error: str | None = None) -> None: ...
    def unfinished(self, kind: str) -> list[Job]: ...


_COLS = "id, kind, status, request, progress, result, error, created_at, updated_at, owner"


def _row_job(row: tuple) -> Job:
    return Job(id=row[0], kind=row[1], status=row[2], request=json.loads(row[3]), progress=json.loads(row[4] or "{}"),
               result=row[5], error=row[6], created_at=row[7], updated_at=row[8], owner=row[9])


class SQLiteJobStore:
    """Jobs in the index file's ``jobs`` table, one short transaction per change."""

    def __init__(self, pool: StorePool) -> None:
        self.pool = pool

    def create(self, kind: str, request: dict[str, Any], *, owner: str | None = None) -> Job:
        now = time.time()
        job = Job(id=secrets.token_hex(8), kind=kind, status="queued", request=request, created_at=now, updated_at=now,
                  owner=owner)
        with self.pool.use() as store, store.transaction():
            store.db.execute(f"INSERT INTO jobs ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             (job.id, kind, job.status, json.dumps(request), "{}", None, None, now, now, owner))
        return job

    def get(self, job_id: str) -> Job | None:
        with self.pool.use() as store:
            row = store.db.execute(f"SELECT {_COLS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _row_job(row) if row else None

    def update(self, job_id: str, *, status: str | None = None, progress: dict[str, Any] | None = None,
               result: str | None = None, error: str | None = None) -> None:
        sets, params = ["updated_at = ?"], [time.time()]
        for column, value in (("status", status), ("progress", None if progress is None else json.dumps(progress)),
                              ("result", result), ("error", error)):
            if value is not None:
                sets.append(f"{column} = ?")
                params.append(value)
        with self.pool.use() as store, store.transaction():
            store.db.execute(f"UPDATE jobs SET {', '.join(sets)} WHERE id = ?", (*params, job_id))

    def unfinished(self, kind: str) -> list[Job]:
        marks = ",".join("?" * len(UNFINISHED))
        with self.pool.use() as store:
            rows = store.db.execute(f"SELECT {_COLS} FROM jobs WHERE kind = ? AND status IN ({marks}) ORDER BY created_at",
                                    (kind, *UNFINISHED)).fetchall()
        return [_row_job(r) for r in rows]


class _Stopped(Exception):
    """The server is shutting down: leave the job as it is, it resumes on the next start."""


def _parallel(items: list[Any], fn: Callable[[Any], None], *, workers: int, stop: threading.Event) -> None:
    """Call ``fn`` on every item from ``workers`` daemon threads (a shutdown never waits on a model call)."""
    work: queue.Queue[Any] = queue.Queue()
    for item in items:
        work.put(item)
    errors: list[BaseException] = []

    def loop() -> None:
        while not stop.is_set() and not errors:
            try:
                item = work.get_nowait()
            except queue.Empty:
                return
            try:
                fn(item)
            except BaseException as err:  # noqa: BLE001 - re-raised in the job thread below
                errors.append(err)

    threads = [threading.Thread(target=loop, daemon=True, name="rag-briefing-doc") for _ in range(max(1, min(workers, len(items))))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    if stop.is_set():
        raise _Stopped()


class BriefingJobs:
    """Runs briefing jobs one at a time on a daemon thread; documents within a job in parallel."""

    kind = "briefing"

    def __init__(self, *, store: JobStore, pool: StorePool, runner: Runner, root: Path, metrics: Metrics) -> None:
        self.store, self.pool, self.runner, self.root, self.metrics = store, pool, runner, root, metrics
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -------------------------------------------------------------- lifecycle
    def start(self) -> int:
        """Start the worker and queue every unfinished job again; returns how many were resumed."""
        pending = self.store.unfinished(self.kind)
        for job in pending:
            self._queue.put(job.id)
        self._thread = threading.Thread(target=self._work, daemon=True, name="rag-briefing-jobs")
        self._thread.start()
        if pending:
            log.info("resuming %d briefing job(s): %s", len(pending), ", ".join(j.id for j in pending))
        return len(pending)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._queue.put(None)
        if self._thread:
            self._thread.join(timeout)

    def submit(self, request: dict[str, Any], *, owner: str | None = None) -> Job:
        job = self.store.create(self.kind, request, owner=owner)
        self._queue.put(job.id)
        return job

    def directory(self, job_id: str) -> Path:
        return self.root / job_id

    # -------------------------------------------------------------- work
    def _work(self) -> None:
        while not self._stop.is_set():
            job_id = self._queue.get()
            if job_id is None:
                return
            job = self.store.get(job_id)
            if job is None or job.status not in UNFINISHED:
                continue
            try:
                self._run(job)
            except _Stopped:
                log.info("briefing job %s interrupted by shutdown; it resumes on the next start", job.id)
                return
            except RagError as err:
                log.error("briefing job %s failed: %s", job.id, err)
                self._fail(job.id, public_message(err))
            except Exception:  # a bug: keep the worker alive for the next job; the detail is for the log only
                log.exception("briefing job %s crashed", job.id)
                self._fail(job.id, "internal error (see the server log)")

    def _fail(self, job_id: str, message: str) -> None:
        self.store.update(job_id, status="failed", error=message)
        self.metrics.observe_job("failed")

    def _run(self, job: Job) -> None:
        out_dir = self.directory(job.id)
        clean_stale_temporaries(out_dir / "summaries")
        clean_stale_temporaries(out_dir)
        doc_ids: list[str] = list(job.request["doc_ids"])
        with self.pool.use() as store:
            listed = {str(d["id"]): d for d in store.list_documents()}
        docs = [listed[d] for d in doc_ids if d in listed]
        failures = [Failure(doc_id=d, source=d, reason="no longer in the index") for d in doc_ids if d not in listed]
        lock = threading.Lock()
        summaries: dict[str, StrategySummary] = {}
        progress: dict[str, Any] = {"total": len(doc_ids), "done": 0, "skipped": 0, "failed": len(failures),
                                    "usage": Usage().model_dump()}
        usage = Usage()
        self.store.update(job.id, status="running", progress=progress)

        def one(doc: dict[str, Any]) -> None:
            nonlocal usage
            doc_id = str(doc["id"])
            try:
                with self.pool.use() as store:
                    result = summarize_cached(doc, out_dir=out_dir, store=store, runner=self.runner)
            except RagError as err:
                log.error("briefing job %s: %s failed: %s", job.id, doc_id, err)
                with lock:
                    failures.append(Failure(doc_id=doc_id, source=str(doc["source"]), reason=public_message(err)))
                    progress["failed"] += 1
            else:
                if not result.resumed:
                    self.metrics.observe_usage(result.usage)
                with lock:
                    summaries[doc_id] = result.summary
                    progress["skipped" if result.resumed else "done"] += 1
                    # What the job has cost so far, including documents finished before a restart.
                    usage = usage.add(result.usage)
                    progress["usage"] = usage.model_dump()
            with lock:
                snapshot = dict(progress)
            self.store.update(job.id, progress=snapshot)

        _parallel(docs, one, workers=int(job.request.get("concurrency", 4)), stop=self._stop)

        ordered = [summaries[str(d["id"])] for d in docs if str(d["id"]) in summaries]
        if not ordered:
            reasons = "; ".join(f"{f.source}: {f.reason}" for f in failures[:3])
            raise RagError(f"no document could be summarized ({reasons})")
        with self.pool.use() as store:
            briefing = build_briefing(ordered, docs, store=store, runner=self.runner, title=job.request.get("title"),
                                      failures=failures)
        self.metrics.observe_usage(briefing.usage)
        briefing.usage = usage.add(briefing.usage)
        write_atomic(out_dir / "briefing.json", briefing.model_dump_json(indent=2))
        write_atomic(out_dir / "briefing.md", briefing_markdown(briefing))
        self.store.update(job.id, status="succeeded", progress=progress, result=briefing.model_dump_json())
        self.metrics.observe_job("succeeded")


def job_view(job: Job, *, with_result: bool = True) -> dict[str, Any]:
    """The public JSON of a job."""
    view: dict[str, Any] = {
        "id": job.id, "kind": job.kind, "status": job.status, "progress": job.progress,
        "request": job.request,
        "error": job.error, "created_at": job.created_at, "updated_at": job.updated_at,
    }
    if with_result:
        view["result"] = Briefing.model_validate_json(job.result).model_dump(mode="json") if job.result else None
    return view
