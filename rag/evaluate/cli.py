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


def _settings(args: argparse.Namespace):
    from ..config import load_settings

    backend = args.backend or ("openai" if args.replay else None)
    cache = "replay" if args.replay else ("off" if args.no_cache else None)
    return load_settings(index=getattr(args, "index", None), backend=backend, model=args.model, cache=cache)


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


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..backends import get_backend
    from .formats import html_report, junit_xml, markdown_report
    from .metrics import by_kind, check_thresholds, compare, compute_metrics
    from .report import EvalReport, SuiteReport, render_text
    from .runner import Env, build_indexes, run_cases

    started = time.perf_counter()
    suites = load_suites(args.suites or [DEFAULT_SUITES])
    selected = _select(suites, args.case)
    baseline = _read_baseline(args.baseline) if args.baseline else None
    settings = _settings(args)
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
        progress = tqdm(total=total, desc="eval", unit="case", disable=not sys.stderr.isatty(), file=sys.stderr, leave=False)
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
    report = EvalReport(passed=passed, backend=backend.name, model=backend.model, repeat=args.repeat,
                        duration_s=round(time.perf_counter() - started, 2), metrics=compute_metrics(results),
                        by_kind=by_kind(results), suites=suite_reports, comparison=comparison, cases=results)

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
    return 0 if passed else 1
