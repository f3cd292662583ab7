"""The persistent index: SQLite (WAL) behind the small ``IndexStore`` interface.

One transaction per indexing run: a crash, Ctrl-C or bad file mid-run leaves the index exactly as
it was. The schema is built by named migrations applied in order and recorded; an index written
by a newer version is refused with a clear message. Keyword search is exact BM25 over postings kept
in the same file (``rag.postings``, ``rag.bm25``), written in the same transaction as the chunks. A
server database (PostgreSQL full-text search) can implement ``IndexStore`` without touching retrieval
or generation.
"""

from __future__ import annotations

import gc
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

import numpy as np

from . import bm25
from .chunk import Chunker
from .embed import DIM, MODEL as EMBED_MODEL, from_blob, get_embedder
from .errors import IndexStoreError
from .ingest import Event, IngestReport, Skipped, Unchanged, Warned, iter_documents, source_prefix
from .pipeline import Prepared, default_workers, prepare_chunks, prepared_events
from .postings import PostingsReader, PostingsWriter, create_tables as create_postings_tables, rebuild as rebuild_postings
from .types import Chunk, Document, Hit, Span


class IndexStore(Protocol):
    """What retrieval and indexing need from a store."""

    def document_keys(self) -> dict[str, str]: ...
    def put_document(self, doc: Document, chunks: list[Chunk], key: str, *, owner: str | None = None) -> None: ...
    def delete_document(self, doc_id: str) -> bool: ...
    def transaction(self) -> AbstractContextManager[None]: ...
    def search(self, terms: list[str], *, k: int, source_glob: str | None = None,
               date_from: str | None = None, date_to: str | None = None) -> list[Hit]: ...
    def vector_search(self, vector: np.ndarray, *, k: int, source_glob: str | None = None,
                      date_from: str | None = None, date_to: str | None = None) -> list[Hit]: ...
    def generation(self) -> int: ...
    def get_chunks(self, ids: Iterable[str]) -> list[Chunk]: ...
    def get_document(self, doc_id: str) -> Document | None: ...
    def page_starts(self, doc_ids: Iterable[str]) -> dict[str, list[int]]: ...
    def list_documents(self) -> list[dict[str, object]]: ...
    def stats(self) -> dict[str, object]: ...


def _run_script(db: sqlite3.Connection, script: str) -> None:
    """Run statements one by one: ``executescript`` would commit the surrounding transaction."""
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


def _m1_base(db: sqlite3.Connection) -> None:
    _run_script(db, 
        """
        CREATE TABLE documents (
            id TEXT PRIMARY KEY, source TEXT NOT NULL, title TEXT NOT NULL DEFAULT '', date TEXT, url TEXT,
            sha256 TEXT NOT NULL, key TEXT NOT NULL, text TEXT NOT NULL, boilerplate TEXT NOT NULL DEFAULT '[]',
            n_tokens INTEGER NOT NULL DEFAULT 0, indexed_at REAL NOT NULL
        );
        CREATE INDEX documents_source ON documents(source);
        CREATE INDEX documents_date ON documents(date);
        CREATE TABLE chunks (
            rowid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,
            doc_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
            ordinal INTEGER NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL, n_tokens INTEGER NOT NULL
        );
        CREATE INDEX chunks_doc ON chunks(doc_id);
        CREATE VIRTUAL TABLE chunks_fts USING fts5(
            text, content='', tokenize='porter unicode61 remove_diacritics 2'
        );
        """
    )


def _m2_sessions_jobs(db: sqlite3.Connection) -> None:
    _run_script(db, 
        """
        CREATE TABLE sessions (
            name TEXT PRIMARY KEY, turns TEXT NOT NULL DEFAULT '[]', updated_at REAL NOT NULL
        );
        CREATE TABLE jobs (
            id TEXT PRIMARY KEY, kind TEXT NOT NULL, status TEXT NOT NULL, request TEXT NOT NULL,
            progress TEXT NOT NULL DEFAULT '{}', result TEXT, error TEXT,
            created_at REAL NOT NULL, updated_at REAL NOT NULL
        );
        """
    )


def _m3_owners(db: sqlite3.Connection) -> None:
    """Who added a document or started a job over HTTP (NULL: the command line, read-only over HTTP)."""
    _run_script(db, "ALTER TABLE documents ADD COLUMN owner TEXT; ALTER TABLE jobs ADD COLUMN owner TEXT")


def _has_column(db: sqlite3.Connection, table: str, column: str) -> bool:
    return any(row[1] == column for row in db.execute(f"PRAGMA table_info({table})"))


def _m4_pages(db: sqlite3.Connection) -> None:
    """Where each page of a paged document (PDF) starts in its text: a JSON list of offsets, NULL when unpaged."""
    if not _has_column(db, "documents", "pages"):  # idempotent: a development index may have it already
        _run_script(db, "ALTER TABLE documents ADD COLUMN pages TEXT")


def _m5_vectors(db: sqlite3.Connection) -> None:
    """Chunk vectors (float16, the offline embedder's) for the semantic retrieval channel, and a generation
    number bumped by every write that changes documents, so readers can cache what they derive from them."""
    _m4_pages(db)  # an index from a development build numbered these two the other way round
    _run_script(db, """
        CREATE TABLE IF NOT EXISTS chunk_vectors (
            chunk INTEGER PRIMARY KEY REFERENCES chunks(rowid) ON DELETE CASCADE, vector BLOB NOT NULL
        );
        INSERT OR IGNORE INTO meta VALUES ('generation', '0')
        """)


def _m6_bm25_postings(db: sqlite3.Connection) -> None:
    """Keyword search moves from FTS5 (which scores every row that matches any term, so its cost grew with the
    corpus) to precomputed BM25 postings over the language layer's terms: built here from the chunks already
    indexed; the FTS5 table goes."""
    create_postings_tables(db)
    rebuild_postings(db)
    db.execute("DROP TABLE IF EXISTS chunks_fts")


def _m7_file_signatures(db: sqlite3.Connection) -> None:
    """The size, modification time and inode of the file a document was read from, so a later run can tell
    an unchanged file without reading it (NULL: read it; e.g. uploads, jsonl lines, files modified just before)."""
    if not _has_column(db, "documents", "file_signature"):
        _run_script(db, "ALTER TABLE documents ADD COLUMN file_signature TEXT")


def _m8_folded_terms(db: sqlite3.Connection) -> None:
    """Index terms lose their diacritics ("façade" -> "facade"): postings rebuilt from the stored chunks."""
    rebuild_postings(db)


# A document's text is stored once, in pieces cut at its chunks' boundaries: row key = the document's number << 32 |
# the piece's start offset, so a chunk is the one or few pieces in [start, end) and a search reads the text of the
# chunks it returns, not whole documents (SQLite's substr() on a long text reads every overflow page before the cut).
_TEXT_SHIFT = 32  # documents are at most 16 MiB (ingest's limit), far below 2**32 characters


def _pieces_sql(lo: str, hi: str) -> str:
    """SQL for the text of the pieces keyed ``lo`` to ``hi`` (SQL expressions), in order."""
    return (f"(SELECT group_concat(piece, '') FROM (SELECT t.text AS piece FROM doc_text t WHERE t.key BETWEEN {lo} AND {hi} "
            "ORDER BY t.key))")


CHUNK_TEXT_SQL = _pieces_sql(f"(d.num << {_TEXT_SHIFT}) + c.start", f"(d.num << {_TEXT_SHIFT}) + c.\"end\" - 1")
"""The text of chunk ``c`` of document ``d`` (SQL expression)."""
_DOCUMENT_TEXT_SQL = _pieces_sql(f"d.num << {_TEXT_SHIFT}", f"((d.num + 1) << {_TEXT_SHIFT}) - 1")


def text_pieces(num: int, text: str, spans: Iterable[tuple[int, int]]) -> list[tuple[int, str]]:
    """``doc_text`` rows for document number ``num``: its text cut at every chunk start and end."""
    cuts = sorted({0, len(text), *(x for span in spans for x in span)})
    base = num << _TEXT_SHIFT
    return [(base | a, text[a:b]) for a, b in zip(cuts, cuts[1:]) if b > a]


def _text_range(num: int) -> tuple[int, int]:
    return num << _TEXT_SHIFT, ((num + 1) << _TEXT_SHIFT) - 1


def _m9_text_pieces(db: sqlite3.Connection) -> None:
    """Document text moves from ``documents.text`` into pieces at chunk boundaries (``doc_text``), keyed by a
    document number that, unlike SQLite's implicit rowid, VACUUM never changes."""
    if not _has_column(db, "documents", "num"):
        db.execute("ALTER TABLE documents ADD COLUMN num INTEGER")
    db.execute("CREATE TABLE IF NOT EXISTS doc_text (key INTEGER PRIMARY KEY, text TEXT NOT NULL)")
    db.execute("UPDATE documents SET num = rowid WHERE num IS NULL")
    db.execute("CREATE UNIQUE INDEX IF NOT EXISTS documents_num ON documents(num)")
    for doc_id, num in db.execute("SELECT id, num FROM documents WHERE text != ''").fetchall():
        text = db.execute("SELECT text FROM documents WHERE id = ?", (doc_id,)).fetchone()[0]
        spans = db.execute('SELECT start, "end" FROM chunks WHERE doc_id = ?', (doc_id,)).fetchall()
        db.execute("DELETE FROM doc_text WHERE key BETWEEN ? AND ?", _text_range(num))
        db.executemany("INSERT INTO doc_text (key, text) VALUES (?, ?)", text_pieces(num, text, spans))
        db.execute("UPDATE documents SET text = '' WHERE id = ?", (doc_id,))


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_m1_base, _m2_sessions_jobs, _m3_owners, _m4_pages, _m5_vectors,
                                                          _m6_bm25_postings, _m7_file_signatures, _m8_folded_terms,
                                                          _m9_text_pieces]
SCHEMA_VERSION = len(MIGRATIONS)

_CHUNK_COLS = f"c.id, c.doc_id, c.ordinal, c.start, c.\"end\", c.n_tokens, {CHUNK_TEXT_SQL}"


def _row_chunk(row: tuple) -> Chunk:
    return Chunk(id=row[0], doc_id=row[1], ordinal=row[2], start=row[3], end=row[4], n_tokens=row[5], text=row[6])


def _filters(source_glob: str | None, date_from: str | None, date_to: str | None) -> tuple[str, list[object]]:
    """SQL (" AND ...") and parameters for the source and date filters, on documents aliased ``d``."""
    where: list[str] = []
    params: list[object] = []
    if source_glob:
        where.append("d.source GLOB ?")
        params.append(source_glob)
    if date_from:
        where.append("d.date >= ?")
        params.append(date_from)
    if date_to:
        # Compare at the precision given: a document dated 2025-01-31T10:00 is on or before 2025-01-31.
        where.append("substr(d.date, 1, ?) <= ?")
        params.extend([len(date_to), date_to])
    return ("".join(f" AND {w}" for w in where), params)


def embed_chunks(chunks: Sequence[Chunk]) -> np.ndarray:
    """The vectors stored for ``chunks`` (what the semantic channel searches)."""
    return get_embedder().embed([c.text for c in chunks])


def document_key(doc: Document, chunker: Chunker) -> str:
    """What decides whether a stored document is current: its content, the chunker and the embedder."""
    return f"{doc.sha256}:{chunker.fingerprint}:{EMBED_MODEL}"


def _pages(raw: str | None) -> list[int] | None:
    try:
        pages = json.loads(raw) if raw else None
    except ValueError:
        return None  # a damaged page list costs page numbers, never the answer
    return [int(p) for p in pages] if isinstance(pages, list) and all(isinstance(p, int) for p in pages) else None


def _read_only_fs(directory: Path) -> bool:
    try:
        return bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def store_error(err: sqlite3.Error, path: Path, action: str) -> IndexStoreError:
    """One line that says what is wrong with the index file (never advice to delete a valid index)."""
    name = getattr(err, "sqlite_errorname", "") or ""
    where = f"the index {path}"
    if name.startswith("SQLITE_FULL") or "disk is full" in str(err):
        return IndexStoreError(f"disk full while writing {where}; nothing was changed", hint="free some space and run it again")
    if name.startswith("SQLITE_READONLY") or "readonly database" in str(err):
        why = "on a read-only filesystem" if _read_only_fs(path.parent) else "read-only (file or directory permissions)"
        return IndexStoreError(f"{where} is {why}; this command needs to write it", hint="use a writable --index")
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return IndexStoreError(f"{where} is busy: another rag process is writing", hint="try again in a moment")
    if name.startswith("SQLITE_CANTOPEN"):
        if _read_only_fs(path.parent):
            why = "it is on a read-only filesystem"
        elif not os.access(path.parent, os.W_OK):
            why = f"its directory {path.parent} is not writable (SQLite needs to create {path.name}-shm beside it)"
        elif path.exists() and not os.access(path, os.R_OK):
            why = "permission denied"
        else:
            why = "the file cannot be opened"
        return IndexStoreError(f"cannot {action} {where}: {why}")
    if name.startswith("SQLITE_NOTADB"):
        return IndexStoreError(f"{path} is not a rag index (not an SQLite database); left unchanged",
                               hint="pass the index file that `rag index` wrote, or create one with `rag index PATHS`")
    if name.startswith("SQLITE_CORRUPT"):
        return IndexStoreError(f"{where} is damaged ({err})", hint="rebuild it with `rag index` into a new --index file")
    if name.startswith("SQLITE_IOERR"):
        return IndexStoreError(f"I/O error on {where} ({err})", hint="check the disk")
    if name.startswith("SQLITE_PERM") or name.startswith("SQLITE_AUTH"):
        return IndexStoreError(f"permission denied on {where}")
    return IndexStoreError(f"cannot {action} {where}: {err}")


def nearest_hits(ids: np.ndarray, scores: np.ndarray, k: int, filtered: bool,
                 fetch: Callable[[list[int]], list[tuple]]) -> list[Hit]:
    """The ``k`` best-scoring chunks as Hits, for either store: ``fetch(rowids)`` returns rows of (rowid,
    the chunk columns, source, title, date, url) for those that pass the filters. A filtered search looks
    at 8k candidates so that filters rarely leave it short."""
    take = min(len(ids), k * 8 if filtered else k)
    top = np.argpartition(-scores, take - 1)[:take] if take < len(ids) else np.arange(len(ids))
    top = top[np.argsort(-scores[top], kind="stable")]
    by_rowid = {r[0]: r for r in fetch([int(i) for i in ids[top]])}
    hits: list[Hit] = []
    for i in top:
        r = by_rowid.get(int(ids[i]))
        if r is None:
            continue
        hits.append(Hit(chunk=_row_chunk(r[1:8]), score=round(float(scores[i]), 4), rank=len(hits) + 1,
                        source=r[8], title=r[9], date=r[10], url=r[11]))
        if len(hits) == k:
            break
    return hits


class SQLiteIndex:
    """``IndexStore`` on one SQLite file (WAL mode, so readers never see a half-written run).

    Three ways to open it: ``create=True`` (``rag index`` only) creates the file and applies
    migrations; ``readonly=True`` (search, ask, stats, ...) opens it read-only and never changes the
    file; the default opens an existing index for writing (sessions, uploads, jobs). The last two
    refuse a file that is not a rag index, and one whose schema needs migrating, leaving it untouched.
    """

    def __init__(self, path: Path | str, *, create: bool = False, readonly: bool = False, busy_timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.readonly = readonly and not create
        if not create and not self.path.exists():
            raise IndexStoreError(f"no index at {self.path}", hint="create it with `rag index PATHS`, or pass --index")
        if self.path.is_dir():
            raise IndexStoreError(f"{self.path} is a directory, not an index file", hint="pass a file path to --index")
        if not create and not self.path.is_file():
            raise IndexStoreError(f"{self.path} is not an index file (it is a device or a pipe)")
        if create:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise IndexStoreError(f"cannot create index directory {self.path.parent}: {err.strerror}") from err
        try:
            self.db = self._connect(busy_timeout, create=create)
            self.db.execute("PRAGMA foreign_keys = ON")
            if create:
                self._refuse_foreign()
                self.db.execute("PRAGMA journal_mode = WAL")
                self.db.execute("PRAGMA synchronous = NORMAL")
                self._migrate()
            else:
                self._check_version()
        except sqlite3.Error as err:
            if getattr(self, "db", None) is not None:
                self.db.close()
            raise store_error(err, self.path, "open") from err
        except IndexStoreError:
            if getattr(self, "db", None) is not None:
                self.db.close()
            raise

    def _connect(self, busy_timeout: float, *, create: bool) -> sqlite3.Connection:
        if create:
            return sqlite3.connect(self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
        uri = "file:" + quote(str(self.path.resolve())) + ("?mode=ro" if self.readonly else "?mode=rw")
        try:
            db = sqlite3.connect(uri, uri=True, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return db
        except sqlite3.OperationalError as err:
            # A WAL index on a read-only filesystem cannot get its -shm file: nobody can write there either,
            # so reading it as immutable is safe (and the only way to read it at all).
            if self.readonly and getattr(err, "sqlite_errorname", "") == "SQLITE_CANTOPEN" and _read_only_fs(self.path.parent):
                db = sqlite3.connect(uri + "&immutable=1", uri=True, timeout=busy_timeout, isolation_level=None,
                                     check_same_thread=False)
                db.execute("SELECT count(*) FROM sqlite_master").fetchone()
                return db
            raise

    @staticmethod
    def peek_version(path: Path | str) -> int:
        """The schema version recorded in an index file, read without changing it (0 if none)."""
        uri = "file:" + quote(str(Path(path).resolve())) + "?mode=ro"
        try:
            db = sqlite3.connect(uri, uri=True)
            try:
                row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            finally:
                db.close()
            return int(row[0]) if row else 0
        except (sqlite3.Error, ValueError, TypeError):
            return 0

    # -------------------------------------------------------------- schema
    def _has_meta(self) -> bool:
        return self.db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone() is not None

    def _version(self) -> int:
        if not self._has_meta():
            return 0
        row = self.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if not row:
            return 0
        try:
            return int(row[0])
        except (TypeError, ValueError):
            raise IndexStoreError(f"the index {self.path} records an invalid schema version {row[0]!r}",
                                  hint="the file is damaged; rebuild it with `rag index` into a new --index file") from None

    def _check_version(self) -> None:
        """For an existing index opened without ``create``: it must be a rag index at our schema version."""
        if not self._has_meta() or self.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() is None:
            raise IndexStoreError(f"{self.path} is not a rag index (an SQLite database without rag's tables); left unchanged",
                                  hint="pass the index file that `rag index` wrote, or create one with `rag index PATHS`")
        version = self._version()
        if version > SCHEMA_VERSION:
            raise IndexStoreError(
                f"index {self.path} has schema version {version}, newer than this rag ({SCHEMA_VERSION})",
                hint="upgrade rag, or rebuild the index",
            )
        if version < SCHEMA_VERSION:
            raise IndexStoreError(f"index {self.path} has schema version {version}, older than this rag ({SCHEMA_VERSION})",
                                  hint="upgrade it with `rag migrate` (or `rag index`)")

    def _refuse_foreign(self) -> None:
        """Never add our tables to someone else's database (or switch it to WAL)."""
        if self._version() == 0 and self.db.execute(
                "SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' AND name != 'meta'").fetchone()[0]:
            raise IndexStoreError(f"{self.path} is not a rag index (an SQLite database with other tables); left unchanged",
                                  hint="choose a new --index file for rag")

    def _migrate(self) -> None:
        self.db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        version = self._version()
        if version > SCHEMA_VERSION:
            raise IndexStoreError(
                f"index {self.path} has schema version {version}, newer than this rag ({SCHEMA_VERSION})",
                hint="upgrade rag, or rebuild the index",
            )
        if version == SCHEMA_VERSION:
            return
        with self.transaction():
            version = self._version()  # another process may have migrated meanwhile
            for i, migration in enumerate(MIGRATIONS[version:], start=version + 1):
                migration(self.db)
                self.db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(i),))

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction. Any failure rolls back (SQLite may already have done so, e.g. on a full
        disk) and leaves as one IndexStoreError that says what went wrong."""
        if self.readonly:
            raise IndexStoreError(f"the index {self.path} was opened read-only; this command cannot change it")
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as err:
            raise store_error(err, self.path, "write") from err
        self._changed = False
        self._postings_writer = None
        try:
            yield
            if self._postings_writer is not None:
                self._postings_writer.finish()
            if self._changed:
                self.db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")
        except BaseException as exc:
            self._postings_writer = None
            if self.db.in_transaction:
                try:
                    self.db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # the connection is unusable; SQLite discards the transaction when it closes
            if isinstance(exc, sqlite3.Error):
                raise store_error(exc, self.path, "write") from exc
            raise
        else:
            self._postings_writer = None
            try:
                self.db.execute("COMMIT")
            except sqlite3.Error as err:
                if self.db.in_transaction:
                    try:
                        self.db.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                raise store_error(err, self.path, "write") from err

    def close(self) -> None:
        self.db.close()

    # -------------------------------------------------------------- meta
    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    # -------------------------------------------------------------- writes
    def document_keys(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT id, key FROM documents"))

    def file_signatures(self) -> dict[str, str]:
        """Document id -> signature of the file it was read from (only where one was recorded)."""
        return dict(self.db.execute("SELECT id, file_signature FROM documents WHERE file_signature IS NOT NULL"))

    def _writer(self) -> PostingsWriter:
        if getattr(self, "_postings_writer", None) is None:
            self._postings_writer = PostingsWriter(self.db)
        return self._postings_writer

    def delete_document(self, doc_id: str) -> bool:
        if not self.db.in_transaction:
            with self.transaction():
                return self.delete_document(doc_id)
        rowids = [r[0] for r in self.db.execute("SELECT rowid FROM chunks WHERE doc_id = ?", (doc_id,))]
        self._writer().delete(rowids)
        for (num,) in self.db.execute("SELECT num FROM documents WHERE id = ?", (doc_id,)).fetchall():
            self.db.execute("DELETE FROM doc_text WHERE key BETWEEN ? AND ?", _text_range(num))
        deleted = self.db.execute("DELETE FROM documents WHERE id = ?", (doc_id,)).rowcount > 0
        self._changed = self._changed or deleted
        return deleted

    def put_document(self, doc: Document, chunks: list[Chunk], key: str, *, owner: str | None = None) -> None:
        self.put_prepared(doc, prepare_chunks(chunks), key, owner=owner)

    def put_prepared(self, doc: Document, prepared: Prepared, key: str, *, owner: str | None = None,
                     file_signature: str | None = None) -> None:
        """``put_document`` with the chunk spans, vectors and terms already computed (``rag.pipeline``)."""
        if not self.db.in_transaction:
            with self.transaction():
                return self.put_prepared(doc, prepared, key, owner=owner, file_signature=file_signature)
        if self.db.execute("SELECT 1 FROM documents WHERE id = ?", (doc.id,)).fetchone():
            self.delete_document(doc.id)
        num = self.db.execute(
            "INSERT INTO documents (id, source, title, date, url, sha256, key, text, boilerplate, n_tokens, indexed_at, owner, pages, "
            "file_signature, num) VALUES (?, ?, ?, ?, ?, ?, ?, '', ?, ?, ?, ?, ?, ?, "
            "(SELECT coalesce(max(num), 0) + 1 FROM documents)) RETURNING num",
            (doc.id, doc.source, doc.title, doc.date, doc.url, doc.sha256, key,
             json.dumps([[s.start, s.end] for s in doc.boilerplate]), sum(r[3] for r in prepared.rows), time.time(), owner,
             None if doc.pages is None else json.dumps(doc.pages), file_signature),
        ).fetchall()[0][0]
        self.db.executemany("INSERT INTO doc_text (key, text) VALUES (?, ?)",
                            text_pieces(num, doc.text, ((s, e) for _, s, e, _ in prepared.rows)))
        writer = self._writer()
        rowids = [writer.next_rowid() for _ in prepared.rows]
        self.db.executemany(
            "INSERT INTO chunks (rowid, id, doc_id, ordinal, start, \"end\", n_tokens) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(r, f"{doc.id}#{o}", doc.id, o, s, e, n) for r, (o, s, e, n) in zip(rowids, prepared.rows)],
        )
        width = 2 * DIM
        self.db.executemany("INSERT INTO chunk_vectors (chunk, vector) VALUES (?, ?)",
                            [(r, prepared.vectors[i * width:(i + 1) * width]) for i, r in enumerate(rowids)])
        for r, (terms, tfs) in zip(rowids, prepared.terms):
            writer.add_counts(r, terms, tfs)
        self._changed = True

    # -------------------------------------------------------------- reads
    @contextmanager
    def _snapshot(self) -> Iterator[None]:
        """One read transaction, so every statement of a search sees the same committed state."""
        if self.db.in_transaction:
            yield
            return
        self.db.execute("BEGIN")
        try:
            yield
        finally:
            if self.db.in_transaction:
                self.db.execute("COMMIT")

    def search(self, terms: list[str], *, k: int, source_glob: str | None = None,
               date_from: str | None = None, date_to: str | None = None) -> list[Hit]:
        """The ``k`` best chunks by BM25 for ``terms`` (words; tokenized here as the index text was)."""
        stems = bm25.query_stems(terms)
        if not stems or k < 1:
            return []
        try:
            with self._snapshot():
                writer = getattr(self, "_postings_writer", None)
                if writer is not None:  # mid-run: search what this transaction wrote, never a cache from before it
                    writer.flush()
                    reader = PostingsReader()
                    state = reader.prepare(self.db, -1)
                else:
                    reader = self._reader()
                    state = reader.prepare(self.db, self.generation())
                postings = reader.postings(self.db, stems)
                filters, params = _filters(source_glob, date_from, date_to)
                if not filters:
                    rows, scores = bm25.top_k(postings, k, state.size)
                    return self._hits(rows, scores, "", [])
                rows, scores = bm25.ranked(postings, state.size)
                first = max(8 * k, 64)
                hits = self._hits(rows[:first], scores[:first], filters, params)
                if len(hits) >= k or len(rows) <= first:
                    return hits[:k]
                allowed = np.fromiter((r[0] for r in self.db.execute(
                    f"SELECT c.rowid FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE 1{filters}", params)), dtype=np.int64)
                keep = np.isin(rows, allowed)
                return self._hits(rows[keep][:k], scores[keep][:k], "", [])
        except sqlite3.OperationalError as err:
            raise IndexStoreError(f"search failed: {err}") from err

    def _reader(self) -> PostingsReader:
        if getattr(self, "_postings_reader", None) is None:
            self._postings_reader = PostingsReader()
        return self._postings_reader

    def _hits(self, rows: np.ndarray, scores: np.ndarray, filters: str, params: list[object]) -> list[Hit]:
        """Hits for chunk rowids in rank order (those failing ``filters`` left out)."""
        if not len(rows):
            return []
        found = {r[0]: r for r in self.db.execute(
            f"SELECT c.rowid, {_CHUNK_COLS}, d.source, d.title, d.date, d.url FROM chunks c JOIN documents d ON d.id = c.doc_id "
            f"WHERE c.rowid IN (SELECT value FROM json_each(?)){filters}", [json.dumps(rows.tolist()), *params])}
        hits: list[Hit] = []
        for rowid, score in zip(rows.tolist(), scores.tolist()):
            r = found.get(rowid)
            if r is not None:
                hits.append(Hit(chunk=_row_chunk(r[1:8]), score=round(score, 4), rank=len(hits) + 1,
                                source=r[8], title=r[9], date=r[10], url=r[11]))
        return hits

    def generation(self) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        return int(row[0]) if row else 0

    def _vector_matrix(self) -> tuple[np.ndarray, np.ndarray]:
        """(chunk rowids, their vectors as a float32 matrix), loaded once per index generation."""
        generation = self.generation()
        cached = getattr(self, "_vectors_cache", None)
        if cached is not None and cached[0] == generation:
            return cached[1], cached[2]
        rows = self.db.execute("SELECT chunk, vector FROM chunk_vectors ORDER BY chunk").fetchall()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        matrix = from_blob(b"".join(r[1] for r in rows), len(rows)) if rows else np.zeros((0, DIM), np.float32)
        self._vectors_cache = (generation, ids, matrix)
        return ids, matrix

    def vector_search(self, vector: np.ndarray, *, k: int, source_glob: str | None = None,
                      date_from: str | None = None, date_to: str | None = None) -> list[Hit]:
        """The ``k`` chunks nearest to ``vector`` (cosine), with the same filters as ``search``."""
        ids, matrix = self._vector_matrix()
        if not len(ids):
            return []
        where, params = _filters(source_glob, date_from, date_to)

        def fetch(rowids: list[int]) -> list[tuple]:
            marks = ",".join("?" * len(rowids))
            return self.db.execute(
                f"SELECT c.rowid, {_CHUNK_COLS}, d.source, d.title, d.date, d.url FROM chunks c JOIN documents d "
                f"ON d.id = c.doc_id WHERE c.rowid IN ({marks}){where}", rowids + params).fetchall()

        return nearest_hits(ids, matrix @ vector.astype(np.float32), k, bool(where), fetch)

    def get_chunks(self, ids: Iterable[str]) -> list[Chunk]:
        ids = list(ids)
        marks = ",".join("?" * len(ids))
        rows = self.db.execute(f"SELECT {_CHUNK_COLS} FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE c.id IN ({marks})", ids)
        by_id = {r[0]: _row_chunk(r) for r in rows}
        return [by_id[i] for i in ids if i in by_id]

    def chunks_of(self, doc_id: str) -> list[Chunk]:
        rows = self.db.execute(
            f"SELECT {_CHUNK_COLS} FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE c.doc_id = ? ORDER BY c.ordinal", (doc_id,)
        )
        return [_row_chunk(r) for r in rows]

    def get_document(self, doc_id: str) -> Document | None:
        row = self.db.execute(
            f"SELECT d.id, d.source, d.title, {_DOCUMENT_TEXT_SQL}, d.sha256, d.date, d.url, d.boilerplate, d.pages "
            "FROM documents d WHERE d.id = ?", (doc_id,)
        ).fetchone()
        if not row:
            return None
        try:
            spans = [Span(start=int(s), end=int(e)) for s, e in json.loads(row[7])]
        except (ValueError, TypeError) as err:
            raise IndexStoreError(f"the index {self.path} is damaged: document {doc_id!r} has an unreadable boilerplate record",
                                  hint="re-index that document (`rag index` on its file) or rebuild the index") from err
        return Document(id=row[0], source=row[1], title=row[2], text=row[3] or "", sha256=row[4], date=row[5], url=row[6], boilerplate=spans,
                        pages=_pages(row[8]))

    def page_starts(self, doc_ids: Iterable[str]) -> dict[str, list[int]]:
        """Page start offsets of the paged documents among ``doc_ids`` (unpaged ones are left out)."""
        ids = list(doc_ids)
        rows = self.db.execute(f"SELECT id, pages FROM documents WHERE pages IS NOT NULL AND id IN ({','.join('?' * len(ids))})", ids)
        return {doc_id: pages for doc_id, raw in rows if (pages := _pages(raw))}

    def list_documents(self) -> list[dict[str, object]]:
        rows = self.db.execute(
            "SELECT d.id, d.source, d.title, d.date, d.url, d.sha256, d.n_tokens, "
            "(SELECT count(*) FROM chunks c WHERE c.doc_id = d.id), d.owner FROM documents d ORDER BY d.id"
        )
        keys = ("id", "source", "title", "date", "url", "sha256", "tokens", "chunks", "owner")
        return [dict(zip(keys, r)) for r in rows]

    def stats(self) -> dict[str, object]:
        docs, tokens = self.db.execute("SELECT count(*), coalesce(sum(n_tokens), 0) FROM documents").fetchone()
        chars = self.db.execute("SELECT coalesce(sum(length(text)), 0) FROM doc_text").fetchone()[0]
        chunks = self.db.execute("SELECT count(*) FROM chunks").fetchone()[0]
        size = sum(p.stat().st_size for p in (self.path, Path(f"{self.path}-wal")) if p.exists())
        return {
            "index": str(self.path), "schema_version": self._version(), "documents": docs, "chunks": chunks,
            "tokens": tokens, "characters": chars, "size_bytes": size, "chunker": self.get_meta("chunker"),
        }


ProgressFn = Callable[[Event | None, int], None]


def index_paths(paths: Iterable[Path], store: SQLiteIndex, chunker: Chunker, *, prune: bool = False,
                max_bytes: int | None = None, progress: ProgressFn | None = None, workers: int | None = None) -> IngestReport:
    """Ingest, chunk and write ``paths`` in one transaction; unchanged documents are skipped. Chunking and
    embedding run in ``workers`` processes (default: one per core, up to 4) when the run is big enough."""
    paths = list(paths)
    # The cyclic collector would keep re-scanning the young models of the run (~15% of its time); the
    # pipeline makes no reference cycles, so memory does not grow with it off.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _index_paths(paths, store, chunker, prune=prune, max_bytes=max_bytes, progress=progress, workers=workers)
    finally:
        if gc_was_enabled:
            gc.enable()


def _index_paths(paths: list[Path], store: SQLiteIndex, chunker: Chunker, *, prune: bool, max_bytes: int | None,
                 progress: ProgressFn | None, workers: int | None) -> IngestReport:
    report = IngestReport()
    fingerprint = chunker.fingerprint
    with store.transaction():
        known = store.document_keys()
        seen: set[str] = set()
        kwargs = {"max_bytes": max_bytes} if max_bytes else {}
        key_of = {}
        # A file whose signature matches the one recorded, indexed with this chunker and embedder, is not read.
        recorded = store.file_signatures()
        current = f"{chunker.fingerprint}:{EMBED_MODEL}"  # what document_key puts after the content hash
        signatures: dict[str, str] = {}

        def unchanged(source: str, signature: str) -> bool:
            return recorded.get(source) == signature and known.get(source, "").split(":", 1)[-1] == current

        def wanted(doc: Document) -> bool:
            key_of[doc.id] = key = document_key(doc, chunker)
            return known.get(doc.id) != key

        events = iter_documents(paths, unchanged=unchanged, signatures=signatures, **kwargs)
        for event, prepared in prepared_events(events, chunker, wanted,
                                               workers=default_workers() if workers is None else workers):
            if isinstance(event, Unchanged):
                seen.add(event.source)
                report.unchanged += 1
            elif isinstance(event, Skipped):
                report.skipped.append(event)
            elif isinstance(event, Warned):
                report.warnings.append(event)
            else:
                seen.add(event.id)
                key = key_of.pop(event.id)
                signature = signatures.pop(event.source, None)
                if prepared is None:
                    report.unchanged += 1
                else:
                    store.put_prepared(event, prepared, key, file_signature=signature if event.id == event.source else None)
                    report.chunks += len(prepared.rows)
                    report.replaced += event.id in known
                    report.indexed += event.id not in known
            if progress:
                progress(event, report.chunks)
        if prune:
            prefixes = tuple(source_prefix(p) for p in paths)
            for doc in store.list_documents():
                doc_id, source = str(doc["id"]), str(doc["source"])
                if doc_id not in seen and source.startswith(prefixes) and store.delete_document(doc_id):
                    report.pruned += 1
        if store.get_meta("chunker") != fingerprint:
            store.set_meta("chunker", fingerprint)
    return report


def index_documents(docs: Iterable[Document], store: SQLiteIndex, chunker: Chunker, *, owner: str | None = None) -> int:
    """Write already-ingested documents (e.g. HTTP uploads, owned by ``owner``) in one transaction; returns chunks written."""
    written = 0
    with store.transaction():
        known = store.document_keys()
        for doc in docs:
            key = document_key(doc, chunker)
            if known.get(doc.id) != key:
                chunks = chunker.chunk(doc)
                store.put_document(doc, chunks, key, owner=owner)
                written += len(chunks)
    return written


def delete_documents(doc_ids: Iterable[str], store: SQLiteIndex) -> int:
    """Remove documents in one transaction; returns how many existed."""
    with store.transaction():
        return sum(store.delete_document(d) for d in doc_ids)
