"""Keyword search on PostgreSQL beside SQLite (issue 14): latency at 100k chunks, top-10 overlap between the
stores on the same corpus, and hit@1 / hit@5 / MRR of the retrieval suites on each store.

    python bench/pg_search_bench.py --chunks 100000 --out bench/RESULTS.md

The synthetic news corpus (bench/synth_corpus.py, seed 42, the one bench/index_bench.py uses) is indexed
with the project's own `index_paths` into an SQLite file and into a database on a throwaway PostgreSQL
server (tests/pgserver.py, Unix socket, fsync off). Then `store.search(query_terms(q), k=10)` runs for the
30 fixed queries: one cold pass, then 5 warm passes, alternating stores per query. The retrieval suites
(evals/retrieval.yaml and the other suites' retrieval cases) run through `retrieve()` on both stores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT / "tests")]

from index_bench import ensure_corpus, pct  # noqa: E402
from load_bench import write_section  # noqa: E402
from pgserver import pg_server  # noqa: E402
from synth_corpus import QUERIES  # noqa: E402

from rag.chunk import Chunker  # noqa: E402
from rag.index import SQLiteIndex, index_paths  # noqa: E402
from rag.index_pg import PostgresIndex  # noqa: E402
from rag.retrieve import query_terms, retrieve  # noqa: E402

SECTION = "## PostgreSQL keyword search beside SQLite"


def retrieval_cases() -> list[tuple[str, list[str], str, str]]:
    """(suite, corpus paths, query, expected quote) of every retrieval case in evals/."""
    from rag.evaluate.loading import load_suites, suite_files

    out = []
    for loaded in load_suites(suite_files([ROOT / "evals"])):
        suite = loaded.suite
        for case in suite.cases:
            if case.kind == "retrieval" and getattr(case.expect, "quote", None):
                corpus = getattr(case, "corpus", None) or suite.corpus
                out.append((suite.name, list(suite.corpora[corpus]), case.query, case.expect.quote))
    return out


def first_rank(hits, quote: str) -> int | None:
    want = " ".join(quote.lower().split())
    for h in hits:
        if want in " ".join(h.chunk.text.lower().split()):
            return h.rank
    return None


def suite_quality(stores: dict[str, object], cases) -> dict[str, dict[str, float]]:
    out = {}
    for name, store in stores.items():
        ranks = [first_rank(retrieve(store, q, k=10), quote) for _s, _c, q, quote in cases]
        out[name] = {"cases": len(ranks), "hit@1": sum(r == 1 for r in ranks) / len(ranks),
                     "hit@5": sum(r is not None and r <= 5 for r in ranks) / len(ranks),
                     "mrr": sum(1 / r for r in ranks if r) / len(ranks)}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--chunks", type=int, default=100_000)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--data", type=Path, default=HERE / ".data")
    p.add_argument("--out", type=Path)
    a = p.parse_args(argv)
    chunker = Chunker()
    loads = [" / ".join(f"{x:.1f}" for x in os.getloadavg())]
    corpus, n_docs = ensure_corpus(a.data, a.chunks, 42, 300, 1)
    with tempfile.TemporaryDirectory(prefix="rag-pgsearch-") as tmp, pg_server() as server:
        timings: dict[str, float] = {}
        stores = {"sqlite": SQLiteIndex(Path(tmp) / "index.db", create=True),
                  "postgres": PostgresIndex(server.create_database("search"), create=True)}
        for name, store in stores.items():
            t = time.perf_counter()
            index_paths([corpus], store, chunker)
            timings[name] = time.perf_counter() - t
            print(f"indexed {name} in {timings[name]:.1f} s", flush=True)
        stores["postgres"].conn.execute("VACUUM ANALYZE")  # what autovacuum does after a bulk load
        loads.append(" / ".join(f"{x:.1f}" for x in os.getloadavg()))
        chunks = stores["sqlite"].stats()["chunks"]
        cold: dict[str, list[float]] = {n: [] for n in stores}
        warm: dict[str, list[float]] = {n: [] for n in stores}
        tops: dict[str, list[list[str]]] = {n: [] for n in stores}
        for rep in range(a.reps + 1):
            for q in QUERIES:
                order = list(stores) if rep % 2 == 0 else list(stores)[::-1]
                for name in order:
                    t = time.perf_counter()
                    hits = stores[name].search(query_terms(q), k=10)
                    ms = (time.perf_counter() - t) * 1000
                    (cold if rep == 0 else warm)[name].append(ms)
                    if rep == 0:
                        tops[name].append([h.chunk.id for h in hits])
        overlap = statistics.mean(len(set(x) & set(y)) / max(1, len(x)) for x, y in zip(tops["sqlite"], tops["postgres"]))
        top1 = statistics.mean(bool(x and y and x[0] == y[0]) for x, y in zip(tops["sqlite"], tops["postgres"]))
        size = {"sqlite": (Path(tmp) / "index.db").stat().st_size + (Path(f"{Path(tmp) / 'index.db'}-wal").stat().st_size
                           if Path(f"{Path(tmp) / 'index.db'}-wal").exists() else 0),
                "postgres": stores["postgres"].stats()["size_bytes"]}
        for s in stores.values():
            s.close()

        cases = retrieval_cases()
        quality: dict[str, dict[str, float]] = {}
        by_corpus: dict[tuple[str, ...], list] = {}
        for case in cases:
            by_corpus.setdefault(tuple(case[1]), []).append(case)
        totals = {n: {"cases": 0, "hit@1": 0.0, "hit@5": 0.0, "mrr": 0.0} for n in ("sqlite", "postgres")}
        for i, (paths, group) in enumerate(by_corpus.items()):
            pair = {"sqlite": SQLiteIndex(Path(tmp) / f"eval{i}.db", create=True),
                    "postgres": PostgresIndex(server.create_database(f"eval{i}"), create=True)}
            for s in pair.values():
                index_paths([ROOT / x for x in paths], s, chunker)
            for n, q in suite_quality(pair, group).items():
                totals[n]["cases"] += q["cases"]
                for key in ("hit@1", "hit@5", "mrr"):
                    totals[n][key] += q[key] * q["cases"]
            for s in pair.values():
                s.close()
        for n, t in totals.items():
            quality[n] = {"cases": t["cases"], **{k: t[k] / t["cases"] for k in ("hit@1", "hit@5", "mrr")}}
    result = {"chunks": chunks, "docs": n_docs, "index_s": timings, "size": size, "overlap": overlap, "top1": top1,
              "quality": quality, "cold_p50": {n: pct(v, 50) for n, v in cold.items()},
              "p50": {n: pct(v, 50) for n, v in warm.items()}, "p95": {n: pct(v, 95) for n, v in warm.items()},
              "loads": loads}
    print(json.dumps(result, indent=2))
    lines = [SECTION, "", f"`python bench/pg_search_bench.py --chunks {a.chunks} --out bench/RESULTS.md`", "",
             f"Synthetic news corpus (seed 42, {n_docs} documents, {chunks} chunks) indexed with `index_paths` into each "
             f"store; {len(QUERIES)} fixed queries through `store.search(query_terms(q), k=10)`, 1 cold pass then "
             f"{a.reps} warm passes, the stores alternating per query. PostgreSQL 15 on a Unix socket (throwaway server, "
             f"fsync off), after `VACUUM ANALYZE`. 2 shared cores; 1-minute load average {loads[0]} before indexing, "
             f"{loads[1]} before the queries.", "",
             "| store | index s | on disk MB | cold p50 ms | warm p50 ms | warm p95 ms |", "|---|---:|---:|---:|---:|---:|"]
    for n in ("sqlite", "postgres"):
        lines.append(f"| {n} | {timings[n]:.0f} | {size[n] / 1e6:.0f} | {result['cold_p50'][n]:.1f} | {result['p50'][n]:.1f} | "
                     f"{result['p95'][n]:.1f} |")
    lines += ["", f"Top-10 overlap between the stores on the same corpus and queries: {overlap:.2f} (same top hit: "
              f"{top1:.2f}). Both stores rank with the same BM25 (Lucene's idf, k1 1.2, b 0.75) over the same `rag.bm25` "
              "terms; PostgreSQL keeps each term's postings in the worker once read (per index generation), so a warm "
              "query reads only the statistics and the hits from the database.", "",
              "Retrieval cases of the suites in evals/ (each corpus indexed into both stores, `retrieve()` as `rag eval` "
              "calls it):", "", "| store | cases | hit@1 | hit@5 | MRR |", "|---|---:|---:|---:|---:|"]
    for n in ("sqlite", "postgres"):
        q = quality[n]
        lines.append(f"| {n} | {q['cases']} | {q['hit@1']:.2f} | {q['hit@5']:.2f} | {q['mrr']:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        write_section(a.out, text, SECTION)
    return 0


if __name__ == "__main__":
    sys.exit(main())
