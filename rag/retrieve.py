"""Query -> ranked Hits: safe query building, filters, snippets.

Any user string is safe: we extract words ourselves and pass them to the store as literal terms,
so FTS5 syntax (quotes, NEAR, *, -, parentheses) is never interpreted. Stop words are dropped
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


def query_terms(query: str) -> list[str]:
    """Lower-cased unique words of the query, stop words removed when anything else remains."""
    words = [w.lower() for w in _WORD.findall(normalize_for_index(query)) if w.strip("_") and (len(w) > 1 or w.isdigit())]
    unique = list(dict.fromkeys(words))
    content = [w for w in unique if w not in STOP_WORDS]
    return (content or unique)[:MAX_TERMS]


def retrieve(store: IndexStore, query: str, *, k: int = 6, source_glob: str | None = None,
             date_from: str | None = None, date_to: str | None = None) -> list[Hit]:
    """The ``k`` best chunks for ``query`` (BM25), with highlighted snippets."""
    terms = query_terms(query)
    if not terms:
        raise QueryError("the query has no searchable words", hint="use letters or digits")
    if k < 1:
        raise QueryError(f"k must be at least 1, not {k}")
    for value in (date_from, date_to):
        _check_date(value)
    hits = store.search(terms, k=k, source_glob=source_glob, date_from=date_from, date_to=date_to)
    for hit in hits:
        hit.snippet = snippet(hit.chunk.text, terms)
    return hits


_DATE = re.compile(r"\d{4}(-\d{2}(-\d{2}([T ]\d{2}(:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?)?)?)?")


def _check_date(value: str | None) -> None:
    """Dates compare as ISO strings, so anything else would silently filter out every document."""
    if value is not None and not _DATE.fullmatch(value):
        raise QueryError(f"invalid date {value!r}", hint="use YYYY-MM-DD")


def snippet(text: str, terms: list[str], *, width: int = 220) -> str:
    """A window of ``text`` around the first matched term, matches wrapped in [brackets]."""
    stems = [t[:max(4, len(t) - 2)] for t in terms]
    pattern = re.compile(r"\b(" + "|".join(re.escape(s) for s in stems) + r")\w*", re.I) if stems else None
    m = pattern.search(text) if pattern else None
    start = max(0, (m.start() if m else 0) - width // 3)
    window = text[start:start + width]
    if pattern:
        window = pattern.sub(lambda mm: f"[{mm.group(0)}]", window)
    return ("..." if start else "") + " ".join(window.split()) + ("..." if start + width < len(text) else "")
