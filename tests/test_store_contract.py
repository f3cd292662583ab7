"""The IndexStore contract, run against both stores: SQLite (a file) and PostgreSQL (a real server).

One suite, parametrised by the ``setting`` fixture: the same incremental runs, rollback, span, search,
filter, schema-version and concurrency tests must pass on each. Store-specific failure modes (a wrong
URL, a refused connection, a read-only user, ...) are in test_postgres.py.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from conftest import ROOT, SEEDS, run_cli
from test_index import write_corpus
from rag.chunk import Chunker
from rag.config import load_settings
from rag.errors import IndexStoreError, QueryError
from rag.index import delete_documents, index_documents, index_paths
from rag.retrieve import retrieve
from rag.stores import open_cache, open_index, sessions_for
from rag.types import Document


@pytest.fixture(params=["sqlite", "postgres"])
def setting(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The index setting of a fresh, empty index of each kind (what RAG_INDEX would say)."""
    if request.param == "sqlite":
        return str(tmp_path / "index.db")
    return request.getfixturevalue("pg_url")


@pytest.fixture
def store(setting: str):
    s = open_index(setting, create=True)
    yield s
    s.close()


def snapshot(setting: str) -> dict[str, object]:
    """Everything a reader can see through the interface, from a fresh connection."""
    s = open_index(setting, readonly=True)
    try:
        docs = s.list_documents()
        return {
            "documents": docs,
            "texts": {d["id"]: s.get_document(str(d["id"])) for d in docs},
            "chunks": {d["id"]: s.chunks_of(str(d["id"])) for d in docs},
            "search": [(h.chunk.id, h.score) for h in s.search(["walmart", "delivery", "marker"], k=20)],
            "generation": s.generation(),
        }
    finally:
        s.close()


def set_schema_version(setting: str, version: int) -> None:
    if setting.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(setting, autocommit=True) as conn:
            conn.execute("UPDATE rag_meta SET value = %s WHERE key = 'schema_version'", (str(version),))
    else:
        db = sqlite3.connect(setting)
        with db:
            db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),))
        db.close()


# ------------------------------------------------------------------ incremental runs, one transaction per run
def test_unchanged_documents_are_skipped_and_nothing_changes(tmp_path: Path, setting: str, store, chunker) -> None:
    corpus = write_corpus(tmp_path / "corpus", 5)
    first = index_paths([corpus], store, chunker)
    assert (first.indexed, first.unchanged, first.chunks) == (5, 0, 5)
    before = snapshot(setting)
    again = index_paths([corpus], store, chunker)
    assert (again.indexed, again.unchanged, again.replaced, again.chunks) == (0, 5, 0, 0)
    assert snapshot(setting) == before  # the generation did not move either


def test_a_changed_document_is_replaced_and_its_old_text_leaves_the_search(tmp_path: Path, store, chunker) -> None:
    corpus = write_corpus(tmp_path / "corpus", 3)
    index_paths([corpus], store, chunker)
    generation = store.generation()
    assert store.search(["doc1"], k=5)  # read (and kept by a store that caches postings) before the change
    (corpus / "doc00001.txt").write_text("Rewritten\nThe zeppelin fleet now delivers groceries.\n", encoding="utf-8")
    report = index_paths([corpus], store, chunker)
    assert (report.indexed, report.replaced, report.unchanged) == (0, 1, 2)
    assert store.generation() > generation
    assert store.search(["zeppelin"], k=5)[0].chunk.doc_id == "corpus/doc00001.txt"
    assert store.search(["doc1"], k=5) == []


def test_prune_and_delete(tmp_path: Path, store, chunker) -> None:
    corpus = write_corpus(tmp_path / "corpus", 3)
    other = write_corpus(tmp_path / "other", 2, tag="o")
    index_paths([corpus, other], store, chunker)
    (corpus / "doc00002.txt").unlink()
    report = index_paths([corpus], store, chunker, prune=True)
    assert report.pruned == 1
    assert {d["id"] for d in store.list_documents()} == {"corpus/doc00000.txt", "corpus/doc00001.txt",
                                                         "other/doc00000.txt", "other/doc00001.txt"}
    assert delete_documents(["other/doc00000.txt", "nope"], store) == 1
    assert store.search(["odoc0"], k=5) == []
    assert store.stats()["documents"] == 3 and store.stats()["chunks"] == 3


def test_an_error_mid_run_leaves_the_previous_contents_exactly(tmp_path: Path, setting: str, store, chunker) -> None:
    corpus = write_corpus(tmp_path / "corpus", 4)
    index_paths([corpus], store, chunker)
    before = snapshot(setting)
    write_corpus(tmp_path / "corpus", 8, tag="v2-")  # 4 changed + 4 new
    (corpus / "doc00000.txt").unlink()               # and one to prune
    seen: list[object] = []

    def explode(event: object, chunks: int) -> None:
        seen.append(event)
        if len(seen) == 5:
            raise RuntimeError("boom mid-run")

    with pytest.raises(RuntimeError, match="boom mid-run"):
        index_paths([corpus], store, chunker, prune=True, progress=explode)
    assert snapshot(setting) == before
    report = index_paths([corpus], store, chunker, prune=True)  # the same connection writes again afterwards
    assert (report.replaced, report.indexed, report.pruned) == (3, 4, 1)


def test_chunk_text_is_the_stored_document_by_span(store, chunker) -> None:
    text = "Ünïcode façade — “quotes”, emoji 🚀 and 报告 text.\n\n" + "A second paragraph about drones. " * 60
    doc = Document(id="u/1.txt", source="u/1.txt", title="U", text=text, sha256="x" * 64, date="2025-03-04",
                   pages=[0, 120])
    index_documents([doc], store, Chunker(max_tokens=60, overlap=1), owner="alice")
    chunks = store.chunks_of("u/1.txt")
    assert len(chunks) > 2
    assert all(text[c.start:c.end] == c.text for c in chunks)
    assert store.get_chunks([chunks[1].id, "missing", chunks[0].id]) == [chunks[1], chunks[0]]
    assert store.get_document("u/1.txt").text == text
    assert store.page_starts(["u/1.txt", "other"]) == {"u/1.txt": [0, 120]}
    [listed] = store.list_documents()
    assert (listed["owner"], listed["chunks"], listed["date"]) == ("alice", len(chunks), "2025-03-04")
    assert store.search(["报告"], k=3)[0].chunk.id == chunks[0].id  # non-Latin words are searchable too
    # diacritics fold both ways, as FTS5's remove_diacritics did
    assert [h.chunk.id for h in store.search(["facade"], k=3)] == [chunks[0].id]
    assert [h.chunk.id for h in store.search(["FAÇADES"], k=3)] == [chunks[0].id]


# ------------------------------------------------------------------ search
def _indexed(tmp_path: Path, store, chunker) -> None:
    corpus = tmp_path / "c"
    corpus.mkdir()
    for name, date, body in [
        ("a[1].txt", "2024-05-01", "Walmart expands drone delivery to Texas stores."),
        ("b_%.txt", "2025-01-31T10:00", "Kroger hires a new chief executive from Walmart."),
        ("c.txt", None, "Amazon builds satellites; drone delivery is a side bet."),
    ]:
        meta = json.dumps({"text": body, "title": name, "id": name, **({"date": date} if date else {})})
        (corpus / f"{name}.jsonl").write_text(meta + "\n", encoding="utf-8")
    index_paths([corpus], store, chunker)


def test_filters_by_source_glob_and_dates(tmp_path: Path, store, chunker) -> None:
    _indexed(tmp_path, store, chunker)

    def docs(**filters: object) -> set[str]:
        return {h.source.removeprefix("c/").removesuffix(".jsonl:1") for h in
                retrieve(store, "walmart drone delivery", k=10, **filters)}

    assert docs() == {"a[1].txt", "b_%.txt", "c.txt"}
    assert docs(source_glob="c/a[[]1]*") == {"a[1].txt"}     # [ ] as GLOB classes, not literal text
    assert docs(source_glob="c/b_%*") == {"b_%.txt"}         # _ and % are literal, unlike LIKE
    assert docs(source_glob="c/?.txt.jsonl:?") == {"c.txt"}
    assert docs(source_glob="c/[ab]*") == {"a[1].txt", "b_%.txt"}
    assert docs(source_glob="c/[^ab]*") == {"c.txt"}
    assert docs(date_from="2025") == {"b_%.txt"}
    assert docs(date_to="2025-01-31") == {"a[1].txt", "b_%.txt"}  # compared at the precision given
    assert docs(date_to="2024-12") == {"a[1].txt"}


def test_hybrid_retrieval_uses_the_stored_vectors(tmp_path: Path, store, chunker) -> None:
    _indexed(tmp_path, store, chunker)
    import numpy as np

    from rag.embed import get_embedder

    near = store.vector_search(get_embedder().embed_one("unmanned aircraft bringing parcels"), k=3)
    assert len(near) == 3 and all(isinstance(h.score, float) for h in near)
    assert [h.rank for h in near] == [1, 2, 3]
    hits = retrieve(store, "drone delivery", k=2, hybrid=True)
    assert len(hits) == 2 and hits[0].snippet
    assert store.vector_search(np.zeros(256, np.float32), k=1, source_glob="nothing*") == []


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.text(min_size=1, max_size=40) | st.sampled_from([
    "walmart' OR 1=1 --", "drone & !delivery | (x:*)", "\"unclosed", "a <-> b", "NEAR(walmart delivery)",
    "walmart\\", "'; DROP TABLE rag_documents; --", "*", "-walmart", "$1 %s {0}"]))
def test_any_query_string_is_safe(tmp_path: Path, store, chunker, query: str) -> None:
    if not store.list_documents():
        _indexed(tmp_path, store, chunker)
    try:
        hits = retrieve(store, query, k=5)
    except QueryError:
        return  # nothing searchable in it: a usage error, never a syntax error from the store
    assert all(h.rank == i + 1 for i, h in enumerate(hits))
    assert len(store.list_documents()) == 3


# ------------------------------------------------------------------ schema
def test_migrations_are_recorded_and_reopening_is_idempotent(setting: str, store) -> None:
    version = store.stats()["schema_version"]
    assert version >= 2
    again = open_index(setting, create=True)  # rag index / rag migrate on a current index: nothing to do
    assert again.stats()["schema_version"] == version
    again.close()


def test_an_index_from_a_newer_rag_is_refused_and_left_unchanged(setting: str, store) -> None:
    store.close()
    set_schema_version(setting, 99)
    for command in (["stats"], ["index", str(SEEDS)], ["migrate"], ["search", "walmart"]):
        result = run_cli(*command, env={"RAG_INDEX": setting})
        assert result.returncode == 1, command
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "schema version 99, newer than this rag" in lines[0], lines
    with pytest.raises(IndexStoreError, match="newer than this rag"):
        open_index(setting)
    doctor = run_cli("doctor", env={"RAG_INDEX": setting})
    assert doctor.returncode == 1 and "99" in doctor.stdout


def test_a_missing_index_is_reported_not_created(setting: str) -> None:
    result = run_cli("stats", env={"RAG_INDEX": setting})
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("rag: error: no index") and "rag index" in line
    assert run_cli("stats", env={"RAG_INDEX": setting}).returncode == 1  # still nothing was created


# ------------------------------------------------------------------ sessions and the response cache beside the index
def test_sessions_and_cache_live_beside_the_index(setting: str, store, tmp_path: Path) -> None:
    sessions = sessions_for(store)
    assert sessions.load("alice/s1") == []
    sessions.save("alice/s1", [{"role": "user", "content": "hi"}])
    other = open_index(setting)
    assert sessions_for(other).load("alice/s1") == [{"role": "user", "content": "hi"}]  # another worker sees it
    other.close()
    cache = open_cache(load_settings(index=setting, home=tmp_path / "home"))
    cache.put("k1", {"kind": "text", "output": "x"})
    assert cache.get("k1") == {"kind": "text", "output": "x"} and cache.get("k2") is None
    cache.close()


# ------------------------------------------------------------------ concurrency
def test_concurrent_indexers_and_readers_are_safe(tmp_path: Path, setting: str) -> None:
    assert run_cli("index", str(SEEDS), env={"RAG_INDEX": setting}).returncode == 0
    a = write_corpus(tmp_path / "alpha", 80, tag="alpha")
    b = write_corpus(tmp_path / "beta", 80, tag="beta")
    env = dict(os.environ) | {"RAG_INDEX": setting}

    def start(*args: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "rag", *args], cwd=ROOT, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    procs = [start("index", str(a), "--json"), start("index", str(b), "--json")]
    procs += [start("search", "walmart delivery", "--json"), start("stats", "--json")]
    outputs = [(p, *p.communicate(timeout=180)) for p in procs]
    for proc, out, err in outputs:
        assert proc.returncode == 0, err
        json.loads(out)
    assert sorted(json.loads(out)["indexed"] for _p, out, _e in outputs[:2]) == [80, 80]
    s = open_index(setting, readonly=True)
    try:
        stats = s.stats()
        assert stats["documents"] == 161
        assert stats["chunks"] == sum(int(d["chunks"]) for d in s.list_documents())
        assert s.search(["alphadoc79"], k=3)[0].chunk.doc_id == "alpha/doc00079.txt"
        assert s.search(["betadoc0"], k=3)[0].chunk.doc_id == "beta/doc00000.txt"
    finally:
        s.close()
