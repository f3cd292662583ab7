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
    GENERIC, QUESTION_WORDS, Sentence, expansions, answer_type, content_stems, entities, has_answer_type, idf, known_entities,
    split_sentences, stem, words,
)
from ..grounding import CANNOT_ANSWER
from ..types import AnswerDraft, Citation, Usage
from .base import Backend, Generation, GenerationRequest

MIN_COVERAGE = 0.6
MAX_SENTENCES = 3
_TYPE_NAMES = {"number": "figure", "date": "date", "person": "name", "entity": "name"}


@dataclass
class Scored:
    sentence: Sentence
    coverage: float
    matched: set[str]


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
    q_stems = [t for t in dict.fromkeys(content_stems(question, extra_stop=QUESTION_WORDS))]
    alternatives: dict[str, set[str]] = {}
    for word in words(question):
        alternatives.setdefault(stem(word), set()).update(expansions(word))
    generic = {stem(w) for w in GENERIC}
    if not sentences:
        return _refuse("nothing relevant was retrieved")
    if not q_stems:
        return _refuse("the question has no content words to look for")
    q_entities = _question_entities(question)
    missing_names = [e for e in q_entities if not all(_mentions(sentences, part) for part in e.split("-") if part)]
    if missing_names:
        return _refuse(f"none of the sources mentions {' or '.join(missing_names)}")

    weights = idf(sentences)
    absent = weights["__absent__"]
    w = {t: weights.get(t, absent) * (0.25 if t in generic else 1.0) for t in q_stems}
    total = sum(w.values())
    scored = []
    for s in sentences:
        matched = {t for t in q_stems if s.stems & alternatives.get(t, {t})}
        if matched:
            scored.append(Scored(s, sum(w[t] for t in matched) / total, matched))
    if not scored:
        return _refuse(f"nothing in the sources is about {_describe(q_stems, q_words)}")

    kind = answer_type(question)
    known = known_entities(sentences)
    best_any = max(scored, key=lambda sc: (sc.coverage, -sc.sentence.index))
    if best_any.coverage < MIN_COVERAGE:
        missing = [t for t in q_stems if t not in best_any.matched]
        return _refuse(f"the sources say nothing about {_describe(missing, q_words)}")
    typed = [sc for sc in scored if sc.coverage >= MIN_COVERAGE
             and has_answer_type(sc.sentence, kind, known_entities=known, question_entities=q_entities)]
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


def _describe(stems: Any, q_words: dict[str, str]) -> str:
    names = [q_words.get(t, t) for t in stems]
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
    if m and new_entities and last_entities and len(m.group("rest").split()) <= 4:
        result = last
        for old, new in zip(last_entities, new_entities):
            result = re.sub(r"\b" + re.escape(old) + r"\b", new, result)
        if len(new_entities) > len(last_entities):
            result = result.rstrip("?") + f" ({', '.join(new_entities[len(last_entities):])})?"
        return result
    if not new_entities and last_entities and _PRONOUNS.search(question):
        name = " and ".join(last_entities)
        plural = len(last_entities) > 1

        def swap(mm: re.Match[str]) -> str:
            word = mm.group(0).lower()
            if word in {"its", "their", "theirs", "his", "her"}:
                return f"{name}'s" if not plural else f"{name}'s"
            if word in {"they", "them", "it", "he", "she", "him", "the company", "the retailer", "the firm"}:
                return name
            if word == "it's":
                return f"{name} is"
            return mm.group(0)

        return _PRONOUNS.sub(swap, question, count=2)
    return question


class OfflineBackend(Backend):
    name = "offline"

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
