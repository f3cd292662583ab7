"""The language layer: what answers, chat, briefings and grounding know about text.

One module, pure functions over strings, shared by every stage that reads language (the offline
engine, grounding, briefings). This part: typed figures (money, percentages, counts, with their
scale) so that "25 million" is never mistaken for part of "125 million".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

_SCALES = {
    "thousand": 1e3, "k": 1e3, "million": 1e6, "mln": 1e6, "mn": 1e6, "m": 1e6, "billion": 1e9, "bn": 1e9, "b": 1e9,
    "trillion": 1e12, "tn": 1e12, "t": 1e12,
}
_NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "dozen": 12,
}
_CURRENCY = r"(?:US\$|USD\s?|EUR\s?|GBP\s?|[$€£¥₹])"
_FIGURE = re.compile(
    rf"(?P<cur>{_CURRENCY})?(?<![\w.,])(?P<num>\d{{1,3}}(?:,\d{{3}})+(?:\.\d+)?|\d+(?:\.\d+)?)(?![\d,]*\.\d)(?!,\d)"
    r"(?:\s?(?P<scale>thousand|million|billion|trillion|mln|mn|bn|tn|[kKmMbBtT])(?![\w]))?"
    r"(?:\s?(?P<pct>%|per\s?cent\b|percent\b|percentage points?\b|pp\b))?",
)
_WORD_FIGURE = re.compile(
    r"\b(?P<num>" + "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True)) + r")\b"
    r"(?:[\s-](?P<scale>thousand|million|billion|trillion))?(?:\s(?P<pct>percent|per cent))?",
    re.I,
)


@dataclass(frozen=True)
class Figure:
    """A number as a value: ``text`` as written, ``value`` with its scale applied, and its kind."""

    text: str
    value: float
    kind: str  # "percent" | "money" | "count"
    start: int
    end: int

    def matches(self, other: "Figure") -> bool:
        """Same quantity: equal values, and a percentage only ever matches a percentage."""
        if (self.kind == "percent") != (other.kind == "percent"):
            return False
        return abs(self.value - other.value) <= 1e-9 * max(1.0, abs(self.value))


@lru_cache(maxsize=8192)
def figures(text: str, *, words: bool = True) -> tuple[Figure, ...]:
    """Every figure in ``text``, digits first ("$1.2 billion", "40", "4.5%"), then number words ("two million")."""
    found: list[Figure] = []
    for m in _FIGURE.finditer(text):
        num = float(m.group("num").replace(",", ""))
        scale = m.group("scale")
        # A bare single letter after a number is a scale only in money ("$5m"), not in "5 m" of text.
        if scale and len(scale) == 1 and not m.group("cur"):
            scale = None
        value = num * _SCALES.get(scale.lower(), 1.0) if scale else num
        kind = "percent" if m.group("pct") else "money" if m.group("cur") else "count"
        end = m.end() if (scale or m.group("pct")) else m.end("num")
        found.append(Figure(text[m.start():end].strip(), value, kind, m.start(), end))
    if words:
        for m in _WORD_FIGURE.finditer(text):
            value = float(_NUMBER_WORDS[m.group("num").lower()])
            if m.group("scale"):
                value *= _SCALES[m.group("scale").lower()]
            kind = "percent" if m.group("pct") else "count"
            found.append(Figure(m.group(0), value, kind, m.start(), m.end()))
    return tuple(found)


def figure_supported(figure: Figure, haystack: str) -> bool:
    """Whether ``haystack`` states the same quantity (as digits or, for small numbers, as a word)."""
    return any(figure.matches(other) for other in figures(haystack))
