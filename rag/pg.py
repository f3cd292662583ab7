"""PostgreSQL plumbing shared by the PostgreSQL stores: URLs, connections, named migrations, one-line errors.

Everything here speaks psycopg 3 (imported lazily, so SQLite users never need it). Every failure that
reaches the user is an ``IndexStoreError`` of one line naming the database without its password.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .errors import IndexStoreError

if TYPE_CHECKING:  # pragma: no cover
    import psycopg

URL_SCHEMES = ("postgresql://", "postgres://")
# Advisory lock keys (any two constants of ours): one writer of documents at a time, one migrator at a time.
WRITE_LOCK = 0x72616701
MIGRATE_LOCK = 0x72616702


def is_database_url(value: object) -> bool:
    """True for a ``postgresql://`` (or ``postgres://``) URL; anything else is an index file path."""
    return isinstance(value, str) and value.strip().lower().startswith(URL_SCHEMES)


def display_url(url: str) -> str:
    """The URL as it may be shown and logged: any password replaced by ``***``."""
    shown = re.sub(r"(://[^:/@?#]*):[^@/?#]*@", r"\1:***@", url)
    return re.sub(r"(?i)([?&]password=)[^&]*", r"\1***", shown)


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as err:  # an install without the postgres extra
        raise IndexStoreError("a postgresql:// index needs psycopg 3, which is not installed",
                              hint="pip install 'rag-briefings[postgres]'") from err
    return psycopg


def _first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    line = text.splitlines()[0].strip()
    # libpq prefixes its messages with the address it tried: keep only what went wrong.
    line = re.sub(r'^.*?connection to server (at|on) .*? failed: ', "", line)
    return re.sub(r"^(FATAL|ERROR):\s+", "", line)


def store_error(err: BaseException, url: str, action: str) -> IndexStoreError:
    """One line that says what is wrong with the database (and that nothing was changed where that holds)."""
    psycopg = _psycopg()
    where = f"the index database {display_url(url)}"
    errors = psycopg.errors
    message = _first_line(err)
    if isinstance(err, errors.InsufficientPrivilege):
        return IndexStoreError(f"{where}: this database user may not {action} it ({message}); nothing was changed",
                               hint="use a user with write access, or only read with this one")
    if isinstance(err, errors.ReadOnlySqlTransaction):
        return IndexStoreError(f"{where} was opened read-only (or is a read-only replica); this command needs to write it")
    if isinstance(err, errors.InvalidCatalogName):
        return IndexStoreError(f"cannot connect to {where}: {message}", hint="create it with `createdb`")
    if isinstance(err, errors.InvalidPassword | errors.InvalidAuthorizationSpecification):
        return IndexStoreError(f"cannot connect to {where}: {message}", hint="check the user and password in RAG_INDEX")
    if isinstance(err, errors.DiskFull):
        return IndexStoreError(f"disk full while writing {where}; nothing was changed", hint="free some space and run it again")
    if isinstance(err, errors.ProgrammingError) and "invalid" in message and ("dsn" in message or "option" in message
                                                                           or "connection" in message):
        return IndexStoreError(f"invalid database URL {display_url(url)}: {message}",
                               hint="use postgresql://USER@HOST/DB or postgresql://USER@/DB?host=SOCKET_DIR")
    if isinstance(err, psycopg.OperationalError) and action == "connect":
        if re.search(r'database ".*" does not exist', message):
            return IndexStoreError(f"cannot connect to {where}: {message}", hint="create it with `createdb`")
        if re.search(r'role ".*" does not exist|password authentication failed|no password supplied', message):
            return IndexStoreError(f"cannot connect to {where}: {message}", hint="check the user and password in RAG_INDEX")
        return IndexStoreError(f"cannot connect to {where}: {message}", hint="is PostgreSQL running and the URL right?")
    if isinstance(err, psycopg.OperationalError | errors.AdminShutdown | errors.CrashShutdown):
        return IndexStoreError(f"lost the connection to {where} while trying to {action} it ({message}); "
                               "an unfinished write was rolled back", hint="try again once the database is back")
    return IndexStoreError(f"cannot {action} {where}: {message}")


def connect(url: str, *, readonly: bool = False, application: str = "rag", timeout: float = 10.0) -> "psycopg.Connection":
    """An autocommit connection (transactions are explicit); ``readonly`` connections can never write."""
    psycopg = _psycopg()
    try:
        from psycopg.conninfo import conninfo_to_dict

        conninfo_to_dict(url)  # a malformed URL is a usage error, whatever the server would say
    except psycopg.ProgrammingError as err:
        raise IndexStoreError(f"invalid database URL {display_url(url)}: {_first_line(err)}",
                              hint="use postgresql://USER@HOST/DB or postgresql://USER@/DB?host=SOCKET_DIR") from err
    options = "-c default_transaction_read_only=on" if readonly else None
    try:
        return psycopg.connect(url, autocommit=True, application_name=application, connect_timeout=max(1, int(timeout)),
                               **({"options": options} if options else {}))
    except psycopg.Error as err:
        raise store_error(err, url, "connect") from err


def is_usable(conn: "psycopg.Connection") -> bool:
    """False once the connection is closed, broken or left inside a transaction: never hand it on."""
    from psycopg.pq import TransactionStatus

    return not conn.closed and not conn.broken and conn.info.transaction_status == TransactionStatus.IDLE


# ------------------------------------------------------------------ migrations
Migration = Callable[["psycopg.Connection"], None]


def schema_version(conn: "psycopg.Connection") -> int | None:
    """The recorded schema version; None when the database has no rag schema at all."""
    row = conn.execute("SELECT to_regclass('rag_meta') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return None
    found = conn.execute("SELECT value FROM rag_meta WHERE key = 'schema_version'").fetchone()
    try:
        return int(found[0]) if found else 0
    except (TypeError, ValueError):
        raise IndexStoreError(f"the index database records an invalid schema version {found[0]!r}") from None


def migrate(conn: "psycopg.Connection", migrations: Sequence[Migration], *, url: str) -> tuple[int, int]:
    """Apply the named migrations not yet recorded, in one transaction; returns (version before, after).

    Concurrent migrators wait on an advisory lock and then find the work done. A schema from a newer
    rag is refused, untouched."""
    target = len(migrations)
    current = schema_version(conn)
    if current == target:
        return target, target  # nothing to do: no DDL, so a user without CREATE rights can still index
    if current is not None and current > target:
        raise newer_schema(url, current, target)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS rag_meta (key text PRIMARY KEY, value text NOT NULL)")
        conn.execute("CREATE TABLE IF NOT EXISTS rag_migrations (version int PRIMARY KEY, name text NOT NULL, "
                     "applied_at timestamptz NOT NULL DEFAULT now())")
        before = schema_version(conn) or 0
        if before > target:
            raise newer_schema(url, before, target)
        for version, migration in enumerate(migrations[before:], start=before + 1):
            migration(conn)
            conn.execute("INSERT INTO rag_migrations (version, name) VALUES (%s, %s)", (version, migration.__name__))
            conn.execute("INSERT INTO rag_meta VALUES ('schema_version', %s) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                         (str(version),))
    return before, target


def newer_schema(url: str, version: int, ours: int) -> IndexStoreError:
    return IndexStoreError(f"the index database {display_url(url)} has schema version {version}, newer than this rag "
                           f"({ours}); left unchanged", hint="upgrade rag on this machine")
