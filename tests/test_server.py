"""End-to-end tests of `rag serve`: a real uvicorn server on a free loopback port, called over HTTP.

Most tests share one in-process server (uvicorn in a thread) over an index built from seeds/ by the
real CLI; tests that need other settings start their own. The bind refusal, the restart after
SIGKILL and the CLI wiring run `rag serve` as a subprocess.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from conftest import SEED_FILE, SEEDS, run_cli
from servers import serve_process, wait_until
from fake_openai import Call, FakeOpenAI, fake_openai, forever, json_reply, stream  # noqa: F401  (fixture)
from rag.config import Settings, load_settings
from rag.index import SQLiteIndex
from rag.server.app import create_app, jobs_dir
from rag.server.security import Bucket, bind_refusal, take_token
from rag.server.uploads import parse_multipart, sanitize_filename
from rag.sessions import SQLiteSessions

pytestmark = pytest.mark.slow

KEY, OTHER_KEY = "test-key-1", "test-key-2"
AUTH = {"Authorization": f"Bearer {KEY}"}
SEED_ID = f"seeds/{SEED_FILE.name}"
KROGER = "What did Kroger do on Monday?"
WALMART = "What is Walmart's model?"


# ------------------------------------------------------------------ harness
def make_settings(index: Path, **overrides: Any) -> Settings:
    """Settings from nothing but the arguments: the caller's RAG_*/OPENAI_* environment is ignored."""
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith(("RAG_", "OPENAI_")):
                mp.delenv(key)
        overrides.setdefault("backend", "offline")
        return load_settings(index=index, **overrides)


class ThreadServer:
    """uvicorn serving ``create_app(settings)`` in a thread, on a socket bound before it starts."""

    def __init__(self, settings: Settings) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP_NODELAY
        self.sock.bind(("127.0.0.1", 0))
        self.url = "http://127.0.0.1:%d" % self.sock.getsockname()[1]
        self.app = create_app(settings)
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", access_log=False))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> "ThreadServer":
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(20)
        self.sock.close()

    def client(self, **kw: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kw)


def sse_events(lines: Iterator[str]) -> list[tuple[str, str]]:
    """(event, data) pairs of a Server-Sent Events stream, read to its end."""
    events, event, data = [], "message", []
    for line in lines:
        if not line:
            if data:
                events.append((event, "\n".join(data)))
            event, data = "message", []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    if data:
        events.append((event, "\n".join(data)))
    return events


def index_seeds(index: Path) -> None:
    result = run_cli("index", str(SEEDS), env={"RAG_INDEX": str(index)})
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def seed_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    index = tmp_path_factory.mktemp("served") / "index.db"
    index_seeds(index)
    return index


@pytest.fixture(scope="module")
def server(seed_index: Path) -> Iterator[ThreadServer]:
    settings = make_settings(seed_index, api_keys=f"alice={KEY}:admin, bob={OTHER_KEY}",
                             server={"rate_limit_per_minute": 100_000, "auth_failures_per_minute": 100_000})
    with ThreadServer(settings) as srv:
        yield srv


@pytest.fixture
def client(server: ThreadServer) -> Iterator[httpx.Client]:
    with server.client(headers=AUTH) as c:
        yield c


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert {"type", "message"} <= set(body["error"]), body
    return body["error"]


# ------------------------------------------------------------------ health, page, docs
def test_health_and_readiness_need_no_key(server: ThreadServer) -> None:
    with server.client() as anonymous:
        assert anonymous.get("/healthz").json() == {"status": "ok"}
        ready = anonymous.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() | {"model": "-"} == {"status": "ready", "documents": 1, "backend": "offline", "model": "-", "auth": True}


def test_chat_page_and_assets_load_without_a_key(server: ThreadServer) -> None:
    with server.client() as anonymous:
        page = anonymous.get("/")
        script = anonymous.get("/static/app.js")
        style = anonymous.get("/static/style.css")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert '<script src="/static/app.js"' in page.text
    for text in (page.text, script.text, style.text):  # works offline: nothing loaded from elsewhere
        assert "http://" not in text and "https://" not in text and "//cdn" not in text
    assert script.status_code == 200 and "/v1/chat" in script.text
    assert style.status_code == 200 and "text/css" in style.headers["content-type"]


def test_api_docs_pages_and_assets_are_served_locally(server: ThreadServer) -> None:
    with server.client() as anonymous:
        pages = [anonymous.get("/docs"), anonymous.get("/redoc")]
        assets = [anonymous.get(f"/docs/assets/{name}") for name in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js")]
    for page in pages:
        assert page.status_code == 200 and "/docs/assets/" in page.text
        assert "cdn" not in page.text and "fonts.googleapis" not in page.text
        assert "img-src 'self' data:" in page.headers["content-security-policy"]
    assert all(a.status_code == 200 and len(a.content) > 100_000 for a in assets)


def test_openapi_docs_list_every_route_with_bearer_auth(server: ThreadServer) -> None:
    with server.client() as anonymous:
        assert anonymous.get("/docs").status_code == 200
        spec = anonymous.get("/openapi.json").json()
    for path in ("/v1/ask", "/v1/chat", "/v1/search", "/v1/documents", "/v1/documents/{doc_id}", "/v1/briefings",
                 "/v1/briefings/{job_id}", "/v1/chat/completions", "/v1/models", "/healthz", "/readyz", "/metrics"):
        assert path in spec["paths"], path
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert "additionalProperties" in json.dumps(spec["components"]["schemas"]["AskBody"])


# ------------------------------------------------------------------ auth
@pytest.mark.parametrize("route", ["GET /v1/documents", "POST /v1/ask", "POST /v1/chat", "POST /v1/search",
                                   "POST /v1/documents", "DELETE /v1/documents/x.txt", "POST /v1/briefings",
                                   "GET /v1/briefings/x", "POST /v1/chat/completions", "GET /v1/models", "GET /metrics"])
def test_every_api_route_needs_a_key(server: ThreadServer, route: str) -> None:
    method, path = route.split()
    with server.client() as c:
        missing = c.request(method, path, json={})
        wrong = c.request(method, path, json={}, headers={"Authorization": "Bearer nope"})
        basic = c.request(method, path, json={}, headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
    assert "missing API key" in error_of(missing)["message"]
    assert wrong.status_code == 401 and error_of(wrong) == {"type": "unauthorized", "message": "invalid API key"}
    assert basic.status_code == 401 and error_of(basic)["type"] == "unauthorized"


def test_either_configured_key_is_accepted(server: ThreadServer) -> None:
    for key in (KEY, OTHER_KEY):
        with server.client(headers={"Authorization": f"Bearer {key}"}) as c:
            assert c.get("/v1/documents").status_code == 200


# ------------------------------------------------------------------ ask
def test_ask_returns_the_same_json_as_the_cli(client: httpx.Client, seed_index: Path) -> None:
    response = client.post("/v1/ask", json={"question": WALMART})
    assert response.status_code == 200
    served = response.json()
    cli = run_cli("ask", WALMART, "--json", env={"RAG_INDEX": str(seed_index)})
    assert cli.returncode == 0, cli.stderr
    expected = json.loads(cli.stdout)
    assert set(served) == set(expected)
    volatile = {"latency_ms", "usage"}
    assert {k: v for k, v in served.items() if k not in volatile} == {k: v for k, v in expected.items() if k not in volatile}
    assert not served["refused"] and served["citations"][0]["source"] == SEED_ID
    assert "physical scale into a service network" in served["answer"]


def test_ask_refuses_when_the_sources_do_not_say(client: httpx.Client) -> None:
    body = client.post("/v1/ask", json={"question": "What is the price of bitcoin?"}).json()
    assert body["refused"] is True and body["citations"] == []
    assert body["answer"].startswith("The sources don't say")


def test_ask_with_k_and_source_filter(client: httpx.Client) -> None:
    elsewhere = client.post("/v1/ask", json={"question": KROGER, "k": 2, "source": "uploads/*"}).json()
    assert elsewhere["refused"] is True  # nothing under uploads/ matches
    here = client.post("/v1/ask", json={"question": KROGER, "k": 2, "source": "seeds/*"}).json()
    assert not here["refused"] and "Kroger" in here["answer"]


@pytest.mark.parametrize("body, status, kind, field", [
    ({}, 422, "validation_error", "question"),
    ({"question": ""}, 422, "validation_error", "question"),
    ({"question": "   "}, 422, "validation_error", "question"),
    ({"question": "x" * 2001}, 422, "validation_error", "question"),
    ({"question": "Why?", "questoin": "typo"}, 422, "validation_error", "questoin"),
    ({"question": "Why?", "k": 0}, 422, "validation_error", "k"),
    ({"question": "Why?", "k": "many"}, 422, "validation_error", "k"),
    ({"question": 42}, 422, "validation_error", "question"),
    ({"question": "?!?"}, 400, "query_error", None),
])
def test_ask_bad_input_says_which_field(client: httpx.Client, body: dict, status: int, kind: str, field: str | None) -> None:
    response = client.post("/v1/ask", json=body)
    assert response.status_code == status, response.text
    error = error_of(response)
    assert error["type"] == kind
    if field:
        assert error["field"] == field and error["message"].startswith(field + ":")


def test_unknown_field_is_named_even_next_to_a_missing_one(client: httpx.Client) -> None:
    error = error_of(client.post("/v1/ask", json={"questio": "typo"}))
    assert "question: Field required" in error["message"] and "questio: unknown field" in error["message"]


def test_malformed_json_is_a_400(client: httpx.Client) -> None:
    response = client.post("/v1/ask", content=b'{"question": "Why', headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert error_of(response)["type"] == "invalid_json" and "malformed JSON" in error_of(response)["message"]


def test_non_json_body_is_rejected(client: httpx.Client) -> None:
    response = client.post("/v1/ask", content=b"question=Why", headers={"Content-Type": "text/plain"})
    assert response.status_code == 422 and error_of(response)["type"] == "validation_error"


def test_oversized_body_is_a_413_with_or_without_content_length(server: ThreadServer, client: httpx.Client) -> None:
    big = json.dumps({"question": "x" * 2_100_000}).encode()
    declared = client.post("/v1/ask", content=big, headers={"Content-Type": "application/json"})
    assert declared.status_code == 413
    assert error_of(declared) == {"type": "payload_too_large", "message": "request body is larger than the 2000000 byte limit"}

    def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked
        for i in range(0, len(big), 65536):
            yield big[i:i + 65536]

    streamed = client.post("/v1/ask", content=chunks(), headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413 and error_of(streamed)["type"] == "payload_too_large"


def test_unknown_routes_and_methods_get_json_errors(client: httpx.Client) -> None:
    missing = client.get("/v1/nothing-here")
    assert missing.status_code == 404 and error_of(missing)["type"] == "not_found"
    wrong_method = client.get("/v1/ask")
    assert wrong_method.status_code == 405 and error_of(wrong_method)["type"] == "method_not_allowed"


# ------------------------------------------------------------------ chat
def test_chat_session_is_saved_and_continued(client: httpx.Client, seed_index: Path) -> None:
    first = client.post("/v1/chat", json={"question": KROGER, "session_id": "s-persist"})
    assert first.status_code == 200 and "Kroger" in first.json()["answer"]
    second = client.post("/v1/chat", json={"question": "Who did it hire?", "session_id": "s-persist"}).json()
    assert second["question"] == "Who did it hire?"
    turns = SQLiteSessions(SQLiteIndex(seed_index)).load("alice/s-persist")  # sessions are kept per key
    assert [t["role"] for t in turns] == ["user", "assistant", "user", "assistant"]
    assert turns[1]["content"] == first.json()["answer"]


def test_chat_rejects_a_bad_session_id(client: httpx.Client) -> None:
    response = client.post("/v1/chat", json={"question": KROGER, "session_id": "../../etc/passwd"})
    assert response.status_code == 422 and error_of(response)["field"] == "session_id"


def test_chat_streams_deltas_then_the_verified_answer(client: httpx.Client) -> None:
    with client.stream("POST", "/v1/chat", json={"question": KROGER, "session_id": "s-stream", "stream": True}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = sse_events(r.iter_lines())
    kinds = [e for e, _ in events]
    assert kinds[-1] == "answer" and kinds[:-1] and set(kinds[:-1]) == {"delta"}
    text = "".join(json.loads(d)["text"] for e, d in events if e == "delta")
    answer = json.loads(events[-1][1])
    assert text == answer["answer"] and "Kroger" in text
    assert answer["citations"] and answer["citations"][0]["quote"] in (SEED_FILE.read_text(encoding="utf-8"))


def test_a_stream_cut_by_the_model_ends_with_an_error_event(seed_index: Path, fake_openai: FakeOpenAI) -> None:
    draft = json.dumps({"answer": "Kroger on Monday (Feb. 9) hired a former Walmart U.S. CEO as its own top executive.",
                        "citations": []})
    fake_openai.script([forever(stream(draft, chunk_size=30, cut_after=2))])
    settings = make_settings(seed_index, backend="openai", api_key="sk-test", base_url=fake_openai.base_url, cache="off",
                             llm={"max_attempts": 1})
    with ThreadServer(settings) as srv, srv.client() as c:
        with c.stream("POST", "/v1/chat", json={"question": KROGER, "stream": True}) as r:
            assert r.status_code == 200
            events = sse_events(r.iter_lines())
    kinds = [e for e, _ in events]
    assert kinds[0] == "delta" and kinds[-1] == "error" and "answer" not in kinds
    assert json.loads(events[-1][1])["error"]["type"] == "backend_error"


def test_chat_stream_errors_before_output_are_plain_http_errors(client: httpx.Client) -> None:
    response = client.post("/v1/chat", json={"question": "!!!", "stream": True})
    assert response.status_code == 400 and error_of(response)["type"] == "query_error"


# ------------------------------------------------------------------ search
def test_search_returns_ranked_hits(client: httpx.Client) -> None:
    body = client.post("/v1/search", json={"query": "satellite launches", "k": 3}).json()
    hits = body["hits"]
    assert 1 <= len(hits) <= 3 and [h["rank"] for h in hits] == list(range(1, len(hits) + 1))
    assert hits[0]["source"] == SEED_ID and "[satellite]" in hits[0]["snippet"]
    assert all(a["score"] >= b["score"] for a, b in zip(hits, hits[1:]))
    bad = client.post("/v1/search", json={"query": "x", "k": 1000})
    assert bad.status_code == 422 and error_of(bad)["field"] == "k"


# ------------------------------------------------------------------ documents
def _ids(client: httpx.Client) -> set[str]:
    return {d["id"] for d in client.get("/v1/documents").json()["documents"]}


def test_upload_html_as_json_is_stripped_indexed_and_deletable(client: httpx.Client) -> None:
    html = ("<html><head><title>Costco memo</title><style>p{}</style></head><body><script>stealCookies()</script>"
            "<p>Costco opened a zeppelin warehouse in Lisbon.</p></body></html>")
    response = client.post("/v1/documents", json={"filename": "memo.html", "content": html})
    assert response.status_code == 201, response.text
    doc = response.json()["documents"][0]
    assert doc == {"id": "uploads/memo.html", "source": "uploads/memo.html", "title": "Costco memo", "status": "indexed",
                   "chunks": 1}
    hit = client.post("/v1/search", json={"query": "zeppelin warehouse"}).json()["hits"][0]
    assert hit["chunk"]["doc_id"] == "uploads/memo.html"
    assert "stealCookies" not in hit["chunk"]["text"] and "<p>" not in hit["chunk"]["text"]
    answer = client.post("/v1/ask", json={"question": "Where did Costco open a zeppelin warehouse?"}).json()
    assert not answer["refused"] and answer["citations"][0]["source"] == "uploads/memo.html"

    again = client.post("/v1/documents", json={"filename": "memo.html", "content": html}).json()
    assert again["documents"][0]["status"] == "unchanged" and again["chunks_written"] == 0
    assert client.delete("/v1/documents/uploads/memo.html").json() == {"deleted": "uploads/memo.html"}
    assert "uploads/memo.html" not in _ids(client)
    gone = client.delete("/v1/documents/uploads/memo.html")
    assert gone.status_code == 404 and error_of(gone)["type"] == "not_found"


def test_multipart_upload_never_takes_a_path_from_the_client(client: httpx.Client) -> None:
    files = {"file": ("../../etc/Quarterly Notes ü.md", b"# Notes\n\nTarget piloted drone delivery in Ohio.\n", "text/markdown")}
    response = client.post("/v1/documents", files=files)
    assert response.status_code == 201, response.text
    assert response.json()["documents"][0]["id"] == "uploads/Quarterly_Notes_ü.md"
    assert client.delete("/v1/documents/uploads/Quarterly_Notes_ü.md").status_code == 200


def test_jsonl_upload_ids_stay_under_the_upload(client: httpx.Client) -> None:
    lines = [json.dumps({"id": SEED_ID, "title": "Hijack", "text": "Aldi tested quantum shelving."}),
             json.dumps({"text": "Lidl tested robotic checkout."}), "not json"]
    body = client.post("/v1/documents", json={"filename": "batch.jsonl", "content": "\n".join(lines)}).json()
    ids = [d["id"] for d in body["documents"]]
    assert ids == [f"uploads/batch.jsonl:{SEED_ID.replace('/', '_')}", "uploads/batch.jsonl:2"]
    assert body["skipped"] == [{"source": "uploads/batch.jsonl:3", "reason": "broken jsonl line: Expecting value"}]
    seed = [d for d in client.get("/v1/documents").json()["documents"] if d["id"] == SEED_ID][0]
    assert seed["title"] != "Hijack"  # the seed document was not overwritten
    for doc_id in ids:
        assert client.delete(f"/v1/documents/{doc_id}").status_code == 200


@pytest.mark.parametrize("filename, content, status, kind", [
    ("sheet.xlsx", b"PK\x03\x04 ...", 415, "unsupported_media_type"),
    ("report.pdf", b"%PDF-1.4 ...", 422, "unusable_upload"),
    ("noextension", b"plain words", 415, "unsupported_media_type"),
    ("blob.txt", bytes(range(256)) * 4, 422, "unusable_upload"),
    ("empty.md", b"   \n", 422, "unusable_upload"),
    ("scripts.html", b"<script>only()</script>", 422, "unusable_upload"),
])
def test_bad_uploads_are_rejected_with_the_reason(client: httpx.Client, filename: str, content: bytes, status: int,
                                                  kind: str) -> None:
    before = _ids(client)
    response = client.post("/v1/documents", files={"file": (filename, content, "application/octet-stream")})
    assert response.status_code == status, response.text
    assert error_of(response)["type"] == kind
    assert _ids(client) == before


def test_upload_body_problems(client: httpx.Client) -> None:
    no_file = client.post("/v1/documents", data={"note": "no file"}, files={"other": (None, "x")})
    assert no_file.status_code == 422 and error_of(no_file)["field"] == "file"
    missing = client.post("/v1/documents", json={"filename": "a.txt"})
    assert missing.status_code == 422 and error_of(missing)["field"] == "content"
    broken = client.post("/v1/documents", content=b"{", headers={"Content-Type": "application/json"})
    assert broken.status_code == 400 and error_of(broken)["type"] == "invalid_json"
    odd = client.post("/v1/documents", content=b"hello", headers={"Content-Type": "text/plain"})
    assert odd.status_code == 415


def test_uploads_while_answering_keep_the_index_consistent(client: httpx.Client, seed_index: Path) -> None:
    statuses: list[int] = []
    lock = threading.Lock()

    def upload(worker: int) -> None:
        with httpx.Client(base_url=str(client.base_url), headers=AUTH, timeout=30) as c:
            for i in range(5):
                text = f"Note {worker}-{i}: the retailer tested marker{worker}x{i} in stores.\n"
                r = c.post("/v1/documents", json={"filename": f"note-{worker}-{i}.txt", "content": text})
                with lock:
                    statuses.append(r.status_code)

    def asker() -> None:
        with httpx.Client(base_url=str(client.base_url), headers=AUTH, timeout=30) as c:
            for _ in range(8):
                r = c.post("/v1/ask", json={"question": KROGER})
                with lock:
                    statuses.append(r.status_code if not r.json()["refused"] else -1)

    threads = [threading.Thread(target=upload, args=(w,)) for w in range(4)] + [threading.Thread(target=asker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(set(statuses)) == [200, 201] and len(statuses) == 4 * 5 + 4 * 8
    uploaded = {f"uploads/note-{w}-{i}.txt" for w in range(4) for i in range(5)}
    assert uploaded <= _ids(client)
    for w, i in ((0, 0), (3, 4), (2, 1)):
        hits = client.post("/v1/search", json={"query": f"marker{w}x{i}"}).json()["hits"]
        assert [h["chunk"]["doc_id"] for h in hits] == [f"uploads/note-{w}-{i}.txt"]
    db = sqlite3.connect(seed_index)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("SELECT count(*) FROM chunks WHERE doc_id NOT IN (SELECT id FROM documents)").fetchone()[0] == 0
    db.close()
    for doc_id in uploaded:
        assert client.delete(f"/v1/documents/{doc_id}").status_code == 200


# ------------------------------------------------------------------ briefings
def poll_job(client: httpx.Client, job_id: str, *, timeout: float = 60.0) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        job = client.get(f"/v1/briefings/{job_id}").json()
        return job if job["status"] in ("succeeded", "failed") else None

    return wait_until(finished, what=f"briefing job {job_id}", timeout=timeout)


def test_briefing_job_completes_with_json_and_markdown(client: httpx.Client, seed_index: Path) -> None:
    started = client.post("/v1/briefings", json={"title": "Retail platforms"})
    assert started.status_code == 202, started.text
    job_id = started.json()["id"]
    assert started.headers["location"] == f"/v1/briefings/{job_id}"
    job = poll_job(client, job_id)
    assert job["status"] == "succeeded", job
    assert job["progress"]["total"] == job["progress"]["done"] + job["progress"]["skipped"] >= 1
    result = job["result"]
    assert result["title"] == "Retail platforms" and result["sources"]
    quotes = [c["quote"] for item in result["executive_summary"] for c in item["citations"]]
    assert quotes and all(q in SEED_FILE.read_text(encoding="utf-8") for q in quotes)
    markdown = client.get(f"/v1/briefings/{job_id}", headers={"Accept": "text/markdown"})
    assert markdown.headers["content-type"].startswith("text/markdown")
    assert markdown.text.startswith("# Retail platforms\n") and "[^1]:" in markdown.text
    summaries = list((jobs_dir(make_settings(seed_index)) / job_id / "summaries").glob("*.json"))
    assert len(summaries) == job["progress"]["total"]


def test_briefing_bad_requests(client: httpx.Client) -> None:
    unknown = client.post("/v1/briefings", json={"doc_ids": ["nope.txt"]})
    assert unknown.status_code == 422 and error_of(unknown)["field"] == "doc_ids"
    empty = client.post("/v1/briefings", json={"doc_ids": []})
    assert empty.status_code == 422 and error_of(empty)["field"] == "doc_ids"
    assert client.post("/v1/briefings", json={"concurrency": 99}).status_code == 422
    missing = client.get("/v1/briefings/0123456789abcdef")
    assert missing.status_code == 404 and error_of(missing)["type"] == "not_found"


# ------------------------------------------------------------------ OpenAI compatibility
def test_openai_sdk_gets_a_grounded_answer(server: ThreadServer) -> None:
    import openai

    sdk = openai.OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0)
    assert [m.id for m in sdk.models.list()] == ["rag"]
    completion = sdk.chat.completions.create(model="rag", messages=[
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": KROGER},
    ])
    message = completion.choices[0].message
    assert "hired a former Walmart U.S. CEO" in message.content
    citations = (message.model_extra or {})["citations"]
    assert citations[0]["source"] == SEED_ID and citations[0]["quote"] in message.content
    assert completion.model_extra["rag"]["refused"] is False

    chunks = list(sdk.chat.completions.create(model="rag", stream=True, stream_options={"include_usage": True},
                                              messages=[{"role": "user", "content": KROGER}]))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == message.content
    final = [c for c in chunks if c.choices and c.choices[0].finish_reason == "stop"]
    assert len(final) == 1 and final[0].model_extra["citations"][0]["source"] == SEED_ID
    assert chunks[-1].usage is not None


def test_openai_sdk_with_a_wrong_key_gets_an_authentication_error(server: ThreadServer) -> None:
    import openai

    sdk = openai.OpenAI(base_url=server.url + "/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        sdk.chat.completions.create(model="rag", messages=[{"role": "user", "content": KROGER}])


def test_chat_completions_uses_earlier_turns_and_ends_streams_with_done(client: httpx.Client) -> None:
    messages = [{"role": "user", "content": KROGER}, {"role": "assistant", "content": "Kroger hired a former Walmart CEO."},
                {"role": "user", "content": [{"type": "text", "text": "Why did it do that?"}]}]
    with client.stream("POST", "/v1/chat/completions", json={"model": "rag", "messages": messages, "stream": True}) as r:
        events = sse_events(r.iter_lines())
    assert events[-1] == ("message", "[DONE]")
    chunks = [json.loads(d) for _, d in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["rag"]["standalone_question"]  # the follow-up was condensed against the earlier turns


def test_chat_completions_bad_messages(client: httpx.Client) -> None:
    last_not_user = client.post("/v1/chat/completions", json={"messages": [{"role": "assistant", "content": "hi"}]})
    assert last_not_user.status_code == 422 and error_of(last_not_user)["field"] == "messages"
    none = client.post("/v1/chat/completions", json={"messages": []})
    assert none.status_code == 422 and error_of(none)["field"] == "messages"
    bad_role = client.post("/v1/chat/completions", json={"messages": [{"role": "wizard", "content": "hi"}]})
    assert bad_role.status_code == 422 and error_of(bad_role)["field"].startswith("messages.0.role")


# ------------------------------------------------------------------ metrics
def test_metrics_count_requests_latency_and_refusals(client: httpx.Client) -> None:
    client.post("/v1/ask", json={"question": "What is the price of bitcoin?"})
    client.post("/v1/ask", json={"question": WALMART})
    text = client.get("/metrics").text
    assert re.search(r'^rag_http_requests_total\{route="/v1/ask",method="POST",status="200"\} \d+$', text, re.M)
    assert re.search(r'^rag_http_request_duration_seconds_bucket\{route="/v1/ask",le="\+Inf"\} \d+$', text, re.M)
    assert re.search(r'^rag_http_request_duration_seconds_count\{route="/v1/ask"\} \d+$', text, re.M)
    assert int(re.search(r"^rag_refusals_total (\d+)$", text, re.M).group(1)) >= 1
    assert int(re.search(r"^rag_answers_total (\d+)$", text, re.M).group(1)) >= 2
    for family in ("rag_tokens_total", "rag_cache_hits_total", "rag_documents"):
        assert f"# TYPE {family} " in text
    assert 'route="/v1/documents/{doc_id:path}"' in text or "/v1/documents/" not in text.replace("{doc_id:path}", "")


# ------------------------------------------------------------------ limits with their own servers
def test_rate_limit_burst_gets_429_with_retry_after(seed_index: Path) -> None:
    settings = make_settings(seed_index, api_keys=f"{KEY},{OTHER_KEY}", server={"rate_limit_per_minute": 3})
    with ThreadServer(settings) as srv, srv.client(headers=AUTH) as c, srv.client(headers={"Authorization": f"Bearer {OTHER_KEY}"}) as other:
        codes = [c.get("/v1/documents").status_code for _ in range(6)]
        limited = c.get("/v1/documents")
        assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429, 429]
        assert limited.status_code == 429 and 1 <= int(limited.headers["retry-after"]) <= 20
        assert error_of(limited)["type"] == "rate_limited"
        assert other.get("/v1/documents").status_code == 200  # each key has its own bucket
        assert c.get("/healthz").status_code == 200  # health is never limited


def test_small_limits_from_settings(seed_index: Path) -> None:
    settings = make_settings(seed_index, server={"max_body_bytes": 4096, "max_question_chars": 20})
    with ThreadServer(settings) as srv, srv.client() as c:  # no keys: localhost callers need none
        long_question = c.post("/v1/ask", json={"question": "What did Kroger do on that Monday?"})
        assert long_question.status_code == 422
        assert error_of(long_question)["message"] == "question: longer than 20 characters (34)"
        big = c.post("/v1/documents", json={"filename": "big.txt", "content": "word " * 2000})
        assert big.status_code == 413
        assert c.post("/v1/ask", json={"question": "Who did Kroger hire?"}).status_code == 200


def test_a_slow_model_endpoint_is_a_503_not_a_hang(seed_index: Path, fake_openai: FakeOpenAI) -> None:
    fake_openai.script([forever(json_reply({"answer": "late"}, delay=1.5))])
    slow_model = {"backend": "openai", "api_key": "sk-test", "base_url": fake_openai.base_url, "cache": "off"}
    # The model call's own timeout fires first: a backend error.
    with ThreadServer(make_settings(seed_index, llm={"timeout": 0.3, "max_attempts": 1}, **slow_model)) as srv, srv.client() as c:
        response = c.post("/v1/ask", json={"question": KROGER})
    assert response.status_code == 503 and error_of(response)["type"] == "backend_error"
    # The request's own deadline: the server answers 503 and abandons the work.
    with ThreadServer(make_settings(seed_index, llm={"timeout": 30, "max_attempts": 1}, **slow_model)) as srv, srv.client() as c:
        srv.app.state.services.request_timeout = 0.3
        response = c.post("/v1/ask", json={"question": KROGER})
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    assert error_of(response)["type"] == "timeout"


# ------------------------------------------------------------------ the CLI: bind rule, misconfiguration, restart after SIGKILL
def test_a_misconfigured_server_answers_500_without_leaking_paths(seed_index: Path, tmp_path: Path) -> None:
    empty = tmp_path / "no-prompts"
    empty.mkdir()
    with serve_process(seed_index, env={"RAG_PROMPTS_DIR": str(empty)}) as (proc, url):
        response = httpx.post(url + "/v1/ask", json={"question": KROGER}, timeout=30)
        assert httpx.get(url + "/healthz").status_code == 200  # still alive
        proc.send_signal(signal.SIGTERM)
        log = proc.communicate(timeout=15)[1]
    assert response.status_code == 500
    assert error_of(response) == {"type": "config_error", "message": "the server is misconfigured (see its log)"}
    assert str(empty) not in response.text and "unknown prompt 'answer'" in log



def test_serve_refuses_to_listen_publicly_without_keys(tmp_path: Path) -> None:
    result = run_cli("serve", "--host", "0.0.0.0", "--port", "0", timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rag: error: refusing to listen on 0.0.0.0 without API keys")
    assert "RAG_API_KEYS" in lines[0] and "--insecure" in lines[0]
    assert not (tmp_path / "index.db").exists()


def _summary_reply(body: dict[str, Any]) -> Any:
    schema = ((body.get("response_format") or {}).get("json_schema") or {}).get("name")
    if schema == "StrategySummary":  # one theme, quoting the document's first line from its first source
        user = body["messages"][-1]["content"]
        doc_id = re.search(r"Document (\S+):", user).group(1)
        source_id, source = re.search(r'<source id="([^"]+)" doc="([^"]+)">', user).groups()
        quote = re.search(r"Retail dispatch number \d+\.", user).group(0)
        theme = {"text": "A numbered dispatch.", "citations": [{"source": source, "chunk_id": source_id, "quote": quote}]}
        return json_reply({"doc_id": doc_id, "title": doc_id, "themes": [theme]}, delay=0.4)
    return json_reply({"title": "Briefing"})


def test_briefing_survives_sigkill_and_resumes_without_redoing_documents(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    seed = SEED_FILE.read_text(encoding="utf-8")
    for i in range(6):
        (corpus / f"doc{i}.txt").write_text(f"Retail dispatch number {i}.\n{seed}", encoding="utf-8")
    index = tmp_path / "index.db"
    assert run_cli("index", str(corpus), env={"RAG_INDEX": str(index)}).returncode == 0
    fake_openai.script([forever(Call(_summary_reply))])
    env = {"RAG_BACKEND": "openai", "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": fake_openai.base_url, "RAG_CACHE": "off"}
    summaries = jobs_dir(make_settings(index))

    with serve_process(index, env=env) as (proc, url):
        job = httpx.post(url + "/v1/briefings", json={"concurrency": 1}, timeout=10).json()
        out = summaries / job["id"] / "summaries"
        wait_until(lambda: len(list(out.glob("*.json"))) >= 2, what="two finished summaries")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finished = {p.name: p.stat().st_mtime_ns for p in out.glob("*.json")}
    assert 2 <= len(finished) < 6
    status = sqlite3.connect(index).execute("SELECT status FROM jobs WHERE id = ?", (job["id"],)).fetchone()[0]
    assert status == "running"  # killed mid-job: nothing marked it finished

    with serve_process(index, env=env) as (_, url):
        with httpx.Client(base_url=url, timeout=10) as c:
            done = poll_job(c, job["id"])
    assert done["status"] == "succeeded", done
    assert done["progress"]["skipped"] == len(finished)
    assert done["progress"]["done"] == 6 - len(finished)
    # The job's usage counts the calls made before the restart too: one summary call per document, plus the synthesis.
    assert done["progress"]["usage"]["calls"] == 6
    assert done["result"]["usage"]["calls"] == 7
    after = {p.name: p.stat().st_mtime_ns for p in out.glob("*.json")}
    assert len(after) == 6 and all(after[name] == mtime for name, mtime in finished.items())
    asked = [re.search(r"Document (\S+):", r.messages[-1]["content"]).group(1) for r in fake_openai.requests
             if (r.body.get("response_format") or {}).get("json_schema", {}).get("name") == "StrategySummary"]
    finished_docs = {json.loads((out / name).read_text())["summary"]["doc_id"] for name in finished}
    assert all(asked.count(doc_id) == 1 for doc_id in finished_docs)  # never asked twice
    assert len(done["result"]["sources"]) == 6


# ------------------------------------------------------------------ pure policies
@pytest.mark.parametrize("name, expected", [
    ("report.md", "report.md"),
    ("../../etc/passwd.txt", "passwd.txt"),
    ("C:\\Users\\me\\Notes.HTML", "Notes.html"),
    ("..hidden.txt", "hidden.txt"),
    ("a b/c d.jsonl", "c_d.jsonl"),
    ("ümlaut façade.md", "ümlaut_façade.md"),
    ("报告.txt", "报告.txt"),
    ("////", "upload"),
    ("x" * 300 + ".txt", "x" * 80 + ".txt"),
])
def test_sanitize_filename(name: str, expected: str) -> None:
    assert sanitize_filename(name) == expected


def test_token_bucket_refills_at_the_configured_rate() -> None:
    bucket = Bucket(tokens=2.0, updated=0.0)
    assert take_token(bucket, 0.0, per_minute=2) == 0
    assert take_token(bucket, 0.0, per_minute=2) == 0
    assert take_token(bucket, 0.0, per_minute=2) == pytest.approx(30.0)
    assert take_token(bucket, 15.0, per_minute=2) == pytest.approx(15.0)
    assert take_token(bucket, 30.0, per_minute=2) == 0


@pytest.mark.parametrize("host, keys, insecure, refused", [
    ("127.0.0.1", [], False, False), ("localhost", [], False, False), ("::1", [], False, False),
    ("127.0.0.2", [], False, False), ("0.0.0.0", [], False, True), ("::", [], False, True),
    ("192.168.1.5", [], False, True), ("0.0.0.0", ["k"], False, False), ("0.0.0.0", [], True, False),
])
def test_bind_rule(host: str, keys: list[str], insecure: bool, refused: bool) -> None:
    assert (bind_refusal(host, keys=keys, insecure=insecure) is not None) == refused


def test_multipart_parser_keeps_bytes_exactly() -> None:
    payload = b"line one\r\nline two\r\n\r\n--not-the-boundary\r\n"
    body = (b"--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n"
            b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\n"
            + payload + b"\r\n--XyZ--\r\n")
    assert parse_multipart(body, "multipart/form-data; boundary=XyZ") == [("a.txt", payload)]
