"""`rag serve --workers 2` on each store: a per-key rate limit holds across workers, /metrics adds up every
worker's requests, and a worker SIGKILLed during a briefing job and during uploads loses nothing: the job
completes on the other worker, no finished document is summarized twice (counted at the model server),
and every upload is in the index exactly once."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import SEED_FILE, run_cli
from fake_openai import Call, FakeOpenAI, fake_openai, forever, json_reply  # noqa: F401  (fixture)
from servers import serve_process, wait_until

pytestmark = pytest.mark.slow
KEY = "worker-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(params=["sqlite", "postgres"])
def setting(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "index.db")
    return request.getfixturevalue("pg_url")


def worker_snapshots(setting: str) -> dict[str, dict[str, Any]]:
    """Each worker's last published metrics, read from the shared store."""
    if setting.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(setting) as conn:
            rows = conn.execute("SELECT worker, snapshot FROM rag_worker_metrics").fetchall()
    else:
        path = Path(setting)
        db = sqlite3.connect(path.parent / f"{path.stem}-state.db")
        rows = db.execute("SELECT worker, snapshot FROM worker_metrics").fetchall()
        db.close()
    return {w: json.loads(s) for w, s in rows}


def searches(snapshot: dict[str, Any]) -> int:
    """POSTs to /v1/search in a snapshot, served (200) or refused by the rate limit (429, route 'refused')."""
    return sum(n for route, method, _status, n in snapshot["requests"] if method == "POST" and route in ("/v1/search", "refused"))


def test_a_per_key_rate_limit_holds_across_workers_and_metrics_add_up(tmp_path: Path, setting: str) -> None:
    assert run_cli("index", str(SEED_FILE.parent), env={"RAG_INDEX": setting}).returncode == 0
    env = {"RAG_API_KEYS": f"alice={KEY},ops=ops-key", "RAG_SERVER__RATE_LIMIT_PER_MINUTE": "5", "RAG_SERVER__METRICS_INTERVAL": "0.2"}
    sent = 40
    with serve_process(setting, "--workers", "2", env=env) as (_, url):
        statuses = []
        for _ in range(sent):
            with httpx.Client(base_url=url, timeout=30) as client:  # a new connection each time: any worker may get it
                statuses.append(client.post("/v1/search", json={"query": "walmart"}, headers=AUTH).status_code)
        # Each worker publishes its counters; wait until every request is accounted for.
        per_worker = wait_until(lambda: (s := {w: searches(v) for w, v in worker_snapshots(setting).items()})
                                and sum(s.values()) == sent and s, what="both workers' metrics")
        scrape = httpx.get(url + "/metrics", headers={"Authorization": "Bearer ops-key"}, timeout=30)  # a key of its own
        assert scrape.status_code == 200, scrape.text
        metrics = scrape.text
    assert set(statuses) == {200, 429}
    # The bucket refills at 5 a minute: at most one more token came in during these few seconds.
    assert 5 <= statuses.count(200) <= 6, statuses
    busy = [n for n in per_worker.values() if n]
    assert len(busy) >= 2 and min(busy) >= 6  # each worker alone would have let 5 through: 10 or more in all
    total = sum(int(n) for route, n in re.findall(
        r'rag_http_requests_total\{route="([^"]+)",method="POST",status="\d+"\} (\d+)', metrics)
        if route in ("/v1/search", "refused"))
    assert total == sent


def _summary_reply(body: dict[str, Any]) -> Any:
    schema = ((body.get("response_format") or {}).get("json_schema") or {}).get("name")
    if schema == "StrategySummary":
        user = body["messages"][-1]["content"]
        doc_id = re.search(r"Document (\S+):", user).group(1)
        source_id, source = re.search(r'<source id="([^"]+)" doc="([^"]+)">', user).groups()
        quote = re.search(r"Retail dispatch number \d+\.", user).group(0)
        theme = {"text": "A numbered dispatch.", "citations": [{"source": source, "chunk_id": source_id, "quote": quote}]}
        return json_reply({"doc_id": doc_id, "title": doc_id, "themes": [theme]}, delay=0.4)
    return json_reply({"title": "Briefing"})


def test_a_worker_killed_mid_job_and_mid_upload_loses_nothing(tmp_path: Path, setting: str, fake_openai: FakeOpenAI) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    seed = SEED_FILE.read_text(encoding="utf-8")
    for i in range(6):
        (corpus / f"doc{i}.txt").write_text(f"Retail dispatch number {i}.\n{seed}", encoding="utf-8")
    assert run_cli("index", str(corpus), env={"RAG_INDEX": setting}).returncode == 0
    fake_openai.script([forever(Call(_summary_reply))])
    env = {"RAG_BACKEND": "openai", "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": fake_openai.base_url, "RAG_CACHE": "off",
           "RAG_SERVER__RATE_LIMIT_PER_MINUTE": "100000", "RAG_SERVER__JOB_LEASE_SECONDS": "5"}
    uploads = [f"note{i}.txt" for i in range(30)]
    acknowledged: list[str] = []
    retried: list[str] = []

    with serve_process(setting, "--workers", "2", env=env) as (proc, url):
        client = httpx.Client(base_url=url, timeout=30)
        job = client.post("/v1/briefings", json={"concurrency": 1}).json()
        killed = threading.Event()

        def upload_all() -> None:
            with httpx.Client(base_url=url, timeout=30) as c:
                for name in uploads:
                    for _attempt in range(20):  # what a client does: retry when its connection dies
                        try:
                            r = c.post("/v1/documents", json={"filename": name, "content": f"Upload {name} names a pier."})
                            if r.status_code == 201:
                                acknowledged.append(name)
                                break
                        except httpx.TransportError:
                            pass
                        retried.append(name)
                    if name == uploads[5]:
                        killed.wait(60)  # the rest of the uploads go on while (and after) a worker dies

        uploader = threading.Thread(target=upload_all)
        uploader.start()
        running = wait_until(lambda: (j := client.get(f"/v1/briefings/{job['id']}").json())["progress"].get("done", 0) >= 2
                             and j, what="two documents summarized")
        holder = int(running["worker"].split(":")[1])
        os.kill(holder, signal.SIGKILL)
        killed.set()
        uploader.join(120)
        done = wait_until(lambda: (j := client.get(f"/v1/briefings/{job['id']}").json())["status"] in ("succeeded", "failed")
                          and j, what="the job to finish on the other worker", timeout=120)
        listed = client.get("/v1/documents").json()["documents"]
        client.close()

    assert done["status"] == "succeeded", done
    assert int(done["worker"].split(":")[1]) != holder  # finished by another worker
    assert done["progress"]["done"] + done["progress"]["skipped"] == 6 and done["progress"]["skipped"] >= 2
    assert len(done["result"]["sources"]) == 6
    asked = [re.search(r"Document (\S+):", r.messages[-1]["content"]).group(1) for r in fake_openai.requests
             if (r.body.get("response_format") or {}).get("json_schema", {}).get("name") == "StrategySummary"]
    counts = {d: asked.count(d) for d in set(asked)}
    assert len(counts) == 6
    # Finished documents were never asked again; only the one in flight when the worker died may have been.
    assert sum(n - 1 for n in counts.values()) <= 1, counts
    syntheses = [r for r in fake_openai.requests
                 if (r.body.get("response_format") or {}).get("json_schema", {}).get("name") == "Briefing"]
    assert len(syntheses) == 1
    assert sorted(acknowledged) == sorted(uploads)
    ids = [str(d["id"]) for d in listed if str(d["id"]).startswith("uploads/")]
    assert sorted(ids) == sorted(f"uploads/{n}" for n in uploads)  # each once, none lost
    assert all(int(d["chunks"]) == 1 for d in listed if str(d["id"]).startswith("uploads/"))
