"""Typed artefacts passed between stages and across every boundary (CLI JSON, HTTP, LLM output).

Stages hand each other these models, never loose dicts or tuples. Models that cross a boundary
from outside (LLM output, HTTP bodies) forbid unknown fields.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Span(BaseModel):
    start: int = Field(ge=0)
    end: int = Field(ge=0)


class Document(BaseModel):
    """One source document. ``text`` is the original, unchanged; ``boilerplate`` marks spans kept out of retrieval."""

    id: str
    source: str = Field(description="Path (relative to the indexed root) or jsonl file:line.")
    title: str = ""
    text: str
    sha256: str
    date: str | None = None
    url: str | None = None
    boilerplate: list[Span] = Field(default_factory=list)
    pages: list[int] | None = Field(None, description="Offset in ``text`` where each page starts (PDF); None when unpaged.")


class Chunk(BaseModel):
    id: str = Field(description="Stable id: '<doc id>#<ordinal>'.")
    doc_id: str
    ordinal: int
    start: int
    end: int
    n_tokens: int
    text: str


class Hit(BaseModel):
    chunk: Chunk
    score: float
    rank: int
    source: str
    title: str = ""
    date: str | None = None
    url: str | None = None
    snippet: str = ""


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = Field(None, description="None when the model's price is unknown.")
    latency_ms: float = 0.0
    cached: bool = False
    calls: int = 0

    def add(self, other: "Usage") -> "Usage":
        """Sum two usages; the cost is unknown (None) if either side's is."""
        if not self.calls:
            return other.model_copy()
        if not other.calls:
            return self.model_copy()
        cost = None if self.cost_usd is None or other.cost_usd is None else self.cost_usd + other.cost_usd
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cost_usd=cost,
            latency_ms=self.latency_ms + other.latency_ms,
            cached=self.cached and other.cached,
            calls=self.calls + other.calls,
        )


class PromptRef(BaseModel):
    name: str
    hash: str


# ---------------------------------------------------------------- model output
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Citation(_Strict):
    source: str = Field(description="Document source (path) the quote comes from.")
    chunk_id: str = Field(description="Id of the context chunk the quote was taken from.")
    quote: str = Field(description="Verbatim quote from that chunk.")
    start: int | None = Field(None, description="Verified character offset in the original document.")
    end: int | None = Field(None, description="Verified end offset (exclusive).")
    page: int | None = Field(None, description="Page (1-based) where the quote starts, for paged documents (PDF).")


class AnswerDraft(_Strict):
    """What a backend produces for a question, before verification."""

    answer: str
    refused: bool = False
    refusal_reason: str | None = None
    citations: list[Citation] = Field(default_factory=list)
    confidence: float = Field(0.5, ge=0, le=1)


class Answer(BaseModel):
    """A verified answer: the JSON contract of ``rag ask --json`` and ``POST /v1/ask``."""

    question: str
    answer: str
    refused: bool
    refusal_reason: str | None = None
    citations: list[Citation] = Field(default_factory=list)
    confidence: float = 0.0
    flags: list[str] = Field(default_factory=list, description="Unsupported specifics found in the answer.")
    dropped_citations: int = 0
    standalone_question: str | None = None
    backend: str
    model: str
    prompt: PromptRef
    usage: Usage = Field(default_factory=Usage)
    latency_ms: float = 0.0


class CitedItem(_Strict):
    text: str
    citations: list[Citation] = Field(default_factory=list)


# The version of the summary and briefing schemas below. A briefing (and every saved summary) records it;
# ``rag brief`` resumes only summaries of the same version. 3: organisations with theses, moves, figures,
# results and people; timelines, cited open questions, contrasts (2 had players with one model each).
OUTPUT_SCHEMA_VERSION = 3


class DatedItem(CitedItem):
    date: str | None = Field(None, description="The date as the source writes it ('March 11', 'the third quarter').")


class FigureItem(CitedItem):
    """A figure of one organisation: ``value`` as written, ``text`` what it measures (the sources' words)."""

    value: str


class Person(_Strict):
    name: str
    role: str = Field("", description="Title or role as the sources give it ('chief executive').")
    citations: list[Citation] = Field(default_factory=list)


class Organisation(_Strict):
    name: str = Field(description="The name a reader knows it by (its long form).")
    aliases: list[str] = Field(default_factory=list, description="Other names the sources use: acronyms, short forms.")
    thesis: list[CitedItem] = Field(default_factory=list, description="What it is trying to do, as the sources state it.")
    moves: list[DatedItem] = Field(default_factory=list, description="What it did or will do.")
    figures: list[FigureItem] = Field(default_factory=list, description="Figures that belong to it.")
    results: list[CitedItem] = Field(default_factory=list, description="What the sources say about its results.")
    people: list[Person] = Field(default_factory=list, description="Its people, with their roles.")


class TimelineEntry(DatedItem):
    organisation: str | None = None
    source: str = ""


class StrategySummary(_Strict):
    schema_version: int = OUTPUT_SCHEMA_VERSION
    doc_id: str
    title: str = ""
    date: str | None = None
    organisations: list[Organisation] = Field(default_factory=list)
    themes: list[CitedItem] = Field(default_factory=list)
    timeline: list[TimelineEntry] = Field(default_factory=list, description="Dated events, in the order they happened.")
    implications: list[CitedItem] = Field(default_factory=list, description="What is at stake, what to watch.")
    open_questions: list[CitedItem] = Field(default_factory=list, description="Questions the source itself leaves open "
                                            "(a pending vote, a deal awaiting approval, a target for a date), cited.")
    prompt: PromptRef | None = None
    backend: str = ""
    model: str = ""
    dropped_items: int = 0


class OrganisationProfile(Organisation):
    documents: list[str] = Field(default_factory=list, description="Sources that mention it.")
    silent: list[str] = Field(default_factory=list, description="Sources of the briefing that say nothing about it.")


class SourceSummary(_Strict):
    doc_id: str
    source: str
    title: str = ""
    date: str | None = None
    summary: CitedItem


class Failure(_Strict):
    doc_id: str
    source: str
    reason: str


class Briefing(_Strict):
    schema_version: int = OUTPUT_SCHEMA_VERSION
    title: str
    executive_summary: list[CitedItem] = Field(default_factory=list, description="The 3-5 most important points.")
    organisations: list[OrganisationProfile] = Field(default_factory=list)
    contrasts: list[CitedItem] = Field(default_factory=list, description="How rivals' strategies differ, from their theses.")
    timeline: list[TimelineEntry] = Field(default_factory=list)
    themes: list[CitedItem] = Field(default_factory=list, description="What recurs across documents, citing each one.")
    implications: list[CitedItem] = Field(default_factory=list)
    open_questions: list[CitedItem] = Field(default_factory=list)
    sources: list[SourceSummary] = Field(default_factory=list)
    failures: list[Failure] = Field(default_factory=list)
    prompt: PromptRef | None = None
    backend: str = ""
    model: str = ""
    usage: Usage = Field(default_factory=Usage)


SCHEMAS: dict[str, type[BaseModel]] = {
    "Citation": Citation,
    "Answer": Answer,
    "AnswerDraft": AnswerDraft,
    "StrategySummary": StrategySummary,
    "Briefing": Briefing,
    "Usage": Usage,
}

Kind = Literal["qa", "retrieval", "summary", "chat"]
