"""Batch briefings with the openai backend: `rag brief` (a real subprocess) against a real local server.

The scripted model writes each StrategySummary from the prompt it received, quoting sentences of the
<source> text, and the cross-document briefing from the <summary> blocks, copying their citations.
What a document gets (a summary, a 500 forever, invalid JSON twice) is decided per request from the
document id in the prompt, so the server's request log says exactly which documents were (re)done.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from conftest import ROOT, run_cli
from fake_openai import (  # noqa: F401  (fake_openai is a fixture)
    Call, FakeOpenAI, Step, error, fake_openai, forever, json_reply, reply, server_error,
)
from rag.types import Briefing, StrategySummary

COMPANIES = [
    ("Acme Robotics", "warehouse robots", "Ohio"), ("Borealis Foods", "plant-based snacks", "Quebec"),
    ("Cobalt Freight", "rail logistics", "Texas"), ("Dunmore Bank", "small-business lending", "Ireland"),
    ("Eastwind Air", "regional flights", "Portugal"), ("Fernhill Pharma", "generic insulin", "India"),
    ("Granite Telecom", "rural fibre", "Montana"), ("Harbor Grocers", "same-day delivery", "Florida"),
    ("Ionic Motors", "electric buses", "Chile"), ("Juniper Health", "virtual clinics", "Arizona"),
    ("Keystone Steel", "green steel", "Sweden"), ("Lumen Apparel", "resale marketplaces", "Japan"),
    ("Mariner Insurance", "crop insurance", "Kenya"), ("Northgate Media", "sports streaming", "Brazil"),
    ("Orchard Software", "payroll tools", "Poland"), ("Pioneer Solar", "rooftop panels", "Spain"),
    ("Quarry Games", "mobile puzzles", "Korea"), ("Riverside Hotels", "budget hostels", "Vietnam"),
    ("Summit Outdoor", "rental gear", "Norway"),
]
TEMPLATE = """{name} expands into {market}
{name} said on Tuesday that it will expand into {market} over the next year.
The company plans to open new sites across {region} and to hire local teams there.
Executives at {name} described the move as a bet that demand for {market} will keep growing.
Analysts expect rivals in {region} to respond with price cuts and partnerships.
"""
SUMMARY_SYSTEM = "structured strategy summary of one news document"
BRIEFING_SYSTEM = "cross-document strategy briefing"
DOCUMENT = re.compile(r"^Document (\S+): (.*)$", re.M)
SOURCE = re.compile(r'<source id="(S\d+)" doc="([^"]*)">\n(.*?)\n</source>', re.S)
SUMMARY = re.compile(r'<summary doc_id="([^"]+)">\n(.*?)\n</summary>', re.S)
TITLE = re.compile(r'The title is "(.*)"\.')


def write_corpus(root: Path, *, binary: bool) -> Path:
    corpus = root / "corpus"
    corpus.mkdir(parents=True)
    for i, (name, market, region) in enumerate(COMPANIES):
        slug = name.lower().replace(" ", "-")
        (corpus / f"{i:02d}_{slug}.txt").write_text(TEMPLATE.format(name=name, market=market, region=region),
                                                    encoding="utf-8")
    if binary:
        (corpus / "19_garbage.txt").write_bytes(bytes(range(256)) * 40)
    else:
        (corpus / "19_tidewater-ports.txt").write_text(
            TEMPLATE.format(name="Tidewater Ports", market="container terminals", region="Ghana"), encoding="utf-8")
    return corpus


# ---------------------------------------------------------------- the scripted model
def document_of(body: dict[str, Any]) -> str | None:
    """The doc id of a summary request (the repair request repeats the same prompt), else None."""
    if SUMMARY_SYSTEM not in body["messages"][0]["content"]:
        return None
    found = DOCUMENT.search(body["messages"][1]["content"])
    return found.group(1) if found else None


def summary_reply(body: dict[str, Any]) -> dict[str, Any]:
    """A valid StrategySummary whose every item quotes a sentence of the <source> text it was sent."""
    user = body["messages"][1]["content"]
    doc_id, title = DOCUMENT.search(user).groups()
    sid, doc, text = SOURCE.search(user).groups()
    sentences = [line.strip() for line in text.splitlines()[1:] if len(line.strip()) > 20]
    company = title.split(" expands into ")[0]

    def item(statement: str, sentence: str) -> dict[str, Any]:
        return {"text": statement, "citations": [{"source": doc, "chunk_id": sid, "quote": sentence}]}

    return {"doc_id": doc_id, "title": title,
            "organisations": [{"name": company, "thesis": [item("Betting on sustained demand.", sentences[2])],
                               "moves": [item("Expanding into a new market.", sentences[0]),
                                         item("Opening new sites with local teams.", sentences[1])]}],
            "themes": [item("Expansion into new markets.", sentences[0])],
            "implications": [item("Rivals may respond with price cuts.", sentences[3])]}


def briefing_reply(body: dict[str, Any]) -> dict[str, Any]:
    """A Briefing built from the <summary> blocks, copying their verified citations unchanged."""
    summaries = [json.loads(js) for _, js in SUMMARY.findall(body["messages"][1]["content"])]
    lead = [s["organisations"][0]["thesis"][0] for s in summaries]
    return {"title": TITLE.search(body["messages"][0]["content"]).group(1),
            "executive_summary": lead[:3],
            "organisations": [{"name": s["organisations"][0]["name"], "thesis": s["organisations"][0]["thesis"],
                               "moves": s["organisations"][0]["moves"][:1]} for s in summaries],
            "sources": [{"doc_id": s["doc_id"], "source": s["doc_id"], "title": s["title"],
                         "summary": s["organisations"][0]["thesis"][0]} for s in summaries],
            "open_questions": [s["implications"][0] for s in summaries[:1]]}


class Model:
    """Serves every request; ``broken`` maps doc ids to "500" or "bad-json"."""

    def __init__(self) -> None:
        self.broken: dict[str, str] = {}

    def __call__(self, body: dict[str, Any]) -> Step:
        try:
            if BRIEFING_SYSTEM in body["messages"][0]["content"]:
                return json_reply(briefing_reply(body))
            doc_id = document_of(body)
            if self.broken.get(doc_id) == "500":
                return server_error(500)
            if self.broken.get(doc_id) == "bad-json":
                return reply('{"doc_id": "' + doc_id + '", "organisations": [ this is not JSON')
            return json_reply(summary_reply(body))
        except Exception as exc:  # a broken script shows up as a failure reason, not a hang
            return error(418, f"test script failed: {exc!r}")


def summary_requests(fake: FakeOpenAI, since: int = 0) -> Counter[str]:
    return Counter(d for r in fake.requests[since:] if (d := document_of(r.body)) is not None)


def briefing_requests(fake: FakeOpenAI, since: int = 0) -> int:
    return sum(BRIEFING_SYSTEM in r.messages[0]["content"] for r in fake.requests[since:])


def brief_env(fake: FakeOpenAI, tmp_path: Path) -> dict[str, str]:
    return {"RAG_INDEX": str(tmp_path / "index.db"), "RAG_BACKEND": "openai", "OPENAI_BASE_URL": fake.base_url,
            "OPENAI_API_KEY": "test", "RAG_CACHE": "off", "RAG_LLM__MAX_ATTEMPTS": "2",
            "RAG_LLM__MAX_RETRY_SECONDS": "5"}


def saved_summaries(out: Path) -> dict[str, StrategySummary]:
    found = {}
    for path in (out / "summaries").glob("*.json"):
        summary = StrategySummary.model_validate(json.loads(path.read_text(encoding="utf-8"))["summary"])
        found[summary.doc_id] = summary
    return found


# ---------------------------------------------------------------- failure isolation and resume
def test_failures_are_isolated_listed_and_a_rerun_redoes_only_them(fake_openai, tmp_path):
    corpus = write_corpus(tmp_path, binary=True)
    docs = sorted(f"corpus/{p.name}" for p in corpus.glob("*.txt") if "garbage" not in p.name)
    down, bad_json = docs[7], docs[12]
    model = Model()
    model.broken = {down: "500", bad_json: "bad-json"}
    fake_openai.script([forever(Call(model))])
    out = tmp_path / "out"

    first = run_cli("brief", str(corpus), "--out", str(out), "--json", "--concurrency", "4",
                    env=brief_env(fake_openai, tmp_path))
    assert first.returncode == 1, first.stderr
    run = json.loads(first.stdout)
    assert (run["documents"], run["summarized"], run["resumed"], run["failed"]) == (19, 17, 0, 3)
    reasons = {f["source"]: f["reason"] for f in run["failures"]}
    assert set(reasons) == {"corpus/19_garbage.txt", down, bad_json}
    assert reasons["corpus/19_garbage.txt"] == "binary file"
    assert "failed with status 500 after 2 attempts" in reasons[down]
    assert "did not fit StrategySummary even after a repair retry" in reasons[bad_json]
    # Requests per document: one each, two for the 500 (retried once), two for the bad JSON (one repair).
    sent = summary_requests(fake_openai)
    assert sent == Counter({d: 1 for d in docs} | {down: 2, bad_json: 2})
    repair = [r for r in fake_openai.requests if document_of(r.body) == bad_json][1]
    assert [m["role"] for m in repair.messages] == ["system", "user", "assistant", "user"]
    assert briefing_requests(fake_openai) == 1

    # What the user sees: 17 summaries on disk, a model-written briefing over them, the 3 failures listed.
    assert set(saved_summaries(out)) == set(docs) - {down, bad_json}
    briefing = Briefing.model_validate_json((out / "briefing.json").read_text(encoding="utf-8"))
    assert len(briefing.sources) == 17 and briefing.executive_summary and len(briefing.organisations) == 17
    assert all(o.documents and len(o.silent) == 16 for o in briefing.organisations)  # counted from the documents
    assert {f.source for f in briefing.failures} == set(reasons)  # no "(briefing)" failure: synthesis worked
    assert briefing.backend == "openai" and briefing.usage.calls >= 17 + 1
    markdown = (out / "briefing.md").read_text(encoding="utf-8")
    assert "## Executive summary" in markdown and "## Failures" in markdown and "binary file" in markdown

    # The server is fixed: only the two model failures are summarized again; the binary file still fails.
    model.broken = {}
    before = len(fake_openai.requests)
    second = run_cli("brief", str(corpus), "--out", str(out), "--json", "--concurrency", "4",
                     env=brief_env(fake_openai, tmp_path))
    assert second.returncode == 1, second.stderr
    run = json.loads(second.stdout)
    assert (run["summarized"], run["resumed"], run["failed"]) == (2, 17, 1)
    assert [(f["source"], f["reason"]) for f in run["failures"]] == [("corpus/19_garbage.txt", "binary file")]
    assert summary_requests(fake_openai, before) == Counter({down: 1, bad_json: 1})
    assert briefing_requests(fake_openai, before) == 1
    assert set(saved_summaries(out)) == set(docs)
    briefing = Briefing.model_validate_json((out / "briefing.json").read_text(encoding="utf-8"))
    assert len(briefing.sources) == 19


def test_a_killed_batch_resumes_without_redoing_completed_documents(fake_openai, tmp_path):
    corpus = write_corpus(tmp_path, binary=False)
    docs = {f"corpus/{p.name}" for p in corpus.glob("*.txt")}
    fake_openai.script([forever(Call(Model()))])
    fake_openai.delay = 0.3  # every response takes 300 ms, so the batch is mid-way when we kill it
    out = tmp_path / "out"
    env = os.environ | brief_env(fake_openai, tmp_path)
    command = [sys.executable, "-m", "rag", "brief", str(corpus), "--out", str(out), "--json", "--concurrency", "2"]
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while len(list((out / "summaries").glob("*.json"))) < 4:
            assert proc.poll() is None, f"the batch ended before it could be killed: {proc.stderr.read()!r}"
            assert time.monotonic() < deadline, "no summaries appeared"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    done_before = set(saved_summaries(out))  # read after the process is gone: exactly what was completed
    assert 4 <= len(done_before) < len(docs)
    assert not (out / "briefing.json").exists()

    fake_openai.delay = 0.0
    before = len(fake_openai.requests)
    again = run_cli("brief", str(corpus), "--out", str(out), "--json", "--concurrency", "2",
                    env=brief_env(fake_openai, tmp_path))
    assert again.returncode == 0, again.stderr
    run = json.loads(again.stdout)
    assert (run["documents"], run["resumed"], run["summarized"], run["failed"]) == (20, len(done_before),
                                                                                   20 - len(done_before), 0)
    redone = summary_requests(fake_openai, before)
    assert not set(redone) & done_before  # completed documents were not asked for again
    assert set(redone) == docs - done_before and set(redone.values()) == {1}
    assert set(saved_summaries(out)) == docs
    briefing = Briefing.model_validate_json((out / "briefing.json").read_text(encoding="utf-8"))
    assert len(briefing.sources) == 20 and briefing.failures == []
