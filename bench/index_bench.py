"""Indexing and search benchmark (issue 2): our SQLite FTS5 pipeline against raw tiktoken, bm25s and rank-bm25.

Historical: it needs the FTS5 index that issue 13 replaced (rag before migration m6); bench/search_bench.py
measures the current design.

    python bench/index_bench.py --sizes 1000,10000,100000 --out bench/RESULTS.md

For each target size (in chunks) a synthetic news-like corpus (bench/synth_corpus.py) is written as
.txt files under bench/.data/ (cached) and indexed through the real pipeline (``index_paths`` with the
default Chunker, max_tokens=300, overlap=1) in a fresh subprocess, so ``ru_maxrss`` is the peak of
that size alone. The same subprocess then times tiktoken ``encode_ordinary`` on the same documents and
runs the fixed queries through ``rag.retrieve.retrieve``. bm25s and rank-bm25 each run in their own
subprocess on the chunk texts read back from the index. A second indexing run applies the speed-up
prototypes of bench/fastpaths.py and checks that the index it writes is identical; a per-stage CPU
breakdown (``--stages-size``) shows where indexing time goes. The section "## Indexing and search" of
the output file is replaced; other sections are kept. ``--profile N`` prints cProfile reports instead.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import re
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from synth_corpus import QUERIES, VERSION, CorpusGenerator  # noqa: E402

SECTION = "## Indexing and search"
K = 10


# ------------------------------------------------------------------ helpers
def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(values)
    return s[max(1, math.ceil(p / 100 * len(s))) - 1]


def corpus_files(corpus: Path) -> list[Path]:
    return sorted(p for p in corpus.rglob("*.txt"))


def iter_corpus(corpus: Path):
    """The corpus files one folder at a time (no list of every path, which would raise peak memory)."""
    for folder, dirs, names in os.walk(corpus):
        dirs.sort()
        for name in sorted(names):
            if name.endswith(".txt"):
                yield Path(folder) / name


def load_chunks(db_path: Path) -> tuple[list[str], list[str]]:
    """(chunk ids, chunk texts) in rowid order, exactly the text our index holds."""
    db = sqlite3.connect(db_path)
    rows = db.execute(
        "SELECT c.id, substr(d.text, c.start + 1, c.\"end\" - c.start) FROM chunks c "
        "JOIN documents d ON d.id = c.doc_id ORDER BY c.rowid"
    ).fetchall()
    db.close()
    return [r[0] for r in rows], [r[1] for r in rows]


def time_queries(run, queries: list[str], reps: int) -> tuple[list[float], list[float], list[list[float]], list]:
    """Cold pass, then ``reps`` warm passes. Returns (cold ms, warm ms, per-query warm ms, first results)."""
    cold, first = [], []
    for q in queries:
        t = time.perf_counter()
        first.append(run(q))
        cold.append((time.perf_counter() - t) * 1000)
    per_query: list[list[float]] = [[] for _ in queries]
    for _ in range(reps):
        for i, q in enumerate(queries):
            t = time.perf_counter()
            run(q)
            per_query[i].append((time.perf_counter() - t) * 1000)
    warm = [x for xs in per_query for x in xs]
    return cold, warm, per_query, first


# ------------------------------------------------------------------ workers (each in a fresh process)
def worker_ours(a: argparse.Namespace) -> dict:
    if a.patched:
        import fastpaths
        fastpaths.apply()
    from rag.chunk import Chunker
    from rag.index import SQLiteIndex, fts_expression, index_paths
    from rag.retrieve import query_terms, retrieve
    from rag.tokens import get_encoding

    chunker = Chunker(max_tokens=a.max_tokens, overlap=a.overlap)
    chunker.count("warm up the encoder")
    rss_base = maxrss_mb()
    db_path = Path(a.db)
    for p in (db_path, Path(f"{db_path}-wal"), Path(f"{db_path}-shm")):
        p.unlink(missing_ok=True)

    # Raw tiktoken on the same documents, timed before and after indexing (best run counts). The texts are
    # read one file at a time here so that this does not raise the indexing process's peak memory.
    enc = get_encoding("cl100k_base")
    tok_wall: list[float] = []
    tok_cpu: list[float] = []
    n_tokens = 0

    def encode_all(texts) -> None:
        nonlocal n_tokens
        t, c, n = time.perf_counter(), time.process_time(), 0
        for s in texts:
            n += len(enc.encode_ordinary(s))
        tok_wall.append(time.perf_counter() - t)
        tok_cpu.append(time.process_time() - c)
        n_tokens = n

    tok_reps = 3 if a.size < 20_000 else 1
    for _ in range(tok_reps):
        wall, cpu = 0.0, 0.0
        n = 0
        for p in iter_corpus(Path(a.corpus)):
            text = p.read_text(encoding="utf-8")
            t, c = time.perf_counter(), time.process_time()
            n += len(enc.encode_ordinary(text))
            wall += time.perf_counter() - t
            cpu += time.process_time() - c
        tok_wall.append(wall)
        tok_cpu.append(cpu)
    rss_base = max(rss_base, maxrss_mb())

    store = SQLiteIndex(db_path, create=True)
    load0 = os.getloadavg()[0]
    t, c = time.perf_counter(), time.process_time()
    report = index_paths([Path(a.corpus)], store, chunker)
    t_index, c_index = time.perf_counter() - t, time.process_time() - c
    rss_index = maxrss_mb()
    stats = store.stats()
    store.close()  # checkpoints and removes the WAL
    db_bytes = sum(p.stat().st_size for p in (db_path, Path(f"{db_path}-wal")) if p.exists())
    page_bytes = {}
    try:  # where the bytes are, if this SQLite has dbstat
        con = sqlite3.connect(db_path)
        page_bytes = dict(con.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall())
        con.close()
    except sqlite3.Error:
        pass

    texts = [p.read_text(encoding="utf-8") for p in corpus_files(Path(a.corpus))]
    text_bytes = sum(len(s.encode("utf-8")) for s in texts)
    for _ in range(tok_reps):
        encode_all(texts)
    t_tok, c_tok = min(tok_wall), min(tok_cpu)  # the least disturbed of the runs before and after indexing
    del texts
    out = {
        "docs": report.indexed, "chunks": report.chunks, "tokens": stats["tokens"], "text_bytes": text_bytes,
        "t_index": t_index, "c_index": c_index, "t_tok": t_tok, "c_tok": c_tok, "tok_tokens": n_tokens,
        "db_bytes": db_bytes, "page_bytes": page_bytes, "rss_base": rss_base, "rss_index": rss_index,
        "load": [load0, os.getloadavg()[0]],
    }
    if a.no_search:
        return out

    queries = json.loads(a.queries)
    store = SQLiteIndex(db_path)
    cold, first = [], []
    for q in queries:  # cold: the first execution of each query on a fresh connection
        t = time.perf_counter()
        first.append(retrieve(store, q, k=K))
        cold.append((time.perf_counter() - t) * 1000)

    def count(terms: list[str]) -> int:
        return store.db.execute("SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH ?", (fts_expression(terms),)).fetchone()[0]

    matches = [count(query_terms(q)) for q in queries]
    df = {t: count([t]) / report.chunks for q in queries for t in query_terms(q)}

    def pruned(q: str, limit: float) -> list[str]:
        """Query terms without those in more than ``limit`` of the chunks (the rarest one always stays)."""
        terms = query_terms(q)
        keep = [t for t in terms if df[t] <= limit]
        return keep or [min(terms, key=df.__getitem__)]

    fts = "SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY rank LIMIT ?"
    runners = {
        "retrieve": lambda q: retrieve(store, q, k=K),
        "store": lambda q: store.search(query_terms(q), k=K),  # no snippets
        "fts": lambda q: store.db.execute(fts, (fts_expression(query_terms(q)), K)).fetchall(),  # no join, no models
        "0.5": lambda q: store.search(pruned(q, 0.5), k=K),
        "0.1": lambda q: store.search(pruned(q, 0.1), k=K),
    }
    # Variants are interleaved query by query, so a burst of load on the shared machine hits all of them alike.
    times: dict[str, list[list[float]]] = {name: [[] for _ in queries] for name in runners}
    tops: dict[str, list] = {name: [None] * len(queries) for name in runners}
    for _ in range(a.reps):
        for i, q in enumerate(queries):
            for name, run in runners.items():
                t = time.perf_counter()
                res = run(q)
                times[name][i].append((time.perf_counter() - t) * 1000)
                if tops[name][i] is None:
                    tops[name][i] = res
    flat = {name: [x for xs in times[name] for x in xs] for name in runners}
    store.close()
    return out | {
        "cold": cold, "warm": flat["retrieve"], "warm_store": flat["store"], "warm_fts": flat["fts"], "df": df,
        "variants": {lim: {"warm": flat[lim], "top": [[h.chunk.id for h in hits] for hits in tops[lim]]} for lim in ("0.5", "0.1")},
        "per_query": [statistics.median(x) for x in times["retrieve"]],
        "per_query_fts": [statistics.median(x) for x in times["fts"]],
        "matches": matches, "terms": [query_terms(q) for q in queries],
        "top": [[h.chunk.id for h in hits] for hits in first],
    }


def worker_bm25s(a: argparse.Namespace) -> dict:
    import bm25s

    ids, texts = load_chunks(Path(a.db))
    rss_base = maxrss_mb()
    t = time.perf_counter()
    tokens = bm25s.tokenize(texts, stopwords="en", show_progress=False)
    model = bm25s.BM25(k1=1.2, b=0.75)  # FTS5's bm25() constants
    model.index(tokens, show_progress=False)
    t_index = time.perf_counter() - t
    rss_index = maxrss_mb()
    del texts, tokens

    def run(q: str) -> list[str]:
        qt = bm25s.tokenize(q, stopwords="en", return_ids=False, show_progress=False)
        docs, scores = model.retrieve(qt, k=K, show_progress=False, n_threads=0)
        return [ids[d] for d, s in zip(docs[0], scores[0]) if s > 0]

    cold, warm, per_query, first = time_queries(run, json.loads(a.queries), a.reps)
    return {"t_index": t_index, "rss_base": rss_base, "rss_index": rss_index, "cold": cold, "warm": warm,
            "per_query": [statistics.median(x) for x in per_query], "top": first}


def worker_rank_bm25(a: argparse.Namespace) -> dict:
    import bm25s
    import numpy as np
    from rank_bm25 import BM25Okapi

    ids, texts = load_chunks(Path(a.db))
    rss_base = maxrss_mb()
    t = time.perf_counter()
    tokens = bm25s.tokenize(texts, stopwords="en", return_ids=False, show_progress=False)  # same tokens as bm25s
    model = BM25Okapi(tokens, k1=1.2, b=0.75)
    t_index = time.perf_counter() - t
    rss_index = maxrss_mb()
    del texts, tokens

    def run(q: str) -> list[str]:
        qt = bm25s.tokenize(q, stopwords="en", return_ids=False, show_progress=False)[0]
        scores = model.get_scores(qt)
        top = np.argpartition(-scores, K)[:K]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [ids[i] for i in top if scores[i] > 0]

    queries = json.loads(a.queries)
    cold, warm, per_query, first = time_queries(run, queries, a.reps)
    return {"t_index": t_index, "rss_base": rss_base, "rss_index": rss_index, "cold": cold, "warm": warm,
            "per_query": [statistics.median(x) for x in per_query], "top": first}


def worker_stages(a: argparse.Namespace) -> dict:
    """CPU seconds of each indexing stage on the same documents, before and after bench/fastpaths.py.

    Each stage runs on the output of the previous one, best of 3; the sum is close to
    (a little under) the CPU time of ``index_paths`` on the same corpus.
    """
    import fastpaths
    from rag import chunk as chunk_mod
    from rag import index as index_mod
    from rag import ingest
    from rag.chunk import Chunker
    from rag.index import SQLiteIndex
    from rag.tokens import get_encoding

    root = Path(a.corpus).resolve()
    enc = get_encoding("cl100k_base")
    chunker = Chunker(max_tokens=a.max_tokens, overlap=a.overlap)

    def best(fn, repeats: int = 3) -> float:
        # The cyclic GC is off while timing: its pauses land on whichever stage happens to trigger them
        # (its own cost is what P7 removes, visible in the end-to-end runs).
        times = []
        for _ in range(repeats):
            gc.collect()
            gc.disable()
            c = time.process_time()
            try:
                fn()
            finally:
                times.append(time.process_time() - c)
                gc.enable()
        return min(times)

    def run() -> dict[str, float]:
        t: dict[str, float] = {}
        paths = list(ingest._walk(root))
        t["walk the folder (`_walk`)"] = best(lambda: list(ingest._walk(root)))
        raws = [p.read_bytes() for p in paths]
        t["read files"] = best(lambda: [p.read_bytes() for p in paths])
        t["`_looks_binary`"] = best(lambda: [ingest._looks_binary(r) for r in raws])
        texts = [ingest._decode(r, "x")[0] for r in raws]
        t["`boilerplate_spans`"] = best(lambda: [ingest.boilerplate_spans(x) for x in texts])
        make = lambda: [ingest.make_document(x, doc_id=str(i), source=str(i)) for i, x in enumerate(texts)]  # noqa: E731
        t["rest of `make_document` (sha256, title, pydantic)"] = best(make) - t["`boilerplate_spans`"]
        docs = make()
        t["`sentence_spans`"] = best(lambda: [list(chunk_mod.sentence_spans(d.text, 0, len(d.text))) for d in docs])
        sents = [[d.text[s:e] for s, e, _ in chunk_mod.sentence_spans(d.text, 0, len(d.text))] for d in docs]
        t["tiktoken: count each sentence"] = best(lambda: [[chunker.count(x) for x in ss] for ss in sents])
        t_units = best(lambda: [chunker.units(d) for d in docs])
        t_chunk = best(lambda: [chunker.chunk(d) for d in docs])
        t["packing: exact recount of each chunk, `Chunk` models"] = t_chunk - t_units
        chunks = [chunker.chunk(d) for d in docs]
        flat = [c.text for cs in chunks for c in cs]
        t["`normalize_for_index`"] = best(lambda: [index_mod.normalize_for_index(x) for x in flat])

        def put() -> None:
            p = Path(a.db)
            for q in (p, Path(f"{p}-wal"), Path(f"{p}-shm")):
                q.unlink(missing_ok=True)
            store = SQLiteIndex(p, create=True)
            with store.transaction():
                for d, cs in zip(docs, chunks):
                    store.put_document(d, cs, "key")
            store.close()

        def fts_only() -> None:
            p = Path(a.db + ".fts")
            p.unlink(missing_ok=True)
            con = sqlite3.connect(p, isolation_level=None)
            con.execute("PRAGMA journal_mode = WAL")
            con.execute("PRAGMA synchronous = NORMAL")
            con.execute("CREATE VIRTUAL TABLE f USING fts5(text, content='', tokenize='porter unicode61 remove_diacritics 2')")
            con.execute("BEGIN")
            con.executemany("INSERT INTO f (rowid, text) VALUES (?, ?)", enumerate(flat, 1))
            con.execute("COMMIT")
            con.close()
            for q in (p, Path(f"{p}-wal"), Path(f"{p}-shm")):
                q.unlink(missing_ok=True)

        t_fts = best(fts_only)
        t_put = best(put)
        t["SQLite: FTS5 insert (porter tokenizer, inverted index)"] = t_fts
        t["SQLite: other statements in `put_document`"] = t_put - t_fts - t["`normalize_for_index`"]
        return t

    texts = [p.read_text(encoding="utf-8") for p in ingest._walk(root)]

    def encode_all() -> None:
        for x in texts:
            enc.encode_ordinary(x)

    toks = [best(encode_all)]
    before = run()
    toks.append(best(encode_all))
    fastpaths.apply()
    after = run()
    toks.append(best(encode_all))
    t_tok = min(toks)  # the machine is shared: the least disturbed measurement
    return {"before": before, "after": after, "tok": t_tok, "toks": toks, "mb": sum(len(x.encode()) for x in texts) / 1e6,
            "docs": len(texts)}


def worker_profile(a: argparse.Namespace) -> dict:
    """cProfile of indexing and of the query set (printed, not returned)."""
    import cProfile
    import pstats

    from rag.chunk import Chunker
    from rag.index import SQLiteIndex, index_paths
    from rag.retrieve import retrieve

    chunker = Chunker(max_tokens=a.max_tokens, overlap=a.overlap)
    db_path = Path(a.db)
    for p in (db_path, Path(f"{db_path}-wal"), Path(f"{db_path}-shm")):
        p.unlink(missing_ok=True)
    store = SQLiteIndex(db_path, create=True)
    prof = cProfile.Profile()
    prof.runcall(index_paths, [Path(a.corpus)], store, chunker)
    store.close()
    for key in ("tottime", "cumulative"):
        print(f"\n==== indexing, by {key}")
        pstats.Stats(prof, stream=sys.stdout).sort_stats(key).print_stats(30)
    store = SQLiteIndex(db_path)
    queries = json.loads(a.queries)
    prof = cProfile.Profile()
    prof.runcall(lambda: [retrieve(store, q, k=K) for _ in range(a.reps) for q in queries])
    print("\n==== search, by tottime")
    pstats.Stats(prof, stream=sys.stdout).sort_stats("tottime").print_stats(15)
    return {}


WORKERS = {"stages": worker_stages, "ours": worker_ours, "bm25s": worker_bm25s, "rank_bm25": worker_rank_bm25, "profile": worker_profile}


# ------------------------------------------------------------------ orchestration
def ensure_corpus(data: Path, target_chunks: int, seed: int, max_tokens: int, overlap: int) -> tuple[Path, int]:
    """Write (or reuse) the corpus whose document count gives about ``target_chunks`` chunks."""
    from rag.chunk import Chunker
    from rag.ingest import make_document

    gen = CorpusGenerator(seed)
    chunker = Chunker(max_tokens=max_tokens, overlap=overlap)
    sample = 500
    per_doc = sum(len(chunker.chunk(make_document(gen.document(i), doc_id=str(i), source=str(i))))
                  for i in range(sample)) / sample
    n_docs = max(1, round(target_chunks / per_doc))
    corpus = data / f"news-v{VERSION}-s{seed}-n{n_docs}"
    marker = corpus / ".complete"
    if not marker.exists():
        shutil.rmtree(corpus, ignore_errors=True)
        t = time.perf_counter()
        nbytes = gen.write(corpus, n_docs)
        marker.write_text(json.dumps({"docs": n_docs, "bytes": nbytes}))
        print(f"  wrote {n_docs} documents ({nbytes / 1e6:.1f} MB) in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    return corpus, n_docs


def run_worker(name: str, **kw: object) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name]
    for k, v in kw.items():
        cmd += [f"--{k.replace('_', '-')}", str(v)]
    t = time.perf_counter()
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True, cwd=ROOT).stdout
    result = json.loads(out.strip().splitlines()[-1])
    result["wall"] = time.perf_counter() - t
    return result


def index_digest(db_path: Path) -> str:
    """A hash of what indexing produced: documents, boilerplate marks, chunk spans and token counts, FTS terms."""
    import hashlib
    h = hashlib.sha256()
    con = sqlite3.connect(db_path)
    for sql in ("SELECT id, sha256, boilerplate, n_tokens FROM documents ORDER BY id",
                "SELECT id, doc_id, ordinal, start, \"end\", n_tokens FROM chunks ORDER BY id"):
        for row in con.execute(sql):
            h.update(repr(row).encode())
    con.execute("CREATE VIRTUAL TABLE temp.v USING fts5vocab(main, chunks_fts, row)")
    for row in con.execute("SELECT term, doc, cnt FROM temp.v"):
        h.update(repr(row).encode())
    con.close()
    return h.hexdigest()


def _has_fts5_index() -> bool:
    from rag.index import MIGRATIONS

    return not any(m.__name__ == "_m6_bm25_postings" for m in MIGRATIONS)


def git_state() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "rag"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        return head + (" with uncommitted changes in rag/" if dirty else "")
    except OSError:
        return "unknown"


def overlap(a: list[list[str]], b: list[list[str]]) -> float:
    vals = [len(set(x) & set(y)) / max(len(x), len(y)) for x, y in zip(a, b) if x or y]
    return sum(vals) / len(vals) if vals else float("nan")


def machine() -> dict:
    cpu = ""
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import bm25s
    import numpy
    import tiktoken
    return {"nproc": os.cpu_count(), "cpu": cpu, "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
            "tiktoken": tiktoken.__version__, "bm25s": bm25s.__version__, "numpy": numpy.__version__,
            "rank_bm25": _version("rank-bm25"), "platform": platform.platform(), "git": git_state()}


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def fmt_ms(x: float) -> str:
    return f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def render(results: list[dict], info: dict, argv: str, notes: list[str], stages: dict | None = None) -> str:
    L = [SECTION, "", "<!-- generated by bench/index_bench.py; edit the script, not this section -->", ""]
    L.append(f"Command: `{argv}`  ")
    L.append(f"Machine: {info['nproc']} cores ({info['cpu']}), Python {info['python']}, SQLite {info['sqlite']}, "
             f"tiktoken {info['tiktoken']}, bm25s {info['bm25s']}, rank-bm25 {info['rank_bm25']}, numpy {info['numpy']}; "
             f"{info['platform']}.  ")
    L.append(f"Code: rag at {info['git']}. Run {time.strftime('%Y-%m-%d %H:%M')}, {info['total_s']:.0f} s in all; "
             f"1-minute load average during indexing {info['load_min']:.1f}-{info['load_max']:.1f} on {info['nproc']} cores "
             "(the machine is shared, so wall times are noisy; CPU times are given beside them).")
    L.append("")
    L.append("Corpus: synthetic news-like documents about retail and companies (bench/synth_corpus.py, seed "
             f"{info['seed']}): a headline and 11-16 sentences from ~30 news templates filled with Zipfian words "
             "(~3.5k word forms), ~1.4 KB and ~290 tokens per document, written as .txt files and indexed from disk. "
             f"Default chunker (max_tokens={info['max_tokens']}, overlap={info['overlap']}): a document is 1 or 2 "
             f"chunks (~1.38 on average, ~215 tokens each). {len(QUERIES)} fixed queries of 2-10 words, 11 of them "
             f"plain-English questions with stop words; k={K}. Latency: 1 cold pass, then {info['reps']} warm passes "
             "over all queries; percentiles over all warm calls.")
    L.append("")
    L.append("### Indexing (`index_paths`, one transaction, a fresh process per size)")
    L.append("")
    L.append("| chunks | run | text MB | index s (CPU s) | chunks/s | MB/s | tiktoken `encode_ordinary` s (CPU s) | "
             "index / encode, wall (CPU) | on disk MB | disk / text | peak RSS MB (after imports) |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        for key, label in (("ours", "ours"), ("fast", "ours + bench/fastpaths.py")):
            o = r.get(key)
            if not o:
                continue
            mb = o["text_bytes"] / 1e6
            if key == "fast":
                label += " (index identical)" if o["identical"] else " (**index differs**)"
            L.append(f"| {o['chunks']:,} | {label} | {mb:.1f} | {o['t_index']:.2f} ({o['c_index']:.2f}) | "
                     f"{o['chunks'] / o['t_index']:,.0f} | {mb / o['t_index']:.2f} | {o['t_tok']:.2f} ({o['c_tok']:.2f}) | "
                     f"**{o['t_index'] / o['t_tok']:.1f}x** ({o['c_index'] / o['c_tok']:.1f}x) | "
                     f"{o['db_bytes'] / 1e6:.1f} | {o['db_bytes'] / o['text_bytes']:.2f} | "
                     f"{o['rss_index']:.0f} ({o['rss_base']:.0f}) |")
    L.append("")
    if stages:
        L.append(f"Where indexing CPU time goes at ~{stages['size']:,} chunks ({stages['docs']:,} documents, "
                 f"{stages['mb']:.1f} MB): each stage timed alone in one process with the cyclic GC off, best of 3, CPU "
                 "seconds, and as a multiple of tiktoken `encode_ordinary` on the same documents (best of 3 runs before, "
                 "between and after). 'after' applies the "
                 "bench/fastpaths.py prototypes (identical output).")
        L.append("")
        L.append("| stage | before: CPU s | x encode | after: CPU s | x encode |")
        L.append("|---|---|---|---|---|")
        tok = stages["tok"]
        for k, v in stages["before"].items():
            w = stages["after"][k]
            L.append(f"| {k} | {v:.2f} | {v / tok:.2f} | {w:.2f} | {w / tok:.2f} |")
        sb, sa = sum(stages["before"].values()), sum(stages["after"].values())
        L.append(f"| **sum** | **{sb:.2f}** | **{sb / tok:.1f}** | **{sa:.2f}** | **{sa / tok:.1f}** |")
        L.append(f"| (tiktoken `encode_ordinary`, whole documents) | {tok:.2f} | 1.00 | | |")
        L.append("")
    big = results[-1]["ours"]
    if big.get("page_bytes"):
        L.append(f"Bytes by table at {big['chunks']:,} chunks (dbstat): " + ", ".join(
            f"{k} {v / 1e6:.1f} MB" for k, v in sorted(big["page_bytes"].items(), key=lambda kv: -kv[1]) if v > 1e6) + ".")
        L.append("")
    L.append("### Search and comparison (same chunk texts, same queries, k=10)")
    L.append("")
    L.append("| chunks | engine | index s | query p50 ms | query p95 ms | cold p50 ms | top-10 overlap with ours | peak RSS MB |")
    L.append("|---|---|---|---|---|---|---|---|")
    for r in results:
        o = r["ours"]
        n = f"{o['chunks']:,}"
        L.append(f"| {n} | **ours** (`retrieve`, FTS5) | {o['t_index']:.2f} | **{fmt_ms(pct(o['warm'], 50))}** | "
                 f"{fmt_ms(pct(o['warm'], 95))} | {fmt_ms(pct(o['cold'], 50))} | - | {o['rss_index']:.0f} |")
        L.append(f"| {n} | ours, `store.search` only (no snippets) | | {fmt_ms(pct(o['warm_store'], 50))} | "
                 f"{fmt_ms(pct(o['warm_store'], 95))} | | | |")
        L.append(f"| {n} | ours, bare FTS5 `MATCH ... ORDER BY rank LIMIT 10` | | {fmt_ms(pct(o['warm_fts'], 50))} | "
                 f"{fmt_ms(pct(o['warm_fts'], 95))} | | | |")
        for limit, v in o["variants"].items():
            L.append(f"| {n} | `store.search` without terms in > {float(limit):.0%} of chunks | | {fmt_ms(pct(v['warm'], 50))} | "
                     f"{fmt_ms(pct(v['warm'], 95))} | | {overlap(o['top'], v['top']):.2f} | |")
        for name, label in (("bm25s", "bm25s"), ("rank_bm25", "rank-bm25")):
            b = r.get(name)
            if not b:
                L.append(f"| {n} | {label} | skipped | | | | | |")
                continue
            L.append(f"| {n} | {label} | {b['t_index']:.2f} | {fmt_ms(pct(b['warm'], 50))} | "
                     f"{fmt_ms(pct(b['warm'], 95))} | {fmt_ms(pct(b['cold'], 50))} | {b['overlap']:.2f} | {b['rss_index']:.0f} |")
        if r.get("bm25s") and r.get("rank_bm25"):
            L.append(f"| {n} | (bm25s against rank-bm25: same tokens) | | | | | {r['bm25s_vs_rank']:.2f} | |")
    L.append("")
    L.append("bm25s and rank-bm25 get the chunk texts read back from our index, tokenized by `bm25s.tokenize` "
             "(lower-case `\\w\\w+`, bm25s' English stop words, no stemmer), k1=1.2, b=0.75 as in FTS5's `bm25()`; "
             "their index time is tokenize + index, their query time includes tokenizing the query. Ours stems "
             "(porter), drops one-letter words and its own stop-word list and ranks by FTS5 `bm25()`, so "
             "part of the overlap gap is tokenization, not ranking.")
    L.append("")
    L.append(f"### Per query at {big['chunks']:,} chunks (ours)")
    L.append("")
    L.append("| query | terms (share of chunks containing each) | chunks matching any | `retrieve` p50 ms | bare FTS5 p50 ms |")
    L.append("|---|---|---|---|---|")
    for q, terms, m, t, f in zip(QUERIES, big["terms"], big["matches"], big["per_query"], big["per_query_fts"]):
        tt = " ".join(f"{w} {big['df'][w]:.0%}" for w in terms)
        L.append(f"| {q} | {tt} | {m:,} ({m / big['chunks']:.0%}) | {fmt_ms(t)} | {fmt_ms(f)} |")
    L.append("")
    L.append("### Targets")
    L.append("")
    ratios = ", ".join(f"{r['ours']['t_index'] / r['ours']['t_tok']:.1f}x ({r['ours']['c_index'] / r['ours']['c_tok']:.1f}x CPU)"
                       for r in results)
    worst = max(r["ours"]["c_index"] / r["ours"]["c_tok"] for r in results)
    p50 = pct(big["warm"], 50)
    rss = [r["ours"]["rss_index"] for r in results]
    L.append("| target | measured | verdict |")
    L.append("|---|---|---|")
    L.append(f"| indexing within 3x of raw tiktoken encoding | {ratios} | {'met' if worst <= 3 else '**missed**'} |")
    L.append(f"| search p50 < 10 ms at 100k chunks | {fmt_ms(p50)} ms at {big['chunks']:,} chunks | "
             f"{'met' if p50 < 10 else '**missed**'}{'' if big['chunks'] >= 90_000 else ' (largest size run is below 100k)'} |")
    L.append(f"| memory flat in corpus size | peak RSS {' / '.join(f'{x:.0f}' for x in rss)} MB "
             f"(imports and tokenizer: {min(r['ours']['rss_base'] for r in results):.0f} MB) | "
             f"{'met' if max(rss) - min(rss) < 0.1 * min(rss) else '**missed**'} (+{max(rss) - min(rss):.0f} MB) |")
    L.append("")
    for n in notes:
        L.append(f"- {n}")
    if notes:
        L.append("")
    return "\n".join(L)


def update_section(path: Path, body: str) -> None:
    """Replace the '## Indexing and search' section (up to the next '## ' heading); keep the rest."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\s*$.*?(?=^## |\Z)", re.M | re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: body.rstrip() + "\n\n", text, count=1)
    else:
        text = text.rstrip() + "\n\n" + body.rstrip() + "\n"
    path.write_text(text.rstrip() + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    if not _has_fts5_index():
        print("index_bench.py measured the FTS5 search of issue 2 (its results in bench/RESULTS.md are from rag at "
              "15a6c1f); since issue 13 search runs on BM25 postings: use bench/search_bench.py", file=sys.stderr)
        return 2
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="1000,10000,100000", help="target sizes in chunks, comma-separated")
    p.add_argument("--out", type=Path, default=HERE / "RESULTS.md", help="results file (its section is replaced)")
    p.add_argument("--data", type=Path, default=HERE / ".data", help="corpus and index folder (gitignored)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--max-tokens", type=int, default=300)
    p.add_argument("--overlap", type=int, default=1)
    p.add_argument("--reps", type=int, default=5, help="warm passes over the query set")
    p.add_argument("--no-baselines", action="store_true", help="skip bm25s and rank-bm25")
    p.add_argument("--rank-bm25-max-chunks", type=int, default=20_000,
                   help="above this size rank-bm25 runs only --rank-bm25-reps warm passes")
    p.add_argument("--rank-bm25-reps", type=int, default=1)
    p.add_argument("--profile", type=int, metavar="CHUNKS", help="print cProfile of indexing and search at this size, then exit")
    # worker-only options
    p.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    p.add_argument("--corpus", help=argparse.SUPPRESS)
    p.add_argument("--db", help=argparse.SUPPRESS)
    p.add_argument("--queries", help=argparse.SUPPRESS)
    p.add_argument("--patched", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--size", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--no-search", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--no-fastpaths", action="store_true", help="skip the run with bench/fastpaths.py patches")
    p.add_argument("--stages-size", type=int, default=10_000,
                   help="corpus size (chunks) for the per-stage CPU breakdown; 0 skips it")
    a = p.parse_args(argv)

    if a.worker:
        result = WORKERS[a.worker](a)
        print(json.dumps(result))
        return 0

    a.data.mkdir(parents=True, exist_ok=True)
    queries = json.dumps(QUERIES)
    common = {"max_tokens": a.max_tokens, "overlap": a.overlap, "queries": queries}
    if a.profile:
        corpus, _ = ensure_corpus(a.data, a.profile, a.seed, a.max_tokens, a.overlap)
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "profile", "--corpus", str(corpus),
               "--db", str(a.data / f"profile-{a.profile}.db"), "--reps", str(a.reps), "--max-tokens", str(a.max_tokens),
               "--overlap", str(a.overlap), "--queries", queries]
        return subprocess.run(cmd, cwd=ROOT).returncode

    t_all = time.perf_counter()
    results, notes = [], []
    for size in [int(s) for s in a.sizes.split(",") if s.strip()]:
        print(f"size {size:,} chunks", file=sys.stderr)
        corpus, n_docs = ensure_corpus(a.data, size, a.seed, a.max_tokens, a.overlap)
        db = a.data / f"index-{size}.db"
        r = {"size": size, "ours": run_worker("ours", corpus=corpus, db=db, reps=a.reps, size=size, **common)}
        o = r["ours"]
        print(f"  ours: {o['chunks']} chunks, index {o['t_index']:.1f} s, tiktoken {o['t_tok']:.1f} s, "
              f"p50 {pct(o['warm'], 50):.1f} ms, rss {o['rss_index']:.0f} MB", file=sys.stderr)
        if not a.no_fastpaths:
            db2 = a.data / f"index-{size}-fastpaths.db"
            f = run_worker("ours", corpus=corpus, db=db2, reps=a.reps, patched=1, no_search=1, size=size, **common)
            f["identical"] = index_digest(db) == index_digest(db2)
            r["fast"] = f
            print(f"  ours+fastpaths: index {f['t_index']:.1f} s, tiktoken {f['t_tok']:.1f} s, identical {f['identical']}",
                  file=sys.stderr)
        if not a.no_baselines:
            b = run_worker("bm25s", db=db, reps=a.reps, **common)
            b["overlap"] = overlap(o["top"], b["top"])
            r["bm25s"] = b
            print(f"  bm25s: index {b['t_index']:.1f} s, p50 {pct(b['warm'], 50):.2f} ms", file=sys.stderr)
            reps = a.reps if o["chunks"] <= a.rank_bm25_max_chunks else a.rank_bm25_reps
            if reps != a.reps:
                notes.append(f"rank-bm25 at {o['chunks']:,} chunks: {reps} warm pass(es) instead of {a.reps} "
                             "(it scores every chunk in Python for every query term).")
            rb = run_worker("rank_bm25", db=db, reps=reps, **common)
            rb["overlap"] = overlap(o["top"], rb["top"])
            r["rank_bm25"] = rb
            r["bm25s_vs_rank"] = overlap(b["top"], rb["top"])
            print(f"  rank-bm25: index {rb['t_index']:.1f} s, p50 {pct(rb['warm'], 50):.1f} ms", file=sys.stderr)
        results.append(r)
    stages = None
    if a.stages_size:
        print(f"stage breakdown at {a.stages_size:,} chunks", file=sys.stderr)
        corpus, _ = ensure_corpus(a.data, a.stages_size, a.seed, a.max_tokens, a.overlap)
        stages = run_worker("stages", corpus=corpus, db=a.data / "stages.db", **common)
        stages["size"] = a.stages_size
    loads = [x for r in results for k in ("ours", "fast") if k in r for x in r[k]["load"]]
    info = machine() | {"seed": a.seed, "max_tokens": a.max_tokens, "overlap": a.overlap, "reps": a.reps,
                        "total_s": time.perf_counter() - t_all, "load_min": min(loads), "load_max": max(loads)}
    cmd = "python bench/index_bench.py " + " ".join(sys.argv[1:] if argv is None else argv)
    body = render(results, info, cmd.strip(), notes, stages)
    update_section(a.out, body)
    (a.data / "last-run.json").write_text(json.dumps({"info": info, "results": results, "stages": stages}))
    print(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
