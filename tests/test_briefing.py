"""Strategy summaries and batch briefings offline: verbatim citations, schema, resume, failure isolation, and what
the offline engine reads (organisations, theses, figures, people, dates, open questions)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import SEED_FILE, SEEDS, run_cli
from rag.backends.offline_summary import build_briefing, summarize_document
from rag.briefing import merge_summaries, verify_summary
from rag.chunk import Chunker
from rag.context import context_from_chunks
from rag.evaluate.assertions import repeated_share, ungrounded_figures
from rag.ingest import make_document
from rag.render import briefing_markdown
from rag.types import (
    OUTPUT_SCHEMA_VERSION, Briefing, Citation, CitedItem, DatedItem, FigureItem, Organisation, StrategySummary,
)

ARTICLE = SEED_FILE.read_text(encoding="utf-8")


def all_citations(briefing: Briefing):
    orgs = briefing.organisations
    items = (list(briefing.executive_summary) + [t for o in orgs for t in o.thesis] + [m for o in orgs for m in o.moves]
             + [r for o in orgs for r in o.results] + [f for o in orgs for f in o.figures] + [p for o in orgs for p in o.people]
             + list(briefing.contrasts) + list(briefing.timeline) + list(briefing.themes) + list(briefing.implications)
             + list(briefing.open_questions) + [s.summary for s in briefing.sources])
    for item in items:
        yield from item.citations


@pytest.fixture(scope="module")
def seed_brief(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("brief") / "out"
    result = run_cli("brief", str(SEEDS), "--out", str(out))
    assert result.returncode == 0, result.stderr
    return out


def test_brief_seeds_offline_writes_readable_markdown_and_valid_json(seed_brief):
    briefing = Briefing.model_validate_json((seed_brief / "briefing.json").read_text())
    assert briefing.schema_version == OUTPUT_SCHEMA_VERSION
    cites = list(all_citations(briefing))
    assert cites
    for c in cites:
        assert ARTICLE[c.start:c.end] == c.quote
    md = (seed_brief / "briefing.md").read_text()
    assert md.startswith("# ") and "## Executive summary" in md and "## Amazon" in md and "## Walmart" in md
    assert md.index("**Strategy**", md.index("## Amazon")) < md.index("**Moves**", md.index("## Amazon"))  # thesis first
    # Footnotes quote what the page does not already show; every quote they give is verbatim in the article.
    quotes = re.findall(r'^\[\^\d+\]: .*?: "(.*)"$', md, re.M)
    assert all(" ".join(q.split()) in " ".join(ARTICLE.replace('"', "'").split()) for q in quotes)
    assert len(list((seed_brief / "summaries").glob("*.json"))) == 1


def test_the_seed_briefing_covers_both_models_their_moves_kroger_and_the_stakes(seed_brief):
    briefing = Briefing.model_validate_json((seed_brief / "briefing.json").read_text())
    orgs = {o.name: o for o in briefing.organisations}
    assert {"Amazon", "Walmart", "Kroger"} <= set(orgs)
    thesis = {n: " ".join(t.text for t in o.thesis) for n, o in orgs.items()}
    assert "technological layers" in thesis["Amazon"] and "service network" in thesis["Walmart"]
    md = (seed_brief / "briefing.md").read_text()
    for point in ("prescription delivery", "satellite", "training data", "healthcare", "affordability", "part clinic",
                  "hired a former Walmart U.S. CEO", "platform war", "rails beneath modern consumption"):
        assert point in md, point
    # A narrative aside is not a move of anyone: "The old story was a simple one: Amazon disrupted retail."
    # Nor is the background it sets up ("Walmart defended it with scale and stores."), nor a top point.
    background = ("old story", "disrupted retail", "defended it with scale")
    assert not any(b in m.text for b in background for o in briefing.organisations for m in o.moves)
    assert not any(b in p.text for b in background for p in briefing.executive_summary)
    # The executive summary is chosen, and its sentences are not repeated below it.
    assert 3 <= len(briefing.executive_summary) <= 5
    share, repeated = repeated_share(md)
    assert share <= 0.10, repeated
    assert ungrounded_figures(md, ARTICLE) == []


def test_rerun_resumes_and_force_redoes(tmp_path):
    out = tmp_path / "out"
    first = run_cli("brief", str(SEEDS), "--out", str(out), "--json")
    assert json.loads(first.stdout)["summarized"] == 1
    again = json.loads(run_cli("brief", str(SEEDS), "--out", str(out), "--json").stdout)
    assert again["summarized"] == 0 and again["resumed"] == 1
    forced = json.loads(run_cli("brief", str(SEEDS), "--out", str(out), "--json", "--force").stdout)
    assert forced["summarized"] == 1


def test_a_summary_of_another_schema_version_is_redone_not_resumed(tmp_path):
    out = tmp_path / "out"
    assert run_cli("brief", str(SEEDS), "--out", str(out)).returncode == 0
    path = next((out / "summaries").glob("*.json"))
    saved = json.loads(path.read_text())
    saved["summary"]["schema_version"] = OUTPUT_SCHEMA_VERSION - 1  # as an older rag would have left it
    path.write_text(json.dumps(saved))
    again = json.loads(run_cli("brief", str(SEEDS), "--out", str(out), "--json").stdout)
    assert (again["summarized"], again["resumed"]) == (1, 0)
    assert json.loads(path.read_text())["summary"]["schema_version"] == OUTPUT_SCHEMA_VERSION


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
    assert {f.source for f in briefing.failures} == set(reasons) and briefing.organisations
    assert "## Failures" in (tmp_path / "out" / "briefing.md").read_text()


def _context(text: str, source: str = "a.txt"):
    doc = make_document(text, doc_id=source, source=source)
    return context_from_chunks(Chunker().chunk(doc), source=source)


def _briefing_of(text: str) -> Briefing:
    """The offline briefing of one document, its summary verified as `rag brief` verifies it."""
    ctx = _context(text)
    return build_briefing("B", [verify_summary(summarize_document("a.txt", "A", ctx), ctx)],
                          {"a.txt": {"source": "a.txt", "text": text}})


def test_items_whose_citations_fail_are_dropped_never_shown():
    context = _context(ARTICLE)
    good = Citation(source="a.txt", chunk_id="S1", quote="Amazon is scaling same-day prescription delivery")
    bad = Citation(source="a.txt", chunk_id="S1", quote="Amazon is buying Walmart for $90 billion")
    summary = StrategySummary(doc_id="a.txt", organisations=[
        Organisation(name="Amazon", moves=[DatedItem(text="scales delivery", citations=[good]),
                                           DatedItem(text="buys Walmart", citations=[bad])],
                     figures=[FigureItem(value="$90 billion", text="a price", citations=[good])]),
        Organisation(name="Costco", moves=[DatedItem(text="invented", citations=[bad])]),
    ], themes=[CitedItem(text="no citation at all")])
    verified = verify_summary(summary, context)
    assert [o.name for o in verified.organisations] == ["Amazon"]
    assert [m.text for m in verified.organisations[0].moves] == ["scales delivery"]
    # A figure the quote it cites does not state is dropped too.
    assert verified.organisations[0].figures == []
    assert verified.themes == [] and verified.dropped_items == 4
    assert verified.organisations[0].moves[0].citations[0].start == ARTICLE.index("Amazon is scaling")


def test_merge_summaries_unions_organisations_and_drops_repeats():
    item = DatedItem(text="x", citations=[])
    a = StrategySummary(doc_id="d", organisations=[Organisation(name="A", moves=[item])], themes=[CitedItem(text="x")])
    b = StrategySummary(doc_id="d", organisations=[Organisation(name="A", moves=[item, DatedItem(text="y")]),
                                                   Organisation(name="B", moves=[DatedItem(text="z")])])
    merged = merge_summaries([a, b])
    assert [(o.name, [m.text for m in o.moves]) for o in merged.organisations] == [("A", ["x", "y"]), ("B", ["z"])]
    assert merged.themes == []  # "x" was already used as a move


def test_summarize_cli_markdown_and_unknown_document(seeded_index):
    result = run_cli("summarize")
    assert result.returncode == 0, result.stderr
    assert "## Amazon" in result.stdout and "**Strategy**" in result.stdout
    missing = run_cli("summarize", "nope/*.txt")
    assert missing.returncode == 1 and "no indexed document" in missing.stderr


# ------------------------------------------------------------------ what the offline engine reads
RIVALS = """Pelham Cargo Systems (PCS) agreed on March 3 to sell its Baltic ferry unit to Orwell Maritime for $410 million.

PCS's plan: focus on rail freight in the interior and cut debt. Chief Executive Dana Whitfield said the sale would close in the third quarter.

Orwell Maritime will pay PCS $410 million in cash, and it will keep the unit's 1,200 staff. Orwell's approach is to buy routes that rivals no longer want and run them more cheaply.

Revenue at PCS fell 4% to $2.1 billion last year. Still, Analysts at Carrow Research called the price fair.

The deal needs approval from the Baltic Competition Board, which is expected to rule by June.
"""


def test_organisations_theses_figures_people_and_open_questions_from_one_article():
    context = _context(RIVALS, "rivals.txt")
    summary = verify_summary(summarize_document("rivals.txt", "Rivals", context), context)
    orgs = {o.name: o for o in summary.organisations}
    pcs, orwell = orgs["Pelham Cargo Systems"], orgs["Orwell Maritime"]
    assert "PCS" in pcs.aliases  # the acronym joins its long form
    assert "rail freight" in pcs.thesis[0].text and "buy routes" in orwell.thesis[0].text
    assert [(p.name, p.role) for p in pcs.people] == [("Dana Whitfield", "Chief Executive")]
    assert not {"Dana Whitfield", "Still", "Analysts", "Chief Executive"} & set(orgs)  # never an organisation
    # "Orwell Maritime will pay PCS $410 million": the payment is Orwell's; PCS's own figure is its revenue.
    assert "$410 million" in {f.value for f in orwell.figures}
    assert {"$2.1 billion", "4%"} <= {f.value for f in pcs.figures}
    assert any("fell 4%" in r.text for r in pcs.results)
    assert [q.citations[0].quote for q in summary.open_questions] == [
        "The deal needs approval from the Baltic Competition Board, which is expected to rule by June."]
    assert [t.date for t in summary.timeline][:1] == ["March 3"]


def test_briefing_merges_an_organisation_named_differently_across_documents_and_says_where_it_is_absent():
    one = _context(RIVALS, "one.txt")
    two = _context("Orwell Maritime said on May 2 that it had hired 300 crew for its new Baltic routes. Orwell "
                   "wants to double its fleet by 2028.", "two.txt")
    summaries = [verify_summary(summarize_document("one.txt", "One", one), one),
                 verify_summary(summarize_document("two.txt", "Two", two), two)]
    texts = {"one.txt": {"source": "one.txt", "text": RIVALS}, "two.txt": {"source": "two.txt", "text": two[0].chunk.text}}
    briefing = build_briefing("B", summaries, texts)
    names = [o.name for o in briefing.organisations]
    assert names.count("Orwell Maritime") == 1 and "Orwell" not in names
    orwell = next(o for o in briefing.organisations if o.name == "Orwell Maritime")
    assert set(orwell.documents) == {"one.txt", "two.txt"}
    pcs = next(o for o in briefing.organisations if o.name == "Pelham Cargo Systems")
    assert pcs.silent == ["two.txt"]
    assert "Pelham Cargo Systems" in briefing.executive_summary[0].text  # the rivals' theses side by side, first
    assert [e.date for e in briefing.timeline][:2] == ["March 3", "May 2"]
    md = briefing_markdown(briefing)
    assert "| organisation | not mentioned in |" in md and " | two.txt |" in md and "| date | organisation | event | source |" in md


def test_an_organisation_that_only_says_what_it_will_do_has_that_as_its_strategy() -> None:
    text = ("Tarrow Bikes opened a shop in Leeds on March 2, its ninth. Tarrow Bikes will open repair hubs in its shops and "
            "sell refurbished bikes through them. Tarrow Bikes hired 60 mechanics in April. Brisco Cycles cut its prices "
            "on May 5. Brisco Cycles' plan is to sell only online. Brisco Cycles closed two warehouses in June. Brisco "
            "Cycles will open a delivery hub in Leeds.")
    briefing = _briefing_of(text)
    tarrow = next(o for o in briefing.organisations if o.name == "Tarrow Bikes")
    assert [t.text for t in tarrow.thesis] == ["Tarrow Bikes will open repair hubs in its shops and sell refurbished "
                                               "bikes through them."]
    assert all("repair hubs" not in m.text for m in tarrow.moves)
    brisco = next(o for o in briefing.organisations if o.name == "Brisco Cycles")
    # one statement of its strategy, and the plainest statement of what it will do beside it
    assert [t.text for t in brisco.thesis] == ["Brisco Cycles' plan is to sell only online.",
                                               "Brisco Cycles will open a delivery hub in Leeds."]


def test_a_share_price_move_and_last_years_results_are_figures_not_timeline_events() -> None:
    text = ("Encore Wardrobe said on Monday (February 16) that it would stop peer-to-peer listings. Encore will open three "
            "centres by 2028. Encore's revenue rose 11% to £214 million in 2025, but it made a loss of £19 million. "
            "Shares in Encore rose 8% in London on Monday.")
    ctx = _context(text)
    summary = summarize_document("a.txt", "A", ctx, date="2026-02-17")
    events = " ".join(e.text for e in summary.timeline)
    assert "February 16" in " ".join(e.date or "" for e in summary.timeline) and "2028" in events
    assert "rose 8%" not in events and "£214 million" not in events
    encore = next(o for o in summary.organisations if o.name == "Encore Wardrobe")
    assert {"8%", "£214 million"} <= {f.value for f in encore.figures}


def test_a_shareholder_or_backer_gets_no_section_of_its_own() -> None:
    text = ("Tarnby Running said on Monday (March 2) that it would open 400 shops by 2027. Tarnby will launch a trail range "
            "in May. Tarnby hired 60 staff in April. Brackwater Capital, a private equity firm, bought 35% of Tarnby in "
            "2023. Brackwater Capital said on Tuesday it wanted more detail on the costs. The Port of Selby Authority, which "
            "owns the harbour, will spend £52 million on shore power by 2028. The Port of Selby Authority said on May 3 "
            "that it had hired 40 engineers.")
    ctx = _context(text)
    names = [o.name for o in summarize_document("a.txt", "A", ctx).organisations]
    assert "Tarnby Running" in names and "Brackwater Capital" not in names
    assert "Port of Selby Authority" in names  # owning a harbour is not backing another organisation


def test_a_regulator_or_union_without_a_strategy_of_its_own_gets_no_section() -> None:
    text = ("Crestmoor Dental said on Monday (February 16) that it would hand back its NHS contracts. Crestmoor's plan is "
            "to move patients on to membership plans. Pennant Dental Partnership wants to buy 40 practices by 2028. "
            "Pennant Dental Partnership opened an academy on March 3. The Dental Standards Commission said on Tuesday "
            "(February 17) that it had written to Crestmoor. It expects to publish its findings in April.")
    names = [o.name for o in _briefing_of(text).organisations]
    assert "Crestmoor Dental" in names and "Pennant Dental Partnership" in names
    assert "Dental Standards Commission" not in names


def test_the_corpus_decides_what_a_name_is_when_one_document_alone_cannot() -> None:
    # Read alone, the second document takes the wheat variety for an organisation (it "yielded", it is "sold");
    # the first says what it is. The briefing reads the names across the corpus: no section for the product.
    one_text = ("Campo Foods said on Monday (May 4) that it would sell pasta under its own brand. Campo Foods has licensed "
                "Durona, a drought-tolerant durum wheat bred by Veldmark Genetics, and Campo Foods will open a mill in 2027.")
    two_text = ("Veldmark Genetics said on Wednesday (February 11) that it would license its varieties. Durona yielded 14% "
                "more than rival wheat, and it will be sold in Portugal. Veldmark wants 400,000 hectares by 2029.")
    one, two = _context(one_text, "one.txt"), _context(two_text, "two.txt")
    summaries = [verify_summary(summarize_document("one.txt", "One", one), one),
                 verify_summary(summarize_document("two.txt", "Two", two), two)]
    alone = {o.name for s in summaries for o in s.organisations}
    texts = {"one.txt": {"source": "one.txt", "text": one_text}, "two.txt": {"source": "two.txt", "text": two_text}}
    names = {o.name for o in build_briefing("B", summaries, texts).organisations}
    assert "Durona" in alone  # the premise: one document alone gets it wrong
    assert "Durona" not in names and {"Campo Foods", "Veldmark Genetics"} <= names
