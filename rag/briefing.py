"""Strategy summaries per document and cross-document briefings, with resumable batch runs.

Every item keeps only citations that verify against the document's chunks; items left without
one are dropped, never shown unsupported. A batch writes each summary as it completes (atomic
files under ``summaries/``), skips documents already done (content hash + prompt hash + model),
isolates failures per document, and records them in the briefing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

from .backends.base import Backend, GenerationRequest
from .chunk import Chunker
from .config import Settings
from .context import ContextChunk, context_from_chunks
from .errors import IngestError, RagError
from .grounding import unsupported_sentences, verify_citations
from .index import SQLiteIndex, index_paths
from .ingest import source_prefix
from .prompts import load_template, render_prompt
from .ratelimit import RateLimiter
from .render import briefing_markdown, summary_markdown
from .normalize import normalize
from .tokens import get_encoding
from .types import Briefing, BriefingSection, CitedItem, Failure, PlayerMoves, StrategySummary, Usage


# ------------------------------------------------------------------ verification
UNVERIFIED = " (unverified)"  # marks a model-written name or heading that the sources do not contain


def _verify_items(items: Sequence[CitedItem], context: Sequence[ContextChunk], *, checked: bool = True) -> tuple[list[CitedItem], int]:
    """Items whose citations verify. A model's wording must also say what its quotes say: an item whose
    text shares too few key terms with them is shown in the sources' own words instead."""
    kept, dropped = [], 0
    for item in items:
        verified, _ = verify_citations(item.citations, context)
        if not verified:
            dropped += 1
            continue
        text = item.text
        if checked and (not text.strip() or unsupported_sentences(text, [c.quote for c in verified])):
            text = " ... ".join(" ".join(c.quote.split()) for c in verified)
        kept.append(CitedItem(text=text, citations=verified))
    return kept, dropped


def _label(name: str, source_text: str, *, checked: bool) -> str:
    """``name`` as is when every word of it occurs as a whole word in ``source_text``; else marked unverified
    (so a model can neither invent a player nor pass off its own heading as the sources')."""
    clean = " ".join(name.split())
    if not checked or clean.endswith(UNVERIFIED):
        return clean
    words = re.findall(r"[^\W_]+", normalize(clean))
    known = set(re.findall(r"[^\W_]+", normalize(source_text)))
    return clean if words and all(w in known for w in words) else clean + UNVERIFIED


def verify_summary(summary: StrategySummary, context: Sequence[ContextChunk], *, checked: bool = True) -> StrategySummary:
    """Keep only items whose citations verify; players left with nothing are dropped; names the sources do not
    contain are marked unverified."""
    dropped = 0
    players = []
    source_text = " ".join(c.chunk.text for c in context)
    for p in summary.players:
        model, d1 = _verify_items([p.model] if p.model else [], context, checked=checked)
        moves, d2 = _verify_items(p.moves, context, checked=checked)
        dropped += d1 + d2
        if model or moves:
            players.append(PlayerMoves(name=_label(p.name, source_text, checked=checked), model=model[0] if model else None,
                                       moves=moves))
    themes, d3 = _verify_items(summary.themes, context, checked=checked)
    implications, d4 = _verify_items(summary.implications, context, checked=checked)
    return summary.model_copy(update={"players": players, "themes": themes, "implications": implications,
                                      "dropped_items": summary.dropped_items + dropped + d3 + d4})


def verify_briefing(briefing: Briefing, context: Sequence[ContextChunk], *, checked: bool = True) -> Briefing:
    executive, _ = _verify_items(briefing.executive_summary, context, checked=checked)
    sections = []
    for s in briefing.sections:
        points, _ = _verify_items(s.points, context, checked=checked)
        if points:
            quoted = " ".join(c.quote for p in points for c in p.citations)
            sections.append(BriefingSection(heading=_label(s.heading, quoted, checked=checked), points=points))
    sources = []
    for s in briefing.sources:
        kept, _ = _verify_items([s.summary], context, checked=checked)
        if kept:
            sources.append(s.model_copy(update={"summary": kept[0]}))
    # Open questions are the model's own words with no citation: shown, but marked as such.
    questions = [q if not checked or q.endswith(UNVERIFIED) else q.rstrip() + UNVERIFIED for q in briefing.open_questions]
    return briefing.model_copy(update={"executive_summary": executive, "sections": sections, "sources": sources,
                                       "open_questions": questions})


def merge_summaries(parts: Sequence[StrategySummary]) -> StrategySummary:
    """Reduce step for long documents: union players by name, concatenate items, drop repeats."""
    first = parts[0]
    players: dict[str, PlayerMoves] = {}
    seen: set[str] = set()

    def fresh(items: Sequence[CitedItem]) -> list[CitedItem]:
        out = [i for i in items if i.text not in seen]
        seen.update(i.text for i in out)
        return out

    for part in parts:
        for p in part.players:
            cur = players.setdefault(p.name, PlayerMoves(name=p.name))
            if cur.model is None and p.model and p.model.text not in seen:
                cur.model = p.model
                seen.add(p.model.text)
            cur.moves += fresh(p.moves)
    return first.model_copy(update={
        "players": list(players.values()),
        "themes": fresh([t for p in parts for t in p.themes]),
        "implications": fresh([t for p in parts for t in p.implications]),
        "dropped_items": sum(p.dropped_items for p in parts),
    })


# ------------------------------------------------------------------ one document
@dataclass
class Runner:
    """What every generation call of a batch shares: settings, backend, limits, a token counter."""

    settings: Settings
    backend: Backend
    max_tokens: int | None = None
    limiter: RateLimiter | None = None

    def __post_init__(self) -> None:
        self.enc = get_encoding(self.settings.encoding)
        self.limiter = self.limiter or RateLimiter(requests_per_minute=self.settings.llm.requests_per_minute,
                                                   tokens_per_minute=self.settings.llm.tokens_per_minute)

    @property
    def output_tokens(self) -> int:
        return self.max_tokens or self.settings.llm.max_output_tokens

    def budget(self, prompt_name: str) -> int:
        overhead = len(self.enc.encode_ordinary(load_template(prompt_name).body)) + 200
        return max(256, self.settings.llm.context_window - self.output_tokens - overhead)

    def generate(self, request: GenerationRequest):
        tokens = sum(len(self.enc.encode_ordinary(m["content"])) for m in request.prompt.messages) + self.output_tokens
        if self.backend.name != "offline":
            assert self.limiter is not None
            self.limiter.acquire(tokens)
        return self.backend.generate(request)


def summarize_document(doc_id: str, *, store: SQLiteIndex, runner: Runner) -> tuple[StrategySummary, Usage]:
    """A verified StrategySummary of one indexed document (map-reduce over chunks when long)."""
    doc = store.get_document(doc_id)
    if doc is None:
        raise IngestError(f"no indexed document {doc_id!r}", hint="see `rag stats` / GET /v1/documents")
    chunks = store.chunks_of(doc_id)
    budget = runner.budget("summary")
    batches: list[list] = [[]]
    used = 0
    for c in chunks:
        if batches[-1] and used + c.n_tokens + 12 > budget:
            batches.append([])
            used = 0
        batches[-1].append(c)
        used += c.n_tokens + 12
    parts, usage, ref = [], Usage(), None
    for batch in batches:
        context = context_from_chunks(batch, source=doc.source, title=doc.title, page_starts=doc.pages)
        prompt = render_prompt("summary", doc_id=doc.id, title=doc.title, sources=[c.prompt_vars() for c in context])
        ref = prompt.ref
        gen = runner.generate(GenerationRequest(task="summary", prompt=prompt, schema=StrategySummary, max_tokens=runner.max_tokens,
                                                inputs={"doc_id": doc.id, "title": doc.title, "context": context}))
        assert isinstance(gen.output, StrategySummary)
        draft = gen.output.model_copy(update={"doc_id": doc.id, "title": doc.title})  # never a model's retelling
        parts.append(verify_summary(draft, context, checked=not runner.backend.trusted_text))
        usage = usage.add(gen.usage)
    summary = merge_summaries(parts) if parts else StrategySummary(doc_id=doc.id, title=doc.title)
    return summary.model_copy(update={"prompt": ref, "backend": runner.backend.name, "model": runner.backend.model}), usage


# ------------------------------------------------------------------ batch
def write_atomic(path: Path, text: str) -> None:
    """Write via a temp file in the same directory and rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not mkstemp: its files are 0600. Opened with 0666 the file gets the umask's mode, like any other output.
    tmp = str(path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _safe_name(doc_id: str) -> str:
    base = re.sub(r"[^\w.-]+", "_", doc_id).strip("._")[:80] or "doc"
    return f"{base}-{hashlib.sha256(doc_id.encode()).hexdigest()[:8]}"


@dataclass
class BatchProgress:
    total: int = 0
    done: int = 0
    skipped: int = 0
    failed: int = 0
    usage: Usage = field(default_factory=Usage)  # spent by this run
    total_usage: Usage = field(default_factory=Usage)  # of every summary in the briefing, resumed ones included


@dataclass
class BatchResult:
    briefing: Briefing
    out_dir: Path
    summaries: list[StrategySummary]
    progress: BatchProgress

    @property
    def failed(self) -> bool:
        return bool(self.briefing.failures)


def _summary_key(sha256: str, backend: Backend, prompt_hash: str) -> str:
    return f"{sha256}:{prompt_hash}:{backend.name}:{backend.model}"


@dataclass
class SummaryResult:
    """One document's summary; ``usage`` is what producing it cost (also when it was reused from disk)."""

    summary: StrategySummary
    usage: Usage
    resumed: bool


def load_summary(path: Path, key: str) -> tuple[StrategySummary, Usage] | None:
    """A finished summary (and what it cost) from an earlier, interrupted run, if it is for the same content,
    prompt and model."""
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        if saved.get("key") == key:
            return StrategySummary.model_validate(saved["summary"]), Usage.model_validate(saved.get("usage") or {})
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass  # missing or unreadable: redo the document
    return None


def clean_stale_temporaries(directory: Path) -> int:
    """Remove ``.<name>.*.tmp`` files that an interrupted ``write_atomic`` left behind; returns how many."""
    removed = 0
    if directory.is_dir():
        for tmp in directory.glob(".*.tmp"):
            try:
                tmp.unlink()
                removed += 1
            except OSError:
                pass
    return removed


def summarize_cached(doc: dict, *, out_dir: Path, store: SQLiteIndex, runner: Runner, force: bool = False) -> SummaryResult:
    """Summarize one listed document, or reuse ``out_dir/summaries/<doc>.json`` when it is for the same
    content, summary prompt and model.

    The Markdown is written before the JSON: the JSON is the mark of a finished document, so a crash
    between the two writes leaves the document to be redone, never a JSON without its Markdown (and a
    Markdown that is missing anyway is written again from the JSON)."""
    doc_id = str(doc["id"])
    path = out_dir / "summaries" / f"{_safe_name(doc_id)}.json"
    key = _summary_key(str(doc["sha256"]), runner.backend, load_template("summary").hash)
    saved = None if force else load_summary(path, key)
    if saved is not None:
        summary, usage = saved
        if not path.with_suffix(".md").exists():
            write_atomic(path.with_suffix(".md"), summary_markdown(summary))
        return SummaryResult(summary, usage, resumed=True)
    summary, usage = summarize_document(doc_id, store=store, runner=runner)
    write_atomic(path.with_suffix(".md"), summary_markdown(summary))
    write_atomic(path, json.dumps({"key": key, "summary": summary.model_dump(mode="json"), "usage": usage.model_dump(mode="json")},
                                  ensure_ascii=False, indent=2))
    return SummaryResult(summary, usage, resumed=False)


def run_batch(paths: Sequence[Path], *, out_dir: Path, store: SQLiteIndex, runner: Runner, concurrency: int = 4,
              force: bool = False, title: str | None = None, template: str = "briefing", since: str | None = None,
              source_glob: str | None = None, on_progress: Callable[[BatchProgress], None] | None = None) -> BatchResult:
    """Index ``paths``, summarize each document (resumable, parallel), then write the briefing."""
    settings = runner.settings
    chunker = Chunker(max_tokens=settings.chunk.max_tokens, overlap=settings.chunk.overlap, encoding=settings.encoding)
    report = index_paths(paths, store, chunker)
    failures = [Failure(doc_id=s.source, source=s.source, reason=s.reason) for s in report.skipped]
    prefixes = tuple(source_prefix(p) for p in paths)
    docs = [d for d in store.list_documents() if str(d["source"]).startswith(prefixes)]
    if since:
        docs = [d for d in docs if d["date"] and str(d["date"]) >= since]
    if source_glob:
        docs = [d for d in docs if fnmatch(str(d["source"]), source_glob)]
    progress = BatchProgress(total=len(docs))
    lock = threading.Lock()
    summaries: dict[str, StrategySummary] = {}
    clean_stale_temporaries(out_dir / "summaries")
    clean_stale_temporaries(out_dir)

    def one(doc: dict) -> None:
        result = summarize_cached(doc, out_dir=out_dir, store=store, runner=runner, force=force)
        with lock:
            summaries[str(doc["id"])] = result.summary
            progress.total_usage = progress.total_usage.add(result.usage)
            if result.resumed:
                progress.skipped += 1
            else:
                progress.done += 1
                progress.usage = progress.usage.add(result.usage)

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        futures = {pool.submit(one, d): d for d in docs}
        for future in as_completed(futures):
            doc = futures[future]
            try:
                future.result()
            except Exception as err:  # noqa: BLE001 - one document's failure, whatever it is, must not stop the batch
                reason = str(err) if isinstance(err, RagError) else f"unexpected {type(err).__name__}: {err}"
                with lock:
                    progress.failed += 1
                    failures.append(Failure(doc_id=str(doc["id"]), source=str(doc["source"]), reason=reason))
            if on_progress:
                on_progress(progress)

    ordered = [summaries[str(d["id"])] for d in docs if str(d["id"]) in summaries]
    briefing = build_briefing(ordered, docs, store=store, runner=runner, title=title, template=template, failures=failures)
    progress.usage = progress.usage.add(briefing.usage)
    briefing.usage = progress.total_usage.add(briefing.usage)  # the whole briefing's cost, resumed documents included
    out_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(out_dir / "briefing.json", briefing.model_dump_json(indent=2))
    write_atomic(out_dir / "briefing.md", briefing_markdown(briefing))
    return BatchResult(briefing=briefing, out_dir=out_dir, summaries=ordered, progress=progress)


def build_briefing(summaries: list[StrategySummary], docs: list[dict], *, store: SQLiteIndex, runner: Runner,
                   title: str | None, template: str = "briefing", failures: list[Failure] | None = None) -> Briefing:
    """Synthesize the cross-document briefing; if the model call fails, assemble it from the summaries."""
    from .backends.offline_summary import build_briefing as assemble

    title = title or f"Strategy briefing: {len(summaries)} document{'s' * (len(summaries) != 1)}"
    failures = list(failures or [])
    meta = {str(d["id"]): {"source": str(d["source"]), "title": str(d["title"])} for d in docs}
    context = [ContextChunk(id=c.id, chunk=c, source=meta[s.doc_id]["source"]) for s in summaries for c in store.chunks_of(s.doc_id)]
    prompt = render_prompt(template, title=title, summaries=[
        {"doc_id": s.doc_id, "json": s.model_dump_json(include={"doc_id", "title", "players", "themes", "implications"})}
        for s in summaries])
    usage = Usage()
    try:
        gen = runner.generate(GenerationRequest(task="briefing", prompt=prompt, schema=Briefing, max_tokens=runner.max_tokens,
                                                inputs={"title": title, "summaries": summaries, "documents": meta}))
        assert isinstance(gen.output, Briefing)
        briefing, usage = verify_briefing(gen.output, context, checked=not runner.backend.trusted_text), gen.usage
    except RagError as err:
        failures.append(Failure(doc_id="(briefing)", source="(briefing)", reason=f"synthesis failed, assembled from summaries: {err}"))
        briefing = assemble(title, summaries, meta)
    if not briefing.sources:
        briefing.sources = [s for s in assemble(title, summaries, meta).sources]
    return briefing.model_copy(update={"title": title, "failures": failures, "prompt": prompt.ref, "usage": usage,
                                       "backend": runner.backend.name, "model": runner.backend.model})
