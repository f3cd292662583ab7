"""Keyword search over precomputed postings: exact BM25 against a from-scratch reference, through incremental
adds, replacements, deletions, segment merges and the migration from an FTS5 index."""

from __future__ import annotations

import json
import math
import random
import sqlite3
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ROOT, SEEDS, run_cli, store_text_in_documents
from rag import bm25, postings
from rag.chunk import Chunker
from rag.index import SQLiteIndex, delete_documents, index_paths
from rag.retrieve import query_terms

VOCAB = ("retail pharmacy delivery drone satellite cloud grocery clinic warehouse tariff margin inventory loyalty "
         "subscription broadband pickup kiosk shipping freight robot").split()


def reference(store: SQLiteIndex, query: str, k: int) -> list[tuple[str, float]]:
    """BM25 (Lucene idf, k1=1.2, b=0.75) computed from scratch over every live chunk's text."""
    docs = {}
    for d in store.list_documents():
        for c in store.chunks_of(str(d["id"])):
            docs[c.id] = Counter(bm25.text_terms(c.text))
    n = len(docs)
    if not n:
        return []
    avgdl = sum(sum(tf.values()) for tf in docs.values()) / n
    stems = bm25.query_stems(query_terms(query))
    df = {t: sum(1 for tf in docs.values() if t in tf) for t in stems}
    scores = {}
    for cid, tf in docs.items():
        dl = sum(tf.values())
        s = 0.0
        for t in stems:
            if tf.get(t):
                idf = math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5))
                s += idf * tf[t] * 2.2 / (tf[t] + 1.2 * (0.25 + 0.75 * dl / avgdl))
        if s > 0:
            scores[cid] = s
    return sorted(scores.items(), key=lambda x: -x[1])[:k]


def assert_same_ranking(store: SQLiteIndex, query: str, k: int = 10) -> None:
    got = [(h.chunk.id, h.score) for h in store.search(query_terms(query), k=k)]
    want = reference(store, query, k)
    assert len(got) == len(want), (query, got, want)
    for (gid, gs), (wid, ws) in zip(got, want):
        assert gs == pytest.approx(ws, rel=1e-4, abs=1e-4), (query, got, want)
    # the same chunks, up to the order of exact ties
    assert {g for g, _ in got if round(_, 3) > round(want[-1][1], 3)} <= {w for w, _ in want}


def write_docs(root: Path, rng: random.Random, names: list[str]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        sentences = []
        for _ in range(rng.randint(1, 30)):
            words = [rng.choice(VOCAB[: rng.randint(3, len(VOCAB))]) for _ in range(rng.randint(3, 14))]
            sentences.append(" ".join(words).capitalize() + ".")
        (root / name).write_text(f"Title {name}\n" + " ".join(sentences) + "\n", encoding="utf-8")


QUERIES = ["drone delivery", "retail pharmacy pickup", "satellite broadband", "robot", "freight shipping tariff margin",
           "loyalty subscriptions kiosks", "the cloud"]


def test_search_is_exact_bm25_through_adds_replacements_deletes_and_merges(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(postings, "FLUSH_POSTINGS", 300)  # many small segments, so merges and tombstones all run
    rng = random.Random(7)
    corpus = tmp_path / "corpus"
    store = SQLiteIndex(tmp_path / "i.db", create=True)
    chunker = Chunker(max_tokens=60, overlap=1)
    write_docs(corpus, rng, [f"d{i:03d}.txt" for i in range(40)])
    index_paths([corpus], store, chunker)
    for q in QUERIES:
        assert_same_ranking(store, q)
    for step in range(6):
        names = sorted(p.name for p in corpus.iterdir())
        for name in rng.sample(names, 5):  # replaced
            write_docs(corpus, rng, [name])
        for name in rng.sample(names, 3):  # deleted
            (corpus / name).unlink(missing_ok=True)
        write_docs(corpus, rng, [f"n{step}-{i}.txt" for i in range(4)])  # added
        index_paths([corpus], store, chunker, prune=True)
        for q in QUERIES:
            assert_same_ranking(store, q)
    segments = store.db.execute("SELECT count(*) FROM bm25_segments").fetchone()[0]
    assert segments <= 8  # merged as it went, not one per flush
    delete_documents([str(d["id"]) for d in store.list_documents()], store)
    assert store.search(["drone"], k=5) == []
    store.close()


def test_a_new_run_that_replaces_everything_leaves_no_dead_postings(tmp_path: Path):
    corpus = tmp_path / "corpus"
    write_docs(corpus, random.Random(1), [f"d{i}.txt" for i in range(10)])
    store = SQLiteIndex(tmp_path / "i.db", create=True)
    index_paths([corpus], store, Chunker(max_tokens=300))
    index_paths([corpus], store, Chunker(max_tokens=40))  # new chunker: every document rechunked
    live = store.db.execute("SELECT count(*) FROM chunks").fetchone()[0]
    n_chunks, = store.db.execute("SELECT sum(n_chunks) FROM bm25_segments").fetchone()
    assert n_chunks == live
    assert store.db.execute("SELECT count(*) FROM bm25_deleted").fetchone()[0] == 0
    for q in QUERIES:
        assert_same_ranking(store, q)
    store.close()


def test_chunk_rowids_are_never_reused(tmp_path: Path):
    """A tombstone names a rowid: if a new chunk could take it, the tombstone would hide the new chunk."""
    corpus = tmp_path / "corpus"
    write_docs(corpus, random.Random(2), ["a.txt", "b.txt"])
    store = SQLiteIndex(tmp_path / "i.db", create=True)
    chunker = Chunker()
    index_paths([corpus], store, chunker)
    last = store.db.execute("SELECT max(rowid) FROM chunks").fetchone()[0]
    (corpus / "b.txt").unlink()
    index_paths([corpus], store, chunker, prune=True)
    (corpus / "c.txt").write_text("Zeppelin freight.\n", encoding="utf-8")
    index_paths([corpus], store, chunker)
    assert store.db.execute("SELECT min(rowid) FROM chunks WHERE doc_id = 'corpus/c.txt'").fetchone()[0] > last
    assert store.search(["zeppelin"], k=3)[0].chunk.doc_id == "corpus/c.txt"
    store.close()


def test_filters_walk_down_the_whole_ranking(tmp_path: Path):
    """A selective filter still finds its best match even when it ranks far below the first candidates."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    rows = [{"id": f"x{i}", "date": "2020-01-01", "text": "Drone delivery drone delivery drone."} for i in range(300)]
    rows.append({"id": "late", "date": "2025-06-01", "text": "A long note that mentions a drone once among many other words "
                                                           "about retail pharmacy clinic warehouse grocery logistics."})
    (corpus / "n.jsonl").write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    store = SQLiteIndex(tmp_path / "i.db", create=True)
    index_paths([corpus], store, Chunker())
    hits = store.search(["drone"], k=3, date_from="2025-01-01")
    assert [h.chunk.doc_id for h in hits] == ["late"]
    assert len(store.search(["drone"], k=500)) == 301
    store.close()


def test_an_fts5_index_migrates_to_postings_with_the_same_chunks(tmp_path: Path):
    """An index written before the postings (schema 5, FTS5) is migrated: postings are built from its chunks."""
    index = tmp_path / "old.db"
    assert run_cli("--index", str(index), "index", str(SEEDS)).returncode == 0
    db = sqlite3.connect(index)
    store_text_in_documents(db)
    db.execute("DROP TABLE bm25_postings")
    db.execute("DROP TABLE bm25_segments")
    db.execute("DROP TABLE bm25_deleted")
    db.execute("DELETE FROM meta WHERE key = 'bm25_next_rowid'")
    db.execute("CREATE VIRTUAL TABLE chunks_fts USING fts5(text, content='', tokenize='porter unicode61 remove_diacritics 2')")
    db.execute("UPDATE meta SET value = '5' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    old = run_cli("--index", str(index), "search", "prescription delivery")
    assert old.returncode == 1 and "older than this rag" in old.stderr
    assert run_cli("--index", str(index), "migrate").returncode == 0
    result = run_cli("--index", str(index), "search", "prescription delivery", "--json")
    assert result.returncode == 0, result.stderr
    assert "same-day prescription delivery" in json.loads(result.stdout)[0]["chunk"]["text"]
    tables = {r[0] for r in sqlite3.connect(index).execute("SELECT name FROM sqlite_master")}
    assert "chunks_fts" not in tables and "bm25_postings" in tables


def test_an_index_with_text_in_documents_migrates_to_text_pieces(tmp_path: Path):
    """Migration 9 moves each document's text into pieces cut at its chunk boundaries; every chunk and document
    reads back exactly as before, and searches return the same hits."""
    index = tmp_path / "old.db"
    assert run_cli("--index", str(index), "index", str(SEEDS), str(ROOT / "evals/corpora/water")).returncode == 0
    store = SQLiteIndex(index)
    docs = {d["id"]: store.get_document(d["id"]) for d in store.list_documents()}
    chunks = {doc_id: store.chunks_of(doc_id) for doc_id in docs}
    before = store.search(["prescription", "delivery"], k=5)
    store.close()
    assert all(c.text == docs[d].text[c.start:c.end] for d, cs in chunks.items() for c in cs)
    assert sum(len(cs) > 1 for cs in chunks.values()), "the check needs documents of several chunks"
    db = sqlite3.connect(index)
    store_text_in_documents(db)
    db.execute("UPDATE meta SET value = '8' WHERE key = 'schema_version'")
    db.commit()
    assert db.execute("SELECT count(*) FROM documents WHERE text != ''").fetchone()[0] == len(docs)
    db.close()
    assert run_cli("--index", str(index), "migrate").returncode == 0
    store = SQLiteIndex(index)
    assert {d: store.get_document(d) for d in docs} == docs
    assert {d: store.chunks_of(d) for d in docs} == chunks
    assert store.search(["prescription", "delivery"], k=5) == before
    assert store.db.execute("SELECT count(*) FROM documents WHERE text != ''").fetchone()[0] == 0
    store.close()


def test_terms_come_from_the_language_layer():
    assert bm25.text_terms("Paid strategies") == ["pay", "strategy"]
    assert bm25.text_terms("Use capture_output=True") == ["use", "capture", "output", "true", "capture_output"]
    assert bm25.text_terms("a b 7 x1") == ["7", "x1"]  # single letters are not terms; digits are
    assert bm25.query_stems(["deliveries", "delivery", "the"]) == ["delivery", "the"]


postings_st = st.lists(st.tuples(st.sets(st.integers(0, 199), min_size=1, max_size=60),
                                 st.floats(0.01, 5.0)), min_size=1, max_size=6)


@settings(max_examples=150, deadline=None)
@given(terms=postings_st, k=st.integers(1, 12), seed=st.integers(0, 10_000))
def test_top_k_equals_scoring_every_term_in_full(terms, k, seed):
    rng = np.random.default_rng(seed)
    lists = []
    for rowset, scale in terms:
        rows = np.array(sorted(rowset), dtype=np.int64)
        scores = (rng.random(len(rows)) * scale).astype(np.float32) + np.float32(1e-3)
        lists.append((rows, scores, float(scores.max())))
    full = np.zeros(200, np.float64)
    for rows, scores, _ in lists:
        full[rows] += scores
    want_rows = np.flatnonzero(full)
    order = np.lexsort((want_rows, -full[want_rows]))[:k]
    got_rows, got_scores = bm25.top_k(lists, k, 200)
    assert np.allclose(got_scores, full[want_rows[order]], rtol=1e-5)
    assert len(got_rows) == len(order)


def _dump(path: Path) -> dict:
    db = sqlite3.connect(path)
    try:
        return {
            "chunks": db.execute('SELECT rowid, id, doc_id, ordinal, start, "end", n_tokens FROM chunks ORDER BY rowid').fetchall(),
            "vectors": db.execute("SELECT chunk, vector FROM chunk_vectors ORDER BY chunk").fetchall(),
            "postings": db.execute("SELECT p.term, s.lo, p.df, p.data FROM bm25_postings p JOIN bm25_segments s ON s.id = p.segment "
                                   "ORDER BY p.term, s.lo").fetchall(),
            "documents": db.execute("SELECT id, key, text, boilerplate, n_tokens FROM documents ORDER BY id").fetchall(),
        }
    finally:
        db.close()


def test_worker_processes_write_the_same_index_as_one_process(tmp_path: Path, monkeypatch):
    from rag import pipeline

    monkeypatch.setattr(pipeline, "BATCH_BYTES", 4000)  # many batches, so the pool starts and results interleave
    corpus = tmp_path / "corpus"
    write_docs(corpus, random.Random(3), [f"d{i:03d}.txt" for i in range(80)])
    (corpus / "bad.txt").write_bytes(b"\x00\x01binary")
    reports = {}
    for workers in (1, 2):
        store = SQLiteIndex(tmp_path / f"w{workers}.db", create=True)
        seen: list[str] = []
        reports[workers] = index_paths([corpus], store, Chunker(max_tokens=80), workers=workers,
                                       progress=lambda e, n: seen.append(getattr(e, "id", getattr(e, "source", ""))))
        reports[workers].seen = seen
        store.close()
    assert reports[1].chunks == reports[2].chunks > 80
    assert reports[1].seen == reports[2].seen  # events reported in the same order
    assert reports[1].skipped == reports[2].skipped
    assert _dump(tmp_path / "w1.db") == _dump(tmp_path / "w2.db")
