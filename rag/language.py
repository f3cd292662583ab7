"""The language layer: what answers, chat, briefings and grounding know about English text.

One module of pure functions, shared by every stage that reads language. It stands on libraries for
the linguistics (``lemminflect`` lemmatises, so "paid" is "pay" and "bought" is "buy", and its
dictionary tells a common word from a name; PyStemmer's Snowball stemmer then folds derivations, so
"strategies" is "strategy" while "approach" stays apart from "approval"), and adds what they do not
cover:

- words and their match keys (``words``, ``stem``, ``content_stems``); general function words;
- names: multiword capitalised sequences, possessives removed, titles split off, acronyms joined to
  their long forms ("Pinecrest Valley Bank (PVB)", or initials), and a kind for each (person,
  organisation, place, other) from general cues (job titles, speech verbs, organisation words);
- typed values: figures (money, percentages, counts, with their scale) and dates.

No word list here names one article's vocabulary: the lexicons are English grammar, job titles and
the words organisations' names are made of.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import Stemmer
from lemminflect import getAllLemmas

# ------------------------------------------------------------------ words
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_STEMMER = Stemmer.Stemmer("english")

FUNCTION_WORDS = frozenset("""
a an the and or but nor if then else so as of in on at by for from to with without within into onto upon over under
about above below between among across through during before after since until till than that this these those
there here it its it's itself they them their theirs themselves he him his himself she her hers herself we us our ours
ourselves you your yours yourself i me my mine myself one ones is are was were be been being am do does did doing done
has have had having will would shall should can could may might must not no yes also just only very too quite rather
such what which who whom whose when where why how all any some each every both either neither other another same
own more most less least much many few several s t d ll re ve m o because although though while whereas unless
whether however meanwhile moreover furthermore nevertheless nonetheless therefore thus hence instead otherwise yet still
""".split())


@lru_cache(maxsize=1 << 16)
def lemma(word: str) -> str:
    """The dictionary form of a lower-case word (nouns first: "data", "crew"; then verbs: "paid" -> "pay")."""
    found = getAllLemmas(word)
    for pos in ("NOUN", "VERB", "ADJ", "ADV"):
        if pos in found:
            return found[pos][0].lower()
    return word


@lru_cache(maxsize=1 << 16)
def stem(word: str) -> str:
    """The match key of a word: its dictionary form ("paid" -> "pay", "strategies" -> "strategy"); a word the
    dictionary does not know ("narrowbodies", "platformization") is Snowball-stemmed instead. Measured on the
    development suites, stemming known words too conflates words that differ ("audition" with "audit")."""
    w = word.lower()
    if w.isdigit() or len(w) < 3:
        return w
    if getAllLemmas(w):
        return lemma(w)
    return _STEMMER.stemWord(w)


@lru_cache(maxsize=1 << 16)
def is_common_word(word: str) -> bool:
    """In the English dictionary ("Board", "Target") rather than only a name ("Walmart", "Brannock")."""
    return bool(getAllLemmas(word.lower()))


def words(text: str) -> list[str]:
    """Letter/digit runs: hyphens and apostrophes split ("mega-retailers" -> "mega", "retailers")."""
    return _WORD.findall(text)


def word_spans(text: str) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), m.group(0)) for m in _WORD.finditer(text)]


def content_stems(text: str, *, drop: frozenset[str] = frozenset()) -> list[str]:
    """Stems of the content words of ``text``, in order, function words (and ``drop``) left out."""
    out = []
    for w in words(text):
        lw = w.lower()
        if lw in FUNCTION_WORDS or lw in drop or (len(lw) < 2 and not lw.isdigit()):
            continue
        out.append(stem(lw))
    return out


# ------------------------------------------------------------------ names
# Job titles and honorifics: they name a role, never a person or an organisation of their own.
TITLE_WORDS = frozenset("""
chief executive officer president vice chair chairman chairwoman chairperson director head minister secretary mayor
commissioner governor senator representative judge justice general counsel founder cofounder co-founder analyst
spokesperson spokesman spokeswoman manager partner treasurer controller editor professor dr mr mrs ms miss sir dame
lord lady ceo cfo coo cto cio cmo cso cpo evp svp vp md gm principal superintendent chancellor provost dean
administrator coordinator supervisor inspector auditor deputy assistant associate senior junior interim acting former
executive-director leader boss owner trustee member councilmember councillor councilor alderman clerk officer
directors members trustees officers commissioners councilmembers councillors chairs presidents executives""".split())
TITLE_ACRONYMS = {"CEO": "chief executive officer", "CFO": "chief financial officer", "COO": "chief operating officer",
                  "CTO": "chief technology officer", "CIO": "chief information officer", "CMO": "chief marketing officer",
                  "CSO": "chief strategy officer", "CPO": "chief product officer", "EVP": "executive vice president",
                  "SVP": "senior vice president", "VP": "vice president", "MD": "managing director", "GM": "general manager"}
HONORIFICS = frozenset({"mr", "mrs", "ms", "miss", "dr", "prof", "sir", "dame", "lord", "lady"})
# Words organisations' names are made of (general, across industries and the public sector).
ORG_WORDS = frozenset("""
bank banks bancorp banking group holdings holding inc incorporated corp corporation co company companies ltd limited
llc llp plc ag sa nv gmbh partners partnership capital trust savings credit union authority agency department dept
commission board council ministry office bureau administration institute institution university college school
association alliance coalition federation foundation fund funds society committee court service services systems
technologies technology tech industries industrial international global worldwide airlines airline airways air
aviation motors motor automotive auto energy power utilities utility electric gas oil networks network media
entertainment studios streaming pictures broadcasting pharmaceuticals pharmaceutical pharma biosciences bioscience
biotech biotherapeutics therapeutics labs laboratories health healthcare hospital hospitals clinic medical foods food
markets market supermarkets stores store retail retailers brands logistics freight lines line shipping transport
transportation transit railway railways rail telecom telecommunications mobile wireless communications insurance
insurers reinsurance assurance software cloud semiconductor semiconductors microsystems devices electronics consulting
advisors advisers ventures investments equity securities exchange markets realty properties construction engineering
manufacturing works mills steel chemicals materials mining resources pharmacies pharmacy drug drugs delivery
platforms labs solutions analytics data digital research advisory economics insights intelligence strategies
machinery machines equipment implements instruments products goods tools
""".split())
# The heads of public bodies' names: "Fenmouth Development Agency" tells that Fenmouth is a place, not its short name.
PUBLIC_BODIES = frozenset("""authority agency council commission ministry department board office bureau administration
court assembly parliament government county district region city state province municipality""".split())
# Words that say what legal form a company takes, not which business it is ("Halberd Group" is Halberd Telecom's parent).
CORPORATE_FORMS = frozenset("""group holdings holding inc incorporated corp corporation co company ltd limited llc llp plc
ag sa nv gmbh se spa bv ab asa oyj pty""".split())
# How business writing names a strategy: "X's plan:", "X's approach is", "X is betting that", "X aims to".
STRATEGY_WORDS = frozenset("""strategy strategic plan plans planning model approach playbook thesis bet bets betting aim
aims want wants intend intends hope hopes hoping""".split())
SPEECH_VERBS = frozenset("said says say told tells wrote writes added adds noted notes argued argues explained explains "
                         "announced announces stated states warned warns according commented".split())
# Particles inside names: "Bank of Calder", "Cooperativa Campos del Duero", "Banca di Sondrio", "Caixa dos Açores".
_PARTICLES = frozenset({"de", "du", "la", "van", "von", "der", "del", "della", "di", "des", "dos", "das", "da"})
_CONNECTORS = frozenset({"of", "and", "&", "for", "the", "on", "in"}) | _PARTICLES
_INITIAL_STOP = frozenset({"the", "a", "an"})
# Words that open a sentence without being part of a name: prepositions beyond the function words ("Unlike ACG,
# ...", "Despite Kerbside's losses") and number words ("Six months ago Pettigrew said ...").
_NOT_NAME_START = frozenset("""unlike despite like amid amidst beyond besides beside alongside against towards toward via
per inside outside behind beneath near throughout except including excluding following regarding concerning given
two three four five six seven eight nine ten eleven twelve twenty thirty forty fifty hundred dozens hundreds thousands
millions""".split())
_MONTHS = ("january february march april may june july august september october november december "
           "jan feb mar apr jun jul aug sep sept oct nov dec").split()
_WEEKDAYS = "monday tuesday wednesday thursday friday saturday sunday".split()
_CALENDAR = frozenset(_MONTHS + _WEEKDAYS)
_ABBREVIATIONS = frozenset({"u.s.", "u.k.", "u.n.", "e.u.", "co.", "corp.", "inc.", "ltd.", "jr.", "sr.", "st.", "mt.",
                            "dr.", "mr.", "mrs.", "ms.", "prof.", "bros.", "no.", "n.a.", "l.p.", "s.a.", "plc."})
_TOKEN = re.compile(r"[\w'’&.\-]+|[^\w\s]")


@dataclass(frozen=True)
class Mention:
    """A name as it occurs in a text: ``text`` (possessive removed), its span, a title right before it, and
    the organisation named right before that title ("Brannock" in "Brannock CFO Damian Okafor")."""

    text: str
    start: int
    end: int
    title: str = ""
    sentence_initial: bool = False
    title_owner: str = ""


def _strip_possessive(token: str) -> str:
    return re.sub(r"['’]s?$", "", token)


def _bare(token: str) -> str:
    """A token without trailing punctuation or possessive, for lexicon look-ups."""
    if token.lower() in _ABBREVIATIONS or re.fullmatch(r"(?:[A-Z]\.){2,}", token):
        return token
    return _strip_possessive(token.rstrip(".,;:!?"))


def _is_cap(token: str) -> bool:
    return bool(token) and (token[0].isupper() or (token[0].isdigit() and any(c.isupper() for c in token)))


def _ends_sentence(token: str) -> bool:
    """A token that closes a sentence: ends with '.', '!' or '?' and is not an abbreviation or an initial."""
    if not token.endswith((".", "!", "?")):
        return False
    low = token.lower()
    return not (low in _ABBREVIATIONS or re.fullmatch(r"[A-Z]\.", token) or re.fullmatch(r"(?:[A-Za-z]\.){2,}", token))


def _is_title(token: str) -> bool:
    bare = _bare(token).rstrip(".")
    return bare.lower() in TITLE_WORDS or bare in TITLE_ACRONYMS


@lru_cache(maxsize=16384)
def mentions(text: str) -> tuple[Mention, ...]:
    """Capitalised word sequences of ``text``: multiword names with inner connectors ("Bank of Calder",
    "Halloway Ruddick & Co"), possessives removed, job titles split off ("Chief Executive Dana Whitfield" ->
    "Dana Whitfield" with that title; "Brannock CFO Damian Okafor" -> "Brannock", then "Damian Okafor" with
    title "CFO" of "Brannock"), calendar words and leading function words left out. Sequences never cross a
    sentence end or a line break."""
    tokens = [(m.start(), m.end(), m.group(0)) for m in _TOKEN.finditer(text)]
    out: list[Mention] = []
    i, n = 0, len(tokens)
    while i < n:
        s, _, tok = tokens[i]
        if not _is_cap(tok):
            i += 1
            continue
        group = [tokens[i]]
        j = i
        while j + 1 < n and not _ends_sentence(group[-1][2]) and not group[-1][2].endswith(("'s", "’s")):
            gap = text[group[-1][1]:tokens[j + 1][0]]
            if "\n" in gap:
                break
            _, _, nxt = tokens[j + 1]
            if _is_cap(nxt) and nxt.lower() not in FUNCTION_WORDS:
                group.append(tokens[j + 1])
                j += 1
                continue
            if nxt.lower() in _CONNECTORS and j + 2 < n and _is_cap(tokens[j + 2][2]) and \
                    "\n" not in text[tokens[j + 1][1]:tokens[j + 2][0]] and _connector_ok(nxt, group):
                group.extend([tokens[j + 1], tokens[j + 2]])
                j += 2
                continue
            break
        i = j + 1
        before = text[:s].rstrip()
        initial = (not before or before[-1] in ".!?:\"“(" or "\n" in text[len(before):s]
                   or before.endswith(("—", "–", "-")))
        out.extend(_split_group(text, group, initial))
    return tuple(out)


def _connector_ok(connector: str, group: list[tuple[int, int, str]]) -> bool:
    """"of", "&" and "for" join names ("Bank of Calder", "Halloway Ruddick & Co"); "and" only inside an
    "X of ..." name ("Department of Public Health and Community Wellness"), else it joins two names."""
    low = connector.lower()
    named = [t for t in group if t[2].lower() not in FUNCTION_WORDS]  # "The Port of Merrow Authority": "Port" alone
    if low == "of" and len(named) >= 2 and _person_shaped(" ".join(t[2] for t in named)) and \
            not any(_is_title(t[2]) for t in group):
        return False  # "Martin Kowalczyk of Ostrander Health Capital": a person, then where they work
    if low in {"&", "of", "for"} | _PARTICLES:
        return True
    if low == "and":
        return any(t[2].lower() == "of" for t in group)
    return False


def _split_group(text: str, group: list[tuple[int, int, str]], initial: bool) -> list[Mention]:
    """Cut one capitalised run at its job titles into names."""
    out: list[Mention] = []
    pieces: list[tuple[list[tuple[int, int, str]], list[str]]] = [([], [])]  # (name tokens, title before them)
    k = 0
    while k < len(group):
        tok = group[k]
        if _is_title(tok[2]):
            if pieces[-1][0]:
                pieces.append(([], []))
            pieces[-1][1].append(_bare(tok[2]).rstrip("."))
            # "Chief Financial Officer": a word between two title words is part of the title.
            if k + 2 < len(group) and not _is_title(group[k + 1][2]) and _is_title(group[k + 2][2]):
                pieces[-1][1].append(_bare(group[k + 1][2]))
                k += 1
            # "Director of Planning Ana Fenwick": the "of ..." part belongs to the title, the last words to the name.
            elif k + 2 < len(group) and group[k + 1][2].lower() == "of":
                rest = group[k + 1:]
                tail = 2 if len(rest) >= 4 and _person_shaped(" ".join(t[2] for t in rest[-2:])) else 1
                if len(rest) - tail >= 2:
                    pieces[-1][1].extend(_bare(t[2]) for t in rest[:-tail])
                    k += len(rest) - tail
        else:
            pieces[-1][0].append(tok)
        k += 1
    owner = ""
    for k, (parts, title_parts) in enumerate(pieces):
        stripped = False
        while parts and (parts[0][2].lower() in FUNCTION_WORDS or _bare(parts[0][2]).lower() in _INITIAL_STOP or
                         (initial and k == 0 and parts[0][0] == group[0][0] and parts[0][2].lower() in _NOT_NAME_START)):
            parts, stripped = parts[1:], True
        # "In February Kestrel said ...": a month or day opening the run after a preposition is not part of the name
        # ("the Sunday Times" mid-sentence keeps its day).
        while stripped and len(parts) > 1 and _bare(parts[0][2]).lower() in _CALENDAR:
            parts = parts[1:]
        while parts and (_bare(parts[-1][2]).lower() in _CALENDAR or parts[-1][2].lower() in _CONNECTORS):
            parts = parts[:-1]
        if not parts:
            continue
        if len(parts) == 1 and _bare(parts[0][2]).lower() in _CALENDAR | FUNCTION_WORDS:
            continue
        ms, me = parts[0][0], parts[-1][1]
        raw = text[ms:me]
        last = parts[-1][2]
        name = raw if last.lower() in _ABBREVIATIONS or re.fullmatch(r"(?:[A-Z]\.){2,}", last) else \
            _strip_possessive(raw.rstrip(".,;:!?"))
        name = name.strip(" '’\"")
        if not name or not name[0].isalnum():
            continue
        if re.fullmatch(r"[A-Za-z]+['’](?:ve|re|m|ll|d)", name):
            continue  # "We've", "They're": a pronoun, not a name
        if re.fullmatch(r"[A-Z]{3}", name) and re.match(r"\s?\d", text[ms + len(name):ms + len(name) + 2]):
            continue  # "EUR 7.99", "CHF 12": a currency code before an amount
        title = " ".join(title_parts)
        out.append(Mention(text=name, start=ms, end=ms + len(name), title=title,
                           sentence_initial=initial and k == 0 and not title and ms == group[0][0],
                           title_owner=owner if title else ""))
        owner = name
    return out


def acronym_of(name: str) -> str:
    """The initials of a name's significant words ("Metro Area Transit Authority" -> "MATA")."""
    parts = [p for p in re.split(r"[\s\-]+", name) if p and p.lower() not in _CONNECTORS]
    return "".join(p[0].upper() for p in parts if p[0].isalpha())


def acronym_matches(name: str, token: str) -> bool:
    """Whether ``token`` is the acronym of ``name``; an ampersand in it stands for the name's "&" or "and"
    ("A&R" of "Ashby & Rowe")."""
    bare = token.replace(".", "")
    if "&" in bare and not re.search(r"\s(?:&|and)\s", name):
        return False
    letters = bare.replace("&", "")
    if acronym_of(name) == letters:
        return True
    # "NCSP" of "North Channel Steam Packet Company": the legal form may be left out of the initials.
    words = name.split()
    while len(words) > 2 and words[-1].lower().strip(".,") in CORPORATE_FORMS:
        words = words[:-1]
        if acronym_of(" ".join(words)) == letters:
            return True
    return False


def is_acronym(token: str) -> bool:
    """"PVB", "U.S.", "MATA": 2-5 capitals (longer all-caps words are shouting or datelines, "HARWICK")."""
    bare = token.replace(".", "")
    letters = bare.replace("&", "") if 0 < bare.find("&") < len(bare) - 1 else bare  # "A&R", "P&G"
    return 2 <= len(letters) <= 5 and letters.isupper() and letters.isalpha() and bare not in TITLE_ACRONYMS


_PAREN_ALIAS = re.compile(r"([A-Z][\w'’&.\- ]{2,80}?)\s*\(\s*(?:the\s+)?([A-Z][\w&.\-]{1,40}(?:\s[A-Z][\w&.\-]+){0,7})\s*\)")


def paren_aliases(text: str) -> list[tuple[str, str]]:
    """(long form, short form) pairs written "Long Form (SHORT)" or "SHORT (Long Form)"."""
    pairs = []
    for m in _PAREN_ALIAS.finditer(text):
        before, inside = m.group(1), m.group(2).strip()
        long_candidates = [mm.text for mm in mentions(before)]
        if not long_candidates:
            continue
        outer = long_candidates[-1]
        if is_acronym(inside) and _initials_fit(inside, outer):
            pairs.append((outer, inside))
        elif is_acronym(inside) and acronym_tail(inside, outer):
            pairs.append((outer, inside))  # "Calder Bay Department of ... (DPHCW)": the city is not in the acronym
        elif is_acronym(outer) and _initials_fit(outer, inside):
            pairs.append((inside, outer))
    return pairs


def _initials_fit(acronym: str, name: str) -> bool:
    """"PVB" fits "Pinecrest Valley Bank"; allow skipped connectors and a missing or extra last letter."""
    a = acronym.replace(".", "").upper()
    full = acronym_of(name)
    if a == full or full.startswith(a) or a.startswith(full[:max(2, len(full) - 1)]):
        return True
    letters = [p[0].upper() for p in re.split(r"[\s\-]+", name) if p]
    if a == "".join(letters):
        return True
    return _letters_in_order(a, name)


def _letters_in_order(acronym: str, name: str) -> bool:
    """Schwartz and Hearst's test for an abbreviation defined in parentheses: its letters occur in the long form in
    order, read from the right, the first one starting a word ("NGF" in "Northgate Foods": North-Gate Foods)."""
    a, long = acronym.lower(), name.lower()
    i, j = len(a) - 1, len(long) - 1
    while i >= 0:
        while j >= 0 and (long[j] != a[i] or (i == 0 and j > 0 and long[j - 1].isalnum())):
            j -= 1
        if j < 0:
            return False
        i -= 1
        j -= 1
    words = [w for w in re.split(r"[\s\-]+", name) if w and w.lower() not in _CONNECTORS]
    return len(a) >= 2 and len(words) >= 2 and a[0] == words[0][0].lower() and len(a) <= 2 * len(words)


def acronym_tail(acronym: str, name: str) -> str | None:
    """The end of ``name`` that ``acronym`` spells ("DPHCW" of "Calder Bay Department of Public Health and
    Community Wellness" is "Department of Public Health and Community Wellness")."""
    parts = name.split()
    for i in range(len(parts)):
        tail = " ".join(parts[i:])
        if parts[i].lower() not in _CONNECTORS and acronym_of(tail) == acronym.replace(".", "").upper():
            return tail
    return None


# ------------------------------------------------------------------ entities of a set of texts
KINDS = ("person", "organisation", "place", "other")


@dataclass(eq=False)
class Entity:
    """One thing the texts name, under every name they use for it."""

    name: str  # canonical (see EntityIndex._canonical)
    kind: str
    aliases: set[str] = field(default_factory=set)
    count: int = 0
    titles: set[str] = field(default_factory=set)

    def names(self) -> set[str]:
        return {self.name} | self.aliases


_ORG_CONTEXT = re.compile(r"\s*(?:['’]s?\s+(?:shareholders|customers|shares|stock|subsidiary|unit|division|board|revenue|"
                          r"profit|stores|branches|employees|staff|network|plan|strategy|approach|model|deal|offer|fleet|"
                          r"products?|services?|business|market|members|program|programme|ecosystem|platform|"
                          r"headquarters|chief|ceo|president|executives?|spokes\w+)\b|,?\s*which\b|"
                          r"(?:\s+(?:on|last|this|earlier|late|early)\s+\w+\.?(?:\s+\d{1,2})?(?:\s*\([^)]{1,20}\))?)?"
                          r"\s+(?:said it|says it|shareholders|customers|announced|reported|posted|agreed|acquired|plans to|"
                          r"aims to|wants to|bets|is betting|launched|opened|hired|expects|employs|operates)\b)")
# "Britain's largest coffee chain", "the country's biggest lender": the market a business leads, not a business.
_MARKET_OF = re.compile(r"['’]s\s+(?:second-|third-)?(?:largest|biggest|leading|oldest|smallest|fastest-growing)\s+"
                        r"(?:[\w-]+\s+){0,2}?(?:company|firm|group|chain|retailer|bank|lender|insurer|operator|carrier|airline|"
                        r"maker|manufacturer|supplier|producer|brand|business|employer|exporter|importer|merchant|seller|dealer|"
                        r"distributor|wholesaler)\b")
# A product, brand or service rather than a business: set beside "its (own|new) <thing>" or named as one
# ("its own car-sharing service, Corvant Share", "ACG Titan, its own giant-screen format", "under the Hearthbox
# Kitchen name", "a new label, Second Rail").
_PRODUCT_NOUNS = (r"(?:app|apps|service|format|brand|label|range|product|products|card|scheme|platform|pass|tag|line|device|"
                  r"tool|system|feature|layout|subscription|model|offering|programme|program|membership|package|name)")
_PRODUCT_BEFORE = re.compile(rf"\b(?:its|their|a|the|[A-Z][\w-]*['’]s)\s+(?:own\s+|new\s+)?(?:[\w-]+\s+){{0,2}}?{_PRODUCT_NOUNS},\s*$"
                             rf"|\b{_PRODUCT_NOUNS},?\s+(?:called|named|known\s+as)\s*$|\b(?:under|called|named|branded)\s+the\s*$"
                             r"|\b(?:branded|dubbed|trademarked)\s*$|\bwhich\s+(?:it|they|the\s+[\w-]+)\s+(?:calls|call|brands|dubs)\s*$", re.I)
# "its Sofa Pass subscription": a name between a possessive and what it names; "Durona, a drought-tolerant wheat bred by
# ...", "Hallowell Simple, an unattended cremation priced at £1,450": described as a thing made, sold or priced.
_PRODUCT_AFTER = re.compile(rf"^(?:,\s*(?:[Ii]ts|[Tt]heir)\s+(?:own\s+|new\s+)?(?:[\w-]+\s+){{0,2}}?{_PRODUCT_NOUNS}\b"
                            r"|\s+(?:name|brand|label|app|format|range|system|software|platform)\b"
                            r"|,\s*(?:a|an)\s+(?:[\w-]+\s+){0,4}?(?:bred|made|developed|designed|built|sold|priced|marketed|"
                            r"produced|manufactured)\s+(?:by|at|for|under|from)\b)")
_PRODUCT_OWNED = re.compile(r"\b(?:its|their|[A-Z][\w-]*['’]s)\s*$")
_PRODUCT_HEAD = re.compile(rf"\s+{_PRODUCT_NOUNS}\b")
# "it" after a name, before any other name, past the name's own parenthesis or apposition ("Tollard & Finch (T&F),
# Britain's largest seed merchant, said it would ..."); dates may come between ("said on Monday (March 9) that it").
_IT_AFTER = re.compile(r"^(?:\s*\([^()]*\))?(?:\s*,[^,.!?]*,)?(?:[^.!?A-Z]|(?:" +
                       "|".join(m.capitalize() for m in _MONTHS + _WEEKDAYS if len(m) > 3) + r")\b)*?\b(?:it|its|itself)\b")
# A name after a preposition is not the sentence's subject, so a later "it" is someone else's ("... complaints from Sofa
# Pass customers ..., and it has asked ...").
_OBJECT_BEFORE = re.compile(r"\b(?:from|of|to|with|for|by|at|on|into|than|against|between|about|over)\s*$")
_HE_AFTER = re.compile(r"^[^.!?]{0,60}\b(?:he|she|his|her|him|himself|herself)\b")
_PERSON_VERBS = re.compile(r"\s+(?:has been|had been|is|was|became|will become|serves as|served as|remains)\s+(?:the|its|their|a|an|"
                           r"[A-Z][\w&.\-]*['’]s)\s+(?:\w+\s+){0,3}?(?:" + "|".join(sorted((w for w in TITLE_WORDS if w.isalpha()),
                                                                                    key=len, reverse=True)) + r")\b"
                           r"|\s+(?:has chaired|chairs|chaired|co-founded|founded|joined|retired|resigned|stepped down)\b", re.I)
_PERSON_AFTER = re.compile(r"\s*,\s*(?:(?:the|a|an|its|their|his|her|who|whose|[A-Z][\w.&-]*(?:['’]s)?)\s+)*?(?:\w+\s+){0,3}?"
                           r"(?:" + "|".join(sorted((w for w in TITLE_WORDS if w.isalpha()), key=len, reverse=True)) + r")\b"
                           r"|\s*,\s*who\s+(?:heads|leads|runs|oversees|chairs|manages|founded|directs|is|was)\b", re.I)
_SPEECH_AFTER = re.compile(r"\s+(?:" + "|".join(SPEECH_VERBS) + r")\b")
# "according to Dana Whitfield", a byline "By Dana Whitfield" (not "bred by Veldmark Genetics": anything is done by someone)
_SPEECH_BEFORE = re.compile(r"(?:\b(?:" + "|".join(SPEECH_VERBS) + r")|\baccording to|(?:^|\n)\s*by)\s*$", re.I)
# Where a name is a place: after a preposition of place, also as the second of two ("in Spain and Portugal"), after a
# compass or region adjective ("southern England") or as "the north of England".
_PLACE_BEFORE = re.compile(r"\b(?:in|near|outside|across|around|throughout|based in|headquartered in)\s*$|"
                           r"\b(?:in|near|across|around|throughout)\s+(?:[A-Z][\w-]+(?:\s+[A-Z][\w-]+)?(?:,\s+|\s+(?:and|or)\s+)){1,4}$|"
                           r"\b(?:northern|southern|eastern|western|central|north-eastern|north-western|south-eastern|"
                           r"south-western|rural|coastal)\s*$|"
                           r"\bthe\s+(?:north|south|east|west|centre|center|north-east|north-west|south-east|south-west|"
                           r"outskirts|edge)\s+of\s*$|"
                           r"(?<!analyst )(?<!analysts )(?<!economist )(?<!executive )(?<!director )(?<!officer )(?<!head )"
                           r"(?<!chief )(?<!partner )(?<!jobs )(?<!staff )(?<!revenue )(?<!sales )(?<!shares )(?<!profit )"
                           r"(?<!workers )(?<!employees )(?<!strategist )(?<!researcher )\bat\s*$")


def _person_shaped(name: str) -> bool:
    parts = name.split()
    return (2 <= len(parts) <= 4 and all(p[:1].isupper() and p[1:].islower() or re.fullmatch(r"[A-Z]\.", p)
                                          or p.lower() in _PARTICLES or "-" in p
                                          for p in parts)
            and not any(p.lower().strip(".") in ORG_WORDS for p in parts))


def _shouting(name: str) -> bool:
    """All-caps words that are headings or datelines ("HEREBY GIVEN", "HARWICK"), not acronyms."""
    parts = [p.replace(".", "").strip("'’") for p in name.split()]
    letters = [p for p in parts if p.isalpha()]
    return bool(letters) and all(p.isupper() for p in letters) and (len(letters) > 1 or len(letters[0]) > 5)


def _headline_lines(text: str) -> list[tuple[int, int]]:
    """Spans of title-case lines ("Amazon and Walmart Push Retail Innovation"), whose capitals are not names."""
    spans = []
    pos = 0
    for line in text.splitlines(keepends=True):
        ws = [w for w in re.findall(r"[A-Za-z][\w'’-]*", line) if w.lower() not in FUNCTION_WORDS]
        if len(ws) >= 4 and sum(w[0].isupper() for w in ws) / len(ws) >= 0.75:
            spans.append((pos, pos + len(line)))
        pos += len(line)
    return spans


def _one_business(short: str, candidates: Sequence["Entity"]) -> bool:
    """Whether the longer names that start with ``short`` name one business: at most one of them says more than
    its legal form ("Halberd Telecom" and "Halberd Group": yes; "X Competition Authority" and "X Telecommunications
    Agency": no)."""
    n = len(short.split())
    institutions = set()
    for e in candidates:
        for name in e.names():
            parts = name.split()
            if parts[:n] == short.split() and len(parts) > n:
                rest = {w.lower().strip(".,") for w in parts[n:]} - CORPORATE_FORMS
                if rest & ORG_WORDS:  # "... Authority", "... Agency": a kind of body of its own, not a unit ("X Europe")
                    institutions.add(id(e))
    return len(institutions) <= 1


class EntityIndex:
    """Names found in a set of texts, merged into entities with kinds and aliases.

    Built once per context (answers) or document set (briefings). ``resolve("PVB")`` and
    ``resolve("Pinecrest")`` both give the Pinecrest Valley Bank entity; "Vessey" after "Lorna Vessey" is
    the same person; a short name used on its own ("Brannock") gathers the long forms that start with it."""

    def __init__(self, texts: Iterable[str]) -> None:
        self.texts = list(texts)
        self.entities: list[Entity] = []
        self._by_name: dict[str, Entity] = {}
        self._build()

    # -------------------------------------------------------------- building
    def _build(self) -> None:
        counts: Counter[str] = Counter()
        mid: set[str] = set()  # seen capitalised away from a sentence start: a real name
        titled: dict[str, set[str]] = {}
        person: Counter[str] = Counter()
        org: Counter[str] = Counter()
        place: Counter[str] = Counter()
        after_the: set[str] = set()
        the_count: Counter[str] = Counter()  # uses right after "the"
        product: Counter[str] = Counter()  # uses that name a product or service
        pairs: list[tuple[str, str]] = []
        first: dict[str, tuple[int, int]] = {}  # where each name is first used: (text, offset)
        again: dict[str, tuple[int, int]] = {}  # where it is used the second time
        for t, text in enumerate(self.texts):
            pairs += paren_aliases(text)
            headlines = _headline_lines(text)
            for m in mentions(text):
                if any(a <= m.start < b for a, b in headlines):
                    continue
                counts[m.text] += 1
                if m.text in first:
                    again.setdefault(m.text, (t, m.start))
                first.setdefault(m.text, (t, m.start))
                if not m.sentence_initial:
                    mid.add(m.text)
                if m.title:
                    titled.setdefault(m.text, set()).add(m.title)
                after, before = text[m.end:m.end + 60], text[max(0, m.start - 40):m.start]
                if re.search(r"\bthe\s*$", before, re.I):
                    after_the.add(m.text)
                    the_count[m.text] += 1
                if _person_shaped(m.text):
                    person[m.text] += 2 * bool(_PERSON_AFTER.match(after)) + bool(_SPEECH_AFTER.match(after)) + \
                        bool(_SPEECH_BEFORE.search(before)) + 2 * bool(re.search(r"\b(?:mr|mrs|ms|dr|prof)\.?\s*$", before, re.I)) + \
                        2 * bool(_PERSON_VERBS.match(after)) + bool(_HE_AFTER.match(after))
                if _ORG_CONTEXT.match(text[m.end:m.end + 40]):
                    org[m.text] += 1
                place[m.text] += bool(_PLACE_BEFORE.search(before))
                product[m.text] += bool(_PRODUCT_BEFORE.search(before) or _PRODUCT_AFTER.match(after)
                                        or (_PRODUCT_OWNED.search(before) and _PRODUCT_HEAD.match(after)))
                if _MARKET_OF.match(after):  # "Britain's largest coffee chain ... said it would": a place, not the actor
                    place[m.text] += 1
                elif not _PLACE_BEFORE.search(before):  # "founded in Bristol in 1911, said that it ...": not Bristol's "it"
                    # "Walmart, meanwhile, is expanding its ...": "its" for what it names, before any other name.
                    org[m.text] += bool(_IT_AFTER.match(text[m.end:m.end + 80]) and not _OBJECT_BEFORE.search(before))
        # "Rival Castellan Automotive said ...": a capitalised common word that opens a sentence before a name the
        # texts also use alone is not part of it.
        opened: dict[str, str] = {}
        for name in list(counts):
            parts = name.split()
            tail = " ".join(parts[1:])
            if len(parts) > 2 and name not in mid and is_common_word(parts[0]) and parts[0].lower() not in ORG_WORDS \
                    and ((counts.get(tail, 0) and tail in mid) or parts[1] in mid):  # "Tessaro Wind" or "Tessaro" mid-sentence
                opened[name] = tail
                counts[tail] += counts.pop(name)
                for table in (person, org, place):
                    table[tail] += table.pop(name, 0)
        defined = {n for pair in pairs for n in pair}
        keep = {name for name in counts if name in defined or (
            (name in mid or name in titled or (counts[name] > 1 and len(name.split()) > 1) or person[name] > 0
             or (org[name] > 0 and len(name.split()) > 1)
             or (len(name.split()) > 1 and {w.lower().strip(".") for w in name.split()[1:]} & ORG_WORDS)
             # the full name a story opens with, then uses the short one ("Veldmark Genetics, ...", then "Veldmark")
             or (len(name.split()) > 1 and name.split()[0] in mid and not is_common_word(name.split()[0])))
            and (len(name.split()) < 4 or {w.lower().strip(".") for w in name.split()} & ORG_WORDS
                 or " of " in name or "&" in name or set(name.split()) & _PARTICLES)
            or (" " not in name and not is_common_word(name) and not name.isdigit() and len(name) > 2)
            and not _shouting(name) and not _DATE.fullmatch(name) and not (name in after_the and " " not in name and is_common_word(name))
            and not (" " not in name and is_common_word(name) and not (person[name] or org[name] or name in titled)))}
        self._opened = opened
        for long, short in pairs:  # "Long Form (SHORT)": one entity, the long form canonical
            entity = self._by_name.get(long) or self._new(long, counts)
            self._alias(entity, short)
        # People first, so that a surname used alone ("Vessey") joins its person rather than becoming a name.
        ordered = sorted(keep, key=lambda n: (not (_person_shaped(n) and (person[n] or n in titled)), -len(n.split()),
                                              -counts[n], n))
        for name in ordered:
            if name in self._by_name:
                continue
            target = self._surname_of(name, person, titled, org) or \
                self._family_of(name, counts, org, place, first, again)
            if target is not None:
                self._alias(target, name)
                continue
            self._new(name, counts)
        evidence: dict[int, int] = {}
        for entity in self.entities:
            names = entity.names()
            entity.count = sum(counts[n] for n in names)
            entity.titles = set().union(*(titled.get(n, set()) for n in names))
            p = sum(person[n] for n in names) + 2 * bool(entity.titles and any(_person_shaped(n) for n in names))
            o = sum(org[n] for n in names)
            long = [n for n in names if " " in n]
            # Organisations are called by their first word ("Meridian"), people by their last ("Vessey").
            o += 2 * any(n == l.split()[0] for n in names for l in long if " " not in n)
            p += 2 * any(n == l.split()[-1] for n in names for l in long if " " not in n)
            entity.kind = self._kind(entity, p, o, sum(place[n] for n in names),
                                     sum(the_count[n] for n in names) / max(1, entity.count), sum(product[n] for n in names))
            evidence[id(entity)] = p
        # "Brisco Canada", "Brightfold Federal": shaped like a person's name, with nothing that says so, and the
        # first word of an organisation's: a unit of that organisation.
        heads: dict[str, Entity] = {}
        for entity in self.entities:
            if entity.kind == "organisation":
                for n in sorted(entity.names(), key=lambda n: first.get(n, (1 << 30, 0))):
                    heads.setdefault(n.split()[0], entity)
        for entity in list(self.entities):
            target = heads.get(entity.name.split()[0])
            if entity.kind == "person" and not evidence[id(entity)] and not entity.titles and target is not None \
                    and target is not entity and " " in entity.name:
                self._merge(target, entity)
        for entity in self.entities:
            entity.count = sum(counts[n] for n in entity.names())
            entity.name = self._canonical(entity, counts, {long for long, _ in pairs}, first, again)

    def _new(self, name: str, counts: Counter[str]) -> Entity:
        entity = Entity(name=name, kind="other", count=counts.get(name, 0))
        self.entities.append(entity)
        self._by_name[name] = entity
        return entity

    def _alias(self, entity: Entity, alias: str) -> None:
        if alias != entity.name:
            entity.aliases.add(alias)
        self._by_name[alias] = entity

    def _surname_of(self, name: str, person: Counter[str], titled: dict[str, set[str]], org: Counter[str]) -> Entity | None:
        if " " in name or is_acronym(name) or name.lower() in ORG_WORDS:
            return None
        if org[name] > person[name] and any(n.split()[0] == name and not _person_shaped(n) or
                                            n.split()[0] == name and n.split()[-1].lower() in ORG_WORDS
                                            for e in self.entities for n in e.names() if " " in n):
            return None  # "Lindqvist agreed to buy ...": the company "Lindqvist Home", not its chair Annika Lindqvist
        return next((e for e in self.entities if _person_shaped(e.name) and (person[e.name] or e.name in titled) and
                     e.name.split()[-1] == name), None)

    def _family_of(self, name: str, counts: Counter[str], org: Counter[str], place: Counter[str],
                   first_seen: dict[str, tuple[int, int]], again: dict[str, tuple[int, int]]) -> Entity | None:
        """The entity ``name`` belongs to: its acronym's long form, or, for a short name that acts on its own
        ("Brannock said", "Selkirk's"), the longer names that start with it."""
        if is_acronym(name):
            for e in self.entities:
                if any(" " in n and acronym_matches(n, name) for n in e.names()):
                    return e
            return None
        first = name.split()
        candidates = []
        for e in self.entities:
            if not org[name] and any(_person_shaped(n) and n.split()[0] == first[0] for n in e.names()):
                continue  # "Lorna" is not a short name of "Lorna Vessey"
            for n in e.names():
                parts = n.split()
                if len(parts) > len(first) and parts[:len(first)] == first and parts[len(first)].lower() not in {"and", "&"}:
                    # A full name is not a short form of a longer one ("Calloway Health" is not "Calloway Health
                    # Partners", introduced later), unless all the longer one adds is its legal form ("Grubline
                    # Holdings Inc.") or the text gives the longer one first ("Harrow Lane Books, the high-street
                    # chain, ..." then "Harrow Lane"; a headline's short form before it does not count).
                    later = again.get(name, first_seen.get(name, (0, 0)))
                    if len(first) > 1 and not {w.lower().strip(".,") for w in parts[len(first):]} <= CORPORATE_FORMS \
                            and not first_seen.get(n, (1 << 30, 0)) < later:
                        continue
                    candidates.append(e)
                    break
        if not candidates:
            return None
        public = [e for e in candidates if any(n.split()[-1].lower() in PUBLIC_BODIES for n in e.names())]
        if public and org[name] < 2 or place.get(name, 0) > org[name]:
            return None  # "Fenmouth" of "Fenmouth Development Agency": the place the body is named after
        if len(candidates) > 1 and not org[name]:
            return None  # a bare word shared by several names ("Calder" of "Calder Fair Banking Alliance" and a journal)
        best = max(candidates, key=lambda e: (sum(counts[n] for n in e.names()), e.name))
        if len(candidates) > 1 and not _one_business(name, candidates):
            # "Vesmark Competition Authority" and "Vesmark Telecommunications Agency": different bodies that share a
            # place's name. The short name is one of them only when it acts as an organisation, and then it is the
            # one introduced first (a brand names its parent before its units); the others stay apart.
            introduced = min(candidates, key=lambda e: min(first_seen.get(n, (1 << 30, 0)) for n in e.names()))
            return introduced if org[name] >= 2 and org[name] > place.get(name, 0) else None
        if len(candidates) > 1:
            # "Orbita" of "Orbita Airways" and "Orbita Group": one business, but the parent and its unit each keep
            # their own entity (each may have its own strategy); the short name is the one introduced first.
            return min(candidates, key=lambda e: min(first_seen.get(n, (1 << 30, 0)) for n in e.names()))
        return best

    def _merge(self, keep: Entity, other: Entity) -> None:
        keep.aliases |= other.names() - {keep.name}
        for n in other.names():
            self._by_name[n] = keep
        self.entities.remove(other)

    @staticmethod
    def _kind(entity: Entity, person: int, org: int, place: int, the_share: float = 0.0, product: int = 0) -> str:
        names = entity.names()
        words_ = {w.lower().strip(".") for n in names for w in n.split()}
        if product and (product > org or (product == org and not words_ & ORG_WORDS)):
            return "other"  # "its ordering app, Harbourline Go": a product of the organisation, not one itself
        if words_ & ORG_WORDS:
            return "organisation"
        if any(re.search(r"\d", n) for n in names) or the_share >= 0.5:
            return "other"  # "the GT-75", "The Harvest Pilot will list at ...": a product or a thing, not a company
        if person >= 1 and person > org and any(_person_shaped(n) for n in names):
            return "person"
        if not org and not place and any(_person_shaped(n) and not is_common_word(n.split()[0]) for n in names):
            return "person"  # "Denise Okafor": a first name and a surname, with nothing that says otherwise
        personal = {t.split()[0].lower() for t in entity.titles}
        if personal and all(" " not in n and not is_acronym(n) for n in names):
            return "person"  # "Director Castellano": a surname with a personal title
        if place > org:
            return "place"
        if org >= 1:
            return "organisation"
        return "other"

    @staticmethod
    def _canonical(entity: Entity, counts: Counter[str], long_forms: set[str], first: dict[str, tuple[int, int]],
                   again: dict[str, tuple[int, int]] | None = None) -> str:
        """The name a reader knows it by: a defined long form; for an organisation the full name the texts introduce
        it with (news gives "Halberd Telecom" first, then "Halberd"); else the most used name."""
        names = sorted(entity.names())
        defined = [n for n in names if n in long_forms]
        if defined:
            return max(defined, key=len)
        if entity.kind == "person":
            return max(names, key=lambda n: (len(n.split()), counts[n]))
        usable = [n for n in names if not is_acronym(n)] or names
        if entity.kind == "organisation":
            # The full name it is introduced with: used before (or where) any shorter name is first used.
            opening = min((first[n] for n in names if n in first), default=None)
            full = [n for n in usable if len(n.split()) > 1 and first.get(n) == opening]
            opener = next((n for n in names if first.get(n) == opening), "")
            # A headline that uses the short form ("Hearthbox to build ...") before the story gives the full one:
            # the longer name comes before the short one is used again ("Hirebridge ..." and later "Hirebridge
            # Shifts", its product, keep the short name).
            later = (again or {}).get(opener, (1 << 30, 0))
            longer = sorted((n for n in usable if len(n.split()) > len(opener.split()) and n in first and first[n] < later
                             and n.split()[:len(opener.split())] == opener.split()), key=lambda n: first[n])
            full = longer or full
            if full:
                return full[0]
        return max(usable, key=lambda n: (counts[n] * (1 + 0.5 * (len(n.split()) - 1)), len(n)))

    # -------------------------------------------------------------- queries
    def resolve(self, name: str) -> Entity | None:
        """The entity a name (full, partial, acronym, possessive) refers to."""
        clean = _strip_possessive(name.strip())
        clean = getattr(self, "_opened", {}).get(clean, clean)
        if clean in self._by_name:
            return self._by_name[clean]
        lowered = clean.lower()
        for key, entity in self._by_name.items():
            if key.lower() == lowered:
                return entity
        first = clean.split()
        for entity in sorted(self.entities, key=lambda e: -e.count):
            for n in entity.names():
                parts = n.split()
                if len(parts) > len(first) and parts[:len(first)] == first:
                    return entity
                if is_acronym(clean) and " " in n and acronym_matches(n, clean):
                    return entity
        return None

    def of_kind(self, kind: str) -> list[Entity]:
        return [e for e in self.entities if e.kind == kind]

    def literal(self, name: str) -> Entity | None:
        """An entity for a name the texts contain verbatim but the index did not keep (used once, at a sentence
        start): a question about it must not be told the sources never mention it."""
        clean = _strip_possessive(name.strip())
        if not clean or not any(name_pattern(clean).search(t) for t in self.texts):
            return None
        entity = Entity(name=clean, kind="other", count=1)
        self.entities.append(entity)
        self._by_name[clean] = entity
        return entity


@lru_cache(maxsize=4096)
def name_pattern(name: str) -> re.Pattern[str]:
    """Whole-word, case-sensitive match of a name (or its all-caps dateline form), possessive allowed."""
    forms = [re.escape(name)] + ([re.escape(name.upper())] if name.upper() != name else [])
    return re.compile(r"(?<![\w])(?:" + "|".join(forms) + r")(?:['’]s?)?(?![\w])")


def mentions_entity(text: str, entity: Entity) -> bool:
    return any(name_pattern(n).search(text) for n in entity.names())


def first_mention(text: str, entity: Entity) -> int | None:
    found = [m.start() for n in entity.names() for m in [name_pattern(n).search(text)] if m]
    return min(found) if found else None


_THESIS_NOUNS = r"(?:strategy|plan|approach|model|bet|aim|goal|ambition|thesis|playbook|vision|priority|priorities|focus|pitch)"
_THESIS_VERBS = r"(?:is betting|bets|is wagering|wants|aims|plans|hopes|is hoping|intends|is trying|tries|seeks|is seeking|" \
                r"is looking|is positioning|is pushing|is racing|is redefining|is building|wants)"


def states_strategy(text: str, heading: str, entity: Entity) -> bool:
    """Whether a sentence states ``entity``'s strategy: under a heading "<Name>'s plan:", or "<Name>'s approach is
    ...", "<Name> is betting that ...", "<Name> aims to ..."."""
    names = "|".join(re.escape(n) for n in sorted(entity.names(), key=len, reverse=True))
    if heading and re.search(rf"(?:{names})(?:['’]s)?\b.{{0,30}}\b{_THESIS_NOUNS}\b", heading, re.I):
        return True
    if re.search(rf"(?:{names})(?:['’]s?)\s+(?:\w+\s+){{0,2}}{_THESIS_NOUNS}\s*(?:is|was|:|rests|centres|centers|has been|remains)",
                 text, re.I):
        return True
    return bool(re.search(rf"(?:{names})\s+(?:,[^,]{{1,60}},\s*)?(?:also\s+|now\s+|still\s+)?{_THESIS_VERBS}\s+(?:to|that|on)\b",
                          text, re.I))


# ------------------------------------------------------------------ figures
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


_DENOMINATORS = {"half": 2, "halves": 2, "third": 3, "thirds": 3, "quarter": 4, "quarters": 4, "fifth": 5, "fifths": 5,
                 "sixth": 6, "sixths": 6, "seventh": 7, "sevenths": 7, "eighth": 8, "eighths": 8, "ninth": 9, "ninths": 9,
                 "tenth": 10, "tenths": 10}
# Fractions as shares: "two-thirds", "nine-tenths"; a singular one only before "of" ("a third of its hotels", not
# "a third store"); "half" before what it halves ("half of its revenue", "half its staff", not "the first half").
_FRACTION = re.compile(
    r"\b(?:(?P<num>two|three|four|five|six|seven|eight|nine)[\s-](?P<den>halves|thirds|quarters|fifths|sixths|sevenths|eighths|"
    r"ninths|tenths)|(?P<one>a|an|one)[\s-](?P<den1>half|third|quarter|fifth|sixth|seventh|eighth|ninth|tenth)(?=\s+of\b)"
    r"|(?<!first )(?<!second )(?<!the )(?P<half>half)(?=\s+(?:of\s+)?(?:its|their|the|all|our|his|her)\b))", re.I)


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
    """Every figure in ``text``, digits first ("$1.2 billion", "40", "4.5%"), then number words ("two million") and
    fractions as shares ("two-thirds": 66.67 percent)."""
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
        for m in _FRACTION.finditer(text):
            if m.group("half"):
                share = 50.0
            elif m.group("den1"):
                share = 100.0 / _DENOMINATORS[m.group("den1").lower()]
            else:
                share = 100.0 * _NUMBER_WORDS[m.group("num").lower()] / _DENOMINATORS[m.group("den").lower()]
            found = [f for f in found if not (m.start() <= f.start < m.end())]  # "nine" of "nine-tenths"
            found.append(Figure(m.group(0), round(share, 4), "percent", m.start(), m.end()))
    return tuple(found)


def figure_supported(figure: Figure, haystack: str) -> bool:
    """Whether ``haystack`` states the same quantity (as digits or, for small numbers, as a word)."""
    return any(figure.matches(other) for other in figures(haystack))


# ------------------------------------------------------------------ dates
_MONTH_RE = r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sept?(?:ember)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
_DATE = re.compile(
    r"\b(?:" + _MONTH_RE + r"\s+\d{1,2}(?:st|nd|rd|th)?(?:,?\s+\d{4})?"
    r"|\d{1,2}(?:st|nd|rd|th)?\s+" + _MONTH_RE + r"(?:,?\s+\d{4})?"
    r"|" + _MONTH_RE + r"\s+\d{4}"
    r"|(?:" + "|".join(m.capitalize() for m in _MONTHS[:12]) + r")\b"
    r"|(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day"
    r"|\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{2,4}"
    r"|(?:Q[1-4]|H[12])(?:\s+\d{4})?|(?:FY|fiscal\s+(?:year\s+)?)\s?\d{2,4}"
    r"|(?:first|second|third|fourth)\s+(?:quarter|half)(?:\s+of\s+\d{4})?"
    r"|(?:early|mid|late|end of|spring|summer|fall|autumn|winter)\s+\d{4}"
    r"|(?:19|20)\d{2}s?"
    r"|(?:[Ll]ast|[Nn]ext|[Tt]his|[Cc]oming|[Pp]ast)\s+(?:week|month|year|quarter|decade|spring|summer|fall|autumn|winter|weekend)"
    r"|(?:yesterday|today|tomorrow|tonight)"
    r"|\d+\s+(?:days?|weeks?|months?|years?)\s+(?:ago|later|earlier|from now)"
    r"|\d{1,2}(?::\d{2})?\s?(?:am|pm|a\.m|p\.m)|\d{1,2}:\d{2}|noon|midnight|(?:every\s+)?weekdays?|weekends?"
    r")\b",
)


@dataclass(frozen=True)
class DateMention:
    text: str
    start: int
    end: int
    year: int | None


@lru_cache(maxsize=8192)
def dates(text: str) -> tuple[DateMention, ...]:
    """Dates and times as the press writes them ("on Monday (Feb. 9)", "Jan. 22, 2026", "by 2027", "Q3")."""
    out = []
    for m in _DATE.finditer(text):
        year = re.search(r"(?:19|20)\d{2}", m.group(0))
        out.append(DateMention(m.group(0), m.start(), m.end(), int(year.group(0)) if year else None))
    return tuple(out)


def has_date(text: str) -> bool:
    return bool(dates(text))


# ------------------------------------------------------------------ helpers for readers
def sentences_with(texts: Sequence[str], entity: Entity) -> list[int]:
    return [i for i, t in enumerate(texts) if mentions_entity(t, entity)]
