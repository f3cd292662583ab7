"""Lexical analysis for the offline engine: sentences with headings, stems, entities, question types.

Pure functions over text. Stemming is 5-character prefix truncation (a robust, language-light
stemmer for retrieval); entities are capitalized words that are not sentence-initial function words.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from .chunk import sentence_spans
from .context import ContextChunk
from .retrieve import STOP_WORDS

QUESTION_WORDS = frozenset(
    """what which who whom whose when where why how does did do doing done is are was were be been has have had
    can could should would will may might must shall any many much kind type sort way ways thing things describe
    explain name named mention mentioned mentions according article text story piece report reported
    happen happened happening there here also just really actually exactly specifically give list""".split()
)
# Words a question uses to frame what it asks; they count for little when deciding if it is answered.
GENERIC = frozenset(
    """move moves moving make makes making made plan plans planning role play plays playing want wants wanted become
    becoming main new key doing trying try tries change changes changed focus focusing rolling roll rolls launch
    kind type ways thing things big biggest major important notable recent recently latest currently current
    company companies firm firms business use using used two three four other others
    day date year month time number amount figure total""".split()
)
# A few domain equivalences (question word -> words a source may use instead).
SYNONYMS: dict[str, tuple[str, ...]] = {
    "strategy": ("model", "approach", "playbook", "strategic"), "strategies": ("model", "approach", "strategic"),
    "plan": ("preparing", "exploring", "scaling"), "plans": ("preparing", "exploring", "scaling"),
    "prize": ("medal", "gold"), "goal": ("medal", "aim"), "medicine": ("prescription", "healthcare"),
    "drug": ("prescription",), "drugs": ("prescription",), "pharmacy": ("prescription",), "health": ("healthcare", "clinic"),
    "ai": ("artificial", "intelligence"), "competitor": ("rival", "rivalry", "compete"), "competitors": ("rival", "rivalry", "compete"),
    "compete": ("rival", "rivalry", "competing"), "competition": ("rival", "rivalry", "compete"), "rivals": ("rivalry",),
    "ceo": ("chief", "executive"), "executive": ("ceo",), "shops": ("stores", "store"), "shop": ("store",),
    "online": ("digital", "ecommerce"), "internet": ("connectivity", "satellite"), "space": ("satellite",),
}
_POSSESSIVE = re.compile(r"['’]s$")
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*", re.UNICODE)
_CAP = re.compile(r"\b[A-Z][a-zA-Z0-9&-]*(?:['’]s)?")
MONTHS = {"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "january",
          "february", "march", "april", "june", "july", "august", "september", "october", "november", "december"}
WEEKDAYS = {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}
NUMBER_WORDS = {"one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
                "twenty", "thirty", "fifty", "hundred", "thousand", "million", "billion", "trillion", "dozen",
                "half", "percent", "double", "triple", "twice"}


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """Strip one inflection (-ing, -ed, -es, -s) and a final -e, then keep at most 5 characters."""
    w = _POSSESSIVE.sub("", word.lower())
    for suffix in ("ing", "ed", "es", "s"):
        if w.endswith(suffix) and not w.endswith("ss") and len(w) - len(suffix) >= 3:
            w = w[: -len(suffix)]
            break
    if len(w) > 3 and w.endswith("e"):
        w = w[:-1]
    return w[:5]


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def expansions(term_word: str) -> set[str]:
    """Stems that count as a match for a question word: itself and its domain synonyms."""
    word = _POSSESSIVE.sub("", term_word.lower())
    return {stem(word)} | {stem(w) for w in SYNONYMS.get(word, ())}


def content_stems(text: str, *, extra_stop: frozenset[str] = frozenset()) -> list[str]:
    out = []
    for w in words(text):
        lw = _POSSESSIVE.sub("", w.lower())
        if lw in STOP_WORDS or lw in extra_stop or (len(lw) < 2 and not lw.isdigit()):
            continue
        out.append(stem(lw))
    return out


def entities(text: str, *, known: set[str] | None = None) -> list[str]:
    """Capitalized names, possessives removed, function words skipped.

    With ``known`` (names seen mid-sentence elsewhere), a sentence-initial word counts only if known:
    that keeps "Build ..." or "Crucially, ..." out while "Amazon is ..." stays in.
    """
    found = []
    for m in _CAP.finditer(text):
        word = _POSSESSIVE.sub("", m.group(0))
        lw = word.lower()
        if lw in STOP_WORDS or lw in QUESTION_WORDS or lw in MONTHS or lw in WEEKDAYS or len(word) < 2:
            continue
        initial = not text[:m.start()].strip() or text[:m.start()].rstrip()[-1] in ".!?:\"“("
        if known is not None and initial and word not in known:
            continue
        found.append(word)
    return list(dict.fromkeys(found))


_SUBJECT_START = re.compile(r"^\s*([A-Z][a-zA-Z0-9&-]+)(?:['’]s)? (?:is|are|was|were|has|have|had|on|in|said|says|will|would|\w+ed)\b")


def standalone_names(sentences: Sequence["Sentence"], known: set[str] | None = None) -> set[str]:
    """Known names seen at least once without another capitalized word beside them (organisations, not first names)."""
    known = known_entities(sentences) if known is None else known
    alone: set[str] = set()
    for s in sentences:
        if not s.is_heading:
            alone.update(_lone_capitals(s.text))
    return alone & known


@lru_cache(maxsize=8192)
def _lone_capitals(text: str) -> frozenset[str]:
    tokens = text.replace(",", " , ").split()
    alone = set()
    for i, tok in enumerate(tokens):
        name = _POSSESSIVE.sub("", tok.strip(".;:()\"“”"))
        if name[:1].isupper():
            neighbours = tokens[i - 1:i] + tokens[i + 1:i + 2]
            if not any(n[:1].isupper() for n in neighbours if n not in {",", "The", "A", "And"}) or tok.endswith(("'s", "’s")):
                alone.add(name)
    return frozenset(alone)


def known_entities(sentences: Sequence["Sentence"]) -> set[str]:
    """Names capitalized mid-sentence somewhere, or starting a sentence as its subject ("Kroger on Monday hired")."""
    known: set[str] = set()
    for s in sentences:
        if not s.is_heading:
            known.update(_sentence_names(s.text))
    return known


@lru_cache(maxsize=8192)
def _sentence_names(text: str) -> frozenset[str]:
    names = set(entities(text, known=set()))
    m = _SUBJECT_START.match(text)
    if m and m.group(1).lower() not in STOP_WORDS | QUESTION_WORDS and not m.group(1).endswith("ly"):
        names.add(m.group(1))
    return frozenset(names)


@dataclass
class Sentence:
    ctx: ContextChunk
    start: int  # offset in the chunk text
    end: int
    text: str
    heading: str = ""
    is_heading: bool = False
    index: int = 0  # position in the whole context, in reading order
    stems: set[str] = field(default_factory=set)

    @property
    def doc_start(self) -> int:
        return self.ctx.chunk.start + self.start

    @property
    def key(self) -> tuple[str, int]:
        return (self.ctx.chunk.doc_id, self.doc_start)


@lru_cache(maxsize=4096)
def _analyse_chunk(text: str) -> tuple[tuple[int, int, bool, str, frozenset[str]], ...]:
    """(start, end, is_heading, governing heading, stems) per sentence; cached, chunks recur across questions.

    A heading ending in ':' governs the paragraph right after it; a '#' heading governs until the next.
    """
    out = []
    heading, heading_scope_para = "", False
    prev_end = 0
    paragraphs_since = 0
    for s, e, is_heading in sentence_spans(text, 0, len(text)):
        if "\n" in text[prev_end:s]:
            paragraphs_since += 1
        prev_end = e
        sent_text = text[s:e]
        if is_heading:
            heading, heading_scope_para, paragraphs_since = sent_text.lstrip("#").strip(), not sent_text.startswith("#"), 0
        elif heading_scope_para and paragraphs_since > 1:
            heading = ""
        governing = "" if is_heading else heading
        out.append((s, e, is_heading, governing, frozenset(content_stems(sent_text + " " + governing))))
    return tuple(out)


def split_sentences(context: Sequence[ContextChunk]) -> list[Sentence]:
    """Sentences of every context chunk in reading order, de-duplicated across overlapping chunks."""
    out: list[Sentence] = []
    seen: set[tuple[str, int]] = set()
    for ctx in context:
        text = ctx.chunk.text
        for s, e, is_heading, heading, stems in _analyse_chunk(text):
            sent = Sentence(ctx=ctx, start=s, end=e, text=text[s:e], heading=heading, is_heading=is_heading)
            if sent.key in seen:
                continue
            seen.add(sent.key)
            sent.stems = set(stems)
            sent.index = len(out)
            out.append(sent)
    return out


def idf(sentences: Sequence[Sentence]) -> dict[str, float]:
    df: Counter[str] = Counter()
    for s in sentences:
        df.update(s.stems)
    n = max(1, len(sentences))
    return {t: math.log(1 + n / (1 + c)) for t, c in df.items()} | {"__absent__": math.log(1 + n)}


# ------------------------------------------------------------------ answer types
ANSWER_TYPES = {
    "number": re.compile(r"\bhow (many|much|big|large|long|often|far|fast|old)\b|\bwhat (percent|percentage|share|number|amount|"
                         r"price|cost|revenue|sales|figure|valuation|budget|size|growth rate|margin)\b|\bnumber of\b|"
                         r"\bhow much\b|\b(cost|spend|spent|invest|invested|pay|paid|worth|raise[sd]?)\b.*\?$", re.I),
    "date": re.compile(r"\bwhen\b|\bwhat (year|date|day|month|time)\b|\bwhich (year|date|day|month)\b|\bon what (day|date)\b", re.I),
    "person": re.compile(r"\b(name|named|called)\b|\bwho (is|was|are|were) (the|its|their|his|her)\b|\bwho (runs|leads|founded|heads|owns|said|wrote)\b", re.I),
    "entity": re.compile(r"^\s*who\b|\bwhich (?:\w+ )?(company|companies|retailer|retailers|firm|firms|rival|competitor|player|brand)s?\b", re.I),
}
_DATE_IN_TEXT = re.compile(
    r"\b(1[89]\d\d|20\d\d)\b|\b(" + "|".join(sorted(MONTHS | WEEKDAYS, key=len, reverse=True)) + r")\b\.?|"
    r"\b(past|last|next|this|coming) (week|month|year|quarter|decade)s?\b|\b(today|yesterday|tomorrow)\b|\b\w+ years? ago\b|"
    r"\b\d{1,2}(:\d\d)?\s?(am|pm|a\.m\.|p\.m\.)|\b(noon|midnight|weekdays?|weekends?|daily|weekly|annually)\b|\bQ[1-4]\b",
    re.I,
)
_NUMBER_IN_TEXT = re.compile(r"\d|\b(" + "|".join(NUMBER_WORDS) + r")\b", re.I)
_PERSON_IN_TEXT = re.compile(r"\b(?:[A-Z][a-z]+\.? )?[A-Z][a-z]+(?:-[A-Z][a-z]+)? [A-Z][a-z]+(?:-[A-Z][a-z]+)?\b")


def answer_type(question: str) -> str:
    for kind in ("number", "date", "person", "entity"):
        if ANSWER_TYPES[kind].search(question.strip()):
            return kind
    return "description"


def has_answer_type(sentence: Sentence, kind: str, *, known_entities: Iterable[str], question_entities: Iterable[str]) -> bool:
    text = sentence.text
    if kind == "number":
        return bool(_NUMBER_IN_TEXT.search(text))
    if kind == "date":
        return bool(_DATE_IN_TEXT.search(text))
    if kind == "person":
        # "Walmart U.S." is an organisation; "Denise Okafor" is a person: judge by the first word.
        orgs = {e.lower() for e in known_entities}
        for m in _PERSON_IN_TEXT.finditer(text):
            parts = m.group(0).replace(".", "").split()
            first = parts[0].lower()
            if first not in orgs and not any(p.lower() in STOP_WORDS or p.lower() in MONTHS | WEEKDAYS for p in parts):
                return True
        return False
    if kind == "entity":
        asked = {e.lower() for e in question_entities}
        return any(e.lower() not in asked for e in entities(text))
    return True


# ------------------------------------------------------------------ who acts
_ACTION = (r"(?:is|are|was|were|has|have|had|will|would|can|could|(?!versus\b|across\b|always\b|perhaps\b)\w{3,}s|"
           r"\w+ed|on \w+(?: \([^)]*\))? \w+ed)")
_NOT_SUBJECT = re.compile(r"\b(and|between|versus|than|like|against|with|of|to|from|or)\s+$", re.I)


def subject_of(text: str, names: Sequence[str]) -> str | None:
    """The player acting in the sentence: its name followed by a verb, earliest first."""
    best: tuple[int, str] | None = None
    for name in names:
        if name not in text:
            continue
        m = _subject_pattern(name).search(text)
        if m and _NOT_SUBJECT.search(text[:m.start()]):
            continue
        if m and (best is None or m.start() < best[0]):
            best = (m.start(), name)
    return best[1] if best else None


@lru_cache(maxsize=1024)
def _subject_pattern(name: str) -> re.Pattern[str]:
    return re.compile(r"\b" + re.escape(name) + r"(?:['’]s)?\b(?:,[^,]{1,40},)?\s+" + _ACTION + r"\b")
