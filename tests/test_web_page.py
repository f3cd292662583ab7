"""The chat page in a real headless Chromium: it asks a question, streams the answer, shows the citation.

The page auto-asks its ``?q=`` parameter. Chromium is driven over the DevTools protocol on a pipe
(``--remote-debugging-pipe``: NUL-separated JSON on fds 3 and 4), so no driver or websocket client is
needed, and the test waits for the page to say it is done (``data-state``) instead of for a time.
"""

from __future__ import annotations

import base64
import json
import html
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from browser import CHROMIUM, browser
from conftest import SEED_FILE, SEEDS, run_cli
from servers import serve_process, wait_until

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (apt-get install chromium)")]

QUESTION = "What did Kroger do on Monday?"
QUOTE = "Kroger on Monday (Feb. 9) hired a former Walmart U.S. CEO"


@contextmanager
def serve(index: Path, **env: str) -> Iterator[str]:
    """`rag serve` in a subprocess, ready to answer; yields its URL."""
    with serve_process(index, env=env) as (_, url):
        wait_until(lambda: _ready(url), what="rag serve to be ready")
        yield url


def _ready(url: str) -> bool:
    try:
        return httpx.get(url + "/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    index = tmp_path_factory.mktemp("web") / "index.db"
    result = run_cli("index", str(SEEDS), env={"RAG_INDEX": str(index)})
    assert result.returncode == 0, result.stderr
    return index


def _text(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


FINISHED = "(() => { const t = document.querySelector('.turn'); return t && ['done', 'error'].includes(t.dataset.state) && t.dataset.state; })()"


def test_page_streams_an_answer_with_an_expandable_cited_quote(seeded: Path, tmp_path: Path) -> None:
    with serve(seeded) as url, browser(tmp_path / "profile") as b:
        b.page("Page.navigate", url=f"{url}/?q={quote(QUESTION)}")
        assert b.wait_for(FINISHED) == "done", b.evaluate("document.querySelector('.turn').innerText")
        b.wait_for("!document.getElementById('status').textContent.includes('connecting')")
        dom = str(b.evaluate("document.documentElement.outerHTML"))
        shot = b.page("Page.captureScreenshot", format="png")["data"]
    (tmp_path / "page.png").write_bytes(base64.b64decode(shot))

    body = re.search(r'<article class="turn" data-state="done">(.*?)</article>', dom, re.S).group(1)
    assert _text(re.search(r'<div class="question">(.*?)</div>', body, re.S).group(1)) == QUESTION
    answer = _text(re.search(r'<div class="text">(.*?)</div>', body, re.S).group(1))
    assert QUOTE in answer
    # The extractive answer is its quote: shown once, with its source and "quoted above", not twice.
    citation = re.search(r'<div class="citation">(.*?)</div></section>', body, re.S)
    assert citation, body
    assert f"seeds/{SEED_FILE.name}" in _text(re.search(r'<span class="src">(.*?)</span>', citation.group(1)).group(1))
    assert '<span class="quoted">quoted above</span>' in citation.group(1) and "<blockquote" not in body
    assert _text(body).count(QUOTE) == 1 and answer in SEED_FILE.read_text(encoding="utf-8")
    assert "1 document · offline" in _text(dom)
    assert (tmp_path / "page.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_page_asks_for_a_key_when_the_server_needs_one(seeded: Path, tmp_path: Path) -> None:
    with serve(seeded, RAG_API_KEYS="page-key") as url, browser(tmp_path / "profile") as b:
        b.page("Page.navigate", url=f"{url}/?q={quote(QUESTION)}")
        b.wait_for("typeof pending === 'string'")  # the 401 came back: the question waits for a key
        assert b.evaluate("document.getElementById('key-form').hidden") is False
        assert b.evaluate("document.querySelector('.turn')") is None
        b.evaluate("document.getElementById('key').value = 'page-key'")
        b.evaluate("document.getElementById('key-form').requestSubmit()")
        assert b.wait_for(FINISHED) == "done"  # asked again, with the key
        assert QUOTE in str(b.evaluate("document.querySelector('.turn .text').textContent"))


# Network off for the page: every host name fails to resolve except the loopback address the server is on,
# and any proxied request goes nowhere. A page that needs a CDN renders blank here.
OFFLINE = ("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--proxy-server=http://127.0.0.1:9",
           "--proxy-bypass-list=127.0.0.1")
RESOURCES = ("JSON.stringify(performance.getEntriesByType('resource').map(e => "
             "({url: e.name, type: e.initiatorType, bytes: e.transferSize, status: e.responseStatus})))")


@pytest.mark.parametrize("path, rendered", [
    ("/docs", "document.querySelectorAll('.swagger-ui .opblock').length > 5 && "
              "document.querySelector('.swagger-ui .info .title').textContent"),
    ("/redoc", "document.querySelectorAll('[data-section-id]').length > 5 && document.querySelector('h1').textContent"),
])
def test_api_docs_render_with_the_network_off(seeded: Path, tmp_path: Path, path: str, rendered: str) -> None:
    with serve(seeded) as url, browser(tmp_path / "profile", *OFFLINE) as b:
        b.page("Page.navigate", url=url + path)
        title = b.wait_for(rendered)
        loaded = json.loads(str(b.evaluate(RESOURCES)))
        shot = b.page("Page.captureScreenshot", format="png")["data"]
    (tmp_path / "docs.png").write_bytes(base64.b64decode(shot))
    assert str(title).startswith("rag")  # the spec's title, rendered by the local Swagger UI or ReDoc
    assert any(r["url"] == url + "/openapi.json" and r["status"] == 200 for r in loaded), loaded
    # Nothing came from anywhere else: ReDoc's footer logo (cdn.redoc.ly) is tried, and blocked by the page's CSP.
    outside = [r for r in loaded if not r["url"].startswith(url + "/")]
    assert all(r["status"] == 0 and r["bytes"] == 0 and r["type"] == "img" for r in outside), outside
