"""What the offline summary engine reads in each sentence of a document: who acts, whose strategy it states,
whose figures it gives, who its people are and what they do, what is dated and what is still pending.

Built on the language layer (``rag.language``): names with their kinds and aliases come from an
:class:`EntityIndex` over the document; this module adds the reading of one sentence in its place in
the document ("Its approach is to ..." is about the organisation the previous sentence was about).
Pure functions, deterministic.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from lemminflect import getAllLemmas

from ..extract import Sentence
from ..language import (
    TITLE_ACRONYMS, TITLE_WORDS, DateMention, Entity, EntityIndex, Figure, dates, figure_supported, figures, mentions,
    name_pattern,
)
from .offline_evidence import actor_of

# Nouns a text uses to point back at an organisation it has named ("The startup's plan is ...", "the company said").
ORG_NOUNS = ("company|firm|group|business|operator|carrier|lender|bank|insurer|reinsurer|retailer|chain|grocer|startup|trust|"
             "start-up|maker|manufacturer|supplier|airline|utility|programme|program|platform|partnership|fund|agency|"
             "authority|ministry|council|regulator|provider|developer|producer|brand|conglomerate|automaker|carmaker|"
             "chipmaker|foundry|port|railway|network|studio|publisher|broadcaster|hospital|university|club|union|"
             "cooperative|co-op|owner|buyer|seller|investor|acquirer|rival|incumbent|challenger|newcomer|venture|unit|"
             "subsidiary|parent|division|pharmacy|drugstore|marketplace|app|service|trader|miller|brewer|builder|"
             "housebuilder|roaster|grower|baker|dealer|distributor|wholesaler|exporter|importer|shipper|landlord|"
             "developer|franchise|cooperative|co-operative")
_BACK_REFERENCE = re.compile(rf"^\s*(?:[\"“]?\s*)?(?:(?:[Ii]t|[Ii]ts|[Tt]heir|[Tt]hey|Management(?:['’]s)?|Executives['’]?)(?=[\s,])|"
                             rf"[Tt]he\s+(?:[\w-]+\s+)?(?P<noun>{ORG_NOUNS})(?:['’]s)?\b)")  # lower case after an opener
# Nouns that name a kind of body: "the authority" is the authority the text named, not the company it is about.
_INSTITUTION_NOUNS = frozenset("authority agency ministry council regulator commission board court government port union "
                               "university hospital programme program fund".split())
_APPOSITION = re.compile(r",\s*(?:which|who|whose)\b[^;]{1,160}?,\s*(?=(?:is|are|was|were|has|have|had|will|would|can|could|"
                         r"may|said|says|plans|wants|aims|expects|\w+ed|\w+s)\b)|"
                         r",\s*(?:which|who|whose|the|a|an|its|their|one of)\b(?:[^,;]|(?<=\d),(?=\d{3})){1,160},|\s*\([A-Z][\w&.\-]{1,12}\)"
                         # "X (XY), Britain's largest coffee chain by number of outlets, said ...": a possessive apposition
                         r"|,\s*[A-Z][\w&.'’-]*(?:\s+[A-Z][\w&.'’-]*){0,2}['’]s\s+[^,;]{1,100},(?=\s*(?:said|says|will|would|has|have|is|was|plans|"
                         r"agreed|announced|\w+ed)\b)")


def actor_in(text: str, entities: EntityIndex) -> Entity | None:
    """The actor of a sentence read without its appositions ("X (XY), the country's largest bank, will ...")."""
    return actor_of(_APPOSITION.sub(" ", text), entities)


# A clause or adverbial that opens a sentence before its subject: "While Halberd sells its towers, ...",
# "Under the agreement, ...", "Still, ...". The subject of the sentence comes after it.
_OPENER = re.compile(r"^\s*(?:[A-Z][A-Z .'’-]{2,40}(?:,\s*[A-Z][\w.]*(?:\s+\d{1,2})?(?:,\s*\d{4})?)?\s+[-—–]\s+"  # a dateline
                     r"|(?:Where|While|Whilst|Although|Though|As|After|Before|When|Whereas|Unlike|Like|If|Since|Because|By|"
                     r"Rather than|Instead of|Even as|Once|Until|Despite|With|Without|Following|Under|According to|For|"
                     r"In|On|At|Over|Across|Among|Amid|Beyond|Through|During|From|To)\b[^,;:]{0,160},"
                     r"(?:\s*(?:which|who|whose)\b[^,;:]{0,120},)?\s*"  # "Unlike Goldcrust, which owns its shops, ..."
                     r"|[A-Z][\w'’-]*(?:\s+[\w'’-]+){0,3},\s+(?=[A-Z]))")


def main_subject(text: str) -> tuple[int, str]:
    """Where the main clause starts (after an opening clause or adverbial), and its text."""
    at = 0
    for _ in range(2):
        m = _OPENER.match(text[at:])
        if not m:
            break
        at += m.end()
    return at, text[at:]


# The parts of an organisation that act for it: "The board of commissioners of the Millbrook Water Authority approved".
_PART = re.compile(r"^\s*(?:The|Its|Their)\s+(?:[\w-]+\s+){0,2}?(?:board|management|directors|commissioners|executives|"
                   r"leadership|shareholders|unit|division|subsidiary|arm|trustees)\b(?:\s+of\s+(?:\w+\s+){0,2}?)?", re.I)


def part_of(text: str, entities: EntityIndex) -> tuple[bool, Entity | None]:
    """Whether the main clause's subject is a part of an organisation, and which one its words name (None: the
    organisation the text is about)."""
    m = _PART.match(text)
    if not m:
        return False, None
    for mm in mentions(text[m.end() - 1:m.end() + 80]):
        if mm.start <= 12:
            e = entities.resolve(mm.text)
            if e is not None and e.kind == "organisation":
                return True, e
        break
    return True, None


def main_actor(text: str, entities: EntityIndex) -> tuple[Entity | None, bool]:
    """The organisation or person that is the subject of the sentence's main clause, and whether the clause has a
    subject of another kind ("The old story was a simple one: Amazon disrupted retail." has "The old story")."""
    at, rest = main_subject(text)  # "Unlike Goldcrust, which owns its shops, Hearthstone is ...": openers first
    rest = _APPOSITION.sub(" ", rest) if at else main_subject(_APPOSITION.sub(" ", text))[1]
    for m in mentions(rest):
        if m.start > 30 or len(rest[:m.start].split()) > 3:
            break
        e = entities.resolve(m.text)
        if e is None or e.kind not in ("organisation", "person"):
            continue
        return (e if actor_of(rest[m.start:], entities) is e else None), True
    words = rest.split()
    return None, bool(words) and not _BACK_REFERENCE.match(rest)


_NOUN_REFERENCE = re.compile(rf"^\s*(?:[\"“]?\s*)?[Tt]he\s+(?:\w+\s+)?(?:{ORG_NOUNS})\b")


_SOURCE_BEFORE = re.compile(r"\b(?:according to|said|says|told|estimates? by|data from|figures from|analysts?|economists?|"
                            r"research(?:ers)?|strategists?)\b[^.;]{0,40}$", re.I)
_BACKGROUND = re.compile(r"\b(?:the old (?:story|model|playbook|days|order|way)|"
                         r"used to|in the past|for decades|years ago|as recently as|"
                         r"back then|historically|traditionally|once (?:was|were|had|dominated))\b", re.I)
def history_first(text: str) -> bool:
    """The sentence opens on the past ("As recently as 2023, the company promised ...", "The old story was ..."):
    what it says the organisation meant to do is history, not its strategy (a past detail later in the sentence,
    "... the network it has flown for decades", is not)."""
    return bool(_BACKGROUND.search(" ".join(text.split()[:6])))


_PRESENT = re.compile(r"\b(?:now|today|these days|increasingly|no longer)\b", re.I)  # "What used to be ... is now ..."
_ANALYST_AT = re.compile(r"\b(?:analysts?|economists?|strategists?|researchers?|consultants?|adviser|advisor|professor|"
                         r"fellow|partner)\s+(?:at|with|for|from)\s+(?:the\s+)?$", re.I)
_COUNTERPARTY = re.compile(r"\b(?:from|by|to|with|for|against|than|into)\s+(?:the\s+)?(?:\w+['’]s\s+)?$", re.I)


_TIME_OPENER = re.compile(r"^\s*(?:In|On|By|Since|Earlier|Later|Last|This|Next)\s+(?:[\w.]+\s+){1,3}?(?=(?:the|it|its|they|their)\s)")


def without_time_opener(text: str) -> str:
    """"In March the company bought ..." -> "The company bought ...": a short time phrase before the subject,
    without a comma, taken off so the subject opens the clause."""
    m = _TIME_OPENER.match(text)
    return text if m is None else text[m.end()].upper() + text[m.end() + 1:]


def back_reference(text: str, focus: Entity | None, recent: Sequence[Entity]) -> Entity | None:
    """The organisation an opening "It", "Its", "The company" or "The authority" points back at: the one the text is
    about (``focus``), or for a kind of body the last one named with that word in its name."""
    m = _BACK_REFERENCE.match(text)
    if not m:
        return None
    noun = (m.group("noun") or "").lower()
    after = re.match(r"\s+([a-z]+)\b", text[m.end():])
    if noun and after and set(getAllLemmas(after.group(1))) == {"NOUN"}:
        return None  # "The service agreement ...": the noun only qualifies another, it names no organisation
    # "The trust's pitch ...": the last organisation named with that word in its name, when there is one
    named = next((e for e in reversed(recent) if any(noun in n.lower().split() for n in e.names())), None) if noun else None
    if named is not None or noun in _INSTITUTION_NOUNS:
        return named
    return focus

THESIS_NOUNS = ("strategy|plan|approach|model|bet|aim|goal|ambition|thesis|playbook|vision|priority|priorities|focus|"
                "pitch|wager|gamble|formula|answer|philosophy|mission|pivot|blueprint|roadmap|game plan|idea|future|demand|demands")
# after the noun: "to the slump", a parenthesis (", trustees say,"), then what states it
_THESIS_AFTER_NOUN = (r"(?:\s+(?:to|for|with|in|on)\s+(?:[\w-]+\s+){0,2}?[\w-]+)?(?:,[^,.]{1,40},)?\s*(?::|is\b|was\b|has been\b|"
                      r"remains\b|rests\b|centres\b|centers\b|hinges\b|relies\b|calls for\b|is simple\b|involves\b|"
                      r"depends\b|lies\b)")
THESIS_VERBS = (r"(?:is\s+|are\s+|was\s+|were\s+)?(?:betting|wagering|banking|counting)\s+(?:that|on)\b|bets\s+(?:that|on)\b|"
                r"wants\s+to\b|want\s+to\b|aims\s+to\b|aim\s+to\b|(?:is|are)\s+aiming\s+(?:for|at|to)\b|"
                r"(?:is|are)\s+(?:not\s+)?trying\s+to\b|tries\s+to\b|seeks\s+to\b|(?:is|are)\s+seeking\s+to\b|"
                r"(?:is|are)\s+(?:positioning|repositioning|reinventing|remaking|transforming)\b|"
                r"(?:is|are)\s+doubling\s+down\b|doubles\s+down\b|(?:is|are)\s+(?:going|heading)\s+the\s+other\s+way\b|"
                r"(?:is|are)\s+(?:pivoting|focusing|refocusing|concentrating)\b|focuses\s+on\b|"
                r"(?:is|are)\s+(?:pushing|racing|moving|shifting|turning|retreating)\s+(?:into|to|toward|towards|away|deeper|further)\b|"
                r"vows?\s+to\b|vowed\s+to\b|pledges?\s+to\b|pledged\s+to\b|promises?\s+to\b|promised\s+to\b|"
                r"(?:is|are)\s+determined\s+to\b|sees\s+its\s+future\b|"
                r"(?:is|are)\s+building\s+(?:a|an|its|the)\b|(?:is|are)\s+redefining\b|"
                r"(?:has|have)\s+(?:chosen|opted|decided)\s+to\b|(?:chose|opted)\s+to\b|"
                r"will\s+(?:focus|concentrate|refocus)\s+on\b|will\s+prioriti[sz]e\b|"
                r"(?:is|are)\s+staking\s+(?:its|their)\b|(?:stakes|(?:has|have)\s+staked)\s+(?:its|their)\s+future\b|"
                r"(?:is|are)\s+(?:turning|transforming|remaking|reinventing)\s+(?:itself|themselves)\b|"
                r"wants\s+(?:a|an|more|fewer|less|its|their|\d+|one|two|three|four|five)\b|wants\s+(?:[\w'’-]+\s+){1,3}?to\b|"
                # a pivot: "is pulling its capital out of jets"
                r"(?:is|are)\s+(?:pulling|taking|moving|shifting)\s+(?:its|their)\s+(?:[\w'’-]+\s+){0,2}?(?:out\s+of|away\s+from)\b|"
                r"(?:is|are)\s+(?:leaning|moving|pushing)\s+(?:hard\s+)?into\b|(?:is|are)\s+(?:going|heading)\s+after\b|"
                # "has spent the past two years moving away from bulk cocoa"
                r"(?:has|have)\s+spent\s+(?:the\s+)?(?:past|last)\s+(?:\w+\s+){1,2}?(?:moving|shifting|turning|pushing|building|steering)\b|"
                # means to an end: "is using its buying power to cut ...", "leverages its network to ..."
                r"(?:(?:is|are)\s+(?:using|leveraging|harnessing)|uses|leverages|harnesses)\s+(?:its|their)\s+(?:[\w'’-]+\s+){1,3}?to\b")
# Intentions that may be a strategy or only the next step ("plans to bid in the June auction"): weaker evidence.
WEAK_THESIS_VERBS = (r"plans\s+to\b|plan\s+to\b|hopes\s+to\b|intends\s+to\b|expects\s+to\b|is\s+preparing\s+to\b|"
                     r"argues\s+that\b|argued\s+that\b|contends\s+that\b|insists\s+that\b|maintains\s+that\b|"
                     r"(?:laid|set)\s+out\s+(?:a|an|its)\s+(?:[\w-]+\s+){0,2}?(?:plan|strategy)\b|"
                     r"(?:unveiled|outlined|announced|presented)\s+(?:a|an|its)\s+(?:[\w-]+\s+){0,2}?(?:plan|strategy)\b")
_THESIS_PARTICIPLE = re.compile(r"[,;—–]\s*(?:betting|wagering|banking|aiming|hoping|seeking|counting|in a bid)\b"
                                r"|\bas part of (?:its|their|a|the) (?:plan|strategy|push|drive)\b", re.I)

# Results: what an organisation reports about how it is doing (general business vocabulary, not a document's).
_RESULT_NOUNS = re.compile(r"\b(?:revenues?|sales|profits?|earnings|income|margins?|loss(?:es)?|ebitda|ebit|turnover|"
                           r"subscribers?|customers|users|members|market share|shares|stock|results|orders|bookings|"
                           r"deliveries|premiums|combined ratio|cash flow|volumes?|same-store|like-for-like|traffic|"
                           r"growth|returns?|yield|occupancy|churn)\b", re.I)
_RESULT_VERBS = re.compile(r"\b(?:reported|reports|posted|posts|rose|rises|risen|fell|falls|fallen|grew|grows|grown|"
                           r"climbed|climbs|dropped|drops|declined|declines|increased|increases|decreased|jumped|jumps|"
                           r"slid|slipped|added|adds|lost|loses|swung|narrowed|widened|beat|missed|earned|earning|"
                           r"returned|recorded|improved|worsened|doubled|tripled|halved|up|down)\b", re.I)
# A question the source itself leaves open: something pending, to be decided, or promised for a date.
# A doubt the text voices, quoted or not: "The risk is that ...", "The question is whether ...", "... is the whole question".
DOUBT = re.compile(r"\b(?:the|a|one|another|main|big|bigger|biggest|real|only|key|harder|open)\s+(?:risk|danger|worry|concern|trouble|problem|catch|"
                   r"question|test|fear)\s+(?:is|was|remains|for\s+\w+\s+is)\s+(?:that|whether|how|if)\b"
                   r"|\bis the (?:whole|real|big|key|open) question\b", re.I)
_PENDING = re.compile(
    DOUBT.pattern + r"|"
    # a permission, a decision or a vote still to come
    r"\b(?:needs?|requires?|awaits?)\s+(?:\w+\s+){0,3}?(?:permission|licen[cs]e|planning)\b"
    r"|\bwill be (?:decided|determined|ruled on|voted on|heard|considered)\b|\bwill go before\b|\b(?:has|have|had) appealed\b"
    r"|\bconsultation\b[^.]{0,60}\b(?:ends|closes|runs until|begins)\b|\b(?:will|would)\s+ballot\b|\bballot(?:ing)?\s+(?:its\s+)?members\b"
    r"|\bhas an option to\b|\b(?:allows|lets|entitles) (?:it|them) to (?:end|exit|terminate|walk away|cancel)\b"
    # approvals a party must still give, deals still to complete, what nobody has shown
    r"|\b(?:must|will have to|has to|have to|needs? to)\s+(?:still\s+)?(?:approve|agree|sign off|clear|ratify)\b"
    r"|\b(?:is|are)\s+expected\s+to\s+(?:complete|finish|close)\b|\b(?:nobody|no one)\s+has\s+(?:yet\s+)?(?:shown|proved|proven)\b"
    # a condition and what follows from it: "If Lanternfly has a flop, Starcross is still paying £21 million a year."
    r"|^\s*[\"“]?If\b[^,.]{5,100},\s+[^.]*\b(?:would|will|could|might|is still|are still|still)\b"
    # the pace a target needs: "must open about 27 a month"
    r"|\bmust (?:open|sign|add|win|sell|raise|cut|find|build|hire)\b[^.]{0,80}\b(?:a|per|each) (?:month|year|week)\b"
    r"|\b(?:needs?|requires?|awaits?|awaiting|pending|subject to)\b[^.]{0,60}\b(?:approval|vote|review|ruling|clearance|"
    r"consent|decision|sign-off)\b|\b(?:still\s+)?(?:needs?|requires?)\s+(?:approval|a vote|clearance)\b"
    r"|\b(?:will|would|is to|are to|is due to|are due to|is scheduled to|are scheduled to|is expected to|are expected to)\s+"
    r"(?:\w+\s+){0,2}?(?:vote|decide|rule|determine|show|test|approve|review)\b"
    r"|\b(?:votes?|rules?|decides?)\s+on\b|\bthe (?:next|first|real|biggest|key) test\b|\bremains? to be seen\b"
    r"|\b(?:has|have) yet to\b|\bunclear (?:whether|if|how)\b|\bwhether\b[^.]{0,80}\b(?:will|can|would|could)\b"
    # a finding or decision still to come, doubts voiced about a plan, and what a party has not said
    r"|\b(?:is|are)\s+(?:expected|due|set)\s+to\s+(?:\w+\s+){0,3}?(?:findings|decision|ruling|verdict|recommendation|"
    r"judge?ment|response|answer)\b|\b(?:doubts?|doubted|doubting|questioned|sceptical|skeptical|unconvinced)\b"
    r"|\bquestions?\s+whether\b|\b(?:decide|decides|deciding)\s+(?:whether|if)\b"
    r"|\b(?:result|outcome|findings|verdict|report)\s+(?:is\s+|are\s+)?(?:due|expected)\b"
    r"|\bassum(?:es|ed|ing)\b[^.]{0,80}\b(?:could|can|would|will)\b"
    r"|\b(?:has|have|had)\s+not\s+(?:yet\s+)?(?:said|decided|disclosed|announced|explained|revealed)\s+(?:what|whether|how|when|"
    r"which|if|who)\b"
    r"|\bopen question\b|\b(?:will|would) (?:depend|hinge) on\b"
    r"|\b(?:decision|ruling|verdict) (?:on|about|whether)\b|\b(?:any|a) (?:slip|delay|setback)\b|\bat risk\b"
    r"|\b(?:depends?|hinges?|rests?) on whether\b|\bwould (?:push back|delay|derail|force|threaten)\b"
    r"|\b(?:will|would) (?:set out|update|revisit|reconsider)\b"
    r"|\b(?:has|have|still has|still have) to be (?:approved|agreed|ratified|signed|cleared|decided)\b"
    r"|\b(?:is|are) to be (?:agreed|approved|decided|signed|completed|finalised|finalized|ratified)\b"
    r"|\bwill\b[^.]{0,100}\bby (?:the end of |late |early |mid-?)?(?:19|20)\d{2}\b"
    r"|\b(?:is|are) scheduled to vote\b|\bfaces? a (?:vote|ruling|review|decision)\b|\b(?:is|are) awaiting\b"
    r"|\b(?:not yet|no) (?:been )?(?:decided|approved|known|clear|signed|agreed)\b|\bquestion (?:is|remains) whether\b"
    r"|\b(?:will be )?watch(?:ing)? (?:whether|for|to see)\b|\b(?:is|are) expected to close\b|\bclosing is expected\b"
    r"|\b(?:approval|vote|ruling|decision|clearance) (?:is )?(?:expected|due)\b|\bdeadline\b|\bpending\b"
    r"|\b(?:applied|apply|applies|applying) for\b[^.]{0,60}\b(?:grant|licence|license|permit|approval|funding)\b"
    # what a target would take, and unconfirmed reports
    r"|\bwould (?:need|have) to\b|\b(?:declined|refused) to comment\b|\bwould not (?:comment|confirm|say)\b|\breportedly\b"
    r"|\b(?:was|were|is|are) (?:said to be )?(?:exploring|weighing|considering) (?:a |an )?(?:sale|bid|merger|offer|listing|spin-off)\b"
    # a target set for a date: whether it is met is open
    r"|\b(?:aims?|targets?|plans?|expects?|promised|pledged|wants?|hopes?) to\b[^.]{0,120}\bby (?:the end of |the middle of |mid-)?"
    r"(?:(?:19|20)\d{2}|the (?:first|second|third|fourth) quarter|(?:January|February|March|April|May|June|July|August|"
    r"September|October|November|December))\b", re.I)
# Direct speech: a sentence that opens a quotation, or ends one ("..., we rent," he said.).
_QUOTE_ONLY = re.compile(r"^\s*[\"“]|[,.!?][\"”]\s+(?:he|she|they|[A-Z][\w'’-]+(?:\s+[A-Z][\w'’-]+){0,3})\s+"
                         r"(?:said|says|added|told|noted|argued|explained|wrote)\b[^\"“”]*$")
_SPEECH = re.compile(r"\b(?:said|says|told|added|noted|argued|explained|wrote|according to)\b", re.I)
_PERIOD = re.compile(r"\b(?:months?|weeks?|years?|quarters?|days?|period)\s+(?:to|ended|ending|through|until)\s*$", re.I)
_TIME_PREPOSITION = re.compile(r"\b(?:on|in|by|until|from|since|before|after|at|during|as of|starting|from)\s+(?:the\s+)?(?:end of\s+)?$", re.I)


@dataclass(eq=False)
class Reading:
    """One body sentence as the summary engine reads it."""

    s: Sentence
    orgs: list[Entity] = field(default_factory=list)  # organisations it names (or points back at), in order
    actor: Entity | None = None  # the organisation acting (a person acts for their organisation)
    person: Entity | None = None  # the person who is the subject, when one acts or speaks for the organisation
    voice: Entity | None = None  # for a quotation: the organisation of the person quoted
    topic: Entity | None = None  # the organisation it is about: its actor, its one organisation, or the one in focus
    thesis: Entity | None = None  # the organisation whose strategy it states
    thesis_strength: int = 0  # 3 "X's plan: ...", 2 "X is betting that ...", 1 "..., betting that ..." / a heading
    result: bool = False
    pending: bool = False
    background: bool = False  # the past that the text sets the present against ("The old story was ...")
    quote: bool = False  # a direct quotation, nothing else
    speech: bool = False  # its actor only says, estimates or expects something ("Pellham Retail Insight estimates ...")
    figures: list[tuple[Figure, Entity | None]] = field(default_factory=list)
    events: list[DateMention] = field(default_factory=list)  # dates of events (not periods, not comparisons)


@dataclass
class Affiliation:
    person: Entity
    organisation: Entity | None
    role: str
    sentence: Sentence
    explicit: bool = True  # the sentence names the organisation; False when it is the one the text is about


def names_alternation(entity: Entity) -> str:
    return "|".join(re.escape(n) for n in sorted(entity.names(), key=len, reverse=True))


def organisation_mentions(text: str, entities: EntityIndex) -> list[tuple[int, Entity]]:
    found: list[tuple[int, Entity]] = []
    for m in mentions(text):
        e = entities.resolve(m.text)
        if e is not None and e.kind == "organisation":
            found.append((m.start, e))
    return found


def read_document(sentences: Sequence[Sentence], entities: EntityIndex) -> tuple[list[Reading], dict[int, Affiliation]]:
    """Readings of the body sentences, in order, and the people with their organisations (by entity id)."""
    people: dict[int, Affiliation] = {}
    readings: list[Reading] = []
    focus: Entity | None = None  # the organisation the text is about at this point
    recent: list[Entity] = []  # organisations named so far, last named last
    seen: Counter[int] = Counter()  # how often each was named so far (by id), in first-named order below
    introduced: dict[int, Entity] = {}
    stated: set[int] = set()  # organisations whose strategy an earlier sentence states
    focus_age = 99  # sentences since the focus was last named: "It" points back one sentence, "The company" further
    body = [s for s in sentences if not s.is_heading]
    for s in body:  # who works where, from what the text says outright, before any guess from context
        _affiliations(s, entities, people, organisation_mentions(s.text, entities), None)
    for s in body:
        r = Reading(s=s)
        named = organisation_mentions(s.text, entities)
        _affiliations(s, entities, people, named, focus)
        main = main_subject(without_time_opener(s.text))[1]
        pointed = focus
        if _NOUN_REFERENCE.match(main) and focus is not None and recent:
            # "The company said it would fund ...": a generic noun points at the organisation the text is about, not
            # at one it named in passing a sentence ago ("Parcelway, which runs returns, declined to comment.")
            principal = max(introduced.values(), key=lambda e: seen[id(e)])
            # ... unless that one is a player: it states a strategy, or it just did something ("Rival Tessaro Wind
            # ... is heading in the opposite direction."), beyond a comment or a step still pending
            last = readings[-1] if readings else None
            acted = last is not None and last.actor is focus and not (last.speech or last.pending or last.quote)
            if principal is not focus and id(focus) not in stated and not acted and seen[id(focus)] <= 2 and \
                    seen[id(principal)] >= 2 * seen[id(focus)]:
                pointed = principal
        back = back_reference(main, pointed if (focus_age <= 1 or _NOUN_REFERENCE.match(main)) else None, recent)
        actor, subject = main_actor(s.text, entities)
        is_part, whole = part_of(main, entities)
        if is_part:
            actor = back = whole or focus
        elif actor is None and not subject:
            actor = actor_in(s.text, entities)
        if actor is not None and actor.kind == "person":
            aff = people.get(id(actor))
            r.person = actor
            actor = aff.organisation if aff is not None else None
        elif actor is not None and actor.kind != "organisation":
            actor = None
        # "..., said Marcus Lindqvist, an analyst at Tallow Bridge Advisers": a source, neither actor nor focus
        sources = {id(e) for pos, e in named if _ANALYST_AT.search(s.text[max(0, pos - 40):pos])}
        if actor is not None and id(actor) in sources:
            actor = None
        first_named = named[0][0] if named else len(s.text)
        if back is not None and (actor is None or _opening_before(s.text, first_named)):
            actor = back
        r.actor = actor
        r.orgs = list(dict.fromkeys([e for _, e in named] + ([back] if back is not None else [])))
        # Its topic: the actor, else its one organisation unless that one is only a counterparty ("a $41 million loan
        # from the state's fund") or the source of the sentence ("according to analysts at X"), else the one in focus.
        free = [e for pos, e in named if not _COUNTERPARTY.search(s.text[max(0, pos - 30):pos])
                and not _SOURCE_BEFORE.search(s.text[max(0, pos - 60):pos])]
        r.topic = r.actor or (free[0] if len({id(e) for e in free}) == 1 else None) or \
            (focus if not free and len({id(e) for _, e in named}) <= 1 else None)
        r.quote = bool(_QUOTE_ONLY.search(s.text))
        if r.quote:  # '"...," said Priya Castellino, Fennick's chief executive.': whom the speaker works for
            tail = s.text[max(s.text.rfind("\""), s.text.rfind("”")) + 1:]
            for m in mentions(tail):
                e = entities.resolve(m.text)
                if e is not None and e.kind == "person" and id(e) in people:
                    r.voice = people[id(e)].organisation
                    break
        r.thesis, r.thesis_strength = _thesis(s, r, entities, back, focus if focus_age <= 1 else None)
        r.speech = actor is not None and _speaks(s.text, actor)
        r.figures = [(f, _figure_owner(s.text, f, r, entities)) for f in _real_figures(s.text)]
        r.result = bool(r.figures) and bool(_RESULT_NOUNS.search(s.text)) and bool(_RESULT_VERBS.search(s.text))
        r.pending = bool(_PENDING.search(s.text))
        r.events = event_dates(s.text)
        # Background: said outright, or a short undated sentence that goes on with it ("Walmart defended it with ...")
        r.background = bool(_BACKGROUND.search(s.text) and not _PRESENT.search(s.text)) or (
            bool(readings) and readings[-1].background and not r.events and not r.figures and len(s.text.split()) <= 12)
        readings.append(r)
        recent.extend(e for _, e in named)
        for _, e in named:
            seen[id(e)] += 1
            introduced.setdefault(id(e), e)
        if r.thesis is not None:
            stated.add(id(r.thesis))
        focus_age += 1
        if r.thesis is not None:
            focus, focus_age = r.thesis, 0
        elif actor is not None:
            focus, focus_age = actor, 0
        elif named and len({id(e) for _, e in named}) == 1 and id(named[-1][1]) not in sources:
            focus, focus_age = named[-1][1], 0
    return readings, people


# A headline's predicate that states a direction: "X to shut 31 cinemas and rebuild around ...", "X bets on ...",
# "X turns to supermarkets with ready meals".
_HEADLINE_PREDICATE = re.compile(rf"^(?:['’]s?)?(?:\s+[a-z][\w-]*(?:\s+[\w£$€%,.-]+){{0,5}}?\s+(?:and|as\s+it))?\s+"
                                 rf"(?:(?P<strong>{THESIS_VERBS})|to\s+[a-z]+\b|(?:turns|moves|shifts|pivots|switches|"
                                 r"pushes|expands|retreats|refocuses|returns|heads)\s+(?:to|into|towards?|away|back|from|on)\b"
                                 # "X buys Castlemoor Holidays for £14.5m in push into coach tours"
                                 r"|[^\n]*?\bin\s+(?:a\s+|its\s+)?(?:push|drive|bid|move|shift|pivot)\s+(?:into|to|towards?|for|away)\b"
                                 # "CRL signs rail deal to sell river cruises ...", "X unveils plan to ..."
                                 r")")


def headline_thesis(sentences: Sequence[Sentence], entities: EntityIndex) -> Reading | None:
    """A news headline whose subject is an organisation and whose predicate states where it is going: the
    story's own one-line statement of that organisation's strategy, as plain as "X is betting that ..." (2)."""
    if not sentences:
        return None
    s = sentences[0]
    if not s.is_heading and s.text.rstrip()[-1:] in ".!?\"”":  # a headline is a line of its own, without a full stop
        return None
    found = mentions(s.text)
    if not found or found[0].start > 4:
        return None
    e = entities.resolve(found[0].text)
    m = _HEADLINE_PREDICATE.match(s.text[found[0].end:])
    if e is None or e.kind != "organisation" or m is None:
        return None
    return Reading(s=s, orgs=[e], actor=e, topic=e, thesis=e, thesis_strength=2)


_SPEECH_VERB = re.compile(r"(?:['’]s\s+\w+\s+)?(?:,[^,]{1,80},\s*)?\s*(?:also\s+)?(?:said|says|told|noted|argued|wrote|estimates?|"
                          r"estimated|expects?|expected|forecasts?|forecast|predicts?|predicted|believes?|thinks?|calculates?|"
                          r"calculated|reckons?|warned|warns|cautioned)\b"
                          r"(?!\s+(?:it|that it|they|the company|the group)\b)"
                          # "X said on the same day that it would spend ...": X's own commitment, not an estimate
                          r"(?!\s+(?:on|last|this|in|at|earlier|late)\b[^,.\"“”]{0,30}?\s+(?:that\s+)?(?:it|they|the company|the group)\s+"
                          r"(?:would|will|planned|plans|intended|intends|aimed|aims|had agreed|agreed)\b)")


def _speaks(text: str, actor: Entity) -> bool:
    """The actor's verb is one of saying or estimating, and what it says is not about itself ("X said it had agreed
    to sell ..." is X's move; "Pellham Retail Insight estimates that GFM's share ..." is not Pellham's)."""
    for n in sorted(actor.names(), key=len, reverse=True):
        m = re.search(rf"(?<![\w]){re.escape(n)}(?![\w])", text)
        if m:
            return bool(_SPEECH_VERB.match(text[m.end():]))
    return False


def _opening_before(text: str, position: int) -> bool:
    """The back-reference ("Its", "The company") opens the sentence before any name does."""
    m = _BACK_REFERENCE.match(text)
    return bool(m) and m.end() <= position


# What a speaker says the organisation means to do: "Petrakis told the audience he intended to reach ...",
# "Aaberg told reporters that HRA would keep flying turboprops".
_SAID_THAT = r"\b(?:said|says|told\s+(?:[\w-]+\s+){1,3}?)(?:that\s+)?"
_REPORTED_SUBJECT = r"(?:it|they|the\s+\w+|[A-Z][\w&'’-]*(?:\s+[A-Z][\w&'’-]*){0,3})"
# A commitment reported with its horizon: "said on Monday (March 9) that it would close 180 cafes ... by the end of 2028".
_SAID_WHEN = r"\b(?:said|says|announced)(?:\s+(?:on|last|this|in)\s+\w+(?:\s+\([^)]{1,20}\))?|\s+in\s+a\s+(?:statement|filing))?\s+that\s+"
_HORIZON = (r"\b(?:by|before|within|over)\s+(?:the\s+)?(?:end\s+of\s+|middle\s+of\s+|next\s+|coming\s+|following\s+)?"
            r"(?:(?:19|20)\d{2}|\d+\s+(?:years|months)|(?:two|three|four|five|six|ten)\s+(?:years|months)|decade|years|months)\b"
            r"|\bover\s+the\s+next\b")
_REPORTED_COMMITMENT = re.compile(rf"{_SAID_WHEN}(?:it|they|the\s+\w+|[A-Z][\w&'’-]*(?:\s+[A-Z][\w&'’-]*){{0,3}})\s+"
                                  rf"(?:would|will|planned to|plans to|intended to|intends to|aimed to|aims to)\s+\w+[^.]*?(?:{_HORIZON})")
_REPORTED_INTENT = re.compile(
    rf"{_SAID_THAT}(?:he|she|we|{_REPORTED_SUBJECT})\s+(?:intended|planned|wanted|aimed|meant|hoped|(?:was|were)\s+determined)\s+to\b"
    rf"|{_SAID_THAT}{_REPORTED_SUBJECT}\s+would\s+(?:keep|continue|stick|remain|focus|concentrate)\b"
    # "Management told investors that the priority was fewer, fuller routes."
    rf"|{_SAID_THAT}(?:the|its|their)\s+(?:[\w-]+\s+)?(?:{THESIS_NOUNS})\s+(?:was|is|would be|remained|remains)\b"
    # "told investors on Thursday that Solvang would stop selling ...": a plan put to an audience
    r"|\btold\s+(?:\w+\s+){0,2}?(?:investors|analysts|shareholders|staff|employees|members|reporters|audience|conference|"
    rf"journalists)\b[^.\"“”]{{0,40}}?\bthat\s+{_REPORTED_SUBJECT}\s+(?:would|wanted|intended|planned|aimed|was going)\b")
# A quotation that states what the speaker's organisation is for: "Our job now is to ...", "We want to be ..."
_QUOTED_THESIS = re.compile(rf"^\s*[\"“](?:[^\"”]{{0,40}}?[,;]\s+)?(?:(?:Our|My)\s+(?:[\w-]+\s+){{0,2}}?(?:{THESIS_NOUNS}|job|task|"
                            r"purpose)\s+(?:now\s+|here\s+|today\s+)?(?:is|has to be|must be)\b|We\s+(?:want|aim|intend|mean|"
                            r"need|have decided|have chosen)\s+to\b|We\s+are\s+(?:not\s+)?(?:trying|aiming|going|determined)\s+to\b"
                            r"|[^\"”]{0,200}?\bwe\s+(?:will\s+be|are\s+(?:not\s+)?going\s+to|want\s+to|intend\s+to|aim\s+to)\b)",
                            re.I)


_WHAT_AFTER = (r"(?:is\s+|are\s+)?(?:really\s+|ultimately\s+|now\s+)?(?:after|wants|seeking|chasing|aiming for|trying to \w+|"
               r"building|needs)(?:,[^,]{1,40},)?\s+(?:is|are)\b")


_FORMER = re.compile(r"['’]s?\s+(?:[\w-]+\s+)?(?:old|former|previous|original|earlier|abandoned|scrapped|first)\s", re.I)


def _thesis(s: Sentence, r: Reading, entities: EntityIndex, back: Entity | None,
            focus: Entity | None = None) -> tuple[Entity | None, int]:
    text = s.text
    best: tuple[int, int, Entity] | None = None  # (strength, -position, entity)
    candidates = list(r.orgs)
    if r.person is not None and r.actor is not None:
        # A person speaking for their organisation: "Chief Executive Priya Halvorsen wants fees to ...".
        names = names_alternation(r.person)
        if re.search(rf"(?<![\w])(?:{names})(?:\s*,[^,]{{1,90}},\s*|\s+)(?:also\s+|now\s+|still\s+)?(?:{THESIS_VERBS})", text):
            best = (2, 0, r.actor)
        elif re.search(rf"(?<![\w])(?:{names})(?:\s*,[^,]{{1,90}},\s*|\s+)(?:{WEAK_THESIS_VERBS})", text):
            best = (1, 0, r.actor)
    if best is None and r.actor is not None and (_REPORTED_INTENT.search(text) or _REPORTED_COMMITMENT.search(text)):
        best = (1, 0, r.actor)
    if best is None and _QUOTED_THESIS.match(text) and (r.voice or r.actor or r.topic) is not None:
        best = (1, 0, r.voice or r.actor or r.topic)  # type: ignore[assignment]
    for e in candidates:
        names = names_alternation(e)
        for m in re.finditer(rf"(?<![\w])(?:{names})['’]s?\s+(?:[\w-]+\s+){{0,2}}?(?:{THESIS_NOUNS})\b{_THESIS_AFTER_NOUN}",
                             text):
            if _FORMER.search(m.group(0)):
                continue  # "CRL's old plan, unveiled in 2023, was to ...": what it no longer means to do
            best = max(best or (0, 0, e), (3, -m.start(), e), key=lambda b: (b[0], b[1]))
        # "X wants ...", "X, for its part, wants ...", "X (the lender) wants ..."
        for m in re.finditer(rf"(?<![\w])(?:{names})(?:['’]s)?(?:\s*,[^,]{{1,90}},\s*|\s*\([^)]{{1,40}}\)\s*|\s+)"
                             rf"(?:also\s+|now\s+|still\s+|instead\s+|increasingly\s+|clearly\s+)?(?:{THESIS_VERBS})", text):
            best = max(best or (0, 0, e), (2, -m.start(), e), key=lambda b: (b[0], b[1]))
        for m in re.finditer(rf"(?<![\w])(?:{names})(?:\s*,[^,]{{1,90}},\s*|\s+)(?:also\s+|now\s+|still\s+)?(?:{WEAK_THESIS_VERBS})",
                             text):
            best = max(best or (0, 0, e), (1, -m.start(), e), key=lambda b: (b[0], b[1]))
    for e in candidates:  # "For the Fenmouth Development Agency, the priority is jobs"; "What Bramblewood is really after is ..."
        names = names_alternation(e)
        if re.match(rf"^\s*For\s+(?:the\s+)?(?:{names}),\s+(?:(?:the|its|their)\s+(?:[\w-]+\s+)?(?:{THESIS_NOUNS})\b"
                    rf"{_THESIS_AFTER_NOUN}|[^,.]{{0,40}}?\b(?:is part of) (?:a|an|its|their|the)\s+(?:[\w-]+\s+)?"
                    rf"(?:push|drive|effort|plan|strategy|bid|campaign)\b)", text) or \
                re.match(rf"^\s*What\s+(?:the\s+)?(?:{names})\s+{_WHAT_AFTER}", text) or \
                re.match(rf"^\s*The\s+(?:[\w-]+\s+)?(?:{THESIS_NOUNS}|thinking|logic|belief|calculation|reasoning)\s+"
                         rf"(?:at|inside|within)\s+(?:the\s+)?(?:{names})\s+(?:is|was)\b", text):
            best = max(best or (0, 0, e), (3, 0, e), key=lambda b: (b[0], b[1]))
    m = re.match(rf"^\s*The\s+(?:[\w-]+\s+)?(?:{THESIS_NOUNS})(?:,[^,.]{{1,40}},)?\s+(?:calls for|envisages|foresees|involves|would see|is for|is that|"
                 rf"was that|is to)\b", text)
    if m:  # "The plan calls for Corwin Machinery Finance to offer ...", "The bet is that ...": the plan of whom it names
        named = next((e for e in candidates if re.match(rf"\s*(?:the\s+)?(?:{names_alternation(e)})\s+to\b", text[m.end():])), None)
        owner = named or back or (r.topic if r.topic in candidates or not candidates else None)
        if owner is not None:
            best = max(best or (0, 0, owner), (2, 0, owner), key=lambda b: (b[0], b[1]))
    if best is None and r.actor is not None and re.match(r"^\s*(?:Where|While|Whilst|Whereas|Unlike)\b", text) \
            and re.search(rf",\s+[^,]*?\b(?:is|are|has been|have been)\s+\w+ing\b|,\s+(?:the\s+)?(?:{names_alternation(r.actor)})"
                          rf"\s+(?:also\s+|instead\s+)?[a-z]+s\b", text):
        # "Where Orbita Airways is cutting fares ..., Skylark Air is moving aircraft to smaller airports": set against
        # a rival's, the main clause states the actor's strategy.
        best = (2, 0, r.actor)
    if back is not None:
        main = main_subject(without_time_opener(text))[1]  # "Rather than scatter chargers ..., the company is ..."
        if re.match(rf"^\s*(?:Its|Their|The\s+(?:\w+\s+)?(?:{ORG_NOUNS})['’]s|Management['’]s|(?:Its|The)\s+(?:board|management|"
                    rf"executives|leadership)['’]s?)\s+(?:[\w-]+\s+){{0,2}}?(?:{THESIS_NOUNS}|view)\b"
                    rf"{_THESIS_AFTER_NOUN}", text, re.I):
            best = max(best or (0, 0, back), (3, 0, back), key=lambda b: (b[0], b[1]))
        elif re.match(rf"^\s*(?:It|They|The\s+(?:[\w-]+\s+)?(?:{ORG_NOUNS}))\s+(?:also\s+|now\s+|still\s+|instead\s+)?(?:{THESIS_VERBS})",
                      main, re.I):
            best = max(best or (0, 0, back), (2, 0, back), key=lambda b: (b[0], b[1]))
    # "Annual passes are the heart of the model.": what the organisation's model or strategy turns on
    if (back or focus or r.topic) is not None and re.search(rf"\b(?:heart|core|centre|center|cornerstone|backbone|"
                                                           rf"centrepiece|centerpiece|linchpin)\s+of\s+(?:the|its|their)\s+"
                                                           rf"(?:[\w-]+\s+)?(?:{THESIS_NOUNS}|business)\b", text, re.I):
        owner = back or focus or r.topic
        best = max(best or (0, 0, owner), (2, 0, owner), key=lambda b: (b[0], b[1]))  # type: ignore[arg-type]
    # "What it wants is the coffee-shop counter": the organisation the text is about
    if (back or focus) is not None and re.match(rf"^\s*What\s+(?:it|they|the\s+(?:\w+\s+)?(?:{ORG_NOUNS}))\s+{_WHAT_AFTER}", text, re.I):
        best = max(best or (0, 0, back or focus), (3, 0, back or focus), key=lambda b: (b[0], b[1]))  # type: ignore[arg-type]
    if best is None and r.actor is not None and _THESIS_PARTICIPLE.search(text):
        best = (1, 0, r.actor)
    if best is None and s.heading and re.search(rf"\b(?:{THESIS_NOUNS})\b", s.heading, re.I):
        # Under a heading "Amazon's model:" or "Halberd's plan", the paragraph states that organisation's strategy.
        owner = next((e for _, e in organisation_mentions(s.heading, entities)), None)
        if owner is not None:
            best = (3, 0, owner)
    return (best[2], best[0]) if best else (None, 0)


# ------------------------------------------------------------------ figures
def _real_figures(text: str) -> list[Figure]:
    """Figures that are quantities: not the numbers of dates ("March 11", "2026"), not ordinals, not tiny counts."""
    spans = [(d.start, d.end) for d in dates(text)]
    out: list[Figure] = []
    for f in figures(text):
        if any(a <= f.start < b for a, b in spans):
            continue
        if not any(ch.isdigit() for ch in f.text) and not (f.kind == "percent" or f.value >= 1000):
            continue  # number words count only as shares ("two-fifths") or with a scale ("five million"), not "two"
        if f.kind == "count" and f.value < 10 and not re.match(r"\s*(?:times|x\b|million|billion|percent)", text[f.end:f.end + 10]) \
                and "." not in f.text:
            continue
        if f.kind == "count" and re.fullmatch(r"(?:19|20)\d{2}", f.text):
            continue
        if f.kind == "count" and re.match(r"\s*(?:-\s*)?(?:years?|months?|weeks?|days?|hours?|minutes?|decades?)\b", text[f.end:f.end + 12]):
            continue  # "an initial 15 years": a duration, not a figure of the business
        out.append(f)
    return out


def figure_text(text: str, f: Figure) -> str:
    """A figure as written, with the unit or multiplier that follows it ("2.6 times", "4,200 mobile towers" -> "4,200")."""
    m = re.match(r"\s*(?:times|x)\b", text[f.end:])
    return text[f.start:f.end + m.end()].strip() if m else f.text


_CLAUSE_BREAK = re.compile(r"\s*(?:;|\s[—–]\s|:\s|,\s(?=(?:and|but|while|whereas|which|who|taking|bringing|lifting|"
                           r"up from|down from|compared|against|as|with|after|before|though|although|making|leaving|"
                           r"giving)\b))")


def clause_around(text: str, start: int, end: int, *, min_words: int = 6, max_words: int = 28) -> str:
    """The clause of ``text`` that holds ``text[start:end]``, verbatim: cut at semicolons, dashes and ", and/which/..."
    boundaries, widened to neighbouring clauses while shorter than ``min_words``."""
    cuts = [0] + [m.end() for m in _CLAUSE_BREAK.finditer(text)] + [len(text)]
    bounds = sorted(set(cuts))
    lo = max(b for b in bounds if b <= start)
    hi = min(b for b in bounds if b >= end)
    i, j = bounds.index(lo), bounds.index(hi)
    while len(text[bounds[i]:bounds[j]].split()) < min_words and (i > 0 or j < len(bounds) - 1):
        if j < len(bounds) - 1:
            j += 1
        else:
            i -= 1
    piece = text[bounds[i]:bounds[j]]
    for m in reversed(list(_CLAUSE_BREAK.finditer(piece))):
        if m.start() < len(piece) and not piece[m.start():].strip():
            piece = piece[:m.start()]
    piece = piece.strip().rstrip(",;:—– ")
    if len(piece.split()) > max_words:
        words = piece.split()
        at = len(text[bounds[i]:start].split())
        lo_w = max(0, min(at - max_words // 2, len(words) - max_words))
        piece = " ".join(words[lo_w:lo_w + max_words])
    return piece if piece in text else text[start:end]


def phrase_around(text: str, start: int, end: int, *, before: int = 4, after: int = 5, skip: Sequence[str] = ()) -> str:
    """A few words of ``text`` on either side of ``text[start:end]``, verbatim, kept inside its clause and never
    the whole sentence: what a figure counts ("sell 4,200 mobile towers to Stoneridge"), what happens on a date.
    Never cuts a figure or a date in two ("€540 million", "February 24")."""
    lo = max([0] + [m.end() for m in _CLAUSE_BREAK.finditer(text) if m.end() <= start])
    hi = min([len(text)] + [m.start() for m in _CLAUSE_BREAK.finditer(text) if m.start() >= end])
    for name in skip:  # begin after the organisation: the table says whose it is
        m = re.search(rf"(?<![\w]){re.escape(name)}(?:['’]s)?(?![\w])", text[lo:start])
        if m:
            lo = lo + m.end()
            break
    # a word's end leaves out the comma or semicolon it touches: "carried 21.4 million passengers, and ..."
    words = [(m.start(), m.start() + len(m.group().rstrip(",;:"))) for m in re.finditer(r"\S+", text)]
    left = [w for w in words if lo <= w[0] and w[1] <= start][-before:] if before else []
    right = [w for w in words if w[0] >= end and w[1] <= hi][:after]
    spans = [(f.start, f.end) for f in figures(text, words=False)] + [(d.start, d.end) for d in dates(text)]

    def widen(a: int, b: int) -> tuple[int, int]:
        for x, y in spans:
            if x < a < y:
                a = x
            if x < b < y:
                b = y
        return a, b

    a, b = widen(left[0][0] if left else start, right[-1][1] if right else end)
    piece = text[a:b]
    if " ".join(piece.strip(" .,;:").split()) == " ".join(text.strip().rstrip(".").split()) and len(right) > 1:
        a, b = widen(a, right[-2][1])
        piece = text[a:b]
    piece = piece.strip(" ,;:—–(")
    return re.sub(r"[,;:.]$", "", piece) or text[start:end]


def _figure_owner(text: str, f: Figure, r: Reading, entities: EntityIndex) -> Entity | None:
    """The organisation a figure belongs to: "<Org>'s revenue ... €5m", else the actor of its clause ("Stoneridge
    will pay Halberd €1.35 billion" is Stoneridge's payment), else the sentence's actor or its one organisation."""
    head = text[:f.start]
    possessive = None
    for e in r.orgs:
        for n in e.names():
            for m in re.finditer(rf"(?<![\w]){re.escape(n)}['’]s?\s+(?:[\w-]+\s+){{0,3}}$", head[-60:]):
                possessive = e
    if possessive is not None:
        return possessive
    cuts = [0] + [m.end() for m in _CLAUSE_BREAK.finditer(text) if m.end() <= f.start]
    cuts += [m.end() for m in re.finditer(r"\b(?:that|whether)\s+", text[:f.start])]  # "estimates that GFM's share ..."
    clause = re.sub(r"^\s*(?:and|but|while|whereas|though|although)\s+", "", text[max(cuts):f.end])
    if re.match(r"\s*(?:it|its|they|their)\b", clause, re.I) and r.actor is not None:
        return r.actor  # "AGH told Norbeck that it needed about €6.10": "it" is the one speaking
    for e in r.orgs:  # "with AGH building a 300-megawatt electrolyser"
        if re.search(rf"(?<![\w])(?:{names_alternation(e)})\s+\w+ing\b", clause):
            return e
    for e in r.orgs:  # "Grubline's share of restaurant deliveries ... slipped to 51%": the subject is Grubline's
        if re.match(rf"\s*(?:[A-Z][a-z]+\s+)?(?:{names_alternation(e)})['’]s?\s", clause):
            return e
    actor = actor_in(clause, entities)
    if actor is not None and actor.kind == "organisation":
        return actor
    if r.topic is None:  # "ACG's 46 premium screens ..., and the average Titan ticket sold for £16.40": the subject's
        for e in r.orgs:
            if re.match(rf"\s*(?:{names_alternation(e)})['’]s?\s", text):
                return e
    return r.topic


# ------------------------------------------------------------------ dates
def event_dates(text: str) -> list[DateMention]:
    """Dates at which something happens or is due: not periods ("the three months to March"), not bare years in
    comparisons ("up from €870 million in 2025"), not durations."""
    out = []
    for d in dates(text):
        before = text[max(0, d.start - 40):d.start]
        if _PERIOD.search(before):
            continue
        word = d.text.lower()
        if re.fullmatch(r"(?:19|20)\d{2}s?", word):
            if not re.search(r"\b(?:in|by|until|before|from|since|end of|early|late|mid-?)\s+$", before, re.I) or \
                    re.search(r"\b(?:from|up from|down from|than|compared with)\s+[^,;]{0,30}$", before, re.I):
                continue
        if re.fullmatch(r"(?:mon|tues|wednes|thurs|fri|satur|sun)day", word) and re.search(r"\(\s*$", text[d.end:d.end + 3]):
            continue
        if re.fullmatch(r"(?:yesterday|today|tomorrow|tonight|noon|midnight|weekdays?|weekends?|every weekdays?)", word):
            continue
        if re.match(r"\d", word) and re.search(r"(?:am|pm|a\.m|p\.m|:\d\d)$", word):
            continue
        out.append(d)
    return out


def date_sort_key(text: str, default_year: int | None) -> tuple[int, int, int] | None:
    """(year, month, day) of a date as written, with the document's year when it gives none; None if unknown."""
    low = text.lower()
    year_m = re.search(r"(?:19|20)\d{2}", low)
    year = int(year_m.group(0)) if year_m else default_year
    if year is None:
        return None
    for i, name in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")):
        if re.search(rf"\b{name}", low):
            day = re.search(r"\b(\d{1,2})(?:st|nd|rd|th)?\b(?!\d)", re.sub(r"(?:19|20)\d{2}", "", low))
            return (year, i + 1, int(day.group(1)) if day else 0)
    q = re.search(r"\bq([1-4])\b|\b(first|second|third|fourth)\s+quarter", low)
    if q:
        n = int(q.group(1)) if q.group(1) else ("first", "second", "third", "fourth").index(q.group(2)) + 1
        return (year, 3 * n - 1, 0)
    h = re.search(r"\bh([12])\b|\b(first|second)\s+half", low)
    if h:
        n = int(h.group(1)) if h.group(1) else ("first", "second").index(h.group(2)) + 1
        return (year, 6 * n - 3, 0)
    m = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", low)
    if m:
        return (int(m.group(1)), int(m.group(2)), int(m.group(3)))
    if year_m:  # a year alone: after the dated events of that year ("by 2028" is a deadline)
        return (year, 12 if re.search(r"\bearly\b", low) is None else 1, 32)
    return None


_DATELINE = re.compile(r"\b((?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sept?(?:ember)?|"
                       r"Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?\s+\d{1,2},?\s+(?:19|20)\d{2}|\d{1,2}\s+(?:January|February|"
                       r"March|April|May|June|July|August|September|October|November|December)\s+(?:19|20)\d{2}|"
                       r"(?:19|20)\d{2}-\d{2}-\d{2})\b")


def document_date(text: str, source: str, given: str | None) -> str | None:
    """The document's date: its metadata, else the dateline near its top, else an ISO date in its file name."""
    if given:
        return given
    m = _DATELINE.search(text[:600])
    if m:
        return m.group(1)
    m = re.search(r"(?:19|20)\d{2}-\d{2}-\d{2}", source)
    return m.group(0) if m else None


# ------------------------------------------------------------------ people
_ROLE_BEFORE = re.compile(r"((?:[A-Z][\w&.\-]*['’]s\s+)?(?:(?:[Gg]roup|[Ss]enior|[Ee]xecutive|[Vv]ice|[Dd]eputy|[Aa]cting|[Ii]nterim|"
                          r"[Cc]hief|[Hh]ead|[Mm]anaging|[Gg]eneral|[A-Z]{2,4}|[Pp]rogramme|[Pp]rogram|[Ff]inance|[Ff]inancial|"
                          r"[Oo]perating|[Tt]echnology|[Cc]ommercial|[Pp]resident|[Cc]hair(?:man|woman)?|[Ff]ounder|[Dd]irector|"
                          r"[Oo]fficer|[Ee]xecutive|[Aa]nalyst|[Ss]pokes(?:person|man|woman))\s+){1,5})$")
# A role after the name: an apposition, not a clause ("..., and wants members to grow it"); a number's separators
# ("40,000") stay inside it.
_ROLE_AFTER = re.compile(r"\s*,(?!\s*(?:and|but|or|while|then|yet|so)\b)\s*((?:the|a|an|its|their|who\s+(?:heads|leads|runs|chairs|"
                         r"oversees|manages|founded|directs|is|was))?(?:[^,.;:()\"“”]|(?<=\d)[,.](?=\d)){2,80}?)(?=\s*(?:,(?!\d)|\.(?!\d)|;|\)|$|\s+(?:said|says|told|added|noted)\b))")


def _role(text: str, start: int, end: int, entity: Entity) -> str:
    m = _ROLE_BEFORE.search(text[max(0, start - 80):start])
    if m and any(w.lower().strip(".") in TITLE_WORDS or w in TITLE_ACRONYMS for w in m.group(1).split()):
        return m.group(1).strip()
    m = _ROLE_AFTER.match(text[end:end + 100])
    if m and (any(w.lower().strip(".,") in TITLE_WORDS for w in m.group(1).split()) or m.group(1).startswith("who ")):
        return m.group(1).strip()
    return sorted(entity.titles)[0] if entity.titles else ""


_QUOTED = re.compile(r"[\"“][^\"“”]*[\"”]")


def quoted_spans(text: str) -> list[tuple[int, int]]:
    """Where ``text`` quotes someone: each quotation, and the start of the sentence when it closes a quotation opened
    in an earlier one ('... very much," Chief Executive Damian Roscoe told analysts.')."""
    first = re.search(r"[\"“”]", text)
    if first is None:
        return []
    at = first.start()
    closes = text[at] == "”" or (text[at] == '"' and text.count('"') % 2 == 1 and text[at - 1:at] in (",", ".", "!", "?"))
    rest = at + 1 if closes else 0
    spans = [(rest + m.start(), rest + m.end()) for m in _QUOTED.finditer(text[rest:])]
    return [(0, at + 1)] + spans if closes else spans


def _affiliations(s: Sentence, entities: EntityIndex, people: dict[int, Affiliation], named: list[tuple[int, Entity]],
                  focus: Entity | None) -> None:
    quoted = quoted_spans(s.text)
    for m in mentions(s.text):
        person = entities.resolve(m.text)
        if person is None or person.kind != "person":
            continue
        role = _role(s.text, m.start, m.end, person)
        owner = None
        inside = any(a <= m.start < b for a, b in quoted)
        # An organisation named inside a quotation is what the speaker talks about, not whom they work for.
        near = [(pos, e) for pos, e in named if inside or not any(a <= pos < b for a, b in quoted)]
        if m.title_owner:
            e = entities.resolve(m.title_owner)
            owner = e if e is not None and e.kind == "organisation" else None
        if owner is None and role:
            # "Beatrix Nollau, ASMI's programme director", "CFO of Halberd", "an analyst at Fjordline Securities"
            window = s.text[max(0, m.start - 80):m.end + 100]
            nearest = None
            for pos, e in near:
                rel = pos - max(0, m.start - 80)
                if 0 <= rel < len(window):
                    gap = abs(pos - m.start)
                    if nearest is None or gap < nearest[0]:
                        nearest = (gap, e)
            owner = nearest[1] if nearest else None
        explicit = owner is not None
        if owner is None and role and not near:
            owner = focus
        known = people.get(id(person))
        if known is None or (owner is not None and (known.organisation is None or (explicit and not known.explicit))):
            people[id(person)] = Affiliation(person=person, organisation=owner or (known.organisation if known else None),
                                             role=role or (known.role if known else ""), sentence=s, explicit=explicit)
        elif not known.role and role:
            known.role = role


_RANK_NOUN = re.compile(rf"['’]s?\s+(?:[\w-]+\s+){{0,2}}?(?:{THESIS_NOUNS})\b{_THESIS_AFTER_NOUN}|^\s*(?:Its|Their)\s+(?:[\w-]+\s+)"
                        rf"{{0,2}}?(?:{THESIS_NOUNS})\b{_THESIS_AFTER_NOUN}")
_RANK_VERB = re.compile(rf"\b(?:{THESIS_VERBS})")


def thesis_rank(text: str) -> int:
    """How plainly a sentence states a strategy: 3 "X's plan: ...", 2 "X is betting that ...", 1 anything else."""
    return 3 if _RANK_NOUN.search(text) else 2 if _RANK_VERB.search(text) else 1


def org_salience(readings: Sequence[Reading]) -> Counter[int]:
    """How much the document is about each organisation: acting counts most, a stated strategy more still."""
    score: Counter[int] = Counter()
    for r in readings:
        for e in r.orgs:
            score[id(e)] += 1
        if r.actor is not None:
            score[id(r.actor)] += 2
        if r.thesis is not None:
            score[id(r.thesis)] += 3 * r.thesis_strength
    return score


__all__ = ["Reading", "Affiliation", "read_document", "clause_around", "phrase_around", "figure_text", "event_dates", "date_sort_key",
           "document_date", "org_salience", "names_alternation", "thesis_rank", "ORG_NOUNS", "THESIS_NOUNS"]
