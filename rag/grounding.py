"""Citation verification and refusal rules: pure functions, applied to every backend's output.

A citation survives only if it points at a chunk that was in the context and its quote occurs in
that chunk (modulo case, whitespace, quotes, dashes; ``...`` joins ordered fragments). Surviving
quotes are replaced by the exact original text, with its span in the document, so what we show is
always what the source says.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Sequence

from .context import ContextChunk
from .language import figure_supported, figures
from .normalize import normalize, normalize_with_map
from .types import Citation

CANNOT_ANSWER = "The sources don't say"
MODEL_REFUSED = "the model refused to answer"  # how an endpoint's own refusal (its `refusal` field) is reported
MIN_QUOTE_CHARS = 12
_ELLIPSIS = re.compile(r"\s*(?:\.\s?\.\s?\.|\u2026|\[\.\.\.\])\s*")
_WRAPPING = "\"'\u201c\u201d\u2018\u2019 "


def match_quote(quote: str, text: str) -> list[tuple[int, int]] | None:
    """Spans in ``text`` of the quote's fragments, found in order; None if any fragment is missing."""
    fragments = [f.strip(_WRAPPING) for f in _ELLIPSIS.split(quote.strip().strip(_WRAPPING))]
    fragments = [f for f in fragments if normalize(f)]
    if not fragments or sum(len(normalize(f)) for f in fragments) < MIN_QUOTE_CHARS:
        return None
    norm, origin = normalize_with_map(text)
    spans: list[tuple[int, int]] = []
    pos = 0
    for fragment in fragments:
        needle = normalize(fragment)
        found = norm.find(needle, pos)
        if found < 0:
            needle = needle.rstrip(".,;:!?")  # a model may end a mid-sentence quote with a full stop
            found = norm.find(needle, pos) if len(needle) >= 3 else -1
        if found < 0:
            return None
        end = found + len(needle)
        spans.append((origin[found], origin[end - 1] + 1))
        pos = end
    return spans


def verify_citations(citations: Iterable[Citation], context: Sequence[ContextChunk]) -> tuple[list[Citation], list[str]]:
    """(verified citations with exact quotes and document spans, reasons for each one dropped)."""
    by_id: dict[str, ContextChunk] = {}
    for ctx in context:
        by_id[ctx.id] = ctx
        by_id[ctx.chunk.id] = ctx
    verified: list[Citation] = []
    dropped: list[str] = []
    seen: set[tuple[str, int, int]] = set()
    for cit in citations:
        ctx = by_id.get(cit.chunk_id.strip())
        if ctx is None:
            dropped.append(f"citation to {cit.chunk_id!r}, which was not in the context")
            continue
        spans = match_quote(cit.quote, ctx.chunk.text)
        if spans is None:
            dropped.append(f"quote not found in {ctx.chunk.id}: {cit.quote[:60]!r}")
            continue
        text = ctx.chunk.text
        quote = " ... ".join(text[s:e] for s, e in spans)
        start, end = ctx.chunk.start + spans[0][0], ctx.chunk.start + spans[-1][1]
        if (ctx.chunk.id, start, end) in seen:
            continue
        seen.add((ctx.chunk.id, start, end))
        verified.append(Citation(source=ctx.source, chunk_id=ctx.chunk.id, quote=quote, start=start, end=end,
                                 page=page_of(start, ctx.page_starts)))
    return verified, dropped


def page_of(offset: int, page_starts: Sequence[int] | None) -> int | None:
    """The 1-based page holding character ``offset``, given where each page starts; None for unpaged text."""
    if not page_starts:
        return None
    return max(1, bisect_right(page_starts, offset))


_NAME = re.compile(r"\b[A-Z][\w'’&-]*(?:\s+(?:[A-Z][\w'’&-]*|of|de|van|von)\b)*")
_SENTENCE_START = re.compile(r"(?:^|[.!?:]\s+|\n)$")
_COMMON_CAPS = {"I", "The", "A", "An", "In", "On", "And", "But", "Or", "It", "This", "That", "These", "Those",
                "They", "We", "He", "She", "Its", "Their", "As", "At", "By", "For", "From", "If", "So", "To", "With"}


def specifics(text: str) -> list[str]:
    """Figures (as written) and proper names in ``text``."""
    found = [f.text for f in figures(text, words=False)]
    for m in _NAME.finditer(text):
        words = [w for w in m.group(0).split() if w not in _COMMON_CAPS]
        # A lone capitalized word opening a sentence is usually just a capitalized word.
        if len(m.group(0).split()) == 1 and _SENTENCE_START.search(text[:m.start()]):
            continue
        if words:
            found.append(" ".join(words))
    return list(dict.fromkeys(f for f in found if f))


def unsupported_specifics(answer: str, cited_texts: Iterable[str]) -> list[str]:
    """Figures and names of the answer that none of the cited text states.

    Figures match as whole values with their scale and kind ("25 million" is not supported by
    "125 million", nor "4 stores" by "40 new stores"); names match word by word, whole words only."""
    cited = " ".join(cited_texts)
    haystack = normalize(cited)
    words = set(re.findall(r"\w+", haystack))
    missing = [f.text for f in figures(answer, words=False) if not figure_supported(f, cited)]
    for m in _NAME.finditer(answer):
        name_words = [w for w in m.group(0).split() if w not in _COMMON_CAPS]
        if not name_words or (len(m.group(0).split()) == 1 and _SENTENCE_START.search(answer[:m.start()])):
            continue
        parts = re.findall(r"\w+", re.sub(r"['’]s\b", "", normalize(" ".join(name_words))))
        if parts and not all(p in words for p in parts):
            missing.append(" ".join(name_words))
    return list(dict.fromkeys(missing))


# ------------------------------------------------------------------ is the text what the quotes say?
_CLAIM_STOP = frozenset("""a an the and or but if then so as of in on at by for from to with without into onto over under
about than that this these those it its it's they their them there here is are was were be been being has have had
do does did will would can could should may might must not no yes also just only very more most less least such
which who whom whose what when where why how all any some each both either neither other another own same i we you
he she his her our your my me us him""".split())


_SCALE_WORDS = frozenset({"thousand", "million", "billion", "trillion", "percent", "bn", "mn"})


def _claim_words(text: str) -> set[str]:
    """Content words, as 6-character prefixes. Figures are left out: ``unsupported_specifics`` checks them as values."""
    return {w[:6] for w in re.findall(r"[^\W_]+", normalize(text))
            if w not in _CLAIM_STOP and w not in _SCALE_WORDS and len(w) > 2 and not any(c.isdigit() for c in w)}


def unsupported_sentences(answer: str, quotes: Sequence[str], *, min_share: float = 0.5) -> list[str]:
    """Sentences of ``answer`` that share too few key terms with every cited quote taken together.

    A model answer must say what its citations say: "PWNED", or an unrelated claim pinned to a real
    quote, shares nothing with it. Key terms are content words (a 6-character prefix, so "expands"
    and "expanded" agree); a sentence passes when at least ``min_share`` of them occur in the quotes."""
    support = set().union(*(_claim_words(q) for q in quotes)) if quotes else set()
    out = []
    for sentence in re.split(r"(?<=[.!?])\s+|\n+", answer):
        terms = _claim_words(sentence)
        if not terms:
            continue
        if len(terms & support) < min_share * len(terms):
            out.append(sentence.strip())
    return out


def supported_reason(reason: str, question: str, texts: Sequence[str]) -> bool:
    """A model's refusal reason may be shown only if it talks about the question and the sources."""
    if not reason or len(reason) > 240 or "\n" in reason.strip():
        return False
    terms = _claim_words(reason)
    known = _claim_words(question) | set().union(*(_claim_words(t) for t in texts)) if texts else _claim_words(question)
    return not terms or len(terms & known) >= 0.6 * len(terms)
