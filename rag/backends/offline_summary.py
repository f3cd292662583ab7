"""Offline strategy summaries and briefings: extraction, every item a verbatim span of a source sentence with its
citation.

Per document (:func:`summarize_document`): the organisations it is about (names from the language layer:
long forms, acronyms, possessives; people and places never become organisations), each with its thesis
(the sentences that state what it is trying to do), its moves (sentences where it acts, with their dates),
its figures (each attributed to the organisation of its clause), what the document says about its
results, and its people with their roles; the document's dated events, the questions it leaves open
(a pending vote, a deal awaiting approval) and what is at stake.

Across documents (:func:`build_briefing`): organisations merged by the names they share, with the sources
that say nothing about them; one timeline; themes that recur, citing each document; contrasts between
rivals' theses; an executive summary of chosen points that the rest of the briefing does not repeat.
Deterministic, so CI can check it.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..context import ContextChunk
from ..extract import Sentence, entities_of, split_sentences
from ..language import FUNCTION_WORDS, PUBLIC_BODIES, DateMention, EntityIndex, acronym_of, content_stems, is_acronym, stem
from ..normalize import normalize
from ..types import (
    Briefing, Citation, CitedItem, DatedItem, FigureItem, Organisation, OrganisationProfile, Person, SourceSummary,
    StrategySummary, TimelineEntry,
)
from .offline_reading import (
    DOUBT, THESIS_NOUNS, Reading, clause_around, date_sort_key, document_date, event_dates, figure_text, org_salience,
    headline_thesis, history_first, phrase_around, read_document, thesis_rank,
)

MAX_ORGANISATIONS = 8
MAX_THESIS = 3
MAX_MOVES = 6
MAX_FIGURES = 30
MAX_RESULTS = 3
MAX_OPEN_QUESTIONS = 5
MAX_IMPLICATIONS = 3
MAX_THEMES = 3
MAX_TIMELINE = 12
EXECUTIVE_POINTS = 5


def _cite(s: Sentence) -> list[Citation]:
    return [Citation(source=s.ctx.source, chunk_id=s.ctx.id, quote=s.text)]


def _item(s: Sentence) -> CitedItem:
    return CitedItem(text=s.text, citations=_cite(s))


_CONTRAST = re.compile(r"\b(?:no longer|not only|rather than|instead of|isn't|is not|are not|aren't|not just)\b", re.I)
_CONTINUES = re.compile(r"^\s*(?:it|this|that|they|these)\s+(?:is|are|was|were|has|have)\b", re.I)


def _with_continuation(s: Sentence, following: dict[int, Sentence]) -> CitedItem:
    """A sentence with the one that completes it: "... is no longer about carts and clicks." + "It is about who owns
    the rails ..." is one point. The quote spans both, as the chunk writes them."""
    nxt = following.get(id(s))
    if nxt is not None and nxt.ctx is s.ctx and _CONTRAST.search(s.text) and _CONTINUES.match(nxt.text):
        gap = s.ctx.chunk.text[s.end:nxt.start]
        if not gap.strip() and "\n\n" not in gap:
            text = s.ctx.chunk.text[s.start:nxt.end]
            return CitedItem(text=text, citations=[Citation(source=s.ctx.source, chunk_id=s.ctx.id, quote=text)])
    return _item(s)


def _centrality(readings: Sequence[Reading]) -> dict[int, float]:
    """How central each sentence is to its document: similarity to the document's mean vector, plus how many of
    its words other sentences share (0..~2)."""
    vectors = [r.s.vector for r in readings if r.s.vector is not None]
    if not vectors:
        return {id(r): 0.0 for r in readings}
    mean = np.mean(np.stack(vectors), axis=0)
    mean = mean / (np.linalg.norm(mean) or 1.0)
    df: Counter[str] = Counter(t for r in readings for t in r.s.stems)
    n = max(1, len(readings))
    out = {}
    for r in readings:
        sem = float(r.s.vector @ mean) if r.s.vector is not None else 0.0
        shared = sum(min(1.0, (df[t] - 1) / 3) for t in r.s.stems) / math.sqrt(1 + len(r.s.stems))
        out[id(r)] = sem + 0.5 * shared / math.sqrt(math.log(2 + n))
    return out


def _move_score(r: Reading, central: float) -> float:
    return central + 0.6 * bool(r.figures) + 0.5 * bool(r.events) + 0.3 * any(f.kind == "money" for f, _ in r.figures)


def summarize_document(doc_id: str, title: str, context: list[ContextChunk], *, date: str | None = None) -> StrategySummary:
    sentences = split_sentences(context)
    entities = entities_of(context)
    readings, people = read_document(sentences, entities)
    readings = [r for r in readings if not _is_boilerplate(r.s.text)]
    central = _centrality(readings)
    source = context[0].source if context else doc_id
    date = document_date(context[0].chunk.text if context else "", source, date)
    default_year = _year_of(date)

    _fold_units(readings)
    salience = org_salience(readings)
    acting = Counter(id(r.actor) for r in readings if r.actor is not None and not r.quote and not r.speech)
    headline = headline_thesis(sentences, entities)
    body_headline = next((r for r in readings if headline is not None and r.s is headline.s), None)
    if body_headline is not None:  # read as the first body sentence: it states the thesis itself, once
        if body_headline.thesis is None:
            body_headline.thesis, body_headline.thesis_strength = headline.thesis, headline.thesis_strength
        headline = None
    theses = Counter(id(r.thesis) for r in readings + ([headline] if headline else []) if r.thesis is not None)
    mentioned = Counter(id(e) for r in readings for e in r.orgs)
    by_id = {id(e): e for r in readings + ([headline] if headline else [])
             for e in r.orgs + [x for x in (r.actor, r.thesis, r.topic) if x is not None]}
    # A section for each organisation that states a strategy or acts: more than once, or once in a dated or counted
    # move ("Kroger on Monday hired ..."); names only mentioned in passing get none.
    newsworthy = Counter(id(r.actor) for r in readings if r.actor is not None and not r.quote and (r.events or r.figures))
    # The organisation a document is about, even when others speak for it ("Pruitt said the authority ...").
    about = Counter(id(r.topic) for r in readings if r.topic is not None)
    for i, n in about.items():
        if n >= max(3, len(readings) // 4):
            acting[i] = max(acting[i], 1)
            mentioned[i] = max(mentioned[i], 2)
    # An organisation named more than once whose own figures the text gives ("UTAS, which represents about 48,000
    # agency workers") keeps them, so a briefing can file them under its section from other documents.
    owns = Counter(id(o) for r in readings for _, o in r.figures if o is not None)
    chosen = [by_id[i] for i, _ in salience.most_common()
              if by_id[i].kind == "organisation" and (theses[i] or (acting[i] and (mentioned[i] >= 2 or newsworthy[i]))
                                                      or (owns[i] and mentioned[i] >= 2))]
    # A shareholder or backer ("Brackwater Capital, a private equity firm, bought 35% of Tarnby") is a party to the
    # story, not a player in it, unless it states a strategy of its own more than once.
    backers = _backers(readings)
    chosen = [e for e in chosen if id(e) not in backers or theses[id(e)] >= 2][:MAX_ORGANISATIONS]

    used: set[int] = set()
    orgs: list[Organisation] = []
    for e in chosen:
        own = [r for r in readings if r.thesis is e and not (r.background and history_first(r.s.text))] + \
            ([headline] if headline is not None and headline.thesis is e else [])
        if any(r.thesis_strength >= 2 for r in own):
            # A weak statement of intent that is still pending ("plans to bid in the June auction") is an open
            # question rather than the strategy, when a plainer statement of the strategy exists.
            own = [r for r in own if r.thesis_strength >= 2 or not r.pending]
        if len(own) < 2:  # one statement or none: with its plainest statement of what it will do
            own += [r for r in _plans_of(e, readings, central) if r not in own][:1]
        own.sort(key=lambda r: (-r.thesis_strength, r.s.index))
        strong = [r for r in own if r.thesis_strength >= 2]
        thesis = (strong if len(strong) >= 2 else own)[:MAX_THESIS]  # the plainest statements first
        used.update(id(r) for r in thesis)
        orgs.append(Organisation(name=e.name, aliases=sorted(e.aliases - {e.name}), thesis=[_item(r.s) for r in thesis]))

    # Open questions before moves: "The deal needs approval from ..." is what is pending, not a move.
    pending = [r for r in readings if r.pending and id(r) not in used and not (r.quote and not r.orgs and not DOUBT.search(r.s.text))]
    pending.sort(key=lambda r: (-(bool(r.events) + bool(r.orgs)), -central[id(r)], r.s.index))
    open_questions = sorted(pending[:MAX_OPEN_QUESTIONS], key=lambda r: r.s.index)
    used.update(id(r) for r in open_questions)

    for org, e in zip(orgs, chosen):
        results = [r for r in readings if id(r) not in used and r.result and not r.quote and
                   (r.actor is e or (r.figures and r.figures[0][1] is e))]
        results = sorted(results, key=lambda r: (-central[id(r)], r.s.index))[:MAX_RESULTS]
        used.update(id(r) for r in results)
        moves = [r for r in readings if id(r) not in used and r.actor is e and not r.quote and not r.background]
        moves = sorted(sorted(moves, key=lambda r: (-_move_score(r, central[id(r)]), r.s.index))[:MAX_MOVES],
                       key=lambda r: r.s.index)
        used.update(id(r) for r in moves)
        org.results = [_item(r.s) for r in sorted(results, key=lambda r: r.s.index)]
        org.moves = [DatedItem(text=r.s.text, citations=_cite(r.s), date=_best_date(r).text if r.events else None)
                     for r in moves]
        org.figures = _figures_of(e, readings)
        org.people = [Person(name=a.person.name, role=a.role, citations=_cite(a.sentence))
                      for a in people.values() if a.organisation is e]

    timeline = _timeline(readings, default_year, source)
    rest = [r for r in readings if id(r) not in used and not r.quote and not r.background and len(r.s.text.split()) >= 8]
    rest.sort(key=lambda r: (-central[id(r)], r.s.index))
    # What is at stake: the document's own reading of the situation, not one more figure or move.
    implications = [r for r in rest if not r.figures and (r.actor is None or len(r.orgs) >= 2)][:MAX_IMPLICATIONS]
    used.update(id(r) for r in implications)
    themes = [r for r in rest if id(r) not in used and r.actor is None][:MAX_THEMES]
    following = {id(a.s): b.s for a, b in zip(readings, readings[1:])}
    used_sentences = {id(r.s) for r in readings if id(r) in used}
    order = lambda rs: [_with_continuation(r.s, {k: v for k, v in following.items() if id(v) not in used_sentences})  # noqa: E731
                        for r in sorted(rs, key=lambda r: r.s.index)]
    return StrategySummary(doc_id=doc_id, title=title, date=date, organisations=orgs, themes=order(themes),
                           timeline=timeline, implications=order(implications), open_questions=order(open_questions))


_BACKER_NOUNS = (r"(?:fund|investor|investors|investment firm|investment group|private[- ]equity firm|private[- ]equity group|"
                 r"buyout firm|buyout group|asset manager|hedge fund|venture capital firm|shareholder)")
_BACKER_BEFORE = re.compile(rf"\b(?:the|a|an|its)\s+(?:[\w-]+\s+){{0,2}}?{_BACKER_NOUNS}\s*$|\bled\s+by\s+(?:the\s+)?(?:[\w-]+\s+){{0,3}}?$", re.I)
_BACKER_AFTER = re.compile(rf"^(?:\s*,\s*(?:a|an|the)\s+(?:[\w-]+\s+){{0,3}}?{_BACKER_NOUNS}\b"
                           r"|\s*,\s*which\s+(?:led\s+(?:\w+['’]s\s+|the\s+|a\s+)?(?:funding|investment|financing)\s+round|"
                           r"(?:owns|holds|controls)\s+(?:about\s+|around\s+|nearly\s+|roughly\s+|almost\s+)?"
                           r"(?:\d+(?:\.\d+)?\s*(?:%|per cent)|a\s+(?:\w+\s+)?stake))"
                           r"|\s+(?:will\s+)?(?:owns?|holds?|bought|controls?)\s+(?:about\s+|around\s+|nearly\s+|roughly\s+|almost\s+)?"
                           r"\d+(?:\.\d+)?\s*(?:%|per cent)\s+of\b)", re.I)


def _backers(readings: Sequence[Reading]) -> set[int]:
    """Organisations the text presents as holding or backing another: a fund, a private-equity owner, the investor
    that led a round, one that owns a share of another."""
    out: set[int] = set()
    for r in readings:
        for e in r.orgs:
            for n in e.names():
                for m in re.finditer(rf"(?<![\w]){re.escape(n)}(?![\w])", r.s.text):
                    if _BACKER_BEFORE.search(r.s.text[max(0, m.start() - 60):m.start()]) or \
                            _BACKER_AFTER.match(r.s.text[m.end():m.end() + 80]):
                        out.add(id(e))
    return out


def _fold_units(readings: Sequence[Reading]) -> None:
    """A unit or parent named after an organisation ("Halberd Group" beside "Halberd Telecom") that states no strategy
    and acts at most once is read as that organisation; one with a strategy of its own keeps its own section."""
    acting: Counter[int] = Counter(id(r.actor) for r in readings if r.actor is not None)
    stated = {id(r.thesis) for r in readings if r.thesis is not None}
    mentioned: Counter[int] = Counter(id(e) for r in readings for e in r.orgs)
    orgs = {id(e): e for r in readings for e in r.orgs}
    into: dict[int, object] = {}
    for e in orgs.values():
        if id(e) in stated or acting[id(e)] > 1 or " " not in e.name:
            continue
        head = e.name.split()[0]
        bigger = [o for o in orgs.values() if o is not e and any(n.split()[0] == head for n in o.names())
                  and mentioned[id(o)] > mentioned[id(e)]]
        if bigger:
            target = max(bigger, key=lambda o: (id(o) in stated, mentioned[id(o)]))
            into[id(e)] = target
            target.aliases = set(target.aliases) | e.names()  # type: ignore[attr-defined]
    if not into:
        return
    for r in readings:
        r.orgs = list(dict.fromkeys(into.get(id(e), e) for e in r.orgs))  # type: ignore[misc]
        r.actor = into.get(id(r.actor), r.actor) if r.actor is not None else None  # type: ignore[assignment]
        r.topic = into.get(id(r.topic), r.topic) if r.topic is not None else None  # type: ignore[assignment]
        r.figures = [(f, into.get(id(o), o) if o is not None else None) for f, o in r.figures]  # type: ignore[misc]


_BOILERPLATE = re.compile(r"^\s*(?:by\s+[A-Z][^|\n]{2,60}\|)|^\s*(?:copyright|©|all rights reserved)\b|"
                          r"\bpermission is hereby granted\b|\bwithout warranty\b", re.I)


def _is_boilerplate(text: str) -> bool:
    """Bylines and licence text: never a point of a briefing."""
    return bool(_BOILERPLATE.search(text))


def _year_of(date: str | None) -> int | None:
    m = re.search(r"(?:19|20)\d{2}", date or "")
    return int(m.group(0)) if m else None


def _figures_of(e, readings: Sequence[Reading]) -> list[FigureItem]:
    out: dict[str, FigureItem] = {}
    for r in readings:
        for f, owner in r.figures:
            if owner is not e:
                continue
            value = figure_text(r.s.text, f)
            if value in out:
                continue
            out[value] = FigureItem(value=value, text=phrase_around(r.s.text, f.start, f.end, skip=sorted(e.names(), key=len, reverse=True)),
                                    citations=_cite(r.s))
    return list(out.values())[:MAX_FIGURES]  # in the order the document gives them


def _best_date(r: Reading):
    """The most precise date of a sentence: "Feb. 9" over "Monday", a day and month over a month alone."""
    return max(r.events, key=lambda d: (bool(re.search(r"\d", d.text)) + bool(re.search(r"[A-Za-z]", d.text)), -d.start))


_REPORTING_PERIOD = re.compile(r"(?:in\s+|for\s+|during\s+)?(?:(?:last|this|the)\s+(?:financial\s+|fiscal\s+)?(?:year|quarter|half|month)"
                               r"|(?:the\s+)?(?:first|second|third|fourth)\s+(?:half|quarter)(?:\s+of\s+(?:19|20)\d{2})?|(?:19|20)\d{2})", re.I)


_SHARE_MOVE = re.compile(r"^\s*(?:(?:The\s+)?(?:[A-Z][\w&'’.-]*\s+){0,4}?(?:[A-Z][\w&.-]*['’]s?\s+)?shares|Shares\s+(?:in|of)\s+"
                         r"(?:[A-Z][\w&'’.-]*\s+){1,5})\s*(?:\w+\s+)?(?:rose|fell|jumped|dropped|climbed|slid|slumped|gained|lost|"
                         r"surged|tumbled|sank|soared|plunged|were\s+(?:flat|unchanged|down|up)|closed|ended)\b")


def _past_period(text: str, d: DateMention, default_year: int | None) -> bool:
    """The date is a reporting period that has ended ("last year", "in the first half", "in 2025" in a 2026 story),
    not a target ("by 2028") or a day."""
    if not _REPORTING_PERIOD.fullmatch(d.text.strip()) or re.search(r"\b(?:by|before|until|from|to)\s*$", text[:d.start]):
        return False
    year = re.search(r"(?:19|20)\d{2}", d.text)
    return year is None or default_year is None or int(year.group(0)) <= default_year


def _timeline(readings: Sequence[Reading], default_year: int | None, source: str) -> list[TimelineEntry]:
    """Dated events of the document, one per sentence, in date order (undated ones by position)."""
    events = []
    for r in readings:
        if not r.events or r.quote or not (r.topic or r.pending or len(r.orgs) > 1):  # a joint event has no one topic
            continue
        if _SHARE_MOVE.match(r.s.text):
            continue  # the market's reaction ("Shares in Encore rose 8% in London on Monday") is a figure, not an event
        d = _best_date(r)
        if r.result and _past_period(r.s.text, d, default_year):
            continue  # results for a period ("revenue rose 11% to £214 million in 2025") are figures, not events
        key = date_sort_key(d.text, default_year)
        events.append((key, r, d))
    # The most telling events (a day and month, an organisation acting), shown in date order.
    events.sort(key=lambda x: (-(bool(re.search(r"\d", x[2].text)) + bool(x[1].actor) + bool(x[1].figures)), x[1].s.index))
    events = sorted(events[:MAX_TIMELINE], key=lambda x: (x[0] is None, x[0] or (0, 0, 0), x[1].s.index))
    out = []
    for key, r, d in events:
        org = r.actor or r.topic or (r.orgs[0] if r.orgs else None)
        names = sorted(org.names(), key=len, reverse=True) if org else []
        text = phrase_around(r.s.text, d.start, d.end, before=9, after=6, skip=names)
        out.append(TimelineEntry(date=d.text, text=text, citations=_cite(r.s), organisation=org.name if org else None,
                                 source=source))
    return out


# ------------------------------------------------------------------ across documents
@dataclass
class _Group:
    names: set[str]
    parts: list[tuple[int, Organisation]]  # (summary position, organisation)


def _name_keys(org: Organisation) -> set[str]:
    keys = {normalize(n).lower() for n in [org.name, *org.aliases]}
    keys |= {acronym_of(n).lower() for n in [org.name, *org.aliases] if len(n.split()) > 1 and len(acronym_of(n)) >= 2}
    return {k for k in keys if k}


def _merge_organisations(summaries: Sequence[StrategySummary]) -> list[_Group]:
    groups: list[_Group] = []
    for i, summary in enumerate(summaries):
        for org in summary.organisations:
            keys = _name_keys(org)
            hits = [g for g in groups if g.names & keys]
            if not hits:
                groups.append(_Group(names=set(keys), parts=[(i, org)]))
                continue
            keep = hits[0]
            for other in hits[1:]:
                keep.names |= other.names
                keep.parts += other.parts
                groups.remove(other)
            keep.names |= keys
            keep.parts.append((i, org))
    # "Greenacre Corner" (a store format) in one document and "Greenacre" in another: a name that begins with another
    # organisation's own name is a unit or brand of it.
    for g in sorted(groups, key=lambda g: -sum(len(o.thesis) + len(o.moves) for _, o in g.parts)):
        if g not in groups:
            continue
        for other in list(groups):
            if other is g:
                continue
            names = {normalize(o.name).lower() for _, o in other.parts}
            if any(n.startswith(k + " ") for n in names for k in g.names if " " not in k and not k.isupper()) and \
                    not any(o.thesis for _, o in other.parts):
                g.names |= other.names
                g.parts += other.parts
                groups.remove(other)
    return groups


def _by_corpus_names(groups: list[_Group], corpus: EntityIndex) -> list[_Group]:
    """Sections as the whole corpus reads the names: a document read alone can take a product, a place or a
    person for an organisation ("Durona yielded 14% more ..." where another document says "Durona, a durum wheat
    bred by Veldmark Genetics"), or keep apart two names of one ("Campos del Duero" of "Cooperativa Campos del Duero
    (CCD)"). Groups naming one corpus organisation merge; groups whose names the corpus reads as something else go."""
    out: list[_Group] = []
    owner: dict[int, _Group] = {}
    for g in groups:
        found = [e for _, o in g.parts for n in [o.name, *o.aliases] if (e := corpus.resolve(n)) is not None]
        if found and not any(e.kind == "organisation" for e in found):
            continue
        e = next((e for e in found if e.kind == "organisation"), None)
        if e is not None and id(e) in owner:
            keep = owner[id(e)]
            keep.names |= g.names
            keep.parts += g.parts
            continue
        if e is not None:
            owner[id(e)] = g
        out.append(g)
    return out


def _canonical(group: _Group) -> tuple[str, list[str]]:
    """The name a document introduced the organisation with (a multiword long form), else the one most used."""
    names = Counter(org.name for _, org in group.parts)
    every = {n for _, org in group.parts for n in [org.name, *org.aliases]}
    long = [n for n in names if len(n.split()) > 1 and not is_acronym(n)]
    if long:
        best = max(long, key=lambda n: (names[n], len(n)))
    else:
        best = max(names, key=lambda n: (names[n], not is_acronym(n), len(n)))
        starts = [n for n in every if len(n.split()) > 1 and n.split()[0] == best]
        if starts:
            best = max(starts, key=lambda n: (sum(n in (o.name, *o.aliases) for _, o in group.parts), len(n)))
    return best, sorted(every - {best})


def _mentions_any(text: str, names: Sequence[str]) -> bool:
    return any(re.search(rf"(?<![\w]){re.escape(n)}(?![\w])", text) for n in names)


def _dedupe(items: list, limit: int) -> list:
    seen: set[str] = set()
    out = []
    for item in items:
        key = normalize(item.text).lower()
        if key in seen:
            continue
        seen.add(key)
        out.append(item)
    return out[:limit]


def _thesis_clause(text: str) -> str:
    """What a thesis sentence says the organisation is trying to do: the part after "'s plan:", "is betting that",
    "wants to", ... (verbatim); the whole sentence when there is no such cue."""
    m = re.search(rf"\b(?:{THESIS_NOUNS})\b\s*(?::|is to|is|was|rests on|centres on|centers on|hinges on)\s+", text) or \
        re.search(r"\b(?:betting|wagering|banking|counting)\s+(?:that|on)\s+|\bbets\s+(?:that|on)\s+|"
                  r"\b(?:wants|aims|plans|hopes|intends|seeks|vows|pledges|promises)\s+(?=to\b)|"
                  r"\b(?:is|are)\s+(?:not\s+)?trying\s+(?=to\b)|\bdoubling down on\s+|\bdoubles down on\s+", text)
    clause = text[m.end():] if m else text
    aside = _DASH_ASIDE.search(clause)
    if aside and len(clause[:aside.start()].split()) < 6:  # "5G fixed wireless access — broadband by radio — can replace"
        clause = clause[:aside.start()] + " " + clause[aside.end():]
        if clause not in text:
            clause = text[m.end():] if m else text
    clause = clause.strip().rstrip(".")
    words = clause.split()
    if len(words) > 24:
        cut = re.search(r"[,;—–]", " ".join(words[:24])[40:])
        clause = " ".join(words[:24]) if not cut else " ".join(words[:24])[:40 + cut.start()]
    clause = clause.strip().rstrip(",;:—– ")
    return clause if clause and clause in text else text


def build_briefing(title: str, summaries: list[StrategySummary], documents: dict[str, dict[str, str]]) -> Briefing:
    """A cross-document briefing assembled from the per-document summaries (which carry verified citations)."""
    texts = {s.doc_id: str(documents.get(s.doc_id, {}).get("text", "")) for s in summaries}
    sources = {s.doc_id: str(documents.get(s.doc_id, {}).get("source", s.doc_id)) for s in summaries}
    years = {s.doc_id: _year_of(s.date) for s in summaries}
    corpus = EntityIndex([t for t in texts.values() if t])
    groups = _by_corpus_names(_merge_organisations(summaries), corpus)

    profiles: list[OrganisationProfile] = []
    weight: dict[str, float] = {}
    for g in groups:
        name, aliases = _canonical(g)
        parts = [org for _, org in sorted(g.parts, key=lambda p: p[0])]
        names = [name, *aliases]
        docs = [summaries[i].doc_id for i, _ in g.parts]
        mentioned = [d for d in texts if d in docs or _mentions_any(texts[d], names)]
        silent = [sources[d] for d in texts if d not in mentioned]
        moves = _dedupe([m for o in parts for m in o.moves], 4 * MAX_MOVES)
        moves.sort(key=lambda m: (date_sort_key(m.date or "", None) is None,))
        people: dict[str, Person] = {}
        for o in parts:
            for p in o.people:
                if (e := corpus.resolve(p.name)) is not None and e.kind == "organisation":
                    continue  # a document read alone took an organisation for a person
                if p.name not in people or (not people[p.name].role and p.role):
                    people[p.name] = p
        figures: dict[str, FigureItem] = {}
        for o in parts:
            for f in o.figures:
                figures.setdefault(f.value, f)
        # Each document lists its plainest statement first (a heading "X's model:" makes its paragraph one).
        ranked = [(3 if i == 0 else thesis_rank(t.text), t) for o in parts for i, t in enumerate(o.thesis)]
        thesis = _dedupe([t for _, t in sorted(ranked, key=lambda x: -x[0])], 100)
        profile = OrganisationProfile(
            name=name, aliases=aliases, thesis=thesis[:MAX_THESIS + 1],
            moves=moves[:MAX_MOVES + 2], figures=list(figures.values())[:MAX_FIGURES + 10],
            results=_dedupe([r for o in parts for r in o.results], MAX_RESULTS + 1), people=list(people.values()),
            documents=[sources[d] for d in mentioned], silent=silent)
        profiles.append(profile)
        weight[name] = 3 * len(profile.thesis) + len(profile.moves) + len(profile.results) + 2 * len(set(docs))
    # Figures alone make no section: they were kept for an organisation that acts in some other document.
    profiles = [p for p in profiles if p.thesis or p.moves or p.results]
    # A party that states no strategy and does one undated thing in the whole corpus ("The union said it would seek
    # guarantees ...") is mentioned in passing beside players that do: no section of its own. A dated move is news
    # ("Kroger on Monday (Feb. 9) hired ...") and keeps one.
    if sum(bool(p.thesis) for p in profiles) >= 2:
        profiles = [p for p in profiles if p.thesis or len(p.moves) + len(p.results) > 1 or any(m.date for m in p.moves)]
        # A regulator, council or union that states no strategy of its own rules on, objects to or bargains over the
        # players' plans: its words are in their sections, the timeline and the open questions, not a section.
        profiles = [p for p in profiles if p.thesis or not _is_body(p.name)]
    profiles.sort(key=lambda p: (-weight[p.name], p.name))
    _one_organisation_per_person(profiles)

    contrasts = _contrasts(profiles, summaries)
    timeline = _briefing_timeline(summaries, profiles, sources, years)
    open_questions = _dedupe([q for s in summaries for q in s.open_questions], 8)
    implications = _dedupe([i for s in summaries for i in s.implications], 5)
    themes = _themes(summaries, profiles, texts) if len(summaries) > 1 else _dedupe([t for s in summaries for t in s.themes], MAX_THEMES)

    executive = ([contrasts[0]] if contrasts else []) + _executive_points(
        profiles, implications, themes if len(summaries) == 1 else [], open_questions,
        EXECUTIVE_POINTS - (1 if contrasts else 0))
    taken = {normalize(c.quote) for item in executive[1 if contrasts else 0:] for c in item.citations}

    def fresh(items: list) -> list:
        return [i for i in items if normalize(i.text) not in taken]

    for p in profiles:
        p.moves, p.results = fresh(p.moves), fresh(p.results)
    source_list = []
    for s in summaries:
        meta = documents.get(s.doc_id, {})
        lead = next(iter([t for o in s.organisations for t in o.thesis] + s.themes + s.implications +
                         [m for o in s.organisations for m in o.moves] + s.timeline), None)
        if lead is not None:
            source_list.append(SourceSummary(doc_id=s.doc_id, source=sources[s.doc_id], title=s.title or str(meta.get("title", "")),
                                             date=s.date, summary=CitedItem(text=lead.text, citations=lead.citations)))
    return Briefing(title=title, executive_summary=executive, organisations=profiles, contrasts=contrasts[1:],
                    timeline=timeline, themes=fresh(themes) if len(summaries) == 1 else themes,
                    implications=fresh(implications), open_questions=fresh(open_questions), sources=source_list)


_FORWARD = re.compile(r"\b(?:will|would|plans?\s+to|planned\s+to|aims?\s+to|aimed\s+to|intends?\s+to|intended\s+to|is\s+to|"
                      r"are\s+to|is\s+going\s+to|wants?\s+to|wanted\s+to|hopes?\s+to|seeks?\s+to|is\s+preparing\s+to|"
                      r"targets?|is\s+targeting)\b", re.I)
_HORIZON_WORDS = re.compile(r"\b(?:by|before|within|over|from|in)\s+(?:the\s+)?(?:end\s+of\s+|next\s+|coming\s+)?"
                            r"(?:(?:19|20)\d{2}|year|years|decade|months)\b|\bnext\s+year\b", re.I)


def _plans_of(e, readings: Sequence[Reading], central: dict[int, float]) -> list[Reading]:
    """What an organisation that acts more than once (or on a date) says it will do: its own sentences with a
    forward-looking verb (not quotations, speech about others, results, background or steps still pending), one
    with a horizon first, then the most central."""
    acts = [r for r in readings if r.actor is e and not r.quote and not r.background]
    if len(acts) < 2 and not any(r.events for r in acts):
        return []  # mentioned in passing: its one plan does not make it a player
    plans = [r for r in acts if not r.speech and not r.result and not r.pending and _FORWARD.search(r.s.text)]
    return sorted(plans, key=lambda r: (not _HORIZON_WORDS.search(r.s.text), -central[id(r)], r.s.index))


_BODY_WORDS = PUBLIC_BODIES | {"union", "association", "federation", "regulator", "inspectorate", "ombudsman", "tribunal"}


def _is_body(name: str) -> bool:
    """A public body or a representative one, by the last word of its name ("Dental Standards Commission")."""
    words = name.replace("’", "'").split()
    return bool(words) and words[-1].lower().strip(".,'") in _BODY_WORDS


def _one_organisation_per_person(profiles: Sequence[OrganisationProfile]) -> None:
    """A person listed under several organisations (documents read apart can guess differently) stays under the one
    their own sentence names nearest to them."""
    where: dict[str, list[OrganisationProfile]] = {}
    for p in profiles:
        for person in p.people:
            where.setdefault(person.name, []).append(p)
    for name, owners in where.items():
        if len(owners) < 2:
            continue

        def distance(p: OrganisationProfile) -> int:
            person = next(x for x in p.people if x.name == name)
            quote = person.citations[0].quote if person.citations else ""
            at = quote.find(name)
            spots = [m.start() for n in [p.name, *p.aliases] for m in re.finditer(rf"(?<![\w]){re.escape(n)}(?![\w])", quote)]
            return min((abs(x - at) for x in spots), default=1 << 20)

        keep = min(owners, key=distance)
        for p in owners:
            if p is not keep:
                p.people = [x for x in p.people if x.name != name]


_DASH_ASIDE = re.compile(r"\s[—–]\s[^—–]{1,120}\s[—–]\s")


def _contrasts(profiles: Sequence[OrganisationProfile], summaries: Sequence[StrategySummary]) -> list[CitedItem]:
    """"A bets on X; B on Y": pairs of organisations with stated theses that the same document discusses (rivals,
    partners, the two sides of a deal), most important first."""
    with_thesis = [p for p in profiles if p.thesis]
    out = []
    for i, a in enumerate(with_thesis):
        for b in with_thesis[i + 1:]:
            if not set(a.documents) & set(b.documents):
                continue
            ta, tb = a.thesis[0], b.thesis[0]
            ca, cb = _thesis_clause(ta.text), _thesis_clause(tb.text)
            out.append(CitedItem(text=f"{a.name}: {ca}; {b.name}: {cb}.", citations=ta.citations + tb.citations))
            if len(out) == 3:
                return out
    return out


def _briefing_timeline(summaries: Sequence[StrategySummary], profiles: Sequence[OrganisationProfile],
                       sources: dict[str, str], years: dict[str, int | None]) -> list[TimelineEntry]:
    entries = []
    # A document without a date of its own is read in the earliest year the others name.
    named = [y for y in years.values() if y] or [int(m.group(0)) for s in summaries for e in s.timeline
                                                  for m in [re.search(r"(?:19|20)\d{2}", e.date or "")] if m]
    fallback = min(named) if named else None
    for order, s in enumerate(summaries):
        for item in s.timeline:
            org = next((p.name for p in profiles if item.organisation and item.organisation in (p.name, *p.aliases)), None)
            key = date_sort_key(item.date or "", years.get(s.doc_id) or fallback)
            entries.append((key, order, item.model_copy(update={"organisation": org or item.organisation,
                                                                 "source": sources[s.doc_id]})))
    entries.sort(key=lambda x: (x[0] is None, x[0] or (0, 0, 0), x[1]))
    return _dedupe([e for _, _, e in entries], 3 * MAX_TIMELINE)


def _terms(text: str, stop: set[str]) -> set[str]:
    """Content words and two-word phrases of a text (lowercase, as written), names and figures left out."""
    words = [w for w in re.findall(r"[A-Za-z][A-Za-z'’-]+", text)]
    out = set()
    prev = None
    for w in words:
        low = w.lower()
        if low in FUNCTION_WORDS or w[0].isupper() or low in stop or len(low) < 4:
            prev = None
            continue
        out.add(low)
        if prev:
            out.add(f"{prev} {low}")
        prev = low
    return out


def _themes(summaries: Sequence[StrategySummary], profiles: Sequence[OrganisationProfile], texts: dict[str, str]) -> list[CitedItem]:
    """Terms that several documents use often (not names, not function words), each citing one sentence of every
    document that uses it; two-word phrases weigh more than single words, and no sentence serves two themes."""
    stop = {w.lower() for p in profiles for n in [p.name, *p.aliases] for w in n.split()}
    per_doc: list[list[CitedItem]] = []
    for s in summaries:
        items = [t for o in s.organisations for t in o.thesis] + [m for o in s.organisations for m in o.moves] + \
                [r for o in s.organisations for r in o.results] + s.themes + s.implications + s.open_questions
        per_doc.append(_dedupe(items, 1000))
    uses: Counter[str] = Counter()
    df: Counter[str] = Counter()
    for s in summaries:
        text = texts.get(s.doc_id, "")
        found = Counter()
        for sentence in re.split(r"(?<=[.!?])\s+", text):
            found.update(_terms(sentence, stop))
        uses.update(found)
        df.update(found.keys())
    n = len(summaries)
    score = {t: df[t] * math.log(1 + uses[t]) * (1.5 if " " in t else 1.0) for t in df if df[t] >= 2 and uses[t] >= 3}
    themes: list[CitedItem] = []
    taken_stems: set[str] = set()
    used_quotes: set[str] = set()
    for term in sorted(score, key=lambda t: (-score[t], t)):
        stems_ = {stem(w) for w in term.split()}
        if stems_ & taken_stems:
            continue
        citations = []
        for items in per_doc:
            match = next((i for i in items if term in _terms(i.text, stop) and i.citations
                          and normalize(i.citations[0].quote) not in used_quotes), None)
            if match is not None:
                citations.append(match.citations[0])
        if len(citations) < min(2, n):
            continue
        taken_stems |= stems_
        used_quotes.update(normalize(c.quote) for c in citations)
        themes.append(CitedItem(text=term, citations=citations))
        if len(themes) == MAX_THEMES + 1:
            break
    return themes


_SAID = re.compile(r"\b(?:said|says|told|according to)\b")


def _executive_points(profiles: Sequence[OrganisationProfile], implications: Sequence[CitedItem], themes: Sequence[CitedItem],
                      open_questions: Sequence[CitedItem], limit: int) -> list[CitedItem]:
    """The most important points, chosen: the leading organisations' biggest moves and results (a document's lead,
    money, dates), what is at stake and what is pending; at most one per organisation while others are left, no
    sentence twice."""
    candidates: list[tuple[float, int, CitedItem]] = []
    for rank, p in enumerate(profiles[:4]):
        for item in list(p.moves) + list(p.results):
            c = item.citations[0] if item.citations else None
            quote = c.quote if c else item.text
            lead = c is not None and c.start is not None and c.start < 700
            score = 2.0 - 0.4 * rank + 0.8 * bool(re.search(r"[$€£¥₹]\s?\d", quote)) + 0.3 * bool(re.search(r"\d%", quote)) \
                + 1.2 * lead + 0.3 * bool(getattr(item, "date", None)) - 0.8 * bool(_SAID.search(quote))
            candidates.append((score, rank, item))
    for item in implications[:2]:
        candidates.append((1.6, -1, item))
    for item in themes[:1]:
        candidates.append((1.4, -2, item))
    candidates.sort(key=lambda c: -c[0])
    out: list[CitedItem] = []
    per_owner: Counter[int] = Counter()
    seen: set[str] = set()
    for cap in (1, 2):
        for score, owner, item in candidates:
            key = normalize(item.citations[0].quote if item.citations else item.text)
            if key in seen or (owner >= 0 and per_owner[owner] >= cap) or len(out) >= limit:
                continue
            seen.add(key)
            per_owner[owner] += 1
            out.append(CitedItem(text=item.text, citations=item.citations))
    return out


__all__ = ["summarize_document", "build_briefing", "content_stems", "event_dates"]
