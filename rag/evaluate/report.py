"""The results of an eval run as one typed document (the ``--json`` output and baseline format), and its text table."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from .metrics import Comparison, Metrics, ThresholdCheck, failure_detail
from .runner import CaseResult

REPORT_VERSION = 1


class SuiteReport(BaseModel):
    name: str
    file: str
    description: str = ""
    metrics: Metrics = Field(description="Over all the suite's cases, xfail included.")
    gated: Metrics = Field(description="Over the cases not marked xfail: what thresholds are checked against.")
    checks: list[ThresholdCheck]
    passed: bool


class EvalReport(BaseModel):
    version: int = REPORT_VERSION
    passed: bool
    backend: str
    model: str
    repeat: int = 1
    duration_s: float
    metrics: Metrics = Field(description="Over every case, xfail included.")
    gated: Metrics | None = Field(None, description="Over the cases not marked xfail: what thresholds are checked against.")
    by_kind: dict[str, Metrics]
    suites: list[SuiteReport]
    comparison: Comparison | None = None
    unavailable: list[str] = Field(default_factory=list, description="Suites skipped because what they require is missing, "
                                   "each as 'name: reason'.")
    cases: list[CaseResult]

    @property
    def failed_suites(self) -> list[SuiteReport]:
        return [s for s in self.suites if not s.passed]

    def verdict(self) -> str:
        reasons = [f"suite {s.name} below threshold ({', '.join(c.name for c in s.checks if not c.ok)})"
                   for s in self.failed_suites]
        if self.comparison and self.comparison.regressions:
            reasons.append(f"{len(self.comparison.regressions)} regression(s) against {self.comparison.baseline}")
        head = "PASSED" if self.passed else "FAILED: " + "; ".join(reasons)
        return head + self.xfail_note()

    def xfail_note(self) -> str:
        """Say that thresholds left xfail cases out, and what that changes: 'refusal precision 0.92 with them, 1.00 without'."""
        xfails = self.metrics.xfail + self.metrics.xpass
        if not xfails or self.gated is None:
            return ""
        changed = [f"{label} {fmt(getattr(self.metrics, key))} with them, {fmt(getattr(self.gated, key))} without"
                   for key, label, how in METRIC_ROWS
                   if how == "ratio" and getattr(self.metrics, key) != getattr(self.gated, key)]
        return (f" ({xfails} case(s) marked xfail, left out of the thresholds"
                + (": " + "; ".join(changed) if changed else "") + ")")


METRIC_ROWS: list[tuple[str, str, str]] = [
    ("pass_rate", "pass rate", "ratio"), ("answer_accuracy", "answer accuracy", "ratio"),
    ("refusal_precision", "refusal precision", "ratio"), ("refusal_recall", "refusal recall", "ratio"),
    ("citation_validity", "citation validity", "ratio"), ("citations", "citations checked", "int"),
    ("citations_dropped", "citations dropped by grounding", "int"), ("hit_at_1", "hit@1", "ratio"),
    ("hit_at_5", "hit@5", "ratio"), ("mrr", "MRR", "ratio"), ("summary_coverage", "summary coverage", "ratio"),
    ("thesis_recall", "briefing: theses found", "ratio"), ("figure_placement", "briefing: figures placed", "ratio"),
    ("false_sections", "briefing: false sections", "int"), ("repeated_share", "briefing: repeated sentences", "ratio"),
    ("timeline_recall", "briefing: timeline events", "ratio"), ("open_question_recall", "briefing: open questions", "ratio"),
    ("mean_latency_ms", "mean latency (ms)", "ms"), ("prompt_tokens", "prompt tokens", "int"),
    ("completion_tokens", "completion tokens", "int"), ("cost_usd", "cost (USD)", "usd"),
]


def fmt(value: Any, how: str = "ratio") -> str:
    if value is None:
        return "n/a"
    if how == "ratio":
        return f"{value:.2f}"
    if how == "ms":
        return f"{value:.1f}"
    if how == "usd":
        return f"{value:.4f}"
    return str(value)


STATUS_LABEL = {"pass": "PASS", "fail": "FAIL", "error": "ERROR", "skipped": "SKIP", "xfail": "XFAIL", "xpass": "XPASS"}


def case_note(result: CaseResult) -> str:
    if result.status in ("fail", "error"):
        return failure_detail(result)
    if result.status == "xfail":
        return f"xfail: {result.xfail}"
    if result.status == "xpass":
        return f"passed but marked xfail ({result.xfail}): remove the mark"
    skipped = [a for a in result.assertions if a.passed is None]
    if skipped:
        return f"{len(skipped)} assertion(s) skipped: {skipped[0].message.removeprefix('skipped: ')}"
    return ""


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def render_text(report: EvalReport, *, note_width: int = 110) -> str:
    """The summary printed after a run: one line per case, then per kind, metrics, thresholds, verdict."""
    cases = report.cases
    width = max([len(c.key) for c in cases] + [4])
    lines = [f"rag eval: {len(cases)} cases in {len(report.suites)} suite(s), backend {report.backend} "
             f"({report.model}), repeat {report.repeat}, {report.duration_s:.1f} s", ""]
    lines.append(f"  {'status':<6}  {'case':<{width}}  {'kind':<9}  {'score':>5}  note")
    for c in cases:
        rate = f" {c.passed_runs}/{c.runs}" if c.runs > 1 else ""
        score = fmt(c.score)
        lines.append(f"  {STATUS_LABEL[c.status]:<6}  {c.key:<{width}}  {c.kind:<9}  {score:>5}{rate}  "
                     f"{_clip(case_note(c), note_width)}".rstrip())
    lines += ["", "by kind", f"  {'kind':<9}  {'cases':>5}  {'pass':>4}  {'fail':>4}  {'error':>5}  {'xfail':>5}  "
              f"{'skip':>4}  {'pass rate':>9}"]
    for kind, m in report.by_kind.items():
        lines.append(f"  {kind:<9}  {m.cases:>5}  {m.passed + m.xpass:>4}  {m.failed:>4}  {m.errors:>5}  {m.xfail:>5}  "
                     f"{m.skipped:>4}  {fmt(m.pass_rate):>9}")
    gated = report.gated or report.metrics
    lines += ["", f"metrics  {'all cases':>36}  {'without xfail':>14}"]
    for key, label, how in METRIC_ROWS:
        lines.append(f"  {label:<32}  {fmt(getattr(report.metrics, key), how):>10}  {fmt(getattr(gated, key), how):>14}")
    lines += ["", "thresholds (cases marked xfail excluded)"]
    for suite in report.suites:
        for check in suite.checks:
            op = "<=" if check.name.startswith("max_") else ">="
            state = "ok" if check.ok else "BELOW"
            note = f"  ({check.note})" if check.note else ""
            lines.append(f"  {suite.name:<16} {check.name:<24} {fmt(check.value):>6} {op} {check.limit:<5g} {state}{note}")
    for note in report.unavailable:
        lines.append(f"  skipped suite {note}")
    if report.comparison:
        comp = report.comparison
        lines += ["", f"baseline {comp.baseline}: {len(comp.regressions)} regression(s), {len(comp.fixes)} fix(es), "
                      f"{len(comp.new)} new, {len(comp.missing)} missing"]
        lines += [f"  REGRESSION {c.key}: {c.was} -> {c.now}: {_clip(c.detail, note_width)}" for c in comp.regressions]
        lines += [f"  FIXED      {c.key}: {c.was} -> {c.now}" for c in comp.fixes]
    lines += ["", report.verdict()]
    return "\n".join(lines) + "\n"
