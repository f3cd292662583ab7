"""Metrics over case results, suite thresholds, and the case-by-case comparison with a baseline.

Pure functions. A metric with nothing to measure (no retrieval case, no refusal predicted) is
None: shown as n/a and never gated.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, Field

from .runner import CaseResult
from .suite import KINDS, Thresholds

PASSING = frozenset({"pass", "xpass"})
FAILING = frozenset({"fail", "error"})


class Metrics(BaseModel):
    cases: int = 0
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    xfail: int = 0
    xpass: int = 0
    pass_rate: float | None = None
    answer_accuracy: float | None = Field(None, description="Questions expected to be answered whose checks all pass.")
    refusal_precision: float | None = Field(None, description="Refusals that were expected.")
    refusal_recall: float | None = Field(None, description="Expected refusals that happened.")
    citation_validity: float | None = Field(None, description="Citations whose quote is the text at their span.")
    citations: int = 0
    citations_dropped: int = Field(0, description="Citations the grounding layer dropped before the answer.")
    hit_at_1: float | None = None
    hit_at_5: float | None = None
    mrr: float | None = Field(None, description="Mean reciprocal rank of the expected chunk (0 when not retrieved).")
    summary_coverage: float | None = Field(None, description="Listed points found in some summary item.")
    thesis_recall: float | None = Field(None, description="Briefings: expected organisations whose section states their thesis.")
    figure_placement: float | None = Field(None, description="Briefings: expected figures listed under their organisation.")
    false_sections: int | None = Field(None, description="Briefings: sections named after a person, title or common word.")
    repeated_share: float | None = Field(None, description="Briefings: the worst share of repeated sentences.")
    timeline_recall: float | None = None
    open_question_recall: float | None = None
    mean_latency_ms: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = 0.0


def _ratio(num: float, den: float) -> float | None:
    return round(num / den, 4) if den else None


def compute_metrics(results: Iterable[CaseResult]) -> Metrics:
    results = list(results)
    status = Counter(r.status for r in results)
    runs = [m for r in results for m in r.measures]
    units = [u for m in runs for u in m.answers]
    answerable = [u for u in units if u.expected_refused is False]
    judged = [u for u in units if u.expected_refused is not None]
    tp = sum(u.refused and u.expected_refused for u in judged)
    predicted = sum(u.refused for u in judged)
    expected = sum(bool(u.expected_refused) for u in judged)
    ranked = [m for r in results if r.kind == "retrieval" for m in r.measures]
    citations = sum(m.citations for m in runs)
    points = sum(m.points for m in runs)
    costs = [r.usage.cost_usd for r in results if r.usage.calls]  # no call, nothing spent
    counted = status["pass"] + status["xpass"] + status["fail"] + status["error"] + status["xfail"]
    return Metrics(
        cases=len(results), passed=status["pass"], failed=status["fail"], errors=status["error"],
        skipped=status["skipped"], xfail=status["xfail"], xpass=status["xpass"],
        pass_rate=_ratio(status["pass"] + status["xpass"], counted),
        answer_accuracy=_ratio(sum(u.passed for u in answerable), len(answerable)),
        refusal_precision=_ratio(tp, predicted), refusal_recall=_ratio(tp, expected),
        citation_validity=_ratio(sum(m.citations_valid for m in runs), citations), citations=citations,
        citations_dropped=sum(m.citations_dropped for m in runs),
        hit_at_1=_ratio(sum(m.rank is not None and m.rank <= 1 for m in ranked), len(ranked)),
        hit_at_5=_ratio(sum(m.rank is not None and m.rank <= 5 for m in ranked), len(ranked)),
        mrr=_ratio(sum(1 / m.rank for m in ranked if m.rank), len(ranked)),
        summary_coverage=_ratio(sum(m.covered for m in runs), points),
        thesis_recall=_ratio(sum(m.theses for m in runs), sum(m.organisations for m in runs)),
        figure_placement=_ratio(sum(m.figures_placed for m in runs), sum(m.figures for m in runs)),
        false_sections=sum(m.false_sections for m in runs) if any(r.kind == "briefing" for r in results) else None,
        repeated_share=max((m.repeated_share for m in runs if m.repeated_share is not None), default=None),
        timeline_recall=_ratio(sum(m.events_found for m in runs), sum(m.events for m in runs)),
        open_question_recall=_ratio(sum(m.questions_found for m in runs), sum(m.questions for m in runs)),
        mean_latency_ms=round(sum(r.latency_ms for r in results) / len(results), 2) if results else None,
        prompt_tokens=sum(r.usage.prompt_tokens for r in results),
        completion_tokens=sum(r.usage.completion_tokens for r in results),
        cost_usd=None if any(c is None for c in costs) else round(sum(c or 0.0 for c in costs), 6),
    )


def by_kind(results: Sequence[CaseResult]) -> dict[str, Metrics]:
    return {k: compute_metrics(r for r in results if r.kind == k) for k in KINDS if any(r.kind == k for r in results)}


class ThresholdCheck(BaseModel):
    name: str
    value: float | None
    limit: float
    ok: bool
    note: str = ""


def check_thresholds(thresholds: Thresholds, gated: Metrics) -> list[ThresholdCheck]:
    """Each set threshold against the metrics of the suite's cases that are not marked xfail."""
    checks = []
    for name, limit in thresholds.model_dump().items():
        if limit is None:
            continue
        metric = name.removeprefix("min_").removeprefix("max_")
        value = getattr(gated, metric)
        if value is None:
            checks.append(ThresholdCheck(name=name, value=None, limit=limit, ok=True, note="nothing to measure"))
            continue
        ok = value <= limit if name.startswith("max_") else value >= limit - 1e-9
        checks.append(ThresholdCheck(name=name, value=value, limit=limit, ok=ok))
    return checks


# ------------------------------------------------------------------ baseline
class Change(BaseModel):
    key: str
    was: str
    now: str
    detail: str = ""


class Comparison(BaseModel):
    baseline: str
    regressions: list[Change] = Field(default_factory=list)
    fixes: list[Change] = Field(default_factory=list)
    new: list[str] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list)


def failure_detail(result: CaseResult) -> str:
    """One line saying why a case did not pass."""
    if result.error:
        return result.error
    failed = [a for a in result.assertions if a.passed is False]
    parts = []
    for a in failed[:3]:
        turn = f"turn {a.turn} " if a.turn else ""
        parts.append(f"{turn}{a.type}: expected {a.expected!r}, got {a.actual!r}" + (f" ({a.message})" if a.message else ""))
    return "; ".join(parts) + (f"; +{len(failed) - 3} more" if len(failed) > 3 else "")


def compare(results: Sequence[CaseResult], baseline: dict[str, Any], name: str) -> Comparison:
    """Case by case: a regression passed in the baseline and fails now (xfail cases never regress)."""
    before = {f"{c['suite']}/{c['id']}": c.get("status", "") for c in baseline.get("cases", []) if isinstance(c, dict)}
    now = {r.key: r for r in results}
    out = Comparison(baseline=name)
    for key, result in now.items():
        was = before.get(key)
        if was is None:
            out.new.append(key)
        elif was in PASSING and result.status in FAILING:
            out.regressions.append(Change(key=key, was=was, now=result.status, detail=failure_detail(result)))
        elif was not in PASSING and was != "skipped" and result.status in PASSING:
            out.fixes.append(Change(key=key, was=was, now=result.status))
    out.missing = [k for k in before if k not in now]
    return out
