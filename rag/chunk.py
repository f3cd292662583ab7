"""Document -> Chunks: token-aware sentence packing with exact character spans.

Invariants (property-tested): ``doc.text[c.start:c.end] == c.text``; no chunk exceeds
``max_tokens``; chunks cover the non-boilerplate text in order; consecutive chunks share at most
``overlap`` sentences; the same input always gives the same chunks. Sentences are split only
when one alone exceeds the limit, and then on token boundaries.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from .tokens import get_encoding
from .types import Chunk, Document, Span

_ABBREV = {
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "inc", "corp", "co", "ltd", "vs", "etc", "no", "fig",
    "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "e.g", "i.e", "u.s",
    "u.k", "u.n", "e.u", "a.m", "p.m", "approx", "est", "dept", "gov", "gen", "rep", "sen", "mt",
}
_SENT_END = re.compile(r"[.!?\u2026]+[\"'\u201d\u2019)\]]*\s+")
_WORD_BEFORE = re.compile(r"([\w.]+)[.!?\u2026]*$")
_LINE = re.compile(r"[^\n]+")
_HEADING_ENDS = frozenset(".!?\u2026\"'\u201d")


@dataclass(frozen=True)
class Unit:
    """A sentence (or a token-bounded piece of an over-long one)."""

    start: int
    end: int
    n_tokens: int
    heading: bool = False


def regions(text: str, boilerplate: list[Span]) -> Iterator[tuple[int, int]]:
    """The parts of ``text`` outside boilerplate spans."""
    pos = 0
    for span in sorted(boilerplate, key=lambda s: s.start):
        if span.start > pos:
            yield pos, span.start
        pos = max(pos, span.end)
    if pos < len(text):
        yield pos, len(text)


def _is_abbreviation(text: str, dot: int) -> bool:
    # Look back a bounded window: searching from the paragraph start made long paragraphs quadratic.
    m = _WORD_BEFORE.search(text, max(0, dot - 64), dot + 1)
    if not m:
        return False
    word = m.group(1).lower().rstrip(".")
    return word in _ABBREV or (len(word) == 1 and word.isalpha())


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def sentence_spans(text: str, start: int, end: int) -> Iterator[tuple[int, int, bool]]:
    """(start, end, is_heading) of each sentence in ``text[start:end]``, whitespace trimmed."""
    lines = [(m.start() + start, m.end() + start) for m in _LINE.finditer(text[start:end])]
    # Join hard-wrapped lines: a line ending mid-sentence followed by a lowercase continuation.
    paras: list[list[int]] = []
    for ls, le in lines:
        s, e = _strip(text, ls, le)
        if s == e:
            continue
        if paras and (text[paras[-1][1] - 1].isalnum() or text[paras[-1][1] - 1] in "_,;") and text[s].islower():
            paras[-1][1] = e
        else:
            paras.append([s, e])
    for ps, pe in paras:
        para = text[ps:pe]
        single_line = "\n" not in para
        heading = single_line and (para.startswith("#") or (len(para) < 100 and para[-1] not in _HEADING_ENDS))
        cut = 0
        for m in _SENT_END.finditer(para):
            nxt = para[m.end():m.end() + 1]
            if nxt and (nxt.islower() or nxt.isdigit()) or _is_abbreviation(para, m.start()):
                continue
            s, e = _strip(para, cut, m.end())
            if s < e:
                yield ps + s, ps + e, False
            cut = m.end()
        s, e = _strip(para, cut, len(para))
        if s < e:
            yield ps + s, ps + e, heading and cut == 0


class Chunker:
    def __init__(self, *, max_tokens: int = 300, overlap: int = 1, encoding: str = "cl100k_base") -> None:
        if max_tokens < 1 or overlap < 0:
            raise ValueError("max_tokens must be >= 1 and overlap >= 0")
        self.max_tokens = max_tokens
        self.overlap = overlap
        self.enc = get_encoding(encoding)

    def count(self, text: str) -> int:
        return len(self.enc.encode_ordinary(text))

    def _split_long(self, text: str, start: int, end: int) -> Iterator[Unit]:
        """Split an over-long sentence on token boundaries (rounded down to whole characters)."""
        pos = start
        while pos < end:
            window = text[pos:min(end, pos + self.max_tokens * 32)]
            tokens = self.enc.encode_ordinary(window)
            take = min(len(tokens), self.max_tokens)
            while True:
                if take >= len(tokens) and pos + len(window) == end:
                    cut = end
                else:
                    nbytes = sum(len(self.enc.decode_single_token_bytes(t)) for t in tokens[:take])
                    cut = pos + len(window.encode("utf-8")[:nbytes].decode("utf-8", errors="ignore"))
                    cut = max(cut, pos + 1)
                n = self.count(text[pos:cut])
                if n <= self.max_tokens or cut == pos + 1:
                    break
                take -= max(1, n - self.max_tokens)
            yield Unit(pos, cut, n)
            pos = cut

    def units(self, doc: Document) -> list[list[Unit]]:
        """Sentence units per non-boilerplate region."""
        out: list[list[Unit]] = []
        for rs, re_ in regions(doc.text, doc.boilerplate):
            region: list[Unit] = []
            for s, e, heading in sentence_spans(doc.text, rs, re_):
                n = self.count(doc.text[s:e])
                if n <= self.max_tokens:
                    region.append(Unit(s, e, n, heading))
                else:
                    region.extend(self._split_long(doc.text, s, e))
            if region:
                out.append(region)
        return out

    def _extent(self, text: str, units: list[Unit], i: int) -> tuple[int, int]:
        """(end unit, exact tokens) of the chunk starting at unit ``i``."""
        n = len(units)
        j, total = i, 0
        while j < n and (j == i or total + units[j].n_tokens <= self.max_tokens):
            total += units[j].n_tokens
            j += 1
        while True:
            # Headings stay with the text under them, also after trimming to the exact count.
            while j - 1 > i and j < n and units[j - 1].heading:
                j -= 1
            exact = self.count(text[units[i].start:units[j - 1].end])
            if exact <= self.max_tokens or j - 1 <= i:
                return j, exact
            j -= 1

    def _pack(self, text: str, units: list[Unit]) -> Iterator[tuple[int, int, int]]:
        """Yield (first unit, end unit, exact tokens) for each chunk of one region."""
        i, n, done = 0, len(units), 0  # units[:done] are already in a chunk
        while i < n:
            j, exact = self._extent(text, units, i)
            if j <= done:
                # The overlap left no room for anything new (e.g. a heading backed off): drop the overlap.
                i = done
                j, exact = self._extent(text, units, i)
            yield i, j, exact
            if j >= n:
                return
            done = j
            # Next chunk repeats up to ``overlap`` sentences, as many as fit beside the next new one.
            nxt = max(j - self.overlap, i + 1)
            while nxt < j and sum(u.n_tokens for u in units[nxt:j + 1]) > self.max_tokens:
                nxt += 1
            i = nxt

    def chunk(self, doc: Document) -> list[Chunk]:
        chunks: list[Chunk] = []
        for region in self.units(doc):
            for i, j, n_tokens in self._pack(doc.text, region):
                s, e = region[i].start, region[j - 1].end
                ordinal = len(chunks)
                chunks.append(Chunk(id=f"{doc.id}#{ordinal}", doc_id=doc.id, ordinal=ordinal, start=s, end=e,
                                    n_tokens=n_tokens, text=doc.text[s:e]))
        return chunks

    @property
    def fingerprint(self) -> str:
        return f"{self.enc.name}:{self.max_tokens}:{self.overlap}:v2"


def chunk_document(doc: Document, *, max_tokens: int = 300, overlap: int = 1, encoding: str = "cl100k_base") -> list[Chunk]:
    return Chunker(max_tokens=max_tokens, overlap=overlap, encoding=encoding).chunk(doc)
