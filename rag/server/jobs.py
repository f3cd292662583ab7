"""Briefing jobs: queued in the store's jobs table, claimed by any worker under a lease, resumed after a crash.

A worker claims a job (PostgreSQL: ``FOR UPDATE SKIP LOCKED``; SQLite: a lease row) and renews its lease
while it runs. A worker that is killed stops renewing: once its lease runs out (at once when the holder is
a dead process of this machine) another worker claims the job and carries on. Every per-document summary
is saved as soon as it is done (SQLite: an atomic file under ``<index>-jobs/<id>/summaries/``, the layout of
``rag brief``; PostgreSQL: a row of ``rag_job_items``), so a resumed job redoes only the documents that were
not finished, and a worker that lost its lease stops writing.
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

from ..briefing import (Runner, _safe_name, _summary_key, build_briefing, clean_stale_temporaries, load_summary,
                        summarize_document, write_atomic)
from ..errors import RagError
from ..prompts import load_template
from ..render import briefing_markdown, summary_markdown
from ..types import Briefing, Failure, StrategySummary, Usage
from .errors import public_message
from .metrics import Metrics
from .shared import LocalLeases, SQLiteSharedState
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
    worker: str | None = None  # the lease holder: host:pid:nonce of the worker running (or that last ran) it


class JobStore(Protocol):
    def create(self, kind: str, request: dict[str, Any], *, owner: str | None = None) -> Job: ...
    def get(self, job_id: str) -> Job | None: ...
    def update(self, job_id: str, *, status: str | None = None, progress: dict[str, Any] | None = None,
               result: str | None = None, error: str | None = None, worker: str | None = None) -> bool: ...
    def unfinished(self, kind: str) -> list[Job]: ...
    def claim(self, kind: str, worker: str, *, lease: float) -> Job | None: ...
    def renew(self, job_id: str, worker: str, *, lease: float) -> bool: ...
    def release(self, job_id: str, worker: str) -> None: ...
    def load_item(self, job_id: str, doc_id: str, key: str) -> tuple[StrategySummary, Usage] | None: ...
    def save_item(self, job_id: str, doc_id: str, key: str, summary: StrategySummary, usage: Usage) -> None: ...
    def directory(self, job_id: str) -> Path | None: ...


_COLS = "id, kind, status, request, progress, result, error, created_at, updated_at, owner"


def _row_job(row: tuple) -> Job:
    return Job(id=row[0], kind=row[1], status=row[2], request=json.loads(row[3]), progress=json.loads(row[4] or "{}"),
               result=row[5], error=row[6], created_at=row[7], updated_at=row[8], owner=row[9],
               worker=row[10] if len(row) > 10 else None)


class SQLiteJobStore:
    """Jobs in the index file's ``jobs`` table, one short transaction per change; leases in memory (one worker)
    or in the workers' shared state file; finished documents as files under ``root``."""

    def __init__(self, pool: StorePool, *, root: Path, leases: LocalLeases | SQLiteSharedState | None = None) -> None:
        self.pool, self.root = pool, root
        self.leases = leases or LocalLeases()

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
        if not row:
            return None
        job = _row_job(row)
        job.worker = self.leases.holder(job_id)
        return job

    def update(self, job_id: str, *, status: str | None = None, progress: dict[str, Any] | None = None,
               result: str | None = None, error: str | None = None, worker: str | None = None) -> bool:
        if worker is not None and self.leases.holder(job_id) != worker:
            return False  # another worker took the job over: this one must not write
        sets, params = ["updated_at = ?"], [time.time()]
        for column, value in (("status", status), ("progress", None if progress is None else json.dumps(progress)),
                              ("result", result), ("error", error)):
            if value is not None:
                sets.append(f"{column} = ?")
                params.append(value)
        with self.pool.use() as store, store.transaction():
            store.db.execute(f"UPDATE jobs SET {', '.join(sets)} WHERE id = ?", (*params, job_id))
        return True

    def unfinished(self, kind: str) -> list[Job]:
        marks = ",".join("?" * len(UNFINISHED))
        with self.pool.use() as store:
            rows = store.db.execute(f"SELECT {_COLS} FROM jobs WHERE kind = ? AND status IN ({marks}) ORDER BY created_at",
                                    (kind, *UNFINISHED)).fetchall()
        return [_row_job(r) for r in rows]

    def claim(self, kind: str, worker: str, *, lease: float) -> Job | None:
        now = time.time()
        for job in self.unfinished(kind):
            if self.leases.claim_lease(job.id, worker, until=now + lease, now=now):
                self.update(job.id, status="running", worker=worker)
                return self.get(job.id)
        return None

    def renew(self, job_id: str, worker: str, *, lease: float) -> bool:
        return self.leases.renew_lease(job_id, worker, until=time.time() + lease)

    def release(self, job_id: str, worker: str) -> None:
        self.leases.release_lease(job_id, worker)

    def directory(self, job_id: str) -> Path | None:
        return self.root / job_id

    def _item_path(self, job_id: str, doc_id: str) -> Path:
        return self.root / job_id / "summaries" / f"{_safe_name(doc_id)}.json"

    def load_item(self, job_id: str, doc_id: str, key: str) -> tuple[StrategySummary, Usage] | None:
        path = self._item_path(job_id, doc_id)
        saved = load_summary(path, key)
        if saved is not None and not path.with_suffix(".md").exists():
            write_atomic(path.with_suffix(".md"), summary_markdown(saved[0]))
        return saved

    def save_item(self, job_id: str, doc_id: str, key: str, summary: StrategySummary, usage: Usage) -> None:
        # The Markdown first: the JSON marks a finished document (as in `rag brief`).
        path = self._item_path(job_id, doc_id)
        write_atomic(path.with_suffix(".md"), summary_markdown(summary))
        write_atomic(path, json.dumps({"key": key, "summary": summary.model_dump(mode="json"),
                                       "usage": usage.model_dump(mode="json")}, ensure_ascii=False, indent=2))


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


class _Halt:
    """Set when the server stops or this worker lost the job's lease: either way, stop working on it."""

    def __init__(self, *events: threading.Event) -> None:
        self.events = events

    def is_set(self) -> bool:
        return any(e.is_set() for e in self.events)


class _LeaseLost(Exception):
    """Another worker holds the job now (this one was too slow to renew, or was thought dead)."""


class BriefingJobs:
    """Claims briefing jobs one at a time on a daemon thread (any worker may run any job); documents within a
    job run in parallel. ``lease`` seconds without a renewal hand the job to another worker."""

    kind = "briefing"

    def __init__(self, *, store: JobStore, pool: StorePool, runner: Runner, metrics: Metrics, worker: str,
                 lease: float = 30.0, poll: float = 1.0) -> None:
        self.store, self.pool, self.runner, self.metrics = store, pool, runner, metrics
        self.worker, self.lease, self.poll = worker, lease, poll
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -------------------------------------------------------------- lifecycle
    def start(self) -> int:
        """Start the worker thread; returns how many unfinished jobs it may resume."""
        pending = self.store.unfinished(self.kind)
        self._thread = threading.Thread(target=self._work, daemon=True, name="rag-briefing-jobs")
        self._thread.start()
        if pending:
            log.info("%d unfinished briefing job(s): %s", len(pending), ", ".join(j.id for j in pending))
        return len(pending)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout)

    def submit(self, request: dict[str, Any], *, owner: str | None = None) -> Job:
        job = self.store.create(self.kind, request, owner=owner)
        self._wake.set()
        return job

    def directory(self, job_id: str) -> Path | None:
        return self.store.directory(job_id)

    # -------------------------------------------------------------- work
    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                job = self.store.claim(self.kind, self.worker, lease=self.lease)
            except RagError as err:
                log.error("cannot claim briefing jobs: %s", err)
                job = None
            if job is None:
                self._wake.wait(self.poll)
                self._wake.clear()
                continue
            lost = threading.Event()
            beat = threading.Thread(target=self._heartbeat, args=(job.id, lost), daemon=True, name="rag-job-lease")
            beat.start()
            try:
                self._run(job, _Halt(self._stop, lost))
            except _Stopped:
                if lost.is_set():
                    log.warning("briefing job %s: lost its lease; another worker carries on", job.id)
                    continue
                log.info("briefing job %s interrupted by shutdown; another worker (or the next start) resumes it", job.id)
                self.store.release(job.id, self.worker)
                return
            except _LeaseLost:
                log.warning("briefing job %s: lost its lease; another worker carries on", job.id)
            except RagError as err:
                log.error("briefing job %s failed: %s", job.id, err)
                self._fail(job.id, public_message(err))
            except Exception:  # a bug: keep the worker alive for the next job; the detail is for the log only
                log.exception("briefing job %s crashed", job.id)
                self._fail(job.id, "internal error (see the server log)")
            finally:
                lost.set()  # also ends the heartbeat
                beat.join(5)

    def _heartbeat(self, job_id: str, done: threading.Event) -> None:
        while not done.wait(self.lease / 3):
            try:
                if not self.store.renew(job_id, self.worker, lease=self.lease):
                    done.set()
                    return
            except RagError as err:  # the database is away: keep trying until the lease would run out
                log.warning("briefing job %s: cannot renew its lease: %s", job_id, err)

    def _fail(self, job_id: str, message: str) -> None:
        if self.store.update(job_id, status="failed", error=message, worker=self.worker):
            self.metrics.observe_job("failed")

    def _update(self, job_id: str, **changes: Any) -> None:
        if not self.store.update(job_id, worker=self.worker, **changes):
            raise _LeaseLost()

    def _run(self, job: Job, halt: _Halt) -> None:
        out_dir = self.store.directory(job.id)
        if out_dir is not None:
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
        prompt_hash = load_template("summary").hash
        self._update(job.id, status="running", progress=progress)

        def one(doc: dict[str, Any]) -> None:
            nonlocal usage
            doc_id = str(doc["id"])
            key = _summary_key(str(doc["sha256"]), self.runner.backend, prompt_hash)
            try:
                saved = self.store.load_item(job.id, doc_id, key)
                if saved is None:
                    with self.pool.use() as store:
                        summary, used = summarize_document(doc_id, store=store, runner=self.runner)
                    if halt.is_set():
                        return  # the job is someone else's now (or we are stopping): keep nothing of it
                    self.store.save_item(job.id, doc_id, key, summary, used)
                    resumed = False
                else:
                    (summary, used), resumed = saved, True
            except RagError as err:
                log.error("briefing job %s: %s failed: %s", job.id, doc_id, err)
                with lock:
                    failures.append(Failure(doc_id=doc_id, source=str(doc["source"]), reason=public_message(err)))
                    progress["failed"] += 1
            else:
                if not resumed:
                    self.metrics.observe_usage(used)
                with lock:
                    summaries[doc_id] = summary
                    progress["skipped" if resumed else "done"] += 1
                    # What the job has cost so far, including documents finished before a restart.
                    usage = usage.add(used)
                    progress["usage"] = usage.model_dump()
            with lock:
                snapshot = dict(progress)
            self._update(job.id, progress=snapshot)

        _parallel(docs, one, workers=int(job.request.get("concurrency", 4)), stop=halt)  # type: ignore[arg-type]

        ordered = [summaries[str(d["id"])] for d in docs if str(d["id"]) in summaries]
        if not ordered:
            reasons = "; ".join(f"{f.source}: {f.reason}" for f in failures[:3])
            raise RagError(f"no document could be summarized ({reasons})")
        with self.pool.use() as store:
            briefing = build_briefing(ordered, docs, store=store, runner=self.runner, title=job.request.get("title"),
                                      failures=failures)
        if halt.is_set():
            raise _Stopped()
        self.metrics.observe_usage(briefing.usage)
        briefing.usage = usage.add(briefing.usage)
        if out_dir is not None:
            write_atomic(out_dir / "briefing.json", briefing.model_dump_json(indent=2))
            write_atomic(out_dir / "briefing.md", briefing_markdown(briefing))
        self._update(job.id, status="succeeded", progress=progress, result=briefing.model_dump_json())
        self.metrics.observe_job("succeeded")


def job_view(job: Job, *, with_result: bool = True) -> dict[str, Any]:
    """The public JSON of a job."""
    view: dict[str, Any] = {
        "id": job.id, "kind": job.kind, "status": job.status, "progress": job.progress,
        "request": job.request, "worker": job.worker,
        "error": job.error, "created_at": job.created_at, "updated_at": job.updated_at,
    }
    if with_result:
        view["result"] = Briefing.model_validate_json(job.result).model_dump(mode="json") if job.result else None
    return view
