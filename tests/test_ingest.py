"""Ingestion: formats, metadata, boilerplate marks, normalization, and what each bad file turns into."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import SEED_FILE, run_cli
from rag.errors import IngestError
from rag.ingest import (
    Skipped,
    Warned,
    boilerplate_spans,
    iter_documents,
    make_document,
    read_file,
)
from rag.normalize import normalize, normalize_with_map
from rag.types import Document


def events(*paths: Path, **kwargs) -> list:
    return list(iter_documents(list(paths), **kwargs))


def docs_of(evts: list) -> list[Document]:
    return [e for e in evts if isinstance(e, Document)]


def skipped_of(evts: list) -> dict[str, str]:
    return {e.source: e.reason for e in evts if isinstance(e, Skipped)}


def marked(text: str) -> list[str]:
    return [text[s.start:s.end] for s in boilerplate_spans(text)]


# ------------------------------------------------------------------ formats
def test_txt_document_keeps_text_and_takes_first_line_as_title(tmp_path: Path):
    text = "\n\nA plain title\nBody text here. More body.\n"
    (tmp_path / "a.txt").write_text(text, encoding="utf-8")
    [doc] = docs_of(events(tmp_path / "a.txt"))
    assert doc.text == text
    assert doc.title == "A plain title"
    assert doc.id == doc.source == "a.txt"


def test_source_is_relative_to_the_parent_of_the_given_directory(tmp_path: Path):
    corpus = tmp_path / "corpus"
    (corpus / "sub").mkdir(parents=True)
    (corpus / "sub" / "x.txt").write_text("Some text.", encoding="utf-8")
    (corpus / ".hidden.txt").write_text("Hidden text.", encoding="utf-8")
    (corpus / ".git").mkdir()
    (corpus / ".git" / "y.txt").write_text("Hidden too.", encoding="utf-8")
    assert [d.source for d in docs_of(events(corpus))] == ["corpus/sub/x.txt"]


def test_markdown_title_drops_hashes(tmp_path: Path):
    (tmp_path / "n.md").write_text("# Quarterly notes\n\nRevenue grew.\n", encoding="utf-8")
    [doc] = docs_of(events(tmp_path / "n.md"))
    assert doc.title == "Quarterly notes"
    assert doc.text.startswith("# Quarterly notes")


def test_html_drops_scripts_and_styles_and_takes_title_and_date(tmp_path: Path):
    html = """<!doctype html><html><head><title> Store &amp; Clinic </title>
    <meta property="article:published_time" content="2025-02-09T10:00:00Z">
    <style>body { color: red }</style><script>var secret = "do not index";</script></head>
    <body><h1>Headline</h1><script>alert("nope")</script><noscript>enable js</noscript>
    <p>First   paragraph &amp; more.</p><style>.x{}</style><p>Second<br>line</p></body></html>"""
    (tmp_path / "p.html").write_text(html, encoding="utf-8")
    [doc] = docs_of(events(tmp_path / "p.html"))
    assert doc.title == "Store & Clinic"
    assert doc.date == "2025-02-09"
    assert doc.text == "Headline\nFirst paragraph & more.\nSecond\nline"
    for hidden in ("secret", "alert", "color", "enable js", ".x"):
        assert hidden not in doc.text


def test_html_with_no_visible_text_is_skipped(tmp_path: Path):
    (tmp_path / "s.html").write_text("<html><script>var a = 1;</script></html>", encoding="utf-8")
    assert skipped_of(events(tmp_path / "s.html")) == {"s.html": "HTML has no visible text"}


def test_jsonl_takes_id_title_url_date_and_skips_bad_lines_with_file_and_line(tmp_path: Path):
    lines = [
        json.dumps({"id": "a1", "title": "First", "url": "https://example.com/a", "date": "2025-01-02", "text": "Alpha text."}),
        '{"id": "broken", "text": ',
        "",
        json.dumps({"text": "No id here."}),
        json.dumps({"id": "empty", "text": "   "}),
        json.dumps(["not", "an", "object"]),
        json.dumps({"id": 7, "text": "Numeric id.", "date": None}),
    ]
    (tmp_path / "c.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    evts = events(tmp_path / "c.jsonl")
    docs = {d.id: d for d in docs_of(evts)}
    assert set(docs) == {"a1", "c.jsonl:4", "7"}
    a1 = docs["a1"]
    assert (a1.title, a1.url, a1.date, a1.text, a1.source) == ("First", "https://example.com/a", "2025-01-02", "Alpha text.", "c.jsonl:1")
    assert docs["c.jsonl:4"].title == "No id here."  # falls back to the first line
    assert docs["7"].date is None
    skipped = skipped_of(evts)
    assert skipped["c.jsonl:2"].startswith("broken jsonl line:")
    assert skipped["c.jsonl:5"] == "jsonl line has no non-empty 'text' string"
    assert skipped["c.jsonl:6"] == "jsonl line has no non-empty 'text' string"
    assert len(skipped) == 3


def test_duplicate_jsonl_ids_are_skipped_not_overwritten(tmp_path: Path):
    rows = [{"id": "same", "text": "first"}, {"id": "same", "text": "second"}]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    evts = events(tmp_path / "d.jsonl")
    assert [d.text for d in docs_of(evts)] == ["first"]
    assert skipped_of(evts) == {"d.jsonl:2": "duplicate document id 'same'"}


# ------------------------------------------------------------------ bad files
def test_unsupported_extension_is_skipped_with_reason(tmp_path: Path):
    (tmp_path / "report.xlsx").write_bytes(b"PK\x03\x04")
    (tmp_path / "Makefile").write_text("all:\n", encoding="utf-8")
    (tmp_path / "ok.txt").write_text("Fine.", encoding="utf-8")
    evts = events(tmp_path)
    root = tmp_path.name
    assert skipped_of(evts) == {
        f"{root}/report.xlsx": "unsupported file type .xlsx",
        f"{root}/Makefile": "unsupported file type (none)",
    }
    assert [d.source for d in docs_of(evts)] == [f"{root}/ok.txt"]


def test_directory_named_like_a_file_is_unreadable(tmp_path: Path):
    (tmp_path / "folder.txt").mkdir()
    [event] = read_file(tmp_path / "folder.txt", "folder.txt")
    assert isinstance(event, Skipped)
    assert event.reason == "unreadable directory"


def test_dangling_symlink_is_reported_unreadable(tmp_path: Path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "ok.txt").write_text("Fine.", encoding="utf-8")
    (corpus / "gone.txt").symlink_to(tmp_path / "does-not-exist.txt")
    evts = events(corpus)
    assert skipped_of(evts) == {"corpus/gone.txt": "unreadable: No such file or directory"}
    assert [d.source for d in docs_of(evts)] == ["corpus/ok.txt"]


def test_permission_denied_is_reported_unreadable(tmp_path: Path):
    path = tmp_path / "secret.txt"
    path.write_text("private", encoding="utf-8")
    path.chmod(0)
    try:
        try:
            path.read_bytes()
        except PermissionError:
            pass
        else:
            pytest.skip("running with privileges that ignore file modes (root)")
        [event] = read_file(path, "secret.txt")
        assert event == Skipped("secret.txt", "unreadable: Permission denied")
    finally:
        path.chmod(0o644)


def test_invalid_utf8_warns_and_decodes_with_replacement_characters(tmp_path: Path):
    (tmp_path / "bad.txt").write_bytes(b"caf\xe9 au lait\nsecond line\n")
    evts = events(tmp_path / "bad.txt")
    [warning] = [e for e in evts if isinstance(e, Warned)]
    assert warning.source == "bad.txt"
    assert warning.message == "invalid UTF-8 at byte 3; decoded with replacement characters"
    [doc] = docs_of(evts)
    assert doc.text == "caf\ufffd au lait\nsecond line\n"


def test_utf8_bom_is_removed_without_warning(tmp_path: Path):
    (tmp_path / "bom.txt").write_bytes("\ufeffHello there.".encode("utf-8"))
    evts = events(tmp_path / "bom.txt")
    assert [type(e) for e in evts] == [Document]
    assert evts[0].text == "Hello there."


@pytest.mark.parametrize("content", [b"", b"   \n\t\n"])
def test_empty_file_is_skipped(tmp_path: Path, content: bytes):
    (tmp_path / "empty.md").write_bytes(content)
    assert skipped_of(events(tmp_path / "empty.md")) == {"empty.md": "empty file"}


@pytest.mark.parametrize("content", [
    bytes(range(256)) * 4,                      # NUL bytes
    "UTF-16 text".encode("utf-16"),             # NULs between letters
    b"\x01\x02\x03\x04\x05\x06\x07\x08abc" * 50,  # control characters, no NUL
])
def test_binary_file_is_skipped(tmp_path: Path, content: bytes):
    (tmp_path / "blob.txt").write_bytes(content)
    assert skipped_of(events(tmp_path / "blob.txt")) == {"blob.txt": "binary file"}


def test_file_over_the_size_limit_is_skipped(tmp_path: Path):
    (tmp_path / "big.txt").write_text("x" * 2_000_000, encoding="utf-8")
    (tmp_path / "small.txt").write_text("small", encoding="utf-8")
    evts = events(tmp_path, max_bytes=1_000_000)
    root = tmp_path.name
    assert skipped_of(evts) == {f"{root}/big.txt": "file too large (1.9 MiB > 1.0 MiB limit)"}
    assert [d.source for d in docs_of(evts)] == [f"{root}/small.txt"]


def test_cli_skips_a_real_50_mb_file_and_indexes_the_rest(tmp_path: Path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    line = b"The quick brown fox jumps over the lazy dog. " * 20 + b"\n"
    with open(corpus / "huge.txt", "wb") as f:
        while f.tell() < 50 * 1024 * 1024:
            f.write(line * 1000)
        f.truncate(50 * 1024 * 1024)
    (corpus / "small.txt").write_text("Walmart expands healthcare hubs.", encoding="utf-8")
    result = run_cli("index", str(corpus), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["indexed"] == 1
    [skip] = summary["skipped"]
    assert skip["source"] == "corpus/huge.txt"
    assert skip["reason"] == "file too large (50.0 MiB > 16.0 MiB limit)"


def test_nonexistent_path_is_an_ingest_error(tmp_path: Path):
    with pytest.raises(IngestError, match="no such file or directory"):
        events(tmp_path / "missing")


# ------------------------------------------------------------------ boilerplate
def test_seed_article_boilerplate_is_marked_and_text_unchanged():
    text = SEED_FILE.read_text(encoding="utf-8")
    doc = make_document(text, doc_id="seed", source="seed")
    assert doc.text == text
    assert [text[s.start:s.end] for s in doc.boilerplate] == [
        "See also: Retailers Focus on Data and Payments as Shoppers Pull Back",
        "Read more: Does Google’s Agentic Partnership With Walmart Signal the End of Click-and-Buy Retail?",
        "The post Amazon and Walmart Push Retail Innovation Into Everyday Consumer Services appeared first on PYMNTS.com.",
    ]


def test_read_more_glued_mid_line_marks_only_the_rest_of_the_line():
    text = "Intro.\nThe Biggest News Driving the Story Right NowRead more: Another headline here\nBody.\n"
    assert marked(text) == ["Read more: Another headline here"]


def test_see_also_and_read_more_lines_are_marked_whole():
    text = "Body one.\nSee also: Something else entirely\nread more: lower case too\nAlso read: a third\nBody two.\n"
    assert marked(text) == ["See also: Something else entirely", "read more: lower case too", "Also read: a third"]


def test_the_post_appeared_first_on_line_is_marked():
    text = "Body.\nThe post Big Headline Here appeared first on Example News.\n"
    assert marked(text) == ["The post Big Headline Here appeared first on Example News."]


@pytest.mark.parametrize("line", [
    "Share this article", "Share on Facebook", "Subscribe to our newsletter", "Subscribe now", "SUBSCRIBE",
    "Sign up for alerts", "Follow us on X", "Click here to read more", "Advertisement", "All rights reserved.",
])
def test_share_and_subscribe_lines_are_marked(line: str):
    text = f"Real content here.\n{line}\nMore content."
    assert marked(text) == [line]


@pytest.mark.parametrize("line", [
    "Share prices fell 5% on Monday after the announcement.",
    "Shares of Walmart rose in early trading.",
    "Subscribers grew to 2 million in the quarter.",
    "Market share is the prize in this race.",
    "The post office will close early on Friday.",
    "Advertisement revenue rose 8% in the quarter.",
])
def test_ordinary_sentences_are_not_boilerplate(line: str):
    assert marked(f"Intro.\n{line}\nOutro.") == []


def test_boilerplate_spans_do_not_change_the_stored_text(tmp_path: Path):
    text = "Story.\nSee also: Other\nShare this\nThe post X appeared first on Y.\n"
    (tmp_path / "s.txt").write_text(text, encoding="utf-8")
    [doc] = docs_of(events(tmp_path / "s.txt"))
    assert doc.text == text
    assert len(doc.boilerplate) == 3


def test_boilerplate_spans_handle_crlf_line_endings():
    text = "Body.\r\nSee also: Other story\r\nMore body.\r\n"
    assert marked(text) == ["See also: Other story"]


# ------------------------------------------------------------------ normalization
@pytest.mark.parametrize("fancy, plain", [
    ("\u201cquoted\u201d and \u2018single\u2019", '"quoted" and \'single\''),
    ("Walmart\u2019s model", "Walmart's model"),
    ("non\u00a0breaking\u00a0space", "non breaking space"),
    ("2019\u20132020 \u2014 a range", "2019-2020 - a range"),
    ("the \ufb01nal o\ufb03ce", "the final office"),
    ("zero\u200bwidth", "zerowidth"),
    ("Caf\u00e9 CR\u00c8ME", "cafe creme"),
    ("  several   spaces\n\tand lines  ", "several spaces and lines"),
])
def test_normalize_folds_typography_to_plain_forms(fancy: str, plain: str):
    assert normalize(fancy) == normalize(plain)


def test_normalize_with_map_maps_a_match_back_to_exact_original_offsets():
    original = "He said \u201cthe \ufb01nal\u00a0word\u201d \u2014 it\u2019s done."
    norm, origin = normalize_with_map(original)
    assert len(norm) == len(origin)
    for needle, expected in [
        ('"the final word"', "\u201cthe \ufb01nal\u00a0word\u201d"),
        ("final word", "\ufb01nal\u00a0word"),
        ("- it's", "\u2014 it\u2019s"),
        ("inal", "\ufb01nal"),  # a match starting inside a ligature widens to the whole original character
    ]:
        i = norm.find(normalize(needle))
        assert i >= 0, needle
        j = i + len(normalize(needle))
        assert original[origin[i]:origin[j - 1] + 1] == expected


def test_normalize_with_map_on_the_seed_article_finds_curly_quote_spans():
    text = SEED_FILE.read_text(encoding="utf-8")
    norm, origin = normalize_with_map(text)
    i = norm.find(normalize("consumers' daily routines"))
    assert i >= 0
    j = i + len(normalize("consumers' daily routines"))
    assert text[origin[i]:origin[j - 1] + 1] == "consumers’ daily routines"


@settings(max_examples=150, deadline=None)
@given(st.text())
def test_normalize_map_points_at_the_character_each_output_char_came_from(text: str):
    norm, origin = normalize_with_map(text)
    assert len(norm) == len(origin)
    assert list(origin) == sorted(origin)
    assert all(0 <= o < len(text) for o in origin)
    assert norm == norm.strip() and "  " not in norm
    for ch, o in zip(norm, origin):
        if ch == " ":
            assert text[o].isspace() or normalize(text[o]) == "" or " " in normalize("a" + text[o] + "a")
        else:
            assert ch in normalize("a" + text[o] + "a")[1:-1]
    assert normalize(norm) == norm


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(list("ab :\n\r\u2028") + ["See also:", "Read more:", "NowRead more:", "Share this",
                                                          "The post ", " appeared first on ", "Subscribe"]),
                max_size=60).map("".join))
def test_boilerplate_spans_are_ordered_disjoint_and_within_one_line(text: str):
    spans = boilerplate_spans(text)
    prev_end = 0
    for s in spans:
        assert prev_end <= s.start < s.end <= len(text)
        assert text[s.start:s.end].strip()
        assert "\n" not in text[s.start:s.end]
        prev_end = s.end


_PIECES = ["See also: x", "Read more: y", "The post a appeared first on b", "This story was published in", "Share this",
           "share", "Subscribe now", "advertisement", "Shares rose", "\u017fee also:", "\u0130stanbul", "\u212a", "\r\n",
           "\n", "\u2028", "\x1c", "\x85", "word ", "RightNowRead more: z", "copyright \u00a9 2020", "All rights reserved",
           "sign up for", "\f", "  ", "SEE ALSO:", "see\nalso:"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=14))
def test_boilerplate_pre_checks_change_no_result(pieces):
    """Only lines holding a marker word are run through the patterns: the same spans as running them on every line."""
    from itertools import accumulate

    from rag.ingest import _boilerplate_lines

    text = "".join(pieces)
    lines = text.splitlines(keepends=True)
    every_line = _boilerplate_lines(lines, range(len(lines)), list(accumulate(map(len, lines), initial=0)))
    assert boilerplate_spans(text) == every_line
