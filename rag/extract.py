"""Context sentences for the offline engine: the retrieved chunks cut into sentences, each with what the
answer and summary code needs (its heading, paragraph, match stems, names, figures, dates, a vector).

Pure functions over the context, on the language layer (``rag.language``) and the embedder
(``rag.embed``). Sentences are de-duplicated across overlapping chunks and kept in reading order.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from .chunk import sentence_spans
from .context import ContextChunk
from .embed import get_embedder
from .language import EntityIndex, content_stems, dates, figures


@dataclass(eq=False)
class Sentence:
    ctx: ContextChunk
    start: int  # offset in the chunk text
    end: int
    text: str
    heading: str = ""  # the heading that governs it ("Amazon's model:")
    is_heading: bool = False
    paragraph: int = 0  # paragraph number within its chunk
    index: int = 0  # position in the whole context, in reading order
    stems: frozenset[str] = frozenset()
    vector: np.ndarray | None = field(default=None, repr=False)

    @property
    def doc_id(self) -> str:
        return self.ctx.chunk.doc_id

    @property
    def doc_start(self) -> int:
        return self.ctx.chunk.start + self.start

    @property
    def key(self) -> tuple[str, int]:
        return (self.ctx.chunk.doc_id, self.doc_start)

    @property
    def figures(self):
        return figures(self.text)

    @property
    def dates(self):
        return dates(self.text)


@lru_cache(maxsize=4096)
def _analyse_chunk(text: str) -> tuple[tuple[int, int, bool, str, int, frozenset[str]], ...]:
    """(start, end, is_heading, governing heading, paragraph, stems) per sentence; chunks recur across questions.

    A heading ending in ':' governs the paragraph right after it; a '#' heading governs until the next one."""
    out = []
    heading, scope_one_paragraph = "", False
    prev_end, paragraph, since_heading = 0, 0, 0
    for s, e, is_heading in sentence_spans(text, 0, len(text)):
        if "\n" in text[prev_end:s]:
            paragraph += 1
            since_heading += 1
        prev_end = e
        sentence = text[s:e]
        if is_heading:
            heading, scope_one_paragraph, since_heading = sentence.lstrip("#").strip(), not sentence.startswith("#"), 0
        elif scope_one_paragraph and since_heading > 1:
            heading = ""
        governing = "" if is_heading else heading
        out.append((s, e, is_heading, governing, paragraph, frozenset(content_stems(sentence))))
    return tuple(out)


def split_sentences(context: Sequence[ContextChunk], *, vectors: bool = True) -> list[Sentence]:
    """Sentences of every context chunk in reading order, de-duplicated across overlapping chunks."""
    out: list[Sentence] = []
    seen: set[tuple[str, int]] = set()
    for ctx in context:
        text = ctx.chunk.text
        for s, e, is_heading, heading, paragraph, stems in _analyse_chunk(text):
            sent = Sentence(ctx=ctx, start=s, end=e, text=text[s:e], heading=heading, is_heading=is_heading,
                            paragraph=paragraph, stems=stems)
            if sent.key in seen:
                continue
            seen.add(sent.key)
            sent.index = len(out)
            out.append(sent)
    if vectors and out:
        matrix = _vectors(tuple(s.text for s in out))
        for s, v in zip(out, matrix):
            s.vector = v
    return out


@lru_cache(maxsize=256)
def _vectors(texts: tuple[str, ...]) -> np.ndarray:
    return get_embedder().embed(list(texts))


@lru_cache(maxsize=256)
def _entities(texts: tuple[str, ...]) -> EntityIndex:
    return EntityIndex(texts)


def entities_of(context: Sequence[ContextChunk]) -> EntityIndex:
    """The names of the context (cached: the same chunks come back for follow-up questions)."""
    return _entities(tuple(c.chunk.text for c in context))


def idf(sentences: Sequence[Sentence]) -> dict[str, float]:
    """Inverse sentence frequency of each stem in the context (rare words weigh more)."""
    df: Counter[str] = Counter()
    for s in sentences:
        df.update(s.stems)
    n = max(1, len(sentences))
    weights = {t: math.log(1 + n / (1 + c)) for t, c in df.items()}
    weights["__absent__"] = math.log(1 + n)
    return weights


_SPLIT_PARA = re.compile(r"\n\s*\n")
