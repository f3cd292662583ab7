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
from .language import figure_supported, figures
from .types import (
    OUTPUT_SCHEMA_VERSION, Briefing, CitedItem, DatedItem, Failure, FigureItem, Organisation, OrganisationProfile, Person,
    StrategySummary, Usage,
)


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


def _verify_dated(items: Sequence[DatedItem], context: Sequence[ContextChunk], *, checked: bool) -> tuple[list[DatedItem], int]:
    """Dated items whose citations verify; a date the quotes do not contain is dropped (the item stays)."""
    kept, dropped = [], 0
    for item in items:
        base, d = _verify_items([item], context, checked=checked)
        dropped += d
        if base:
            quotes = " ".join(c.quote for c in base[0].citations)
            date = item.date if item.date and (not checked or normalize(item.date) in normalize(quotes)) else None
            kept.append(item.model_copy(update={"text": base[0].text, "citations": base[0].citations, "date": date}))
    return kept, dropped


def _verify_figures(items: Sequence[FigureItem], context: Sequence[ContextChunk], *, checked: bool) -> tuple[list[FigureItem], int]:
    """Figures whose citations verify and whose value the quotes state (as the same quantity)."""
    kept, dropped = [], 0
    for item in items:
        base, d = _verify_items([item], context, checked=checked)
        quotes = " ".join(c.quote for c in base[0].citations) if base else ""
        found = figures(item.value, words=False)
        if not base or (checked and (not found or not all(figure_supported(f, quotes) for f in found))):
            dropped += 1
            continue
        kept.append(item.model_copy(update={"text": base[0].text, "citations": base[0].citations}))
    return kept, dropped


def _verify_people(people: Sequence[Person], context: Sequence[ContextChunk], source_text: str, *, checked: bool) -> list[Person]:
    """People whose citations verify and whose name the sources contain."""
    kept = []
    for person in people:
        verified, _ = verify_citations(person.citations, context)
        if not verified or (checked and _label(person.name, source_text, checked=True).endswith(UNVERIFIED)):
            continue
        kept.append(person.model_copy(update={"citations": verified}))
    return kept


def verify_organisation(org: Organisation, context: Sequence[ContextChunk], source_text: str, *,
                        checked: bool = True) -> tuple[Organisation | None, int]:
    """An organisation with only its verified items (None when nothing of it verifies); names the sources do not
    contain are marked unverified."""
    thesis, d1 = _verify_items(org.thesis, context, checked=checked)
    moves, d2 = _verify_dated(org.moves, context, checked=checked)
    figs, d3 = _verify_figures(org.figures, context, checked=checked)
    results, d4 = _verify_items(org.results, context, checked=checked)
    people = _verify_people(org.people, context, source_text, checked=checked)
    dropped = d1 + d2 + d3 + d4
    if not (thesis or moves or figs or results):
        return None, dropped
    aliases = [a for a in org.aliases if not checked or not _label(a, source_text, checked=True).endswith(UNVERIFIED)]
    return org.model_copy(update={"name": _label(org.name, source_text, checked=checked), "aliases": aliases, "thesis": thesis,
                                  "moves": moves, "figures": figs, "results": results, "people": people}), dropped


def verify_summary(summary: StrategySummary, context: Sequence[ContextChunk], *, checked: bool = True) -> StrategySummary:
    """Keep only items whose citations verify; organisations left with nothing are dropped; names the sources do not
    contain are marked unverified; open questions without a verified citation are dropped."""
    dropped = 0
    source_text = " ".join(c.chunk.text for c in context)
    organisations = []
    for org in summary.organisations:
        kept, d = verify_organisation(org, context, source_text, checked=checked)
        dropped += d
        if kept is not None:
            organisations.append(kept)
    themes, d1 = _verify_items(summary.themes, context, checked=checked)
    implications, d2 = _verify_items(summary.implications, context, checked=checked)
    questions, d3 = _verify_items(summary.open_questions, context, checked=False)  # a question is not a claim
    timeline, d4 = _verify_dated(summary.timeline, context, checked=checked)
    return summary.model_copy(update={"organisations": organisations, "themes": themes, "implications": implications,
                                      "open_questions": questions, "timeline": timeline,
                                      "dropped_items": summary.dropped_items + dropped + d1 + d2 + d3 + d4})


def _verify_labelled(items: Sequence[CitedItem], context: Sequence[ContextChunk], *, checked: bool) -> list[CitedItem]:
    """Items whose text is a label or a composition (a theme's term, a contrast): citations must verify and every
    word of the text must occur in the quotes."""
    kept = []
    for item in items:
        verified, _ = verify_citations(item.citations, context)
        if not verified:
            continue
        quoted = " ".join(c.quote for c in verified)
        kept.append(CitedItem(text=_label(item.text, quoted, checked=checked), citations=verified))
    return kept


def verify_briefing(briefing: Briefing, context: Sequence[ContextChunk], *, checked: bool = True) -> Briefing:
    source_text = " ".join(c.chunk.text for c in context)
    executive, _ = _verify_items(briefing.executive_summary, context, checked=checked)
    organisations = []
    for org in briefing.organisations:
        kept, _ = verify_organisation(org, context, source_text, checked=checked)
        if kept is not None:
            organisations.append(OrganisationProfile.model_validate({**org.model_dump(), **kept.model_dump()}))
    timeline, _ = _verify_dated(briefing.timeline, context, checked=checked)
    sources = []
    for s in briefing.sources:
        kept_s, _ = _verify_items([s.summary], context, checked=checked)
        if kept_s:
            sources.append(s.model_copy(update={"summary": kept_s[0]}))
    implications, _ = _verify_items(briefing.implications, context, checked=checked)
    questions, _ = _verify_items(briefing.open_questions, context, checked=False)
    return briefing.model_copy(update={
        "executive_summary": executive, "organisations": organisations, "timeline": timeline, "sources": sources,
        "contrasts": _verify_labelled(briefing.contrasts, context, checked=checked),
        "themes": _verify_labelled(briefing.themes, context, checked=checked),
        "implications": implications, "open_questions": questions})


def merge_summaries(parts: Sequence[StrategySummary]) -> StrategySummary:
    """Reduce step for long documents: union organisations by name, concatenate items, drop repeats."""
    first = parts[0]
    organisations: dict[str, Organisation] = {}
    seen: set[str] = set()

    def fresh(items: Sequence) -> list:
        out = [i for i in items if i.text not in seen]
        seen.update(i.text for i in out)
        return out

    for part in parts:
        for org in part.organisations:
            cur = organisations.setdefault(org.name, Organisation(name=org.name))
            cur.aliases = sorted(set(cur.aliases) | set(org.aliases))
            cur.thesis += fresh(org.thesis)
            cur.moves += fresh(org.moves)
            cur.results += fresh(org.results)
            cur.figures += [f for f in org.figures if f.value not in {x.value for x in cur.figures}]
            cur.people += [p for p in org.people if p.name not in {x.name for x in cur.people}]
    return first.model_copy(update={
        "organisations": list(organisations.values()),
        "themes": fresh([t for p in parts for t in p.themes]),
        "implications": fresh([t for p in parts for t in p.implications]),
        "open_questions": fresh([t for p in parts for t in p.open_questions]),
        "timeline": fresh([t for p in parts for t in p.timeline]),
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
                                                inputs={"doc_id": doc.id, "title": doc.title, "date": doc.date, "context": context}))
        assert isinstance(gen.output, StrategySummary)
        # Never a model's retelling of the document's identity, nor another schema version.
        draft = gen.output.model_copy(update={"doc_id": doc.id, "title": doc.title, "schema_version": OUTPUT_SCHEMA_VERSION,
                                              "date": doc.date or gen.output.date})
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
    """What a saved summary must match to be reused: the content, the prompt, the model and the output schema."""
    return f"{sha256}:{prompt_hash}:{backend.name}:{backend.model}:v{OUTPUT_SCHEMA_VERSION}"


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
        if saved.get("key") == key and saved["summary"].get("schema_version") == OUTPUT_SCHEMA_VERSION:
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


def with_coverage(briefing: Briefing, meta: dict[str, dict[str, str]]) -> Briefing:
    """Each organisation's sources counted from the documents themselves: those that name it (by any of its
    names) and those that say nothing about it."""
    organisations = []
    for org in briefing.organisations:
        names = [n for n in [org.name, *org.aliases] if n and not n.endswith(UNVERIFIED)]
        patterns = [re.compile(rf"(?<![\w]){re.escape(n)}(?![\w])") for n in names]
        read = [m for m in meta.values() if "text" in m]  # the documents the briefing was made from
        named = [m["source"] for m in read if any(p.search(m["text"]) for p in patterns)]
        organisations.append(org.model_copy(update={"documents": named,
                                                    "silent": [m["source"] for m in read if m["source"] not in named]}))
    return briefing.model_copy(update={"organisations": organisations})


def build_briefing(summaries: list[StrategySummary], docs: list[dict], *, store: SQLiteIndex, runner: Runner,
                   title: str | None, template: str = "briefing", failures: list[Failure] | None = None) -> Briefing:
    """Synthesize the cross-document briefing; if the model call fails, assemble it from the summaries."""
    from .backends.offline_summary import build_briefing as assemble

    title = title or "Strategy briefing"
    failures = list(failures or [])
    meta = {str(d["id"]): {"source": str(d["source"]), "title": str(d["title"]), "date": str(d["date"] or "")} for d in docs}
    context = [ContextChunk(id=c.id, chunk=c, source=meta[s.doc_id]["source"]) for s in summaries for c in store.chunks_of(s.doc_id)]
    for s in summaries:  # the offline engine reads which documents mention whom
        doc = store.get_document(s.doc_id)
        meta[s.doc_id]["text"] = doc.text if doc is not None else ""
    prompt = render_prompt(template, title=title, summaries=[
        {"doc_id": s.doc_id, "json": s.model_dump_json(include={"doc_id", "title", "date", "organisations", "themes", "timeline",
                                                               "implications", "open_questions"})}
        for s in summaries])
    usage = Usage()
    try:
        gen = runner.generate(GenerationRequest(task="briefing", prompt=prompt, schema=Briefing, max_tokens=runner.max_tokens,
                                                inputs={"title": title, "summaries": summaries, "documents": meta}))
        assert isinstance(gen.output, Briefing)
        briefing, usage = verify_briefing(gen.output.model_copy(update={"schema_version": OUTPUT_SCHEMA_VERSION}), context,
                                          checked=not runner.backend.trusted_text), gen.usage
    except RagError as err:
        failures.append(Failure(doc_id="(briefing)", source="(briefing)", reason=f"synthesis failed, assembled from summaries: {err}"))
        briefing = assemble(title, summaries, meta)
    if not briefing.sources:
        briefing.sources = [s for s in assemble(title, summaries, meta).sources]
    briefing = with_coverage(briefing, meta)
    return briefing.model_copy(update={"title": title, "failures": failures, "prompt": prompt.ref, "usage": usage,
                                       "backend": runner.backend.name, "model": runner.backend.model})
