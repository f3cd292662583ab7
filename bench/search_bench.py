"""Search and indexing benchmark (issue 13): rag's BM25 postings against bm25s and tantivy, and `rag index`
against raw tiktoken, on real text (the Python docs sources, copied N times) and on synthetic news.

    python bench/search_bench.py --corpus pydocs --sizes 10000,100000 --out bench/RESULTS.md
    python bench/search_bench.py --corpus news --sizes 10000,100000,1000000 --out bench/RESULTS.md

Per corpus and size, in fresh processes: `rag index` (the real CLI, default settings) timed as a whole
process (wall, CPU of it and its workers, peak RSS), alternated with tiktoken ``encode_ordinary`` over the
same files (one process, one core); the embedding step alone (WordLlama, as `rag index` runs it); a second
`rag index` that adds 1% new documents to a copy of the built index. Then one search process loads the
chunk texts back from the index, builds bm25s (its tokenizer, English stop words and Snowball stemmer),
tantivy (``en_stem``, OR of the query words) and an exact BM25 reference (bm25s, Lucene idf, k1=1.2,
b=0.75, on rag's own terms), and times rag's ``retrieve`` (what `rag search` runs: postings, hydration,
snippets), ``store.search`` and the peers query by query, interleaved, so load on the shared machine
hits them alike. Search memory of rag alone is measured in its own process. Results go to the section
"## Search and indexing (issue 13)" of ``--out`` (one subsection per corpus), other sections are kept.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
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

from rag.index import CHUNK_TEXT_SQL  # noqa: E402  (after the sys.path lines)

PYDOCS = Path("/usr/share/doc/python3.11/html/_sources")
PYDOCS_CHUNKS = 12_471  # chunks of one copy with the default chunker
K = 10
SECTION = "## Search and indexing (issue 13)"

# 12 keyword queries and 15 questions in plain English about the Python docs (written for this benchmark).
PYDOCS_QUERIES = [
    "asyncio event loop", "json dumps indent", "subprocess Popen communicate", "dataclass field default_factory",
    "itertools groupby", "unittest mock patch", "logging handler formatter", "re.sub backreference",
    "pathlib glob", "typing TypeVar generic", "socket timeout", "decimal rounding precision",
    "How do I read a file line by line?", "What is the difference between a list and a tuple?",
    "how to sort a dictionary by value", "Why does my default argument keep its value between calls?",
    "How can I run a shell command and capture its output?", "what does the global interpreter lock do",
    "How do I parse command line arguments?", "how to format a date as a string",
    "What happens when an exception is raised inside a with statement?", "how do I make a class iterable",
    "When should I use a generator instead of a list?", "how to create a virtual environment",
    "How are keyword-only arguments declared?", "what is the walrus operator", "How do I copy an object deeply?",
]


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[max(1, math.ceil(p / 100 * len(s))) - 1]


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


# ------------------------------------------------------------------ corpora
def pydocs_corpus(data: Path, size: int) -> Path:
    copies = max(1, round(size / PYDOCS_CHUNKS))
    root = data / f"pydocs-x{copies}"
    if not (root / ".complete").exists():
        shutil.rmtree(root, ignore_errors=True)
        for i in range(copies):
            shutil.copytree(PYDOCS, root / f"copy{i + 1}")
        (root / ".complete").write_text("")
    return root


def news_corpus(data: Path, size: int) -> Path:
    from index_bench import ensure_corpus

    return ensure_corpus(data, size, 42, 300, 1)[0]


def corpus_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.txt"))


def extra_corpus(root: Path, data: Path, fraction: float = 0.01) -> Path:
    """New documents, 1% of the corpus: copies of every 100th file with one line added, in a folder of their own."""
    extra = data / f"{root.name}-plus1pct"
    if not (extra / ".complete").exists():
        shutil.rmtree(extra, ignore_errors=True)
        files = corpus_files(root)
        step = max(1, round(1 / fraction))
        for i, f in enumerate(files[::step]):
            target = extra / f"new{i:06d}.txt"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(f.read_text(encoding="utf-8") + f"\nAdded note {i}.\n", encoding="utf-8")
        (extra / ".complete").write_text("")
    return extra


# ------------------------------------------------------------------ timing whole processes
def timed(cmd: list[str], env: dict[str, str] | None = None) -> dict:
    """Wall, CPU (the process and every worker it reaped) and peak RSS of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate()
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {err[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, "maxrss_mb": after.ru_maxrss / 1024, "stdout": out}


def worker_encode(a: argparse.Namespace) -> dict:
    from rag.tokens import get_encoding

    enc = get_encoding("cl100k_base")
    enc.encode_ordinary("warm up")
    n = nbytes = 0
    t, c = time.perf_counter(), time.process_time()
    for p in corpus_files(Path(a.path)):
        text = p.read_text(encoding="utf-8")
        nbytes += len(text.encode("utf-8"))
        n += len(enc.encode_ordinary(text))
    return {"wall": time.perf_counter() - t, "cpu": time.process_time() - c, "tokens": n, "bytes": nbytes}


def worker_embed(a: argparse.Namespace) -> dict:
    """The embedding step alone, as `rag index` runs it: one call per document on its chunk texts."""
    from rag.embed import get_embedder

    db = sqlite3.connect(a.db)
    docs: dict[str, list[str]] = {}
    for doc_id, text in db.execute(f"SELECT c.doc_id, {CHUNK_TEXT_SQL} FROM chunks c "
                                   "JOIN documents d ON d.id = c.doc_id ORDER BY c.rowid"):
        docs.setdefault(doc_id, []).append(text)
    emb = get_embedder()
    emb.embed(["warm up"])
    t, c = time.perf_counter(), time.process_time()
    for texts in docs.values():
        emb.embed(texts)
    return {"wall": time.perf_counter() - t, "cpu": time.process_time() - c, "chunks": sum(map(len, docs.values()))}


def worker(name: str, **kw: object) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name]
    for k, v in kw.items():
        cmd += [f"--{k.replace('_', '-')}", str(v)]
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True, cwd=ROOT).stdout
    return json.loads(out.strip().splitlines()[-1])


def rag_index(db: Path, *paths: Path, fresh: bool = True) -> dict:
    if fresh:
        for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
            p.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    result = timed([sys.executable, "-m", "rag", "--index", str(db), "index", *map(str, paths), "--json"], env=env)
    result["report"] = json.loads(result.pop("stdout"))
    return result


# ------------------------------------------------------------------ search
def load_chunks(db_path: Path) -> tuple[list[str], list[str]]:
    db = sqlite3.connect(db_path)
    rows = db.execute(f"SELECT c.id, {CHUNK_TEXT_SQL} FROM chunks c "
                      "JOIN documents d ON d.id = c.doc_id ORDER BY c.rowid").fetchall()
    db.close()
    return [r[0] for r in rows], [r[1] for r in rows]


def worker_search(a: argparse.Namespace) -> dict:
    import bm25s
    import numpy as np
    import Stemmer
    import tantivy

    from rag import bm25
    from rag.index import SQLiteIndex
    from rag.retrieve import query_terms, retrieve

    queries = json.loads(a.queries)
    ids, texts = load_chunks(Path(a.db))
    out: dict = {"chunks": len(ids)}

    # bm25s as a user would run it: its tokenizer, English stop words, the Snowball stemmer.
    stemmer = Stemmer.Stemmer("english")
    t = time.perf_counter()
    peer = bm25s.BM25()
    peer.index(bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False)
    out["bm25s_index_s"] = time.perf_counter() - t

    # tantivy: an in-RAM index, en_stem, one OR query of the words.
    t = time.perf_counter()
    schema = tantivy.SchemaBuilder().add_text_field("text", stored=False, tokenizer_name="en_stem").add_integer_field(
        "i", stored=True, fast=True).build()
    tindex = tantivy.Index(schema)
    writer = tindex.writer(heap_size=256 * 2**20, num_threads=1)
    for i, text in enumerate(texts):
        writer.add_document(tantivy.Document(text=text, i=i))
    writer.commit()
    writer.wait_merging_threads()
    tindex.reload()
    searcher = tindex.searcher()
    out["tantivy_index_s"] = time.perf_counter() - t

    # The exact reference: BM25 (Lucene idf, k1=1.2, b=0.75) over rag's own terms.
    t = time.perf_counter()
    ref = bm25s.BM25(method="lucene", k1=1.2, b=0.75)
    ref.index([bm25.text_terms(x) for x in texts], show_progress=False)
    ref_vocab = ref.vocab_dict
    out["reference_index_s"] = time.perf_counter() - t
    del texts

    store = SQLiteIndex(a.db, readonly=True)
    words = __import__("re").compile(r"\w+")

    def run_ours(q: str) -> list[str]:
        return [h.chunk.id for h in retrieve(store, q, k=K)]

    def run_store(q: str) -> list[str]:
        return [h.chunk.id for h in store.search(query_terms(q), k=K)]

    def run_bm25s(q: str) -> list[int]:
        # Its fastest path from Python: tokenize, score every chunk with the precomputed matrix, take the top k.
        toks = bm25s.tokenize([q], stopwords="en", stemmer=stemmer, show_progress=False, return_ids=False)[0]
        if not toks:
            return []
        scores = peer.get_scores(toks)
        top = np.argpartition(-scores, K)[:K]
        return top[np.argsort(-scores[top])].tolist()

    def run_tantivy(q: str) -> list[int]:
        terms = [w for w in words.findall(q.lower())]
        if not terms:
            return []
        query = tindex.parse_query(" OR ".join(terms), ["text"])
        return [searcher.doc(addr)["i"][0] for _s, addr in searcher.search(query, K).hits]

    def run_reference(q: str) -> list[str]:
        stems = [t for t in bm25.query_stems(query_terms(q)) if t in ref_vocab]
        if not stems:
            return []
        scores = ref.get_scores(stems)
        top = np.argsort(-scores, kind="stable")[:K]
        return [ids[i] for i in top if scores[i] > 0]

    runners = {"ours": run_ours, "ours_store": run_store, "bm25s": run_bm25s, "tantivy": run_tantivy}
    cold = {}
    for q in queries[:1]:
        for name, run in runners.items():
            t = time.perf_counter()
            run(q)
            cold[name] = (time.perf_counter() - t) * 1000
    times: dict[str, list[float]] = {name: [] for name in runners}
    # The order of the engines rotates from query to query: whichever runs a query second finds its pages and
    # postings warm from the first, so a fixed order would flatter the second.
    order = list(runners.items())
    for rep in range(a.reps):
        for qi, q in enumerate(queries):
            shift = (rep * len(queries) + qi) % len(order)
            for name, run in order[shift:] + order[:shift]:
                t = time.perf_counter()
                run(q)
                times[name].append((time.perf_counter() - t) * 1000)
    overlap = []
    for q in queries:
        mine, want = run_store(q), run_reference(q)
        if want:
            overlap.append(len(set(mine) & set(want)) / len(want))
    out["overlap"] = statistics.mean(overlap)
    out["overlap_min"] = min(overlap)
    out["latency"] = {name: {"p50": statistics.median(v), "p95": pct(v, 95), "max": max(v)} for name, v in times.items()}
    out["first_query_ms"] = cold
    return out


def worker_memory(a: argparse.Namespace) -> dict:
    """rag's search-side memory in a process of its own: RSS before the first query and after all of them."""
    from rag.index import SQLiteIndex
    from rag.retrieve import retrieve

    queries = json.loads(a.queries)
    store = SQLiteIndex(a.db, readonly=True)
    import rag.embed  # noqa: F401  (imported by retrieve anyway)

    before = current_rss_mb()
    for q in queries:
        retrieve(store, q, k=K)
    after = current_rss_mb()
    reader = store._reader()
    return {"rss_before": before, "rss_after": after, "cache_mb": reader.nbytes / 2**20,
            "cached_terms": len(reader.terms), "peak": rss_mb()}


# ------------------------------------------------------------------ main
def machine() -> str:
    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = []
    for dist in ("tiktoken", "bm25s", "tantivy", "numpy"):
        try:
            from importlib.metadata import version

            versions.append(f"{dist} {version(dist)}")
        except Exception:
            pass
    return (f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
            + ", ".join(versions))


def git_rev() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "rag"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        return rev + (" (uncommitted changes in rag/)" if dirty else "")
    except OSError:
        return "?"


def run_size(corpus: str, size: int, a: argparse.Namespace) -> dict:
    data = a.data
    root = pydocs_corpus(data, size) if corpus == "pydocs" else news_corpus(data, size)
    db = data / f"{root.name}.db"
    queries = PYDOCS_QUERIES if corpus == "pydocs" else __import__("synth_corpus").QUERIES
    repeats = a.index_repeats if size <= 200_000 else 1
    res: dict = {"corpus": corpus, "size": size, "root": root.name, "load": [os.getloadavg()[0]]}
    enc, idx = [], []
    for _ in range(repeats):  # alternated, so drifting load hits both
        enc.append(worker("encode", path=root))
        idx.append(rag_index(db, root))
        res["load"].append(os.getloadavg()[0])
        print(f"  {corpus} {size}: index {idx[-1]['wall']:.1f} s, encode {enc[-1]['wall']:.1f} s", file=sys.stderr, flush=True)
    res["encode"] = enc
    res["index"] = idx
    res["embed"] = worker("embed", db=db)
    extra = extra_corpus(root, data)
    inc_db = data / f"{root.name}-inc.db"
    inc = []
    for _ in range(repeats):
        shutil.copy(db, inc_db)
        for suffix in ("-wal", "-shm"):
            Path(f"{inc_db}{suffix}").unlink(missing_ok=True)
        inc.append(rag_index(inc_db, root, extra, fresh=False))
    res["incremental"] = inc
    if not a.no_search:
        res["search"] = worker("search", db=db, queries=json.dumps(queries), reps=a.reps)
        res["memory"] = worker("memory", db=db, queries=json.dumps(queries))
    res["db_mb"] = db.stat().st_size / 2**20
    res["load"].append(os.getloadavg()[0])
    return res


def fmt(x: float, digits: int = 2) -> str:
    return f"{x:.{digits}f}"


def render(corpus: str, results: list[dict], argv: str) -> str:
    med = statistics.median
    lines = [f"### {('Python docs sources, copied N times' if corpus == 'pydocs' else 'Synthetic news (bench/synth_corpus.py)')}",
             "", f"Command: `{argv}`  ", f"Machine: {machine()}; rag at {git_rev()}; "
             f"{time.strftime('%Y-%m-%d %H:%M')}. 1-minute load average during the runs: "
             + ", ".join(f"{min(r['load']):.1f}-{max(r['load']):.1f}" for r in results)
             + " (2 shared cores: other sessions were running; ratios measured side by side are the figures to trust).", ""]
    lines += ["**Search** (k=10, warm, every query interleaved across engines; p50 / p95 ms; overlap: top-10 shared "
              "with the exact BM25 reference on rag's terms)", "",
              "| chunks | rag `retrieve` | rag `store.search` | bm25s | tantivy | overlap (min) | rag search memory MB | index MB |",
              "|---|---|---|---|---|---|---|---|"]
    for r in results:
        s = r.get("search")
        if not s:
            continue
        lat = s["latency"]
        cell = lambda n: f"{fmt(lat[n]['p50'])} / {fmt(lat[n]['p95'])}"  # noqa: E731
        m = r["memory"]
        lines.append(f"| {s['chunks']:,} | **{cell('ours')}** | {cell('ours_store')} | {cell('bm25s')} | {cell('tantivy')} | "
                     f"{fmt(s['overlap'], 3)} ({fmt(s['overlap_min'], 2)}) | +{fmt(m['rss_after'] - m['rss_before'], 0)} "
                     f"({m['cached_terms']} terms cached, {fmt(m['cache_mb'], 1)} MB) | {fmt(r['db_mb'], 0)} |")
    lines += ["", "**Indexing** (whole processes; medians of the runs; CPU includes the worker processes)", "",
              "| chunks | text MB | `rag index` s (CPU s) | tiktoken `encode_ordinary` s | index / encode | embedding alone s (x encode) "
              "| peak RSS MB (largest process) | +1% documents s (share of full build) | bm25s / tantivy index s (in RAM, chunk texts given) |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        iw, ic = med([x["wall"] for x in r["index"]]), med([x["cpu"] for x in r["index"]])
        ew = med([x["wall"] for x in r["encode"]])
        inc = med([x["wall"] for x in r["incremental"]])
        chunks = r["index"][0]["report"]["chunks_written"]
        s = r.get("search", {})
        peers = f"{fmt(s['bm25s_index_s'], 1)} / {fmt(s['tantivy_index_s'], 1)}" if s else "-"
        lines.append(f"| {chunks:,} | {fmt(r['encode'][0]['bytes'] / 1e6, 1)} | {fmt(iw, 1)} ({fmt(ic, 1)}) | {fmt(ew, 2)} | "
                     f"**{fmt(iw / ew, 1)}x** | {fmt(r['embed']['wall'], 1)} ({fmt(r['embed']['wall'] / ew, 1)}x) | "
                     f"{fmt(max(x['maxrss_mb'] for x in r['index']), 0)} | {fmt(inc, 2)} ({fmt(100 * inc / iw, 1)}%) | {peers} |")
    lines.append("")
    return "\n".join(lines)


def update(path: Path, corpus: str, body: str) -> None:
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    marker = f"<!-- search_bench {corpus} -->"
    end_marker = f"<!-- /search_bench {corpus} -->"
    block = f"{marker}\n{body}\n{end_marker}"
    if marker in text:
        a, b = text.index(marker), text.index(end_marker) + len(end_marker)
        text = text[:a] + block + text[b:]
    else:
        if SECTION not in text:
            text = text.rstrip() + f"\n\n{SECTION}\n\n<!-- generated by bench/search_bench.py between the markers -->\n"
        a = text.index(SECTION) + len(SECTION)
        nxt = text.find("\n## ", a)
        at = len(text) if nxt < 0 else nxt
        text = text[:at].rstrip() + "\n\n" + block + "\n" + text[at:]
    path.write_text(text, encoding="utf-8")


WORKERS = {"encode": worker_encode, "embed": worker_embed, "search": worker_search, "memory": worker_memory}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", choices=["pydocs", "news"], default="pydocs")
    p.add_argument("--sizes", default="10000,100000", help="target sizes in chunks, comma-separated")
    p.add_argument("--reps", type=int, default=5, help="warm passes over the queries")
    p.add_argument("--index-repeats", type=int, default=3, help="`rag index` runs per size up to 200k chunks (1 above)")
    p.add_argument("--no-search", action="store_true")
    p.add_argument("--data", type=Path, default=HERE / ".data")
    p.add_argument("--out", type=Path, help="results file whose issue-13 section gets this corpus's table")
    p.add_argument("--json", type=Path, help="also write the raw results here")
    p.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    p.add_argument("--db", help=argparse.SUPPRESS)
    p.add_argument("--path", help=argparse.SUPPRESS)
    p.add_argument("--queries", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        print(json.dumps(WORKERS[a.worker](a)))
        return 0
    if a.corpus == "pydocs" and not PYDOCS.is_dir():
        print(f"search_bench: {PYDOCS} is missing (apt-get install python3.11-doc)", file=sys.stderr)
        return 2
    a.data.mkdir(parents=True, exist_ok=True)
    results = [run_size(a.corpus, int(s), a) for s in a.sizes.split(",")]
    if a.json:
        a.json.write_text(json.dumps(results, indent=1))
    body = render(a.corpus, results, "python bench/search_bench.py " + " ".join(argv if argv is not None else sys.argv[1:]))
    print(body)
    if a.out:
        update(a.out, a.corpus, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
