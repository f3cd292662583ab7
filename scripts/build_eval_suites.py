"""Build the blind-written eval suites from the question files in evals/data/.

The question files were written by helpers who saw only the documents and a brief (plain analyst
language, paraphrase, traps, unanswerable questions), never the engine. This script turns them into
`rag eval` suites, split into a development half (tuned on) and a held-out half (never tuned on):

    python scripts/build_eval_suites.py          # writes evals/qa_dev.yaml, evals/qa_heldout.yaml, ...
    python scripts/build_eval_suites.py --check  # exit 1 if the committed suites differ from what it would write

It also reports the mean word overlap between each answerable question and its evidence (share of
the question's content words, stemmed, that occur in the evidence), the measure the offline-answers
issue asks to keep at or below 0.85.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "evals" / "data"
EVALS = ROOT / "evals"

# Corpus-level split: a held-out corpus is one the engine was never tuned on. Each half has business
# news, a public-sector or company document and real technical documentation.
DEV = ["bank-news", "annual-report", "city-health", "tech-accounts", "airline-news"]
HELDOUT = ["transit-public", "media-news", "energy-news", "tech-packaging", "pharma-news"]
SEED = "seed-blind"  # split by question: odd numbers tune, even numbers are held out

# Syndication lines ("Read more: ...", "The post ... appeared first on ...") are kept out of retrieval by
# design: they link to other articles. Questions answered only from them expect a refusal.
FROM_BOILERPLATE = {"seed-blind-15", "seed-blind-chat-05"}

# Briefing corpora (evals/data/brief*-*.yaml, written blind from a brief on what a strategy briefing holds): the
# dev ones tune the offline summary engine, the held-out ones never do; each half has corpora of several
# documents about the same organisations over time.
# A second round (brief2-*) was written later from the same brief, asked to vary how strategies are stated; a third
# (brief3-*) asked to vary it further, and how open questions are raised (measured once before any tuning on it).
BRIEF_DEV = ["brief-telecom", "brief-fooddelivery", "brief-chips", "brief-insurance", "brief-timeline-grocer",
             "brief2-airports", "brief2-farmmachinery", "brief2-hospitals", "brief2-steel",
             "brief3-windturbines", "brief3-petfood", "brief3-newspapers", "brief3-watches",
             "brief4-hotels", "brief4-dairy", "brief4-semirecruiting", "brief4-timeline-airline",
             "brief5-logistics", "brief6-bookstores",
             "brief7-coffee", "brief7-cosmetics", "brief7-evcharging", "brief7-timeline-gyms",
             "brief8-cinemas", "brief8-carrental", "brief8-resale", "brief8-timeline-mealkits",
             "brief9-sportswear", "brief9-timeline-satellite", "brief9-ferries", "brief9-housebuilders",
             "brief10-buses", "brief10-bakeries", "brief10-dental", "brief10-timeline-brewery",
             "brief11-cruises", "brief11-chocolate", "brief11-themeparks", "brief11-timeline-tyres",
             "brief12-bicycles", "brief12-funerals", "brief12-eyewear", "brief12-timeline-papermill",
             "brief13-furniture", "brief13-vetclinics", "brief13-agriseeds", "brief13-timeline-deptstore"]
BRIEF_HELDOUT = ["brief-autos", "brief-cloud", "brief-consumer", "brief-shipping", "brief-timeline-pharmacy",
                 "brief2-streaming", "brief2-banking", "brief4-cement", "brief4-games", "brief5-insurtech", "brief6-solar",
                 "brief7-freightrail", "brief7-toys", "brief8-water", "brief8-fertiliser",
                 "brief9-hearingaids", "brief9-verticalfarming", "brief10-wine", "brief10-coworking",
                 "brief11-languageapps", "brief11-parcellockers", "brief12-recycling", "brief12-skiresorts",
                 "brief13-elevators", "brief13-meatalternatives"]
MAX_REPEATED = 0.10  # share of a briefing's sentences that may appear twice (the briefings issue's target)

# Set just below the measured results of the offline engine (the closing note of the offline-answers issue
# records them): a drop fails CI. They are floors, not the targets.
THRESHOLDS = {
    # Measured after issues 10 (part 2) and 13 together: qa_dev 0.55 / 0.50 / 0.64 (pass rate / answer accuracy /
    # refusal recall), chat_dev 0.22 / 0.47 / 0.60, qa_heldout 0.48 / 0.44 / 0.56, chat_heldout 0 / 0.48 / 0.44,
    # qa_distractors 0.47 / 0.39 / 0.62.
    "qa_dev": {"min_pass_rate": 0.53, "min_answer_accuracy": 0.49, "min_refusal_recall": 0.61, "min_citation_validity": 1.0},
    "qa_heldout": {"min_pass_rate": 0.46, "min_answer_accuracy": 0.42, "min_refusal_recall": 0.53,
                   "min_citation_validity": 1.0},
    "chat_dev": {"min_pass_rate": 0.2, "min_answer_accuracy": 0.46, "min_refusal_recall": 0.58, "min_citation_validity": 1.0},
    "chat_heldout": {"min_pass_rate": 0.0, "min_answer_accuracy": 0.45, "min_refusal_recall": 0.42,
                     "min_citation_validity": 1.0},
    # Floors just below what the offline engine measured at the end of stop 21 (rounds 12-13 of blind corpora added:
    # 47 dev / 25 held-out corpora): briefing_dev 0.98 pass / 0.90 thesis / 0.87 figures / 13 false sections / 0.094
    # repeated (the worst briefing) / 0.90 timeline / 0.61 open questions; briefing_heldout 0.92 / 0.74 / 0.81 / 10 /
    # 0.089 / 0.91 / 0.40. Measured on each round before any change for it: thesis 0.33 (round 8), 0.73 (round 9),
    # 0.43 (round 10), 0.53 (round 11), 0.88 (round 12), 0.82 (round 13).
    "briefing_dev": {"min_pass_rate": 0.95, "min_citation_validity": 1.0, "min_thesis_recall": 0.89,
                     "min_figure_placement": 0.85, "max_false_sections": 14, "max_repeated_share": 0.1,
                     "min_timeline_recall": 0.89, "min_open_question_recall": 0.59},
    "briefing_heldout": {"min_pass_rate": 0.9, "min_citation_validity": 1.0, "min_thesis_recall": 0.72,
                         "min_figure_placement": 0.79, "max_false_sections": 11, "max_repeated_share": 0.1,
                         "min_timeline_recall": 0.9, "min_open_question_recall": 0.38},
    "qa_distractors": {"min_pass_rate": 0.45, "min_answer_accuracy": 0.37, "min_refusal_recall": 0.6,
                       "min_citation_validity": 1.0},
    # Measured with the BM25 postings (issue 13): hit@10 0.48, hit@1 0.16, hit@5 0.41, MRR 0.26 (FTS5 before it:
    # 0.49, 0.17, 0.40, 0.27). The misses are mostly questions in other words than the passage's.
    "retrieval_pydocs": {"min_pass_rate": 0.45, "min_hit_at_1": 0.13, "min_hit_at_5": 0.38, "min_mrr": 0.23},
}
PYDOCS = "pydocs-retrieval"  # retrieval queries over the Python docs sources (Debian python3.11-doc)


def _load(name: str) -> dict:
    return yaml.safe_load((DATA / f"{name}.yaml").read_text(encoding="utf-8"))


def _corpus_paths(name: str) -> list[str]:
    return ["seeds/"] if name == SEED else [f"evals/corpora/{name}/"]


def _source_glob(name: str) -> str:
    return "seeds/" if name == SEED else f"{name}/"


def _answer_asserts(item: dict, corpus: str) -> list:
    if not item.get("answerable", True):
        return [{"refused": True}]
    out: list = [{"refused": False}]
    for group in item.get("answers") or []:
        alternatives = [str(a) for a in group]
        out.append({"icontains-any": alternatives})
        out.append({"cites-quote-containing-any": alternatives})
    for wrong in item.get("wrong") or []:
        out.append({"not-icontains": str(wrong)})
    out.append({"cites-only": _source_glob(corpus)})
    return out


def _tags(item: dict) -> list[str]:
    tags = [f"intent:{item['intent']}"] if item.get("intent") else []
    tags += [f"style:{s}" for s in item.get("style") or []]
    tags.append("answerable" if item.get("answerable", True) else "unanswerable")
    return tags


def _flip_boilerplate(item: dict) -> dict:
    return {**item, "answerable": False, "missing": "answered only by a syndication link (boilerplate by design)"}


def _seed_half(item_id: str, half: str) -> bool:
    number = int(re.search(r"(\d+)$", item_id).group(1))
    return (number % 2 == 1) == (half == "dev")


def qa_cases(names: list[str], half: str) -> list[dict]:
    cases = []
    for name in names:
        data = _load(name)
        for q in data["questions"]:
            if name == SEED and not _seed_half(q["id"], half):
                continue
            item = _flip_boilerplate(q) if q["id"] in FROM_BOILERPLATE else q
            cases.append({"id": q["id"], "kind": "qa", "corpus": name, "question": q["question"],
                          "tags": _tags(item), "assert": _answer_asserts(item, name)})
    return cases


def chat_cases(names: list[str], half: str) -> list[dict]:
    cases = []
    for name in names:
        for conv in _load(name).get("conversations") or []:
            if name == SEED and not _seed_half(conv["id"], half):
                continue
            turns = []
            for turn in conv["turns"]:
                item = _flip_boilerplate(turn) if conv["id"] in FROM_BOILERPLATE and turn.get("answerable") else turn
                turns.append({"question": turn["question"], "assert": _answer_asserts(item, name)})
            cases.append({"id": conv["id"], "kind": "chat", "corpus": name, "turns": turns})
    return cases


# ------------------------------------------------------------------ word overlap
_WORD = re.compile(r"[^\W_]+")
_STOP = set("""a an the and or but if of in on at by for from to with into about as is are was were be been being do does
did has have had will would can could should may might must what which who whom whose when where why how this that
these those it its they them their there here i you we he she his her our your my me us please tell explain briefly
simple terms know like would could give list name say says said mention mentioned any some all more most much many
not no yes so than then also just only very""".split())


def overlap(question: str, evidence: list[str]) -> float | None:
    import Stemmer

    stem = Stemmer.Stemmer("english").stemWord
    words = {stem(w) for w in _WORD.findall(question.lower()) if w not in _STOP and len(w) > 1}
    if not words:
        return None
    have = {stem(w) for w in _WORD.findall(" ".join(evidence).lower())}
    return len(words & have) / len(words)


def overlap_report(names: list[str], half: str) -> tuple[float, int]:
    values = []
    for name in names:
        data = _load(name)
        items = [q for q in data["questions"] if name != SEED or _seed_half(q["id"], half)]
        for conv in data.get("conversations") or []:
            if name != SEED or _seed_half(conv["id"], half):
                items += conv["turns"][:1]  # follow-ups lean on the conversation, not on their own words
        for q in items:
            if q.get("answerable", True) and q.get("evidence"):
                value = overlap(q["question"], q["evidence"])
                if value is not None:
                    values.append(value)
    return (sum(values) / len(values) if values else 0.0), len(values)


# ------------------------------------------------------------------ suites
def suite(name: str, description: str, corpora: dict[str, list[str]], cases: list[dict]) -> dict:
    return {"name": name, "description": description, "corpora": corpora, "thresholds": THRESHOLDS[name], "cases": cases}


def briefing_case(name: str) -> dict:
    data = _load(name)
    asserts: list = []
    for org in data["organisations"]:
        asserts.append({"organisation": {"name": org["name"], "aliases": list(org.get("aliases") or []),
                                         "thesis": [[str(x) for x in group] for group in org.get("strategy_keys") or []]},
                        "weight": 3.0})
    for org in data["organisations"]:
        for fig in org.get("figures") or []:
            asserts.append({"figure": {"value": str(fig["value"]), "organisation": org["name"]}, "weight": 0.5})
    if data.get("not_sections"):
        asserts.append({"no-section": [str(x) for x in data["not_sections"]], "weight": 3.0})
    asserts.append({"max-repeated": MAX_REPEATED, "weight": 2.0})
    for event in data.get("timeline") or []:
        asserts.append({"timeline-event": {"evidence": str(event["evidence"]), "date": str(event["date"])}, "weight": 0.5})
    for q in data.get("open_questions") or []:
        asserts.append({"open-question": str(q["evidence"]), "weight": 1.0})
    return {"id": name.removeprefix("brief-"), "kind": "briefing", "corpus": name,
            "description": f"{data['domain']}: {len(data['organisations'])} organisations, {len(data['documents'])} document(s).",
            "threshold": 0.6, "assert": asserts}


def build() -> dict[str, dict]:
    halves = {"dev": DEV + [SEED], "heldout": HELDOUT + [SEED]}
    out = {}
    for half, names in halves.items():
        mean, n = overlap_report(names, half)
        note = (f"Blind-written ({half} half; mean question/evidence word overlap {mean:.2f} over {n} answerable "
                f"questions). Generated by scripts/build_eval_suites.py from evals/data/; edit those files, then re-run it.")
        corpora = {n_: _corpus_paths(n_) for n_ in names}
        out[f"qa_{half}"] = suite(f"qa_{half}", "Questions in analysts' own words. " + note, corpora, qa_cases(names, half))
        out[f"chat_{half}"] = suite(f"chat_{half}", "Conversations with terse follow-ups. " + note, corpora,
                                   chat_cases(names, half))
    # Every question again, each corpus indexed together with 50 unrelated documents: no answer may come from them.
    all_names = DEV + HELDOUT + [SEED]
    mixed = {f"{n_}-distractors": _corpus_paths(n_) + ["evals/corpora/distractors/"] for n_ in all_names}
    cases = [c | {"corpus": f"{c['corpus']}-distractors"}
             for c in qa_cases(DEV + [SEED], "dev") + qa_cases(HELDOUT + [SEED], "heldout")]
    out["retrieval_pydocs"] = pydocs_suite()
    out["qa_distractors"] = suite("qa_distractors", "Every blind-written question, each corpus indexed together with 50 "
                                  "unrelated documents (evals/corpora/distractors/): citations must come from the "
                                  "question's own corpus.", mixed, cases)
    for half, names in (("dev", BRIEF_DEV), ("heldout", BRIEF_HELDOUT)):
        corpora = {n_: [f"evals/corpora/{n_}/"] for n_ in names}
        out[f"briefing_{half}"] = suite(
            f"briefing_{half}", f"Briefings over multi-organisation news corpora ({half} half), expectations written blind "
            "(organisations with their stated strategies, key figures, names that are not organisations, dated events, "
            "open questions). Generated by scripts/build_eval_suites.py from evals/data/brief-*.yaml.",
            corpora, [briefing_case(n_) for n_ in names])
    return out


def pydocs_suite() -> dict:
    """Retrieval over real technical documentation: the chunk holding the passage the query was written from."""
    data = _load(PYDOCS)
    corpus = data["corpus"]
    root = corpus.rstrip("/").rsplit("/", 1)[-1] + "/"  # sources are relative to the corpus folder's parent
    cases = [{"id": q["id"], "kind": "retrieval", "query": q["query"], "tags": [f"style:{q['style']}"],
              "expect": {"source": root + q["source"], "quote": q["passage"]}, "assert": [{"hit-at": 10}]}
             for q in data["queries"]]
    return {"name": "retrieval_pydocs",
            "description": "BM25 retrieval over the Python 3.11 documentation sources: queries written blind from a "
                           "passage (keyword, question and hard styles); the chunk holding the passage must rank in the "
                           "top 10. Generated by scripts/build_eval_suites.py from evals/data/pydocs-retrieval.yaml.",
            "corpora": {"pydocs": [corpus]}, "corpus": "pydocs", "thresholds": THRESHOLDS["retrieval_pydocs"],
            "requires": [corpus], "requires_hint": "apt-get install python3.11-doc", "cases": cases}


HEADER = "# Generated by scripts/build_eval_suites.py from evals/data/ (blind-written); do not edit by hand.\n"


def render(data: dict) -> str:
    return HEADER + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a committed suite is out of date")
    args = parser.parse_args(argv)
    stale = []
    for name, data in build().items():
        path = EVALS / f"{name}.yaml"
        text = render(data)
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"{path.relative_to(ROOT)}: {len(data['cases'])} cases; {data['description'][:140]}")
    if stale:
        print(f"out of date: {', '.join(stale)} (run python scripts/build_eval_suites.py)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
