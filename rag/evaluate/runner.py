"""Run eval cases: one temporary index per corpus, the same library calls as the CLI, results in case order.

Cases run on a thread pool (each worker thread opens its own connection to each index); every
(case, repetition) is independent, and results are put back in suite and case order so reports
are deterministic whatever finished first.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from ..backends.base import Backend, GenerationRequest
from ..config import Settings
from ..errors import ConfigError, RagError
from ..index import SQLiteIndex
from ..types import Answer, Briefing, Citation, StrategySummary, Usage
from . import assertions as chk
from . import suite as s
from .loading import LoadedSuite

Status = Literal["pass", "fail", "error", "skipped", "xfail", "xpass"]
Outcome = tuple[list[chk.AssertionResult], dict[str, Any], Usage]  # assertion results, output, usage


class RubricGrade(BaseModel):
    """The grader's verdict (prompts/rubric.j2)."""

    score: float = Field(ge=0, le=1)
    reason: str = ""


class AnswerUnit(BaseModel):
    """One answered question (a qa case or a chat turn), for answer accuracy and refusal metrics."""

    expected_refused: bool | None
    refused: bool
    passed: bool


class Measures(BaseModel):
    """What one run contributes to the metrics."""

    answers: list[AnswerUnit] = Field(default_factory=list)
    citations: int = 0
    citations_valid: int = 0
    citations_dropped: int = 0
    rank: int | None = None
    retrieved: int = 0
    points: int = 0
    covered: int = 0
    organisations: int = 0  # briefing: organisations expected, and those whose section states their thesis
    theses: int = 0
    figures: int = 0
    figures_placed: int = 0
    false_sections: int = 0
    repeated_share: float | None = None
    events: int = 0
    events_found: int = 0
    questions: int = 0
    questions_found: int = 0


class RunResult(BaseModel):
    status: Literal["pass", "fail", "error", "skipped"]
    score: float | None = None
    assertions: list[chk.AssertionResult] = Field(default_factory=list)
    output: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    latency_ms: float = 0.0
    usage: Usage = Field(default_factory=Usage)
    measures: Measures = Field(default_factory=Measures)


class CaseResult(BaseModel):
    """A case over all its repetitions; details (assertions, output) are those of one representative run."""

    suite: str
    id: str
    kind: str
    corpus: str
    file: str
    line: int
    description: str = ""
    input: dict[str, Any]
    xfail: str | None = None
    threshold: float
    status: Status
    score: float | None = None
    runs: int
    passed_runs: int
    pass_rate: float | None
    assertions: list[chk.AssertionResult]
    output: dict[str, Any]
    error: str | None = None
    latency_ms: float
    usage: Usage
    measures: list[Measures]

    @property
    def key(self) -> str:
        return f"{self.suite}/{self.id}"


# ------------------------------------------------------------------ environment
@dataclass
class Env:
    """What every case shares: settings, backend, built corpora (name -> index file)."""

    settings: Settings
    backend: Backend
    indexes: dict[str, Path]
    _local: threading.local = field(default_factory=threading.local)
    _texts: dict[tuple[str, str], str | None] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _opened: list[SQLiteIndex] = field(default_factory=list)

    def store(self, corpus: str) -> SQLiteIndex:
        stores = self._local.__dict__.setdefault("stores", {})
        if corpus not in stores:
            stores[corpus] = SQLiteIndex(self.indexes[corpus])
            with self._lock:
                self._opened.append(stores[corpus])
        return stores[corpus]

    def document_text(self, corpus: str, citation: Citation) -> str | None:
        doc_id = citation.chunk_id.rsplit("#", 1)[0]
        key = (corpus, doc_id)
        with self._lock:
            if key in self._texts:
                return self._texts[key]
        doc = self.store(corpus).get_document(doc_id)
        text = doc.text if doc is not None and doc.source == citation.source else None
        with self._lock:
            self._texts[key] = text
        return text

    @property
    def can_grade(self) -> bool:
        return self.backend.name != "offline"

    def close(self) -> None:
        with self._lock:
            for store in self._opened:
                store.close()
            self._opened.clear()


def build_indexes(corpora: dict[str, list[str]], settings: Settings, directory: Path) -> dict[str, Path]:
    """Index each corpus into ``directory/<name>.db``; a corpus that yields no document is a ConfigError."""
    from ..chunk import Chunker
    from ..index import index_paths

    chunker = Chunker(max_tokens=settings.chunk.max_tokens, overlap=settings.chunk.overlap, encoding=settings.encoding)
    built: dict[str, Path] = {}
    for name, paths in corpora.items():
        missing = [p for p in paths if not Path(p).exists()]
        if missing:
            raise ConfigError(f"corpus {name!r}: no such file or directory: {', '.join(missing)}",
                              hint="corpus paths are relative to the working directory")
        path = directory / f"{name}.db"
        store = SQLiteIndex(path, create=True)
        try:
            report = index_paths([Path(p) for p in paths], store, chunker)
            if not store.list_documents():
                raise ConfigError(f"corpus {name!r} ({', '.join(paths)}) holds no indexable document")
        finally:
            store.close()
        if report.skipped:
            raise ConfigError(f"corpus {name!r}: {report.skipped[0].source}: {report.skipped[0].reason}")
        built[name] = path
    return built


# ------------------------------------------------------------------ one run of one case
def _rubric(a: s.LLMRubric, env: Env, question: str, output: str,
            turn: int | None = None) -> tuple[chk.AssertionResult, Usage]:
    if not env.can_grade:
        return chk.AssertionResult(type=a.type, expected=a.llm_rubric, passed=None, weight=a.weight, turn=turn,
                                   message="skipped: llm-rubric needs an LLM backend (this run is offline)"), Usage()
    from ..prompts import render_prompt

    prompt = render_prompt("rubric", rubric=a.llm_rubric, question=question, output=output)
    gen = env.backend.generate(GenerationRequest(task="rubric", prompt=prompt, schema=RubricGrade,
                                                 inputs={"rubric": a.llm_rubric, "question": question, "output": output}))
    grade = gen.output
    assert isinstance(grade, RubricGrade)
    result = chk.AssertionResult(type=a.type, expected=f"{a.llm_rubric} (score >= {a.min_score})", actual=grade.score,
                                 passed=grade.score >= a.min_score, weight=a.weight, message=grade.reason, turn=turn)
    return result, gen.usage


def _expected_refusal(asserts: list[s.Assertion]) -> bool | None:
    refused = [a.refused for a in asserts if isinstance(a, s.Refused)]
    if refused:
        return refused[-1]
    return False if any(isinstance(a, chk.TEXT_TYPES) for a in asserts) else None


def _check_answer(asserts: list[s.Assertion], answer: Answer, env: Env, corpus: str, measures: Measures,
                  turn: int | None = None) -> tuple[list[chk.AssertionResult], Usage]:
    results: list[chk.AssertionResult] = []
    usage = Usage()
    explicit = next((a for a in asserts if isinstance(a, s.CitationsVerbatim)), None)
    verbatim, valid = chk.check_citations(answer.citations, lambda c: env.document_text(corpus, c), turn=turn,
                                          weight=explicit.weight if explicit else 1.0, implicit=explicit is None)
    for a in asserts:
        if isinstance(a, s.CitationsVerbatim):
            continue
        if isinstance(a, s.SchemaValid):
            results.append(chk.check_schema(a, [answer], turn=turn))
        elif isinstance(a, s.LLMRubric):
            from ..render import answer_text

            result, used = _rubric(a, env, answer.standalone_question or answer.question, answer_text(answer), turn)
            results.append(result)
            usage = usage.add(used)
        else:
            results.append(chk.check_answer(a, answer, turn=turn))
    results.append(verbatim)
    measures.citations += len(answer.citations)
    measures.citations_valid += valid
    measures.citations_dropped += answer.dropped_citations
    units = [r for r in results if r.passed is not None]
    measures.answers.append(AnswerUnit(expected_refused=_expected_refusal(asserts), refused=answer.refused,
                                       passed=all(r.passed for r in units)))
    return results, usage


def _answer_output(answer: Answer) -> dict[str, Any]:
    return answer.model_dump(mode="json", exclude={"prompt"})


def _run_qa(case: s.QACase, env: Env, corpus: str, m: Measures) -> Outcome:
    from ..answer import ask

    answer = ask(case.question, store=env.store(corpus), backend=env.backend, settings=env.settings, k=case.k)
    results, used = _check_answer(list(case.assert_), answer, env, corpus, m)
    return results, _answer_output(answer), answer.usage.add(used)


def _run_chat(case: s.ChatCase, env: Env, corpus: str, m: Measures) -> Outcome:
    from ..answer import Conversation, chat_turn

    conversation = Conversation()
    results: list[chk.AssertionResult] = []
    turns: list[dict[str, Any]] = []
    usage = Usage()
    for i, turn in enumerate(case.turns, 1):
        items = list(chat_turn(conversation, turn.question, store=env.store(corpus), backend=env.backend,
                               settings=env.settings, k=case.k))
        answer = items[-1]
        assert isinstance(answer, Answer)
        usage = usage.add(answer.usage)
        turns.append(_answer_output(answer))
        if turn.assert_:
            found, used = _check_answer(list(turn.assert_), answer, env, corpus, m, turn=i)
            results += found
            usage = usage.add(used)
    return results, {"turns": turns}, usage


def _run_retrieval(case: s.RetrievalCase, env: Env, corpus: str, m: Measures) -> Outcome:
    from ..retrieve import retrieve

    depth = max([10] + [a.hit_at for a in case.assert_ if isinstance(a, s.HitAt)])
    hits = retrieve(env.store(corpus), case.query, k=depth)
    rank = chk.first_rank(hits, case.expect)
    m.rank, m.retrieved = rank, len(hits)
    results = [chk.check_retrieval(a, hits, rank) for a in case.assert_]
    output = {"rank": rank, "hits": [{"rank": h.rank, "chunk_id": h.chunk.id, "source": h.source, "score": h.score,
                                      "text": chk.excerpt(h.chunk.text, 160)} for h in hits]}
    return results, output, Usage()


def _run_summary(case: s.SummaryCase, env: Env, corpus: str, m: Measures) -> Outcome:
    from ..briefing import Runner, summarize_document
    from ..render import summary_markdown

    store = env.store(corpus)
    docs = store.list_documents()
    ids = [str(d["id"]) for d in docs if any(str(d["id"]) == p or fnmatch(str(d["source"]), p) for p in case.documents)]
    if not ids:
        raise ConfigError(f"no document of corpus {corpus!r} matches {', '.join(case.documents)}")
    runner = Runner(settings=env.settings, backend=env.backend)
    summaries: list[StrategySummary] = []
    usage = Usage()
    for doc_id in ids:
        summary, used = summarize_document(doc_id, store=store, runner=runner)
        summaries.append(summary)
        usage = usage.add(used)
    results: list[chk.AssertionResult] = []
    explicit = next((a for a in case.assert_ if isinstance(a, s.CitationsVerbatim)), None)
    citations = [c for summary in summaries for item in _cited_items(summary) for c in item]
    verbatim, valid = chk.check_citations(citations, lambda c: env.document_text(corpus, c),
                                          weight=explicit.weight if explicit else 1.0, implicit=explicit is None)
    m.citations, m.citations_valid = len(citations), valid
    for a in case.assert_:
        if isinstance(a, s.CitationsVerbatim):
            continue
        if isinstance(a, s.SchemaValid):
            results.append(chk.check_schema(a, summaries))
        elif isinstance(a, s.LLMRubric):
            text = "\n\n".join(summary_markdown(x) for x in summaries)
            result, used = _rubric(a, env, f"Summarize the strategy in {', '.join(ids)}", text)
            results.append(result)
            usage = usage.add(used)
        else:
            results.append(chk.check_summary(a, summaries))
            if isinstance(a, s.Covers):
                m.points += len(a.covers)
                m.covered += len(a.covers) - len(chk.coverage(a.covers, summaries))
    results.append(verbatim)
    return results, {"summaries": [x.model_dump(mode="json", exclude={"prompt"}) for x in summaries]}, usage


def _cited_items(summary: StrategySummary) -> list[list[Citation]]:
    orgs = summary.organisations
    items = [t for o in orgs for t in o.thesis] + [mv for o in orgs for mv in o.moves] + [r for o in orgs for r in o.results] \
        + [f for o in orgs for f in o.figures] + [p for o in orgs for p in o.people]
    return [i.citations for i in items + summary.themes + summary.implications + summary.open_questions + summary.timeline]


def _briefing_citations(briefing: Briefing) -> list[Citation]:
    orgs = briefing.organisations
    items = list(briefing.executive_summary) + [t for o in orgs for t in o.thesis] + [mv for o in orgs for mv in o.moves] \
        + [r for o in orgs for r in o.results] + [f for o in orgs for f in o.figures] + [p for o in orgs for p in o.people] \
        + list(briefing.contrasts) + list(briefing.timeline) + list(briefing.themes) + list(briefing.implications) \
        + list(briefing.open_questions)
    return [c for i in items for c in i.citations]


def _run_briefing(case: s.BriefingCase, env: Env, corpus: str, m: Measures) -> Outcome:
    from ..briefing import Runner, build_briefing, summarize_document
    from ..render import briefing_markdown

    store = env.store(corpus)
    docs = [d for d in store.list_documents() if any(str(d["id"]) == p or fnmatch(str(d["source"]), p) for p in case.documents)]
    if not docs:
        raise ConfigError(f"no document of corpus {corpus!r} matches {', '.join(case.documents)}")
    runner = Runner(settings=env.settings, backend=env.backend)
    summaries: list[StrategySummary] = []
    usage = Usage()
    for d in docs:
        summary, used = summarize_document(str(d["id"]), store=store, runner=runner)
        summaries.append(summary)
        usage = usage.add(used)
    briefing = build_briefing(summaries, docs, store=store, runner=runner, title=None)
    usage = usage.add(briefing.usage)
    markdown = briefing_markdown(briefing)
    explicit = next((a for a in case.assert_ if isinstance(a, s.CitationsVerbatim)), None)
    citations = _briefing_citations(briefing)
    verbatim, valid = chk.check_citations(citations, lambda c: env.document_text(corpus, c),
                                          weight=explicit.weight if explicit else 1.0, implicit=explicit is None)
    m.citations, m.citations_valid = len(citations), valid
    source_text = "\n".join(doc.text for d in docs if (doc := store.get_document(str(d["id"]))) is not None)
    loose = chk.ungrounded_figures(markdown, source_text)
    results: list[chk.AssertionResult] = []
    for a in case.assert_:
        if isinstance(a, s.CitationsVerbatim):
            continue
        if isinstance(a, s.SchemaValid):
            results.append(chk.check_schema(a, [briefing]))
            continue
        if isinstance(a, s.LLMRubric):
            result, used = _rubric(a, env, f"Brief on {', '.join(str(d['source']) for d in docs)}", markdown)
            results.append(result)
            usage = usage.add(used)
            continue
        result = chk.check_briefing(a, briefing, markdown, case)
        results.append(result)
        if isinstance(a, s.OrganisationAssert):
            m.organisations += 1
            m.theses += bool(result.passed)
        elif isinstance(a, s.FigureAssert):
            m.figures += 1
            m.figures_placed += bool(result.passed)
        elif isinstance(a, s.NoSection):
            m.false_sections += len(result.actual or [])
        elif isinstance(a, s.MaxRepeated):
            m.repeated_share = float(result.actual)
        elif isinstance(a, s.TimelineEvent):
            m.events += 1
            m.events_found += bool(result.passed)
        elif isinstance(a, s.OpenQuestion):
            m.questions += 1
            m.questions_found += bool(result.passed)
    results.append(chk.AssertionResult(type="figures-grounded", expected="every figure of briefing.md in a source",
                                       actual=loose, passed=not loose, implicit=True,
                                       message=f"not in the sources: {', '.join(loose[:5])}" if loose else ""))
    results.append(verbatim)
    return results, {"briefing": briefing.model_dump(mode="json", exclude={"prompt"}), "markdown": markdown}, usage


RUNNERS: dict[str, Callable[..., Outcome]] = {
    "qa": _run_qa, "chat": _run_chat, "retrieval": _run_retrieval, "summary": _run_summary, "briefing": _run_briefing,
}


def run_once(case: Any, corpus: str, env: Env) -> RunResult:
    """One run of one case; an exception becomes an ``error`` result, never a crash of the whole eval."""
    started = time.perf_counter()
    measures = Measures()
    try:
        results, output, usage = RUNNERS[case.kind](case, env, corpus, measures)
    except Exception as err:  # noqa: BLE001 - a crashing case is reported as that case's error
        message = str(err) if isinstance(err, RagError) else f"{type(err).__name__}: {err}"
        return RunResult(status="error", error=message, latency_ms=round((time.perf_counter() - started) * 1000, 2),
                         measures=measures)
    status, score = chk.case_score(results, case.threshold)
    return RunResult(status=status, score=score, assertions=results, output=output,  # type: ignore[arg-type]
                     usage=usage, measures=measures, latency_ms=round((time.perf_counter() - started) * 1000, 2))


# ------------------------------------------------------------------ all cases
def case_input(case: Any) -> dict[str, Any]:
    if isinstance(case, s.QACase):
        return {"question": case.question}
    if isinstance(case, s.RetrievalCase):
        return {"query": case.query, "expect": case.expect.model_dump(exclude_none=True)}
    if isinstance(case, (s.SummaryCase, s.BriefingCase)):
        return {"documents": case.documents}
    return {"turns": [t.question for t in case.turns]}


def aggregate(loaded: LoadedSuite, case: Any, runs: list[RunResult]) -> CaseResult:
    """Fold repetitions into one result: a case passes only if every run passed."""
    counted = [r for r in runs if r.status != "skipped"]
    passed = sum(r.status == "pass" for r in counted)
    if not counted:
        status: Status = "skipped"
    elif passed == len(counted):
        status = "xpass" if case.xfail else "pass"
    else:
        status = "xfail" if case.xfail else ("error" if any(r.status == "error" for r in counted) else "fail")
    shown = next((r for r in runs if r.status in ("fail", "error")), runs[0])
    usage = Usage()
    for r in runs:
        usage = usage.add(r.usage)
    return CaseResult(
        suite=loaded.name, id=case.id, kind=case.kind, corpus=loaded.suite.corpus_of(case), file=str(loaded.path),
        line=loaded.case_lines.get(case.id, 0), description=case.description, input=case_input(case), xfail=case.xfail,
        threshold=case.threshold, status=status, score=shown.score, runs=len(runs), passed_runs=passed,
        pass_rate=round(passed / len(counted), 4) if counted else None, assertions=shown.assertions,
        output=shown.output, error=shown.error, latency_ms=round(sum(r.latency_ms for r in runs) / len(runs), 2),
        usage=usage, measures=[r.measures for r in runs],
    )


def run_cases(selected: list[tuple[LoadedSuite, Any]], env: Env, *, repeat: int = 1, concurrency: int = 1,
              on_done: Callable[[], None] | None = None) -> list[CaseResult]:
    """Run every selected case ``repeat`` times, ``concurrency`` at a time; results in input order."""
    tasks = [(i, r, case, loaded.suite.corpus_of(case)) for i, (loaded, case) in enumerate(selected) for r in range(repeat)]
    runs: list[list[RunResult | None]] = [[None] * repeat for _ in selected]

    def work(task: tuple[int, int, Any, str]) -> None:
        i, r, case, corpus = task
        runs[i][r] = run_once(case, corpus, env)
        if on_done:
            on_done()

    if concurrency <= 1:
        for task in tasks:
            work(task)
    else:
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="rag-eval") as pool:
            list(pool.map(work, tasks))
    return [aggregate(loaded, case, [r for r in runs[i] if r is not None]) for i, (loaded, case) in enumerate(selected)]
