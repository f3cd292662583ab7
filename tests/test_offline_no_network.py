"""With no key, every command runs on the offline engine and never opens a network connection.

The CLI runs in a subprocess whose sockets are blocked by a ``sitecustomize`` on PYTHONPATH: any
connect, create_connection or DNS lookup raises and is recorded in a file, so an attempt shows up
even if the code under test swallowed the error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, SEEDS, run_cli

GUARD = '''
import atexit, errno, os, socket, sys

_LOG = os.environ["NO_NETWORK_LOG"]


def _record(what, detail):
    with open(_LOG, "a", encoding="utf-8") as f:
        f.write(f"{os.getpid()} {' '.join(sys.argv[:3])}: {what} {detail!r}\\n")


def _connect(self, address):
    _record("connect", address)
    raise OSError(errno.ENETUNREACH, "network blocked by test")


def _connect_ex(self, address):
    _record("connect_ex", address)
    return errno.ENETUNREACH


def _create_connection(address, *args, **kwargs):
    _record("create_connection", address)
    raise OSError(errno.ENETUNREACH, "network blocked by test")


def _getaddrinfo(host, port, *args, **kwargs):
    _record("getaddrinfo", (host, port))
    raise socket.gaierror(socket.EAI_NONAME, "name resolution blocked by test")


socket.socket.connect = _connect
socket.socket.connect_ex = _connect_ex
socket.create_connection = _create_connection
socket.getaddrinfo = _getaddrinfo


@atexit.register
def _sdk_imported():
    if "openai" in sys.modules:
        _record("import", "openai")
'''


@pytest.fixture
def no_network(tmp_path: Path) -> tuple[dict[str, str], Path]:
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(GUARD, encoding="utf-8")
    log = tmp_path / "network.log"
    path = os.pathsep.join(p for p in (str(hook), os.environ.get("PYTHONPATH", "")) if p)
    # An empty HOME and cache dir: nothing downloaded earlier into ~/.cache can stand in for the network.
    home = tmp_path / "home"
    home.mkdir()
    return {"PYTHONPATH": path, "NO_NETWORK_LOG": str(log), "HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache"),
            "TIKTOKEN_CACHE_DIR": str(home / "tiktoken")}, log


def attempts(log: Path) -> list[str]:
    return log.read_text(encoding="utf-8").splitlines() if log.exists() else []


def test_the_guard_blocks_and_records_connections(no_network):
    env, log = no_network
    probe = ("import socket\n"
             "for fn in (lambda: socket.create_connection(('127.0.0.1', 9), timeout=1),\n"
             "           lambda: socket.socket().connect(('127.0.0.1', 9)),\n"
             "           lambda: socket.getaddrinfo('example.com', 443)):\n"
             "    try:\n"
             "        fn()\n"
             "    except OSError as err:\n"
             "        print('blocked', err)\n")
    result = subprocess.run([sys.executable, "-c", probe], env=os.environ | env, cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and all(line.startswith("blocked") and "blocked by test" in line for line in lines), result.stderr
    assert [line.split(": ", 1)[1].split()[0] for line in attempts(log)] == ["create_connection", "connect",
                                                                              "getaddrinfo"]


def test_index_ask_brief_summarize_run_offline_with_no_connection(no_network, tmp_path):
    env, log = no_network
    assert not any(k.startswith(("RAG_", "OPENAI_")) and k != "RAG_INDEX" for k in os.environ)  # no key anywhere

    indexed = run_cli("index", str(SEEDS), "--json", env=env)
    assert indexed.returncode == 0, indexed.stderr
    assert json.loads(indexed.stdout)["indexed"] == 1

    asked = run_cli("ask", "What is Walmart's model?", "--json", env=env)
    assert asked.returncode == 0, asked.stderr
    answer = json.loads(asked.stdout)
    assert answer["backend"] == "offline" and not answer["refused"] and answer["citations"]
    assert "service network" in answer["answer"]

    out = tmp_path / "out"
    briefed = run_cli("brief", str(SEEDS), "--out", str(out), "--json", env=env)
    assert briefed.returncode == 0, briefed.stderr
    run = json.loads(briefed.stdout)
    assert (run["summarized"], run["failed"]) == (1, 0)
    briefing = json.loads((out / "briefing.json").read_text(encoding="utf-8"))
    assert briefing["backend"] == "offline" and briefing["sources"]

    summarized = run_cli("summarize", "--json", env=env)
    assert summarized.returncode == 0, summarized.stderr
    [summary] = json.loads(summarized.stdout)
    assert summary["backend"] == "offline" and {p["name"] for p in summary["organisations"]} >= {"Amazon", "Walmart"}

    assert attempts(log) == []  # no connection, no DNS lookup, and the openai SDK was never imported


def test_the_embedding_model_ships_in_its_package_and_loads_with_no_connection(no_network):
    """wordllama's weights and tokenizer are files of the installed wheel (its RECORD lists them), and loading
    them opens no connection and reads no cache."""
    env, log = no_network
    probe = (
        "import importlib.metadata as md, json\n"
        "files = [str(f) for f in md.files('wordllama')]\n"
        "from rag.embed import get_embedder, word_similarity\n"
        "e = get_embedder()\n"
        "v = e.embed(['The bank closes 31 branches.', 'Branch closures at the bank.', 'A recipe for lemon cake.'])\n"
        "print(json.dumps({'weights': [f for f in files if f.endswith(('.safetensors', 'tokenizer_config.json'))],\n"
        "                  'near': float(v[0] @ v[1]), 'far': float(v[0] @ v[2]),\n"
        "                  'extend': word_similarity('expand', 'extend'), 'banana': word_similarity('expand', 'banana')}))\n")
    result = subprocess.run([sys.executable, "-c", probe], env=os.environ | env, cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert "wordllama/weights/l2_supercat_256.safetensors" in out["weights"]
    assert "wordllama/tokenizers/l2_supercat_tokenizer_config.json" in out["weights"]
    assert out["near"] > out["far"] and out["extend"] > out["banana"]
    assert attempts(log) == []
