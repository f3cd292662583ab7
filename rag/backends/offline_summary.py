"""Offline strategy summaries and briefings: extraction, every item a verbatim sentence with its citation.

Players are the names that act as the subject of sentences; a player's *model* is the text under a
"<Player>'s model/strategy" heading or a sentence that names its model; *moves* are sentences where
the player acts; *themes* and *implications* are the remaining sentences picked by cue words and
centrality. Deterministic, so CI can check it.
"""

from __future__ import annotations

import re
from collections import Counter

from ..context import ContextChunk
from ..extract import Sentence, entities_of, split_sentences
from .offline_evidence import actor_of
from ..types import Briefing, BriefingSection, Citation, CitedItem, PlayerMoves, SourceSummary, StrategySummary

MAX_PLAYERS = 6
MAX_MOVES = 5
MAX_THEMES = 4
MAX_IMPLICATIONS = 4
_MODEL_WORDS = re.compile(r"\b(model|strategy|thesis|playbook|approach|bet)\b", re.I)
_THEME_WORDS = re.compile(r"\b(platform|infrastructure|ecosystem|rivalry|race|war|competition|shift|phase|category|"
                          r"everyday|routine|rails|scale|both|landscape|trend)\w*", re.I)
_IMPLICATION_WORDS = re.compile(r"\b(in that sense|crucially|means|implication|question|will|could|would|no longer|"
                                r"attention|rest of|watch|signal|gold medal|remain|future|next)\b", re.I)
def _cite(s: Sentence) -> CitedItem:
    return CitedItem(text=s.text, citations=[Citation(source=s.ctx.source, chunk_id=s.ctx.id, quote=s.text)])


def summarize_document(doc_id: str, title: str, context: list[ContextChunk]) -> StrategySummary:
    sentences = split_sentences(context)
    body = [s for s in sentences if not s.is_heading]
    entities = entities_of(context)
    subjects: dict[int, str | None] = {}
    for s in body:
        actor = actor_of(s.text, entities)
        subjects[id(s)] = actor.name if actor is not None and actor.kind in ("organisation", "other") else None
    acting = Counter(v for v in subjects.values() if v)
    players = [n for n, _ in acting.most_common()][:MAX_PLAYERS]

    used: set[int] = set()
    result: list[PlayerMoves] = []
    for name in players:
        heading_model = [s for s in body if name.lower() in s.heading.lower() and _MODEL_WORDS.search(s.heading)]
        named_model = [s for s in body if subjects[id(s)] == name and _MODEL_WORDS.search(s.text)]
        model = (heading_model or named_model or [None])[0]
        if model is not None:
            used.add(id(model))
        moves = [s for s in body if subjects[id(s)] == name and id(s) not in used][:MAX_MOVES]
        used.update(id(s) for s in moves)
        result.append(PlayerMoves(name=name, model=_cite(model) if model else None, moves=[_cite(s) for s in moves]))

    stems_count: Counter[str] = Counter(t for s in body for t in s.stems)

    def centrality(s: Sentence) -> float:
        return sum(stems_count[t] for t in s.stems) / (1 + len(s.stems)) ** 0.5

    rest = [s for s in body if id(s) not in used]
    implications = [s for s in rest if _IMPLICATION_WORDS.search(s.text)]
    implications = sorted(implications, key=lambda s: (-centrality(s), s.index))[:MAX_IMPLICATIONS]
    used.update(id(s) for s in implications)
    themes = [s for s in rest if id(s) not in used and (_THEME_WORDS.search(s.text) or s.index == 0)]
    themes = sorted(themes, key=lambda s: (s.index != 0, -centrality(s), s.index))[:MAX_THEMES]
    order = lambda items: sorted(items, key=lambda s: s.index)  # noqa: E731
    return StrategySummary(
        doc_id=doc_id, title=title, players=result,
        themes=[_cite(s) for s in order(themes)], implications=[_cite(s) for s in order(implications)],
    )


def _lead(summary: StrategySummary) -> CitedItem | None:
    for item in summary.themes + [m for p in summary.players for m in ([p.model] if p.model else []) + p.moves]:
        return item
    return None


def build_briefing(title: str, summaries: list[StrategySummary], documents: dict[str, dict[str, str]]) -> Briefing:
    """A cross-document briefing assembled from verified per-document summaries."""
    by_player: dict[str, list[CitedItem]] = {}
    executive: list[CitedItem] = []
    for summary in summaries:
        for player in summary.players:
            items = ([player.model] if player.model else []) + player.moves
            by_player.setdefault(player.name, []).extend(items)
    ranked = sorted(by_player, key=lambda n: -len(by_player[n]))
    for name in ranked[:3]:
        if by_player[name]:
            executive.append(by_player[name][0])
    themes = [t for s in summaries for t in s.themes]
    implications = [i for s in summaries for i in s.implications]
    executive += themes[:1] + implications[:1]
    sections = [BriefingSection(heading=name, points=by_player[name]) for name in ranked if by_player[name]]
    if themes:
        sections.append(BriefingSection(heading="Themes", points=themes))
    if implications:
        sections.append(BriefingSection(heading="Implications and what to watch", points=implications))
    sources = []
    for summary in summaries:
        lead = _lead(summary)
        meta = documents.get(summary.doc_id, {})
        if lead:
            sources.append(SourceSummary(doc_id=summary.doc_id, source=meta.get("source", summary.doc_id),
                                         title=summary.title or meta.get("title", ""), summary=lead))
    return Briefing(title=title, executive_summary=executive, sections=sections, sources=sources,
                    open_questions=open_questions(summaries))


_FIGURE = re.compile(r"\d|\b(percent|million|billion)\b", re.I)


def open_questions(summaries: list[StrategySummary]) -> list[str]:
    """Questions the sources leave open, derived from what the summaries lack."""
    questions = []
    for summary in summaries:
        for player in summary.players:
            texts = [i.text for i in ([player.model] if player.model else []) + player.moves]
            if texts and not any(_FIGURE.search(t) for t in texts):
                questions.append(f"What figures (investment, revenue, timelines) back {player.name}'s moves? The sources give none.")
            if not player.model:
                questions.append(f"What is the strategic model behind {player.name}'s moves? The sources describe moves only.")
    names = [p.name for s in summaries for p in s.players]
    if len(set(names)) > 1:
        questions.append(f"How will {', '.join(dict.fromkeys(names))} respond to each other's moves? The sources do not say.")
    return list(dict.fromkeys(questions))[:8]
