"""Documents -> what the index writes for them: chunk spans, vectors and terms, in worker processes for big runs.

Chunking (tiktoken per sentence), embedding and counting terms are CPU work on one document at a time;
the SQLite writes are not. A run with more than one batch of documents to (re)index hands batches to a
pool of forked workers and writes their results in order as they come back; at most a few batches are
in flight, so memory stays flat. Small runs (and ``workers=1``) do the same work in the process. The
output is the same either way: the workers run the same functions on the same documents.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from . import bm25
from .chunk import Chunker
from .embed import get_embedder, to_blob
from .types import Chunk, Document

BATCH_BYTES = 256 * 1024  # document text per batch handed to a worker
MAX_WORKERS = 4


@dataclass(frozen=True)
class Prepared:
    """What the index stores for one document's chunks."""

    rows: list[tuple[int, int, int, int]]       # (ordinal, start, end, n_tokens) per chunk
    vectors: bytes                              # float16, one row per chunk
    terms: list[tuple[list[str], list[int]]]    # (distinct terms, counts) per chunk


def prepare_chunks(chunks: list[Chunk]) -> Prepared:
    vectors = to_blob(get_embedder().embed([c.text for c in chunks])) if chunks else b""
    return Prepared(rows=[(c.ordinal, c.start, c.end, c.n_tokens) for c in chunks], vectors=vectors,
                    terms=[bm25.VOCABULARY.chunk_terms(c.text) for c in chunks])


def prepare(doc: Document, chunker: Chunker) -> Prepared:
    return prepare_chunks(chunker.chunk(doc))


def default_workers() -> int:
    return max(1, min(MAX_WORKERS, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


_CHUNKER: Chunker | None = None  # set before forking: the workers inherit it with the loaded tokenizers


def _prepare_batch(docs: list[Document]) -> list[Prepared]:
    assert _CHUNKER is not None
    return [prepare(d, _CHUNKER) for d in docs]


class _Done:
    def __init__(self, value: list[Prepared]) -> None:
        self.value = value

    def ready(self) -> bool:
        return True

    def get(self) -> list[Prepared]:
        return self.value


def prepared_events(events: Iterable[object], chunker: Chunker, wanted: Callable[[Document], bool], *,
                    workers: int = 1) -> Iterator[tuple[object, Prepared | None]]:
    """Each event in order, with its ``Prepared`` when it is a document that ``wanted`` picks (else None)."""
    global _CHUNKER
    window: deque[tuple[list[object], list[bool], object]] = deque()
    pool = None
    batches = 0
    events_batch: list[object] = []
    flags: list[bool] = []
    docs: list[Document] = []
    size = 0

    def submit() -> None:
        nonlocal pool, batches, events_batch, flags, docs, size
        if docs and pool is None and workers > 1 and batches >= 1:
            global _CHUNKER
            _CHUNKER = chunker
            # Load the tokenizers, the embedding table and the lemma dictionary once, here: every worker inherits them.
            chunker.count("warm up")
            get_embedder().embed(["warm up"])
            bm25.VOCABULARY.count("warming up the lemmatizer")
            pool = multiprocessing.get_context("fork").Pool(workers)
        if pool is not None and docs:
            result: object = pool.apply_async(_prepare_batch, (docs,))
        else:
            result = _Done([prepare(d, chunker) for d in docs])
        batches += bool(docs)
        window.append((events_batch, flags, result))
        events_batch, flags, docs, size = [], [], [], 0

    def drain(block: bool) -> Iterator[tuple[object, Prepared | None]]:
        limit = 2 * workers + 1
        while window and (block or len(window) > limit or window[0][2].ready()):  # type: ignore[attr-defined]
            batch, picked, result = window.popleft()
            prepared = iter(result.get())  # type: ignore[attr-defined]
            for event, chosen in zip(batch, picked):
                yield event, next(prepared) if chosen else None

    try:
        for event in events:
            chosen = isinstance(event, Document) and wanted(event)
            events_batch.append(event)
            flags.append(chosen)
            if chosen:
                docs.append(event)  # type: ignore[arg-type]
                size += len(event.text)  # type: ignore[union-attr]
            if size >= BATCH_BYTES or len(events_batch) >= 512:
                submit()
                yield from drain(False)
        if events_batch:
            submit()
        yield from drain(True)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        _CHUNKER = None
