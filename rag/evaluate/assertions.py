"""The checks behind each assertion type: pure functions from (assertion, output) to a result.

Text comparisons fold curly quotes, dashes and whitespace runs (an article's ``Amazon’s`` matches a
suite's ``Amazon's``); only the ``i``-variants ignore case. Citations are re-checked against the
document text itself: the quote must be exactly the text at ``[start:end)``.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from fnmatch import fnmatch
from typing import Any

from pydantic import BaseModel, ValidationError

from ..normalize import TABLE, normalize
from ..types import SCHEMAS, Answer, Briefing, Citation, Hit, OrganisationProfile, StrategySummary
from . import suite as s


class AssertionResult(BaseModel):
    """One assertion's outcome. ``passed`` is None when it was skipped (e.g. llm-rubric offline)."""

    type: str
    expected: Any = None
    actual: Any = None
    passed: bool | None
    weight: float = 1.0
    message: str = ""
    turn: int | None = None
    implicit: bool = False


def fold(text: str) -> str:
    """Quotes, dashes and whitespace made uniform; case kept."""
    return " ".join(unicodedata.normalize("NFKC", text).translate(TABLE).split())


def source_matches(source: str, pattern: str) -> bool:
    """A source path against an exact path, a directory prefix (``seeds/``) or a glob (``water/*.txt``)."""
    if any(ch in pattern for ch in "*?["):
        return fnmatch(source, pattern)
    prefix = pattern.rstrip("/")
    return source == prefix or source.startswith(prefix + "/")


def _result(a: s.Assertion, passed: bool | None, actual: Any, message: str = "", **extra: Any) -> AssertionResult:
    return AssertionResult(type=a.type, expected=a.expected, actual=actual, passed=passed, weight=a.weight,
                           message=message, **extra)


def excerpt(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ------------------------------------------------------------------ answers (qa, chat turns)
def _text_check(a: s.Assertion, text: str) -> tuple[bool, str]:
    plain, lower = fold(text), fold(text).casefold()

    def has(needle: str, ignore_case: bool = False) -> bool:
        return (fold(needle).casefold() in lower) if ignore_case else (fold(needle) in plain)

    if isinstance(a, s.Contains):
        return has(a.contains), ""
    if isinstance(a, s.IContains):
        return has(a.icontains, True), ""
    if isinstance(a, (s.ContainsAny, s.IContainsAny)):
        needles, ic = (a.contains_any, False) if isinstance(a, s.ContainsAny) else (a.icontains_any, True)
        return any(has(n, ic) for n in needles), ""
    if isinstance(a, (s.ContainsAll, s.IContainsAll)):
        needles, ic = (a.contains_all, False) if isinstance(a, s.ContainsAll) else (a.icontains_all, True)
        missing = [n for n in needles if not has(n, ic)]
        return not missing, f"missing: {', '.join(missing)}" if missing else ""
    if isinstance(a, s.NotContains):
        return not has(a.not_contains), ""
    if isinstance(a, s.NotIContains):
        return not has(a.not_icontains, True), ""
    if isinstance(a, s.Regex):
        return re.search(a.regex, text) is not None, ""
    raise TypeError(a.type)  # pragma: no cover


TEXT_TYPES = (s.Contains, s.IContains, s.ContainsAny, s.ContainsAll, s.IContainsAny, s.IContainsAll, s.NotContains,
              s.NotIContains, s.Regex)


def check_answer(a: s.Assertion, answer: Answer, *, turn: int | None = None) -> AssertionResult:
    """Text, refusal and citation assertions against one verified Answer."""
    cits = answer.citations
    sources = sorted({c.source for c in cits})
    if isinstance(a, TEXT_TYPES):
        passed, message = _text_check(a, answer.answer)
        return _result(a, passed, excerpt(answer.answer), message, turn=turn)
    if isinstance(a, s.Refused):
        why = f"refusal reason: {answer.refusal_reason}" if answer.refused else ""
        return _result(a, answer.refused == a.refused, answer.refused, why, turn=turn)
    if isinstance(a, s.CitesSource):
        return _result(a, any(source_matches(c.source, a.cites_source) for c in cits), sources, turn=turn)
    if isinstance(a, s.CitesOnly):
        stray = sorted({c.source for c in cits if not source_matches(c.source, a.cites_only)})
        return _result(a, not stray, sources, f"also cites: {', '.join(stray)}" if stray else "", turn=turn)
    if isinstance(a, s.CitesQuoteContaining):
        needle = fold(a.cites_quote_containing).casefold()
        return _result(a, any(needle in fold(c.quote).casefold() for c in cits), [excerpt(c.quote, 160) for c in cits],
                       turn=turn)
    if isinstance(a, s.CitesQuoteContainingAny):
        needles = [fold(n).casefold() for n in a.cites_quote_containing_any]
        return _result(a, any(n in fold(c.quote).casefold() for c in cits for n in needles),
                       [excerpt(c.quote, 160) for c in cits], turn=turn)
    if isinstance(a, s.MinCitations):
        return _result(a, len(cits) >= a.min_citations, len(cits), turn=turn)
    if isinstance(a, s.NoUnsupported):
        return _result(a, not answer.flags, answer.flags, turn=turn)
    if isinstance(a, s.StandaloneContains):
        standalone = answer.standalone_question or answer.question
        return _result(a, fold(a.standalone_contains).casefold() in fold(standalone).casefold(), standalone, turn=turn)
    raise TypeError(f"{a.type} is not an answer assertion")  # pragma: no cover


# ------------------------------------------------------------------ citations, schemas
def citation_problem(c: Citation, document_text: str | None) -> str | None:
    """Why a citation is not verbatim at its span (None when it is). ``" ... "`` joins ordered fragments."""
    if document_text is None:
        return f"{c.source}: document is not in the index"
    if c.start is None or c.end is None:
        return f"{c.source}: citation has no span"
    if not 0 <= c.start < c.end <= len(document_text):
        return f"{c.source}: span [{c.start}:{c.end}) is outside the document"
    span = document_text[c.start:c.end]
    if span == c.quote:
        return None
    parts = c.quote.split(" ... ")
    if len(parts) > 1 and span.startswith(parts[0]) and span.endswith(parts[-1]):
        pos = 0
        for part in parts:
            pos = span.find(part, pos)
            if pos < 0:
                break
            pos += len(part)
        else:
            return None
    return f"{c.source}[{c.start}:{c.end}) is {excerpt(span, 80)!r}, not the quote {excerpt(c.quote, 80)!r}"


def check_citations(citations: Sequence[Citation], text_of: Callable[[Citation], str | None],
                    *, weight: float = 1.0, turn: int | None = None, implicit: bool = True) -> tuple[AssertionResult, int]:
    """The always-on verbatim check; also returns how many citations were valid."""
    problems = [p for c in citations if (p := citation_problem(c, text_of(c)))]
    valid = len(citations) - len(problems)
    result = AssertionResult(type="citations-verbatim", expected=True, actual=f"{valid}/{len(citations)} verbatim",
                             passed=not problems, weight=weight, message="; ".join(problems[:3]), turn=turn,
                             implicit=implicit)
    return result, valid


def check_schema(a: s.SchemaValid, outputs: Sequence[BaseModel], *, turn: int | None = None) -> AssertionResult:
    model = SCHEMAS[a.schema_]
    for output in outputs:
        try:
            model.model_validate(output.model_dump(mode="json"))
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            return _result(a, False, f"{type(output).__name__}", f"{where}: {first['msg']}", turn=turn)
    return _result(a, True, ", ".join(sorted({type(o).__name__ for o in outputs})), turn=turn)


# ------------------------------------------------------------------ summaries
def summary_items(summary: StrategySummary) -> dict[str, list[str]]:
    orgs = summary.organisations
    return {
        "players": [o.name for o in orgs],
        "models": [t.text for o in orgs for t in o.thesis],
        "moves": [m.text for o in orgs for m in o.moves] + [r.text for o in orgs for r in o.results]
        + [f.text for o in orgs for f in o.figures] + [f"{p.name} {p.role}" for o in orgs for p in o.people],
        "themes": [t.text for t in summary.themes] + [t.text for t in summary.timeline],
        "implications": [i.text for i in summary.implications] + [q.text for q in summary.open_questions],
    }


def briefing_items(briefing: Briefing) -> list[str]:
    orgs = briefing.organisations
    return ([i.text for i in briefing.executive_summary] + [o.name for o in orgs] + [t.text for o in orgs for t in o.thesis]
            + [m.text for o in orgs for m in o.moves] + [r.text for o in orgs for r in o.results]
            + [f.text for o in orgs for f in o.figures] + [f"{p.name} {p.role}" for o in orgs for p in o.people]
            + [c.text for c in briefing.contrasts] + [t.text for t in briefing.timeline] + [t.text for t in briefing.themes]
            + [i.text for i in briefing.implications] + [q.text for q in briefing.open_questions])


def coverage(points: Sequence[str], summaries: Sequence[StrategySummary | Briefing]) -> list[str]:
    """The points that appear (case-insensitive) in no item of the summaries (or briefings)."""
    texts = [normalize(t) for summary in summaries
             for t in (briefing_items(summary) if isinstance(summary, Briefing)
                       else [x for items in summary_items(summary).values() for x in items])]
    return [p for p in points if not any(normalize(p) in t for t in texts)]


def check_summary(a: s.Assertion, summaries: Sequence[StrategySummary]) -> AssertionResult:
    if isinstance(a, s.Covers):
        missing = coverage(a.covers, summaries)
        covered = len(a.covers) - len(missing)
        why = f"missing: {', '.join(missing)}" if missing else ""
        return _result(a, not missing, f"{covered}/{len(a.covers)} covered", why)
    if isinstance(a, s.HasPlayers):
        names = [o.name for summary in summaries for o in summary.organisations]
        missing = [n for n in a.has_players if not any(normalize(n) == normalize(m) for m in names)]
        return _result(a, not missing, names, f"missing: {', '.join(missing)}" if missing else "")
    if isinstance(a, s.MaxItems):
        over: list[str] = []
        counts: dict[str, int] = {}
        for summary in summaries:
            orgs = summary.organisations
            counts = {
                "items": sum(len(o.thesis) + len(o.moves) + len(o.results) for o in orgs) + len(summary.themes)
                + len(summary.implications) + len(summary.open_questions),
                "players": len(orgs),
                "moves": max((len(o.moves) for o in orgs), default=0),
                "themes": len(summary.themes),
                "implications": len(summary.implications),
            }
            over += [f"{summary.doc_id}: {k} {counts[k]} > {limit}" for k, limit in a.max_items.items() if counts[k] > limit]
        return _result(a, not over, counts if len(summaries) == 1 else "see message", "; ".join(over))
    raise TypeError(f"{a.type} is not a summary assertion")  # pragma: no cover


# ------------------------------------------------------------------ briefings
def _key(text: str) -> str:
    return " ".join(fold(text).lower().split())


def section_for(briefing: Briefing, names: Sequence[str]) -> OrganisationProfile | None:
    """The organisation section a reader would look under: one named (or aliased) as any of ``names``."""
    wanted = {_key(n) for n in names}
    by_name = [o for o in briefing.organisations if _key(o.name) in wanted]
    if by_name:
        return by_name[0]
    return next((o for o in briefing.organisations if wanted & {_key(x) for x in o.aliases}), None)


def markdown_sentences(markdown: str) -> list[str]:
    """The sentences a reader sees in a briefing's Markdown: body only (footnotes left out), markup and citation
    marks removed, table cells as text, fragments of fewer than four words left out."""
    body = markdown.split("\n---\n", 1)[0]
    out = []
    for line in body.splitlines():
        line = re.sub(r"\[\^\d+\]", "", line)
        if re.fullmatch(r"\s*\|?[\s:|-]*\|?\s*", line) or line.startswith("#"):
            continue
        line = re.sub(r"\\(.)", r"\1", line.replace("**", "").replace("*", "")).replace("&amp;", "&")
        for cell in line.strip(" |-").split(" | "):
            for sentence in re.split(r"(?<=[.!?])\s+(?=[A-Z\"“])", cell):
                # Four words or more, two of them lowercase: a sentence or clause, not a name ("Arlen Rural Credit Agency").
                if len(sentence.split()) >= 4 and sum(w[:1].islower() for w in sentence.split()) >= 2:
                    out.append(_key(sentence.strip(" .")))
    return out


def repeated_share(markdown: str) -> tuple[float, list[str]]:
    sentences = markdown_sentences(markdown)
    if not sentences:
        return 0.0, []
    counts = Counter(sentences)
    repeated = [x for x in sentences if counts[x] > 1]
    return round(len(repeated) / len(sentences), 4), sorted(set(repeated))


def ungrounded_figures(markdown: str, source_text: str) -> list[str]:
    """Figures in the body of briefing.md that no source states (citation marks and footnotes left out)."""
    from ..language import figure_supported, figures

    body = re.sub(r"\[\^\d+\]", "", markdown.split("\n---\n", 1)[0])
    body = re.sub(r"\\(.)", r"\1", body)
    body = re.sub(r"\S*/\S*|\S+\.(?:txt|md|markdown|pdf|html?|docx|jsonl?|csv)\b", " ", body)  # file names name sources
    return sorted({f.text for f in figures(body, words=False) if not figure_supported(f, source_text)})


def check_briefing(a: s.Assertion, briefing: Briefing, markdown: str, case: s.BriefingCase) -> AssertionResult:
    if isinstance(a, s.OrganisationAssert):
        org = a.organisation
        section = section_for(briefing, org.names())
        if section is None:
            return _result(a, False, [o.name for o in briefing.organisations], f"no section for {org.name}")
        thesis = _key(" ".join(t.text for t in section.thesis))
        missing = [group for group in org.thesis if not any(_key(p) in thesis for p in group)]
        why = "thesis lacks " + "; ".join("/".join(g) for g in missing) if missing else ""
        return _result(a, not missing, section.name, why + (f" (strategy items: {len(section.thesis)})" if missing else ""))
    if isinstance(a, s.FigureAssert):
        org = case.organisation(a.figure.organisation)
        section = section_for(briefing, org.names())
        value = _key(a.figure.value)
        if section is None:
            return _result(a, False, None, f"no section for {org.name}")
        found = any(value in _key(f.value) or value in _key(f.text) for f in section.figures)
        elsewhere = [o.name for o in briefing.organisations if o is not section
                     and any(value in _key(f.value) or value in _key(f.text) for f in o.figures)]
        return _result(a, found, section.name, "" if found else f"not among its figures" + (
            f"; listed under {', '.join(elsewhere)}" if elsewhere else ""))
    if isinstance(a, s.NoSection):
        bad = {_key(n) for n in a.no_section}
        hits = [o.name for o in briefing.organisations if _key(o.name) in bad]
        return _result(a, not hits, hits, f"sections for: {', '.join(hits)}" if hits else "")
    if isinstance(a, s.MaxRepeated):
        share, repeated = repeated_share(markdown)
        return _result(a, share <= a.max_repeated + 1e-9, share, "; ".join(r[:60] for r in repeated[:3]))
    if isinstance(a, s.TimelineEvent):
        evidence = _key(a.timeline_event.evidence)
        hit = any(evidence in _key(c.quote) or _key(c.quote) in evidence for e in briefing.timeline for c in e.citations)
        return _result(a, hit, len(briefing.timeline), "" if hit else "no timeline entry from that sentence")
    if isinstance(a, s.OpenQuestion):
        evidence = _key(a.open_question)
        hit = any(evidence in _key(c.quote) or _key(c.quote) in evidence for q in briefing.open_questions for c in q.citations)
        return _result(a, hit, len(briefing.open_questions), "" if hit else "no open question cites that sentence")
    if isinstance(a, s.Covers):
        missing = coverage(a.covers, [briefing])
        return _result(a, not missing, f"{len(a.covers) - len(missing)}/{len(a.covers)} covered",
                       f"missing: {', '.join(missing)}" if missing else "")
    raise TypeError(f"{a.type} is not a briefing assertion")  # pragma: no cover


# ------------------------------------------------------------------ retrieval
def hit_matches(hit: Hit, expect: s.Expect) -> bool:
    if expect.chunk and hit.chunk.id != expect.chunk:
        return False
    if expect.source and not source_matches(hit.source, expect.source):
        return False
    return not expect.quote or normalize(expect.quote) in normalize(hit.chunk.text)


def first_rank(hits: Sequence[Hit], expect: s.Expect) -> int | None:
    return next((h.rank for h in hits if hit_matches(h, expect)), None)


def check_retrieval(a: s.Assertion, hits: Sequence[Hit], rank: int | None) -> AssertionResult:
    if isinstance(a, s.HitAt):
        return _result(a, rank is not None and rank <= a.hit_at, rank, "" if rank else f"not in the top {len(hits)}")
    if isinstance(a, s.TopSource):
        top = hits[0].source if hits else None
        return _result(a, top is not None and source_matches(top, a.top_source), top)
    raise TypeError(f"{a.type} is not a retrieval assertion")  # pragma: no cover


# ------------------------------------------------------------------ scoring
def case_score(results: Sequence[AssertionResult], threshold: float) -> tuple[str, float | None]:
    """(status, weighted score): skipped assertions leave the denominator; a bad citation always fails.

    A case whose own assertions were all skipped is skipped, even though the implicit citation check ran.
    """
    counted = [r for r in results if r.passed is not None]
    gate_failed = any(r.type == "citations-verbatim" and r.passed is False for r in counted)
    declared = [r for r in results if not r.implicit]
    if not counted or (declared and all(r.passed is None for r in declared) and not gate_failed):
        return "skipped", None
    score = sum(r.weight for r in counted if r.passed) / sum(r.weight for r in counted)
    return ("pass" if score >= threshold - 1e-9 and not gate_failed else "fail"), round(score, 4)
