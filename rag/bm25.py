"""BM25 over precomputed postings: the index's terms, their storage as blobs, and top-k scoring with numpy.

Terms come from the language layer (``rag.language.stem``), so search and the offline answer engine
fold words the same way ("paid" -> "pay", "strategies" -> "strategy"). Postings are kept per term and
per segment as two packed arrays (chunk rowids uint32, term frequencies uint16); each index run writes
new segments, deletions are tombstones until a merge drops them, so ranking is always that of a fresh
index of the live chunks. Scoring is exact BM25 (Lucene's idf, k1=1.2, b=0.75) with the MaxScore
shortcut: a term whose best possible contribution cannot lift any unseen chunk into the top k is only
looked up for the chunks already in the running, never scanned.
"""

from __future__ import annotations

import math
import re
import unicodedata
from array import array
from collections import Counter
from collections.abc import Iterable

import numpy as np

from .language import stem
from .normalize import normalize_for_index

K1 = 1.2
B = 0.75
DEAD = np.uint32(0xFFFFFFFF)  # length of a rowid slot that holds no live chunk
MAX_TF = 0xFFFF
_PARTS = re.compile(r"[^\W_]+")
_IDENT = re.compile(r"\w*_\w*")


class _Vocabulary(dict):
    """word -> term id (-1: not a term); misses are stemmed once, so hits cost one dict look-up."""

    def __init__(self) -> None:
        super().__init__()
        self.terms: list[str] = []
        self.ids: dict[str, int] = {}

    def __missing__(self, word: str) -> int:
        term = term_of(word)
        tid = -1 if term is None else self.term_id(term)
        if len(self) < 2_000_000:  # bounded: an endless stream of new words (ids, numbers) cannot grow it forever
            self[word] = tid
        return tid

    def term_id(self, term: str) -> int:
        tid = self.ids.get(term)
        if tid is None:
            tid = self.ids[term] = len(self.terms)
            self.terms.append(term)
        return tid

    def count(self, text: str) -> Counter:
        """term id -> occurrences in a chunk text."""
        counts = Counter(map(self.__getitem__, words_of(normalize_for_index(text))))
        counts.pop(-1, None)
        return counts

    def chunk_terms(self, text: str) -> tuple[list[str], list[int]]:
        """(distinct terms, their counts) of a chunk text."""
        counts = self.count(text)
        terms = self.terms
        return [terms[t] for t in counts], list(counts.values())


# Shared word -> term cache: stemming a word costs microseconds, looking it up again nanoseconds.
VOCABULARY = _Vocabulary()


def term_of(word: str) -> str | None:
    """The index term of one lower-case word, or None when it is not searchable (one letter, or an underscore run)."""
    w = word.strip("_")
    if not w.isascii():  # "façade" is found by "facade" and the other way round (FTS5's remove_diacritics)
        w = "".join(ch for ch in unicodedata.normalize("NFKD", w) if not unicodedata.combining(ch))
    if not w or (len(w) < 2 and not w.isdigit()):
        return None
    return stem(w) if "_" not in w else w


def words_of(text: str) -> list[str]:
    """Lower-case words of already index-normalized text: letter/digit runs, plus each identifier with
    underscores whole ("capture_output" gives "capture_output", "capture" and "output")."""
    low = text.lower()
    words = _PARTS.findall(low)
    if "_" in low:
        words.extend(w for w in _IDENT.findall(low) if w.strip("_") and "_" in w.strip("_"))
    return words


def text_terms(text: str) -> list[str]:
    """The terms of a chunk text, in order, repeated as they occur (what a reference BM25 indexes)."""
    return [t for w in words_of(normalize_for_index(text)) if (t := term_of(w)) is not None]


def query_stems(terms: Iterable[str]) -> list[str]:
    """The distinct index terms of query words (each word is tokenized as index text is)."""
    out: dict[str, None] = {}
    for term in terms:
        for t in text_terms(term):
            out.setdefault(t, None)
    return list(out)


class PostingsBuffer:
    """Postings of the chunks written in the current run, compact (6 bytes each) until flushed as a segment."""

    def __init__(self, vocabulary: _Vocabulary | None = None) -> None:
        self.vocabulary = vocabulary if vocabulary is not None else _Vocabulary()
        self.clear()

    def clear(self) -> None:
        self.term_ids = array("I")
        self.tfs = array("H")
        self.rowids = array("q")
        self.lengths = array("I")
        self.counts = array("I")

    def __len__(self) -> int:
        return len(self.term_ids)

    def add(self, rowid: int, text: str) -> None:
        counts = self.vocabulary.count(text)
        self._append(rowid, counts.keys(), counts.values())

    def add_counts(self, rowid: int, terms: list[str], tfs: list[int]) -> None:
        """Add a chunk whose terms were counted elsewhere (``chunk_terms`` in a worker process)."""
        self._append(rowid, map(self.vocabulary.term_id, terms), tfs)

    def _append(self, rowid: int, tids: Iterable[int], tfs: Iterable[int]) -> None:
        n = len(self.term_ids)
        self.term_ids.extend(tids)
        tfs = list(tfs)
        self.tfs.extend(min(v, MAX_TF) for v in tfs)
        self.rowids.append(rowid)
        self.lengths.append(sum(tfs))
        self.counts.append(len(self.term_ids) - n)

    def segment(self) -> tuple[int, int, bytes, list[tuple[str, int, bytes]]]:
        """(lo rowid, hi rowid, lengths blob, [(term, df, postings blob)]) of the buffered chunks."""
        rowids = np.frombuffer(self.rowids, dtype=np.int64)
        lo, hi = int(rowids.min()), int(rowids.max())
        lengths = np.full(hi - lo + 1, DEAD, dtype=np.uint32)
        lengths[rowids - lo] = np.frombuffer(self.lengths, dtype=np.uint32)
        tids = np.frombuffer(self.term_ids, dtype=np.uint32)
        order = np.argsort(tids, kind="stable")  # stable: rowids stay ascending within each term
        tids = tids[order]
        rows = np.repeat(rowids.astype(np.uint32), np.frombuffer(self.counts, dtype=np.uint32))[order]
        tfs = np.frombuffer(self.tfs, dtype=np.uint16)[order]
        cuts = np.flatnonzero(np.diff(tids)) + 1
        starts = np.concatenate(([0], cuts)).tolist()
        ends = np.concatenate((cuts, [len(tids)])).tolist()
        terms = self.vocabulary.terms
        rows_b, tfs_b = rows.tobytes(), tfs.tobytes()
        out = []
        for (s, e, tid) in zip(starts, ends, tids[starts].tolist()):
            out.append((terms[tid], e - s, rows_b[4 * s:4 * e] + tfs_b[2 * s:2 * e]))
        return lo, hi, lengths.tobytes(), out


def pack(rows: np.ndarray, tfs: np.ndarray) -> bytes:
    return rows.astype(np.uint32).tobytes() + tfs.astype(np.uint16).tobytes()


def unpack(blob: bytes) -> tuple[np.ndarray, np.ndarray]:
    n = len(blob) // 6
    return np.frombuffer(blob, dtype=np.uint32, count=n), np.frombuffer(blob, dtype=np.uint16, count=n, offset=4 * n)


def idf(n_docs: int, df: int) -> float:
    """Lucene's BM25 idf: always positive, so a term in most chunks still counts a little."""
    return math.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))


def term_scores(rows: np.ndarray, tfs: np.ndarray, lengths: np.ndarray, n_docs: int, avgdl: float) -> np.ndarray:
    """BM25 contribution of one term to each chunk in ``rows`` (float32); ``lengths`` is indexed by rowid."""
    return contributions(tfs, lengths[rows], n_docs, avgdl)


def contributions(tfs: np.ndarray, lengths: np.ndarray, n_docs: int, avgdl: float) -> np.ndarray:
    """BM25 contribution of one term to each of its postings: term frequencies and the chunks' lengths, one per
    posting (so the term's document frequency is their number)."""
    tf = tfs.astype(np.float32)
    norm = K1 * (1.0 - B + B * lengths.astype(np.float32) / np.float32(avgdl))
    return (np.float32(idf(n_docs, len(tf))) * tf * np.float32(K1 + 1.0) / (tf + norm)).astype(np.float32)


def top_k(postings: list[tuple[np.ndarray, np.ndarray, float]], k: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The best ``k`` (rowids, scores) by descending score, ties by ascending rowid; rowids are below ``size``.

    ``postings`` holds, per query term, (ascending rowids, scores, max score). Terms are added from the
    highest max score down; once the k-th best running score exceeds what all remaining terms could add
    together, no chunk outside the running can reach the top k, so the remaining terms are only looked
    up (binary search) for the chunks in the running, never scanned. Exact: the same result as adding
    every term in full.
    """
    postings = sorted((p for p in postings if len(p[0])), key=lambda p: -p[2])
    if not postings or k < 1:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    acc = np.zeros(size, np.float32)
    remaining = float(sum(p[2] for p in postings))
    parts: list[np.ndarray] = []
    cand: np.ndarray | None = None
    i = 0
    while i < len(postings):
        rows, scores, best = postings[i]
        acc[rows] += scores  # rowids are unique within a term, so fancy-index addition is exact
        remaining -= best
        parts.append(rows)
        cand = None
        i += 1
        if i < len(postings) and sum(len(p) for p in parts) > k:
            cand = _union(parts, size)
            kth = float(np.partition(acc[cand], len(cand) - k)[len(cand) - k]) if len(cand) > k else 0.0
            if kth > remaining * (1 + 1e-5) + 1e-6:
                break
    if cand is None:
        cand = _union(parts, size)
    if i < len(postings):
        if len(cand) > k:  # chunks that cannot reach the k-th score even with every remaining term
            kth = np.partition(acc[cand], len(cand) - k)[len(cand) - k]
            cand = cand[acc[cand] + np.float32(remaining * (1 + 1e-5) + 1e-6) >= kth]
        for rows, scores, _best in postings[i:]:
            if len(cand) * 16 < len(rows):
                pos = np.searchsorted(rows, cand)
                pos[pos == len(rows)] = 0
                hit = rows[pos] == cand
                acc[cand[hit]] += scores[pos[hit]]
            else:
                acc[rows] += scores
    return _best_k(cand, acc[cand], k)


def _union(parts: list[np.ndarray], size: int) -> np.ndarray:
    if len(parts) == 1:
        return parts[0].astype(np.int64)
    total = sum(len(p) for p in parts)
    if total * 8 < size:  # sort and drop repeats (np.unique hashes, several times slower on these sizes)
        merged = np.sort(np.concatenate(parts)).astype(np.int64)
        keep = np.empty(len(merged), bool)
        keep[0] = True
        np.not_equal(merged[1:], merged[:-1], out=keep[1:])
        return merged[keep]
    seen = np.zeros(size, bool)
    for p in parts:
        seen[p] = True
    return np.flatnonzero(seen)


def _best_k(cand: np.ndarray, score: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    if len(cand) > k:
        kth = np.partition(score, len(score) - k)[len(score) - k]
        keep = score >= kth  # ties at the k-th score all stay, so the rowid tie-break below is exact
        cand, score = cand[keep], score[keep]
    order = np.lexsort((cand, -score))[:k]
    return cand[order], score[order]


def ranked(postings: list[tuple[np.ndarray, np.ndarray, float]], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Every matching chunk, best first (ties by rowid): filtered searches walk down this ranking."""
    parts = [p for p in postings if len(p[0])]
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    acc = np.zeros(size, np.float32)
    for rows, scores, _best in parts:
        acc[rows] += scores
    cand = _union([p[0] for p in parts], size)
    score = acc[cand]
    order = np.lexsort((cand, -score))
    return cand[order], score[order]
