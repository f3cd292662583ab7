"""Chat sessions and the response cache on PostgreSQL, beside an index there (the same interfaces as
``sessions.SQLiteSessions`` and ``cache.SQLiteCache``)."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timezone
from typing import Any

from . import pg
from .index_pg import PostgresIndex


class PostgresSessions:
    """Conversations in ``rag_sessions``; any worker can load what another saved."""

    def __init__(self, index: PostgresIndex) -> None:
        self.index = index

    def load(self, name: str) -> list[dict[str, str]]:
        row = self.index._execute("SELECT turns FROM rag_sessions WHERE name = %s", (name,)).fetchone()
        return json.loads(row[0]) if row else []

    def save(self, name: str, turns: list[dict[str, str]]) -> None:
        self.index._execute(
            "INSERT INTO rag_sessions VALUES (%s, %s, %s) ON CONFLICT (name) DO UPDATE "
            "SET turns = excluded.turns, updated_at = excluded.updated_at", (name, json.dumps(turns), time.time()),
            action="write")


class PostgresCache:
    """The response cache in ``rag_cache``: one connection, used by one thread at a time."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.Lock()
        self._conn = pg.connect(url, application="rag-cache")

    def _run(self, sql: str, params: tuple[Any, ...], action: str) -> Any:
        psycopg = pg._psycopg()
        with self._lock:
            if self._conn.closed or self._conn.broken:
                self._conn = pg.connect(self.url, application="rag-cache")
            try:
                return self._conn.execute(sql, params).fetchone()
            except psycopg.Error as err:
                raise pg.store_error(err, self.url, action) from err

    def get(self, key: str) -> dict[str, Any] | None:
        row = self._run("SELECT value FROM rag_cache WHERE key = %s", (key,), "read")
        if row is None:
            return None
        try:
            value = json.loads(row[0])
        except json.JSONDecodeError:
            return None
        return value if isinstance(value, dict) else None

    def put(self, key: str, value: dict[str, Any]) -> None:
        data = json.dumps(value, ensure_ascii=False, sort_keys=True)
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self._run("INSERT INTO rag_cache VALUES (%s, %s, %s) ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
                  "created_at = excluded.created_at RETURNING 1", (key, data, now), "write")

    def __len__(self) -> int:
        row = self._run("SELECT count(*) FROM rag_cache", (), "read")
        return int(row[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()
