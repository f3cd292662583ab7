"""Several runs of the same cases side by side (``rag eval --compare``, or several ``--model``).

One row per case, one column per run (backend and model), as promptfoo's matrix view shows
prompts by providers; then each run's headline metrics and verdict. Text, Markdown and JUnit
(one ``<testsuite>`` per run and suite) renderings; ``--json`` is the ``Matrix`` itself.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from pydantic import BaseModel, Field

from .formats import junit_xml
from .report import METRIC_ROWS, STATUS_LABEL, EvalReport, fmt

HEADLINE = ("pass_rate", "answer_accuracy", "refusal_precision", "refusal_recall", "citation_validity", "hit_at_1",
            "summary_coverage", "mean_latency_ms", "prompt_tokens", "completion_tokens", "cost_usd")


class Cell(BaseModel):
    status: str
    score: float | None = None


class Row(BaseModel):
    key: str
    kind: str
    cells: list[Cell | None] = Field(description="One per run, in the order of `runs`; None when a run lacks the case.")


class Matrix(BaseModel):
    runs: list[str] = Field(description="Column labels: backend:model.")
    rows: list[Row]
    passed: bool = Field(description="Every run met its suites' thresholds.")
    reports: list[EvalReport]


def run_label(report: EvalReport) -> str:
    return f"{report.backend}:{report.model}"


def build_matrix(reports: list[EvalReport]) -> Matrix:
    labels = [run_label(r) for r in reports]
    labels = [label if labels.count(label) == 1 else f"{label} #{i + 1}" for i, label in enumerate(labels)]
    keys: dict[str, str] = {}
    for report in reports:
        for case in report.cases:
            keys.setdefault(case.key, case.kind)
    by_run = [{c.key: c for c in r.cases} for r in reports]
    rows = [Row(key=key, kind=kind, cells=[Cell(status=run[key].status, score=run[key].score) if key in run else None
                                           for run in by_run]) for key, kind in keys.items()]
    return Matrix(runs=labels, rows=rows, passed=all(r.passed for r in reports), reports=reports)


def _cell(cell: Cell | None) -> str:
    if cell is None:
        return "-"
    return f"{STATUS_LABEL[cell.status]} {fmt(cell.score)}" if cell.score is not None else STATUS_LABEL[cell.status]


def _differs(row: Row) -> bool:
    return len({c.status if c else None for c in row.cells}) > 1


def _metric_rows(matrix: Matrix) -> list[list[str]]:
    rows = []
    for key, label, how in METRIC_ROWS:
        if key in HEADLINE:
            rows.append([label, *(fmt(getattr(r.metrics, key), how) for r in matrix.reports)])
    rows.append(["xfail cases", *(str(r.metrics.xfail + r.metrics.xpass) for r in matrix.reports)])
    return rows


def matrix_text(matrix: Matrix) -> str:
    width = max([len(r.key) for r in matrix.rows] + [4])
    col = max([len(label) for label in matrix.runs] + [10])
    lines = [f"rag eval --compare: {len(matrix.rows)} cases x {len(matrix.runs)} runs", ""]
    lines.append(f"  {'case':<{width}}  {'kind':<9}  " + "  ".join(f"{label:<{col}}" for label in matrix.runs))
    for row in matrix.rows:
        mark = "*" if _differs(row) else " "
        lines.append(f"{mark} {row.key:<{width}}  {row.kind:<9}  " + "  ".join(f"{_cell(c):<{col}}" for c in row.cells).rstrip())
    lines += ["", "  (* the runs disagree)", "", f"  {'metric':<{width + 11}}  " + "  ".join(f"{label:<{col}}" for label in matrix.runs)]
    for label, *values in _metric_rows(matrix):
        lines.append(f"  {label:<{width + 11}}  " + "  ".join(f"{v:<{col}}" for v in values).rstrip())
    lines += [""] + [f"{label}: {report.verdict()}" for label, report in zip(matrix.runs, matrix.reports)]
    lines += ["", "PASSED" if matrix.passed else "FAILED: " + ", ".join(
        label for label, r in zip(matrix.runs, matrix.reports) if not r.passed) + " below thresholds"]
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def matrix_markdown(matrix: Matrix) -> str:
    head = ["case", "kind", *matrix.runs]
    lines = ["# Eval comparison", "", f"**{'PASSED' if matrix.passed else 'FAILED'}** — {len(matrix.rows)} cases, "
             f"{len(matrix.runs)} runs; rows where the runs disagree are in bold.", "",
             "| " + " | ".join(_md(h) for h in head) + " |", "|" + "---|" * len(head)]
    for row in matrix.rows:
        cells = [f"`{row.key}`", row.kind, *(_cell(c) for c in row.cells)]
        if _differs(row):
            cells = [f"**{c}**" for c in cells]
        lines.append("| " + " | ".join(_md(c) for c in cells) + " |")
    lines += ["", "## Metrics", "", "| metric | " + " | ".join(_md(r) for r in matrix.runs) + " |",
              "|" + "---|" * (len(matrix.runs) + 1)]
    lines += ["| " + " | ".join(_md(v) for v in row) + " |" for row in _metric_rows(matrix)]
    lines += ["", "## Verdicts", ""] + [f"- `{_md(label)}`: {_md(r.verdict())}" for label, r in zip(matrix.runs, matrix.reports)]
    return "\n".join(lines) + "\n"


def matrix_junit(matrix: Matrix) -> str:
    """Each run's JUnit suites under one root, named ``<run>/<suite>``, so CI shows every case per backend."""
    root = ET.Element("testsuites", name="rag eval --compare")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for label, report in zip(matrix.runs, matrix.reports):
        one = ET.fromstring(junit_xml(report).split("\n", 1)[1])
        for suite in one.findall("testsuite"):
            suite.set("name", f"{label}/{suite.get('name')}")
            for case in suite.findall("testcase"):
                case.set("classname", f"{label}.{case.get('classname')}")
            for k in totals:
                totals[k] += int(suite.get(k, "0"))
            root.append(suite)
    for k, v in totals.items():
        root.set(k, str(v))
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
