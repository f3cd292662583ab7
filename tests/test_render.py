"""Pure presentation rules: clean answer text, quotes shown once, page labels, word pieces for streaming, pages by offset."""

from __future__ import annotations

from hypothesis import given, strategies as st

from rag.backends.base import text_pieces
from rag.context import ContextChunk
from rag.grounding import page_of, verify_citations
from rag.render import answer_text, clean_text, quoted_in
from rag.types import Answer, Chunk, Citation, PromptRef


def test_clean_text_joins_hard_line_breaks_and_drops_a_leading_heading() -> None:
    assert clean_text("2.7 Thread Safety\nlibffi is not thread safe, and\nneeds a lock.") == \
        "libffi is not thread safe, and needs a lock."
    assert clean_text("# Funding\n\nThe state loan pays for it.") == "The state loan pays for it."
    assert clean_text("Thread Safety\nlibffi is not thread safe.") == "libffi is not thread safe."


def test_clean_text_keeps_wrapped_prose() -> None:
    wrapped = "The company said that it would\nexpand into 40 new stores by 2026."
    assert clean_text(wrapped) == "The company said that it would expand into 40 new stores by 2026."
    assert clean_text("Walmart defended it.\nAmazon expanded.") == "Walmart defended it. Amazon expanded."
    assert clean_text("Short title only") == "Short title only"  # nothing under it: not dropped


@given(st.text(alphabet=st.characters(codec="utf-8", categories=("L", "N", "P", "Zs", "Cc")), max_size=200))
def test_clean_text_is_one_line_and_idempotent(text: str) -> None:
    once = clean_text(text)
    assert "\n" not in once and once == once.strip()
    assert clean_text(once) == once


@given(st.text(max_size=200))
def test_text_pieces_rebuild_the_text(text: str) -> None:
    pieces = text_pieces(text)
    assert "".join(pieces) == text
    assert all(p.strip() for p in pieces) or not text.strip()


def test_a_quote_the_answer_already_says_is_not_repeated() -> None:
    quote = "2.7 Thread Safety\nlibffi is not thread safe."
    assert quoted_in("libffi is not thread safe.", quote)
    assert quoted_in("Libffi is not thread\nsafe. Use a lock.", "libffi is not thread safe.")
    assert not quoted_in("libffi is fast.", quote)
    cite = Citation(source="docs/ffi.pdf", chunk_id="docs/ffi.pdf#3", quote=quote, start=10, end=46, page=7)
    answer = Answer(question="q", answer="libffi is not thread safe.", refused=False, citations=[cite], backend="offline",
                    model="m", prompt=PromptRef(name="answer", hash="h"))
    shown = answer_text(answer)
    assert shown.count("not thread safe") == 1
    assert "[1] docs/ffi.pdf, p. 7 (chunk 3, chars 10-46)  (quoted above)" in shown
    other = answer.model_copy(update={"answer": "Use a lock."})
    assert '      "2.7 Thread Safety\n       libffi is not thread safe."' in answer_text(other)  # as written


def test_page_of_maps_offsets_to_pages() -> None:
    starts = [0, 40, 73]
    assert [page_of(o, starts) for o in (0, 39, 40, 72, 73, 500)] == [1, 1, 2, 2, 3, 3]
    assert page_of(5, None) is None and page_of(5, []) is None


def test_verified_citations_carry_the_page_of_their_start() -> None:
    text = "Page one text here.\n\nThe reservoir holds 42 million gallons."
    chunk = Chunk(id="r.pdf#0", doc_id="r.pdf", ordinal=0, start=0, end=len(text), n_tokens=12, text=text)
    ctx = ContextChunk(id="S1", chunk=chunk, source="r.pdf", page_starts=[0, 21])
    verified, dropped = verify_citations([Citation(source="r.pdf", chunk_id="S1", quote="reservoir holds 42 million")], [ctx])
    assert not dropped and verified[0].page == 2 and text[verified[0].start:verified[0].end] == "reservoir holds 42 million"
    unpaged, _ = verify_citations([Citation(source="r.pdf", chunk_id="S1", quote="reservoir holds 42 million")],
                                  [ctx.model_copy(update={"page_starts": None})])
    assert unpaged[0].page is None


def test_a_title_case_line_inside_a_paragraph_is_prose() -> None:
    assert clean_text("The plan was drafted, according to\nJohn Smith\nand two engineers.") == \
        "The plan was drafted, according to John Smith and two engineers."


def test_figures_one_phrase_states_together_share_a_row_and_coverage_is_one_table() -> None:
    from rag.render import briefing_markdown
    from rag.types import Briefing, FigureItem, OrganisationProfile

    quote = "Encore's revenue rose 11% to £214 million in 2025."
    cite = Citation(source="a.txt", chunk_id="a#0", quote=quote, start=0, end=len(quote))
    text = "revenue rose 11% to £214 million in 2025"
    org = OrganisationProfile(name="Encore", figures=[FigureItem(value="11%", text=text, citations=[cite]),
                                                      FigureItem(value="£214 million", text=text, citations=[cite])],
                              documents=["a.txt"], silent=["b.txt"])
    md = briefing_markdown(Briefing(title="B", organisations=[org]))
    rows = [line for line in md.splitlines() if "revenue rose 11%" in line and line.startswith("|")]
    assert rows == ["| 11%; £214 million | revenue rose 11% to £214 million in 2025 [^1] |"]
    assert "| Encore | b.txt |" in md and "Not mentioned in" not in md
