"""The `rag` command: parse arguments, make one library call, render the result.

No SQL, prompt text or validation lives here. Expected failures (RagError) become one line on
stderr and a non-zero exit; Ctrl-C exits 130 with the index unchanged.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .errors import RagError

EPILOG = "Settings come from RAG_* environment variables (see README); options override them."


def _print_json(obj: Any) -> None:
    if isinstance(obj, BaseModel):
        obj = obj.model_dump(mode="json")
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, indent=2) + "\n")


def _settings(args: argparse.Namespace, **extra: Any):
    from .config import load_settings

    return load_settings(index=getattr(args, "index", None), **extra)


def _progress(total: int | None, desc: str, unit: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=not sys.stderr.isatty(), file=sys.stderr, leave=False)


# ------------------------------------------------------------------ index / search / stats
def cmd_index(args: argparse.Namespace) -> int:
    from .chunk import Chunker
    from .index import SQLiteIndex, index_paths
    from .ingest import Document

    settings = _settings(args)
    chunker = Chunker(max_tokens=settings.chunk.max_tokens, overlap=settings.chunk.overlap, encoding=settings.encoding)
    paths = [Path(p) for p in (args.paths or ["seeds"])]
    store = SQLiteIndex(settings.index, create=True)
    with _progress(None, "indexing", "doc") as bar:
        def progress(event: object, chunks: int) -> None:
            if isinstance(event, Document):
                bar.update(1)
                bar.set_postfix(chunks=chunks, refresh=False)

        report = index_paths(paths, store, chunker, prune=args.prune, progress=progress)
    summary = {
        "index": str(settings.index), "indexed": report.indexed, "replaced": report.replaced,
        "unchanged": report.unchanged, "pruned": report.pruned, "chunks_written": report.chunks,
        "skipped": [{"source": s.source, "reason": s.reason} for s in report.skipped],
        "warnings": [{"source": w.source, "message": w.message} for w in report.warnings],
    }
    if args.json:
        _print_json(summary)
    else:
        for w in report.warnings:
            print(f"warning: {w.source}: {w.message}", file=sys.stderr)
        for s in report.skipped:
            print(f"skipped: {s.source}: {s.reason}", file=sys.stderr)
        print(
            f"Indexed {report.indexed} new, {report.replaced} changed, {report.unchanged} unchanged, "
            f"{report.pruned} pruned, {len(report.skipped)} skipped; {report.chunks} chunks written to {settings.index}"
        )
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from .index import SQLiteIndex
    from .retrieve import retrieve

    settings = _settings(args)
    hits = retrieve(SQLiteIndex(settings.index), args.query, k=args.k or settings.k, source_glob=args.source,
                    date_from=args.since, date_to=args.until)
    if args.json:
        _print_json([h.model_dump(mode="json") for h in hits])
        return 0
    if not hits:
        print("No matching chunks.")
    for h in hits:
        print(f"{h.rank}. {h.source}  chunk {h.chunk.ordinal}  [{h.chunk.start}:{h.chunk.end}]  score {h.score:.2f}")
        print(f"   {h.snippet}\n")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from .index import SQLiteIndex

    settings = _settings(args)
    stats = SQLiteIndex(settings.index).stats()
    stats |= {"encoding": settings.encoding, "chunk_max_tokens": settings.chunk.max_tokens, "chunk_overlap": settings.chunk.overlap}
    if args.json:
        _print_json(stats)
    else:
        width = max(len(k) for k in stats)
        for key, value in stats.items():
            print(f"{key:<{width}}  {value}")
    return 0


# ------------------------------------------------------------------ parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rag", description="Grounded Q&A, strategy summaries and briefings over your documents.", epilog=EPILOG,
    )
    parser.add_argument("--index", type=Path, help="index file (default .rag/index.db, or RAG_INDEX)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, fn: Callable[[argparse.Namespace], int], help: str, description: str | None = None) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=description or help, epilog=EPILOG)
        p.add_argument("--index", type=Path, default=argparse.SUPPRESS, help="index file (default .rag/index.db, or RAG_INDEX)")
        p.add_argument("--json", action="store_true", help="machine-readable JSON output")
        p.set_defaults(fn=fn)
        return p

    p = add("index", cmd_index, "index files and directories (default: seeds/)",
            "Ingest .txt/.md/.html/.jsonl files, chunk them and write the index in one transaction. "
            "Unchanged documents are skipped; bad files are reported and skipped.")
    p.add_argument("paths", nargs="*", help="files or directories (default: seeds/)")
    p.add_argument("--prune", action="store_true", help="remove indexed documents whose files are gone")

    p = add("search", cmd_search, "ranked chunks for a query (BM25)")
    p.add_argument("query")
    p.add_argument("-k", type=int, help="number of hits (default 6)")
    p.add_argument("--source", help="only sources matching this glob, e.g. 'seeds/*'")
    p.add_argument("--since", help="only documents dated on/after YYYY-MM-DD")
    p.add_argument("--until", help="only documents dated on/before YYYY-MM-DD")

    add("stats", cmd_stats, "index statistics and settings")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.fn(args)
    except RagError as err:
        print(f"rag: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("rag: interrupted (nothing was written)", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
