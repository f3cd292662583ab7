"""The outside probe's findings against the HTTP service, re-run as described (issue: harden the service).

A real `rag serve` (uvicorn in a thread on a loopback port, or a subprocess), called over HTTP; the
cross-site cases run in a real headless Chromium from a page served on a second origin.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from browser import CHROMIUM, browser
from conftest import SEED_FILE, SEEDS
from servers import serve_process, wait_until
from test_server import ThreadServer, error_of, index_seeds, make_settings

pytestmark = pytest.mark.slow

ADMIN, WRITER, READER, OTHER = "adm-token-1", "wrt-token-2", "rdr-token-3", "oth-token-4"
KEYS = f"root={ADMIN}:admin, alice={WRITER}, rita={READER}:read, bob={OTHER}:write"
SEED_ID = f"seeds/{SEED_FILE.name}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def seed_index(tmp_path: Path) -> Path:
    index = tmp_path / "index.db"
    index_seeds(index)
    return index


@pytest.fixture
def keyed(seed_index: Path) -> Iterator[ThreadServer]:
    settings = make_settings(seed_index, api_keys=KEYS, server={"rate_limit_per_minute": 100_000,
                                                                 "auth_failures_per_minute": 100_000})
    with ThreadServer(settings) as srv:
        yield srv


@pytest.fixture
def keyless(seed_index: Path) -> Iterator[ThreadServer]:
    with ThreadServer(make_settings(seed_index, server={"rate_limit_per_minute": 100_000})) as srv:
        yield srv


def upload(c: httpx.Client, name: str, content: str, **headers: str) -> httpx.Response:
    return c.post("/v1/documents", json={"filename": name, "content": content}, headers=headers)


# ------------------------------------------------------------------ 1. cross-site writes, Host header
def test_a_form_post_from_another_origin_is_refused_and_changes_nothing(keyless: ThreadServer) -> None:
    with keyless.client() as c:
        before = c.get("/v1/documents").json()["count"]
        # What `fetch(url, {mode: "no-cors", method: "POST", body: formData})` sends from another origin.
        foreign = c.post("/v1/documents", files={"file": ("evil.txt", b"Walmart is bankrupt.")},
                         headers={"Origin": "http://attacker.example"})
        # The same form post without an Origin (an old browser or a proxy that strips it): still a "simple" request.
        simple = c.post("/v1/documents", files={"file": ("evil.txt", b"Walmart is bankrupt.")})
        text_plain = c.post("/v1/ask", content=b'{"question": "x"}', headers={"Content-Type": "text/plain"})
        assert c.get("/v1/documents").json()["count"] == before
    assert foreign.status_code == 403 and "origin 'http://attacker.example'" in error_of(foreign)["message"]
    assert simple.status_code == 403 and "X-Requested-With" in error_of(simple)["message"]
    assert text_plain.status_code == 403


def test_non_simple_requests_from_our_own_clients_still_work(keyless: ThreadServer) -> None:
    with keyless.client() as c:
        # curl -F with the documented header, JSON uploads, and the page's own same-origin requests.
        form = c.post("/v1/documents", files={"file": ("a.txt", b"Form upload about widgets.")},
                      headers={"X-Requested-With": "rag"})
        as_json = upload(c, "b.txt", "JSON upload about gadgets.")
        same_origin = upload(c, "c.txt", "Same-origin upload.", Origin=keyless.url)
    assert (form.status_code, as_json.status_code, same_origin.status_code) == (201, 201, 201)


def test_a_foreign_host_header_is_refused_even_for_reads(keyless: ThreadServer) -> None:
    with keyless.client() as c:
        rebinding = c.get("/v1/documents", headers={"Host": "attacker.example:8000"})
        page = c.get("/", headers={"Host": "evil.test"})
        own = c.get("/v1/documents", headers={"Host": "localhost"})
    assert rebinding.status_code == 421 and error_of(rebinding)["type"] == "misdirected_request"
    assert page.status_code == 421
    assert own.status_code == 200


def test_allowed_hosts_and_origins_come_from_settings(seed_index: Path) -> None:
    settings = make_settings(seed_index, server={"allowed_hosts": "rag.internal", "allowed_origins": "https://portal.internal"})
    with ThreadServer(settings) as srv, srv.client() as c:
        assert c.get("/v1/documents", headers={"Host": "rag.internal"}).status_code == 200
        assert upload(c, "p.txt", "From the portal.", Origin="https://portal.internal").status_code == 201
        assert upload(c, "q.txt", "From elsewhere.", Origin="https://elsewhere.example").status_code == 403


ATTACK_PAGE = """<!doctype html><title>cat pictures</title><script>
const target = %(target)s;
async function attack() {
  const form = new FormData();
  form.append("file", new Blob(["Walmart is bankrupt, says the attacker."], {type: "text/plain"}), "evil.txt");
  try { await fetch(target + "/v1/documents", {mode: "no-cors", method: "POST", body: form}); } catch (e) {}
  try { await fetch(target + "/v1/documents", {mode: "no-cors", method: "POST", body: "filename=x",
                     headers: {"Content-Type": "application/x-www-form-urlencoded"}}); } catch (e) {}
  let read = "blocked";
  try { const r = await fetch(target + "/v1/documents"); read = "read " + r.status; } catch (e) {}
  document.title = "done " + read;
}
attack();
</script>"""


class _AttackSite:
    """A second origin: another loopback port serving the attacker's page."""

    def __init__(self, root: Path) -> None:
        handler = lambda *a, **kw: http.server.SimpleHTTPRequestHandler(*a, directory=str(root), **kw)  # noqa: E731
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (apt-get install chromium)")
def test_in_chromium_a_page_on_another_origin_cannot_upload_or_read(seed_index: Path, tmp_path: Path) -> None:
    site_root = tmp_path / "site"
    site_root.mkdir()
    with serve_process(seed_index) as (_, url):
        (site_root / "index.html").write_text(ATTACK_PAGE % {"target": json.dumps(url)})
        site = _AttackSite(site_root)
        try:
            with browser(tmp_path / "profile") as b:
                b.page("Page.navigate", url=site.url + "/index.html")
                title = b.wait_for("document.title.startsWith('done') && document.title")
        finally:
            site.close()
        docs = httpx.get(url + "/v1/documents").json()
    assert title == "done blocked"  # the response to a cross-origin read is not readable (no CORS headers)
    assert [d["id"] for d in docs["documents"]] == [SEED_ID]  # and nothing was uploaded


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (apt-get install chromium)")
def test_in_chromium_a_dns_rebinding_page_gets_nothing(seed_index: Path, tmp_path: Path) -> None:
    with serve_process(seed_index) as (_, url):
        port = url.rsplit(":", 1)[1]
        # evil.test resolves to our loopback address, as a rebinding DNS server would make it.
        with browser(tmp_path / "profile", "--host-resolver-rules=MAP evil.test 127.0.0.1") as b:
            b.page("Page.navigate", url=f"http://evil.test:{port}/")
            body = b.wait_for("document.body && document.body.innerText")
            b.evaluate("fetch('/v1/documents').then(r => r.text()).then(t => { document.title = 'got ' + t; })")
            listing = b.wait_for("document.title.startsWith('got') && document.title")
    assert "misdirected_request" in str(body)
    assert "misdirected_request" in str(listing) and "seeds/" not in str(listing)


# ------------------------------------------------------------------ 3. keys have roles; owners keep what they made
def test_cli_indexed_documents_are_read_only_except_for_an_admin(keyed: ThreadServer) -> None:
    with keyed.client() as c:
        by_writer = c.delete(f"/v1/documents/{SEED_ID}", headers=bearer(WRITER))
        by_reader = c.delete(f"/v1/documents/{SEED_ID}", headers=bearer(READER))
        assert c.get("/v1/documents", headers=bearer(READER)).json()["count"] == 1
        by_admin = c.delete(f"/v1/documents/{SEED_ID}", headers=bearer(ADMIN))
    assert by_writer.status_code == 403 and "read-only over HTTP" in error_of(by_writer)["message"]
    assert by_reader.status_code == 403 and "role (read)" in error_of(by_reader)["message"]
    assert by_admin.status_code == 200


def test_uploads_belong_to_the_key_that_made_them(keyed: ThreadServer) -> None:
    with keyed.client() as c:
        assert upload(c, "notes.txt", "Alice's notes on widgets.", **bearer(WRITER)).status_code == 201
        replaced_by_other = upload(c, "notes.txt", "Bob overwrites it.", **bearer(OTHER))
        deleted_by_other = c.delete("/v1/documents/uploads/notes.txt", headers=bearer(OTHER))
        by_reader = upload(c, "r.txt", "A reader may not upload.", **bearer(READER))
        listing = {d["id"]: d for d in c.get("/v1/documents", headers=bearer(READER)).json()["documents"]}
        own_delete = c.delete("/v1/documents/uploads/notes.txt", headers=bearer(WRITER))
    assert replaced_by_other.status_code == 403 and "another key" in error_of(replaced_by_other)["message"]
    assert deleted_by_other.status_code == 403
    assert by_reader.status_code == 403
    assert listing["uploads/notes.txt"]["owner"] == "alice" and listing[SEED_ID]["owner"] is None
    assert own_delete.status_code == 200


def test_chat_sessions_are_private_to_their_key(keyed: ThreadServer) -> None:
    with keyed.client() as c:
        first = c.post("/v1/chat", json={"question": "What did Kroger do on Monday?", "session_id": "s1"},
                       headers=bearer(WRITER)).json()
        assert not first["refused"]
        # Another key on the same session id: a conversation of its own, so the follow-up has nothing to resolve.
        other = c.post("/v1/chat", json={"question": "And what about it?", "session_id": "s1"}, headers=bearer(OTHER)).json()
        mine = c.post("/v1/chat", json={"question": "Who did it hire?", "session_id": "s1"}, headers=bearer(WRITER)).json()
    assert other["standalone_question"] is None and "Kroger" not in json.dumps(other)
    assert mine["standalone_question"] and "Kroger" in mine["standalone_question"]


def test_briefing_jobs_are_visible_to_their_owner_and_admins_only(keyed: ThreadServer) -> None:
    with keyed.client() as c:
        job = c.post("/v1/briefings", json={"title": "mine"}, headers=bearer(WRITER)).json()
        assert c.post("/v1/briefings", json={}, headers=bearer(READER)).status_code == 403
        assert c.get(f"/v1/briefings/{job['id']}", headers=bearer(OTHER)).status_code == 404
        assert c.get(f"/v1/briefings/{job['id']}", headers=bearer(ADMIN)).status_code == 200
        done = wait_until(lambda: (r := c.get(f"/v1/briefings/{job['id']}", headers=bearer(WRITER)).json())["status"]
                          in ("succeeded", "failed") and r, what="the job to finish")
    assert done["status"] == "succeeded"


def test_a_malformed_api_keys_setting_is_a_one_line_error(seed_index: Path, tmp_path: Path) -> None:
    from conftest import run_cli

    result = run_cli("serve", "--port", "0", env={"RAG_INDEX": str(seed_index), "RAG_API_KEYS": "alice=:admin"})
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "RAG_API_KEYS entry 1 is malformed" in result.stderr and "Traceback" not in result.stderr


# ------------------------------------------------------------------ 4. wrong keys are throttled per address
def test_wrong_keys_are_throttled_per_client_address(seed_index: Path) -> None:
    settings = make_settings(seed_index, api_keys=KEYS, server={"rate_limit_per_minute": 5, "auth_failures_per_minute": 5})
    with ThreadServer(settings) as srv, srv.client() as c:
        codes = [c.get("/v1/documents", headers=bearer(f"guess-{i}")).status_code for i in range(60)]
        # Throttled before the key is looked at: a correct guess is not revealed either.
        right_key_meanwhile = c.get("/v1/documents", headers=bearer(ADMIN))
    assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}
    assert right_key_meanwhile.status_code == 429 and int(right_key_meanwhile.headers["retry-after"]) >= 1


# ------------------------------------------------------------------ 7. no paths in public messages
def test_readyz_and_failed_jobs_do_not_show_paths(seed_index: Path, tmp_path: Path) -> None:
    with serve_process(seed_index) as (_, url):
        assert httpx.get(url + "/readyz").status_code == 200
        seed_index.unlink()
        Path(f"{seed_index}-wal").unlink(missing_ok=True)
        seed_index.mkdir()  # the index file is gone and a directory stands in its way
        ready = httpx.get(url + "/readyz")
    assert ready.status_code == 503
    assert str(tmp_path) not in ready.text and "/" not in error_of(ready)["message"]


def test_public_messages_of_failures_carry_no_paths() -> None:
    from rag.errors import ConfigError, IndexStoreError, QueryError
    from rag.server.errors import public_message

    assert public_message(RuntimeError("boom at /very/secret/path/index.db")) == "internal error (see the server log)"
    assert "/srv" not in public_message(IndexStoreError("cannot open the index /srv/rag/index.db"))
    assert "/etc" not in public_message(ConfigError("bad prompt /etc/rag/prompts/x.j2"))
    assert public_message(QueryError("the query has no searchable words")) == "the query has no searchable words"


# ------------------------------------------------------------------ 11, 15, 17, 19: bad requests get 4xx
def test_bad_jsonl_lines_are_skipped_and_the_connection_survives(keyless: ThreadServer) -> None:
    lines = ['{"text": "\\ud800 lone surrogate"}', "[" * 100_000 + "]" * 100_000,
             '{"text": "big", "n": ' + "1" * 5000 + "}", '{"text": "A good line about gadgets."}']
    with keyless.client() as c:
        response = upload(c, "mixed.jsonl", "\n".join(lines))
        again = c.get("/v1/documents")  # the same keep-alive connection
    assert response.status_code == 201, response.text
    body = response.json()
    assert [d["id"] for d in body["documents"]] == ["uploads/mixed.jsonl:4"]
    reasons = [s["reason"] for s in body["skipped"]]
    assert reasons[0].startswith("jsonl line has an invalid \\u escape") and "nested too deeply" in reasons[1]
    assert "4300 digits" in reasons[2]
    assert again.status_code == 200


def test_a_non_ascii_file_name_keeps_its_type(keyless: ThreadServer) -> None:
    with keyless.client() as c:
        response = c.post("/v1/documents", files={"file": ("报告.txt", "年度报告：收入增长。".encode())},
                          headers={"X-Requested-With": "rag"})
    assert response.status_code == 201, response.text
    assert response.json()["documents"][0]["id"] == "uploads/报告.txt"


def test_malformed_json_without_a_key_is_401_not_400(keyed: ThreadServer) -> None:
    with keyed.client() as c:
        response = c.post("/v1/ask", content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 401


def test_two_parts_with_the_same_name_are_refused_and_nothing_is_indexed(keyless: ThreadServer) -> None:
    with keyless.client() as c:
        response = c.post("/v1/documents", headers={"X-Requested-With": "rag"},
                          files=[("file", ("dup.txt", b"first version")), ("file", ("dup.txt", b"second version"))])
        listing = [d["id"] for d in c.get("/v1/documents").json()["documents"]]
    assert response.status_code == 422 and "same name (dup.txt)" in error_of(response)["message"]
    assert "uploads/dup.txt" not in listing


def test_metrics_count_refused_requests(keyed: ThreadServer) -> None:
    with keyed.client() as c:
        c.get("/v1/documents")  # 401
        text = c.get("/metrics", headers=bearer(READER)).text
    assert 'route="refused"' in text and 'status="401"' in text
