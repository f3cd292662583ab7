"""Report files: JUnit XML for CI, Markdown for people (failures first, expected vs actual), HTML."""

from __future__ import annotations

import html
import json
import xml.etree.ElementTree as ET
from typing import Any

from pydantic_core import to_jsonable_python

from .report import METRIC_ROWS, STATUS_LABEL, EvalReport, case_note, fmt
from .runner import CaseResult


# ------------------------------------------------------------------ JUnit
def junit_xml(report: EvalReport) -> str:
    """One <testsuite> per suite and one <testcase> per eval case; xfail and skipped cases are <skipped>."""
    root = ET.Element("testsuites", name="rag eval", tests=str(len(report.cases)), time=f"{report.duration_s:.3f}",
                      failures=str(sum(c.status == "fail" for c in report.cases)),
                      errors=str(sum(c.status == "error" for c in report.cases)),
                      skipped=str(sum(c.status in ("xfail", "skipped") for c in report.cases)))
    for suite in report.suites:
        cases = [c for c in report.cases if c.suite == suite.name]
        el = ET.SubElement(root, "testsuite", name=suite.name, file=suite.file, tests=str(len(cases)),
                           failures=str(sum(c.status == "fail" for c in cases)),
                           errors=str(sum(c.status == "error" for c in cases)),
                           skipped=str(sum(c.status in ("xfail", "skipped") for c in cases)),
                           time=f"{sum(c.latency_ms * c.runs for c in cases) / 1000:.3f}")
        for c in cases:
            tc = ET.SubElement(el, "testcase", classname=f"evals.{suite.name}.{c.kind}", name=c.id, file=c.file,
                               line=str(c.line), time=f"{c.latency_ms * c.runs / 1000:.3f}")
            if c.status == "fail":
                ET.SubElement(tc, "failure", message=case_note(c), type="AssertionFailed").text = _details(c)
            elif c.status == "error":
                ET.SubElement(tc, "error", message=c.error or "error", type="CaseError").text = c.error
            elif c.status in ("xfail", "skipped"):
                ET.SubElement(tc, "skipped", message=case_note(c))
            elif c.status == "xpass":
                ET.SubElement(tc, "system-out").text = case_note(c)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _details(c: CaseResult) -> str:
    lines = [f"{c.file}:{c.line}"]
    for a in c.assertions:
        if a.passed is False:
            turn = f"turn {a.turn}: " if a.turn else ""
            why = f" ({a.message})" if a.message else ""
            lines.append(f"{turn}{a.type}: expected {a.expected!r}, actual {a.actual!r}{why}")
    lines += [f"output: {line}" for line in _output_lines(c)]
    return "\n".join(lines)


# ------------------------------------------------------------------ shared pieces
def _answers(c: CaseResult) -> list[tuple[str, dict[str, Any]]]:
    if c.kind == "qa":
        return [("answer", c.output)] if c.output else []
    if c.kind == "chat":
        return [(f"turn {i}", t) for i, t in enumerate(c.output.get("turns", []), 1)]
    return []


def _output_lines(c: CaseResult) -> list[str]:
    """The actual output in a few lines: answers with their quotes, hits, or summary items."""
    lines: list[str] = []
    for label, a in _answers(c):
        asked = a.get("standalone_question") or a.get("question", "")
        refused = "[refused] " if a.get("refused") else ""
        lines.append(f"{label} (asked: {asked}): {refused}{' '.join(str(a.get('answer', '')).split())}")
        for cit in a.get("citations", []):
            lines.append(f'  quote {cit["source"]} [{cit["start"]}:{cit["end"]}]: "{" ".join(cit["quote"].split())}"')
        if a.get("flags"):
            lines.append(f"  flags: {', '.join(a['flags'])}")
    if c.kind == "retrieval":
        lines.append(f"rank of expected: {c.output.get('rank')}")
        for h in c.output.get("hits", [])[:5]:
            lines.append(f"  {h['rank']}. {h['chunk_id']} ({h['score']:.2f}): {h['text']}")
    for summary in c.output.get("summaries", []):
        lines.append(f"summary of {summary['doc_id']}:")
        for p in summary.get("players", []):
            model = (p.get("model") or {}).get("text")
            lines.append(f"  player {p['name']}" + (f", model: {' '.join(model.split())}" if model else ""))
            lines += [f"    move: {' '.join(m['text'].split())}" for m in p.get("moves", [])]
        lines += [f"  theme: {' '.join(t['text'].split())}" for t in summary.get("themes", [])]
        lines += [f"  implication: {' '.join(i['text'].split())}" for i in summary.get("implications", [])]
    return lines


# ------------------------------------------------------------------ Markdown
def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(map(str, r)) + " |" for r in rows]


def _md(value: Any) -> str:
    # Expectations may be models (a briefing's expected organisation): the same JSON the --json report gives.
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=to_jsonable_python)
    return " ".join(text.split()).replace("|", "\\|") or " "


def _input_md(c: CaseResult) -> list[str]:
    if "question" in c.input:
        return [f"**Question:** {c.input['question']}"]
    if "query" in c.input:
        return [f"**Query:** {c.input['query']}  ", f"**Expected:** `{_md(c.input['expect'])}`"]
    if "turns" in c.input:
        return ["**Turns:** " + " → ".join(f"“{t}”" for t in c.input["turns"])]
    return [f"**Documents:** {', '.join(c.input.get('documents', []))}"]


def _case_md(c: CaseResult) -> list[str]:
    lines = [f"### {STATUS_LABEL[c.status]} `{c.key}` ({c.kind}) — {c.file}:{c.line}", ""]
    if c.description:
        lines += [c.description, ""]
    if c.xfail:
        lines += [f"*Expected failure:* {c.xfail}", ""]
    lines += _input_md(c) + [""]
    if c.error:
        lines += [f"**Error:** {c.error}", ""]
    if c.runs > 1:
        lines += [f"**Pass rate:** {c.passed_runs}/{c.runs}", ""]
    if c.assertions:
        lines += ["| assertion | expected | actual | result |", "|---|---|---|---|"]
        for a in c.assertions:
            result = "skipped" if a.passed is None else ("pass" if a.passed else "**FAIL**")
            turn = f" (turn {a.turn})" if a.turn else ""
            actual = _md(a.actual) + (f" — {_md(a.message)}" if a.message else "")
            lines.append(f"| {a.type}{turn} | {_md(a.expected)} | {actual} | {result} |")
        lines.append("")
    output = _output_lines(c)
    if output:
        lines += ["Actual output:", "", "```text", *output, "```", ""]
    return lines


def markdown_report(report: EvalReport) -> str:
    cases = report.cases
    failures = [c for c in cases if c.status in ("fail", "error")]
    lines = ["# Eval report", "", f"**{report.verdict()}** — backend `{report.backend}` (`{report.model}`), "
             f"{len(cases)} cases, repeat {report.repeat}, {report.duration_s:.1f} s", ""]
    lines += ["## Summary", ""] + _table(
        ["kind", "cases", "pass", "fail", "error", "xfail", "skipped", "pass rate"],
        [[k, m.cases, m.passed + m.xpass, m.failed, m.errors, m.xfail, m.skipped, fmt(m.pass_rate)] for k, m in report.by_kind.items()])
    gated = report.gated or report.metrics
    lines += ["", "## Metrics", ""] + _table(
        ["metric", "all cases", "without xfail"],
        [[label, fmt(getattr(report.metrics, key), how), fmt(getattr(gated, key), how)] for key, label, how in METRIC_ROWS])
    lines += ["", "## Thresholds (xfail cases excluded)", ""] + _table(
        ["suite", "threshold", "value", "limit", "result"],
        [[s.name, c.name, fmt(c.value), f"{c.limit:g}", ("ok" if c.ok else "**BELOW**") + (f" — {c.note}" if c.note else "")]
         for s in report.suites for c in s.checks])
    if report.comparison:
        comp = report.comparison
        counts = f"{len(comp.regressions)} regression(s), {len(comp.fixes)} fix(es), {len(comp.new)} new, {len(comp.missing)} missing."
        lines += ["", f"## Baseline `{comp.baseline}`", "", counts, ""]
        lines += [f"- **regression** `{c.key}`: {c.was} → {c.now}: {_md(c.detail)}" for c in comp.regressions]
        lines += [f"- fixed `{c.key}`: {c.was} → {c.now}" for c in comp.fixes]
        lines += [f"- new `{k}`" for k in comp.new] + [f"- missing `{k}`" for k in comp.missing]
    lines += ["", f"## Failures ({len(failures)})", ""]
    if not failures:
        lines += ["None.", ""]
    for c in failures:
        lines += _case_md(c)
    xfails = [c for c in cases if c.status in ("xfail", "xpass")]
    if xfails:
        lines += [f"## Expected failures ({len(xfails)})", ""]
        for c in xfails:
            lines += _case_md(c)
    rest = [c for c in cases if c.status in ("pass", "skipped")]
    lines += [f"## Passed and skipped ({len(rest)})", ""] + _table(
        ["case", "kind", "status", "score", "runs passed", "note"],
        [[f"`{c.key}`", c.kind, STATUS_LABEL[c.status], fmt(c.score), f"{c.passed_runs}/{c.runs}", _md(case_note(c))] for c in rest])
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ HTML
_CSS = ("body{font:14px/1.45 system-ui,sans-serif;margin:2rem;max-width:75rem}"
        "table{border-collapse:collapse;margin:.5rem 0 1rem}"
        "td,th{border:1px solid #ccc;padding:.2rem .5rem;text-align:left;vertical-align:top}.pass,.xpass{color:#176f2c}"
        ".fail,.error{color:#b00020;font-weight:600}.xfail,.skipped{color:#8a6d00}"
        "pre{background:#f6f6f6;padding:.5rem;white-space:pre-wrap}")


def html_report(report: EvalReport) -> str:
    e = html.escape
    out = [f"<!doctype html><meta charset=utf-8><title>rag eval</title><style>{_CSS}</style>",
           f"<h1>Eval report</h1><p><b>{e(report.verdict())}</b> — backend {e(report.backend)} ({e(report.model)}), "
           f"{len(report.cases)} cases, {report.duration_s:.1f} s</p>",
           "<h2>Metrics</h2><table><tr><th>metric<th>all cases<th>without xfail"]
    gated = report.gated or report.metrics
    out += [f"<tr><th>{e(label)}<td>{e(fmt(getattr(report.metrics, key), how))}<td>{e(fmt(getattr(gated, key), how))}"
            for key, label, how in METRIC_ROWS]
    out.append("</table><h2>Thresholds</h2><table><tr><th>suite<th>threshold<th>value<th>limit<th>result")
    for s in report.suites:
        out += [f"<tr><td>{e(s.name)}<td>{e(c.name)}<td>{e(fmt(c.value))}<td>{c.limit:g}"
                f"<td class={'pass' if c.ok else 'fail'}>{'ok' if c.ok else 'BELOW'}" for c in s.checks]
    out.append("</table><h2>Cases</h2><table><tr><th>status<th>case<th>kind<th>score<th>note")
    order = sorted(report.cases, key=lambda c: c.status not in ("fail", "error"))
    for c in order:
        detail = "\n".join(_output_lines(c))
        more = f"<details><summary>output</summary><pre>{e(detail)}</pre></details>" if detail else ""
        out.append(f"<tr><td class={c.status}>{STATUS_LABEL[c.status]}<td><code>{e(c.key)}</code>"
                   f"<br><small>{e(c.file)}:{c.line}</small><td>{c.kind}<td>{e(fmt(c.score))}<td>{e(case_note(c))}{more}")
    out.append("</table>")
    return "\n".join(out) + "\n"
