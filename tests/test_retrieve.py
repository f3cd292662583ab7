"""Retrieval: hostile queries through the real CLI, filters, ranking, and query-term extraction."""

from __future__ import annotations

import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import SEED_FILE, SEEDS, run_cli
from rag.errors import QueryError
from rag.index import SQLiteIndex, index_paths
from rag.chunk import Chunker
from rag.cli import main
from rag.retrieve import MAX_TERMS, STOP_WORDS, query_terms, retrieve, snippet

NO_WORDS = "rag: error: the query has no searchable words (use letters or digits)"

# query -> what the user sees: ("hits" | "none") with exit 0, or (None, the one-line error) with exit 2
HOSTILE = {
    '"unbalanced': ("none", None),
    "NEAR(": ("none", None),
    "NEAR(walmart amazon, 2)": ("hits", None),
    "*": (None, NO_WORDS),
    "walmart*": ("hits", None),
    "a OR": ("none", None),
    "NOT walmart": ("hits", None),
    "AND": ("hits", None),          # only stop words: kept, so common words still search
    ")(": (None, NO_WORDS),
    "col:walmart ^amazon": ("hits", None),
    '"': (None, NO_WORDS),
    "😀🎉🚀": (None, NO_WORDS),
    "مرحبا بالعالم": ("none", None),
    "שלום עולם walmart": ("hits", None),
    "": (None, NO_WORDS),
    "   \t  ": (None, NO_WORDS),
    "x": (None, NO_WORDS),           # single letters are not searchable words
    ("Amazon same-day prescription delivery (AI) OR NEAR \"data\" -x * ^ " * 200)[:10_240]: ("hits", None),
    "x" * 10_240: ("none", None),
}
TEXT_MODE = ['"unbalanced', "*", "walmart*"]

DATED = [
    {"id": "n1", "date": "2024-12-31", "title": "Old", "text": "Drone delivery pilot launches in Texas."},
    {"id": "n2", "date": "2025-01-15T09:30:00Z", "title": "Mid", "text": "Drone delivery expands to Ohio."},
    {"id": "n3", "date": "2025-02-09", "title": "New", "text": "Drone delivery reaches Florida."},
    {"id": "n4", "title": "Undated", "text": "Drone delivery rumours persist."},
]
BLOG = [{"id": "b1", "date": "2025-01-20", "text": "Our drone delivery review."}]
DISTRACTORS = [
    {"id": f"d{i}", "text": f"Delivery drivers in region {i} went on strike. Delivery times slipped. "
                            "Pharmacies reported longer queues."} for i in range(6)
]

# Every CLI run this module makes, started concurrently once: name -> argv after `rag`.
CASES: dict[str, tuple[str, ...]] = {
    **{f"json:{q}": ("search", q, "--json", "-k", "3") for q in HOSTILE},
    **{f"text:{q}": ("search", q) for q in TEXT_MODE},
    "option-like": ("search", "-delivery"),
    "option-like after --": ("search", "--json", "--", "-delivery"),
    "prescription": ("search", "prescription delivery", "--json"),
    "boilerplate": ("search", "Agentic Google", "--json"),
    "curly": ("search", "Walmart's model", "--json"),
    "filters": ("search", "drone", "--json", "-k", "20", "--since", "2025-01-01", "--until", "2025-01-31",
                "--source", "corpus/*"),
    "florida": ("search", "Florida", "--json"),
}


@pytest.fixture(scope="module")
def shared_env(tmp_path_factory) -> dict[str, str]:
    """Seeds plus a dated jsonl corpus, indexed once for the module; the env that points at it."""
    base = tmp_path_factory.mktemp("retrieve")
    corpus = base / "corpus"
    corpus.mkdir()
    for name, rows in [("news.jsonl", DATED), ("blog.jsonl", BLOG), ("distractors.jsonl", DISTRACTORS)]:
        (corpus / name).write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAG_", "OPENAI_"))}
    env["RAG_INDEX"] = str(base / "index.db")
    built = run_cli("index", str(SEEDS), str(corpus), env=env)
    assert built.returncode == 0, built.stderr
    return env


@pytest.fixture(scope="module")
def cli(shared_env) -> dict[str, subprocess.CompletedProcess[str]]:
    """Every CLI case run once against the shared index, a few at a time."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {name: pool.submit(run_cli, *args, env=shared_env) for name, args in CASES.items()}
        return {name: f.result() for name, f in futures.items()}


def check_one_line_error(result, expected: str | None = None, code: int = 2) -> None:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("rag: error: "), result.stderr
    if expected is not None:
        assert result.stderr.strip() == expected


@pytest.mark.parametrize("query", list(HOSTILE), ids=lambda q: repr(q)[:30])
def test_hostile_queries_through_the_cli(cli, query: str):
    outcome, error = HOSTILE[query]
    result = cli[f"json:{query}"]
    assert "Traceback" not in result.stderr
    if error:
        check_one_line_error(result, error)
        assert result.stdout == ""
        return
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    hits = json.loads(result.stdout)
    assert len(hits) <= 3
    assert (len(hits) > 0) == (outcome == "hits"), hits


@pytest.mark.parametrize("query", TEXT_MODE, ids=lambda q: repr(q)[:30])
def test_hostile_queries_in_text_mode(cli, query: str):
    result = cli[f"text:{query}"]
    outcome, error = HOSTILE[query]
    if error:
        check_one_line_error(result, error)
    elif outcome == "none":
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "No matching chunks."
    else:
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("1. ")


def test_query_that_looks_like_an_option(cli):
    # argparse reads a leading "-" as an option: the user sees one line and exit 2, never a traceback
    result = cli["option-like"]
    assert result.returncode == 2
    assert result.stderr == ("rag: error: the following arguments are required: query "
                             "(see rag search --help)\n")
    # with "--" it is an ordinary query
    result = cli["option-like after --"]
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)


def run_main(capsys, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI through its entry point, in-process (validation paths do not need a fresh interpreter)."""
    try:
        code = main(list(args))
    except SystemExit as exit_:  # argparse's usage errors
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out, err)


@pytest.mark.parametrize("k", ["-1", "-5"])
def test_negative_k_is_a_usage_error(shared_env, capsys, k: str):
    result = run_main(capsys, "--index", shared_env["RAG_INDEX"], "search", "walmart", f"-k={k}")
    check_one_line_error(result, f"rag: error: argument -k: must be between 1 and 1000, not {k} (see rag search --help)")


@pytest.mark.parametrize("flag, value", [("--since", "yesterday"), ("--until", "02/09/2025"), ("--since", "2025-1-1")])
def test_bad_dates_are_usage_errors_not_silent_empty_results(shared_env, capsys, flag: str, value: str):
    result = run_main(capsys, "--index", shared_env["RAG_INDEX"], "search", "walmart", flag, value)
    check_one_line_error(result, f"rag: error: argument {flag}: not a valid date: '{value}' (use YYYY-MM-DD) (see rag search --help)")


def test_search_before_indexing_says_run_rag_index():
    result = run_cli("search", "walmart")
    check_one_line_error(result, code=1)
    assert "rag index PATHS" in result.stderr


# ------------------------------------------------------------------ ranking
def test_prescription_delivery_ranks_the_seed_chunk_first(cli):
    result = cli["prescription"]
    assert result.returncode == 0, result.stderr
    hits = json.loads(result.stdout)
    assert len(hits) > 1  # the distractors match "delivery" too
    top = hits[0]
    assert top["rank"] == 1
    assert top["source"] == f"seeds/{SEED_FILE.name}"
    assert "same-day prescription delivery" in top["chunk"]["text"]
    assert "[prescription]" in top["snippet"]
    text = SEED_FILE.read_text(encoding="utf-8")
    assert text[top["chunk"]["start"]:top["chunk"]["end"]] == top["chunk"]["text"]
    assert [h["rank"] for h in hits] == list(range(1, len(hits) + 1))
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)


def test_boilerplate_is_not_searchable(cli):
    # "Agentic" and "Google" only occur in the glued "Read more:" line of the seed article
    result = cli["boilerplate"]
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_typographic_variants_match(cli):
    # the seed spells it "Walmart’s" with a curly apostrophe
    result = cli["curly"]
    assert result.returncode == 0, result.stderr
    assert any("Walmart’s model" in h["chunk"]["text"] for h in json.loads(result.stdout))


# ------------------------------------------------------------------ filters
@pytest.fixture(scope="module")
def dated_store(tmp_path_factory) -> SQLiteIndex:
    base = tmp_path_factory.mktemp("dated")
    corpus = base / "corpus"
    corpus.mkdir()
    (corpus / "news.jsonl").write_text("\n".join(json.dumps(r) for r in DATED), encoding="utf-8")
    (corpus / "blog.jsonl").write_text("\n".join(json.dumps(r) for r in BLOG), encoding="utf-8")
    store = SQLiteIndex(base / "index.db", create=True)
    index_paths([corpus], store, Chunker())
    yield store
    store.close()


def test_source_glob_filter(dated_store):
    def ids(glob: str | None) -> list[str]:
        return sorted(h.chunk.doc_id for h in retrieve(dated_store, "drone delivery", k=20, source_glob=glob))

    assert ids(None) == ["b1", "n1", "n2", "n3", "n4"]
    assert ids("corpus/news.jsonl:*") == ["n1", "n2", "n3", "n4"]
    assert ids("*blog*") == ["b1"]
    assert ids("elsewhere/*") == []
    assert ids("[") == []  # a broken glob matches nothing rather than failing


def test_date_filters(dated_store):
    def ids(since: str | None = None, until: str | None = None, glob: str | None = None) -> list[str]:
        hits = retrieve(dated_store, "drone delivery", k=20, date_from=since, date_to=until, source_glob=glob)
        return sorted(h.chunk.doc_id for h in hits)

    assert ids(since="2025-01-01") == ["b1", "n2", "n3"]  # undated documents drop out of date filters
    assert ids(until="2024-12-31") == ["n1"]
    assert ids(since="2025-01-01", until="2025-01-31") == ["b1", "n2"]
    assert ids(until="2025-01-15") == ["n1", "n2"]  # a timestamp on the until day counts
    assert ids(until="2025-01-15T09:00") == ["n1"]
    assert ids(since="2025-02") == ["n3"]
    assert ids(since="2025-01-01", glob="*news*") == ["n2", "n3"]
    assert ids(since="2030-01-01") == []


def test_filters_through_the_cli(cli):
    result = cli["filters"]
    assert result.returncode == 0, result.stderr
    assert sorted(h["chunk"]["doc_id"] for h in json.loads(result.stdout)) == ["b1", "n2"]
    [hit] = json.loads(cli["florida"].stdout)
    assert (hit["title"], hit["date"], hit["source"]) == ("New", "2025-02-09", "corpus/news.jsonl:3")


# ------------------------------------------------------------------ query terms
def test_query_terms_drop_stop_words():
    assert query_terms("What does the article say about Walmart's healthcare hubs?") == ["walmart", "healthcare", "hubs"]


def test_query_terms_keep_stop_words_when_nothing_else_remains():
    assert query_terms("What is it about?") == ["what", "is", "it", "about"]
    assert query_terms("the THE The") == ["the"]


def test_query_terms_normalize_and_dedupe():
    assert query_terms("“Walmart” WALMART walmart’s ﬁnance") == ["walmart", "finance"]
    assert query_terms("x y 7 z") == ["7"]  # single letters dropped, digits kept
    assert query_terms("__ _ snake_case") == ["snake_case"]


def test_query_terms_are_capped():
    words = [f"term{i}" for i in range(100)]
    assert query_terms(" ".join(words)) == words[:MAX_TERMS]


def test_stop_words_are_lower_case_words():
    assert all(w == w.lower() and w.isalpha() for w in STOP_WORDS)


def test_snippet_highlights_and_windows():
    text = "alpha " * 100 + "the prescription arrives " + "omega " * 100
    s = snippet(text, ["prescription"])
    assert "[prescription]" in s and s.startswith("...") and s.endswith("...")
    assert snippet("short text", ["absent"]) == "short text"


@pytest.fixture(scope="module")
def seed_store(tmp_path_factory) -> SQLiteIndex:
    path = tmp_path_factory.mktemp("idx") / "index.db"
    store = SQLiteIndex(path, create=True)
    index_paths([SEEDS], store, Chunker())
    yield store
    store.close()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.one_of(st.text(), st.text(alphabet='"*()-^:+NEAROTDa b\u00a0\u201c', max_size=30)))
def test_any_query_string_is_safe(seed_store: SQLiteIndex, query: str):
    try:
        hits = retrieve(seed_store, query, k=3)
    except QueryError as err:
        assert err.exit_code == 2
        assert "no searchable words" in str(err)
        assert not query_terms(query)
    else:
        assert len(hits) <= 3
        for hit in hits:
            assert hit.chunk.text in SEED_FILE.read_text(encoding="utf-8")


def test_snippet_matches_case_blind_and_only_at_word_starts_on_both_paths():
    # Plain text takes the str.find path; "İ" lower-cases to two characters, which sends the text to the pattern.
    for prefix in ("", "İstanbul "):
        s = snippet(prefix + "Unprescribed PRESCRIPTIONS and prescription_codes stay apart.", ["prescriptions"])
        assert "[PRESCRIPTIONS]" in s and "[prescription_codes]" in s and "Unprescribed" in s and "[Unprescribed" not in s
