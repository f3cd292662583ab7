"""``rag eval``: load suites, build the corpora, run the cases, report, and decide the exit code.

Exit 0 when every suite meets its thresholds and nothing regressed against ``--baseline``;
1 otherwise; a bad suite or setting is a one-line ConfigError (exit 2).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .loading import LoadedSuite, load_suites

DEFAULT_SUITES = Path("evals")


def _select(suites: list[LoadedSuite], patterns: list[str] | None) -> list[tuple[LoadedSuite, Any]]:
    selected = [(s, c) for s in suites for c in s.suite.cases
                if not patterns or any(fnmatch(c.id, p) or fnmatch(f"{s.name}/{c.id}", p) for p in patterns)]
    if not selected:
        raise ConfigError(f"no case matches {' '.join(patterns or [])}")
    return selected


def _settings(args: argparse.Namespace, *, backend: str | None, model: str | None):
    from ..config import load_settings

    backend = backend or ("openai" if args.replay else None)
    cache = "replay" if args.replay else ("off" if args.no_cache else None)
    return load_settings(index=getattr(args, "index", None), backend=backend, model=model, cache=cache)


def variants(args: argparse.Namespace) -> list[tuple[str | None, str | None]]:
    """(backend, model) per run: ``--compare BACKEND[:MODEL] ...``, several ``--model``, or the one configured."""
    models = args.model or []
    if args.compare:
        if len(models) > 1:
            raise ConfigError("use either --compare BACKEND[:MODEL] ... or several --model, not both")
        from ..backends.base import REGISTRY

        out = []
        for spec in args.compare:
            backend, _, model = spec.partition(":")
            if backend not in REGISTRY:
                raise ConfigError(f"--compare: unknown backend {backend!r} in {spec!r}",
                                  hint=f"choose from {', '.join(REGISTRY)}; put suite paths before --compare")
            out.append((backend or None, model or (models[0] if models else None)))
        return out
    if len(models) > 1:
        return [(args.backend, m) for m in models]
    return [(args.backend, models[0] if models else None)]


def _read_baseline(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"cannot read baseline {path}: {err.strerror}") from err
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}:{err.lineno}: baseline is not JSON: {err.msg}") from err
    if not isinstance(data, dict) or not isinstance(data.get("cases"), list):
        raise ConfigError(f"{path}: not a results file of `rag eval --json` / --save-baseline")
    return data


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"cannot write {path}: {err.strerror}") from err


def run_suites(args: argparse.Namespace, suites: list[LoadedSuite], selected: list[tuple[LoadedSuite, Any]], *,
               backend_name: str | None, model: str | None, baseline: dict[str, Any] | None = None) -> Any:
    """One run of the selected cases with one backend and model: an EvalReport."""
    from tqdm import tqdm

    from ..backends import get_backend
    from .metrics import by_kind, check_thresholds, compare, compute_metrics
    from .report import EvalReport, SuiteReport
    from .runner import Env, build_indexes, run_cases

    started = time.perf_counter()
    settings = _settings(args, backend=backend_name, model=model)
    # The eval's indexes are temporary; the response cache stays where recordings live (beside --index).
    settings = settings.model_copy(update={"cache_path": settings.resolved_cache_path})
    corpora = {name: paths for s in suites for name, paths in s.suite.corpora.items()
               if any(s.suite.corpus_of(c) == name for owner, c in selected if owner is s)}
    backend = get_backend(settings)
    concurrency = args.concurrency or (1 if backend.name == "offline" else 4)
    with tempfile.TemporaryDirectory(prefix="rag-eval-") as tmp:
        env = Env(settings=settings.model_copy(update={"index": Path(tmp) / "unused.db"}), backend=backend,
                  indexes=build_indexes(corpora, settings, Path(tmp)))
        total = len(selected) * args.repeat
        progress = tqdm(total=total, desc=f"eval {backend.name}", unit="case", disable=not sys.stderr.isatty(),
                        file=sys.stderr, leave=False)
        with progress as bar:
            try:
                results = run_cases(selected, env, repeat=args.repeat, concurrency=concurrency,
                                    on_done=lambda: bar.update(1))
            finally:
                env.close()
                backend.close()

    suite_reports = []
    for s in suites:
        mine = [r for r in results if r.suite == s.name]
        if not mine:
            continue
        gated = compute_metrics(r for r in mine if not r.xfail)
        checks = check_thresholds(s.suite.thresholds, gated)
        suite_reports.append(SuiteReport(name=s.name, file=str(s.path), description=s.suite.description,
                                         metrics=compute_metrics(mine), gated=gated, checks=checks,
                                         passed=all(c.ok for c in checks)))
    comparison = compare(results, baseline, str(args.baseline)) if baseline is not None else None
    passed = all(s.passed for s in suite_reports) and not (comparison and comparison.regressions)
    return EvalReport(passed=passed, backend=backend.name, model=backend.model, repeat=args.repeat,
                      duration_s=round(time.perf_counter() - started, 2), metrics=compute_metrics(results),
                      gated=compute_metrics(r for r in results if not r.xfail),
                      by_kind=by_kind(results), suites=suite_reports, comparison=comparison, cases=results)


def run(args: argparse.Namespace) -> int:
    from .formats import html_report, junit_xml, markdown_report
    from .report import render_text

    runs = variants(args)
    suites = load_suites(args.suites or [DEFAULT_SUITES])
    unavailable = []
    for loaded in suites:
        if missing := loaded.suite.missing():
            hint = f" ({loaded.suite.requires_hint})" if loaded.suite.requires_hint else ""
            unavailable.append(f"{loaded.name}: {', '.join(missing)} is missing{hint}")
            print(f"rag eval: skipped suite {unavailable[-1]}", file=sys.stderr)
    suites = [s for s in suites if not s.suite.missing()]
    if not suites and unavailable:
        return 0  # nothing could run, nothing failed: said on stderr
    selected = _select(suites, args.case)
    if len(runs) > 1:
        return _run_matrix(args, suites, selected, runs)
    baseline = _read_baseline(args.baseline) if args.baseline else None
    report = run_suites(args, suites, selected, backend_name=runs[0][0], model=runs[0][1], baseline=baseline)
    report.unavailable = unavailable

    document = report.model_dump_json(indent=2)
    if args.save_baseline:
        _write(args.save_baseline, document + "\n")
    if args.junit:
        _write(args.junit, junit_xml(report))
    if args.markdown:
        _write(args.markdown, markdown_report(report))
    if args.html:
        _write(args.html, html_report(report))
    if args.json:
        sys.stdout.write(document + "\n")
    else:
        sys.stdout.write(render_text(report))
    return 0 if report.passed else 1


def _run_matrix(args: argparse.Namespace, suites: list[LoadedSuite], selected: list[tuple[LoadedSuite, Any]],
                runs: list[tuple[str | None, str | None]]) -> int:
    """The same cases under several backends/models: one table of cases by run, as promptfoo's matrix view."""
    from .matrix import build_matrix, matrix_junit, matrix_markdown, matrix_text

    for flag in ("baseline", "save_baseline", "html"):
        if getattr(args, flag):
            raise ConfigError(f"--{flag.replace('_', '-')} reports one run; not with --compare or several --model",
                              hint="use --json, --junit or --markdown for a comparison")
    matrix = build_matrix([run_suites(args, suites, selected, backend_name=b, model=m) for b, m in runs])
    if args.junit:
        _write(args.junit, matrix_junit(matrix))
    if args.markdown:
        _write(args.markdown, matrix_markdown(matrix))
    sys.stdout.write(matrix.model_dump_json(indent=2) + "\n" if args.json else matrix_text(matrix))
    return 0 if matrix.passed else 1
