"""Query -> ranked Hits: safe query building, filters, snippets.

Any user string is safe: we extract words ourselves and pass them to the store as literal terms,
so no query syntax (quotes, NEAR, *, -, parentheses) is ever interpreted. Stop words are dropped
unless the query has nothing else, which keeps common words from scanning every row.
"""

from __future__ import annotations

import re

from .errors import QueryError
from .index import IndexStore
from .normalize import normalize_for_index
from .types import Hit

MAX_TERMS = 32
STOP_WORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have having he
    her here hers herself him himself his how i if in into is it its itself just me more most my myself no nor not
    now of off on once only or other our ours out over own same she should so some such than that the their theirs
    them then there these they this those through to too under until up very was we were what when where which
    while who whom why will with would you your yours tell say said says according article source sources
    """.split()
)
_WORD = re.compile(r"\w+", re.UNICODE)
_WORD_TAIL = re.compile(r"\w*")


def query_terms(query: str) -> list[str]:
    """Lower-cased unique words of the query, stop words removed when anything else remains."""
    words = [w.lower() for w in _WORD.findall(normalize_for_index(query)) if w.strip("_") and (len(w) > 1 or w.isdigit())]
    unique = list(dict.fromkeys(words))
    content = [w for w in unique if w not in STOP_WORDS]
    return (content or unique)[:MAX_TERMS]


RRF_K = 60  # reciprocal rank fusion constant (Cormack et al.): rank r contributes 1 / (RRF_K + r)


def retrieve(store: IndexStore, query: str, *, k: int = 6, source_glob: str | None = None,
             date_from: str | None = None, date_to: str | None = None, hybrid: bool = False) -> list[Hit]:
    """The ``k`` best chunks for ``query``: BM25, or with ``hybrid`` BM25 and the semantic channel (the
    question's vector against the chunk vectors stored at index time) fused by reciprocal rank."""
    terms = query_terms(query)
    if not terms:
        raise QueryError("the query has no searchable words", hint="use letters or digits")
    if k < 1:
        raise QueryError(f"k must be at least 1, not {k}")
    for value in (date_from, date_to):
        _check_date(value)
    filters = {"source_glob": source_glob, "date_from": date_from, "date_to": date_to}
    if not hybrid:
        hits = store.search(terms, k=k, **filters)
    else:
        from .embed import get_embedder

        depth = max(k * 3, 20)
        lexical = store.search(terms, k=depth, **filters)
        semantic = store.vector_search(get_embedder().embed_one(query), k=depth, **filters)
        hits = fuse([lexical, semantic], k=k)
    snippets = Snippets(terms)
    for hit in hits:
        hit.snippet = snippets(hit.chunk.text)
    return hits


def fuse(rankings: list[list[Hit]], *, k: int) -> list[Hit]:
    """Reciprocal rank fusion: each list votes 1/(RRF_K + rank) for its hits; ties keep the first list's order."""
    score: dict[str, float] = {}
    first: dict[str, Hit] = {}
    order: dict[str, tuple[int, int]] = {}
    for li, hits in enumerate(rankings):
        for hit in hits:
            cid = hit.chunk.id
            score[cid] = score.get(cid, 0.0) + 1.0 / (RRF_K + hit.rank)
            first.setdefault(cid, hit)
            order.setdefault(cid, (li, hit.rank))
    ranked = sorted(score, key=lambda c: (-score[c], order[c]))[:k]
    return [first[c].model_copy(update={"score": round(score[c], 5), "rank": i + 1}) for i, c in enumerate(ranked)]


_DATE = re.compile(r"\d{4}(-\d{2}(-\d{2}([T ]\d{2}(:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?)?)?)?")


def _check_date(value: str | None) -> None:
    """Dates compare as ISO strings, so anything else would silently filter out every document."""
    if value is not None and not _DATE.fullmatch(value):
        raise QueryError(f"invalid date {value!r}", hint="use YYYY-MM-DD")


def snippet(text: str, terms: list[str], *, width: int = 220) -> str:
    """A window of ``text`` around the first matched term, matches wrapped in [brackets]."""
    return Snippets(terms, width=width)(text)


class Snippets:
    """Snippets for one query: the stems and their pattern built once, then applied to each hit's text."""

    def __init__(self, terms: list[str], *, width: int = 220) -> None:
        self.width = width
        self.stems = [t[:max(4, len(t) - 2)] for t in terms]
        self.lowered = [s.lower() for s in self.stems]
        self.pattern = re.compile(r"\b(" + "|".join(re.escape(s) for s in self.stems) + r")\w*", re.I) if self.stems else None

    def _starts(self, low: str, lo: int, hi: int, *, first: bool = False) -> list[int]:
        """Offsets in ``low[lo:hi]`` where a word starts with one of the stems (only the first with ``first``)."""
        found: set[int] = set()
        for stem in self.lowered:
            i = low.find(stem, lo, hi)
            while i != -1:
                if i == lo or not _word_char(low[i - 1]):
                    found.add(i)
                    if first:
                        break
                i = low.find(stem, i + 1, hi)
        return sorted(found)

    def __call__(self, text: str) -> str:
        """The window around the first match, every match in it bracketed. ``str.find`` on the lower-cased text
        is several times faster than the case-blind pattern; the pattern decides when lower-casing would move
        offsets (a few characters lower-case to two)."""
        width = self.width
        low = text.lower()
        fast = self.pattern is not None and len(low) == len(text)
        if fast:
            found = self._starts(low, 0, len(low), first=True)
            at = found[0] if found else 0
        else:
            m = self.pattern.search(text) if self.pattern is not None else None
            at = m.start() if m else 0
        start = max(0, at - width // 3)
        end = start + width
        window = text[start:end]
        if fast:
            pieces, pos = [], start
            for i in self._starts(low, start, min(end, len(text))):
                j = _WORD_TAIL.match(text, i + 1, end).end()
                pieces += [text[pos:i], "[", text[i:j], "]"]
                pos = j
            window = "".join(pieces) + text[pos:end]
        elif self.pattern is not None:
            window = self.pattern.sub(lambda mm: f"[{mm.group(0)}]", window)
        return ("..." if start else "") + " ".join(window.split()) + ("..." if end < len(text) else "")


def _word_char(ch: str) -> bool:
    """What the pattern's \\w matches: letters, digits (any script) and the underscore."""
    return ch.isalnum() or ch == "_"
