"""The `rag` command: parse arguments, make one library call, render the result.

No SQL, prompt text or validation lives here. Expected failures (RagError) become one line on
stderr and a non-zero exit; Ctrl-C exits 130 with the index unchanged.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .errors import RagError
from .normalize import clean_input
from .render import answer_text as render_answer, page_label, quoted_in, terminal_safe

EPILOG = "Settings come from RAG_* environment variables (see README); options override them."
MAX_K = 1000


def _count(text: str) -> int:
    """``-k``: a whole number of results, 1 to MAX_K."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None
    if not 1 <= value <= MAX_K:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_K}, not {text}")
    return value


def _date(text: str) -> str:
    """``--since``/``--until``: a real calendar date (YYYY, YYYY-MM or YYYY-MM-DD)."""
    import datetime as dt

    for fmt, width in (("%Y-%m-%d", 10), ("%Y-%m", 7), ("%Y", 4)):
        if len(text) == width:
            try:
                dt.datetime.strptime(text, fmt)
                return text
            except ValueError:
                break
    raise argparse.ArgumentTypeError(f"not a valid date: {text!r} (use YYYY-MM-DD)")


class _SafeStdout:
    """stdout for people: control characters and escape sequences from documents never reach the terminal."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        return self._stream.write(terminal_safe(text))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line, like every other error (a query starting with '-' needs '--' first)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"rag: error: {terminal_safe(message)} (see {self.prog} --help)\n")


_C1 = {c: f"\\u{c:04x}" for c in range(0x80, 0xA0)}


def _json_text(obj: Any, *, indent: int | None = 2) -> str:
    """JSON that is also safe on a terminal: json escapes C0 controls; C1 controls (U+0080-U+009F) are escaped too."""
    if isinstance(obj, BaseModel):
        obj = obj.model_dump(mode="json")
    return json.dumps(obj, ensure_ascii=False, indent=indent, default=str).translate(_C1)


def _print_json(obj: Any) -> None:
    sys.stdout.write(_json_text(obj) + "\n")


def _settings(args: argparse.Namespace, **extra: Any):
    from .config import load_settings

    return load_settings(index=getattr(args, "index", None), **extra)


def _progress(total: int | None, desc: str, unit: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=not sys.stderr.isatty(), file=sys.stderr, leave=False)


# ------------------------------------------------------------------ index / search / stats
def cmd_index(args: argparse.Namespace) -> int:
    from .chunk import Chunker
    from .index import index_paths
    from .ingest import Document
    from .stores import open_index

    settings = _settings(args)
    chunker = Chunker(max_tokens=settings.chunk.max_tokens, overlap=settings.chunk.overlap, encoding=settings.encoding)
    paths = [Path(p) for p in (args.paths or ["seeds"])]
    for path in paths:  # before creating an index file, so a typo leaves nothing behind
        if not path.exists():
            raise RagError(f"no such file or directory: {path}")
    store = open_index(settings.index, create=True)
    with _progress(None, "indexing", "doc") as bar:
        def progress(event: object, chunks: int) -> None:
            if isinstance(event, Document):
                bar.update(1)
                bar.set_postfix(chunks=chunks, refresh=False)

        report = index_paths(paths, store, chunker, prune=args.prune, progress=progress,
                             workers=settings.index_workers or None)
    summary = {
        "index": str(store.path), "indexed": report.indexed, "replaced": report.replaced,
        "unchanged": report.unchanged, "pruned": report.pruned, "chunks_written": report.chunks,
        "skipped": [{"source": s.source, "reason": s.reason} for s in report.skipped],
        "warnings": [{"source": w.source, "message": w.message} for w in report.warnings],
    }
    if args.json:
        _print_json(summary)
    else:
        for w in report.warnings:
            print(terminal_safe(f"warning: {w.source}: {w.message}"), file=sys.stderr)
        for s in report.skipped:
            print(terminal_safe(f"skipped: {s.source}: {s.reason}"), file=sys.stderr)
        print(
            f"Indexed {report.indexed} new, {report.replaced} changed, {report.unchanged} unchanged, "
            f"{report.pruned} pruned, {len(report.skipped)} skipped, {len(report.warnings)} warning(s); "
            f"{report.chunks} chunks written to {store.path}"
        )
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from .retrieve import retrieve
    from .stores import open_index

    settings = _settings(args)
    hits = retrieve(open_index(settings.index, readonly=True), clean_input(args.query),
                    k=settings.k if args.k is None else args.k, source_glob=args.source, date_from=args.since, date_to=args.until)
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
    from .stores import open_index

    settings = _settings(args)
    stats = open_index(settings.index, readonly=True).stats()
    stats |= {"encoding": settings.encoding, "chunk_max_tokens": settings.chunk.max_tokens, "chunk_overlap": settings.chunk.overlap}
    if args.json:
        _print_json(stats)
    else:
        width = max(len(k) for k in stats)
        for key, value in stats.items():
            print(f"{key:<{width}}  {value}")
    return 0


# ------------------------------------------------------------------ ask / chat
def _generation(args: argparse.Namespace, *, create_index: bool = False, readonly: bool = True):
    """Settings, index and backend for commands that generate (read-only unless they must write)."""
    from .backends import get_backend
    from .stores import open_index

    llm = {"max_output_tokens": args.max_tokens} if getattr(args, "max_tokens", None) else None
    settings = _settings(args, backend=args.backend, model=args.model, llm=llm,
                         cache="off" if getattr(args, "no_cache", False) else None)
    store = open_index(settings.index, create=create_index, readonly=readonly and not create_index)
    return settings, store, get_backend(settings)


def _strict_failed(answer: Any) -> bool:
    return bool(answer.flags or answer.dropped_citations)


def cmd_ask(args: argparse.Namespace) -> int:
    from .answer import ask

    settings, store, backend = _generation(args)
    answer = ask(clean_input(args.question), store=store, backend=backend, settings=settings, k=args.k, source_glob=args.source,
                 max_tokens=args.max_tokens)
    if args.json:
        _print_json(answer)
    else:
        print(render_answer(answer))
    return 3 if args.strict and _strict_failed(answer) else 0


CHAT_HELP = """Commands: /sources (citations of the last answer), /reset (forget the conversation), /help, /exit.
Ctrl-C cancels the current answer; Ctrl-D exits."""


def _chat_command(line: str, conversation: Any, save: Callable[[], None], *, as_json: bool) -> bool:
    """A slash command, the same on a terminal and on a pipe; True when it ends the chat (/exit)."""
    from .render import sources_text

    command = line.split()[0].lower()
    if command in {"/exit", "/quit"}:
        return True
    last = conversation.last_answer
    if command == "/reset":
        conversation.reset()
        save()
        reply: dict[str, Any] = {"command": "/reset", "message": "Conversation reset."}
    elif command == "/sources":
        cites = last.citations if last else []
        text = sources_text(cites) if cites else "No sources for the last answer."
        reply = {"command": "/sources", "citations": [c.model_dump(mode="json") for c in cites], "message": text}
    elif command == "/help":
        reply = {"command": "/help", "message": CHAT_HELP}
    else:
        reply = {"command": command, "error": f"unknown command {command}", "message": f"Unknown command {command}. {CHAT_HELP}"}
    if as_json:
        print(_json_text(reply, indent=None), flush=True)
    else:
        print(reply["message"], flush=True)
    return False


def cmd_chat(args: argparse.Namespace) -> int:
    from .answer import Conversation, chat_turn
    from .stores import sessions_for
    from .types import Answer

    settings, store, backend = _generation(args, readonly=not args.session)
    sessions = sessions_for(store)
    conversation = Conversation(turns=sessions.load(args.session) if args.session else [])
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    options = {"store": store, "backend": backend, "settings": settings, "k": args.k, "source_glob": args.source,
               "max_tokens": args.max_tokens}

    def save() -> None:
        if args.session:
            sessions.save(args.session, conversation.turns)

    if not interactive:
        status = 0
        for line in sys.stdin:
            question = clean_input(line).strip()
            if not question:
                continue
            if question.startswith("/"):
                done = _chat_command(question, conversation, save, as_json=args.json)
                if done:
                    return status
                continue
            try:
                answer = [i for i in chat_turn(conversation, question, **options) if isinstance(i, Answer)][-1]
            except RagError as err:
                print(_json_text({"question": question, "error": str(err)}, indent=None) if args.json else f"error: {err}", flush=True)
                status = 1
                continue
            save()
            if args.json:
                print(_json_text(answer, indent=None), flush=True)
            else:
                cites = " ".join(f"[{i}] {c.source}{page_label(c)}" + ("" if quoted_in(answer.answer, c.quote) else
                                 f": \"{' '.join(c.quote.split())}\"") for i, c in enumerate(answer.citations, 1))
                print(" ".join(answer.answer.split()) + (f"  {cites}" if cites else ""), flush=True)
        return status

    try:
        import readline  # noqa: F401  (history and line editing for input())
    except ImportError:
        pass
    print(f"rag chat ({backend.name}: {backend.model}). {CHAT_HELP}")
    while True:
        try:
            question = clean_input(input("\n> ")).strip()
        except EOFError:
            print()
            return 0
        except KeyboardInterrupt:
            print()
            continue
        if not question:
            continue
        if question.startswith("/"):
            if _chat_command(question, conversation, save, as_json=False):
                return 0
            continue
        try:
            streamed = ""
            for item in chat_turn(conversation, question, **options):
                if isinstance(item, Answer):
                    if item.standalone_question:
                        print(f"\n(understood as: {item.standalone_question})")
                    if item.answer.split() != streamed.split():
                        # Verification changed what was streamed (e.g. an ungrounded answer became a refusal).
                        print(f"\n\nVerified answer: {item.answer}")
                    print(render_answer(item)[len(item.answer):].rstrip() or "")
                else:
                    streamed += item
                    print(item, end="", flush=True)
            save()
        except KeyboardInterrupt:
            print("\n[answer cancelled]")
        except RagError as err:
            print(f"\nerror: {err}")


# ------------------------------------------------------------------ summarize / brief
def cmd_summarize(args: argparse.Namespace) -> int:
    from fnmatch import fnmatch

    from .briefing import Runner, summarize_document
    from .render import summary_markdown

    settings, store, backend = _generation(args)
    docs = store.list_documents()
    if args.docs:
        docs = [d for d in docs if any(d["id"] == p or fnmatch(str(d["source"]), p) for p in args.docs)]
        if not docs:
            raise RagError(f"no indexed document matches {' '.join(args.docs)}", hint="see `rag stats` or index them first")
    runner = Runner(settings=settings, backend=backend, max_tokens=args.max_tokens)
    summaries = []
    with _progress(len(docs), "summarizing", "doc") as bar:
        for d in docs:
            summaries.append(summarize_document(str(d["id"]), store=store, runner=runner)[0])
            bar.update(1)
    if args.json:
        _print_json([s.model_dump(mode="json") for s in summaries])
    else:
        print("\n\n".join(summary_markdown(s) for s in summaries), end="")
    return 0


def cmd_brief(args: argparse.Namespace) -> int:
    from .briefing import BatchProgress, Runner, run_batch

    paths = [Path(p) for p in (args.paths or ["seeds"])]
    for path in paths:  # before creating an index file, so a typo leaves nothing behind
        if not path.exists():
            raise RagError(f"no such file or directory: {path}")
    settings, store, backend = _generation(args, create_index=True)
    runner = Runner(settings=settings, backend=backend, max_tokens=args.max_tokens)
    with _progress(None, "briefing", "doc") as bar:
        def on_progress(p: BatchProgress) -> None:
            bar.total = p.total
            bar.n = p.done + p.skipped + p.failed
            cost = "?" if p.usage.cost_usd is None else f"${p.usage.cost_usd:.4f}"
            bar.set_postfix(done=p.done, skipped=p.skipped, failed=p.failed,
                            tokens=p.usage.prompt_tokens + p.usage.completion_tokens, cost=cost, refresh=True)

        result = run_batch(paths, out_dir=Path(args.out), store=store, runner=runner, concurrency=args.concurrency,
                           force=args.force, title=args.title, template=args.template, since=args.since,
                           source_glob=args.source, on_progress=on_progress)
    b, p = result.briefing, result.progress
    summary = {
        "out": str(result.out_dir), "briefing_md": str(result.out_dir / "briefing.md"),
        "briefing_json": str(result.out_dir / "briefing.json"), "documents": p.total, "summarized": p.done,
        "resumed": p.skipped, "failed": len(b.failures),
        "failures": [f.model_dump() for f in b.failures], "usage": b.usage.model_dump(), "usage_this_run": p.usage.model_dump(),
    }
    if args.json:
        _print_json(summary)
    else:
        for f in b.failures:
            print(terminal_safe(f"failed: {f.source}: {f.reason}"), file=sys.stderr)
        print(f"Briefing written to {summary['briefing_md']} ({p.done} summarized, {p.skipped} already done, "
              f"{len(b.failures)} failed).")
    return 1 if result.failed else 0


# ------------------------------------------------------------------ migrate / schema / config
def cmd_migrate(args: argparse.Namespace) -> int:
    from .index import SCHEMA_VERSION, SQLiteIndex
    from .stores import open_index

    settings = _settings(args)
    if settings.index_is_database:
        from .index_pg import SCHEMA_VERSION as PG_VERSION, PostgresIndex

        before, version = PostgresIndex.peek_version(str(settings.index)), PG_VERSION
        store = open_index(settings.index, create=True)
        label = str(store.path)
        store.close()
    else:
        if not Path(settings.index).exists():
            raise RagError(f"no index at {settings.index}", hint="create it with `rag index PATHS`, or pass --index")
        before, version, label = SQLiteIndex.peek_version(settings.index), SCHEMA_VERSION, str(settings.index)
        SQLiteIndex(settings.index, create=True).close()
    result = {"index": label, "schema_version_before": before, "schema_version": version}
    if args.json:
        _print_json(result)
    else:
        print(f"{label}: schema version {before} -> {version}" if before != version
              else f"{label}: already at schema version {version}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from .doctor import check_index

    report = check_index(_settings(args))
    if args.json:
        _print_json(report.model_dump(mode="json"))
    else:
        for check in report.checks:
            print(f"{'ok  ' if check.ok else 'FAIL'}  {check.name}: {check.detail}")
    if not report.ok:
        failed = next(c for c in report.checks if not c.ok)
        if not args.json:
            print(f"rag: error: {failed.name}: {failed.detail}", file=sys.stderr)
        return 1
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from .types import SCHEMAS

    if args.name is None:
        if args.json:
            _print_json(sorted(SCHEMAS))
        else:
            print("Schemas (rag schema NAME prints one as JSON Schema):")
            for name in SCHEMAS:
                print(f"  {name}")
        return 0
    if args.name not in SCHEMAS:
        raise RagError(f"unknown schema {args.name!r}", hint=f"choose one of: {', '.join(SCHEMAS)}")
    _print_json(SCHEMAS[args.name].model_json_schema())
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    from .config import describe_settings

    rows = describe_settings(_settings(args))
    if args.json:
        _print_json({name: value for name, _, value, _ in rows})
        return 0
    for name, env, value, description in rows:
        print(f"{name:<28} {str(value):<22} {env:<30} {description}")
    return 0


# ------------------------------------------------------------------ eval / serve (their own modules)
def cmd_eval(args: argparse.Namespace) -> int:
    from .evaluate.cli import run

    return run(args)


def cmd_serve(args: argparse.Namespace) -> int:
    from .server.cli import run

    return run(args)


# ------------------------------------------------------------------ parser
def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="rag", description="Grounded Q&A, strategy summaries and briefings over your documents.", epilog=EPILOG,
    )
    parser.add_argument("--index", type=str, help="index file or postgresql:// URL (default .rag/index.db, RAG_HOME/index.db when RAG_HOME is set, or RAG_INDEX)")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"rag {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    def add(name: str, fn: Callable[[argparse.Namespace], int], help: str, description: str | None = None) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=description or help, epilog=EPILOG)
        p.add_argument("--index", type=str, default=argparse.SUPPRESS, help="index file or postgresql:// URL (default .rag/index.db, RAG_HOME/index.db when RAG_HOME is set, or RAG_INDEX)")
        p.add_argument("--json", action="store_true", help="machine-readable JSON output")
        p.set_defaults(fn=fn)
        return p

    p = add("index", cmd_index, "index files and directories (default: seeds/)",
            "Ingest .txt/.md/.rst/.html/.jsonl/.pdf/.docx files, chunk them and write the index in one transaction. "
            "Unchanged documents are skipped; bad files are reported and skipped.")
    p.add_argument("paths", nargs="*", help="files or directories (default: seeds/)")
    p.add_argument("--prune", action="store_true", help="remove indexed documents whose files are gone")

    p = add("search", cmd_search, "ranked chunks for a query (BM25)")
    p.add_argument("query")
    p.add_argument("-k", type=_count, help="number of hits (default 6)")
    p.add_argument("--source", help="only sources matching this glob, e.g. 'seeds/*'")
    p.add_argument("--since", type=_date, help="only documents dated on/after YYYY-MM-DD")
    p.add_argument("--until", type=_date, help="only documents dated on/before YYYY-MM-DD")

    add("stats", cmd_stats, "index statistics and settings")

    def generation_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("-k", type=_count, help="chunks to retrieve (default 6, or RAG_K)")
        p.add_argument("--source", help="only sources matching this glob")
        p.add_argument("--backend", help="offline or openai (default: openai when OPENAI_API_KEY is set)")
        p.add_argument("--model", help="model name for the openai backend (or RAG_MODEL)")
        p.add_argument("--max-tokens", type=int, help="output tokens to request and reserve")
        p.add_argument("--no-cache", action="store_true", help="bypass the response cache")

    p = add("ask", cmd_ask, "answer a question from the index, with verified citations",
            "Retrieve, generate, verify every citation against the source text, and print the answer. "
            "When the sources don't hold the answer, it says so (refused: true). Exit 3 under --strict when "
            "a citation was dropped or the answer has unsupported specifics.")
    p.add_argument("question")
    generation_options(p)
    p.add_argument("--strict", action="store_true", help="exit 3 if any citation was dropped or a specific is unsupported")

    p = add("chat", cmd_chat, "interactive chat over the index (or one question per stdin line)",
            "On a terminal: a prompt loop with history and streaming answers. Otherwise reads one question per "
            "line from stdin and writes one answer per line (--json: JSONL). Follow-ups are condensed into "
            "standalone questions. " + CHAT_HELP)
    generation_options(p)
    p.add_argument("--session", help="save and resume the conversation under this name")

    p = add("summarize", cmd_summarize, "structured strategy summary of indexed documents",
            "Players, their model and moves, themes and implications; every item carries a verified citation. "
            "Prints Markdown (or --json).")
    p.add_argument("docs", nargs="*", metavar="DOC", help="document ids or source globs (default: all indexed)")
    generation_options(p)

    p = add("brief", cmd_brief, "batch briefing over a corpus: per-document summaries, then a briefing",
            "Indexes PATHS, summarizes each document (in parallel, resumable: documents already done are skipped), "
            "then writes OUT/briefing.md, OUT/briefing.json and OUT/summaries/. A document that fails is listed "
            "in the briefing's failures and the exit code is 1; the rest still complete.")
    p.add_argument("paths", nargs="*", help="files or directories (default: seeds/)")
    p.add_argument("--out", default="out", help="output directory (default: out/)")
    p.add_argument("--concurrency", type=int, default=4, help="parallel model calls (default 4)")
    p.add_argument("--force", action="store_true", help="redo documents already summarized")
    p.add_argument("--title", help="briefing title")
    p.add_argument("--template", default="briefing", help="briefing prompt in prompts/ (default: briefing)")
    p.add_argument("--since", type=_date, help="only documents dated on/after YYYY-MM-DD")
    generation_options(p)

    add("migrate", cmd_migrate, "upgrade an existing index to this version's schema (the only other command that writes it is `rag index`)")
    add("doctor", cmd_doctor, "check that the index opens: connection, schema version, write access, contents; one line per check")

    p = add("schema", cmd_schema, "print the JSON Schema of an output type (Answer, StrategySummary, Briefing, ...); no name lists them")
    p.add_argument("name", nargs="?", default=None)
    add("config", cmd_config, "show the effective settings, their environment variables and descriptions")

    from .evaluate.options import configure as configure_eval
    from .server.options import configure as configure_serve

    configure_eval(add("eval", cmd_eval, "run eval suites (evals/) and report metrics; exit 1 below thresholds"))
    configure_serve(add("serve", cmd_serve, "HTTP service: JSON API, streaming chat, OpenAI-compatible endpoint, web page"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "json", False):
        sys.stdout = _SafeStdout(sys.stdout)  # type: ignore[assignment]
    try:
        return args.fn(args)
    except RagError as err:
        print(f"rag: error: {terminal_safe(str(err))}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("rag: interrupted (nothing was written)", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except sqlite3.Error as err:  # a damaged index or one changed behind our back
        print(f"rag: error: the index cannot be read: {terminal_safe(str(err))} (rebuild it with `rag index` into a new "
              f"--index file, or run `rag migrate`)", file=sys.stderr)
        return 1
    except OSError as err:  # writing an output file: a full disk, a read-only directory, a missing folder
        where = f" {err.filename}" if err.filename else ""
        print(f"rag: error: cannot write{where}: {err.strerror or err}", file=sys.stderr)
        return 1
    except Exception as err:
        psycopg = sys.modules.get("psycopg")
        if psycopg is None or not isinstance(err, psycopg.Error):
            raise
        # A database error that no store call translated (a bug in that call, or a server that went away).
        print(f"rag: error: the index database failed: {terminal_safe(str(err).splitlines()[0] if str(err) else type(err).__name__)}",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
