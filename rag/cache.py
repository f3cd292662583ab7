"""Response cache: the same prompt to the same model gives the recorded answer without a network call.

``read-write`` answers hits from the cache and records misses; ``replay`` answers only from the
cache and fails on a miss (evals and demos that must not touch the network). The key covers
everything that shapes the reply: backend, model, prompt name + hash, messages, schema, limits.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ValidationError

from .backends.base import Backend, Generation, GenerationRequest
from .errors import BackendError, ConfigError, IndexStoreError
from .types import Usage

CacheMode = Literal["read-write", "replay"]
_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    created_at TEXT NOT NULL
)
"""


class ResponseCache(Protocol):
    def get(self, key: str) -> dict[str, Any] | None: ...

    def put(self, key: str, value: dict[str, Any]) -> None: ...


class SQLiteCache:
    """A key -> JSON table in SQLite (WAL, busy timeout); safe to share between threads and processes."""

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 5000) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, timeout=busy_timeout_ms / 1000, isolation_level=None,
                                         check_same_thread=False)
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as err:
            raise self._error("cannot open", err) from err

    def _error(self, what: str, err: Exception) -> IndexStoreError:
        return IndexStoreError(f"{what} response cache {self.path}: {err}",
                               hint="delete the file or run with --cache off", path=str(self.path))

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            with self._lock:
                row = self._conn.execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error as err:
            raise self._error("cannot read", err) from err
        if row is None:
            return None
        try:
            value = json.loads(row[0])
        except json.JSONDecodeError:
            return None  # a damaged entry is a miss; the next write replaces it
        return value if isinstance(value, dict) else None

    def put(self, key: str, value: dict[str, Any]) -> None:
        data = json.dumps(value, ensure_ascii=False, sort_keys=True)
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        try:
            with self._lock:
                # One statement in an explicit transaction: a reader sees the old row or the new one.
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    self._conn.execute("INSERT OR REPLACE INTO responses (key, value, created_at) VALUES (?, ?, ?)",
                                       (key, data, now))
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
        except sqlite3.Error as err:
            raise self._error("cannot write", err) from err

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def cache_key(backend_name: str, model: str, request: GenerationRequest, *, temperature: float | None = None,
              max_tokens: int | None = None) -> str:
    """sha256 of the canonical JSON of everything that shapes the reply."""
    schema = request.schema
    payload = {
        "backend": backend_name,
        "model": model,
        "prompt": {"name": request.prompt.ref.name, "hash": request.prompt.ref.hash},
        "messages": request.prompt.messages,
        "schema": None if schema is None else {"name": schema.__name__, "json_schema": schema.model_json_schema()},
        "max_tokens": request.max_tokens or max_tokens,
        "temperature": temperature,
    }
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class CachedBackend(Backend):
    """Wraps a backend; answers from ``cache`` when it can, per ``mode``."""

    def __init__(self, backend: Backend, cache: ResponseCache, mode: str) -> None:
        if mode not in ("read-write", "replay"):
            raise ConfigError(f"unknown cache mode {mode!r} for a cached backend", hint="use read-write or replay")
        self.inner = backend
        self.settings = backend.settings
        self.name = backend.name
        self.model = backend.model
        self.trusted_text = backend.trusted_text
        self.cache = cache
        self.mode: CacheMode = mode  # type: ignore[assignment]

    def key(self, request: GenerationRequest) -> str:
        llm = self.settings.llm
        temperature = llm.temperature if request.temperature is None else request.temperature
        return cache_key(self.name, self.model, request, temperature=temperature, max_tokens=llm.max_output_tokens)

    def generate(self, request: GenerationRequest) -> Generation:
        key = self.key(request)
        hit = self._lookup(key, request)
        if hit is not None:
            return hit
        result = self.inner.generate(request)
        self._store(key, result)
        return result

    def stream(self, request: GenerationRequest) -> Iterator[str | Generation]:
        key = self.key(request)
        hit = self._lookup(key, request)
        if hit is not None:
            if isinstance(hit.output, BaseModel) and hasattr(hit.output, "answer"):
                yield str(hit.output.answer)
            elif isinstance(hit.output, str):
                yield hit.output
            yield hit
            return
        for item in self.inner.stream(request):
            if isinstance(item, Generation):
                self._store(key, item)
            yield item

    def close(self) -> None:
        self.inner.close()
        close = getattr(self.cache, "close", None)
        if callable(close):
            close()

    def _lookup(self, key: str, request: GenerationRequest) -> Generation | None:
        value = self.cache.get(key)
        hit = _restore(value, request) if value is not None else None
        if hit is None and self.mode == "replay":
            raise BackendError("no cached response for this call (replay mode)",
                               hint="record it first with RAG_CACHE=read-write", key=key)
        return hit

    def _store(self, key: str, result: Generation) -> None:
        output = result.output
        self.cache.put(key, {
            "kind": "model" if isinstance(output, BaseModel) else "text",
            "output": output.model_dump(mode="json") if isinstance(output, BaseModel) else output,
            "raw": result.raw,
            "usage": result.usage.model_dump(mode="json"),
            "backend": self.name,
            "model": self.model,
        })


def _restore(value: dict[str, Any], request: GenerationRequest) -> Generation | None:
    """A cached entry as a Generation; None (a miss) if it no longer fits the request's schema."""
    try:
        if request.schema is not None:
            if value.get("kind") != "model":
                return None
            output: BaseModel | str = request.schema.model_validate(value["output"])
        elif value.get("kind") == "text" and isinstance(value.get("output"), str):
            output = value["output"]
        else:
            return None
        recorded = Usage.model_validate(value.get("usage") or {})
    except (ValidationError, KeyError, TypeError):
        return None
    # Nothing was spent or waited for this time; the recorded token counts stay for reporting.
    usage = recorded.model_copy(update={"cached": True, "latency_ms": 0.0, "cost_usd": 0.0,
                                        "calls": max(recorded.calls, 1)})
    return Generation(output=output, usage=usage, raw=str(value.get("raw", "")))
