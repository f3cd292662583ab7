"""BM25 postings in the index file: segments written per run, tombstones, merges, and a per-generation reader.

Tables (migration ``m6_bm25_postings``): ``bm25_segments`` (one row per segment: the chunk rowid range
it covers and each chunk's length in terms), ``bm25_postings`` (one row per term per segment: packed
rowids and term frequencies, see ``rag.bm25``) and ``bm25_deleted`` (chunk rowids deleted since their
segment was written). Everything is written inside the caller's transaction, so the postings commit,
roll back and survive a SIGKILL together with the chunks they describe. Chunk rowids are never reused
(``meta.bm25_next_rowid``), so a tombstone can never hide a newer chunk.
"""

from __future__ import annotations

import sqlite3
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from . import bm25

FLUSH_POSTINGS = 1_000_000   # buffered postings per segment while indexing (~6 MB): memory stays flat
CACHE_BYTES = 256 * 2**20    # per-term arrays kept by a reader between searches of one generation
MERGE_RATIO = 2              # merge the newest two segments while the older is at most this many times larger



def create_tables(db: sqlite3.Connection) -> None:
    for statement in (
        "CREATE TABLE IF NOT EXISTS bm25_segments (id INTEGER PRIMARY KEY, lo INTEGER NOT NULL, hi INTEGER NOT NULL, "
        "n_chunks INTEGER NOT NULL, n_postings INTEGER NOT NULL, lengths BLOB NOT NULL)",
        "CREATE TABLE IF NOT EXISTS bm25_postings (segment INTEGER NOT NULL, term TEXT NOT NULL, df INTEGER NOT NULL, "
        "data BLOB NOT NULL)",
        "CREATE UNIQUE INDEX IF NOT EXISTS bm25_postings_term ON bm25_postings(term, segment)",
        "CREATE TABLE IF NOT EXISTS bm25_deleted (chunk INTEGER PRIMARY KEY)",
    ):
        db.execute(statement)


def _meta_int(db: sqlite3.Connection, key: str) -> int:
    row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    try:
        return int(row[0]) if row else 0
    except (TypeError, ValueError):
        return 0


class PostingsWriter:
    """Collects the postings of one transaction and writes them as segments when the transaction ends."""

    def __init__(self, db: sqlite3.Connection, *, flush_postings: int = FLUSH_POSTINGS) -> None:
        self.db = db
        self.flush_postings = flush_postings
        self.buffer = bm25.PostingsBuffer(bm25.VOCABULARY)
        self.new_segments: list[int] = []
        self.changed = False
        high = db.execute("SELECT coalesce(max(rowid), 0) FROM chunks").fetchone()[0]
        seg_high = db.execute("SELECT coalesce(max(hi), 0) FROM bm25_segments").fetchone()[0]
        self._next = max(_meta_int(db, "bm25_next_rowid"), high + 1, seg_high + 1)

    def next_rowid(self) -> int:
        rowid = self._next
        self._next += 1
        return rowid

    def add(self, rowid: int, text: str) -> None:
        self.buffer.add(rowid, text)
        self._added()

    def add_counts(self, rowid: int, terms: list[str], tfs: list[int]) -> None:
        self.buffer.add_counts(rowid, terms, tfs)
        self._added()

    def _added(self) -> None:
        self.changed = True
        if len(self.buffer) >= self.flush_postings:
            self.flush()

    def delete(self, rowids: list[int]) -> None:
        if rowids:
            self.db.executemany("INSERT OR IGNORE INTO bm25_deleted (chunk) VALUES (?)", [(r,) for r in rowids])
            self.changed = True

    def flush(self) -> None:
        if not len(self.buffer.rowids):
            return
        lo, hi, lengths, rows = self.buffer.segment()
        n_chunks = len(self.buffer.rowids)
        n_postings = len(self.buffer)
        self.buffer.clear()
        seg = self.db.execute("INSERT INTO bm25_segments (lo, hi, n_chunks, n_postings, lengths) VALUES (?, ?, ?, ?, ?)",
                              (lo, hi, n_chunks, n_postings, lengths)).lastrowid
        self.db.executemany("INSERT INTO bm25_postings (segment, term, df, data) VALUES (?, ?, ?, ?)",
                            [(seg, term, df, data) for term, df, data in rows])
        self.new_segments.append(seg)

    def finish(self) -> None:
        """Write what is buffered, then keep the segments few and free of dead postings."""
        if not self.changed:
            return
        self.flush()
        self.db.execute("INSERT OR REPLACE INTO meta VALUES ('bm25_next_rowid', ?)", (str(self._next),))
        segments = self._segments()
        for s in segments:
            if s.live == 0:
                self._drop(s)
        segments = [s for s in self._segments()]
        run = [s for s in segments if s.id in self.new_segments]
        if len(run) > 1 and _adjacent(segments, run):
            self._merge(run)
        for s in self._segments():
            if s.dead * 2 > s.n_chunks:
                self._merge([s])
        segments = self._segments()
        while len(segments) >= 2 and segments[-2].weight <= MERGE_RATIO * segments[-1].weight:
            self._merge(segments[-2:])
            segments = self._segments()

    # ---------------------------------------------------------------- maintenance
    def _segments(self) -> list[_Segment]:
        rows = self.db.execute(
            "SELECT s.id, s.lo, s.hi, s.n_chunks, s.n_postings, "
            "(SELECT count(*) FROM bm25_deleted t WHERE t.chunk BETWEEN s.lo AND s.hi) "
            "FROM bm25_segments s ORDER BY s.lo").fetchall()
        return [_Segment(*r) for r in rows]

    def _drop(self, s: _Segment) -> None:
        self.db.execute("DELETE FROM bm25_postings WHERE segment = ?", (s.id,))
        self.db.execute("DELETE FROM bm25_segments WHERE id = ?", (s.id,))
        self.db.execute("DELETE FROM bm25_deleted WHERE chunk BETWEEN ? AND ?", (s.lo, s.hi))

    def _merge(self, segs: list[_Segment]) -> None:
        """Rewrite adjacent segments as one, without the postings of deleted chunks."""
        segs = sorted(segs, key=lambda s: s.lo)
        lo, hi = segs[0].lo, segs[-1].hi
        lengths = np.full(hi - lo + 1, bm25.DEAD, dtype=np.uint32)
        for sid, slo, blob in self.db.execute(
                f"SELECT id, lo, lengths FROM bm25_segments WHERE id IN ({','.join('?' * len(segs))})", [s.id for s in segs]):
            arr = np.frombuffer(blob, dtype=np.uint32)
            lengths[slo - lo:slo - lo + len(arr)] = arr
        dead = np.fromiter((r[0] for r in self.db.execute(
            "SELECT chunk FROM bm25_deleted WHERE chunk BETWEEN ? AND ?", (lo, hi))), dtype=np.int64)
        lengths[dead - lo] = bm25.DEAD
        live = lengths != bm25.DEAD
        order = {s.id: s.lo for s in segs}
        ids = [s.id for s in segs]
        marks = ",".join("?" * len(ids))
        self.db.execute("CREATE TEMP TABLE IF NOT EXISTS bm25_merge (term TEXT, df INTEGER, data BLOB)")
        self.db.execute("DELETE FROM temp.bm25_merge")
        out: list[tuple[str, int, bytes]] = []
        n_postings = 0

        def emit(term: str, parts: list[tuple[int, bytes]]) -> None:
            nonlocal n_postings
            parts.sort()
            if len(parts) == 1 and not len(dead):
                blob = parts[0][1]
                df = len(blob) // 6
            else:
                unpacked = [bm25.unpack(b) for _, b in parts]
                rows = np.concatenate([u[0] for u in unpacked])
                tfs = np.concatenate([u[1] for u in unpacked])
                if len(dead):
                    keep = live[rows.astype(np.int64) - lo]
                    rows, tfs = rows[keep], tfs[keep]
                df = len(rows)
                blob = bm25.pack(rows, tfs)
            if df:
                out.append((term, df, blob))
                n_postings += df
            if len(out) >= 4096:
                self.db.executemany("INSERT INTO temp.bm25_merge VALUES (?, ?, ?)", out)
                out.clear()

        current: str | None = None
        parts: list[tuple[int, bytes]] = []
        cursor = self.db.execute(f"SELECT term, segment, data FROM bm25_postings WHERE segment IN ({marks}) ORDER BY term", ids)
        while batch := cursor.fetchmany(4096):
            for term, seg, data in batch:
                if term != current:
                    if current is not None:
                        emit(current, parts)
                    current, parts = term, []
                parts.append((order[seg], data))
        if current is not None:
            emit(current, parts)
        if out:
            self.db.executemany("INSERT INTO temp.bm25_merge VALUES (?, ?, ?)", out)
        self.db.execute(f"DELETE FROM bm25_postings WHERE segment IN ({marks})", ids)
        self.db.execute(f"DELETE FROM bm25_segments WHERE id IN ({marks})", ids)
        self.db.execute("DELETE FROM bm25_deleted WHERE chunk BETWEEN ? AND ?", (lo, hi))
        n_chunks = int(live.sum())
        if n_chunks:
            seg = self.db.execute("INSERT INTO bm25_segments (lo, hi, n_chunks, n_postings, lengths) VALUES (?, ?, ?, ?, ?)",
                                  (lo, hi, n_chunks, n_postings, lengths.tobytes())).lastrowid
            self.db.execute("INSERT INTO bm25_postings (segment, term, df, data) SELECT ?, term, df, data FROM temp.bm25_merge",
                            (seg,))
        self.db.execute("DELETE FROM temp.bm25_merge")


@dataclass(frozen=True)
class _Segment:
    id: int
    lo: int
    hi: int
    n_chunks: int
    n_postings: int
    dead: int

    @property
    def live(self) -> int:
        return self.n_chunks - self.dead

    @property
    def weight(self) -> float:
        return self.n_postings * self.live / max(1, self.n_chunks)


def _adjacent(segments: list[_Segment], run: list[_Segment]) -> bool:
    """Whether ``run`` is a contiguous stretch of ``segments`` (in rowid order): only those can merge into one range."""
    ids = [s.id for s in segments]
    pos = sorted(ids.index(s.id) for s in run)
    return pos == list(range(pos[0], pos[0] + len(pos)))


def rebuild(db: sqlite3.Connection) -> None:
    """Postings for every chunk already in the index (migrations 6 and 8, which run while document text is still
    in ``documents.text``; migration 9 moves it into pieces)."""
    db.execute("DELETE FROM bm25_postings")
    db.execute("DELETE FROM bm25_segments")
    db.execute("DELETE FROM bm25_deleted")
    writer = PostingsWriter(db)
    cursor = db.execute('SELECT c.rowid, substr(d.text, c.start + 1, c."end" - c.start) FROM chunks c '
                        "JOIN documents d ON d.id = c.doc_id ORDER BY c.rowid")
    while batch := cursor.fetchmany(2048):
        for rowid, text in batch:
            writer.add(rowid, text)
    writer.changed = True
    writer.finish()


# -------------------------------------------------------------------- reading
@dataclass
class _State:
    generation: int
    size: int            # one past the highest rowid any segment covers
    lengths: np.ndarray  # terms per chunk, by rowid
    live: np.ndarray     # bool, by rowid
    n_docs: int
    avgdl: float


class PostingsReader:
    """Per-term (rowids, BM25 scores) for one index generation, loaded on first use and kept (LRU, bounded)."""

    def __init__(self, cache_bytes: int = CACHE_BYTES) -> None:
        self.cache_bytes = cache_bytes
        self.state: _State | None = None
        self.terms: OrderedDict[str, tuple[np.ndarray, np.ndarray, float]] = OrderedDict()
        self.nbytes = 0

    def _load_state(self, db: sqlite3.Connection, generation: int) -> _State:
        segs = db.execute("SELECT lo, hi, lengths FROM bm25_segments").fetchall()
        size = max((hi for _lo, hi, _b in segs), default=-1) + 1
        lengths = np.zeros(size, dtype=np.uint32)
        live = np.zeros(size, dtype=bool)
        for lo, _hi, blob in segs:
            arr = np.frombuffer(blob, dtype=np.uint32)
            lengths[lo:lo + len(arr)] = arr
            live[lo:lo + len(arr)] = arr != bm25.DEAD
        dead = np.fromiter((r[0] for r in db.execute("SELECT chunk FROM bm25_deleted")), dtype=np.int64)
        dead = dead[dead < size]
        live[dead] = False
        lengths[~live] = 0
        n_docs = int(live.sum())
        avgdl = float(lengths.sum(dtype=np.int64)) / n_docs if n_docs else 1.0
        return _State(generation, size, lengths, live, n_docs, max(avgdl, 1e-9))

    def prepare(self, db: sqlite3.Connection, generation: int) -> _State:
        if self.state is None or self.state.generation != generation:
            self.state = self._load_state(db, generation)
            self.terms.clear()
            self.nbytes = 0
        return self.state

    def postings(self, db: sqlite3.Connection, stems: list[str]) -> list[tuple[np.ndarray, np.ndarray, float]]:
        state = self.state
        assert state is not None
        got = {t: self.terms[t] for t in stems if t in self.terms}
        for t in got:
            self.terms.move_to_end(t)
        missing = [t for t in stems if t not in got]
        if missing:
            found: dict[str, list[tuple[int, bytes]]] = {t: [] for t in missing}
            marks = ",".join("?" * len(missing))
            for term, lo, data in db.execute(
                    f"SELECT p.term, s.lo, p.data FROM bm25_postings p JOIN bm25_segments s ON s.id = p.segment "
                    f"WHERE p.term IN ({marks})", missing):
                found[term].append((lo, data))
            for term, parts in found.items():
                got[term] = self._scored(state, parts)
                self._put(term, got[term])
        return [got[t] for t in stems]

    @staticmethod
    def _scored(state: _State, parts: list[tuple[int, bytes]]) -> tuple[np.ndarray, np.ndarray, float]:
        if not parts:
            return np.zeros(0, np.int64), np.zeros(0, np.float32), 0.0
        parts.sort(key=lambda p: p[0])
        unpacked = [bm25.unpack(b) for _, b in parts]
        rows = np.concatenate([u[0] for u in unpacked]).astype(np.int64) if len(unpacked) > 1 else unpacked[0][0].astype(np.int64)
        tfs = np.concatenate([u[1] for u in unpacked]) if len(unpacked) > 1 else unpacked[0][1]
        rows_ok = rows < state.size
        keep = np.zeros(len(rows), bool)
        keep[rows_ok] = state.live[rows[rows_ok]]
        if not keep.all():
            rows, tfs = rows[keep], tfs[keep]
        if not len(rows):
            return rows, np.zeros(0, np.float32), 0.0
        scores = bm25.term_scores(rows, tfs, state.lengths, state.n_docs, state.avgdl)
        return rows, scores, float(scores.max())

    def _put(self, term: str, entry: tuple[np.ndarray, np.ndarray, float]) -> None:
        size = entry[0].nbytes + entry[1].nbytes + 100
        self.terms[term] = entry
        self.nbytes += size
        while self.nbytes > self.cache_bytes and len(self.terms) > 1:
            _t, old = self.terms.popitem(last=False)
            self.nbytes -= old[0].nbytes + old[1].nbytes + 100
