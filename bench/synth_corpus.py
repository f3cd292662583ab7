"""A deterministic, synthetic news-like corpus about retail and companies, for benchmarks.

Sentences come from ~30 news templates whose slots (companies, people, places, nouns, verbs,
adjectives, figures, free phrases) are filled from word lists with Zipfian weights: the first words
of each list are the common ones. With inflections and generated names the vocabulary is a few
thousand word forms. Document ``i`` of seed ``s`` depends only on (s, i), so a corpus of n documents
is the first n documents of a longer one.
"""

from __future__ import annotations

import bisect
import itertools
import random
import string
from functools import lru_cache
from pathlib import Path

VERSION = 1  # bump when the generator changes, so cached corpora are rebuilt

# ------------------------------------------------------------------ word lists (most common first)
REAL_COMPANIES = """Amazon Walmart Target Costco Kroger Walgreens CVS Home-Depot Best-Buy Lowe's Albertsons Aldi Lidl
Ikea Shopify eBay Etsy Temu Shein Instacart DoorDash Uber FedEx UPS Alibaba JD.com Tesco Carrefour Ahold-Delhaize
Dollar-General Dollar-Tree Macy's Nordstrom Kohl's Gap Nike Adidas Procter-&-Gamble Unilever Nestle PepsiCo Coca-Cola
Apple Google Microsoft Meta Visa Mastercard PayPal Klarna Affirm Stripe Zara H&M Uniqlo Sephora Ulta Chewy Wayfair
Publix Meijer Safeway Trader-Joe's Whole-Foods Sam's-Club BJ's Rite-Aid Dick's Foot-Locker Lululemon Starbucks
McDonald's Chipotle Domino's Oracle Salesforce Nvidia Intel""".split()
COMPANY_A = """North Blue Green Red Silver Golden Summit River Lake Pine Oak Maple Harbor Prairie Bright Clear Swift True
Prime Metro Urban Coastal Pacific Atlantic Midwest Southern Northern Eastern Western Central Liberty Heritage Pioneer
Evergreen Sterling Granite Cedar Willow Falcon Eagle Beacon Keystone Horizon Frontier Crescent Sunrise""".split()
COMPANY_B = """Mart Foods Grocers Market Retail Goods Supply Brands Outfitters Pharmacy Logistics Commerce Stores Holdings
Wholesale Home Apparel Electronics Provisions Trading Labs Networks Systems Partners Group""".split()
FIRST = """John Mary James Sarah Michael Jennifer David Lisa Robert Karen Daniel Emily Mark Laura Brian Rachel Kevin
Angela Andrew Nicole Doug Andy Brian Rosalind Doug Jim Ken Marc Kate Priya Raj Wei Ling Carlos Maria Ahmed Fatima
Kenji Yuki Olga Ivan Pierre Claire Hans Greta Tom Susan Neil Hannah Omar Leila Diego Sofia Chris Alex Sam Jordan""".split()
LAST = """Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Wilson Anderson
Thomas Taylor Moore Jackson Martin Lee Thompson White Harris Clark Lewis Walker Hall Young King Wright Scott Green
Baker Adams Nelson Hill Campbell Mitchell Roberts Carter Phillips Evans Turner Torres Parker Collins Edwards Stewart
Morris Murphy Cook Rogers Morgan Cooper Peterson Reed Bailey Bell Kim Patel Chen Nguyen Singh Sato Muller Rossi
Jassy McMillon Cornell Vachris McMullen Brewer Dimon Bezos Walton Cook Huang Nadella Pichai""".split()
TITLES = """chief-executive analyst spokesperson chief-financial-officer president founder economist director
chief-operating-officer senior-vice-president head-of-ecommerce chief-technology-officer partner strategist
professor consultant chairman chief-marketing-officer researcher""".split()
PLACES = """the-U.S. China Europe India Canada Mexico Texas California Florida New-York Chicago London Germany Japan
Brazil the-U.K. Ohio Georgia Arizona Seattle Atlanta Dallas Houston Phoenix Denver Boston Miami Paris Berlin Tokyo
Shanghai Toronto Australia France Spain Italy Korea Vietnam Indonesia Arkansas Bentonville Minneapolis Cincinnati
Oregon Michigan Illinois Virginia Pennsylvania Colorado Nevada Utah Tennessee Kentucky Ireland Poland Sweden
Netherlands Singapore Chile Peru Colombia Nigeria Kenya Egypt Turkey Israel""".split()
NOUNS = """company sales revenue store retailer customer shopper price growth market business delivery quarter year
product service platform grocery consumer demand profit share brand investment strategy technology data report
cost inventory supply chain margin pharmacy healthcare membership subscription advertising marketplace network
logistics warehouse fulfillment online ecommerce app order payment card loyalty program discount promotion deal
holiday season tariff economy inflation wage worker employee job executive analyst investor stock earnings forecast
outlook guidance traffic footprint location format expansion acquisition merger partnership agreement contract
supplier vendor manufacturer shipment truck driver drone robot automation ai model tool agent assistant search
checkout cart basket ticket volume unit category segment apparel electronics food produce meat dairy beverage
snack household beauty toy furniture appliance pet clothing shoe fashion luxury value budget affordability
convenience speed pickup curbside locker return refund label packaging sustainability emission energy solar
satellite broadband connectivity cloud server chip software hardware device phone screen camera sensor shelf aisle
cashier clinic prescription drug vaccine insurance benefit plan policy regulation regulator lawsuit court fine
investigation antitrust competition rival competitor leader player giant chain franchise mall outlet center
region city town county state country neighborhood community household family parent student senior generation
trend survey study research index rate percent point level peak low record milestone target goal plan launch
rollout pilot test trial feature option choice experience journey moment habit routine behavior preference
sentiment confidence spending budget income debt credit loan interest bank fintech wallet transaction fraud
security privacy breach risk threat challenge pressure headwind tailwind opportunity advantage edge moat scale
efficiency productivity capacity throughput bottleneck shortage surplus backlog delay disruption strike union
labor staffing shift schedule training skill talent hiring layoff restructuring closure reopening remodel
renovation construction property lease rent real-estate site facility hub depot terminal port container freight
carrier route network mile lane fleet vehicle van bike scooter kiosk terminal screen display sign campaign
influencer creator video stream content media audience viewer impression click conversion funnel catalog listing
seller merchant partner ecosystem infrastructure layer stack interface api integration upgrade update version
release announcement statement filing memo letter interview conference call webcast presentation event summit
week month day morning afternoon evening night weekend decade century history future past present""".split()
VERBS = """say report expect grow rise fall increase decrease expand launch open close announce plan invest build buy
sell offer provide deliver ship serve add cut raise lower reduce boost drive lead help make take give bring keep
use show see find seek try start begin continue end change move shift turn push pull focus target tout test roll
pilot scale hire train pay charge price discount match beat miss top trail lag outpace surpass double triple
acquire merge partner compete challenge face tackle address solve fix improve upgrade update integrate automate
digitize modernize streamline simplify accelerate slow stall pause halt resume restart extend renew cancel delay
approve reject sue settle fine investigate probe review examine analyze track monitor measure forecast estimate
project predict warn caution signal indicate suggest note point highlight stress emphasize argue claim insist
deny confirm reveal disclose unveil introduce debut preview tease release publish post file submit request demand
require allow enable empower support back fund finance borrow lend spend save earn generate capture gain lose
win secure protect defend attack disrupt transform reshape redefine rethink reimagine embrace adopt abandon drop
replace leverage harness exploit unlock tap mine collect gather share sign hit reach cross pass exceed""".split()
IRREGULAR = {"say": "said", "grow": "grew", "rise": "rose", "fall": "fell", "build": "built", "buy": "bought",
             "sell": "sold", "cut": "cut", "lead": "led", "make": "made", "take": "took", "give": "gave",
             "bring": "brought", "keep": "kept", "see": "saw", "find": "found", "seek": "sought", "begin": "began",
             "pay": "paid", "beat": "beat", "spend": "spent", "earn": "earned", "lose": "lost", "win": "won",
             "lend": "lent", "hit": "hit", "set": "set", "drive": "drove", "shift": "shifted", "plan": "planned",
             "stop": "stopped", "ship": "shipped", "drop": "dropped", "tap": "tapped", "top": "topped",
             "double": "doubled", "triple": "tripled", "end": "ended", "open": "opened", "offer": "offered",
             "target": "targeted", "budget": "budgeted", "debut": "debuted"}
ADJECTIVES = """new big large small major key strong weak high low fast slow early late digital online physical
global local national regional annual quarterly monthly weekly daily same-day next-day two-day overnight
automated autonomous generative artificial smart mobile personal private public retail wholesale consumer
competitive aggressive cautious conservative ambitious bold modest steady sharp significant record recent
current former previous upcoming expected unexpected surprising disappointing solid robust healthy sluggish
flat mixed positive negative cheap expensive affordable premium luxury discount budget value low-cost high-end
mid-tier essential discretionary seasonal holiday fresh frozen organic private-label branded exclusive popular
crowded fragmented saturated mature emerging growing shrinking rising falling stable volatile uncertain
challenging difficult tough easy simple complex broad narrow deep shallow wide long short full partial entire
initial final core central primary secondary critical crucial important vital strategic tactical operational
financial economic political regulatory legal technical logistical environmental social rural urban suburban
nationwide worldwide international domestic foreign cross-border omnichannel frictionless seamless personalized
targeted curated integrated unified fragmented legacy traditional modern innovative experimental""".split()
ADVERBS = """also now still already increasingly rapidly quickly slowly sharply steadily significantly largely mostly
roughly nearly about just only even further recently currently previously initially eventually ultimately
aggressively cautiously heavily lightly broadly widely deeply closely directly partly fully""".split()
GENERAL = """the of and to in a for on that with as by at from its is was are be has have will it this more than
their but not over which into new after year said also about up its out they one who while some other been could
would all most many such where when there because through those before during between under both each own while
people time way world life work day part place case point group number fact hand home area question problem issue
week system government side kind head house service friend power hour game line end member law car city name team
minute idea kid body information back parent face others level office door health person art war history party
result change morning reason research girl guy moment air teacher force education foot boy age policy process music
market sense nation plan college interest death experience effect use class control care field development role
effort rate heart drug show leader light voice wife police mind price report decision son view relationship town
road arm difference value building action model season society tax director position player record paper space
ground form event official matter center couple site project activity star table need court oil situation cost
industry figure street image phone data picture practice piece land product doctor wall patient worker news test
movie north love support technology step baby computer type attention film tree source organization hair window
evidence population site truth fire opportunity goal customer account bit campaign agency account choice rule
shopping basket aisle shelf brand label weekday coupon receipt checkout cashier display sample stockroom backroom
planogram assortment markdown shrink theft vendor buyer merchandise merchandising pricing margin volume banner
format footprint remodel flagship supercenter hypermarket convenience pharmacy optical bakery deli butcher florist
garden patio hardware lumber paint flooring kitchen bath bedding furniture mattress appliance television laptop
tablet console headphone speaker charger battery printer router camera drone smartwatch wearable sneaker jacket
denim dress shirt sweater handbag jewelry watch cosmetic fragrance skincare haircare vitamin supplement diaper
formula cereal coffee tea juice soda water beer wine spirits snack chip cookie candy chocolate bread pasta rice
flour sugar egg milk cheese yogurt butter chicken beef pork salmon shrimp apple banana avocado berry lettuce tomato
potato onion pepper lemon orange grape melon""".split()

STOP_FILL = "the of and to in a for on that with as by at from its is was are be has have will it this".split()

TEMPLATES = [
    "{C} said on {DAY} that {Ns} {Vd} {PCT} in the {PERIOD}, {X}.",
    "{C} {Vd} its {A} {N} {N} in {PL} as {Ns} {V} {X}.",
    "\u201c{Xcap},\u201d said {P}, {T} at {C}.",
    "Shares of {C} {UPDOWN} {PCT} on {DAY} after the company {Vd} {A} {Ns}.",
    "Analysts at {C} expect {N} {N} to {V} {R} through {YEAR} as {Ns} {V} {X}.",
    "The {A} {N} comes as {C} {Vs} {Ns} and {Ns} across {PL}.",
    "{C} now operates {NUM} {Ns} in {PL}, up from {NUM} a year earlier.",
    "The move puts {C} in {A} competition with {C} and {C} for {A} {Ns}.",
    "{P}, {T} of {C}, told investors the {N} would {V} {X}.",
    "According to a {A} survey by {C}, {PCT} of {Ns} plan to {V} {A} {Ns} this {SEASON}.",
    "{C} reported {A} {N} of {MONEY} for the {PERIOD}, {BEATMISS} estimates of {MONEY}.",
    "It is the {ORD} time this year that {C} has {Vd} its {N} {N}.",
    "{Ns} have {R} {Vd} {A} {Ns}, {X}.",
    "In {PL}, {C} is {Ving} {A} {Ns} that let {Ns} {V} {Ns} {R}.",
    "{C} did not respond to a request for comment on the {N}.",
    "The {N} {N} {Vd} {PCT} year over year to {MONEY}, the company said.",
    "Meanwhile, {C} {Vd} a {A} {N} with {C} to {V} {A} {Ns} in {PL}.",
    "{C} and {C} are both {Ving} {Ns} {X}.",
    "That {N} {Vs} {A} {Ns} for {Ns} who {V} {X}.",
    "{P} said {C} will {V} {NUM} {A} {Ns} by {YEAR}.",
    "The company also {Vd} plans to {V} its {N} {N} and {V} {A} {Ns}.",
    "{Xcap}, {P} wrote in a note to clients.",
    "Why {Ns} {V} {A} {Ns} matters for {C} is {X}.",
    "{C} {Vd} the {N} last {SEASON}, and {Ns} {Vd} {R}.",
    "Sales at stores open at least a year {UPDOWN} {PCT}, while {N} {N} {UPDOWN} {PCT}.",
    "{C}, which {Vs} {NUM} {Ns}, {Vd} {A} {N} in {MONTH}.",
    "For {Ns}, the {A} {N} means {A} {Ns} and {A} {Ns}.",
    "The {N} is part of a {A} push by {C} to {V} {Ns} {X}.",
    "{C} has {Vd} more than {MONEY} in {A} {N} since {YEAR}.",
    "Some {Ns} {V} that {A} {Ns} could {V} the {N} {X}.",
]
HEADLINES = [
    "{C} {Vs} {A} {N} {N} as {Ns} {V} {Ns}",
    "{C} and {C} {V} {A} {N} {N}",
    "Why {C} is {Ving} {Ns} in {PL}",
    "{C} {Vs} {PCT} {N} {N} in {PERIOD}",
    "{A} {Ns}: {C} {Vs} {N} {N}",
]
DAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
MONTHS = "January February March April May June July August September October November December".split()
SEASONS = "year quarter spring summer fall winter holiday-season back-to-school-season".split()
ORDINALS = "second third fourth fifth sixth".split()


@lru_cache(maxsize=None)
def _parsed(template: str) -> list[tuple[str, str | None]]:
    return [(lit, field) for lit, field, _, _ in string.Formatter().parse(template)]


def _zipf(items: list[str], s: float = 1.0, q: float = 2.7) -> tuple[list[str], list[float]]:
    """Items with Zipf-Mandelbrot cumulative weights, 1 / (rank + q) ** s, in list order."""
    items = list(dict.fromkeys(items))
    return items, list(itertools.accumulate(1.0 / (r + q) ** s for r in range(len(items))))


UNCOUNTABLE = {"sales", "revenue", "growth", "data", "logistics", "electronics", "earnings", "ecommerce", "ai",
               "inventory", "healthcare", "advertising", "produce", "meat", "dairy", "apparel", "clothing", "furniture",
               "real estate", "staffing", "labor", "freight", "content", "news", "research", "evidence", "information",
               "history", "music", "education", "health", "art", "oil", "love", "hair", "merchandise", "merchandising",
               "pricing", "rice", "flour", "sugar", "milk", "butter", "beef", "pork", "salmon", "shrimp", "lettuce",
               "shrink", "theft", "denim", "jewelry", "skincare", "haircare", "formula", "coffee", "tea", "juice",
               "soda", "water", "beer", "wine", "spirits", "bread", "pasta", "chicken", "cheese", "yogurt", "fashion",
               "luxury", "affordability", "convenience", "speed", "sustainability", "energy", "broadband", "connectivity",
               "software", "hardware", "insurance", "competition", "automation", "efficiency", "productivity"}


def _plural(n: str) -> str:
    if n in UNCOUNTABLE:
        return n
    if n.endswith(("s", "x", "ch", "sh")):
        return n + "es"
    if n.endswith("y") and n[-2:-1] not in "aeiou":
        return n[:-1] + "ies"
    return n + "s"


def _inflect(v: str) -> tuple[str, str, str]:
    """(third person, past, -ing)"""
    third = v + "es" if v.endswith(("s", "x", "ch", "sh")) else (v[:-1] + "ies" if v.endswith("y") and v[-2] not in "aeiou" else v + "s")
    if v in IRREGULAR:
        past = IRREGULAR[v]
    elif v.endswith("e"):
        past = v + "d"
    elif v.endswith("y") and v[-2] not in "aeiou":
        past = v[:-1] + "ied"
    else:
        past = v + "ed"
    ing = v[:-1] + "ing" if v.endswith("e") and not v.endswith("ee") else v + "ing"
    if v in {"plan", "ship", "drop", "tap", "top", "stop", "cut", "hit", "win", "begin"}:
        ing = v + v[-1] + "ing"
    return third, past, ing


def _dehyphen(words: list[str]) -> list[str]:
    return [w.replace("-", " ") if w not in {"same-day", "next-day", "two-day", "low-cost", "high-end", "mid-tier",
                                              "private-label", "cross-border"} else w for w in words]


def build_vocabulary() -> dict[str, tuple[list[str], list[float]]]:
    companies = REAL_COMPANIES + [a + " " + b for a in COMPANY_A for b in COMPANY_B]
    rnd = random.Random(7)
    synthetic = companies[len(REAL_COMPANIES):]
    rnd.shuffle(synthetic)
    people = [f + " " + l for f in FIRST for l in LAST]
    rnd.shuffle(people)
    nouns = _dehyphen(NOUNS)
    verbs = VERBS
    forms = [_inflect(v) for v in verbs]
    return {
        "C": _zipf(_dehyphen(REAL_COMPANIES) + synthetic, 1.1),
        "P": _zipf(people, 0.8),
        "T": _zipf(_dehyphen(TITLES)),
        "PL": _zipf(_dehyphen(PLACES)),
        "N": _zipf(nouns),
        "Ns": _zipf([_plural(n) for n in nouns]),
        "V": _zipf(verbs),
        "Vs": _zipf([f[0] for f in forms]),
        "Vd": _zipf([f[1] for f in forms]),
        "Ving": _zipf([f[2] for f in forms]),
        "A": _zipf(ADJECTIVES),
        "R": _zipf(ADVERBS),
        "G": _zipf(GENERAL + nouns + [_plural(n) for n in GENERAL[150:]] + ADJECTIVES, 1.05),
        "DAY": _zipf(DAYS, 0.3),
        "MONTH": _zipf(MONTHS, 0.2),
        "SEASON": _zipf(SEASONS, 0.7),
        "ORD": _zipf(ORDINALS),
    }


class CorpusGenerator:
    """Deterministic documents: ``document(i)`` depends only on the seed and ``i``."""

    def __init__(self, seed: int = 42) -> None:
        self.seed = seed
        self.vocab = build_vocabulary()

    def _pick(self, rnd: random.Random, slot: str) -> str:
        items, cum = self.vocab[slot]
        return items[bisect.bisect(cum, rnd.random() * cum[-1])]

    def _phrase(self, rnd: random.Random) -> str:
        """A free phrase of 6-16 Zipfian words, the bulk of the vocabulary's long tail."""
        return " ".join(self._pick(rnd, "G") for _ in range(rnd.randint(6, 16)))

    def _fill(self, rnd: random.Random, template: str) -> str:
        out: list[str] = []
        for lit, field in _parsed(template):
            out.append(lit)
            if field is None:
                continue
            if field == "X":
                out.append(self._phrase(rnd))
            elif field == "Xcap":
                p = self._phrase(rnd)
                out.append(p[0].upper() + p[1:])
            elif field == "PCT":
                out.append(f"{rnd.choice([rnd.randint(1, 60), round(rnd.uniform(0.1, 19.9), 1)])}%")
            elif field == "MONEY":
                out.append(rnd.choice([f"${round(rnd.uniform(1, 900), 1)} million", f"${round(rnd.uniform(1, 99), 2)} billion"]))
            elif field == "NUM":
                out.append(f"{rnd.choice([rnd.randint(2, 99), rnd.randint(100, 9999)]):,}")
            elif field == "YEAR":
                out.append(str(rnd.randint(2018, 2030)))
            elif field == "PERIOD":
                out.append(rnd.choice(["first quarter", "second quarter", "third quarter", "fourth quarter",
                                       "holiday quarter", "fiscal year", "first half", f"Q{rnd.randint(1, 4)} {rnd.randint(2019, 2026)}"]))
            elif field == "UPDOWN":
                out.append(rnd.choice(["rose", "fell", "jumped", "slipped", "climbed", "dropped", "gained"]))
            elif field == "BEATMISS":
                out.append(rnd.choice(["beating", "missing", "topping", "matching", "trailing"]))
            else:
                out.append(self._pick(rnd, field))
        s = "".join(out)
        return s[0].upper() + s[1:]

    def document(self, i: int) -> str:
        rnd = random.Random(self.seed * 1_000_003 + i)
        headline = self._fill(rnd, rnd.choice(HEADLINES))
        sentences = [self._fill(rnd, rnd.choice(TEMPLATES)) for _ in range(rnd.randint(11, 16))]
        paras, j = [], 0
        while j < len(sentences):
            n = rnd.randint(1, 3)
            paras.append(" ".join(sentences[j:j + n]))
            j += n
        return headline + "\n\n" + "\n\n".join(paras) + "\n"

    def write(self, directory: Path, n_docs: int, *, per_dir: int = 1000) -> int:
        """Write documents 0..n-1 as .txt files (1000 per sub-folder); return the bytes written."""
        total = 0
        for i in range(n_docs):
            sub = directory / f"{i // per_dir:04d}"
            if i % per_dir == 0:
                sub.mkdir(parents=True, exist_ok=True)
            data = self.document(i).encode("utf-8")
            (sub / f"doc{i:07d}.txt").write_bytes(data)
            total += len(data)
        return total


QUERIES = [
    "grocery delivery",
    "same-day prescription delivery",
    "Walmart pharmacy expansion",
    "How is Amazon using AI in its warehouses?",
    "what did analysts say about holiday sales",
    "tariffs on imported electronics",
    "Target store closures",
    "Why are shoppers trading down to private-label brands?",
    "retail media advertising revenue",
    "inventory levels and margins",
    "Costco membership fees",
    "Kroger Albertsons merger antitrust lawsuit",
    "the outlook for the next quarter",
    "who is the chief executive of Kroger",
    "drone delivery pilot",
    "loyalty program discounts",
    "Is Temu taking customers from Amazon?",
    "supply chain disruption",
    "curbside pickup",
    "layoffs and restructuring at Walgreens",
    "Shopify merchants checkout",
    "How much did online sales grow in the fourth quarter?",
    "satellite broadband connectivity",
    "where are the new stores opening",
    "fresh produce prices and inflation",
    "autonomous trucks",
    "What is the company doing about theft?",
    "Best Buy earnings forecast",
    "subscription service for the holidays",
    "is it a good time to buy a television",
]
