"""Evidence scoring for the offline engine: a scored model of each candidate sentence for a question.

Features (each 0..1): lemma overlap with the asked-for attribute (IDF-weighted), soft overlap (word
vectors: "expand" ~ "extend"), semantic similarity of the whole sentence, the subject named in the
sentence (or in its heading, or just before it when the sentence opens with a pronoun), the subject
as the sentence's actor, the asked-for type present (a figure of the right kind, a date, a person's
name, an organisation), the asked-for role ("CEO" also matches "chief executive"). A linear model
over them, its weights and threshold fitted on the development suites (``scripts/fit_offline_model.py``),
gives each sentence a probability of being the answer.

Hard checks make a sentence ineligible whatever its score, with the reason kept for the refusal:
the asked-for type missing, a role that belongs to another organisation ("Brannock CFO" for "Pinecrest
CFO?"), a former holder for a current role, a payment or hire in the other direction ("B pays A" for
"how much will A pay B?"), or another party as the actor of a sentence that only mentions the subject.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..embed import get_embedder, word_similarity
from ..extract import Sentence, idf
from ..language import (
    FUNCTION_WORDS, STRATEGY_WORDS, TITLE_ACRONYMS, TITLE_WORDS, lemma, states_strategy, Entity, EntityIndex, dates, figures, first_mention, mentions,
    mentions_entity, name_pattern, stem, words,
)
from .offline_question import Question, period_keys, relation_class

# Fitted on the development suites by scripts/fit_offline_model.py (logistic regression over FEATURES).
FEATURES = ("lex", "anchored", "soft", "sem", "subject", "subject_near", "actor", "typed", "bound", "role", "heading",
            "other_actor", "negated", "short", "thesis")
WEIGHTS = {'lex': 1.58, 'anchored': 1.49, 'soft': 0.36, 'sem': 1.31, 'subject': 0.38, 'subject_near': -0.56, 'actor': 0.44, 'typed': -0.18, 'bound': -0.19, 'role': 1.27, 'heading': -0.21, 'other_actor': -0.17, 'negated': -0.61, 'short': 0.35, 'thesis': 0.52}
BIAS = -0.91
THRESHOLD = 0.60  # probability below which the best sentence is not an answer
SOFT_MIN = 0.42  # word-vector similarity that counts as a partial match

_PRONOUN_START = re.compile(r"^\s*(?:it|its|they|their|he|she|his|her|the (?:company|firm|bank|group|lender|retailer|"
                            r"carrier|airline|agency|authority|department|insurer|chain|utility|maker|deal|plan|board|"
                            r"program|programme|union|council|commission|city|state|regulator)|this|that|these)\b", re.I)
_VERBISH = re.compile(r"(?:['’]s\s+)?(?:,[^,]{1,60},\s*)?(?:\s+(?:on|last|this|earlier|late|early)\s+\w+\.?(?:\s+\d{1,2})?"
                      r"(?:\s*\([^)]{1,20}\))?)?\s*(?:is|are|was|were|has|have|had|will|would|can|could|may|might|"
                      r"should|must|did|does|do|also|now|then|still|already|recently|said|says|plans|planned|aims|wants|"
                      r"hopes|expects|bets|agreed|announced|reported|opened|closed|hired|bought|sold|paid|pays|launched|"
                      r"took|made|won|lost|gave|got|set|put|cut|bid|ran|began|saw|chose|led|held|kept|left|met|built|spent|"
                      r"sent|told|brought|became|came|went|wrote|grew|fell|rose|drew|struck|hit|shut|split|sought|won|"
                      r"\w+ed|\w+s)\b")
_PREPOSITION_BEFORE = re.compile(r"\b(?:to|of|with|than|against|from|by|for|versus|vs|like|and|or|between|on|at|"
                                 r"into|toward|towards|over|about|out-\w+|outpace|beat)\s*$", re.I)
_REPORTING_AFTER = re.compile(r"(?:['’]s\s+\w+\s+)?\s*(?:,[^,]{1,60},\s*)?(?:said|says|told|reported|noted|added|stated|"
                              r"announced|wrote|confirmed|explained|argued|estimated|according)\b", re.I)
_CLAUSE_BEFORE = re.compile(r"[,;:]\s*(?:the\s+|a\s+|an\s+)?$|[,;:]\s*(?:\w+\s+){0,3}$")
_FORMER = re.compile(r"\b(?:former|ex-|onetime|one-time|previous|retired|late)\s+(?:\w+\s+){0,3}$", re.I)


@dataclass
class Evidence:
    sentence: Sentence
    features: dict[str, float] = field(default_factory=dict)
    score: float = 0.0
    probability: float = 0.0
    eligible: bool = True
    rejected: str = ""  # why it is not an answer (used in the refusal)
    typed_ok: bool = True
    stems: frozenset[str] = frozenset()  # its words, its heading's, and the antecedent's when it opens with "it"

    @property
    def lex(self) -> float:
        return self.features.get("lex", 0.0)

    @property
    def subject(self) -> float:
        return self.features.get("subject", 0.0)

    @property
    def answers(self) -> bool:
        return self.eligible and self.probability >= THRESHOLD


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def question_vector(q: Question) -> np.ndarray:
    return get_embedder().embed_one(q.core)


def score_sentences(q: Question, sentences: Sequence[Sentence], entities: EntityIndex) -> list[Evidence]:
    weights = idf(sentences)
    absent = weights["__absent__"]
    terms = list(q.terms) + [t for t in q.context_terms if t not in q.terms]
    term_weight = {t: weights.get(t, absent) * (0.5 if t in q.context_terms else 1.0) for t in terms}
    total = sum(term_weight.values()) or 1.0
    # Words of the question that the sources use somewhere: an answer should use them too (the others may be the
    # asker's own paraphrase).
    present = set().union(*(s.stems | heading_stems(s) for s in sentences)) if sentences else set()
    anchored = [t for t in terms if t in present]
    anchored_total = sum(term_weight[t] for t in anchored)
    # The most specific question word the sources use (a word in every sentence says nothing about which one).
    rare = [t for t in anchored if t in q.terms and weights.get(t, absent) > weights["__absent__"] * 0.5
            and (not RAREST_NOUNS or _is_noun(q.lemmas.get(t, t)))]
    rarest = max(rare, key=lambda t: (weights.get(t, absent), t)) if len(anchored) >= 2 and rare else None
    qvec = question_vector(q)
    strategy = {stem(w) for w in STRATEGY_WORDS}
    asks_strategy = bool(set(terms) & strategy) or q.intent == "comparison" and bool(q.subjects)
    out = []
    for i, s in enumerate(sentences):
        e = Evidence(sentence=s)
        f = e.features
        have = s.stems | heading_stems(s)
        if i > 0 and sentences[i - 1].doc_id == s.doc_id and _PRONOUN_START.match(s.text):
            have = have | sentences[i - 1].stems  # "It had uid 37." speaks of what the sentence before named
        if have & strategy:
            have = have | strategy  # "plan", "strategy", "model", "approach": one notion in business writing
        matched = {t for t in terms if t in have}
        e.stems = frozenset(have)
        f["lex"] = sum(term_weight[t] for t in matched) / total
        f["anchored"] = sum(term_weight[t] for t in anchored if t in matched) / anchored_total if anchored_total else 1.0
        f["soft"] = _soft(q, terms, matched, term_weight, s) / total
        f["sem"] = max(0.0, float(qvec @ s.vector)) if s.vector is not None else 0.0
        f["heading"] = 1.0 if matched & heading_stems(s) else 0.0
        present, near = _subject_presence(q, s, sentences, i)
        f["subject"], f["subject_near"] = present, near
        actor = actor_of(s.text, entities)
        f["actor"] = 1.0 if q.subjects and actor is not None and actor in q.subjects else 0.0
        f["other_actor"] = 1.0 if q.subjects and actor is not None and actor not in q.subjects else 0.0
        f["typed"] = 1.0 if _typed(q, s, entities) else 0.0
        f["bound"] = _bound(q, s, set(anchored)) if f["typed"] else 0.0
        f["role"] = _role(q, s)
        f["negated"] = 1.0 if _NEGATED.search(s.text) else 0.0
        f["thesis"] = 1.0 if asks_strategy and any(states_strategy(s.text, s.heading, e) for e in q.subjects) else 0.0
        f["short"] = 1.0 if len(s.text) < 40 else 0.0
        e.typed_ok = bool(f["typed"]) or not q.typed
        e.score = BIAS + sum(WEIGHTS[k] * f[k] for k in FEATURES)
        e.probability = _sigmoid(e.score)
        _hard_checks(q, e, entities, actor, rarest)
        out.append(e)
    return out


def heading_stems(s: Sentence) -> frozenset[str]:
    from ..language import content_stems

    return frozenset(content_stems(s.heading)) if s.heading else frozenset()


def _sentence_lemmas(s: Sentence) -> set[str]:
    return {lemma(w.lower()) for w in words(s.text) if w.lower() not in FUNCTION_WORDS and len(w) > 2}


def _soft(q: Question, terms: Sequence[str], matched: set[str], weight: dict[str, float], s: Sentence) -> float:
    """Partial credit for question words with a close word in the sentence ("expand" ~ "extend"), compared as
    dictionary forms (word vectors know words, not stems)."""
    credit = 0.0
    sentence_words = _sentence_lemmas(s)
    for t in terms:
        if t in matched:
            continue
        word = q.lemmas.get(t, t)
        best = max((word_similarity(word, w) for w in sentence_words), default=0.0)
        if best >= SOFT_MIN:
            credit += weight[t] * best
    return credit


def _subject_presence(q: Question, s: Sentence, sentences: Sequence[Sentence], i: int) -> tuple[float, float]:
    """(share of the subjects the sentence names, share named nearby: its heading, or the sentence before when
    this one opens with a pronoun or "the company")."""
    if not q.subjects:
        return 1.0, 0.0
    # Named in the sentence, or in the heading it sits under ("Amazon's model:" then "Build technological layers ...").
    named = [e for e in q.subjects if mentions_entity(s.text, e) or mentions_entity(s.heading, e)]
    here = len(named) / len(q.subjects)
    nearby = 0.0
    if here < 1.0:
        # The document's title, or the sentence before when this one opens with "it".
        context = s.ctx.title
        if i > 0 and sentences[i - 1].doc_id == s.doc_id and _PRONOUN_START.match(s.text):
            context += "\n" + sentences[i - 1].text
        nearby = sum(1 for e in q.subjects if e not in named and mentions_entity(context, e)) / len(q.subjects)
    return here, nearby


def actor_of(text: str, entities: EntityIndex) -> Entity | None:
    """The organisation or person acting in the sentence: the earliest name followed by a verb and not
    governed by a preposition ("rather than attempting to out-innovate Amazon, Walmart is ..." -> Walmart)."""
    best: tuple[int, Entity] | None = None
    for m in mentions(text):
        entity = entities.resolve(m.text)
        if entity is None or entity.kind not in ("organisation", "person", "other"):
            continue
        after = text[m.end:m.end + 80]
        if not _VERBISH.match(after) or _PREPOSITION_BEFORE.search(text[:m.start]):
            continue
        if _REPORTING_AFTER.match(after) and _CLAUSE_BEFORE.search(text[:m.start]):
            continue  # "..., the union said": the source of the report, not the one who acts in it
        if best is None or m.start < best[0]:
            best = (m.start, entity)
    return best[1] if best else None


FOCUS_REQUIRED = True
_MODAL = re.compile(r"\b(?:will|would|shall|is scheduled to|are scheduled to|is expected to|are expected to|is set to|are set to|"
                    r"is due to|are due to|plans? to|intends? to|needs?|must|has yet to|have yet to|is to|are to)\s+(?:\w+\s+){0,2}?$", re.I)


def _names_periods(periods: Sequence[str], s: Sentence) -> bool:
    return set(periods) <= period_keys(" ".join([s.text, s.heading, s.ctx.title]))


def _pending(q: Question, s: Sentence) -> bool:
    """The question's event is only scheduled or needed in this sentence ("is scheduled to vote", "needs approval")."""
    terms = set(q.terms)
    found = False
    for m in re.finditer(r"[A-Za-z]+", s.text):
        if stem(m.group(0)) in terms and m.group(0).lower() not in FUNCTION_WORDS:
            before = s.text[max(0, m.start() - 40):m.start()]
            if _MODAL.search(before):
                found = True
            elif re.match(r"[a-z]+(?:ed|ew|ot|id|ook)$", m.group(0)):
                return False  # it also says it happened
    return found


def _has_focus(q: Question, s: Sentence, have: frozenset[str]) -> bool:
    focus = q.focus or ""
    if focus in have:
        return True
    if focus in {stem(w) for w in STRATEGY_WORDS} and have & {stem(w) for w in STRATEGY_WORDS}:
        return True
    word = q.lemmas.get(focus, focus)
    return any(word_similarity(word, w) >= SOFT_MIN for w in _sentence_lemmas(s))


def _typed(q: Question, s: Sentence, entities: EntityIndex) -> bool:
    text = s.text
    if q.intent == "figure":
        found = _figures(text)
        if q.figure_kind == "percent":
            return any(f.kind == "percent" for f in found)
        if q.figure_kind == "money":
            return any(f.kind == "money" or re.search(r"\b(?:million|billion|thousand)\b", f.text) for f in found)
        return bool(found)
    if q.intent == "date":
        return bool(dates(text))
    if q.intent == "person":
        if any(e.kind == "person" and e not in q.subjects and mentions_entity(text, e) for e in entities.entities):
            return True
        if WHO_MAY_BE_ORGANISATION and not q.role and any(
                e.kind == "organisation" and e not in q.subjects and mentions_entity(text, e) for e in entities.entities):
            return True  # "Who is buying Pinecrest?": a company acts as often as a person does
        # "Who did Kroger hire?" is answered by "a former Walmart U.S. CEO" too.
        return q.object_question and any(w.lower() in TITLE_WORDS or w in TITLE_ACRONYMS for w in words(text))
    if q.intent == "organisation":
        return any(e.kind in ("organisation", "other") and e not in q.subjects and mentions_entity(text, e)
                   for e in entities.entities)
    return True


def _figures(text: str) -> list:
    """Figures that are quantities: not years, and not the day or count inside a date ("Feb. 9", "five years ago")."""
    spans = [(d.start, d.end) for d in dates(text)]
    return [f for f in figures(text) if not _is_year(f.text) and not any(a <= f.start < b for a, b in spans)]


def _is_year(text: str) -> bool:
    return bool(re.fullmatch(r"(?:19|20)\d{2}", text))


_ROLE_MODIFIER = re.compile(r"\b(?:vice|deputy|assistant|associate|executive vice|senior vice)[\s-]+$", re.I)


def _role(q: Question, s: Sentence) -> float:
    """The asked-for role is named ("chief executive" for "boss"), and not as a lesser one ("vice president")."""
    if not q.role:
        return 0.0
    tokens = [(m.start(), stem(m.group(0))) for m in re.finditer(r"[A-Za-z]+", s.text)]
    have = {t for start, t in tokens if not _ROLE_MODIFIER.search(s.text[max(0, start - 30):start])}
    have |= {stem(w) for w in _acronym_titles(s.text)}
    return 1.0 if any(alternative <= have for alternative in q.role) else 0.0


_NEGATED = re.compile(r"\b(?:not yet|has not|have not|had not|did not|does not|do not|is not|are not|was not|were not|"
                      r"won't|hasn't|haven't|didn't|doesn't|isn't|aren't|wasn't|declined to|refused to|not been|"
                      r"not disclosed|undisclosed|unnamed|not said|no (?:decision|date|figure|details?))\b", re.I)


def _bound(q: Question, s: Sentence, anchored: set[str]) -> float:
    """Whether the asked-for value sits next to what was asked about: "how many doses" wants a figure followed by
    "doses"; a figure or date wants one of the question's anchored words within a few words of it."""
    text = s.text
    spans = []
    if q.intent == "figure":
        spans = [(f.start, f.end) for f in _figures(text)]
    elif q.intent == "date":
        spans = [(d.start, d.end) for d in dates(text)]
    else:
        return 1.0
    tokens = [(m.start(), m.end(), stem(m.group(0))) for m in re.finditer(r"[^\W_]+", text)]
    for start, end in spans:
        after = [t for a, _, t in tokens if a >= end][:5]
        around = [t for a, b, t in tokens if b <= start][-6:] + [t for a, _, t in tokens if a >= end][:6]
        if q.counted:
            # "14 commercial lenders from PVB and two from Brannock": one figure naming the counted thing is enough.
            if q.counted in after or any(word_similarity(q.counted, t) >= SOFT_MIN for t in after):
                return 1.0
            continue
        if not anchored or anchored & set(around):
            return 1.0
    return 0.0


def _acronym_titles(text: str) -> list[str]:
    out = []
    for acronym, long in TITLE_ACRONYMS.items():
        if re.search(rf"\b{acronym}\b", text):
            out += [acronym.lower()] + [w for w in long.split() if w != "officer"]
    return out


RAREST_REQUIRED = True
WHO_MAY_BE_ORGANISATION = True
RAREST_INTENTS = ("figure",)
RAREST_NOUNS = True  # only a noun names the thing asked about ("backup" user, "school" clinics); "whole", "take" do not


def _is_noun(word: str) -> bool:
    from lemminflect import getAllLemmas

    found = getAllLemmas(word)
    return "NOUN" in found and "VERB" not in found and "ADJ" not in found
BOUND_REQUIRED = True
ANCHOR_MIN = 0.0  # share (IDF-weighted) of the question's words found in the sources that an answer must contain


def _hard_checks(q: Question, e: Evidence, entities: EntityIndex, actor: Entity | None, rarest: str | None) -> None:
    s, f = e.sentence, e.features
    if q.typed and not e.typed_ok:
        e.eligible, e.rejected = False, ""
        return
    if q.typed and q.intent != "person" and q.terms and not (f["lex"] or f["soft"] or f["thesis"]):
        e.eligible = False  # "When was Walmart founded?": a date about something else is not the answer
        return
    if q.subjects and not (f["subject"] or f["subject_near"]):
        e.eligible = False
        return
    if 2 <= len(q.subjects) <= 3 and f["subject"] + f["subject_near"] < 1.0 and q.intent not in ("list", "comparison"):
        e.eligible = False  # "When will Meridian start flying to Maranta Falls?": both names, or it is someone else's route
        return
    if RAREST_REQUIRED and rarest and rarest not in e.stems and not f["thesis"] and q.intent in RAREST_INTENTS:
        e.eligible = False  # "When will the Water Authority launch satellites?": "launch" alone does not answer it
        return
    if q.periods and not _names_periods(q.periods, s):
        e.eligible = False  # asked about 2026 (or the fourth quarter): a 2025 figure is not the answer
        return
    if q.past and _pending(q, s):
        e.eligible, e.rejected = False, "the sources say it has not happened yet"
        return
    if q.intent == "figure" and (q.counted or BOUND_REQUIRED) and not f["bound"]:
        e.eligible = False  # "how many doses": a figure of schools is not an answer
        return
    if FOCUS_REQUIRED and q.focus and q.intent not in ("person", "organisation") and not _has_focus(q, s, e.stems):
        e.eligible = False  # "what deposit rate": a sentence without a rate does not answer it
        return
    if q.role:
        if not f["role"]:
            e.eligible = False
            return
        reason = _role_check(q, s, entities)
        if reason:
            e.eligible, e.rejected = False, reason
            return
    if q.doer:
        reason = _doer_check(q, s)
        if reason:
            e.eligible, e.rejected = False, reason
            return
    if q.relation:
        reason = _direction_check(q, s, entities)
        if reason:
            e.eligible, e.rejected = False, reason
            return
    asked_for_actor = (q.intent == "person" and actor is not None and actor.kind == "person") or \
        (q.intent == "organisation" and actor is not None and actor.kind == "organisation")
    if len(q.subjects) == 1 and actor is not None and actor not in q.subjects and q.intent != "list" \
            and not asked_for_actor and not _part_of_name(actor, q.subjects[0]):  # "Who runs Flow Control?": the person acting is the answer, not another party
        subject = q.subjects[0]
        at = first_mention(s.text, subject)
        # The subject only appears after a preposition or as an object: the fact is the actor's, not the subject's.
        if at is not None and _PREPOSITION_BEFORE.search(s.text[:at]) and actor.kind in ("organisation", "person"):
            e.eligible = False
            e.rejected = f"the sources say this of {actor.name}, not of {subject.name}"


def _part_of_name(entity: Entity, subject: Entity) -> bool:
    """"Circle" read on its own inside "Members of Crest Circle ...": a piece of the subject's name, not another party."""
    parts = {w.lower() for n in subject.names() for w in words(n)}
    return bool(parts) and all(w.lower() in parts for n in entity.names() for w in words(n))


def _role_check(q: Question, s: Sentence, entities: EntityIndex) -> str:
    """A role answer must be the subject's ("PVB's CEO", "CEO of PVB"), current unless a former one was asked."""
    text = s.text
    role_stems = set().union(*q.role)
    spots = [m for m in re.finditer(r"[A-Za-z][\w-]*", text) if stem(m.group(0)) in role_stems]
    if not spots:
        return ""
    asked_former = bool(re.search(r"\b(?:former|previous|ex-|old|onetime|used to)\b", q.core, re.I))
    for m in spots:
        before = text[max(0, m.start() - 60):m.start()]
        if _FORMER.search(before) and not asked_former:
            continue
        owner = _title_owner(text, m.start(), m.end(), entities)
        if q.subjects and owner is not None and owner not in q.subjects:
            continue
        return ""  # one usable mention of the role
    if q.subjects:
        subject = q.subjects[0].name
        return f"the sources name a {'former holder of that role' if any(_FORMER.search(text[max(0, m.start() - 60):m.start()]) for m in spots) else 'holder of that role at another organisation'}, not {subject}'s"
    return ""


def _title_owner(text: str, start: int, end: int, entities: EntityIndex) -> Entity | None:
    """The organisation a title belongs to: "Brannock CFO", "PVB's CEO", "CEO of PVB", "Selkirk's president"."""
    before = text[max(0, start - 50):start]
    after = text[end:end + 50]
    m = re.search(r"([A-Z][\w&.\-]*(?:\s+[A-Z][\w&.\-]*){0,4})(?:['’]s)?\s+(?:\w+\s+){0,2}$", before)
    if m and not _FORMER.search(before):
        entity = entities.resolve(m.group(1))
        if entity is not None and entity.kind == "organisation":
            return entity
    m = re.match(r"\s*(?:\w+\s+){0,2}?(?:of|at)\s+(?:the\s+)?([A-Z][\w&.\-]*(?:\s+[A-Z][\w&.\-]*){0,4})", after)
    if m:
        entity = entities.resolve(m.group(1))
        if entity is not None and entity.kind == "organisation":
            return entity
    return None


def _direction_check(q: Question, s: Sentence, entities: EntityIndex) -> str:
    """"How much will A pay B?" is not answered by "B will pay A ...": the named actor must act."""
    assert q.relation is not None
    actor_name, verb, other_name = q.relation
    actor, other = entities.resolve(actor_name), entities.resolve(other_name)
    if actor is None or other is None:
        return ""
    verbs = relation_class(verb)
    for m in re.finditer(r"[A-Za-z]+", s.text):
        if stem(m.group(0)) not in verbs:
            continue
        before, after = s.text[:m.start()], s.text[m.end():]
        a_before, o_before = _last_mention(before, actor), _last_mention(before, other)
        if o_before is not None and (a_before is None or o_before > a_before) and mentions_entity(after, actor):
            return f"the sources say {other.name} {m.group(0)} {actor.name}, not the other way round"
        return ""
    return ""


def _doer_check(q: Question, s: Sentence) -> str:
    """"How did the full council vote?" is not answered by "the committee voted ... to the full council": where the
    sentence does the asked-for act, the asked-for actor must come before it, not after it as its object."""
    assert q.doer is not None
    head, verb = q.doer
    tokens = [(m.start(), m.group(0)) for m in re.finditer(r"[A-Za-z]+", s.text)]
    acts = [i for i, (_, w) in enumerate(tokens) if stem(w) == verb]
    heads = [i for i, (_, w) in enumerate(tokens) if stem(w) == head]
    if not acts or not heads:
        return ""
    if any(h < a for a in acts for h in heads):
        return ""
    before = [w for _, w in tokens[:acts[0]] if w.lower() not in FUNCTION_WORDS]
    if not before:
        return ""
    return f"the sources say the {before[-1].lower()} {tokens[acts[0]][1]}, not the {q.lemmas.get(head, head)}"


def _last_mention(text: str, entity: Entity) -> int | None:
    found = [m.start() for n in entity.names() for m in name_pattern(n).finditer(text)]
    return max(found) if found else None


__all__ = ["Evidence", "score_sentences", "actor_of", "THRESHOLD", "FEATURES", "WEIGHTS", "BIAS"]

