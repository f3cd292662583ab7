"""The offline engine: deterministic extraction that fills the same schemas as a model would.

No network, no model. Answers quote the sentences that best cover the question's key terms
(IDF-weighted, headings included), check the expected answer type (a number, a date, a name), and
refuse when the retrieved text does not hold what was asked. Summaries and briefings live in
``offline_summary``.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from ..context import ContextChunk
from ..extract import (
    GENERIC, QUESTION_WORDS, Sentence, answer_type, content_stems, entities, expansions, has_answer_type, idf,
    known_entities, split_sentences, standalone_names, stem, subject_of, words,
)
from ..grounding import CANNOT_ANSWER
from ..types import AnswerDraft, Citation, Usage
from .base import Backend, Generation, GenerationRequest

MIN_COVERAGE = 0.6
# Share of the question's core (non-name, non-generic) terms a sentence must cover. "Who/which" questions
# are also held to their answer type (a name the question does not already give), so they may cover less.
MIN_CORE_COVERAGE = {"entity": 0.5, "person": 0.5}
MAX_SENTENCES = 3
_TYPE_NAMES = {"number": "figure", "date": "date", "person": "name", "entity": "name"}


@dataclass
class Scored:
    sentence: Sentence
    coverage: float
    matched: set[str]
    core_coverage: float = 1.0
    core_min: float = 0.6

    @property
    def qualifies(self) -> bool:
        return self.coverage >= MIN_COVERAGE and self.core_coverage >= self.core_min


def _question_entities(question: str) -> list[str]:
    # In a question, a capitalized first word that is not a question word is a name ("Amazon's model?").
    return [e for e in entities(question) if e.lower() not in QUESTION_WORDS]


def _mentions(sentences: list[Sentence], name: str) -> bool:
    pattern = re.compile(r"\b" + re.escape(name.lower()) + r"\b")
    return any(pattern.search((s.text + " " + s.heading).lower()) for s in sentences)


def answer_question(question: str, context: list[ContextChunk]) -> AnswerDraft:
    """Extractive answer from ``context``, or a refusal that says what is missing."""
    sentences = [s for s in split_sentences(context) if not s.is_heading]
    q_words = {stem(w): re.sub(r"['’]s$", "", w) for w in words(question) if w.lower() not in QUESTION_WORDS}
    q_stems = list(dict.fromkeys(content_stems(question, extra_stop=QUESTION_WORDS)))
    if not sentences:
        return _refuse("nothing relevant was retrieved")
    if not q_stems:
        return _refuse("the question has no content words to look for")
    q_entities = _question_entities(question)
    missing_names = [e for e in q_entities if not all(_mentions(sentences, part) for part in e.split("-") if part)]
    if missing_names:
        return _refuse(f"none of the sources mentions {' or '.join(missing_names)}")

    known = known_entities(sentences)
    scored = _score(question, q_stems, q_entities, sentences, known)
    if not scored:
        if q_entities:
            return _refuse(f"nothing in the sources about {' and '.join(q_entities)} addresses "
                           f"{_describe([t for t in q_stems if t not in _entity_stems(q_entities)], q_words)}")
        return _refuse(f"nothing in the sources is about {_describe(q_stems, q_words)}")
    kind = answer_type(question)
    orgs = standalone_names(sentences, known)
    best_any = max(scored, key=lambda sc: (sc.coverage, -sc.sentence.index))
    if not best_any.qualifies:
        missing = [t for t in q_stems if t not in best_any.matched]
        return _refuse(f"the sources say nothing about {_describe(missing, q_words)}")
    typed = [sc for sc in scored if sc.qualifies
             and has_answer_type(sc.sentence, kind, known_entities=orgs, question_entities=q_entities)]
    if not typed:
        return _refuse(f"the sources discuss {_describe(best_any.matched, q_words)} but give no {_TYPE_NAMES.get(kind, 'answer')} for it")
    best = max(typed, key=lambda sc: (sc.coverage, -sc.sentence.index))

    threshold = max(MIN_COVERAGE, 0.8 * best.coverage)
    chosen = [best] + [sc for sc in sorted(typed, key=lambda sc: (-sc.coverage, sc.sentence.index))
                       if sc is not best and sc.coverage >= threshold][: MAX_SENTENCES - 1]
    chosen.sort(key=lambda sc: sc.sentence.index)
    citations = [
        Citation(source=sc.sentence.ctx.source, chunk_id=sc.sentence.ctx.id, quote=sc.sentence.text) for sc in chosen
    ]
    answer = " ".join(sc.sentence.text for sc in chosen)
    return AnswerDraft(answer=answer, refused=False, citations=citations, confidence=round(min(1.0, best.coverage), 3))


def _entity_stems(q_entities: list[str]) -> set[str]:
    return {stem(part) for e in q_entities for part in re.split(r"[-\s]", e) if part}


def _score(question: str, q_stems: list[str], q_entities: list[str], sentences: list[Sentence],
           known: set[str]) -> list[Scored]:
    """Coverage of the question's terms by each candidate sentence (IDF-weighted, generic words discounted).

    A candidate must come from a chunk that names every entity of the question (so one document's
    facts never answer a question about another company), must not have another company as its
    subject when the question asks about one, and must cover the question's core terms as well as
    its terms overall.
    """
    alternatives: dict[str, set[str]] = {}
    for word in words(question):
        alternatives.setdefault(stem(word), set()).update(expansions(word))
    generic = {stem(w) for w in GENERIC}
    entity_stems = _entity_stems(q_entities)
    entity_parts = [part.lower() for e in q_entities for part in e.split("-") if part]
    weights = idf(sentences)
    absent = weights["__absent__"]
    w = {t: weights.get(t, absent) * (0.25 if t in generic else 1.0) for t in q_stems}
    total = sum(w.values())
    core = [t for t in q_stems if t not in entity_stems and t not in generic]
    core_total = sum(w[t] for t in core)
    kind = answer_type(question)
    names = sorted(known)
    one_subject = q_entities[0].lower() if kind in ("description", "number", "date") and len(q_entities) == 1 else None
    scored = []
    for s in sentences:
        chunk_text = s.ctx.chunk.text.lower()
        if not all(re.search(r"\b" + re.escape(part) + r"\b", chunk_text) for part in entity_parts):
            continue
        if one_subject:
            # The sentence's own topic: its acting subject, or the names in its heading ("Amazon's model:").
            topics = [subject_of(s.text, names)] if subject_of(s.text, names) else [e for e in entities(s.heading) if e in names]
            if topics and one_subject not in {t.lower() for t in topics}:
                continue
        matched = {t for t in q_stems if s.stems & alternatives.get(t, {t})}
        if not matched - entity_stems and core:
            continue
        # A name the chunk mentions but this sentence does not ("both mega-retailers") earns half credit.
        credit = sum(w[t] for t in matched) + 0.5 * sum(w[t] for t in entity_stems & set(q_stems) - matched)
        core_cov = sum(w[t] for t in core if t in matched) / core_total if core_total else 1.0
        scored.append(Scored(s, credit / total, matched, core_cov, MIN_CORE_COVERAGE.get(kind, 0.6)))
    return scored


def _describe(stems: Any, q_words: dict[str, str]) -> str:
    order = list(q_words)
    names = [q_words.get(t, t) for t in sorted(stems, key=lambda t: order.index(t) if t in order else len(order))]
    return ", ".join(f'"{n}"' for n in names) or "this"


def _refuse(reason: str) -> AnswerDraft:
    return AnswerDraft(answer=f"{CANNOT_ANSWER}: {reason}.", refused=True, refusal_reason=reason, citations=[], confidence=0.0)


# ------------------------------------------------------------------ follow-up condensing
_PRONOUNS = re.compile(r"\b(it|its|it's|they|their|theirs|them|he|his|him|she|her|the company|the retailer|the firm)\b", re.I)
_ELLIPTICAL = re.compile(r"^\s*(and|what about|how about|and what about|same for|what of)\b\s*(?P<rest>.*?)\s*\??\s*$", re.I)


def condense_question(history: list[dict[str, str]], question: str) -> str:
    """Make a follow-up standalone: swap in a new entity ("And Walmart?") or resolve pronouns."""
    previous = [t["content"] for t in history if t.get("role") == "user"]
    if not previous:
        return question
    last = previous[-1]
    last_entities = _question_entities(last)
    new_entities = _question_entities(question)
    m = _ELLIPTICAL.match(question)
    rest = m.group("rest").strip(" ?") if m else ""
    rest_terms = [t for t in content_stems(_PRONOUNS.sub(" ", rest), extra_stop=QUESTION_WORDS)
                  if t not in _entity_stems(new_entities)]
    if m and rest and rest_terms:
        # "And Walmart's revenue?" / "What about their revenue?": a new attribute, asked directly.
        subject = rest if new_entities or not last_entities else _resolve_pronouns(rest, last_entities)
        return f"What is {subject}?"
    if m and new_entities and last_entities and len(rest.split()) <= 4:
        result = last
        for old, new in zip(last_entities, new_entities):
            result = re.sub(r"\b" + re.escape(old) + r"\b", new, result)
        if len(new_entities) > len(last_entities):
            result = result.rstrip("?") + f" ({', '.join(new_entities[len(last_entities):])})?"
        return result
    if not new_entities and last_entities and _PRONOUNS.search(question):
        return _resolve_pronouns(question, last_entities)
    return question


def _resolve_pronouns(text: str, names: list[str]) -> str:
    """Replace up to two pronouns with the previous question's names ("its" -> "Walmart's")."""
    name = " and ".join(names)

    def swap(mm: re.Match[str]) -> str:
        word = mm.group(0).lower()
        if word in {"its", "their", "theirs", "his", "her"}:
            return f"{name}'s"
        if word == "it's":
            return f"{name} is"
        return name

    return _PRONOUNS.sub(swap, text, count=2)


class OfflineBackend(Backend):
    name = "offline"
    trusted_text = True

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self.model = "extractive-v1"

    def generate(self, request: GenerationRequest) -> Generation:
        started = time.perf_counter()
        inputs = request.inputs
        output: Any
        if request.task == "answer":
            output = answer_question(inputs["question"], inputs["context"])
        elif request.task == "condense":
            output = condense_question(inputs["history"], inputs["question"])
        elif request.task == "summary":
            from .offline_summary import summarize_document

            output = summarize_document(inputs["doc_id"], inputs["title"], inputs["context"])
        elif request.task == "briefing":
            from .offline_summary import build_briefing

            output = build_briefing(inputs["title"], inputs["summaries"], inputs["documents"])
        else:
            from ..errors import BackendError

            raise BackendError(f"the offline engine cannot do {request.task!r}", hint="configure an LLM backend")
        usage = Usage(latency_ms=round((time.perf_counter() - started) * 1000, 3), cost_usd=0.0, calls=1)
        return Generation(output=output, usage=usage)
