"""PostgreSQL-specific behaviour: what the user sees for each bad input (a wrong URL, a refused connection, a
database that goes away mid-run or mid-request, a read-only user), and ranking beside the SQLite store."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import psycopg
import pytest

from conftest import SEEDS, run_cli
from servers import serve_process
from test_index import write_corpus
from rag.chunk import Chunker
from rag.errors import IndexStoreError
from rag.index import SQLiteIndex, index_paths
from rag.index_pg import PostgresIndex, glob_regex, index_terms
from rag.pg import display_url

pytestmark = pytest.mark.slow


def one_line_error(result) -> str:
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_a_wrong_url_is_one_line(pg_cluster) -> None:
    bad = pg_cluster.url("x").replace("?host=", "?bogus_option=1&host=")
    line = one_line_error(run_cli("stats", env={"RAG_INDEX": bad}))
    assert line.startswith("rag: error: invalid database URL") and "bogus_option" in line
    line = one_line_error(run_cli("index", str(SEEDS), env={"RAG_INDEX": "postgresql://rag@/x?port=notanumber"}))
    assert "rag: error:" in line and ("invalid" in line or "cannot connect" in line)


def test_a_refused_connection_is_one_line(tmp_path: Path) -> None:
    url = f"postgresql://rag@/db?host={tmp_path}&port=1"  # no server has a socket there
    for command in (["stats"], ["index", str(SEEDS)], ["doctor"]):
        result = run_cli(*command, env={"RAG_INDEX": url})
        if command == ["doctor"]:
            assert result.returncode == 1 and "FAIL  connection: cannot connect" in result.stdout
            continue
        line = one_line_error(result)
        assert line.startswith("rag: error: cannot connect to the index database") and "is PostgreSQL running" in line


def test_a_missing_database_says_how_to_create_it(pg_cluster) -> None:
    line = one_line_error(run_cli("stats", env={"RAG_INDEX": pg_cluster.url("no_such_db")}))
    assert 'database "no_such_db" does not exist' in line and "createdb" in line


def test_the_password_never_appears_in_messages(pg_cluster) -> None:
    url = pg_cluster.url("no_such_db").replace("rag@", "rag:s3cret@")
    result = run_cli("stats", env={"RAG_INDEX": url})
    assert result.returncode == 1 and "s3cret" not in result.stderr
    assert display_url("postgresql://u:pw@h/db?password=pw2") == "postgresql://u:***@h/db?password=***"


def test_the_database_going_away_mid_run_leaves_the_old_state(tmp_path: Path, pg_url: str) -> None:
    store = PostgresIndex(pg_url, create=True)
    chunker = Chunker()
    index_paths([write_corpus(tmp_path / "first", 3)], store, chunker)
    before = store.stats()
    admin = psycopg.connect(pg_url, autocommit=True)
    pid = store.conn.info.backend_pid
    seen: list[object] = []

    def cut(event: object, chunks: int) -> None:
        seen.append(event)
        if len(seen) == 2:  # the server ends our session mid-transaction, as a restart or failover would
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))

    with pytest.raises(IndexStoreError) as caught:
        index_paths([write_corpus(tmp_path / "second", 6, tag="s")], store, chunker, progress=cut)
    admin.close()
    message = str(caught.value)
    assert "\n" not in message and "lost the connection to the index database" in message and "rolled back" in message
    after = PostgresIndex(pg_url)
    assert after.stats() == before
    assert after.search(["sdoc1"], k=3) == []
    after.close()


def test_a_read_only_user_can_search_but_not_index(tmp_path: Path, pg_cluster, pg_url: str) -> None:
    assert run_cli("index", str(SEEDS), env={"RAG_INDEX": pg_url}).returncode == 0
    database = pg_url.split("/")[3].split("?")[0]
    pg_cluster.admin("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'reader') THEN "
                     "CREATE ROLE reader LOGIN; END IF; END $$")
    pg_cluster.admin("GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader", database)
    reader = pg_url.replace("rag@", "reader@")
    before = PostgresIndex(pg_url).stats()

    found = run_cli("search", "walmart healthcare", "--json", env={"RAG_INDEX": reader})
    assert found.returncode == 0, found.stderr
    line = one_line_error(run_cli("index", str(write_corpus(tmp_path / "more", 2)), env={"RAG_INDEX": reader}))
    assert "this database user may not write it" in line and "permission denied" in line and "nothing was changed" in line
    assert PostgresIndex(pg_url).stats() == before
    doctor = run_cli("doctor", env={"RAG_INDEX": reader})
    assert doctor.returncode == 1 and "FAIL  write access: this user cannot write rag_documents" in doctor.stdout


def test_the_database_going_away_mid_request_is_a_503_and_the_service_recovers(tmp_path: Path) -> None:
    from pgserver import pg_server

    with pg_server() as server:  # a server of this test's own, to stop and start again
        url = server.create_database("svc")
        assert run_cli("index", str(SEEDS), env={"RAG_INDEX": url}).returncode == 0
        with serve_process(Path("unused"), env={"RAG_INDEX": url, "RAG_SERVER__RATE_LIMIT_PER_MINUTE": "100000"}) as (_, base):
            ask = lambda: httpx.post(base + "/v1/ask", json={"question": "What is Walmart's model?"}, timeout=30)  # noqa: E731
            assert ask().status_code == 200
            server.stop("immediate")
            gone = ask()
            assert gone.status_code == 503, gone.text
            assert gone.json()["error"]["type"] in ("index_unavailable", "unavailable")
            assert httpx.get(base + "/readyz", timeout=10).status_code == 503
            server.start()
            again = ask()  # broken connections were dropped, not handed on: the next request reconnects
            assert again.status_code == 200, again.text
            assert httpx.get(base + "/readyz", timeout=10).json()["documents"] == 1


# ------------------------------------------------------------------ ranking and tokens
@pytest.mark.parametrize("glob, matches, misses", [
    ("seeds/*", ["seeds/a.txt", "seeds/x/y.md"], ["other/seeds/a.txt"]),
    ("*.md", ["a.md", "x/y.md"], ["a.mdx"]),
    ("a?c", ["abc", "a.c"], ["ac", "abbc"]),
    ("a[bc]d", ["abd", "acd"], ["aed", "a[bc]d"]),
    ("a[^bc]d", ["aed"], ["abd"]),
    ("100%_done.(txt)", ["100%_done.(txt)"], ["100x_done.(txt)", "100%Xdone.(txt)"]),
    ("a[", [], ["a[", "ab"]),
])
def test_source_globs_match_like_sqlite_glob(glob: str, matches: list[str], misses: list[str]) -> None:
    import sqlite3

    db = sqlite3.connect(":memory:")
    regex = glob_regex(glob)
    for text in matches + misses:
        ours = regex is not None and re.search(regex, text) is not None
        assert ours == bool(db.execute("SELECT ? GLOB ?", (text, glob)).fetchone()[0]), text
        assert (text in matches) == ours, text


def test_a_postings_cache_over_its_budget_still_ranks_every_term(tmp_path: Path, pg_url: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import rag.index_pg as index_pg

    corpus = write_corpus(tmp_path / "corpus", 30, sentences=6)
    lite, pgs = SQLiteIndex(tmp_path / "i.db", create=True), PostgresIndex(pg_url, create=True)
    for store in (lite, pgs):
        index_paths([corpus, SEEDS], store, Chunker())
    monkeypatch.setattr(index_pg, "_POSTINGS_CACHE_BYTES", 1)  # every search evicts all it can
    for terms in (["walmart", "marker"], ["marker", "doc3"], ["walmart", "healthcare", "marker"], ["doc3", "walmart"]):
        a, b = lite.search(terms, k=5), pgs.search(terms, k=5)
        assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=2e-3), terms
    lite.close()
    pgs.close()


def test_index_terms_are_the_language_layers_stems() -> None:
    assert index_terms("Strategies of the retailers' façades") == ["strategy", "of", "the", "retailer", "facade"]


def test_ranking_matches_the_sqlite_store_on_the_same_corpus(tmp_path: Path, pg_url: str) -> None:
    corpus = write_corpus(tmp_path / "corpus", 40, sentences=6)
    chunker = Chunker()
    lite, pgs = SQLiteIndex(tmp_path / "i.db", create=True), PostgresIndex(pg_url, create=True)
    for store in (lite, pgs):
        index_paths([corpus, SEEDS], store, chunker)
    queries = [["doc17"], ["marker", "doc3"], ["walmart", "healthcare"], ["drone", "kiosk"], ["satellite", "cloud", "clinic"]]
    for terms in queries:
        a, b = lite.search(terms, k=5), pgs.search(terms, k=5)
        # the same terms and the same BM25 (Lucene idf): the same scores, the same chunks above the last score
        assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=2e-3), terms
        cut = a[-1].score + 2e-3
        assert {h.chunk.id for h in a if h.score > cut} == {h.chunk.id for h in b if h.score > cut}, terms
    lite.close()
    pgs.close()
