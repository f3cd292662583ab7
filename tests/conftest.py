"""Shared fixtures: every test gets its own index path; nothing touches the working tree or ~."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SEED_FILE = next(SEEDS.glob("*.txt"))


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith(("RAG_", "OPENAI_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("RAG_INDEX", str(tmp_path / "index.db"))


@pytest.fixture
def index_path(tmp_path: Path) -> Path:
    return tmp_path / "index.db"


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, input: str | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the real `rag` CLI in a subprocess."""
    full_env = {k: v for k, v in os.environ.items()} | (env or {})
    return subprocess.run([sys.executable, "-m", "rag", *args], cwd=cwd or ROOT, env=full_env, input=input,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def seeded_index(index_path: Path) -> Path:
    result = run_cli("index", str(SEEDS))
    assert result.returncode == 0, result.stderr
    return index_path


def store_text_in_documents(db: sqlite3.Connection) -> None:
    """Turn a current SQLite index back into the layout before migration 9 (document text in ``documents.text``),
    so tests can build the older schemas they migrate from."""
    for doc_id, num in db.execute("SELECT id, num FROM documents").fetchall():
        pieces = db.execute("SELECT text FROM doc_text WHERE key >> 32 = ? ORDER BY key", (num,)).fetchall()
        db.execute("UPDATE documents SET text = ? WHERE id = ?", ("".join(p for (p,) in pieces), doc_id))
    db.execute("DROP TABLE doc_text")
    db.execute("DROP INDEX documents_num")
    db.execute("ALTER TABLE documents DROP COLUMN num")


# ------------------------------------------------------------------ PostgreSQL: one throwaway server per test session
@pytest.fixture(scope="session")
def pg_cluster():
    """A real PostgreSQL server in a temporary directory (Unix socket only), started once for the session.

    Where PostgreSQL is not installed the tests that need it are skipped, except in CI (CI=true), where
    scripts/test.sh installs it and a missing server is a failure."""
    from pgserver import pg_bin, pg_server

    if pg_bin() is None:
        message = "PostgreSQL is not installed (scripts/test.sh installs the Debian package postgresql as root)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with pg_server() as server:
        yield server


_databases = iter(range(1, 1_000_000))


@pytest.fixture
def pg_url(pg_cluster) -> str:
    """A new, empty database on the session's server."""
    return pg_cluster.create_database(f"t{os.getpid()}_{next(_databases)}")


@pytest.fixture
def chunker():
    """The chunker the index tests use (300 tokens, one sentence of overlap)."""
    from rag.chunk import Chunker

    return Chunker(max_tokens=300, overlap=1)
