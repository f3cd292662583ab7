"""``IndexStore`` on PostgreSQL: one database shared by every worker, on one machine or several.

Same guarantees as the SQLite store: named migrations recorded in ``rag_migrations`` with a version
check; one transaction per indexing run (writers take an advisory lock, so concurrent indexers queue
and readers see the old state until commit); chunk text derived from the stored document by span.

Keyword search is BM25 computed in SQL over our own postings (term, chunk, tf, chunk length), with
terms from ``rag.language`` (its stems), scored with the formula and constants of SQLite FTS5's
``bm25()`` so both stores rank alike. No tsquery is ever built: terms travel as a ``text[]``
parameter, so no user string is interpreted as query syntax. Vectors are stored as ``bytea``
(float16, the embedder's) and scored in the worker, as with SQLite.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from . import bm25, pg
from .embed import DIM, from_blob
from .errors import IndexStoreError
from .index import _pages, nearest_hits
from .pipeline import Prepared, prepare_chunks
from .types import Chunk, Document, Hit, Span

_POSTINGS_CACHE_BYTES = 256 << 20  # per worker: term postings kept between searches (per index generation)


# ------------------------------------------------------------------ tokens
def index_terms(text: str) -> list[str]:
    """The search terms of ``text``, in order, repeated as they occur: exactly the SQLite store's terms
    (``rag.bm25.text_terms``), so both stores rank the same chunks the same way."""
    return bm25.text_terms(text)


def glob_regex(glob: str) -> str | None:
    """A POSIX regular expression matching what SQLite's GLOB matches (``*``, ``?``, ``[...]``, ``[^...]``);
    every other character is literal. None for a glob that matches nothing (an unclosed ``[``, as in SQLite)."""
    out, i = ["^"], 0
    while i < len(glob):
        ch = glob[i]
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "[" and (end := glob.find("]", i + 2 if glob[i + 1:i + 2] in ("^", "]") else i + 1)) != -1:
            body = glob[i + 1:end]
            negate = body.startswith("^")
            body = body[1:] if negate else body
            parts = [re.escape(c) if c not in "-" else "-" for c in body]
            out.append("[" + ("^" if negate else "") + "".join(parts) + "]")
            i = end
        elif ch == "[":
            return None
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out) + "$"


def _filters(source_glob: str | None, date_from: str | None, date_to: str | None) -> tuple[str, list[object]]:
    """SQL (" AND ...") and parameters for the source and date filters, on documents aliased ``d``."""
    where: list[str] = []
    params: list[object] = []
    if source_glob:
        regex = glob_regex(source_glob)
        if regex is None:
            where.append("false")
        else:
            where.append("d.source ~ %s")
            params.append(regex)
    if date_from:
        where.append('d.date >= %s COLLATE "C"')
        params.append(date_from)
    if date_to:
        where.append('substr(d.date, 1, %s) <= %s COLLATE "C"')
        params.extend([len(date_to), date_to])
    return "".join(f" AND {w}" for w in where), params


# ------------------------------------------------------------------ migrations
def _m1_base(conn: Any) -> None:
    conn.execute("""
        CREATE TABLE rag_documents (
            id text PRIMARY KEY, source text NOT NULL, title text NOT NULL DEFAULT '', date text, url text,
            sha256 text NOT NULL, key text NOT NULL, text text NOT NULL, boilerplate text NOT NULL DEFAULT '[]',
            n_tokens integer NOT NULL DEFAULT 0, indexed_at double precision NOT NULL, owner text, pages text)""")
    conn.execute("CREATE INDEX rag_documents_source ON rag_documents (source)")
    conn.execute("""
        CREATE TABLE rag_chunks (
            rowid bigserial PRIMARY KEY, id text NOT NULL UNIQUE,
            doc_id text NOT NULL REFERENCES rag_documents (id) ON DELETE CASCADE,
            ordinal integer NOT NULL, start integer NOT NULL, "end" integer NOT NULL, n_tokens integer NOT NULL,
            length integer NOT NULL, vector bytea NOT NULL)""")
    conn.execute("CREATE INDEX rag_chunks_doc ON rag_chunks (doc_id)")
    # One row per (term, chunk): term frequency and the chunk's length in terms, so BM25 needs no join.
    conn.execute("""
        CREATE TABLE rag_postings (
            term text NOT NULL, chunk bigint NOT NULL REFERENCES rag_chunks (rowid) ON DELETE CASCADE,
            tf integer NOT NULL, length integer NOT NULL, PRIMARY KEY (term, chunk))""")
    conn.execute("CREATE INDEX rag_postings_chunk ON rag_postings (chunk)")
    conn.execute("CREATE TABLE rag_terms (term text PRIMARY KEY, df integer NOT NULL)")
    conn.execute("INSERT INTO rag_meta VALUES ('generation', '0'), ('chunks', '0'), ('terms_total', '0') "
                 "ON CONFLICT DO NOTHING")


def _m2_service_state(conn: Any) -> None:
    """What the service shares between workers: sessions, briefing jobs (with leases) and their finished
    documents, the response cache, rate-limit buckets and per-worker metrics."""
    conn.execute("CREATE TABLE rag_sessions (name text PRIMARY KEY, turns text NOT NULL DEFAULT '[]', "
                 "updated_at double precision NOT NULL)")
    conn.execute("""
        CREATE TABLE rag_jobs (
            id text PRIMARY KEY, kind text NOT NULL, status text NOT NULL, request text NOT NULL,
            progress text NOT NULL DEFAULT '{}', result text, error text,
            created_at double precision NOT NULL, updated_at double precision NOT NULL, owner text,
            lease_owner text, lease_until double precision)""")
    conn.execute("CREATE INDEX rag_jobs_unfinished ON rag_jobs (kind, created_at) WHERE status IN ('queued', 'running')")
    conn.execute("""
        CREATE TABLE rag_job_items (
            job_id text NOT NULL REFERENCES rag_jobs (id) ON DELETE CASCADE, doc_id text NOT NULL, key text NOT NULL,
            summary text NOT NULL, usage text NOT NULL, PRIMARY KEY (job_id, doc_id))""")
    conn.execute("CREATE TABLE rag_cache (key text PRIMARY KEY, value text NOT NULL, created_at text NOT NULL)")
    conn.execute("CREATE TABLE rag_rate_buckets (name text PRIMARY KEY, tokens double precision NOT NULL, "
                 "updated double precision NOT NULL, granted boolean NOT NULL DEFAULT true)")
    conn.execute("CREATE TABLE rag_worker_metrics (worker text PRIMARY KEY, snapshot text NOT NULL, "
                 "updated_at double precision NOT NULL)")


def _m3_bm25_terms(conn: Any) -> None:
    """The SQLite store's terms (``rag.bm25``: identifiers kept whole, one-letter words dropped) and the
    signature of the file each document was read from (a file whose signature matches is not read again).
    Postings of an existing index are rebuilt from the stored text, so ranking matches a fresh index."""
    conn.execute("ALTER TABLE rag_documents ADD COLUMN IF NOT EXISTS file_signature text")
    conn.execute("DELETE FROM rag_postings")
    conn.execute("DELETE FROM rag_terms")
    df: Counter[str] = Counter()
    total = 0
    rows = conn.execute('SELECT c.rowid, substr(d.text, c.start + 1, c."end" - c.start) FROM rag_chunks c '
                        "JOIN rag_documents d ON d.id = c.doc_id").fetchall()
    with conn.cursor() as cur, cur.copy("COPY rag_postings (term, chunk, tf, length) FROM STDIN") as copy:
        for rowid, text in rows:
            tf = Counter(index_terms(text))
            n = sum(tf.values())
            total += n
            df.update(tf.keys())
            for term, count in tf.items():
                copy.write_row((term, rowid, count, n))
    conn.execute("UPDATE rag_chunks c SET length = coalesce((SELECT max(p.length) FROM rag_postings p "
                 "WHERE p.chunk = c.rowid), 0)")
    if df:
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO rag_terms (term, df) VALUES (%s, %s)", list(df.items()))
    conn.execute("UPDATE rag_meta SET value = %s WHERE key = 'terms_total'", (str(total),))


MIGRATIONS: list[pg.Migration] = [_m1_base, _m2_service_state, _m3_bm25_terms]
SCHEMA_VERSION = len(MIGRATIONS)

_CHUNK_COLS = 'c.id, c.doc_id, c.ordinal, c.start, c."end", c.n_tokens, substr(d.text, c.start + 1, c."end" - c.start)'


def _row_chunk(row: tuple) -> Chunk:
    return Chunk(id=row[0], doc_id=row[1], ordinal=row[2], start=row[3], end=row[4], n_tokens=row[5], text=row[6])


class PostgresIndex:
    """``IndexStore`` on a PostgreSQL database named by a ``postgresql://`` URL.

    ``create=True`` (``rag index``, ``rag migrate``) applies migrations; otherwise the schema must be
    there at this version. ``readonly=True`` opens a connection that can never write."""

    def __init__(self, url: str, *, create: bool = False, readonly: bool = False) -> None:
        self.url = url
        self.path = pg.display_url(url)  # what messages and `rag stats` show
        self.readonly = readonly and not create
        self.conn = pg.connect(url, readonly=self.readonly)
        self._in_tx = False
        try:
            if create:
                pg.migrate(self.conn, MIGRATIONS, url=url)
            else:
                self._check_version()
        except IndexStoreError:
            self.conn.close()
            raise
        except Exception as err:
            self.conn.close()
            if isinstance(err, pg._psycopg().Error):
                raise pg.store_error(err, url, "migrate" if create else "open") from err
            raise

    def _check_version(self) -> None:
        version = pg.schema_version(self.conn)
        if version is None:
            raise IndexStoreError(f"no index in the database {self.path}", hint="create it with `rag index PATHS`")
        if version > SCHEMA_VERSION:
            raise pg.newer_schema(self.url, version, SCHEMA_VERSION)
        if version < SCHEMA_VERSION:
            raise IndexStoreError(f"the index database {self.path} has schema version {version}; this rag needs "
                                  f"{SCHEMA_VERSION}", hint="upgrade it with `rag migrate` (or `rag index`)")

    @staticmethod
    def peek_version(url: str) -> int:
        conn = pg.connect(url, readonly=True)
        try:
            return pg.schema_version(conn) or 0
        finally:
            conn.close()

    def usable(self) -> bool:
        return not self._in_tx and pg.is_usable(self.conn)

    def close(self) -> None:
        self.conn.close()

    def _execute(self, sql: str, params: Any = None, *, action: str = "read") -> Any:
        try:
            return self.conn.execute(sql, params)
        except pg._psycopg().Error as err:
            raise pg.store_error(err, self.url, action) from err

    # -------------------------------------------------------------- transactions
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction (writers queue on an advisory lock). Any failure rolls it back and leaves
        as one IndexStoreError; a commit bumps the generation when documents changed."""
        if self.readonly:
            raise IndexStoreError(f"the index {self.path} was opened read-only; this command cannot change it")
        psycopg = pg._psycopg()
        self._changed = False
        self._df: Counter[str] = Counter()
        self._deltas = [0, 0]  # chunks, terms in them
        self._in_tx = True
        try:
            with self.conn.transaction():
                self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (pg.WRITE_LOCK,))
                yield
                if self._changed:
                    self._apply_deltas()
        except psycopg.Error as err:
            raise pg.store_error(err, self.url, "write") from err
        finally:
            self._in_tx = False

    def _apply_deltas(self) -> None:
        df = [(t, n) for t, n in self._df.items() if n]
        if df:
            terms, counts = zip(*df)
            self.conn.execute(
                "INSERT INTO rag_terms (term, df) SELECT * FROM unnest(%s::text[], %s::int[]) "
                "ON CONFLICT (term) DO UPDATE SET df = rag_terms.df + excluded.df", (list(terms), list(counts)))
            self.conn.execute("DELETE FROM rag_terms WHERE df <= 0 AND term = ANY(%s)", (list(terms),))
        chunks, total = self._deltas
        self.conn.execute("UPDATE rag_meta SET value = (value::bigint + %s)::text WHERE key = 'chunks'", (chunks,))
        self.conn.execute("UPDATE rag_meta SET value = (value::bigint + %s)::text WHERE key = 'terms_total'", (total,))
        self.conn.execute("UPDATE rag_meta SET value = (value::bigint + 1)::text WHERE key = 'generation'")

    # -------------------------------------------------------------- meta
    def get_meta(self, key: str) -> str | None:
        row = self._execute("SELECT value FROM rag_meta WHERE key = %s", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self._execute("INSERT INTO rag_meta VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                      (key, value), action="write")

    def generation(self) -> int:
        return int(self.get_meta("generation") or 0)

    # -------------------------------------------------------------- writes
    def document_keys(self) -> dict[str, str]:
        return dict(self._execute("SELECT id, key FROM rag_documents").fetchall())

    def _require_tx(self) -> None:
        if not self._in_tx:
            raise IndexStoreError("internal: index writes must run inside store.transaction()")

    def delete_document(self, doc_id: str) -> bool:
        self._require_tx()
        for term, n in self.conn.execute(
                "WITH gone AS (DELETE FROM rag_postings WHERE chunk IN (SELECT rowid FROM rag_chunks WHERE doc_id = %s) "
                "RETURNING term) SELECT term, count(*) FROM gone GROUP BY term", (doc_id,)).fetchall():
            self._df[term] -= n
        count, total = self.conn.execute(
            "WITH gone AS (DELETE FROM rag_chunks WHERE doc_id = %s RETURNING length) "
            "SELECT count(*), coalesce(sum(length), 0) FROM gone", (doc_id,)).fetchone()
        self._deltas[0] -= count
        self._deltas[1] -= total
        deleted = self.conn.execute("DELETE FROM rag_documents WHERE id = %s", (doc_id,)).rowcount > 0
        self._changed = self._changed or deleted
        return deleted

    def file_signatures(self) -> dict[str, str]:
        """Document id -> signature of the file it was read from (only where one was recorded)."""
        return dict(self.conn.execute("SELECT id, file_signature FROM rag_documents WHERE file_signature IS NOT NULL")
                    .fetchall())

    def put_document(self, doc: Document, chunks: list[Chunk], key: str, *, owner: str | None = None) -> None:
        self.put_prepared(doc, prepare_chunks(chunks), key, owner=owner)

    def put_prepared(self, doc: Document, prepared: Prepared, key: str, *, owner: str | None = None,
                     file_signature: str | None = None) -> None:
        """``put_document`` with the chunk spans, vectors and terms already computed (``rag.pipeline``)."""
        self.delete_document(doc.id)
        self.conn.execute(
            "INSERT INTO rag_documents (id, source, title, date, url, sha256, key, text, boilerplate, n_tokens, indexed_at, "
            "owner, pages, file_signature) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (doc.id, doc.source, doc.title, doc.date, doc.url, doc.sha256, key, doc.text,
             json.dumps([[s.start, s.end] for s in doc.boilerplate]), sum(r[3] for r in prepared.rows), time.time(), owner,
             None if doc.pages is None else json.dumps(doc.pages), file_signature))
        if not prepared.rows:
            self._changed = True
            return
        width = 2 * DIM  # float16 bytes per vector
        lengths = [sum(tfs) for _, tfs in prepared.terms]
        with self.conn.cursor() as cur:
            cur.executemany(
                'INSERT INTO rag_chunks (id, doc_id, ordinal, start, "end", n_tokens, length, vector) '
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING rowid",
                [(f"{doc.id}#{o}", doc.id, o, st, e, nt, n, prepared.vectors[i * width:(i + 1) * width])
                 for i, ((o, st, e, nt), n) in enumerate(zip(prepared.rows, lengths))], returning=True)
            rowids = []
            while True:
                rowids.append(cur.fetchone()[0])
                if not cur.nextset():
                    break
            with cur.copy("COPY rag_postings (term, chunk, tf, length) FROM STDIN") as copy:
                for rowid, (terms, tfs), n in zip(rowids, prepared.terms, lengths):
                    for term, count in zip(terms, tfs):
                        copy.write_row((term, rowid, count, n))
        for terms, _ in prepared.terms:
            self._df.update(terms)
        self._deltas[0] += len(prepared.rows)
        self._deltas[1] += sum(lengths)
        self._changed = True

    # -------------------------------------------------------------- keyword search
    def search(self, terms: list[str], *, k: int, source_glob: str | None = None,
               date_from: str | None = None, date_to: str | None = None) -> list[Hit]:
        wanted = bm25.query_stems(terms)
        if not wanted:
            return []
        try:
            rows = self._search(wanted, k, source_glob, date_from, date_to)
        except pg._psycopg().Error as err:
            raise pg.store_error(err, self.url, "read") from err
        return [Hit(chunk=_row_chunk(r[:7]), score=round(float(r[7]), 4), rank=i + 1, source=r[8], title=r[9], date=r[10],
                    url=r[11]) for i, r in enumerate(rows)]

    def _search(self, wanted: list[str], k: int, source_glob: str | None, date_from: str | None,
                date_to: str | None) -> list[tuple]:
        """BM25 as the SQLite store computes it (Lucene's idf, the same terms): each term's postings are read
        once per index generation and kept here as (rowids, score contributions), scored with numpy
        (``rag.bm25.top_k``, exact, MaxScore); the statistics, postings and chunks come from one snapshot.
        A query costs one round trip for the statistics, one for the terms not cached yet, one for the hits."""
        if self._in_tx:  # mid-run: what this transaction wrote, never a cache from before it
            return self._search_snapshot(wanted, k, source_glob, date_from, date_to, cache=None)
        with self.conn.transaction():
            self.conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            return self._search_snapshot(wanted, k, source_glob, date_from, date_to, cache=self._postings_cache())

    def _postings_cache(self) -> dict[str, Any]:
        cache = getattr(self, "_postings", None)
        if cache is None:
            cache = self._postings = {"generation": None, "terms": OrderedDict(), "bytes": 0}
        return cache

    def _search_snapshot(self, wanted: list[str], k: int, source_glob: str | None, date_from: str | None,
                         date_to: str | None, *, cache: dict[str, Any] | None) -> list[tuple]:
        generation, n, total = self.conn.execute(
            "SELECT max(CASE WHEN key = 'generation' THEN value END)::bigint, "
            "max(CASE WHEN key = 'chunks' THEN value END)::float8, max(CASE WHEN key = 'terms_total' THEN value END)::float8 "
            "FROM rag_meta WHERE key IN ('generation', 'chunks', 'terms_total')").fetchone()
        if not n:
            return []
        terms: OrderedDict[str, tuple[np.ndarray, np.ndarray, float]] = OrderedDict()
        if cache is not None:
            if cache["generation"] != generation:
                cache.update(generation=generation, terms=OrderedDict(), bytes=0)
            terms = cache["terms"]
        missing = [t for t in wanted if t not in terms]
        if missing:
            fetched: dict[str, list[tuple[int, int, int]]] = {t: [] for t in missing}
            for term, chunk, tf, length in self.conn.execute(
                    "SELECT term, chunk, tf, length FROM rag_postings WHERE term = ANY(%s) ORDER BY term, chunk", (missing,)):
                fetched[term].append((chunk, tf, length))
            avgdl = total / n if total else 1.0
            for term, rows in fetched.items():
                arr = np.array(rows, dtype=np.int64).reshape(-1, 3)
                ids, scores = arr[:, 0], bm25.contributions(arr[:, 1], arr[:, 2], int(n), avgdl)
                terms[term] = (ids, scores, float(scores.max()) if len(scores) else 0.0)
                if cache is not None:
                    cache["bytes"] += ids.nbytes + scores.nbytes
        if cache is not None:  # this query's terms last, so evicting the least recently used never drops one of them
            for t in wanted:
                terms.move_to_end(t)
            while cache["bytes"] > _POSTINGS_CACHE_BYTES and len(terms) > len(wanted):
                _, (ids, scores, _) = terms.popitem(last=False)
                cache["bytes"] -= ids.nbytes + scores.nbytes
        postings = [terms[t] for t in wanted if len(terms[t][0])]
        if not postings:
            return []
        size = int(max(p[0][-1] for p in postings)) + 1
        filters, extra = _filters(source_glob, date_from, date_to)
        if not filters:
            rows, scores = bm25.top_k(postings, k, size)
            return self._hydrate(rows, scores, "", [])
        rows, scores = bm25.ranked(postings, size)  # filtered: walk down the ranking until k pass the filters
        out: list[tuple] = []
        for start in range(0, len(rows), max(8 * k, 256)):
            stop = start + max(8 * k, 256)
            out += self._hydrate(rows[start:stop], scores[start:stop], filters, extra)
            if len(out) >= k:
                break
        return out[:k]

    def _hydrate(self, rows: np.ndarray, scores: np.ndarray, filters: str, params: list[object]) -> list[tuple]:
        """Result rows (chunk columns, score, source, title, date, url) for chunk rowids in rank order, those
        failing ``filters`` left out."""
        if not len(rows):
            return []
        found = {r[0]: r[1:] for r in self.conn.execute(
            f"SELECT c.rowid, {_CHUNK_COLS}, d.source, d.title, d.date, d.url FROM rag_chunks c "
            f"JOIN rag_documents d ON d.id = c.doc_id WHERE c.rowid = ANY(%s){filters}", [rows.tolist(), *params])}
        return [(*r[:7], float(score), *r[7:]) for rowid, score in zip(rows.tolist(), scores.tolist())
                if (r := found.get(rowid)) is not None]

    # -------------------------------------------------------------- vector search
    def _vector_matrix(self) -> tuple[np.ndarray, np.ndarray]:
        """(chunk rowids, their vectors as a float32 matrix), loaded once per index generation."""
        generation = self.generation()
        cached = getattr(self, "_vectors_cache", None)
        if cached is not None and cached[0] == generation:
            return cached[1], cached[2]
        with self.conn.transaction():  # the generation and the vectors from one snapshot
            self.conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            generation = int(self.conn.execute("SELECT value FROM rag_meta WHERE key = 'generation'").fetchone()[0])
            rows = self.conn.execute("SELECT rowid, vector FROM rag_chunks ORDER BY rowid").fetchall()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        matrix = from_blob(b"".join(bytes(r[1]) for r in rows), len(rows)) if rows else np.zeros((0, DIM), np.float32)
        self._vectors_cache = (generation, ids, matrix)
        return ids, matrix

    def vector_search(self, vector: np.ndarray, *, k: int, source_glob: str | None = None,
                      date_from: str | None = None, date_to: str | None = None) -> list[Hit]:
        """The ``k`` chunks nearest to ``vector`` (cosine), with the same filters as ``search``."""
        try:
            ids, matrix = self._vector_matrix()
        except pg._psycopg().Error as err:
            raise pg.store_error(err, self.url, "read") from err
        if not len(ids):
            return []
        where, params = _filters(source_glob, date_from, date_to)

        def fetch(rowids: list[int]) -> list[tuple]:
            return self._execute(
                f"SELECT c.rowid, {_CHUNK_COLS}, d.source, d.title, d.date, d.url FROM rag_chunks c "
                f"JOIN rag_documents d ON d.id = c.doc_id WHERE c.rowid = ANY(%s){where}", [rowids, *params]).fetchall()

        return nearest_hits(ids, matrix @ vector.astype(np.float32), k, bool(where), fetch)

    # -------------------------------------------------------------- reads
    def get_chunks(self, ids: Iterable[str]) -> list[Chunk]:
        ids = list(ids)
        rows = self._execute(f"SELECT {_CHUNK_COLS} FROM rag_chunks c JOIN rag_documents d ON d.id = c.doc_id "
                             "WHERE c.id = ANY(%s)", (ids,)).fetchall()
        by_id = {r[0]: _row_chunk(r) for r in rows}
        return [by_id[i] for i in ids if i in by_id]

    def chunks_of(self, doc_id: str) -> list[Chunk]:
        rows = self._execute(f"SELECT {_CHUNK_COLS} FROM rag_chunks c JOIN rag_documents d ON d.id = c.doc_id "
                             "WHERE c.doc_id = %s ORDER BY c.ordinal", (doc_id,)).fetchall()
        return [_row_chunk(r) for r in rows]

    def get_document(self, doc_id: str) -> Document | None:
        row = self._execute("SELECT id, source, title, text, sha256, date, url, boilerplate, pages FROM rag_documents "
                            "WHERE id = %s", (doc_id,)).fetchone()
        if not row:
            return None
        try:
            spans = [Span(start=int(s), end=int(e)) for s, e in json.loads(row[7])]
        except (ValueError, TypeError) as err:
            raise IndexStoreError(f"the index {self.path} is damaged: document {doc_id!r} has an unreadable boilerplate "
                                  "record", hint="re-index that document") from err
        return Document(id=row[0], source=row[1], title=row[2], text=row[3], sha256=row[4], date=row[5], url=row[6],
                        boilerplate=spans, pages=_pages(row[8]))

    def page_starts(self, doc_ids: Iterable[str]) -> dict[str, list[int]]:
        rows = self._execute("SELECT id, pages FROM rag_documents WHERE pages IS NOT NULL AND id = ANY(%s)",
                             (list(doc_ids),)).fetchall()
        return {doc_id: pages for doc_id, raw in rows if (pages := _pages(raw))}

    def list_documents(self) -> list[dict[str, object]]:
        rows = self._execute(
            "SELECT d.id, d.source, d.title, d.date, d.url, d.sha256, d.n_tokens, "
            "(SELECT count(*) FROM rag_chunks c WHERE c.doc_id = d.id), d.owner FROM rag_documents d ORDER BY d.id COLLATE \"C\"")
        keys = ("id", "source", "title", "date", "url", "sha256", "tokens", "chunks", "owner")
        return [dict(zip(keys, r)) for r in rows.fetchall()]

    def count_documents(self) -> int:
        return int(self._execute("SELECT count(*) FROM rag_documents").fetchone()[0])

    def stats(self) -> dict[str, object]:
        docs, chars, tokens = self._execute("SELECT count(*), coalesce(sum(length(text)), 0), coalesce(sum(n_tokens), 0) "
                                            "FROM rag_documents").fetchone()
        chunks = self._execute("SELECT count(*) FROM rag_chunks").fetchone()[0]
        size = self._execute("SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                             "WHERE c.relname LIKE 'rag\\_%%' AND c.relkind = 'r'").fetchone()[0]
        return {"index": self.path, "schema_version": pg.schema_version(self.conn), "documents": docs, "chunks": chunks,
                "tokens": int(tokens), "characters": int(chars), "size_bytes": int(size), "chunker": self.get_meta("chunker")}
