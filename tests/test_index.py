"""The SQLite index: incremental runs, pruning, schema guards, and one transaction per run (even under SIGKILL)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, SEEDS, run_cli
from rag.chunk import Chunker
from rag.errors import IndexStoreError
from rag.index import SCHEMA_VERSION, SQLiteIndex, index_paths
from rag.ingest import Skipped
from rag.types import Document

WORDS = ("amazon walmart retail platform healthcare logistics delivery satellite cloud store clinic data market "
         "price shipping consumer pharmacy drone kiosk warehouse").split()


def write_corpus(root: Path, n: int, *, tag: str = "", sentences: int = 4) -> Path:
    """``n`` small deterministic text files under ``root``; each holds a unique word ``<tag>doc<i>``."""
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        body = " ".join(
            " ".join(WORDS[(i * 7 + s * 3 + w) % len(WORDS)] for w in range(12)).capitalize() + "."
            for s in range(sentences)
        )
        (root / f"doc{i:05d}.txt").write_text(f"Document {tag}{i}\n{body} Marker {tag}doc{i}.\n", encoding="utf-8")
    return root


def snapshot(path: Path) -> dict[str, object]:
    """Everything a reader can see: documents (with text) and every chunk."""
    store = SQLiteIndex(path)
    try:
        docs = store.list_documents()
        return {
            "documents": docs,
            "texts": {d["id"]: store.get_document(str(d["id"])) for d in docs},
            "chunks": {d["id"]: store.chunks_of(str(d["id"])) for d in docs},
            "indexed_at": dict(store.db.execute("SELECT id, indexed_at FROM documents")),
            "meta": dict(store.db.execute("SELECT key, value FROM meta")),
        }
    finally:
        store.close()


def integrity(path: Path) -> None:
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        orphans = db.execute("SELECT count(*) FROM chunks c LEFT JOIN documents d ON d.id = c.doc_id WHERE d.id IS NULL").fetchone()[0]
        assert orphans == 0
        # The postings describe exactly the live chunks: every chunk has a length slot, tombstones aside none other does.
        live = {r[0] for r in db.execute("SELECT rowid FROM chunks")}
        dead = {r[0] for r in db.execute("SELECT chunk FROM bm25_deleted")}
        slots = set()
        for lo, blob in db.execute("SELECT lo, lengths FROM bm25_segments"):
            lengths = np.frombuffer(blob, dtype=np.uint32)
            slots |= {lo + i for i in np.flatnonzero(lengths != 0xFFFFFFFF).tolist()}
        assert slots - dead == live
    finally:
        db.close()


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def store(index_path: Path):
    s = SQLiteIndex(index_path, create=True)
    yield s
    s.close()


# ------------------------------------------------------------------ incremental runs
def test_reindexing_unchanged_files_writes_nothing(tmp_path: Path, store: SQLiteIndex, chunker: Chunker, index_path: Path):
    corpus = write_corpus(tmp_path / "corpus", 5)
    first = index_paths([corpus], store, chunker)
    assert (first.indexed, first.unchanged, first.replaced) == (5, 0, 0)
    assert first.chunks == 5
    before = snapshot(index_path)
    again = index_paths([corpus], store, chunker)
    assert (again.indexed, again.unchanged, again.replaced, again.pruned, again.chunks) == (0, 5, 0, 0, 0)
    assert snapshot(index_path) == before  # same documents, chunks and indexed_at


def test_cli_reindex_of_unchanged_files_leaves_the_db_file_untouched(tmp_path: Path, index_path: Path):
    corpus = write_corpus(tmp_path / "corpus", 3)
    assert run_cli("index", str(corpus)).returncode == 0
    digest, mtime = sha(index_path), index_path.stat().st_mtime_ns
    result = run_cli("index", str(corpus), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["indexed"], summary["unchanged"], summary["chunks_written"]) == (0, 3, 0)
    assert sha(index_path) == digest
    assert index_path.stat().st_mtime_ns == mtime


def test_changed_file_is_replaced(tmp_path: Path, store: SQLiteIndex, chunker: Chunker, index_path: Path):
    corpus = write_corpus(tmp_path / "corpus", 3)
    index_paths([corpus], store, chunker)
    (corpus / "doc00001.txt").write_text("Rewritten\nThe zeppelin fleet now delivers groceries.\n", encoding="utf-8")
    report = index_paths([corpus], store, chunker)
    assert (report.indexed, report.replaced, report.unchanged) == (0, 1, 2)
    doc = store.get_document("corpus/doc00001.txt")
    assert doc is not None and "zeppelin" in doc.text
    [chunk] = store.chunks_of("corpus/doc00001.txt")
    assert chunk.text == doc.text.strip()
    assert store.search(["zeppelin"], k=5)[0].chunk.doc_id == "corpus/doc00001.txt"
    assert store.search(["doc1"], k=5) == []  # the old text is gone from the full-text index
    integrity(index_path)


def test_changed_chunker_settings_rechunk_everything(tmp_path: Path, store: SQLiteIndex):
    corpus = write_corpus(tmp_path / "corpus", 3, sentences=12)
    index_paths([corpus], store, Chunker(max_tokens=300))
    report = index_paths([corpus], store, Chunker(max_tokens=40))
    assert report.replaced == 3
    assert report.chunks > 3
    assert store.get_meta("chunker") == Chunker(max_tokens=40).fingerprint


def test_prune_removes_documents_whose_files_are_gone(tmp_path: Path, store: SQLiteIndex, chunker: Chunker):
    corpus = write_corpus(tmp_path / "corpus", 3)
    other = write_corpus(tmp_path / "other", 2, tag="o")
    index_paths([corpus, other], store, chunker)
    (corpus / "doc00002.txt").unlink()
    (other / "doc00001.txt").unlink()

    kept = index_paths([corpus], store, chunker)  # without --prune nothing is removed
    assert kept.pruned == 0
    assert len(store.list_documents()) == 5

    report = index_paths([corpus], store, chunker, prune=True)
    assert report.pruned == 1
    ids = [d["id"] for d in store.list_documents()]
    # only documents under the given path are pruned; other/doc00001 stays until `other` is pruned
    assert ids == ["corpus/doc00000.txt", "corpus/doc00001.txt", "other/doc00000.txt", "other/doc00001.txt"]
    assert store.search(["doc2"], k=5) == []


def test_cli_prune_reports_the_count(tmp_path: Path):
    corpus = write_corpus(tmp_path / "corpus", 4)
    assert run_cli("index", str(corpus)).returncode == 0
    (corpus / "doc00000.txt").unlink()
    result = run_cli("index", str(corpus), "--prune")
    assert result.returncode == 0, result.stderr
    assert "0 new, 0 changed, 3 unchanged, 1 pruned, 0 skipped" in result.stdout
    stats = json.loads(run_cli("stats", "--json").stdout)
    assert stats["documents"] == 3


def test_skipped_files_are_reported_and_do_not_stop_the_run(tmp_path: Path, store: SQLiteIndex, chunker: Chunker):
    corpus = write_corpus(tmp_path / "corpus", 2)
    (corpus / "bad.txt").write_bytes(b"\x00\x01binary")
    report = index_paths([corpus], store, chunker)
    assert report.indexed == 2
    assert report.skipped == [Skipped("corpus/bad.txt", "binary file")]


# ------------------------------------------------------------------ schema guards
def test_index_from_a_newer_rag_is_refused(index_path: Path, store: SQLiteIndex):
    store.set_meta("schema_version", str(SCHEMA_VERSION + 5))
    store.close()
    with pytest.raises(IndexStoreError) as info:
        SQLiteIndex(index_path)
    assert str(info.value) == (
        f"index {index_path} has schema version {SCHEMA_VERSION + 5}, newer than this rag ({SCHEMA_VERSION}) "
        "(upgrade rag, or rebuild the index)"
    )
    result = run_cli("stats")
    assert result.returncode == 1
    assert result.stderr.strip() == f"rag: error: {info.value}"


def test_garbage_file_as_index_is_an_index_store_error(index_path: Path):
    index_path.write_bytes(os.urandom(8192))
    before = index_path.read_bytes()
    with pytest.raises(IndexStoreError, match="is not a rag index .not an SQLite database.; left unchanged"):
        SQLiteIndex(index_path)
    result = run_cli("search", "walmart")
    assert result.returncode == 1
    assert result.stderr.startswith(f"rag: error: {index_path} is not a rag index") and result.stderr.count("\n") == 1
    assert index_path.read_bytes() == before
    assert "Traceback" not in result.stderr


def test_missing_index_is_an_error_not_created(index_path: Path):
    with pytest.raises(IndexStoreError, match="create it with `rag index PATHS`"):
        SQLiteIndex(index_path)
    assert not index_path.exists()


def test_migrations_are_recorded_and_idempotent(index_path: Path, store: SQLiteIndex):
    assert store.get_meta("schema_version") == str(SCHEMA_VERSION)
    store.close()
    again = SQLiteIndex(index_path)
    assert again.stats()["schema_version"] == SCHEMA_VERSION
    again.close()


# ------------------------------------------------------------------ atomicity
def test_exception_mid_run_leaves_the_previous_contents_exactly(tmp_path: Path, store: SQLiteIndex, chunker: Chunker,
                                                                 index_path: Path):
    corpus = write_corpus(tmp_path / "corpus", 4)
    index_paths([corpus], store, chunker)
    before = snapshot(index_path)

    write_corpus(tmp_path / "corpus", 8, tag="v2-")  # 4 changed + 4 new files
    (corpus / "doc00000.txt").unlink()               # and one would be pruned
    seen: list[object] = []

    def explode(event: object, chunks: int) -> None:
        seen.append(event)
        if len(seen) == 5:
            raise RuntimeError("boom mid-run")

    with pytest.raises(RuntimeError, match="boom mid-run"):
        index_paths([corpus], store, chunker, prune=True, progress=explode)
    assert snapshot(index_path) == before
    assert not store.db.in_transaction
    integrity(index_path)
    # the same connection can index again afterwards
    report = index_paths([corpus], store, chunker, prune=True)
    assert (report.replaced, report.indexed, report.pruned) == (3, 4, 1)


def test_keyboard_interrupt_mid_run_rolls_back(tmp_path: Path, store: SQLiteIndex, chunker: Chunker, index_path: Path):
    corpus = write_corpus(tmp_path / "corpus", 3)
    index_paths([corpus], store, chunker)
    before = snapshot(index_path)
    write_corpus(tmp_path / "corpus", 6, tag="new-")

    def interrupt(event: object, chunks: int) -> None:
        if isinstance(event, Document) and event.id.endswith("doc00004.txt"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        index_paths([corpus], store, chunker, progress=interrupt)
    assert snapshot(index_path) == before


def _wait_for(predicate, proc: subprocess.Popen, what: str, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        if proc.poll() is not None:
            pytest.fail(f"rag index exited ({proc.returncode}) before {what}; make the corpus bigger")
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.01)


def test_sigkill_mid_run_leaves_the_previous_contents(tmp_path: Path, index_path: Path):
    assert run_cli("index", str(SEEDS)).returncode == 0
    before = snapshot(index_path)
    big = write_corpus(tmp_path / "big", 2000, tag="big", sentences=12)
    wal = Path(f"{index_path}-wal")
    proc = subprocess.Popen([sys.executable, "-m", "rag", "index", str(SEEDS), str(big)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        # Uncommitted pages spill into the WAL once the page cache fills: the run is well under way.
        _wait_for(lambda: wal.exists() and wal.stat().st_size > 100_000, proc, "the write to be under way")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    integrity(index_path)
    assert snapshot(index_path) == before
    result = run_cli("search", "prescription delivery", "--json")
    assert result.returncode == 0, result.stderr
    assert all(hit["source"].startswith("seeds/") for hit in json.loads(result.stdout))
    # and the next run writes normally
    small = write_corpus(tmp_path / "small", 3, tag="small")
    result = run_cli("index", str(small), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["indexed"] == 3
    integrity(index_path)


def test_concurrent_index_and_search_processes_do_not_corrupt(tmp_path: Path, index_path: Path):
    assert run_cli("index", str(SEEDS)).returncode == 0
    a = write_corpus(tmp_path / "alpha", 150, tag="alpha")
    b = write_corpus(tmp_path / "beta", 150, tag="beta")
    env = dict(os.environ)

    def start(*args: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "rag", *args], cwd=ROOT, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    writers = [start("index", str(a), "--json"), start("index", str(b), "--json")]
    readers: list[subprocess.Popen] = []
    while any(w.poll() is None for w in writers) and len(readers) < 6:
        readers.append(start("search", "walmart delivery", "--json"))
        readers.append(start("stats", "--json"))
        time.sleep(0.1)
    outputs = [(p, *p.communicate(timeout=120)) for p in writers + readers]
    for proc, out, err in outputs:
        assert proc.returncode == 0, err
        assert "Traceback" not in err
        json.loads(out)
    assert sorted(json.loads(out)["indexed"] for _p, out, _e in outputs[:2]) == [150, 150]

    integrity(index_path)
    store = SQLiteIndex(index_path)
    try:
        stats = store.stats()
        assert stats["documents"] == 1 + 150 + 150
        assert stats["chunks"] == sum(int(d["chunks"]) for d in store.list_documents())
        assert store.search(["alphadoc149"], k=3)[0].chunk.doc_id == "alpha/doc00149.txt"
        assert store.search(["betadoc0"], k=3)[0].chunk.doc_id == "beta/doc00000.txt"
    finally:
        store.close()


# ------------------------------------------------------------------ unchanged files are not read again
def _age(path: Path, seconds: float = 3600) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - int(seconds * 1e9)))


def test_a_file_whose_size_mtime_and_inode_match_is_not_read_again(tmp_path: Path, store: SQLiteIndex, chunker: Chunker):
    corpus = write_corpus(tmp_path / "corpus", 3)
    for p in corpus.iterdir():
        _age(p)
    index_paths([corpus], store, chunker)
    target = corpus / "doc00001.txt"
    st = target.stat()
    # Same size, same inode, mtime put back: indistinguishable by its signature, so it is not read (as make and git do).
    old = target.read_text(encoding="utf-8")
    with open(target, "r+", encoding="utf-8") as f:
        f.write(old.replace("Document", "Dokument", 1))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    report = index_paths([corpus], store, chunker)
    assert (report.unchanged, report.replaced) == (3, 0)
    assert "Document" in store.get_document("corpus/doc00001.txt").text
    # A new modification time is noticed at once.
    _age(target, 60)
    report = index_paths([corpus], store, chunker)
    assert (report.unchanged, report.replaced) == (2, 1)
    assert "Dokument" in store.get_document("corpus/doc00001.txt").text


def test_a_file_modified_just_before_indexing_is_read_again_next_time(tmp_path: Path, store: SQLiteIndex, chunker: Chunker):
    corpus = write_corpus(tmp_path / "corpus", 2)  # mtimes: now, so their signatures are not trusted
    index_paths([corpus], store, chunker)
    assert store.file_signatures() == {}
    target = corpus / "doc00000.txt"
    st = target.stat()
    text = target.read_text(encoding="utf-8")
    target.write_text(text.replace("Document", "Dokument", 1), encoding="utf-8")
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    report = index_paths([corpus], store, chunker)
    assert report.replaced == 1  # read again, so the change (same size, same mtime) is found


def test_prune_still_sees_files_that_were_not_read(tmp_path: Path, store: SQLiteIndex, chunker: Chunker):
    corpus = write_corpus(tmp_path / "corpus", 4)
    for p in corpus.iterdir():
        _age(p)
    index_paths([corpus], store, chunker)
    assert len(store.file_signatures()) == 4
    (corpus / "doc00003.txt").unlink()
    report = index_paths([corpus], store, chunker, prune=True)
    assert (report.unchanged, report.pruned) == (3, 1)
    assert [d["id"] for d in store.list_documents()] == [f"corpus/doc0000{i}.txt" for i in range(3)]
