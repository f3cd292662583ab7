"""Question understanding for the offline engine: what is asked (intent), about whom (subjects), and which
words carry the asked-for attribute.

Politeness and framing ("please", "briefly", "in simple terms", "tell me", "explain") are taken off
first, so they never count as content. Names are resolved against the context's entities (so
"Pinecrest", "PVB" and "Pinecrest Valley Bank" are one subject); a capitalised question word
("Compare", "Summarize") is a subject only if the sources use it as a name. All rules here are
general English: question words, framing phrases, job titles.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..language import (
    FUNCTION_WORDS, TITLE_ACRONYMS, TITLE_WORDS, Entity, EntityIndex, content_stems, is_acronym, is_common_word, lemma,
    mentions, stem,
)
from lemminflect import getAllLemmas

INTENTS = ("summary", "comparison", "list", "figure", "date", "person", "organisation", "reason", "definition",
           "how", "yesno", "description")

# Framing that never counts as content: politeness, requests to explain, length and style.
_FRAMING = re.compile(
    r"\b(?:please|kindly|thanks|thank you|could you|can you|would you|will you|would you mind|do you know|"
    r"i(?:'d| would) like to know|i want to know|i wonder|i(?:'m| am) curious|let me know|tell me|tell us|"
    r"help me understand|give me|show me|explain(?: to me)?|describe|walk me through|remind me|"
    r"in (?:simple|plain|layman'?s|a few|few|short|brief|one|two|three) (?:terms|words|english|sentences?|lines?)|"
    r"in short|in brief|briefly|quickly|simply|in a nutshell|roughly|exactly|precisely|basically|actually|"
    r"for me|if you can|if possible|according to (?:the )?(?:article|articles|sources?|documents?|text|report|coverage|piece)|"
    r"(?:the|this|these) (?:article|articles|story|stories|piece|document|documents|text|report|coverage|sources?) "
    r"(?:says?|said|mentions?|states?|reports?)|"
    r"does the (?:article|story|piece|document|text|report|coverage) say)\b", re.I)
_SUMMARY = re.compile(
    r"\b(?:summari[sz]e|summary|summarise|overview|gist|recap|tl;?dr|main (?:point|argument|idea|message|takeaway|"
    r"thesis|theme|story)s?|key (?:points|takeaways|messages|ideas)|(?:what|which) is (?:this|the|it) (?:article|story|piece|"
    r"document|text|report) (?:mainly |mostly |really )?about|what(?:'s| is) (?:this|it) (?:all )?about|"
    r"what (?:is|are) the (?:\w+ )?(?:article|story|piece|document|documents|text|report|coverage)s? (?:mainly |mostly )?about|"
    r"big picture|in a nutshell|main argument)\b", re.I)
_COMPARE = re.compile(r"\b(?:compare|comparison|compared|differ|differs|different|difference|differences|versus|vs\.?|"
                      r"contrast|how do .+ (?:and|or|versus) .+ (?:stack up|measure up)|stack up|side by side|"
                      r"similarities|alike|unlike)\b", re.I)
_LIST = re.compile(r"^(?:which|what) (?:\w+ ){0,4}?(?:are|were|get|got|is|was) (?:\w+ ){0,2}?"
                   r"(?:mentioned|named|listed|quoted|cited|involved|discussed|covered|referenced|included|featured)\b|"
                   r"\b(?:list|name) (?:all|the|every|each)\b|\bwhat are (?:the|all)\b.*\b(?:\w+s)\b|"
                   r"^(?:which|what) (?:\w+ )?(?:companies|firms|organi[sz]ations|people|towns|cities|banks|"
                   r"programmes|programs|products|risks|groups|agencies|players|rivals|competitors|executives)\b", re.I)
_FIGURE = re.compile(
    r"\bhow (?:much|many|big|large|long|far|fast|high|low|often|old)\b|\bby how much\b|"
    r"\bwhat(?:'s| is| was| are| were)? (?:the )?(?:\w+ ){0,3}?(?:percent|percentage|share|number|amount|price|cost|fee|"
    r"fees|rate|figure|total|value|size|sum|budget|revenue|revenues|sales|margin|profit|loss|income|salary|pay|"
    r"valuation|stake|count|capacity|growth|increase|decrease|tag)\b|\bwhat (?:share|proportion|fraction|portion)\b", re.I)
_FIGURE_VERB = re.compile(r"^\s*(?:what|how much)\s+(?:did|does|do|will|would|has|have|had|is|was)\s+(?:\w+\s+){1,6}?"
                          r"(?:spend|pay|cost|earn|charge|invest|owe|fetch)\b(?!\s+for\s*[?.]?\s*$)", re.I)
# "What did Torvik pay for the sensor maker?" asks an amount; "What does the loan pay for?" asks a purpose.
_FIGURE_NOUN = re.compile(r"^\s*what(?:'s| is| was| are| were| will be)\b.{0,50}\b(?:profit|profits|revenue|revenues|sales|"
                          r"price|prices|cost|costs|budget|margin|earnings|income|loss|losses|salary|valuation|fee|fees|"
                          r"rate|dividend|debt|capex|spending|turnover|ebitda|eps)\b", re.I)
_DATE = re.compile(r"\bwhen\b|\bwhat (?:year|date|day|month|time|quarter)\b|\bwhich (?:year|date|day|month|quarter)\b|"
                   r"\bon what (?:day|date)\b|\bby when\b|\bhow soon\b|\bwhat deadline\b|\bdeadline\b", re.I)
_PERSON = re.compile(r"^\s*who\b(?!se\b)|\bwho (?:is|was|are|were) in charge\b|\bwhich (?:\w+ )?(?:person|executive|official|people|officer|leader|analyst|"
                     r"spokesperson|manager|director|member|chief|boss)\b|\bwhat(?:'s| is) (?:the )?name of\b|"
                     r"\bname of the\b", re.I)
_ORG = re.compile(r"\bwhich (?:\w+ )?(?:company|companies|firm|firms|bank|banks|lender|lenders|regulator|regulators|"
                  r"agency|agencies|authority|rival|rivals|competitor|competitors|carrier|carriers|airline|"
                  r"airlines|retailer|retailers|organi[sz]ation|organi[sz]ations|insurer|insurers|chain|brand|"
                  r"supplier|operator|maker|utility|broker|automaker|carmaker|drugmaker)\b", re.I)
_REASON = re.compile(r"\bwhy\b|\bwhat (?:caused|causes|drove|drives|led to|explains|prompted|motivated)\b|"
                     r"\bfor what reason\b|\bhow come\b|\bwhat(?:'s| is| was) the (?:reason|rationale|motive|cause)\b|"
                     r"\breason(?:s)? (?:for|behind)\b|\bbehind\b.*\?$", re.I)
_DEFINITION = re.compile(r"^\s*(?:what|who) (?:is|are|was|were) (?:a |an |the )?(?![\w&.\- ]*\b\w+(?:ing|ed)\b)"
                         r"(?:[\w&.\-]+ ?){1,6}\?\s*$|"
                         r"\bwhat does .+ (?:mean|stand for|do)\b|\bstand for\b|\bmeaning of\b|\bdefine\b|"
                         r"\bdefinition\b", re.I)
_HOW = re.compile(r"^\s*how\b|\bin what way\b|\bwhat steps\b|\bhow do i\b|\bwhat should\b|\bwhat to do\b", re.I)
_YESNO = re.compile(r"^\s*(?:is|are|was|were|does|do|did|will|would|can|could|has|have|had|should)\b", re.I)
# Terse forms without a question word ("PVB boss?", "Brannock revenue 2024?").
_TERSE_PERSON = re.compile(r"\b(?:boss|ceo|cfo|coo|chief|head|chair|chairman|president|founder|leader|spokesperson)\s*\??\s*$", re.I)
_TERSE_FIGURE = re.compile(r"\b(?:revenue|revenues|sales|profit|price|cost|budget|margin|share|stake|fee|rate|total|"
                           r"capacity|count|number|valuation|salary|income|subscribers|users)\b", re.I)

# Words that only say what kind of answer is wanted; they are not the attribute.
_QUESTION_ONLY = frozenset("""what which who whom whose when where why how much many long often far big large kind
type sort way ways thing things sum amount number figure exactly happen happened happening going get gets got give
gives mention mentioned mentions name named say said says tell mean means meant main key stand do does did done
summarize summarise summary summarized overview gist recap article articles story stories piece document documents
text report coverage source sources mainly mostly really compare comparison compared versus contrast differ
difference differences list""".split())
_SUMMARY_WORDS = frozenset("""argument arguments point points idea ideas message messages takeaway takeaways thesis
theme themes gist overview about story piece main central core basic overall big picture""".split())
# People's roles, for "who is the CEO of X" and "X boss?".
ROLE_SYNONYMS = {
    "boss": {"ceo", "chief", "executive", "president", "head", "chair", "chairman", "leader", "lead", "run"},
    "head": {"head", "ceo", "chief", "executive", "president", "director", "lead", "leader", "run", "chair"},
    "leader": {"ceo", "chief", "executive", "president", "head", "leader", "lead", "run", "chair"},
    "run": {"ceo", "chief", "executive", "president", "head", "run", "lead", "manager", "director"},
    "lead": {"ceo", "chief", "executive", "president", "head", "lead", "leader", "run", "director"},
}


@dataclass
class Question:
    text: str  # as asked
    core: str  # framing removed
    intent: str
    subjects: list[Entity] = field(default_factory=list)
    subject_names: list[str] = field(default_factory=list)  # as written in the question
    unknown_names: list[str] = field(default_factory=list)  # names the sources do not contain
    terms: list[str] = field(default_factory=list)  # stems of the asked-for attribute
    context_terms: list[str] = field(default_factory=list)  # from a follow-up's conversation: weigh less
    role: list[frozenset[str]] = field(default_factory=list)  # ways to say the role: each a set of stems, all needed
    counted: str | None = None  # "how many doses": the stem of what is counted
    focus: str | None = None  # "what deposit rate ...": the stem of the thing asked for
    lemmas: dict[str, str] = field(default_factory=dict)  # stem -> the word's dictionary form, for soft matches
    periods: list[str] = field(default_factory=list)  # years and quarters the question names ("2026", "fourth quarter")
    object_question: bool = False  # "Who did Kroger hire?": a description of the person answers it
    past: bool = False  # asks what happened ("How did the council vote?"), not what is planned
    figure_kind: str | None = None  # "money" | "percent" | "count" for figure questions
    relation: tuple[str, str, str] | None = None  # (actor name, verb stem, other party name) when asked
    doer: tuple[str, str] | None = None  # "How did the full council vote?": (stem of "council", stem of "vote")

    @property
    def typed(self) -> bool:
        return self.intent in ("figure", "date", "person", "organisation")


def strip_framing(question: str) -> str:
    text = _FRAMING.sub(" ", question)
    text = re.sub(r"\s*,\s*(?=[?.!]|$)", "", text)
    text = re.sub(r"^\s*(?:and|so|ok|okay|also|then|now)\b[\s,]*", "", text, flags=re.I)
    return " ".join(text.split()).strip(" ,") or question.strip()


def intent_of(core: str) -> str:
    if _SUMMARY.search(core):
        return "summary"
    if _COMPARE.search(core):
        return "comparison"
    if _LIST.search(core):
        return "list"
    if _REASON.search(core):
        return "reason"
    if _DATE.search(core):
        return "date"
    if _FIGURE.search(core) or _FIGURE_NOUN.search(core) or _FIGURE_VERB.search(core):
        return "figure"
    if _ORG.search(core):
        return "organisation"
    if _PERSON.search(core) or _TERSE_PERSON.search(core):
        return "person"
    if _DEFINITION.search(core):
        return "definition"
    if _HOW.search(core):
        return "how"
    if _YESNO.search(core):
        return "yesno"
    if "?" in core and _TERSE_FIGURE.search(core) and not re.search(r"\b(?:what|which|who|how|why|when|where)\b", core, re.I):
        return "figure"
    return "description"


def _figure_kind(core: str) -> str | None:
    """The kind of figure asked for, when the question says it ("what share" -> a percentage); "how much"
    alone may be money, a count or a change in percent."""
    if re.search(r"\b(?:percent|percentage|proportion|fraction|portion)\b|%", core, re.I):
        return "percent"
    if re.search(r"\bhow many\b|\bnumber of\b", core, re.I):
        return "count"
    if re.search(r"\b(?:price|prices|cost|costs|fee|fees|budget|salary|worth|valuation|spend|spent|invest|invested|"
                 r"paying|pay for|owe|owes|tag|dollars?|euros?|pounds?)\b", core, re.I) and not re.search(r"\bby how much\b", core, re.I):
        return "money"
    return None


def _names_in(core: str, entities: EntityIndex) -> tuple[list[tuple[str, Entity]], list[str]]:
    """(name as written, entity) for names the sources contain; and names they do not."""
    found: list[tuple[str, Entity]] = []
    unknown: list[str] = []
    seen: set[int] = set()
    for m in mentions(core):
        name = m.text
        parts = name.split()
        # A capitalised first word is a question word, a verb or framing unless the sources use it as a name.
        if m.sentence_initial and len(parts) == 1 and entities.resolve(name) is None:
            continue
        if m.sentence_initial and len(parts) == 1 and is_common_word(name) and not is_acronym(name) \
                and re.match(r"\s+[a-z]", core[m.end:]) and " " in core[m.end:].strip():
            continue  # "Health committee chair?": a capitalised first word that qualifies a common noun
        if name.upper() in TITLE_ACRONYMS or name.lower() in TITLE_WORDS:
            continue
        if _PERIOD.fullmatch(name):
            continue  # "FY2026", "Q4": a period the answer must name, not a party
        entity = entities.resolve(name) or entities.literal(name)
        if entity is None and len(parts) > 1:
            # "Amazon's and Walmart's" or "Kroger Walmart": try the words one by one.
            pieces = [(p, entities.resolve(p) or entities.literal(p)) for p in parts if p.lower() not in FUNCTION_WORDS]
            if any(e for _, e in pieces):
                for p, e in pieces:
                    if e is not None and id(e) not in seen:
                        found.append((p, e))
                        seen.add(id(e))
                continue
        if entity is None:
            # Only a proper name the sources lack is "not mentioned": an unknown abbreviation ("EPS"), a code
            # ("FY2026") or a capitalised word stays a word to look for.
            if (m.sentence_initial and not is_acronym(name)) or len(parts) == 1 and (
                    is_acronym(name) or any(c.isdigit() for c in name)):
                continue
            unknown.append(name)
        elif id(entity) not in seen:
            found.append((name, entity))
            seen.add(id(entity))
    return found, unknown


def parse_question(question: str, entities: EntityIndex) -> Question:
    """Intent, subjects and attribute terms of ``question``, resolved against the context's names."""
    main, _, context_part = question.partition(" (context: ")
    context_part = context_part.rstrip(")")
    core = strip_framing(main)
    intent = intent_of(core)
    names, unknown = _names_in(core, entities)
    if context_part and not names:
        names, _ = _names_in(strip_framing(context_part), entities)
    q = Question(text=question, core=core, intent=intent, subjects=[e for _, e in names],
                 subject_names=[n for n, _ in names], unknown_names=unknown)
    name_stems = {stem(w) for _, e in names for n in e.names() for w in re.findall(r"[^\W_]+", n)}
    name_stems |= {stem(w) for n, _ in names for w in re.findall(r"[^\W_]+", n)}
    name_stems |= {stem(w) for n in unknown for w in re.findall(r"[^\W_]+", n)}
    drop = frozenset(_QUESTION_ONLY)
    if intent == "summary":
        drop = drop | _SUMMARY_WORDS
    q.terms = [t for t in dict.fromkeys(content_stems(core, drop=drop)) if t not in name_stems]
    if context_part:
        q.context_terms = [t for t in dict.fromkeys(content_stems(strip_framing(context_part), drop=drop))
                           if t not in name_stems and t not in q.terms]
    if intent == "figure":
        q.figure_kind = _figure_kind(core)
    if intent == "person":
        q.role = _role_of(core)
    m = re.search(r"\bhow many\s+(?:\w+\s+){0,2}?([a-z][\w-]*s)\b", core, re.I) or \
        re.search(r"\bnumber of\s+(?:\w+\s+){0,2}?([a-z][\w-]*)\b", core, re.I)
    if m and intent == "figure":
        q.counted = stem(m.group(1))
    q.focus = _focus(core, name_stems) if intent not in ("summary", "list", "comparison") else None
    for w in re.findall(r"[^\W_]+", core + " " + context_part):
        q.lemmas.setdefault(stem(w), lemma(w.lower()))
    q.periods = _periods(core)
    q.object_question = intent == "person" and bool(re.match(r"^\s*(?i:whom?)\s+(?i:did|does|has|have|will|would|is|are)\s+[A-Z]", core))
    if q.object_question and re.match(r"^\s*who\s+(?:is|are)\s+(?:the|its|their|an?)\b", core, re.I):
        q.object_question = False
    q.past = bool(re.search(r"\b(?:did|was|were|had)\b", core, re.I)) and not re.search(r"\b(?:will|plan|plans|expect|expects|"
                                                                                       r"expected|forecast|going to)\b", core, re.I)
    q.relation = _relation(core, names)
    q.doer = _doer(core)
    if intent in ("description", "figure", "definition") and re.search(r"\b(?:stand for|stands for|short for)\b", core, re.I):
        q.intent = "definition"
    return q


_ROLE_ALTERNATIVES = {  # a generic role word, and the ways the press writes it
    "boss": ["ceo", "chief executive", "president", "head", "chairman", "chair", "run", "lead", "leader"],
    "head": ["head", "ceo", "chief executive", "president", "director", "lead", "run", "chair"],
    "leader": ["ceo", "chief executive", "president", "head", "leader", "lead", "run", "chair"],
    "run": ["ceo", "chief executive", "president", "head", "run", "lead", "manager", "director"],
    "lead": ["ceo", "chief executive", "president", "head", "lead", "leader", "run", "director"],
    "charge": ["ceo", "chief executive", "president", "head", "run", "lead", "manager", "director", "charge"],
}


_GENERIC_NOUNS = frozenset("""kind kinds type types sort sorts way ways part parts thing things one ones aspect aspects
example examples form forms extent degree sense point points bit lot number amount now today then currently
recently lately still already yet ever again also here there""".split())
_FOCUS = re.compile(r"^\s*(?i:what|which|how much|how many)\s+(?:(?i:kind|kinds|type|types|sort|sorts)\s+of\s+)?((?:[a-z][\w-]*\s+){0,2}?[a-z][\w-]*)\s+"
                    r"(?i:is|are|was|were|will|would|does|do|did|has|have|had|can|could|should|must|may|might|gets?|got)\b")


_COPULA_FOCUS = re.compile(r"^\s*(?i:what|which)(?i:'s| is| was| are| were| will be)\s+(?:(?i:the|an?)\s+)?(?:[A-Z][\w&.\-]*(?:['’]s)?\s+)*"
                           r"((?:[a-z][\w-]*\s+){0,2}?[a-z][\w-]*)(?:\s+(?i:of|for|in|on|at|from|to|by|last|this|next|each|per|"
                           r"that|which|under|over|between|with|among|about|like|against|into|during|after|before|"
                           r"since|until|via|versus|now|today|then)\b|\s*[?,.]|\s*$)")


def _focus(core: str, name_stems: set[str]) -> str | None:
    """The thing a "what X ..." / "which X ..." question asks for (its last noun: "deposit rate" -> "rate";
    "What was Pinecrest's net profit last year?" -> "profit")."""
    m = _FOCUS.match(core) or _COPULA_FOCUS.match(core)
    if not m:
        return None
    words_ = [w for w in m.group(1).split() if w.lower() not in FUNCTION_WORDS]
    if not words_:
        return None
    head = words_[-1].lower()
    if head in _GENERIC_NOUNS or head in _QUESTION_ONLY or stem(head) in name_stems or not is_common_word(head):
        return None
    if head.endswith("ing") or head in FUNCTION_WORDS or "NOUN" not in getAllLemmas(head):
        return None  # "What is Amazon doing ...": a verb, not the thing asked for
    if re.search(r"\b(?:good|used|needed|meant|there)\s+for\s*\?*\s*$", core, re.I):
        return None  # "What is the sync user good for?": a purpose, not a thing
    return stem(head)


_PERIOD = re.compile(r"\b(?:FY\s?|fiscal (?:year )?)?((?:19|20)\d{2})\b|\b(Q[1-4])\b|\b(first|second|third|fourth|1st|2nd|3rd|4th)[\s-]+quarter\b",
                     re.I)
_QUARTERS = {"first": "q1", "1st": "q1", "second": "q2", "2nd": "q2", "third": "q3", "3rd": "q3", "fourth": "q4", "4th": "q4"}


def _periods(core: str) -> list[str]:
    """The periods a question pins down, as keys ("2026", "q4"); relative ones ("last year") are left to the text."""
    out = []
    for m in _PERIOD.finditer(core):
        year, q, ordinal = m.groups()
        out.append(year if year else (q.lower() if q else _QUARTERS[ordinal.lower()]))
    return list(dict.fromkeys(out))


def period_keys(text: str) -> set[str]:
    """The period keys a text names ("fourth-quarter" and "Q4" are both "q4")."""
    return set(_periods(text))


def _role_of(core: str) -> list[frozenset[str]]:
    """The role a person question asks for: alternatives, each a set of stems that must all be there
    ("CFO" is {"cfo"} or {"chief", "financi"}; "boss" is "CEO", "chief executive", "president", ...)."""
    low = core.lower()
    phrases: list[str] = []
    for acronym, long in TITLE_ACRONYMS.items():
        if re.search(rf"\b{acronym.lower()}\b", low):
            phrases += [acronym.lower(), long.replace(" officer", "")]
    words_ = re.findall(r"[a-z]+", low)
    for word in words_:
        verb = getAllLemmas(word).get("VERB", ("",))[0]  # "running" is a noun too; here it is the verb
        key = word if word in _ROLE_ALTERNATIVES else stem(word) if stem(word) in _ROLE_ALTERNATIVES else \
            verb if verb in _ROLE_ALTERNATIVES else None
        if key is not None:
            phrases += _ROLE_ALTERNATIVES[key]
    titles = [w for w in words_ if w in TITLE_WORDS and w not in {"member", "former", "acting", "interim", "senior",
                                                                  "junior", "officer", "boss", "head", "leader"}]
    if titles:
        phrases.append(" ".join(titles))  # "chief executive", "vice president", "chair"
    return list(dict.fromkeys(frozenset(stem(w) for w in p.split()) for p in phrases))


_DOER = re.compile(r"^\s*(?i:how|when|why|where|what|which \w+|how much|how many)\s+(?i:did|does|do|will|would|has|have|had|"
                   r"can|could|should|is|are|was|were)\s+(?i:the|its|their|this|that|these|those)\s+((?:[a-z][\w-]*\s+){1,4})")


def _doer(core: str) -> tuple[str, str] | None:
    """The common-noun actor of a question and what it does: "How did the full council vote ...?" -> (council,
    vote). A sentence where the committee votes and the council is only its object does not answer it."""
    m = _DOER.match(core)
    if not m:
        return None
    words_ = m.group(1).split()
    for i, w in enumerate(words_[1:], start=1):
        found = getAllLemmas(w.lower())
        if "VERB" in found and not w.lower().endswith("s"):
            head = words_[i - 1].lower()
            if "NOUN" not in getAllLemmas(head) or head in FUNCTION_WORDS:
                return None
            return stem(head), stem(w)
    return None


_RELATION_VERBS = r"(?:pay|pays|paid|paying|owe|owes|owed|buy|buys|bought|buying|acquire|acquires|acquired|hire|hires|" \
                  r"hired|hiring|poach|poached|poaching|recruit|recruited|lure|lured|sue|sues|sued|supply|supplies|" \
                  r"supplied|sell|sells|sold|lend|lends|lent|give|gives|gave|charge|charges|charged|license|licenses|" \
                  r"licensed|fund|funds|funded)"
# Verbs of one relation, whichever the question or the text uses ("pay" / "owe", "hire" / "poach").
RELATION_CLASSES = [frozenset(stem(w) for w in group.split()) for group in (
    "pay owe give fund transfer compensate reimburse", "buy acquire purchase", "hire poach recruit lure",
    "sell divest", "supply provide", "sue", "lend loan", "license", "charge bill")]


def relation_class(verb_stem: str) -> frozenset[str]:
    return next((c for c in RELATION_CLASSES if verb_stem in c), frozenset({verb_stem}))


def _relation(core: str, names: list[tuple[str, Entity]]) -> tuple[str, str, str] | None:
    """"How much will A pay B?": (A, pay, B), so that a sentence where B pays A is not taken as the answer."""
    if len(names) < 2:
        return None
    m = re.search(rf"\b{_RELATION_VERBS}\b", core, re.I)
    if not m:
        return None
    before, after = core[:m.start()], core[m.end():]
    actor = next((n for n, _ in reversed(names) if n in before), None)
    other = next((n for n, _ in names if n in after), None)
    if actor and other and actor != other:
        return actor, stem(m.group(0)), other
    return None
