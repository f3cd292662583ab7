"""Retrieved hits -> the context given to a backend: short stable ids and token-budgeted packing.

Pure functions: the best-ranked chunks that fit the budget go in whole; nothing is cut mid-chunk.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pydantic import BaseModel

from .types import Chunk, Hit


class ContextChunk(BaseModel):
    """One chunk as a backend sees it: short id (S1, S2, ...) plus where it came from."""

    id: str
    chunk: Chunk
    source: str
    title: str = ""
    page_starts: list[int] | None = None  # where each page of the chunk's document starts (PDF)

    def prompt_vars(self) -> dict[str, str]:
        # Escaping is the template engine's job (rag.prompts.neutralize / attr), for every value alike.
        return {"id": self.id, "source": self.source, "title": self.title, "text": self.chunk.text}


def pack_context(hits: Sequence[Hit], *, budget: int, count: Callable[[str], int], overhead: int = 12) -> list[ContextChunk]:
    """The best-ranked hits whose text (plus per-source tag overhead) fits within ``budget`` tokens."""
    packed: list[ContextChunk] = []
    used = 0
    for hit in hits:
        cost = hit.chunk.n_tokens + overhead
        if used + cost > budget:
            continue  # a smaller, lower-ranked chunk may still fit
        used += cost
        packed.append(ContextChunk(id=f"S{len(packed) + 1}", chunk=hit.chunk, source=hit.source, title=hit.title))
    return packed


def context_from_chunks(chunks: Sequence[Chunk], *, source: str, title: str = "",
                        page_starts: list[int] | None = None) -> list[ContextChunk]:
    return [ContextChunk(id=f"S{i + 1}", chunk=c, source=source, title=title, page_starts=page_starts)
            for i, c in enumerate(chunks)]
