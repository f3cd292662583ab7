"""Strategy summaries and batch briefings offline: verbatim citations, schema, resume, failure isolation."""

from __future__ import annotations

import json
import re
from pathlib import Path

from conftest import SEED_FILE, SEEDS, run_cli
from rag.briefing import merge_summaries, verify_summary
from rag.context import context_from_chunks
from rag.chunk import Chunker
from rag.ingest import make_document
from rag.types import Briefing, Citation, CitedItem, PlayerMoves, StrategySummary

ARTICLE = SEED_FILE.read_text(encoding="utf-8")


def all_citations(briefing: Briefing):
    for item in briefing.executive_summary:
        yield from item.citations
    for section in briefing.sections:
        for point in section.points:
            yield from point.citations
    for s in briefing.sources:
        yield from s.summary.citations


def test_brief_seeds_offline_writes_readable_markdown_and_valid_json(tmp_path):
    out = tmp_path / "out"
    result = run_cli("brief", str(SEEDS), "--out", str(out))
    assert result.returncode == 0, result.stderr
    briefing = Briefing.model_validate_json((out / "briefing.json").read_text())
    cites = list(all_citations(briefing))
    assert cites
    for c in cites:
        assert ARTICLE[c.start:c.end] == c.quote
    md = (out / "briefing.md").read_text()
    assert md.startswith("# ") and "## Executive summary" in md and "## Amazon" in md and "## Walmart" in md
    # Every footnote quote in the Markdown is verbatim in the article (modulo whitespace).
    quotes = re.findall(r'^\[\^\d+\]: .*?: "(.*)"$', md, re.M)
    assert quotes and all(" ".join(q.split()) in " ".join(ARTICLE.replace('"', "'").split()) for q in quotes)
    assert len(list((out / "summaries").glob("*.json"))) == 1


def test_offline_summary_covers_the_article_strategy(tmp_path):
    result = run_cli("brief", str(SEEDS), "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    summary_file = next((tmp_path / "out" / "summaries").glob("*.json"))
    summary = StrategySummary.model_validate(json.loads(summary_file.read_text())["summary"])
    players = {p.name: " ".join([p.model.text if p.model else ""] + [m.text for m in p.moves]) for p in summary.players}
    assert {"Amazon", "Walmart"} <= set(players)
    for point in ("technological layers", "prescription delivery", "satellite", "training data"):
        assert point in players["Amazon"]
    for point in ("service network", "healthcare", "affordability", "part clinic"):
        assert point in players["Walmart"]


def test_rerun_resumes_and_force_redoes(tmp_path):
    out = tmp_path / "out"
    first = run_cli("brief", str(SEEDS), "--out", str(out), "--json")
    assert json.loads(first.stdout)["summarized"] == 1
    again = json.loads(run_cli("brief", str(SEEDS), "--out", str(out), "--json").stdout)
    assert again["summarized"] == 0 and again["resumed"] == 1
    forced = json.loads(run_cli("brief", str(SEEDS), "--out", str(out), "--json", "--force").stdout)
    assert forced["summarized"] == 1


def test_bad_files_are_isolated_listed_and_make_the_exit_code_non_zero(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "article.txt").write_text(ARTICLE, encoding="utf-8")
    (corpus / "garbage.txt").write_bytes(bytes(range(256)) * 40)
    (corpus / "empty.md").write_text("")
    result = run_cli("brief", str(corpus), "--out", str(tmp_path / "out"), "--json")
    assert result.returncode == 1
    data = json.loads(result.stdout)
    reasons = {f["source"]: f["reason"] for f in data["failures"]}
    assert reasons == {"corpus/garbage.txt": "binary file", "corpus/empty.md": "empty file"}
    briefing = Briefing.model_validate_json((tmp_path / "out" / "briefing.json").read_text())
    assert {f.source for f in briefing.failures} == set(reasons) and briefing.sections
    assert "## Failures" in (tmp_path / "out" / "briefing.md").read_text()


def test_items_whose_citations_fail_are_dropped_never_shown():
    doc = make_document(ARTICLE, doc_id="a.txt", source="a.txt")
    context = context_from_chunks(Chunker().chunk(doc), source="a.txt")
    good = Citation(source="a.txt", chunk_id="S1", quote="Amazon is scaling same-day prescription delivery")
    bad = Citation(source="a.txt", chunk_id="S1", quote="Amazon is buying Walmart for $90 billion")
    summary = StrategySummary(doc_id="a.txt", players=[
        PlayerMoves(name="Amazon", moves=[CitedItem(text="scales delivery", citations=[good]),
                                          CitedItem(text="buys Walmart", citations=[bad])]),
        PlayerMoves(name="Costco", moves=[CitedItem(text="invented", citations=[bad])]),
    ], themes=[CitedItem(text="no citation at all")])
    verified = verify_summary(summary, context)
    assert [p.name for p in verified.players] == ["Amazon"]
    assert [m.text for m in verified.players[0].moves] == ["scales delivery"]
    assert verified.themes == [] and verified.dropped_items == 3
    assert verified.players[0].moves[0].citations[0].start == ARTICLE.index("Amazon is scaling")


def test_merge_summaries_unions_players_and_drops_repeats():
    item = CitedItem(text="x", citations=[])
    a = StrategySummary(doc_id="d", players=[PlayerMoves(name="A", moves=[item])], themes=[item])
    b = StrategySummary(doc_id="d", players=[PlayerMoves(name="A", moves=[item, CitedItem(text="y")]),
                                             PlayerMoves(name="B", moves=[CitedItem(text="z")])])
    merged = merge_summaries([a, b])
    assert [(p.name, [m.text for m in p.moves]) for p in merged.players] == [("A", ["x", "y"]), ("B", ["z"])]
    assert merged.themes == []  # "x" was already used as a move


def test_summarize_cli_markdown_and_unknown_document(seeded_index):
    result = run_cli("summarize")
    assert result.returncode == 0, result.stderr
    assert "## Amazon" in result.stdout and "**Model.**" in result.stdout
    missing = run_cli("summarize", "nope/*.txt")
    assert missing.returncode == 1 and "no indexed document" in missing.stderr
