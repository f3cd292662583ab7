"""Offline `ask` latency in-process (the offline-answers issue): the seed index and a big index.

    python bench/ask_bench.py --out bench/RESULTS.md
    python bench/ask_bench.py --big bench/.data/news-v1-s42-n72992.db --out bench/RESULTS.md

The seed questions are the `qa_seed` suite's; the big index (default: the ~100k-chunk synthetic news and Python docs indexes
that `bench/search_bench.py` leaves in bench/.data) gets the same questions plus questions
about the synthetic companies. Each question is asked once to warm the caches, then ``--reps`` times;
the table gives p50 / p95 / max of the timed calls (retrieval, hybrid vectors, evidence scoring,
verification: everything `rag ask` does after start-up) and the share of refusals.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.answer import ask  # noqa: E402
from rag.backends import get_backend  # noqa: E402
from rag.chunk import Chunker  # noqa: E402
from rag.config import load_settings  # noqa: E402
from rag.index import SQLiteIndex, index_paths  # noqa: E402

MARK = "## Offline ask latency"
EXTRA = ["What is Northwind's strategy?", "How much did revenue grow last quarter?", "Who is the chief executive?",
         "When will the new stores open?", "Why did margins fall?", "Compare the two largest retailers' plans"]


def seed_questions() -> list[str]:
    suite = yaml.safe_load((ROOT / "evals" / "qa_seed.yaml").read_text(encoding="utf-8"))
    return [c["input"]["question"] if isinstance(c.get("input"), dict) else c["question"] for c in suite["cases"]
            if c.get("kind", "qa") == "qa"]


def measure(db: Path, questions: list[str], reps: int) -> dict[str, float]:
    settings = load_settings(index=str(db))
    store = SQLiteIndex(db, readonly=True)
    backend = get_backend(settings, use_cache=False)
    for q in questions:
        ask(q, store=store, backend=backend, settings=settings)
    times, refused = [], 0
    for _ in range(reps):
        for q in questions:
            t0 = time.perf_counter()
            answer = ask(q, store=store, backend=backend, settings=settings)
            times.append((time.perf_counter() - t0) * 1000)
            refused += answer.refused
    chunks = store.stats().get("chunks", 0)
    store.close()
    times.sort()
    return {"chunks": chunks, "questions": len(questions), "p50": statistics.median(times),
            "p95": times[int(0.95 * (len(times) - 1))], "max": times[-1], "refused": refused / len(times)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--big", type=Path, nargs="*", default=[ROOT / "bench" / ".data" / "news-v1-s42-n72993.db",
                                                            ROOT / "bench" / ".data" / "pydocs-x8.db"])
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--out", type=Path)
    a = p.parse_args()
    questions = seed_questions()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "seed.db"
        store = SQLiteIndex(db, create=True)
        index_paths([ROOT / "seeds"], store, Chunker())
        store.close()
        rows.append(("seed", measure(db, questions, a.reps)))
    for big in a.big:
        if big.exists():
            rows.append((big.name, measure(big, questions + EXTRA, a.reps)))
        else:
            print(f"no index at {big}: run bench/search_bench.py (--corpus news / pydocs) first", file=sys.stderr)
    lines = [MARK, "", f"Command: `python bench/ask_bench.py --reps {a.reps} --out bench/RESULTS.md` (big indexes: what "
             f"bench/search_bench.py leaves in bench/.data); {time.strftime('%Y-%m-%d %H:%M')}, 2 shared cores.", "",
             "| index | chunks | questions | p50 ms | p95 ms | max ms | refused |", "|---|---|---|---|---|---|---|"]
    for name, r in rows:
        lines.append(f"| {name} | {r['chunks']:,} | {r['questions']} | {r['p50']:.1f} | {r['p95']:.1f} | {r['max']:.1f} | "
                     f"{r['refused']:.0%} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        old = a.out.read_text(encoding="utf-8") if a.out.exists() else ""
        if MARK in old:
            head, _, rest = old.partition(MARK)
            tail = rest[rest.find("\n## "):] if "\n## " in rest else ""
            old = head.rstrip() + "\n\n" + text + tail
        else:
            old = old.rstrip() + "\n\n" + text
        a.out.write_text(old, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
