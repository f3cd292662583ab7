"""Starting `rag serve` in a subprocess for the end-to-end tests (server API and web page)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from conftest import ROOT


@contextmanager
def serve_process(index: Path | str, *args: str, env: dict[str, str] | None = None) -> Iterator[tuple[subprocess.Popen, str]]:
    """`rag serve --port 0 --json` in a subprocess; yields the process and its URL (from its first stdout line)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("RAG_", "OPENAI_"))}
    full_env |= {"RAG_INDEX": str(index), "PYTHONUNBUFFERED": "1"} | (env or {})
    proc = subprocess.Popen([sys.executable, "-m", "rag", "serve", "--port", "0", "--json", "--log-level", "warning", *args],
                            cwd=ROOT, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line, f"rag serve printed nothing; stderr: {proc.stderr.read() if proc.stderr else ''}"
        url = json.loads(line)["url"]
        wait_until(lambda: _healthy(url), what="rag serve to answer /healthz")
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url + "/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until(check, *, what: str, timeout: float = 60.0, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")
