"""Citation verification and refusal rules: pure functions, applied to every backend's output.

A citation survives only if it points at a chunk that was in the context and its quote occurs in
that chunk (modulo case, whitespace, quotes, dashes; ``...`` joins ordered fragments). Surviving
quotes are replaced by the exact original text, with its span in the document, so what we show is
always what the source says.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from .context import ContextChunk
from .normalize import normalize, normalize_with_map
from .types import Citation

CANNOT_ANSWER = "The sources don't say"
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
        verified.append(Citation(source=ctx.source, chunk_id=ctx.chunk.id, quote=quote, start=start, end=end))
    return verified, dropped


_NUMBER = re.compile(r"(?<![\w.])[$€£]?\d[\d,.]*(?:\s?(?:%|percent|million|billion|trillion|bn|m|k))?", re.I)
_NAME = re.compile(r"\b[A-Z][\w'’&-]*(?:\s+(?:[A-Z][\w'’&-]*|of|de|van|von))*")
_SENTENCE_START = re.compile(r"(?:^|[.!?:]\s+|\n)$")
_COMMON_CAPS = {"I", "The", "A", "An", "In", "On", "And", "But", "Or", "It", "This", "That", "These", "Those",
                "They", "We", "He", "She", "Its", "Their", "As", "At", "By", "For", "From", "If", "So", "To", "With"}


def specifics(text: str) -> list[str]:
    """Numbers, dates and proper names in ``text`` (cheap surface patterns)."""
    found = [m.group(0).rstrip(".,") for m in _NUMBER.finditer(text)]
    for m in _NAME.finditer(text):
        words = [w for w in m.group(0).split() if w not in _COMMON_CAPS]
        # A lone capitalized word opening a sentence is usually just a capitalized word.
        if len(m.group(0).split()) == 1 and _SENTENCE_START.search(text[:m.start()]):
            continue
        if words:
            found.append(" ".join(words))
    return list(dict.fromkeys(f for f in found if f))


def unsupported_specifics(answer: str, cited_texts: Iterable[str]) -> list[str]:
    """Specifics of the answer that appear in none of the cited text."""
    haystack = normalize(" ".join(cited_texts))
    missing = []
    for item in specifics(answer):
        needle = re.sub(r"'s$", "", normalize(item)).strip()
        parts = [p for p in needle.split() if p]
        if parts and not all(p in haystack for p in parts):
            missing.append(item)
    return missing
