"""Which store holds the state: SQLite for an index file, PostgreSQL for a ``postgresql://`` URL.

The one place that chooses. Everything else receives an ``IndexStore`` (and the session store and
response cache that go with it) and never asks which kind it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .index import IndexStore, SQLiteIndex
from .pg import is_database_url

if TYPE_CHECKING:  # pragma: no cover
    from .cache import ResponseCache
    from .config import Settings
    from .sessions import SessionStore


def open_index(setting: Path | str, *, create: bool = False, readonly: bool = False) -> IndexStore:
    """The index named by ``setting``: a ``postgresql://`` URL or an SQLite file path."""
    if is_database_url(setting):
        from .index_pg import PostgresIndex

        return PostgresIndex(str(setting), create=create, readonly=readonly)
    return SQLiteIndex(Path(setting), create=create, readonly=readonly)


def is_shared(setting: Path | str) -> bool:
    """True when the index lives in a database server that several machines may share."""
    return is_database_url(setting)


def sessions_for(store: IndexStore) -> "SessionStore":
    """Saved chat conversations, kept where the index is."""
    from .sessions import SQLiteSessions

    if isinstance(store, SQLiteIndex):
        return SQLiteSessions(store)
    from .state_pg import PostgresSessions

    return PostgresSessions(store)  # type: ignore[arg-type]


def open_cache(settings: "Settings") -> "ResponseCache":
    """The response cache: a file beside an SQLite index, a table in a PostgreSQL one."""
    if is_database_url(settings.index) and settings.cache_path is None:
        from .state_pg import PostgresCache

        return PostgresCache(str(settings.index))
    from .cache import SQLiteCache

    return SQLiteCache(settings.resolved_cache_path)


def count_documents(store: IndexStore) -> int:
    if isinstance(store, SQLiteIndex):
        return int(store.db.execute("SELECT count(*) FROM documents").fetchone()[0])
    return int(store.count_documents())  # type: ignore[attr-defined]


def usable(store: IndexStore) -> bool:
    """Whether a pooled store may be handed to the next user (not mid-transaction, not broken)."""
    if isinstance(store, SQLiteIndex):
        return not store.db.in_transaction
    return bool(store.usable())  # type: ignore[attr-defined]
