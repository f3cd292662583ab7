"""Quote matching and citation verification: pure functions, property-tested."""

from hypothesis import given, settings, strategies as st

from rag.context import ContextChunk
from rag.grounding import match_quote, unsupported_specifics, verify_citations
from rag.types import Chunk, Citation

TEXT = ("Amazon is scaling same-day prescription delivery, preparing new satellite launches and exploring a "
        "marketplace for artificial intelligence (AI) training data. Walmart\u2019s model: turn physical scale "
        "into a service network\u2014part clinic, part fulfillment center.")


def ctx(text: str = TEXT, start: int = 100) -> ContextChunk:
    chunk = Chunk(id="doc.txt#3", doc_id="doc.txt", ordinal=3, start=start, end=start + len(text), n_tokens=50, text=text)
    return ContextChunk(id="S1", chunk=chunk, source="doc.txt")


def test_exact_quote_verifies_with_document_span():
    quote = "preparing new satellite launches"
    [c], dropped = verify_citations([Citation(source="x", chunk_id="S1", quote=quote)], [ctx()])
    assert dropped == []
    assert c.quote == quote and c.chunk_id == "doc.txt#3" and c.source == "doc.txt"
    assert (c.start, c.end) == (100 + TEXT.index(quote), 100 + TEXT.index(quote) + len(quote))


def test_curly_quotes_dashes_case_and_whitespace_do_not_stop_a_match():
    quote = "walmart's  model: turn physical scale into a service network-part clinic"
    [c], _ = verify_citations([Citation(source="x", chunk_id="S1", quote=quote)], [ctx()])
    # What we show is the source's own text, not the model's spelling of it.
    assert c.quote == "Walmart\u2019s model: turn physical scale into a service network\u2014part clinic"


def test_ellipsis_joins_ordered_fragments_and_shows_each_original_fragment():
    quote = "Amazon is scaling same-day prescription delivery ... training data"
    [c], _ = verify_citations([Citation(source="x", chunk_id="S1", quote=quote)], [ctx()])
    assert c.quote == "Amazon is scaling same-day prescription delivery ... training data"
    assert match_quote("training data ... Amazon is scaling", TEXT) is None  # out of order


def test_fabricated_quote_and_unknown_chunk_are_dropped():
    cits = [Citation(source="x", chunk_id="S1", quote="Amazon is acquiring Walmart for $5 billion"),
            Citation(source="x", chunk_id="S9", quote="preparing new satellite launches")]
    verified, dropped = verify_citations(cits, [ctx()])
    assert verified == []
    assert len(dropped) == 2 and "not in the context" in dropped[1]


def test_too_short_quotes_do_not_count_as_evidence():
    assert match_quote("AI", TEXT) is None
    assert match_quote("...", TEXT) is None


def test_unsupported_specifics_flags_invented_numbers_and_names():
    flagged = unsupported_specifics("Andy Jassy said Amazon will launch 3,236 satellites in 2027.", [TEXT])
    assert "3,236" in flagged and "2027" in flagged and "Andy Jassy" in flagged
    assert unsupported_specifics("Amazon is preparing new satellite launches.", [TEXT]) == []


@settings(max_examples=80, deadline=None)
@given(st.text(min_size=1, max_size=300), st.data())
def test_any_substring_of_the_source_verifies_to_exactly_that_text(text, data):
    start = data.draw(st.integers(0, len(text) - 1))
    end = data.draw(st.integers(start + 1, len(text)))
    quote = text[start:end]
    spans = match_quote(quote, text)
    if spans is None:  # too short once normalized, or only whitespace/ellipsis
        return
    s, e = spans[0][0], spans[-1][1]
    from rag.normalize import normalize

    # The matched original text normalizes to the quote's normalization (fragments joined).
    assert all(normalize(text[a:b]) for a, b in spans)
    assert 0 <= s < e <= len(text)


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=15, max_size=80))
def test_text_not_in_the_source_never_verifies(noise):
    source = "The quick brown fox jumps over the lazy dog."
    from rag.normalize import normalize

    if normalize(noise) and normalize(noise) not in normalize(source) and "..." not in noise and "\u2026" not in noise:
        assert match_quote(noise, source) is None
