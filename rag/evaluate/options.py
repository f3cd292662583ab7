"""Command-line options of this subcommand (argparse only: imported when the parser is built)."""

import argparse
from pathlib import Path


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Run eval suites (YAML files in evals/, see evals/README.md) against temporary indexes of their corpora, "
        "print a summary table and metrics, and exit 1 when a suite is below its thresholds or a case regressed "
        "against --baseline."
    )
    parser.add_argument("suites", nargs="*", type=Path, metavar="SUITE",
                        help="suite files or directories of *.yaml (default: evals/)")
    parser.add_argument("--case", action="append", metavar="GLOB",
                        help="only cases whose id (or suite/id) matches this glob; repeatable")
    parser.add_argument("--junit", type=Path, metavar="PATH", help="write a JUnit XML report (one testcase per case)")
    parser.add_argument("--markdown", type=Path, metavar="PATH", help="write a Markdown report, failures first")
    parser.add_argument("--html", type=Path, metavar="PATH", help="write an HTML report")
    parser.add_argument("--baseline", type=Path, metavar="PATH",
                        help="compare with a saved results JSON; a regression fails the run")
    parser.add_argument("--save-baseline", type=Path, metavar="PATH", help="save these results as a baseline JSON")
    parser.add_argument("--backend", help="offline or openai (default: openai when OPENAI_API_KEY is set)")
    parser.add_argument("--model", action="append", metavar="MODEL",
                        help="model name for the openai backend (or RAG_MODEL); give it twice or more to compare models")
    parser.add_argument("--compare", nargs="+", metavar="BACKEND[:MODEL]",
                        help="run the cases under each backend (optionally with a model), e.g. --compare offline "
                             "openai:gpt-4o-mini, and print one table of cases by run (JUnit and Markdown too)")
    parser.add_argument("--replay", action="store_true",
                        help="answer model calls only from the response cache beside --index (no network, no key "
                             "needed); implies --backend openai unless --backend is given")
    parser.add_argument("--no-cache", action="store_true", help="bypass the response cache")
    parser.add_argument("--repeat", type=_positive, default=1, metavar="N", help="run every case N times (default 1)")
    parser.add_argument("--concurrency", "-j", type=_positive, metavar="N",
                        help="cases run in parallel (default 4 with an LLM backend, 1 offline)")
