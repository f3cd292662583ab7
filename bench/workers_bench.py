"""Several service workers (issue 14): /v1/ask throughput with 1, 2 and 4 workers on SQLite and PostgreSQL,
and a kill test (SIGKILL one of 2 workers during a briefing job and during uploads), offline and local.

    python bench/workers_bench.py load --clients 16 --seconds 15 --rounds 3 --out bench/RESULTS.md
    python bench/workers_bench.py kill --out bench/RESULTS.md

load: the seed index is built with the real CLI (an SQLite file, and a database on a throwaway PostgreSQL
server on a Unix socket, tests/pgserver.py); for each round and each (store, workers) pair, in an order
that alternates between rounds, the real `rag serve --workers N` runs on a free loopback port and 16
closed-loop clients (bench/load_bench.py's minimal HTTP/1.1 client, one keep-alive connection each) post
`/v1/ask` for the measured window after a warm-up. The table gives the median round of each pair.

kill: a fake model server (tests/fake_openai.py) answers summaries after 0.4 s; a 6-document briefing job
(concurrency 1) starts on `rag serve --workers 2`, and uploads run from another client that retries when
its connection dies; once two documents are done the worker holding the job's lease gets SIGKILL. We count,
at the model server, summary requests per document and briefing syntheses, and check the uploads.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT / "tests")]

from load_bench import run_load, write_section  # noqa: E402
from pgserver import pg_server  # noqa: E402


def _env(index: str, **extra: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("RAG_", "OPENAI_"))} | {
        "RAG_INDEX": index, "RAG_SERVER__RATE_LIMIT_PER_MINUTE": "10000000"} | extra


def start(index: str, workers: int, log: Path, **extra: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "rag", "serve", "--port", "0", "--json", "--workers", str(workers),
                             "--log-level", "warning"], cwd=ROOT, env=_env(index, **extra), stdout=subprocess.PIPE,
                            stderr=log.open("a"), text=True)
    url = json.loads(proc.stdout.readline())["url"]  # type: ignore[union-attr]
    deadline = time.monotonic() + 60
    ready = 0
    while ready < 3 * workers:  # several answers in a row: every worker is up, not only the first
        try:
            ready = ready + 1 if httpx.get(url + "/readyz", timeout=2).status_code == 200 else 0
        except httpx.HTTPError:
            ready = 0
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            sys.exit(f"rag serve did not become ready; see {log}")
        time.sleep(0.2)
    time.sleep(1.0)
    return proc, url


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def index(setting: str) -> None:
    built = subprocess.run([sys.executable, "-m", "rag", "index", str(ROOT / "seeds")], cwd=ROOT, env=_env(setting),
                           capture_output=True, text=True)
    if built.returncode:
        sys.exit(f"rag index failed: {built.stderr}")


# ------------------------------------------------------------------ load
def cmd_load(a: argparse.Namespace) -> int:
    results: dict[tuple[str, int], list[dict[str, Any]]] = {}
    loads: list[str] = []
    with tempfile.TemporaryDirectory(prefix="rag-workers-") as tmp, pg_server() as server:
        settings = {"sqlite": str(Path(tmp) / "index.db"), "postgres": server.create_database("bench")}
        postmaster = int((server.root / "data" / "postmaster.pid").read_text().split()[0])
        for s in settings.values():
            index(s)
        pairs = [(store, w) for store in ("sqlite", "postgres") for w in a.workers]
        for r in range(a.rounds):
            order = pairs if r % 2 == 0 else pairs[::-1]
            loads.append(" / ".join(f"{x:.1f}" for x in os.getloadavg()))
            for store, workers in order:
                proc, url = start(settings[store], workers, Path(tmp) / "serve.log")
                try:
                    roots = [proc.pid] + ([postmaster] if store == "postgres" else [])
                    out = asyncio.run(run_load(url, clients=a.clients, seconds=a.seconds, warmup=a.warmup, pid=proc.pid,
                                               cpu_roots=roots))
                finally:
                    stop(proc)
                results.setdefault((store, workers), []).append(out)
                print(f"round {r + 1} {store} x{workers}: {out['throughput_rps']:.1f} req/s p95 {out['p95_ms']:.1f} ms "
                      f"errors {sum(out['errors'].values())} cpu/req {out['server_cpu_ms_per_request']:.2f} ms", flush=True)
    lines = ["## Several workers: /v1/ask throughput", "",
             f"`python bench/workers_bench.py load --clients {a.clients} --seconds {a.seconds:g} --rounds {a.rounds} "
             f"--out bench/RESULTS.md`", "",
             f"Real `rag serve --workers N` (offline backend, seed index, rate limit lifted) on loopback; {a.clients} "
             f"closed-loop clients on one keep-alive connection each, posting `/v1/ask` from load_bench.py's rotation for "
             f"{a.seconds:g} s after a {a.warmup:g} s warm-up; {a.rounds} rounds, the (store, workers) pairs in alternating "
             f"order; each cell is the median round (min-max of throughput in brackets). Machine: {os.cpu_count()} cores, "
             f"shared with other work: 1-minute load average before each round {', '.join(loads)}. The clients run on the "
             f"same 2 cores. Server CPU per request counts the supervisor, its workers and (PostgreSQL) the database "
             f"server's processes. PostgreSQL 15 on a Unix socket (fsync off, as a throwaway server).", "",
             "| store | workers | req/s (min-max) | x 1 worker | p50 ms | p95 ms | p99 ms | errors | server CPU ms per request |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for store in ("sqlite", "postgres"):
        base = statistics.median(r["throughput_rps"] for r in results[(store, a.workers[0])])
        for w in a.workers:
            runs = results[(store, w)]
            med = sorted(runs, key=lambda r: r["throughput_rps"])[len(runs) // 2]
            rps = [r["throughput_rps"] for r in runs]
            errors = sum(sum(r["errors"].values()) for r in runs)
            lines.append(f"| {store} | {w} | {med['throughput_rps']:.1f} ({min(rps):.0f}-{max(rps):.0f}) | "
                         f"{med['throughput_rps'] / base:.2f}x | {med['p50_ms']:.1f} | {med['p95_ms']:.1f} | "
                         f"{med['p99_ms']:.1f} | {errors} | {med['server_cpu_ms_per_request']:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        write_section(a.out, text, "## Several workers: /v1/ask throughput")
    return 0


# ------------------------------------------------------------------ kill
def _summary_reply(body: dict[str, Any]) -> Any:
    from fake_openai import json_reply

    schema = ((body.get("response_format") or {}).get("json_schema") or {}).get("name")
    if schema == "StrategySummary":
        user = body["messages"][-1]["content"]
        doc_id = re.search(r"Document (\S+):", user).group(1)
        source_id, source = re.search(r'<source id="([^"]+)" doc="([^"]+)">', user).groups()
        quote = re.search(r"Retail dispatch number \d+\.", user).group(0)
        theme = {"text": "A numbered dispatch.", "citations": [{"source": source, "chunk_id": source_id, "quote": quote}]}
        return json_reply({"doc_id": doc_id, "title": doc_id, "themes": [theme]}, delay=0.4)
    return json_reply({"title": "Briefing"})


def kill_once(setting: str, tmp: Path, docs: int, uploads: int) -> dict[str, Any]:
    from fake_openai import Call, FakeOpenAI, forever

    corpus = tmp / f"corpus-{abs(hash(setting))}"
    corpus.mkdir()
    seed = next((ROOT / "seeds").glob("*.txt")).read_text(encoding="utf-8")
    for i in range(docs):
        (corpus / f"doc{i}.txt").write_text(f"Retail dispatch number {i}.\n{seed}", encoding="utf-8")
    subprocess.run([sys.executable, "-m", "rag", "index", str(corpus)], cwd=ROOT, env=_env(setting), check=True,
                   capture_output=True)
    fake = FakeOpenAI().start()
    fake.script([forever(Call(_summary_reply))])
    proc, url = start(setting, 2, tmp / "kill.log", RAG_BACKEND="openai", OPENAI_API_KEY="sk-test",
                      OPENAI_BASE_URL=fake.base_url, RAG_CACHE="off", RAG_SERVER__JOB_LEASE_SECONDS="5")
    names = [f"note{i}.txt" for i in range(uploads)]
    acknowledged, retries = [], 0
    killed = threading.Event()

    def upload_all() -> None:
        nonlocal retries
        with httpx.Client(base_url=url, timeout=30) as c:
            for name in names:
                for _ in range(20):
                    try:
                        if c.post("/v1/documents", json={"filename": name, "content": f"Upload {name}."}).status_code == 201:
                            acknowledged.append(name)
                            break
                    except httpx.TransportError:
                        pass
                    retries += 1
                if name == names[uploads // 5]:
                    killed.wait(60)

    try:
        client = httpx.Client(base_url=url, timeout=30)
        job = client.post("/v1/briefings", json={"concurrency": 1}).json()
        uploader = threading.Thread(target=upload_all)
        uploader.start()
        while (j := client.get(f"/v1/briefings/{job['id']}").json())["progress"].get("done", 0) < 2:
            time.sleep(0.05)
        victim = int(j["worker"].split(":")[1])
        done_at_kill = j["progress"]["done"]
        t_kill = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        killed.set()
        uploader.join(120)
        while (j := client.get(f"/v1/briefings/{job['id']}").json())["status"] not in ("succeeded", "failed"):
            time.sleep(0.05)
        finished_after = time.monotonic() - t_kill
        listed = [d["id"] for d in client.get("/v1/documents").json()["documents"] if str(d["id"]).startswith("uploads/")]
        client.close()
    finally:
        stop(proc)
        fake.stop()
    summaries = [re.search(r"Document (\S+):", r.messages[-1]["content"]).group(1) for r in fake.requests
                 if (r.body.get("response_format") or {}).get("json_schema", {}).get("name") == "StrategySummary"]
    per_doc = {d: summaries.count(d) for d in set(summaries)}
    return {
        "status": j["status"], "finished_by_other": int(j["worker"].split(":")[1]) != victim,
        "done_at_kill": done_at_kill, "resumed": j["progress"]["skipped"], "summarized_after": j["progress"]["done"],
        "summary_requests": len(summaries), "documents": docs, "asked_twice": sum(1 for n in per_doc.values() if n > 1),
        "syntheses": sum(1 for r in fake.requests
                         if (r.body.get("response_format") or {}).get("json_schema", {}).get("name") == "Briefing"),
        "uploads": uploads, "acknowledged": len(acknowledged), "in_index": len(listed), "distinct": len(set(listed)),
        "client_retries": retries, "seconds_to_finish_after_kill": round(finished_after, 1),
    }


def cmd_kill(a: argparse.Namespace) -> int:
    rows = []
    with tempfile.TemporaryDirectory(prefix="rag-kill-") as tmp, pg_server() as server:
        for store, setting in (("sqlite", str(Path(tmp) / "index.db")), ("postgres", server.create_database("kill"))):
            r = kill_once(setting, Path(tmp), a.docs, a.uploads)
            print(store, json.dumps(r), flush=True)
            rows.append((store, r))
    lines = ["## Several workers: SIGKILL one of two", "", "`python bench/workers_bench.py kill --out bench/RESULTS.md`", "",
             f"`rag serve --workers 2`, a {a.docs}-document briefing job (concurrency 1, the fake model server answers each "
             f"summary after 0.4 s, response cache off) and {a.uploads} uploads from a client that retries when its "
             "connection dies; the worker holding the job's lease gets SIGKILL once two documents are done. Counted at "
             "the model server and in the index afterwards (the same scenario is tests/test_workers.py).", "",
             "| store | job | finished by the other worker | docs done at kill | resumed (not asked again) | summary requests "
             "for docs | docs asked twice | syntheses | uploads acknowledged / in index / distinct | client retries | "
             "s from kill to done |", "|---|---|---|---:|---:|---:|---:|---:|---|---:|---:|"]
    for store, r in rows:
        lines.append(f"| {store} | {r['status']} | {'yes' if r['finished_by_other'] else 'no'} | {r['done_at_kill']} | "
                     f"{r['resumed']} | {r['summary_requests']} for {r['documents']} | {r['asked_twice']} | {r['syntheses']} | "
                     f"{r['acknowledged']} / {r['in_index']} / {r['distinct']} of {r['uploads']} | {r['client_retries']} | "
                     f"{r['seconds_to_finish_after_kill']} |")
    lines += ["", "A document asked twice is the one whose summary was in flight when its worker died (its answer went "
              "to a dead process); no finished document is asked again, and the synthesis runs once."]
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        write_section(a.out, text, "## Several workers: SIGKILL one of two")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    lp = sub.add_parser("load")
    lp.add_argument("--clients", type=int, default=16)
    lp.add_argument("--seconds", type=float, default=15.0)
    lp.add_argument("--warmup", type=float, default=2.0)
    lp.add_argument("--rounds", type=int, default=3)
    lp.add_argument("--workers", type=lambda t: [int(x) for x in t.split(",")], default=[1, 2, 4])
    lp.add_argument("--out", type=Path)
    kp = sub.add_parser("kill")
    kp.add_argument("--docs", type=int, default=6)
    kp.add_argument("--uploads", type=int, default=30)
    kp.add_argument("--out", type=Path)
    a = p.parse_args(argv)
    if a.cmd == "load" and not (1 <= a.clients <= 256 and 1 <= a.seconds <= 300 and 1 <= a.rounds <= 10):
        p.error("keep it bounded: 1-256 clients, 1-300 seconds, 1-10 rounds")
    return cmd_load(a) if a.cmd == "load" else cmd_kill(a)


if __name__ == "__main__":
    sys.exit(main())
