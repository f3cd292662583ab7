"""Normalization for matching only: the stored text is never changed.

Curly quotes, non-breaking and zero-width spaces, dashes, ligatures, case and diacritics must not
stop a quote from matching its source. ``normalize_with_map`` also returns, for every normalized
character, the offset of the original character it came from, so a match maps back to an exact span.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_QUOTES = {c: "'" for c in "\u2018\u2019\u201a\u201b\u2032\u0060\u00b4"} | {c: '"' for c in "\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb"}
_DASHES = {c: "-" for c in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"}
_DROP = {c: "" for c in "\u200b\u200c\u200d\u2060\ufeff\u00ad"}
TABLE = str.maketrans(_QUOTES | _DASHES | _DROP)


@lru_cache(maxsize=None)
def _fold_char(ch: str) -> str:
    out = unicodedata.normalize("NFKD", ch).translate(TABLE)
    return "".join(c for c in out if not unicodedata.combining(c)).casefold()


@lru_cache(maxsize=2048)
def normalize_with_map(text: str) -> tuple[str, tuple[int, ...]]:
    """Return (normalized text, origin offsets). Whitespace runs become one space.

    Cached: the same chunk texts are verified again and again."""
    out: list[str] = []
    origin: list[int] = []
    prev_space = True  # also strips leading whitespace
    for i, ch in enumerate(text):
        folded = " " if ch.isspace() else _fold_char(ch)
        for c in folded:
            if c.isspace():
                if prev_space:
                    continue
                c, prev_space = " ", True
            else:
                prev_space = False
            out.append(c)
            origin.append(i)
    if out and out[-1] == " ":
        out.pop()
        origin.pop()
    return "".join(out), tuple(origin)


def normalize(text: str) -> str:
    return normalize_with_map(text)[0]


_SPECIAL = {chr(k): ("" if v is None else v if isinstance(v, str) else chr(v)) for k, v in TABLE.items()}
_SPECIAL_RE = re.compile("[" + re.escape("".join(_SPECIAL)) + "]")


def normalize_for_index(text: str) -> str:
    """Cheap C-speed normalization for the keyword index (ligatures, full-width forms, quotes, dashes).

    ASCII text is returned as it is (NFKC and the table change nothing in it); otherwise one regex finds
    the few characters to map, where ``str.translate`` with a dict costs a look-up per character."""
    if text.isascii():
        return text
    return _SPECIAL_RE.sub(lambda m: _SPECIAL[m.group()], unicodedata.normalize("NFKC", text))


def clean_input(text: str) -> str:
    """Text from a terminal, a pipe or argv, made valid Unicode: undecodable bytes (which Python keeps as lone
    surrogates) become U+FFFD, so the text can be serialized, indexed and shown."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
