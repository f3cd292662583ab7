"""The eval harness end to end (`rag eval` in a subprocess) plus its suites' own sanity checks.

One full offline run is shared by the tests that only read its reports; every other run uses a
small suite written to tmp_path. Expectations in evals/ come from the article, so the checks here
are about the harness and the suites' integrity, not about particular answers.
"""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from conftest import ROOT, run_cli
from fake_openai import Call, fake_openai, forever, json_reply, reply  # noqa: F401

from rag.evaluate import suite as s
from rag.evaluate.assertions import AssertionResult, case_score, citation_problem
from rag.evaluate.loading import load_suites
from rag.evaluate.metrics import compare
from rag.normalize import normalize
from rag.types import Citation

EVALS = ROOT / "evals"
SEED_CASE = "amazon-model"


def _clean_env(monkeypatch: pytest.MonkeyPatch, index: Path) -> None:
    for key in list(os.environ):
        if key.startswith(("RAG_", "OPENAI_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("RAG_INDEX", str(index))


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """`rag eval` over evals/ offline, in parallel, writing every report once."""
    out = tmp_path_factory.mktemp("full-run")
    with pytest.MonkeyPatch.context() as mp:
        _clean_env(mp, out / "index.db")
        result = run_cli("eval", "--json", "-j", "4", "--junit", str(out / "junit.xml"),
                         "--markdown", str(out / "report.md"), "--html", str(out / "report.html"),
                         "--save-baseline", str(out / "baseline.json"))
    return {"result": result, "report": json.loads(result.stdout) if result.stdout.strip() else None, "dir": out}


def _suites() -> list[Any]:
    return load_suites([EVALS])


def _broken_suite(tmp_path: Path) -> Path:
    """A copy of one seed case whose expectation the article contradicts."""
    data = yaml.safe_load((EVALS / "qa_seed.yaml").read_text(encoding="utf-8"))
    case = next(c for c in data["cases"] if c["id"] == SEED_CASE)
    case["assert"] = [{"refused": False}, {"icontains": "sells groceries by drone"}, {"cites-source": "seeds/"}]
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump({"name": "qa_seed", "corpora": {"seed": ["seeds/"]}, "corpus": "seed",
                                    "cases": [case]}, sort_keys=False), encoding="utf-8")
    return path


# ------------------------------------------------------------------ the offline run
def test_offline_suite_passes(full_run):
    result, report = full_run["result"], full_run["report"]
    assert result.returncode == 0, result.stderr + result.stdout[-3000:]
    assert report["passed"] is True and report["backend"] == "offline"
    assert not [c["id"] for c in report["cases"] if c["status"] in ("fail", "error")]
    metrics = report["metrics"]
    assert metrics["citation_validity"] == 1.0
    for key in ("answer_accuracy", "refusal_precision", "refusal_recall", "hit_at_1", "hit_at_5", "mrr", "summary_coverage"):
        assert metrics[key] is not None, key
    assert all(s["passed"] for s in report["suites"])


def test_reports_keep_suite_and_case_order_when_run_in_parallel(full_run):
    expected = [f"{loaded.name}/{case.id}" for loaded in _suites() for case in loaded.suite.cases]
    assert [f"{c['suite']}/{c['id']}" for c in full_run["report"]["cases"]] == expected


def test_junit_has_one_testcase_per_case(full_run):
    report = full_run["report"]
    root = ET.parse(full_run["dir"] / "junit.xml").getroot()
    testcases = root.findall(".//testcase")
    assert len(testcases) == len(report["cases"])
    assert {(tc.get("classname").split(".")[1], tc.get("name")) for tc in testcases} == \
        {(c["suite"], c["id"]) for c in report["cases"]}
    xfails = [c for c in report["cases"] if c["status"] == "xfail"]
    skipped = [tc for tc in testcases if tc.find("skipped") is not None]
    assert len(skipped) == len(xfails) and all("xfail" in tc.find("skipped").get("message") for tc in skipped)
    assert not root.findall(".//failure")
    assert (full_run["dir"] / "report.html").read_text(encoding="utf-8").startswith("<!doctype html>")


def test_llm_rubric_is_skipped_offline_never_passed(full_run, tmp_path):
    rubrics = [a for c in full_run["report"]["cases"] for a in c["assertions"] if a["type"] == "llm-rubric"]
    assert rubrics and all(a["passed"] is None and "skipped" in a["message"] for a in rubrics)

    suite = tmp_path / "rubric.yaml"
    suite.write_text(
        "name: rubric_only\ncorpora:\n  seed: [seeds/]\ncorpus: seed\ncases:\n"
        "  - id: graded\n    kind: qa\n    question: What is Amazon's model?\n"
        "    assert:\n      - llm-rubric: Explains Amazon's model in one sentence.\n", encoding="utf-8")
    saved = tmp_path / "results.json"
    result = run_cli("eval", str(suite), "--save-baseline", str(saved))
    assert re.search(r"SKIP\s+rubric_only/graded", result.stdout), result.stdout
    case = json.loads(saved.read_text(encoding="utf-8"))["cases"][0]
    assert case["status"] == "skipped", case


# ------------------------------------------------------------------ failing runs
def test_a_broken_case_fails_the_run_and_the_markdown_shows_expected_vs_actual(tmp_path):
    markdown, junit = tmp_path / "report.md", tmp_path / "junit.xml"
    result = run_cli("eval", str(_broken_suite(tmp_path)), "--markdown", str(markdown), "--junit", str(junit))
    assert result.returncode == 1, result.stdout + result.stderr
    assert re.search(rf"FAIL\s+qa_seed/{SEED_CASE}\s", result.stdout)
    assert "FAILED: suite qa_seed below threshold (min_pass_rate)" in result.stdout

    text = markdown.read_text(encoding="utf-8")
    failures = text.index("## Failures (1)")
    assert text.index("## Summary") < failures < text.index("## Passed")
    section = text[failures:]
    assert f"`qa_seed/{SEED_CASE}`" in section and "**Question:** What is Amazon's model?" in section
    row = next(line for line in section.splitlines() if line.startswith("| icontains |"))
    assert "sells groceries by drone" in row and "technological layers" in row and "**FAIL**" in row
    assert re.search(r'quote seeds/000_e120b985889006c7\.txt \[\d+:\d+\]: ".*technological layers', section)

    failure = ET.parse(junit).getroot().find(".//testcase/failure")
    assert failure is not None and "sells groceries by drone" in failure.get("message")


def test_a_baseline_regression_is_reported_and_fails_the_run(full_run, tmp_path):
    baseline = full_run["dir"] / "baseline.json"
    saved = tmp_path / "results.json"
    result = run_cli("eval", str(_broken_suite(tmp_path)), "--baseline", str(baseline), "--save-baseline", str(saved))
    assert result.returncode == 1
    assert f"REGRESSION qa_seed/{SEED_CASE}: pass -> fail" in result.stdout
    assert "1 regression(s) against" in result.stdout
    comparison = json.loads(saved.read_text(encoding="utf-8"))["comparison"]
    assert [(c["key"], c["was"], c["now"]) for c in comparison["regressions"]] == [(f"qa_seed/{SEED_CASE}", "pass", "fail")]
    assert f"qa_seed/{SEED_CASE}" not in comparison["missing"] and len(comparison["missing"]) > 80


def test_xfail_cases_are_not_regressions_and_passes_are_fixes():
    def case(key: str, status: str) -> Any:
        return SimpleNamespace(key=key, status=status, error=None, assertions=[])

    baseline = {"cases": [{"suite": "s", "id": i, "status": st} for i, st in
                          [("a", "pass"), ("b", "pass"), ("c", "fail"), ("d", "xfail"), ("gone", "pass")]]}
    now = [case("s/a", "fail"), case("s/b", "xfail"), case("s/c", "pass"), case("s/d", "xpass"), case("s/new", "pass")]
    comp = compare(now, baseline, "base.json")
    assert [c.key for c in comp.regressions] == ["s/a"]
    assert [c.key for c in comp.fixes] == ["s/c", "s/d"]
    assert comp.new == ["s/new"] and comp.missing == ["s/gone"]


# ------------------------------------------------------------------ invalid suites
VALID_CASE = """name: bad
corpora:
  seed: [seeds/]
corpus: seed
cases:
  - id: fine
    kind: qa
    question: What is Amazon's model?
    assert:
      - contains: layers
  - id: broken
    kind: qa
    question: What is Walmart's model?
    assert:
      - contains: service network
"""


@pytest.mark.parametrize("edit, line, field, message", [
    (("      - contains: service network", "      - contians: service network"), 15,
     "cases[1].assert[0].contians", "unknown assertion 'contians' (did you mean 'contains'?)"),
    (("    question: What is Walmart's model?\n", ""), 11, "cases[1].question", "field required"),
    (("      - contains: service network", "      - min-citations: many"), 15,
     "cases[1].assert[0].min-citations", "valid integer"),
    (("    kind: qa\n    question: What is Walmart", "    kind: qna\n    question: What is Walmart"), 12,
     "cases[1].kind", "unknown kind 'qna'"),
], ids=["typo-in-assertion", "missing-field", "wrong-type", "unknown-kind"])
def test_an_invalid_suite_fails_with_file_line_and_field(tmp_path, edit, line, field, message):
    text = VALID_CASE.replace(*edit)
    assert text != VALID_CASE
    suite = tmp_path / "bad.yaml"
    suite.write_text(text, encoding="utf-8")
    result = run_cli("eval", str(suite))
    assert result.returncode == 2
    error = result.stderr.strip()
    assert "\n" not in error and "Traceback" not in error, error
    assert error.startswith(f"rag: error: {suite}:{line}: {field}: "), error
    assert message in error and "[case broken]" in error


# ------------------------------------------------------------------ the suites themselves
def test_suites_hold_the_required_cases():
    cases = [(loaded, c) for loaded in _suites() for c in loaded.suite.cases]
    by_kind: dict[str, list[Any]] = {k: [c for _, c in cases if c.kind == k] for k in s.KINDS}
    refusals = [c for c in by_kind["qa"] if any(isinstance(a, s.Refused) and a.refused for a in c.assert_)]
    assert len(by_kind["qa"]) >= 30 and len(refusals) >= 8
    assert len(by_kind["retrieval"]) >= 15 and len(by_kind["summary"]) >= 3 and len(by_kind["chat"]) >= 5
    assert all(len(c.turns) >= 2 for c in by_kind["chat"])

    topics = [p for p in (EVALS / "corpora").iterdir() if p.is_dir()]
    assert topics and all(3 <= len(list(t.glob("*.txt"))) <= 4 for t in topics)
    mixed = [(loaded, c) for loaded, c in cases
             if len(paths := loaded.suite.corpora[loaded.suite.corpus_of(c)]) > 1 and any("corpora/" in p for p in paths)]
    mixed_asserts = [a for _, c in mixed for a in s.case_assertions(c)]
    assert any(isinstance(a, s.CitesOnly) for a in mixed_asserts)
    assert any(isinstance(a, s.Refused) and a.refused for a in mixed_asserts)


def _corpus_text(paths: list[str]) -> str:
    files = [f for p in paths for f in ([ROOT / p] if (ROOT / p).is_file() else sorted((ROOT / p).rglob("*")))
             if f.is_file() and not f.name.startswith(".")]
    assert files, paths
    return normalize("\n".join(f.read_text(encoding="utf-8") for f in files))


def test_refusal_cases_ask_for_facts_the_corpus_does_not_hold():
    checked = 0
    for loaded in _suites():
        for case in loaded.suite.cases:
            refuses = any(isinstance(a, s.Refused) and a.refused for a in s.case_assertions(case))
            if case.kind == "qa" and refuses:
                assert case.absent, f"{loaded.path}: {case.id} must list the facts it asks for under `absent`"
            if case.absent:
                text = _corpus_text(loaded.suite.corpora[loaded.suite.corpus_of(case)])
                present = [fact for fact in case.absent if normalize(fact) in text]
                assert not present, f"{loaded.path}: {case.id}: the corpus does contain {present}"
                checked += 1
    assert checked >= 8


# ------------------------------------------------------------------ with an LLM backend (fake server)
def _fake_model(body: dict[str, Any]) -> Any:
    """Quote the first sentence of the first source; grade every rubric 0.9."""
    name = ((body.get("response_format") or {}).get("json_schema") or {}).get("name")
    if name == "RubricGrade":
        return json_reply({"score": 0.9, "reason": "meets the rubric"})
    m = re.search(r'<source id="(S\d+)" doc="([^"]+)"[^>]*>\n(.*?)\n</source>', body["messages"][-1]["content"], re.S)
    if name == "AnswerDraft" and m:
        quote = m.group(3).split(". ")[0]
        return json_reply({"answer": quote, "refused": False, "confidence": 0.8,
                           "citations": [{"source": m.group(2), "chunk_id": m.group(1), "quote": quote}]})
    return reply("What is Amazon's model?")


def test_llm_eval_grades_rubrics_and_replays_from_the_cache_without_a_key(fake_openai, tmp_path):
    suite = tmp_path / "llm.yaml"
    suite.write_text(
        "name: llm\ncorpora:\n  seed: [seeds/]\ncorpus: seed\ncases:\n"
        "  - id: graded\n    kind: qa\n    question: What is Amazon's model?\n"
        "    assert:\n      - min-citations: 1\n      - llm-rubric: Answers from the article.\n", encoding="utf-8")
    fake_openai.script([forever(Call(_fake_model))])
    live = run_cli("eval", str(suite), "--json", "--backend", "openai",
                   env={"OPENAI_BASE_URL": fake_openai.base_url, "OPENAI_API_KEY": "sk-test"})
    assert live.returncode == 0, live.stderr
    graded = json.loads(live.stdout)["cases"][0]
    assert graded["status"] == "pass"
    assert [a["passed"] for a in graded["assertions"] if a["type"] == "llm-rubric"] == [True]
    sent = len(fake_openai.requests)
    assert sent == 2  # the answer, then the grade

    replay = run_cli("eval", str(suite), "--json", "--replay", env={"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"})
    assert replay.returncode == 0, replay.stderr
    replayed = json.loads(replay.stdout)
    assert replayed["backend"] == "openai" and len(fake_openai.requests) == sent
    assert [(c["status"], [a["passed"] for a in c["assertions"]]) for c in replayed["cases"]] == \
        [(graded["status"], [a["passed"] for a in graded["assertions"]])]


# ------------------------------------------------------------------ pure checks
DOC = "Amazon is scaling same-day prescription delivery. Walmart defended it with scale and stores."


def test_citation_recheck_wants_the_quote_at_its_exact_span():
    good = Citation(source="a.txt", chunk_id="a.txt#0", quote="Walmart defended it", start=50, end=69)
    assert citation_problem(good, DOC) is None
    moved = good.model_copy(update={"start": 49, "end": 68})
    assert "not the quote" in citation_problem(moved, DOC)
    fragments = Citation(source="a.txt", chunk_id="a.txt#0", quote="Amazon is scaling ... prescription delivery",
                         start=0, end=48)
    assert citation_problem(fragments, DOC) is None
    assert "not in the index" in citation_problem(good, None)
    assert "outside" in citation_problem(good.model_copy(update={"end": 500}), DOC)


def test_case_score_weights_skips_and_the_citation_gate():
    def r(kind: str, passed: bool | None, weight: float = 1.0) -> AssertionResult:
        return AssertionResult(type=kind, passed=passed, weight=weight)

    assert case_score([r("contains", True, 3), r("regex", False, 1)], 0.75) == ("pass", 0.75)
    assert case_score([r("contains", True, 3), r("regex", False, 1)], 1.0) == ("fail", 0.75)
    assert case_score([r("contains", True), r("llm-rubric", None)], 1.0) == ("pass", 1.0)
    assert case_score([r("llm-rubric", None)], 1.0) == ("skipped", None)
    implicit = AssertionResult(type="citations-verbatim", passed=True, implicit=True)
    assert case_score([r("llm-rubric", None), implicit], 1.0) == ("skipped", None)
    assert case_score([r("contains", True, 9), r("citations-verbatim", False)], 0.5)[0] == "fail"


# ------------------------------------------------------------------ xfail in the verdict; comparisons
def test_the_verdict_says_how_many_cases_are_xfail_and_what_they_change() -> None:
    result = run_cli("eval", str(EVALS / "qa_seed.yaml"))
    assert result.returncode == 0, result.stderr
    verdict = result.stdout.strip().splitlines()[-1]
    xfails = sum(1 for line in result.stdout.splitlines() if line.lstrip().startswith("XFAIL"))
    assert xfails and verdict.startswith(f"PASSED ({xfails} case(s) marked xfail, left out of the thresholds: ")
    m = re.search(r"refusal precision (\d\.\d\d) with them, (\d\.\d\d) without", verdict)
    assert m and float(m.group(1)) < float(m.group(2)) == 1.0, verdict
    header = next(line for line in result.stdout.splitlines() if line.startswith("metrics"))
    assert "all cases" in header and "without xfail" in header
    report = json.loads(run_cli("eval", str(EVALS / "qa_seed.yaml"), "--json").stdout)
    assert report["gated"]["xfail"] == 0 and report["metrics"]["xfail"] == xfails


def _compare_suite(tmp_path: Path) -> Path:
    suite = tmp_path / "cmp.yaml"
    suite.write_text(
        "name: cmp\ncorpora:\n  seed: [seeds/]\ncorpus: seed\nthresholds:\n  min_pass_rate: 1.0\ncases:\n"
        "  - id: walmart\n    kind: qa\n    question: What is Walmart's model?\n"
        "    assert:\n      - icontains: service network\n"
        "  - id: refuse-ceo\n    kind: qa\n    question: Who is the CEO of Costco?\n    assert:\n      - refused: true\n",
        encoding="utf-8")
    return suite


def test_compare_backends_prints_one_table_of_cases_by_run_with_junit_and_markdown(fake_openai, tmp_path) -> None:
    fake_openai.script([forever(Call(_fake_model))])
    junit, markdown = tmp_path / "cmp.xml", tmp_path / "cmp.md"
    env = {"OPENAI_BASE_URL": fake_openai.base_url, "OPENAI_API_KEY": "sk-test"}
    args = ("eval", str(_compare_suite(tmp_path)), "--compare", "offline", "openai:fake-model")
    result = run_cli(*args, "--junit", str(junit), "--markdown", str(markdown), env=env)
    assert result.returncode == 1, result.stderr  # the fake model answers the refusal case: below threshold
    lines = result.stdout.splitlines()
    header = next(line for line in lines if line.strip().startswith("case"))
    assert "offline:extractive-v1" in header and "openai:fake-model" in header
    row = next(line for line in lines if "cmp/refuse-ceo" in line)
    assert row.startswith("*") and row.split()[-4:-2] == ["PASS", "1.00"] and "FAIL" in row
    assert lines[-1] == "FAILED: openai:fake-model below thresholds"

    suites = ET.parse(junit).getroot().findall("testsuite")
    assert [s.get("name") for s in suites] == ["offline:extractive-v1/cmp", "openai:fake-model/cmp"]
    assert [len(s.findall("testcase")) for s in suites] == [2, 2]
    assert suites[1].get("failures") == "1" and suites[0].get("failures") == "0"
    md = markdown.read_text(encoding="utf-8")
    assert "| case | kind | offline:extractive-v1 | openai:fake-model |" in md
    assert "| **`cmp/refuse-ceo`** | **qa** | **PASS 1.00** |" in md

    as_json = json.loads(run_cli(*args, "--json", env=env).stdout)
    assert as_json["runs"] == ["offline:extractive-v1", "openai:fake-model"] and as_json["passed"] is False
    assert [c["status"] for c in as_json["rows"][1]["cells"]] == ["pass", "fail"]


def test_several_models_are_compared_too(fake_openai, tmp_path) -> None:
    fake_openai.script([forever(Call(_fake_model))])
    result = run_cli("eval", str(_compare_suite(tmp_path)), "--backend", "openai", "--model", "m-one", "--model", "m-two",
                     "--json", env={"OPENAI_BASE_URL": fake_openai.base_url, "OPENAI_API_KEY": "sk-test"})
    assert json.loads(result.stdout)["runs"] == ["openai:m-one", "openai:m-two"]
    assert {r.body["model"] for r in fake_openai.requests} == {"m-one", "m-two"}


@pytest.mark.parametrize("extra, message", [
    (("--compare", "offline", "bogus"), "--compare: unknown backend 'bogus'"),
    (("--compare", "offline", "openai", "--baseline", "x.json"), "--baseline reports one run"),
    (("--compare", "offline", "--model", "a", "--model", "b"), "not both"),
])
def test_bad_comparisons_are_one_line(tmp_path, extra, message) -> None:
    result = run_cli("eval", str(_compare_suite(tmp_path)), *extra)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
