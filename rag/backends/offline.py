"""The offline engine: deterministic extraction that fills the same schemas as a model would.

No network, no model. A question is parsed (``offline_question``: intent, subjects, attribute), every
context sentence gets a score from a small linear model of its evidence (``offline_evidence``: lemma
overlap, soft word matches, semantic similarity, the subject present and acting, the asked-for type
present), and the answer holds what was asked: the sentence with the figure for "how much", with the
person's name for "who", with the date for "when"; one sentence per subject for a comparison; the
organisations found for "which companies are mentioned"; a few central sentences for a summary.
Below a threshold calibrated on the development suites, or when a hard check fails (the fact
belongs to another party, the title to another organisation, the payment goes the other way), it
refuses and says what it found and what is missing. Summaries and briefings live in ``offline_summary``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..context import ContextChunk
from ..extract import Sentence, entities_of, split_sentences
from ..grounding import CANNOT_ANSWER
from ..language import EntityIndex, content_stems, mentions_entity, stem
from ..types import AnswerDraft, Citation, Usage
from .base import Backend, Generation, GenerationRequest
from .offline_evidence import Evidence, score_sentences
from .offline_question import Question, parse_question

MAX_SENTENCES = 3
MARGIN = 1.0  # log-odds below the best sentence's that another sentence may be and still be included
SUMMARY_SENTENCES = 4
_TYPE_NAMES = {"figure": "figure", "date": "date", "person": "name", "organisation": "organisation"}


def _cite(s: Sentence) -> Citation:
    return Citation(source=s.ctx.source, chunk_id=s.ctx.id, quote=s.text)


def _draft(chosen: Sequence[Sentence], confidence: float, *, text: str | None = None) -> AnswerDraft:
    ordered = sorted(dict.fromkeys(chosen), key=lambda s: s.index)
    answer = text if text is not None else " ".join(s.text for s in ordered)
    citations: list[Citation] = []
    for i, s in enumerate(ordered):
        if i > 0 and ordered[i - 1].is_heading and len(ordered[i - 1].text.split()) <= DEFINED_TERM_WORDS \
                and citations and citations[-1].quote == ordered[i - 1].text:
            joined = _joined_quote(ordered[i - 1], s)
            if joined is not None:
                citations[-1] = Citation(source=s.ctx.source, chunk_id=s.ctx.id, quote=joined)
                continue
        citations.append(_cite(s))
    return AnswerDraft(answer=answer, refused=False, citations=citations,
                       confidence=round(max(0.0, min(1.0, confidence)), 3))


def _joined_quote(heading: Sentence, s: Sentence) -> str | None:
    """A term heading ("dialout") and the sentence right under it as one verbatim quote: the term alone is too
    short to cite, and the sentence alone does not name what it defines."""
    chunk = s.ctx.chunk
    if heading.ctx.chunk.id != chunk.id:
        return None
    a, b = heading.doc_start - chunk.start, s.doc_start - chunk.start + len(s.text)
    if a < 0 or b > len(chunk.text) or chunk.text[a:a + len(heading.text)] != heading.text \
            or chunk.text[b - len(s.text):b] != s.text or chunk.text[a + len(heading.text):b - len(s.text)].strip():
        return None
    return chunk.text[a:b]


def _refuse(reason: str) -> AnswerDraft:
    reason = reason.rstrip(".")
    return AnswerDraft(answer=f"{CANNOT_ANSWER}: {reason}.", refused=True, refusal_reason=reason, citations=[], confidence=0.0)


def _quoted(words: Sequence[str]) -> str:
    return ", ".join(f'"{w}"' for w in words)


# ------------------------------------------------------------------ the answer
def answer_question(question: str, context: list[ContextChunk]) -> AnswerDraft:
    """Extractive answer from ``context``, or a refusal that says what was found and what is missing.

    A question in several parts ("How many branches will close, and how do they break down?") is answered part
    by part, each later part read in the light of the first (its names, its topic); it is refused when a part
    cannot be answered on its own, the question is answered whole (a later part may lean on the first)."""
    parts = split_question(question)
    if len(parts) > 1:
        combined = _multipart_answer(parts, context)
        if not combined.refused:
            return combined
    return _answer_one(question, context)


_PART_BREAK = re.compile(r"(?:,\s*(?:and|or|but)\s+|\s+and\s+|;\s*|\?\s+(?=[A-Z]))(?=(?:how|what|which|when|who|why|where|"
                         r"whether|does|do|did|is|are|was|were|will|can)\b)", re.I)


def split_question(question: str) -> list[str]:
    """The parts of a question that asks several things: split before a new question word ("..., and how much?",
    "... and what each one costs"), not inside one clause ("sales and profit")."""
    main, sep, context_part = question.partition(" (context: ")
    if sep:
        return [question]
    pieces = [p.strip(" ,;") for p in _PART_BREAK.split(main) if p and p.strip(" ,;?")]
    if len(pieces) < 2 or len(pieces) > 4:
        return [question]
    pieces = [p.rstrip("?.! ") for p in pieces]
    first = pieces[0] + "?"
    return [first] + [f"{p}? (context: {pieces[0]})" for p in pieces[1:]]


def _multipart_answer(parts: list[str], context: list[ContextChunk]) -> AnswerDraft:
    drafts = [_answer_one(p, context) for p in parts]
    for part, draft in zip(parts, drafts):
        if draft.refused:
            asked = part.partition(" (context: ")[0]
            return _refuse(f"{draft.refusal_reason} ({asked.rstrip('?')})" if len(drafts) > 1 else draft.refusal_reason or "")
    citations: list[Citation] = []
    texts: list[str] = []
    for draft in drafts:
        new = [c for c in draft.citations if c not in citations]
        if not new:
            continue
        citations += new
        texts.append(draft.answer if len(new) == len(draft.citations) else " ".join(c.quote for c in new))
    return AnswerDraft(answer=" ".join(texts), refused=False, citations=citations,
                       confidence=min(d.confidence for d in drafts))


def _answer_one(question: str, context: list[ContextChunk]) -> AnswerDraft:
    every = split_sentences(context)
    sentences = [s for s in every if not s.is_heading]
    if not sentences:
        return _refuse("nothing relevant was retrieved")
    entities = entities_of(context)
    q = parse_question(question, entities)
    if q.unknown_names:
        return _refuse(f"none of the sources mentions {' or '.join(q.unknown_names)}")
    if q.intent == "summary" and not q.terms:
        return _summary_answer(q, sentences)
    if q.intent == "list" and _asks_for_names(q):
        return _names_answer(q, sentences, entities)
    if q.intent == "comparison" and len(q.subjects) < 2 and _PLURAL_PARTIES.search(q.core):
        # "How do the two banks compare?": the two organisations the sources are most about.
        main = [e for e in sorted(entities.of_kind("organisation"), key=lambda e: -e.count) if e not in q.subjects]
        q.subjects = (q.subjects + main)[:2]
    if q.intent == "comparison" and len(q.subjects) >= 2:
        return _comparison_answer(q, sentences, entities)
    if q.intent == "definition":
        defined = _acronym_definition(q, sentences)
        if defined is not None:
            return defined
    if not q.terms and not q.subjects and not q.role:
        return _refuse("the question has no content words to look for")
    return _best_answer(q, sentences, entities, every)


def _best_answer(q: Question, sentences: list[Sentence], entities: EntityIndex,
                 all_sentences: list[Sentence] | None = None) -> AnswerDraft:
    foreign = _foreign_terms(q, sentences)
    if foreign:
        subjects = " and ".join(e.name for e in q.subjects)
        return _refuse(f"the sources about {subjects} say nothing about {_quoted([q.lemmas.get(t, t) for t in foreign])}")
    scored = score_sentences(q, sentences, entities)
    eligible = sorted((e for e in scored if e.eligible), key=lambda e: (-e.score, e.sentence.index))
    if DOCUMENT_VOTE and eligible:
        # A document that answers a question usually supports it in more than one sentence; a lucky sentence in an
        # unrelated document does not. The answer comes from the documents with the most support.
        per_doc: dict[str, list[float]] = {}
        for e in scored:
            per_doc.setdefault(e.sentence.doc_id, []).append(e.probability)
        # The three strongest sentences of each document: a long document's many weak ones do not add up to support.
        support = {d: sum(sorted(v, reverse=True)[:3]) for d, v in per_doc.items()}
        top = max(support.values())
        backed = {d for d, v in support.items() if v >= DOCUMENT_VOTE * top}
        eligible = [e for e in eligible if e.sentence.doc_id in backed]
    best = eligible[0] if eligible else None
    if best is None or not best.answers:
        return _refuse(_why_not(q, scored, sentences, best))
    # Up to three sentences whose evidence is nearly as strong (a breakdown, the next item, the reason given
    # next): an answer that holds the asked-for fact matters more than a short one.
    limit = 2 if q.intent in ("person", "organisation", "date", "yesno") else SUMMARY_SENTENCES if q.intent == "summary" \
        else MAX_SENTENCES
    # From another document only when it names the question's subject: an unrelated document's near-miss is not
    # part of this answer.
    related = _related_documents(best.sentence.doc_id, sentences)
    chosen = [e.sentence for e in eligible if e.answers and e.score >= best.score - MARGIN
              and (e.sentence.doc_id in related or (q.subjects and e.subject))][:limit]
    elaborate = q.intent in ELABORATED
    return _draft(_with_context(chosen, all_sentences or sentences, elaborate=elaborate), best.probability)


# Intents whose answer is an account rather than one fact: the sentences right after the chosen one that carry it on
# ("... with a community benefits plan." then "The bank pledged $250 million ..." and "It also promised ...").
ELABORATED = {"summary"}
ELABORATION = 3  # sentences at most
_CARRIES_ON = re.compile(r"^\s*(?:it|its|they|their|he|she|this|these|the (?:\w+ )?(?:company|firm|bank|group|lender|"
                         r"retailer|carrier|airline|agency|authority|department|insurer|chain|utility|maker|deal|plan|"
                         r"board|program|programme|union|council|committee|commission|city|state|regulator|audit|"
                         r"auditor|segment|report|plant|service|proposal|agreement|contract)\b)|^\s*(?:also|in addition|"
                         r"additionally|further|furthermore|moreover|first|second|third|finally)\b", re.I)


_LIST_ITEM = re.compile(r"^\s*(?:[-*•·]|\(?\d{1,2}[.)]|\(?[a-z][.)])\s+")
_ANAPHORA = re.compile(r"^\s*(?:it|its|they|their|this|these|that|those|he|she|the (?:latter|former))\b|\bthis (?:group|user|account|"
                       r"field|option|program|programme|package|file|directory|command|value|unit|service)\b", re.I)


def _with_context(chosen: list[Sentence], every: list[Sentence], *, elaborate: bool = False) -> list[Sentence]:
    """What a chosen sentence needs to be read on its own: the items of a list it introduces ("four routes:",
    "three priorities" then "First, ..."), the heading it defines ("dialout" for "Members of this group ..."),
    the sentence its pronoun points to ("It had uid 37.")."""
    by_doc: dict[str, list[Sentence]] = {}
    for s in every:
        by_doc.setdefault(s.doc_id, []).append(s)
    for sentences in by_doc.values():
        sentences.sort(key=lambda x: x.doc_start)
    out: list[Sentence] = []
    for s in chosen:
        siblings = by_doc.get(s.doc_id, [])
        at = next((i for i, x in enumerate(siblings) if x.doc_start == s.doc_start), None)
        if at is None:
            out.append(s)
            continue
        term = _defined_term(s, siblings[:at])
        if term is not None and (_ANAPHORA.search(s.text) or siblings[at - 1] is term):
            out.append(term)  # "dialout" then "Members of this group can reconfigure the modem": the term it defines
        if _ANAPHORA.search(s.text) and at > 0 and _adjacent(siblings[at - 1], s, every):
            out.append(siblings[at - 1])
        out.append(s)
        # "... is no longer about carts and clicks." then "It is about who owns the rails ...": the contrast's other half.
        if _CONTRAST.search(s.text) and at + 1 < len(siblings) and _PRONOUN_OPENING.match(siblings[at + 1].text) \
                and _adjacent(s, siblings[at + 1], every):
            out.append(siblings[at + 1])
        # "The old story was a simple one: Amazon disrupted retail." then "Walmart defended it with ...": the
        # colon opens an account the next sentence finishes, and that sentence leans on this one by a pronoun.
        if _OPENS_ACCOUNT.search(s.text) and at + 1 < len(siblings) and len(siblings[at + 1].text) < 140 \
                and _LEANS_BACK.search(siblings[at + 1].text) and _adjacent(s, siblings[at + 1], every):
            out.append(siblings[at + 1])
        if elaborate:
            for x in siblings[at + 1:at + 1 + ELABORATION]:
                if not (_CARRIES_ON.match(x.text) or re.search(r"\b(?:also|too)\b", x.text[:40])) \
                        or not _adjacent(out[-1], x, every):
                    break
                out.append(x)
        announces = s.text.rstrip().endswith(":") or _ANNOUNCES.search(s.text)
        if announces:
            for x in siblings[at + 1:at + 9]:
                if not _adjacent(out[-1], x, every) and not s.text.rstrip().endswith(":"):
                    break
                if not (_LIST_ITEM.match(x.text) or _ORDINAL.match(x.text) or (s.text.rstrip().endswith(":") and len(x.text) < 140)):
                    break
                out.append(x)
    return list(dict.fromkeys(out))


_ANNOUNCES = re.compile(r"\b(?:two|three|four|five|six|seven|eight|nine|ten|\d)\s+(?:\w+\s+)?(?:priorities|steps|"
                        r"changes|goals|points|reasons|routes|findings|recommendations|pillars|areas|options|ways|"
                        r"measures|risks|items|things|parts|principles|commitments|moves)\b", re.I)
_CONTRAST = re.compile(r"\b(?:no longer|not only|rather than|instead of|isn't|is not|are not|aren't)\b", re.I)
_PRONOUN_OPENING = re.compile(r"^\s*(?:it|this|that|they|these)\s+(?:is|are|was|were|has|have)\b", re.I)
_OPENS_ACCOUNT = re.compile(r"\w:\s+\S")
_LEANS_BACK = re.compile(r"\b(?:it|its|them|they|their)\b", re.I)
_ORDINAL = re.compile(r"^\s*(?:first|second|third|fourth|fifth|sixth|finally|lastly|next|also)\b[,:]?", re.I)


def _defined_term(s: Sentence, before: list[Sentence]) -> Sentence | None:
    """The heading ``s`` sits under when it is a term being defined (a name, as in a
    glossary or a list of groups and users: one word), not a section title."""
    if not s.heading or len(s.heading.split()) > DEFINED_TERM_WORDS or re.match(r"[A-Z][a-z]", s.heading.strip()):
        return None  # a capitalised word ("Reservoirs") titles a section; a term ("dialout", "www-data") is an identifier
    for x in reversed(before):
        if x.is_heading:
            return x if x.text.lstrip("#").strip().rstrip(":") == s.heading.strip().rstrip(":") else None
    return None


DEFINED_TERM_WORDS = 1


def _adjacent(a: Sentence, b: Sentence, every: list[Sentence]) -> bool:
    """``a`` comes right before ``b`` in the same paragraph (or ``a`` is the heading ``b`` sits under)."""
    if a.doc_id != b.doc_id or a.doc_start >= b.doc_start:
        return False
    if a.is_heading and b.heading and a.text.lstrip("#").strip().rstrip(":") == b.heading.rstrip(":"):
        return True
    a_end, b_start = a.doc_start + len(a.text), b.doc_start
    for x in every:
        chunk = x.ctx.chunk
        if chunk.doc_id == a.doc_id and chunk.start <= a_end and b_start <= chunk.end:
            gap = chunk.text[a_end - chunk.start:b_start - chunk.start]
            return "\n\n" not in gap.replace(" ", "") and len(gap) < 40
    return False


def _foreign_terms(q: Question, sentences: list[Sentence]) -> list[str]:
    """Nouns of the question that the sources use only in documents that never mention its subject: "When will
    the Water Authority launch satellites?" with satellites only in a retail article. The subject's own
    documents cannot hold that answer."""
    from lemminflect import getAllLemmas

    if not q.subjects:
        return []
    subject_docs = {s.doc_id for s in sentences if all(mentions_entity(s.text, e) or mentions_entity(s.heading, e)
                                                       for e in q.subjects)}
    if not subject_docs:
        return []
    out = []
    for t in q.terms:
        docs = {s.doc_id for s in sentences if t in s.stems}
        word = q.lemmas.get(t, t)
        if docs and not docs & subject_docs and "NOUN" in getAllLemmas(word) and "VERB" not in getAllLemmas(word):
            out.append(t)
    return out


def _why_not(q: Question, scored: list[Evidence], sentences: list[Sentence], best: Evidence | None) -> str:
    """What was found and what is missing; never a word said to be absent when its stem is in the text."""
    present = set().union(*(s.stems for s in sentences))
    subjects = " and ".join(e.name for e in q.subjects)
    if q.subjects and not any(e.subject for e in scored):
        return f"nothing in the sources about {subjects} addresses this"
    missing = [w for w in _attribute_words(q) if stem(w) not in present]
    if missing:
        about = f"{subjects}'s " if q.subjects else ""
        return f"the sources say nothing about {about}{_quoted(missing)}"
    top = best or max(scored, key=lambda e: e.score, default=None)
    strongest = max(scored, key=lambda e: e.score, default=None)
    if strongest is not None and strongest.rejected and (top is None or strongest.score > top.score):
        top = strongest  # the closest candidate was ruled out: say why
    if top is not None and top.rejected:
        return top.rejected
    kind = _TYPE_NAMES.get(q.intent)
    if kind and q.subjects:
        return f"the sources discuss {subjects} but give no {kind} for what was asked"
    if kind:
        return f"the sources discuss this but give no {kind} for it"
    return f"the sources do not say this{' about ' + subjects if subjects else ''}"


def _attribute_words(q: Question) -> list[str]:
    from .offline_question import _PERIOD, _QUESTION_ONLY
    from ..language import FUNCTION_WORDS, words

    names = {w.lower() for n in q.subject_names for w in words(n)}
    out = []
    for w in words(q.core):
        lw = w.lower()
        if lw in FUNCTION_WORDS or lw in _QUESTION_ONLY or lw in names or len(lw) < 3 or _PERIOD.fullmatch(w):
            continue  # a period ("FY2026") is looked for as a period, whatever way the sources write it
        out.append(w)
    return list(dict.fromkeys(out))


# ------------------------------------------------------------------ comparisons, lists, summaries
def _comparison_answer(q: Question, sentences: list[Sentence], entities: EntityIndex) -> AnswerDraft:
    """Each subject side by side: its best sentence for the compared attribute, each cited."""
    chosen: list[Sentence] = []
    confidence = 1.0
    missing = []
    for subject in q.subjects:
        one = Question(text=q.text, core=q.core, intent="description", subjects=[subject],
                       subject_names=[subject.name], terms=q.terms, context_terms=q.context_terms)
        scored = [e for e in score_sentences(one, sentences, entities)
                  if e.eligible and e.answers and (e.subject or e.features.get("subject_near"))]
        own = [e for e in scored if not any(mentions_entity(e.sentence.text, other) for other in q.subjects if other is not subject)]
        pick = max(own or scored, key=lambda e: (e.score, -e.sentence.index), default=None)
        if pick is None:
            missing.append(subject.name)
            continue
        if pick.sentence not in chosen:
            chosen.append(pick.sentence)
        confidence = min(confidence, pick.probability)
    if missing:
        found = [s.name for s in q.subjects if s.name not in missing]
        if not found:
            return _refuse(f"the sources say nothing comparable about {' or '.join(missing)}")
        return _refuse(f"the sources describe {', '.join(found)} on this but say nothing comparable about {' or '.join(missing)}")
    return _draft(chosen, confidence)


_PLURAL_PARTIES = re.compile(r"\b(?:two|both|the|these|those)\s+(?:\w+\s+)?(?:banks|companies|firms|rivals|retailers|"
                             r"airlines|carriers|insurers|lenders|chains|groups|players|competitors|operators|sides|"
                             r"brands|utilities|agencies|makers|platforms)\b", re.I)


def _acronym_definition(q: Question, sentences: list[Sentence]) -> AnswerDraft | None:
    """"What does PVB stand for?": the sentence that spells it out ("Pinecrest Valley Bank (PVB)")."""
    from ..language import is_acronym, paren_aliases

    asked = [n for n in q.subject_names if is_acronym(n)]
    if not asked or not re.search(r"\b(?:stand for|stands for|short for|mean|abbreviat|acronym)\b", q.core, re.I):
        return None
    for s in sentences:
        if any(short == asked[0] for _, short in paren_aliases(s.text)):
            return _draft([s], 0.95)
    return None


_NAME_KINDS = {
    "organisation": re.compile(r"\b(?:compan|firm|organi[sz]ation|business|bank|lender|retailer|rival|competitor|"
                               r"player|brand|carrier|airline|agenc|group|insurer|chain|partner|operator|supplier|"
                               r"maker|utilit|institution|outlet|regulator)", re.I),
    "person": re.compile(r"\b(?:people|person|executive|official|leader|analyst|spokes|manager|director|officer|"
                         r"individual|expert|who)\b", re.I),
    "place": re.compile(r"\b(?:town|city|cities|place|location|region|countr|state|market)s?\b", re.I),
}
_MENTIONED = re.compile(r"\b(?:mention|named|name|listed|quoted|cited|involved|discussed|covered|referenced|featured|"
                        r"appear|talked about|included)\w*\b", re.I)


def _asks_for_names(q: Question) -> bool:
    """"Which companies are mentioned?", "Which people from X are quoted?": a list of names, not a passage."""
    return bool(_MENTIONED.search(q.core)) and any(p.search(q.core) for p in _NAME_KINDS.values())


def _names_answer(q: Question, sentences: list[Sentence], entities: EntityIndex) -> AnswerDraft:
    kind = next(k for k, p in _NAME_KINDS.items() if p.search(q.core))
    if _THE_ARTICLE.search(q.core) and sentences:
        doc = main_document(sentences)  # "mentioned in the article": that one document's names
        sentences = [s for s in sentences if s.doc_id == doc]
    scope = [s for s in sentences if not q.subjects or any(mentions_entity(s.text, e) for e in q.subjects)]
    if kind == "person" and q.subjects:
        scope = sentences  # "people from Selkirk": the person sentences need not repeat the name
    found: list[tuple[str, Sentence]] = []
    for entity in sorted(entities.of_kind(kind), key=lambda e: -e.count):
        if entity in q.subjects:
            continue
        first = next((s for s in scope if mentions_entity(s.text, entity)), None)
        if first is None:
            continue
        if kind == "person" and q.subjects and not _belongs_to(entity, q.subjects, sentences):
            continue
        found.append((entity.name, first))
    if not found:
        return _refuse(f"the sources name no {kind}s{' for ' + ' and '.join(e.name for e in q.subjects) if q.subjects else ''}")
    names = [n for n, _ in found]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    what = {"organisation": "organisations", "person": "people", "place": "places"}[kind]
    return _draft([s for _, s in found], 0.9, text=f"The sources mention these {what}: {listed}.")


def _belongs_to(person: Any, orgs: Sequence[Any], sentences: Sequence[Sentence]) -> bool:
    """A person is one of an organisation's when a sentence names both (titles: "Selkirk's president")."""
    return any(mentions_entity(s.text, person) and any(mentions_entity(s.text, o) for o in orgs) for s in sentences)


RELATED_DOCUMENT = 0.5
DOCUMENT_VOTE = 0.3  # share of the best-supported document's total evidence another document needs to answer  # cosine of two documents' mean sentence vectors above which they are on one topic


def _related_documents(doc_id: str, sentences: list[Sentence]) -> set[str]:
    """Documents of the context on the same topic as ``doc_id`` (a bank merger and its follow-up story, not the
    school newsletter retrieved beside them)."""
    vectors: dict[str, list[np.ndarray]] = {}
    for s in sentences:
        if s.vector is not None:
            vectors.setdefault(s.doc_id, []).append(s.vector)
    if doc_id not in vectors:
        return {doc_id}
    centroid = {d: np.mean(v, axis=0) for d, v in vectors.items()}
    for d, c in centroid.items():
        norm = float(np.linalg.norm(c))
        centroid[d] = c / norm if norm else c
    return {d for d, c in centroid.items() if d == doc_id or float(c @ centroid[doc_id]) >= RELATED_DOCUMENT}


def main_document(sentences: list[Sentence]) -> str:
    """The document a question about "the article" means: the one the context holds most of (most text, then
    most chunks retrieved): a long article rather than the short items retrieved beside it."""
    chunks: dict[str, set[str]] = {}
    size: dict[str, int] = {}
    for s in sentences:
        chunks.setdefault(s.doc_id, set()).add(s.ctx.chunk.id)
        size[s.doc_id] = size.get(s.doc_id, 0) + len(s.text)
    return max(chunks, key=lambda d: (size[d], len(chunks[d]), d))


_THE_ARTICLE = re.compile(r"\b(?:the|this) (?:article|story|piece|report|document|text|memo|letter|notice|release)\b", re.I)


def _summary_answer(q: Question, sentences: list[Sentence]) -> AnswerDraft:
    """A few central sentences, in reading order: of the subject's sentences, or of the best-represented document."""
    pool = [s for s in sentences if len(s.text) > 40]
    if q.subjects:
        about = [s for s in pool if any(mentions_entity(s.text, e) for e in q.subjects)]
        if about:
            docs = {}
            for s in about:
                docs[s.doc_id] = docs.get(s.doc_id, 0) + 1
            doc = max(docs, key=lambda d: (docs[d], -min(s.index for s in about if s.doc_id == d)))
            pool = [s for s in pool if s.doc_id == doc]
    elif pool:
        doc = main_document(pool)
        pool = [s for s in pool if s.doc_id == doc]
    if not pool:
        return _refuse("nothing in the sources to summarize")
    terms = set(q.terms)
    vectors = np.stack([s.vector for s in pool]) if pool[0].vector is not None else None
    centroid = vectors.mean(axis=0) if vectors is not None else None
    scores = []
    for i, s in enumerate(pool):
        central = float(vectors[i] @ centroid) if vectors is not None else 0.0
        focus = len(terms & s.stems) / (1 + len(terms)) if terms else 0.0
        lead = 0.15 if i == 0 else 0.0
        scores.append((central + focus + lead, s))
    picked = sorted(scores, key=lambda t: (-t[0], t[1].index))[:SUMMARY_SENTENCES]
    return _draft([s for _, s in picked], 0.8)


# ------------------------------------------------------------------ follow-up condensing
_PRONOUNS = re.compile(r"\b(it|its|it's|they|their|theirs|them|he|his|him|she|her|hers|that|this|those|these|"
                       r"the company|the firm|the bank|the group|the deal|the plan|the agency|the retailer)\b", re.I)
_ELLIPTICAL = re.compile(r"^\s*(and|what about|how about|and what about|same for|what of|and for)\b\s*(?P<rest>.*?)\s*\??\s*$", re.I)
_BARE_INTENT = re.compile(r"^\s*(?:and\s+)?(?P<wh>when|why|how|how much|how many|where|who|what|which|by how much|"
                          r"for how much|since when|how long)\b[\w\s']{0,25}\??\s*$", re.I)
_RIVAL = re.compile(r"\b(?:its|their|the)\s+(?:rival|competitor|opponent|counterpart|other (?:company|firm|side|bank))\b", re.I)


def condense_question(history: list[dict[str, str]], question: str) -> str:
    """Make a follow-up standalone: swap in a new name ("And Walmart?"), resolve pronouns ("its" -> the last
    subject), or carry the conversation's topic to a bare question ("When?", "Why?", "How much?")."""
    previous = [t["content"] for t in history if t.get("role") == "user"]
    if not previous:
        return question
    # The topic carried so far: the last question and the context it carried itself (two questions back at most).
    main, _, carried = previous[-1].partition(" (context: ")
    carried = carried.rstrip(")")
    last = main if not carried else f"{main} {carried.split(' | ')[0]}"
    last_main = main
    answers = " ".join(t["content"] for t in history if t.get("role") == "assistant")
    entities = EntityIndex([last, answers, question])
    last_names = [m for m in _names(last, entities)]
    new_names = [m for m in _names(question, entities)]
    m = _ELLIPTICAL.match(question)
    rest = m.group("rest").strip(" ?") if m else ""
    name_stems = {stem(w) for n in new_names for w in re.findall(r"[^\W_]+", n)}
    rest_terms = [t for t in content_stems(rest) if t not in name_stems]
    if m and rest and rest_terms and (new_names or not last_names):
        return f"What is {rest}?"  # "And Walmart's revenue?": a new attribute, asked directly
    if m and new_names and last_names and not rest_terms:
        result = last_main
        for old, new in zip(last_names, new_names):
            result = re.sub(r"\b" + re.escape(old) + r"\b", new, result)
        if result == last_main:
            result = f"{question} (context: {last})"
        return result
    if _RIVAL.search(question):
        rival = _rival_of(last_names, answers, entities)
        if rival:
            return _RIVAL.sub(rival, question, count=1) + f" (context: {last})"
    if not new_names and last_names and _PRONOUNS.search(question):
        return _resolve_pronouns(question, last_names[:1]) + f" (context: {last})"
    if _BARE_INTENT.match(question) or (m and not new_names):
        # "Since when?" after "Who runs Flow Control?" -> "Beatriz Coelho ...": it asks about the fact just given, so
        # the name that answer brought in is carried too.
        given = _answer_names(history, last, entities) if _BARE_INTENT.match(question) else []
        # After " | " so that it is not carried further than the next question.
        return f"{question.rstrip('?').strip()}? (context: {last}{' | ' + given[0] if given else ''})"
    if not new_names and len(content_stems(question)) <= 3:
        return f"{question} (context: {last})"
    return question


def _answer_names(history: list[dict[str, str]], last: str, entities: EntityIndex) -> list[str]:
    """Names of people that the last answer gave and the question before it did not name."""
    answers = [t["content"] for t in history if t.get("role") == "assistant"]
    if not answers or answers[-1].startswith(CANNOT_ANSWER):
        return []
    out = []
    for name in _names(answers[-1], entities):
        entity = entities.resolve(name)
        if entity is not None and entity.kind == "person" and name not in last \
                and not any(mentions_entity(last, e) for e in [entity]):
            out.append(name)
    return list(dict.fromkeys(out))


def _names(text: str, entities: EntityIndex) -> list[str]:
    from ..language import mentions

    out = []
    for m in mentions(text):
        if m.sentence_initial and entities.resolve(m.text) is None and " " not in m.text:
            continue
        out.append(m.text)
    return out


def _rival_of(last_names: list[str], answers: str, entities: EntityIndex) -> str | None:
    from ..language import mentions

    others = [m.text for m in mentions(answers) if m.text not in last_names and not any(m.text in n for n in last_names)]
    orgs = [n for n in others if (e := entities.resolve(n)) is not None and e.kind == "organisation"]
    return (orgs or others or [None])[0]


def _resolve_pronouns(text: str, names: list[str]) -> str:
    """Replace up to two pronouns with the previous question's names ("its" -> "Walmart's")."""
    name = " and ".join(names)

    def swap(mm: re.Match[str]) -> str:
        word = mm.group(0).lower()
        if word in {"its", "their", "theirs", "his", "her", "hers"}:
            return f"{name}'s"
        if word == "it's":
            return f"{name} is"
        if word in {"that", "this", "those", "these"}:
            return mm.group(0)
        return name

    return _PRONOUNS.sub(swap, text, count=2)


class OfflineBackend(Backend):
    name = "offline"
    trusted_text = True

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self.model = "extractive-v2"

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

            output = summarize_document(inputs["doc_id"], inputs["title"], inputs["context"], date=inputs.get("date"))
        elif request.task == "briefing":
            from .offline_summary import build_briefing

            output = build_briefing(inputs["title"], inputs["summaries"], inputs["documents"])
        else:
            from ..errors import BackendError

            raise BackendError(f"the offline engine cannot do {request.task!r}", hint="configure an LLM backend")
        usage = Usage(latency_ms=round((time.perf_counter() - started) * 1000, 3), cost_usd=0.0, calls=1)
        return Generation(output=output, usage=usage)
