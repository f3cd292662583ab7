"""PDF, Word and reStructuredText through the real CLI: indexed with pages and headings, cited with their page.

Every file is made here: PDFs printed by headless Chromium, an encrypted one re-written by pypdf, a
'scanned' one that holds only an image, Word files written with python-docx.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from browser import CHROMIUM
from conftest import run_cli
from documents import encrypted_pdf, image_only_pdf, pages_pdf, print_pdf, png, word_docx
from rag.index import SQLiteIndex
from rag.ingest import read_bytes
from rag.ingest import Document, Skipped, Warned
from rag.render import summary_markdown
from rag.types import Citation, CitedItem, StrategySummary

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (apt-get install chromium)")]

PAGES = [
    "Millbrook Water annual report 2024\n\nThe board met four times and approved the capital plan.",
    "Finances\n\nOperating revenue rose by four percent, mostly from new connections in the east district.",
    "Reservoirs\n\nThe Hollins reservoir holds 42 million gallons since the dredging finished in August.",
    "Outlook\n\nThe utility expects to finish replacing lead service lines by 2031.",
]
PAGE_3_QUESTION = "How many gallons does the Hollins reservoir hold?"
PAGE_3_QUOTE = "The Hollins reservoir holds 42 million gallons since the dredging finished in August."
DOCX_QUESTION = "What does the state revolving loan pay for?"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """reports/: a 4-page PDF, a DOCX, an .rst file, an encrypted PDF, an image-only PDF and a broken PDF."""
    work = tmp_path_factory.mktemp("documents")
    folder = work / "reports"
    folder.mkdir()
    annual = pages_pdf(PAGES, work / "annual.pdf", title="Millbrook annual report")
    (folder / "annual.pdf").write_bytes(annual.read_bytes())
    word_docx(folder / "plan.docx", title="Lead line plan", sections=[
        ("Lead service lines", ["The city will replace 1,200 lead service lines by 2031."]),
        ("Funding", ["The state revolving loan pays for the first 400 replacements."]),
    ])
    (folder / "notes.rst").write_text("Field notes\n===========\n\nThe east district mains were flushed in *March*.\n",
                                      encoding="utf-8")
    encrypted_pdf(annual, folder / "locked.pdf")
    image_only_pdf(folder / "scan.pdf", pages=2)
    (folder / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >> garbage")
    return folder


@pytest.fixture(scope="module")
def indexed(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    index = tmp_path_factory.mktemp("documents-index") / "index.db"
    result = run_cli("index", str(corpus), "--json", env={"RAG_INDEX": str(index)})
    assert result.returncode == 0, result.stderr
    return index, json.loads(result.stdout)


def test_pdf_docx_and_rst_are_indexed_and_bad_pdfs_skipped_with_reasons(indexed: tuple[Path, dict]) -> None:
    index, report = indexed
    assert report["indexed"] == 3
    reasons = {s["source"]: s["reason"] for s in report["skipped"]}
    assert set(reasons) == {"reports/locked.pdf", "reports/scan.pdf", "reports/broken.pdf"}
    assert "encrypted" in reasons["reports/locked.pdf"] and "password" in reasons["reports/locked.pdf"]
    assert "no text layer" in reasons["reports/scan.pdf"] and "2 page(s)" in reasons["reports/scan.pdf"]
    assert reasons["reports/broken.pdf"].startswith("broken PDF")
    store = SQLiteIndex(index, readonly=True)
    docs = {d["source"]: d for d in store.list_documents()}
    assert set(docs) == {"reports/annual.pdf", "reports/plan.docx", "reports/notes.rst"}
    assert docs["reports/annual.pdf"]["title"] == "Millbrook annual report"
    pdf = store.get_document("reports/annual.pdf")
    assert pdf is not None and pdf.pages is not None and len(pdf.pages) == 4
    for number, start in enumerate(pdf.pages, 1):  # each page's text starts where its offset says
        assert pdf.text[start:].startswith(PAGES[number - 1].split("\n")[0])
    word = store.get_document("reports/plan.docx")
    assert word is not None and word.pages is None and word.title == "Lead line plan"
    assert "# Funding\n\nThe state revolving loan" in word.text  # the heading stays, above its text
    assert docs["reports/notes.rst"]["title"] == "Field notes"


def test_the_text_summary_counts_skipped_files(corpus: Path, tmp_path: Path) -> None:
    result = run_cli("index", str(corpus), env={"RAG_INDEX": str(tmp_path / "i.db")})
    assert result.returncode == 0
    assert "3 new" in result.stdout and "3 skipped" in result.stdout
    assert "skipped: reports/locked.pdf: encrypted PDF" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_question_about_page_3_is_answered_with_a_verified_quote_and_its_page(indexed: tuple[Path, dict]) -> None:
    index, _ = indexed
    result = run_cli("ask", PAGE_3_QUESTION, "--json", env={"RAG_INDEX": str(index)})
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert not answer["refused"], answer
    cite = answer["citations"][0]
    assert cite["source"] == "reports/annual.pdf" and cite["page"] == 3
    assert cite["quote"] == PAGE_3_QUOTE
    doc = SQLiteIndex(index, readonly=True).get_document("reports/annual.pdf")
    assert doc is not None and doc.pages is not None
    assert doc.text[cite["start"]:cite["end"]] == cite["quote"]  # verified against the stored extracted text
    assert doc.pages[2] <= cite["start"] < doc.pages[3]

    text = run_cli("ask", PAGE_3_QUESTION, env={"RAG_INDEX": str(index)})
    assert "reports/annual.pdf, p. 3 (chunk" in text.stdout
    assert text.stdout.count("42 million gallons") == 1  # the answer is its quote: shown once, with its source


def test_a_docx_answer_cites_the_text_under_its_heading(indexed: tuple[Path, dict]) -> None:
    index, _ = indexed
    answer = json.loads(run_cli("ask", DOCX_QUESTION, "--json", env={"RAG_INDEX": str(index)}).stdout)
    assert not answer["refused"], answer
    cite = answer["citations"][0]
    assert cite["source"] == "reports/plan.docx" and cite["page"] is None
    assert "first 400 replacements" in cite["quote"]


def test_markdown_footnotes_name_the_page() -> None:
    cite = Citation(source="reports/annual.pdf", chunk_id="reports/annual.pdf#1", quote=PAGE_3_QUOTE, start=220, end=305, page=3)
    summary = StrategySummary(doc_id="reports/annual.pdf", title="Report", themes=[CitedItem(text="Storage grew.", citations=[cite])])
    # The page, not the character offsets (those stay in the JSON): every number on the page comes from a source.
    assert f'[^1]: reports/annual.pdf, p. 3: "{PAGE_3_QUOTE}"' in summary_markdown(summary)


def test_a_partly_scanned_pdf_is_indexed_with_a_warning_naming_the_pages(tmp_path: Path) -> None:
    picture = "data:image/png;base64," + __import__("base64").b64encode(png()).decode()
    pdf = print_pdf("<!doctype html><body><section style='break-after: page'><p>Typed cover letter about rates.</p></section>"
                    f"<section style='break-after: page'><img src='{picture}'></section>"
                    "<section><p>Typed appendix about meters.</p></section></body>", tmp_path / "mixed.pdf")
    events = list(read_bytes(pdf.read_bytes(), ".pdf", "mixed.pdf"))
    warnings = [e for e in events if isinstance(e, Warned)]
    docs = [e for e in events if isinstance(e, Document)]
    assert len(docs) == 1 and docs[0].pages is not None and len(docs[0].pages) == 3
    assert len(warnings) == 1 and "1 of 3 PDF pages have no text layer (page 2)" in warnings[0].message


def test_a_500_page_pdf_is_indexed_whole(tmp_path: Path) -> None:
    pages = [f"Page {n} of the long register.\n\nMeter {n * 7} was read in district {n % 13}." for n in range(1, 501)]
    folder = tmp_path / "long"
    folder.mkdir()
    pages_pdf(pages, folder / "register.pdf")
    result = run_cli("index", str(folder), "--json", env={"RAG_INDEX": str(tmp_path / "i.db")})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["indexed"] == 1
    doc = SQLiteIndex(tmp_path / "i.db", readonly=True).get_document("long/register.pdf")
    assert doc is not None and doc.pages is not None and len(doc.pages) == 500
    answer = json.loads(run_cli("ask", "Which district was meter 2471 read in?", "--json",
                                env={"RAG_INDEX": str(tmp_path / "i.db")}).stdout)
    assert answer["citations"] and answer["citations"][0]["page"] == 353


@pytest.mark.parametrize("raw, reason", [
    (b"PK\x03\x04 not really a zip", "docx"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 512, "docx"),  # an OLE file: an encrypted or old Word document
])
def test_unreadable_word_files_are_skipped_with_a_reason(raw: bytes, reason: str) -> None:
    events = list(read_bytes(raw, ".docx", "bad.docx"))
    assert len(events) == 1 and isinstance(events[0], Skipped) and reason in events[0].reason


def test_a_pdf_uploaded_over_http_is_cited_with_its_page(corpus: Path, tmp_path: Path) -> None:
    from test_server import ThreadServer, index_seeds, make_settings

    index = tmp_path / "served.db"
    index_seeds(index)
    with ThreadServer(make_settings(index)) as srv, srv.client(headers={"X-Requested-With": "rag"}) as client:
        pdf = (corpus / "annual.pdf").read_bytes()
        uploaded = client.post("/v1/documents", files={"file": ("annual report.pdf", pdf, "application/pdf")})
        assert uploaded.status_code == 201, uploaded.text
        locked = client.post("/v1/documents", files={"file": ("locked.pdf", (corpus / "locked.pdf").read_bytes(), "application/pdf")})
        answer = client.post("/v1/ask", json={"question": PAGE_3_QUESTION}).json()
    assert locked.status_code == 422 and "encrypted PDF" in locked.json()["error"]["message"]
    cite = answer["citations"][0]
    assert cite["source"] == "uploads/annual_report.pdf" and cite["page"] == 3 and cite["quote"] == PAGE_3_QUOTE
