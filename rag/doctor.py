"""``rag doctor``: can this index be used? Connection, schema version, write access and contents, each
checked in turn and reported in one line; the first failure stops the checks that depend on it."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel

from .config import Settings
from .errors import RagError


class Check(BaseModel):
    name: str
    ok: bool
    detail: str


class DoctorReport(BaseModel):
    index: str
    kind: str
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


def _pg_checks(url: str, checks: list[Check]) -> None:
    from . import pg
    from .index_pg import SCHEMA_VERSION, PostgresIndex

    try:
        conn = pg.connect(url, readonly=True)
    except RagError as err:
        checks.append(Check(name="connection", ok=False, detail=str(err)))
        return
    try:
        server = conn.execute("SELECT current_setting('server_version'), current_user, current_database()").fetchone()
        checks.append(Check(name="connection", ok=True, detail=f"PostgreSQL {server[0]}, user {server[1]}, database {server[2]}"))
        version = pg.schema_version(conn)
        if version is None:
            checks.append(Check(name="schema", ok=False, detail="no rag index in this database (create it with `rag index PATHS`)"))
            return
        if version != SCHEMA_VERSION:
            what = "newer than this rag: upgrade rag" if version > SCHEMA_VERSION else "run `rag migrate`"
            checks.append(Check(name="schema", ok=False, detail=f"version {version}, this rag needs {SCHEMA_VERSION} ({what})"))
            return
        names = [r[0] for r in conn.execute("SELECT name FROM rag_migrations ORDER BY version").fetchall()]
        checks.append(Check(name="schema", ok=True, detail=f"version {version} ({', '.join(names)})"))
        missing = [t for t, can in conn.execute(
            "SELECT t, has_table_privilege(t, 'INSERT, UPDATE, DELETE') FROM unnest(ARRAY['rag_documents', 'rag_chunks', "
            "'rag_postings', 'rag_terms', 'rag_meta', 'rag_jobs', 'rag_sessions', 'rag_cache', 'rag_rate_buckets', "
            "'rag_worker_metrics']) t").fetchall() if not can]
        checks.append(Check(name="write access", ok=not missing, detail="this user may index and serve" if not missing else
                            f"this user cannot write {', '.join(missing)} (search and ask work; `rag index` and `rag serve` do not)"))
        store = PostgresIndex(url, readonly=True)
        try:
            stats = store.stats()
        finally:
            store.close()
        checks.append(Check(name="contents", ok=True, detail=f"{stats['documents']} documents, {stats['chunks']} chunks, "
                            f"{int(stats['size_bytes']) / 1e6:.1f} MB"))
    except RagError as err:
        checks.append(Check(name="database", ok=False, detail=str(err)))
    except pg._psycopg().Error as err:
        checks.append(Check(name="database", ok=False, detail=str(pg.store_error(err, url, "read"))))
    finally:
        conn.close()


def _sqlite_checks(path: Path, checks: list[Check]) -> None:
    from .index import SCHEMA_VERSION, SQLiteIndex

    if not path.exists():
        checks.append(Check(name="file", ok=False, detail=f"no index at {path} (create it with `rag index PATHS`)"))
        return
    checks.append(Check(name="file", ok=True, detail=f"{path} ({path.stat().st_size / 1e6:.1f} MB)"))
    version = SQLiteIndex.peek_version(path)
    try:
        store = SQLiteIndex(path, readonly=True)
    except RagError as err:
        checks.append(Check(name="schema", ok=False, detail=str(err)))
        return
    try:
        checks.append(Check(name="schema", ok=True, detail=f"version {version} of {SCHEMA_VERSION}"))
        writable = os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)
        checks.append(Check(name="write access", ok=writable, detail="the file and its directory are writable" if writable
                            else "read-only: search and ask work; `rag index` and `rag serve` do not"))
        stats = store.stats()
        checks.append(Check(name="contents", ok=True, detail=f"{stats['documents']} documents, {stats['chunks']} chunks"))
    finally:
        store.close()


def check_index(settings: Settings) -> DoctorReport:
    checks: list[Check] = []
    if settings.index_is_database:
        from .pg import display_url

        _pg_checks(str(settings.index), checks)
        return DoctorReport(index=display_url(str(settings.index)), kind="postgresql", checks=checks)
    _sqlite_checks(Path(settings.index), checks)
    return DoctorReport(index=str(settings.index), kind="sqlite", checks=checks)
