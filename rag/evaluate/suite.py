"""Eval suites as pydantic models: suite, cases by kind, and the assertion types.

A suite names its corpora (name -> paths, relative to the working directory), optional thresholds and
its cases. Each case has a kind (qa, retrieval, summary, chat), its input and a list of assertions,
each a one-key mapping (``- contains: text``) with an optional ``weight``. ``loading`` reads the
YAML and maps validation errors to lines.
"""

from __future__ import annotations

import re
from difflib import get_close_matches
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator
from pydantic_core import PydanticCustomError

from ..types import SCHEMAS

KINDS = ("qa", "retrieval", "summary", "briefing", "chat")
ANSWER_KINDS = frozenset({"qa", "chat"})
GENERATING_KINDS = frozenset({"qa", "chat", "summary", "briefing"})
_ID = r"^[A-Za-z0-9][\w.-]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ------------------------------------------------------------------ assertions
class Assertion(_Strict):
    """One check. ``type`` is the YAML key that names it; its value is ``expected``."""

    type: ClassVar[str]
    kinds: ClassVar[frozenset[str]]
    weight: float = Field(1.0, gt=0, description="Share of the case score; a case passes at its threshold.")

    @property
    def expected(self) -> Any:
        return getattr(self, _attr(self.type))


def _attr(type_name: str) -> str:
    return type_name.replace("-", "_")



class Contains(Assertion):
    type, kinds = "contains", ANSWER_KINDS
    contains: str = Field(min_length=1)


class IContains(Assertion):
    type, kinds = "icontains", ANSWER_KINDS
    icontains: str = Field(min_length=1)


class ContainsAny(Assertion):
    type, kinds = "contains-any", ANSWER_KINDS
    contains_any: list[str] = Field(alias="contains-any", min_length=1)


class ContainsAll(Assertion):
    type, kinds = "contains-all", ANSWER_KINDS
    contains_all: list[str] = Field(alias="contains-all", min_length=1)


class IContainsAny(Assertion):
    type, kinds = "icontains-any", ANSWER_KINDS
    icontains_any: list[str] = Field(alias="icontains-any", min_length=1)


class IContainsAll(Assertion):
    type, kinds = "icontains-all", ANSWER_KINDS
    icontains_all: list[str] = Field(alias="icontains-all", min_length=1)


class NotContains(Assertion):
    type, kinds = "not-contains", ANSWER_KINDS
    not_contains: str = Field(alias="not-contains", min_length=1)


class NotIContains(Assertion):
    type, kinds = "not-icontains", ANSWER_KINDS
    not_icontains: str = Field(alias="not-icontains", min_length=1)


class Regex(Assertion):
    type, kinds = "regex", ANSWER_KINDS
    regex: str = Field(min_length=1)

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as err:
            raise ValueError(f"invalid regular expression: {err}") from err
        return value


class Refused(Assertion):
    type, kinds = "refused", ANSWER_KINDS
    refused: bool


class CitesSource(Assertion):
    type, kinds = "cites-source", ANSWER_KINDS
    cites_source: str = Field(alias="cites-source", min_length=1, description="source path, prefix 'dir/' or glob")


class CitesOnly(Assertion):
    type, kinds = "cites-only", ANSWER_KINDS
    cites_only: str = Field(alias="cites-only", min_length=1, description="every citation's source matches this")


class CitesQuoteContaining(Assertion):
    type, kinds = "cites-quote-containing", ANSWER_KINDS
    cites_quote_containing: str = Field(alias="cites-quote-containing", min_length=1)


class CitesQuoteContainingAny(Assertion):
    type, kinds = "cites-quote-containing-any", ANSWER_KINDS
    cites_quote_containing_any: list[str] = Field(alias="cites-quote-containing-any", min_length=1)


class MinCitations(Assertion):
    type, kinds = "min-citations", ANSWER_KINDS
    min_citations: int = Field(alias="min-citations", ge=0)


class NoUnsupported(Assertion):
    type, kinds = "no-unsupported", ANSWER_KINDS
    no_unsupported: Literal[True] = Field(alias="no-unsupported")


class CitationsVerbatim(Assertion):
    """Always on for cases that produce citations; listing it explicitly changes nothing but its weight."""

    type, kinds = "citations-verbatim", GENERATING_KINDS
    citations_verbatim: Literal[True] = Field(True, alias="citations-verbatim")


class StandaloneContains(Assertion):
    type, kinds = "standalone-contains", frozenset({"chat"})
    standalone_contains: str = Field(alias="standalone-contains", min_length=1)


class HitAt(Assertion):
    type, kinds = "hit-at", frozenset({"retrieval"})
    hit_at: int = Field(alias="hit-at", ge=1, le=100)


class TopSource(Assertion):
    type, kinds = "top-source", frozenset({"retrieval"})
    top_source: str = Field(alias="top-source", min_length=1)


class SchemaValid(Assertion):
    type, kinds = "schema", GENERATING_KINDS
    schema_: str = Field(alias="schema")

    @property
    def expected(self) -> Any:
        return self.schema_

    @field_validator("schema_")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in SCHEMAS:
            raise ValueError(f"unknown schema {value!r}; known: {', '.join(SCHEMAS)}")
        return value


class Covers(Assertion):
    type, kinds = "covers", frozenset({"summary", "briefing"})
    covers: list[str] = Field(min_length=1)


Section = Literal["items", "players", "moves", "themes", "implications"]


def _total_items(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return {"items": value}
    if not isinstance(value, dict):
        raise PydanticCustomError("max_items", "expected a number, or a mapping of section "
                                  "(items, players, moves, themes, implications) to a number")
    return value


class MaxItems(Assertion):
    """``max-items: 12`` caps all items of a summary; a mapping caps sections (``moves`` is per player)."""

    type, kinds = "max-items", frozenset({"summary"})
    max_items: Annotated[dict[Section, Annotated[int, Field(ge=0)]], BeforeValidator(_total_items)] = Field(
        alias="max-items", min_length=1)


class HasPlayers(Assertion):
    type, kinds = "has-players", frozenset({"summary"})
    has_players: list[str] = Field(alias="has-players", min_length=1)


# ------------------------------------------------------------------ briefings
class ExpectedOrganisation(_Strict):
    name: str = Field(min_length=1)
    aliases: list[str] = Field(default_factory=list, description="Other names a section may go by.")
    thesis: list[list[str]] = Field(default_factory=list, description="Groups of phrases: its strategy items must contain "
                                    "one phrase of every group (case-insensitive).")

    def names(self) -> list[str]:
        return [self.name, *self.aliases]


class OrganisationAssert(Assertion):
    """A section for the organisation (by its name or an alias) whose strategy states its thesis."""

    type, kinds = "organisation", frozenset({"briefing"})
    organisation: ExpectedOrganisation


class ExpectedFigure(_Strict):
    value: str = Field(min_length=1)
    organisation: str = Field(min_length=1, description="Name of an organisation the case declares.")


class FigureAssert(Assertion):
    """The figure is listed among the figures of that organisation's section."""

    type, kinds = "figure", frozenset({"briefing"})
    figure: ExpectedFigure


class NoSection(Assertion):
    """No organisation section is named after any of these (people, titles, places, common words)."""

    type, kinds = "no-section", frozenset({"briefing"})
    no_section: list[str] = Field(alias="no-section", min_length=1)


class MaxRepeated(Assertion):
    """At most this share of the sentences of briefing.md (footnotes left out) appears more than once."""

    type, kinds = "max-repeated", frozenset({"briefing"})
    max_repeated: float = Field(alias="max-repeated", ge=0, le=1)


class ExpectedEvent(_Strict):
    evidence: str = Field(min_length=1, description="The sentence that states the event.")
    date: str | None = None


class TimelineEvent(Assertion):
    """The timeline has an entry taken from this sentence."""

    type, kinds = "timeline-event", frozenset({"briefing"})
    timeline_event: ExpectedEvent = Field(alias="timeline-event")


class OpenQuestion(Assertion):
    """An open question cites this sentence (or one that contains it)."""

    type, kinds = "open-question", frozenset({"briefing"})
    open_question: str = Field(alias="open-question", min_length=1)


class LLMRubric(Assertion):
    type, kinds = "llm-rubric", GENERATING_KINDS
    llm_rubric: str = Field(alias="llm-rubric", min_length=1)
    min_score: float = Field(0.7, alias="min-score", ge=0, le=1)


ASSERTION_TYPES: dict[str, type[Assertion]] = {
    cls.type: cls for cls in (
        Contains, IContains, ContainsAny, ContainsAll, IContainsAny, IContainsAll, NotContains, NotIContains, Regex,
        Refused, CitesSource, CitesOnly, CitesQuoteContaining, CitesQuoteContainingAny, MinCitations, NoUnsupported, CitationsVerbatim,
        StandaloneContains, HitAt, TopSource, SchemaValid, Covers, MaxItems, HasPlayers, LLMRubric,
        OrganisationAssert, FigureAssert, NoSection, MaxRepeated, TimelineEvent, OpenQuestion,
    )
}
_OPTION_KEYS = {"weight", "min-score"}
_BARE = {"no-unsupported", "citations-verbatim"}  # flags that may be written as a bare string


def _assertion_tag(value: Any) -> str | None:
    if isinstance(value, Assertion):
        return value.type
    if isinstance(value, dict):
        names = [k for k in value if k in ASSERTION_TYPES]
        return names[0] if len(names) == 1 else None
    return None


def _check_assertion(value: Any) -> Any:
    """Name the problem with an assertion before the union tries (and fails) every member."""
    if isinstance(value, str) and value in _BARE:
        return {value: True}
    if isinstance(value, Assertion):
        return value
    if not isinstance(value, dict) or not value:
        raise PydanticCustomError("assertion_shape",
                                  "an assertion is a mapping like `contains: text` (optionally with weight)")
    names = [k for k in value if k in ASSERTION_TYPES]
    if len(names) > 1:
        raise PydanticCustomError("assertion_shape", "one assertion per list item, found {names}",
                                  {"names": ", ".join(map(str, names))})
    if not names:
        unknown = next((k for k in value if k not in _OPTION_KEYS), None)
        if unknown is None:
            raise PydanticCustomError("assertion_shape", "no assertion type given (e.g. contains, refused, hit-at)")
        close = get_close_matches(str(unknown), list(ASSERTION_TYPES), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else f"; known: {', '.join(ASSERTION_TYPES)}"
        raise PydanticCustomError("unknown_assertion", "unknown assertion '{name}'{hint}",
                                  {"name": str(unknown), "hint": hint, "at": [str(unknown)]})
    return value


AnyAssertion = Annotated[
    Annotated[Union[tuple(Annotated[cls, Tag(name)] for name, cls in ASSERTION_TYPES.items())],  # type: ignore[misc]
              Discriminator(_assertion_tag)],
    BeforeValidator(_check_assertion),
]


def _check_kinds(assertions: list[Assertion], kind: str) -> None:
    for i, a in enumerate(assertions):
        if kind not in a.kinds:
            raise PydanticCustomError(
                "assertion_kind", "assertion '{name}' does not apply to {kind} cases (it applies to: {kinds})",
                {"name": a.type, "kind": kind, "kinds": ", ".join(k for k in KINDS if k in a.kinds), "at": [i, a.type]},
            )


# ------------------------------------------------------------------ cases
class _Case(_Strict):
    id: str = Field(pattern=_ID, description="Unique within the suite; reports and baselines key on suite/id.")
    description: str = ""
    corpus: str | None = Field(None, description="Corpus name from the suite's corpora (default: the suite's corpus).")
    xfail: str | None = Field(None, min_length=1, description="Known engine gap: the reason. Reported separately.")
    threshold: float = Field(1.0, ge=0, le=1, description="Weighted score needed to pass (1.0: every assertion).")
    absent: list[str] = Field(default_factory=list, description="Facts the corpus must not contain (checked by tests).")
    tags: list[str] = Field(default_factory=list)


class QACase(_Case):
    kind: Literal["qa"]
    question: str = Field(min_length=1)
    k: int | None = Field(None, ge=1, le=100)
    assert_: list[AnyAssertion] = Field(alias="assert", min_length=1)

    @field_validator("assert_")
    @classmethod
    def _kinds(cls, value: list[Assertion]) -> list[Assertion]:
        _check_kinds(value, "qa")
        return value


class Expect(_Strict):
    """What a retrieval case looks for; a hit matches if it satisfies every field given."""

    quote: str | None = Field(None, min_length=1, description="Text the chunk must contain (case/whitespace-insensitive).")
    chunk: str | None = Field(None, min_length=1, description="Exact chunk id, e.g. seeds/a.txt#2.")
    source: str | None = Field(None, min_length=1, description="Source path, prefix 'dir/' or glob.")

    @model_validator(mode="after")
    def _something(self) -> "Expect":
        if not (self.quote or self.chunk or self.source):
            raise ValueError("give at least one of quote, chunk, source")
        return self


class RetrievalCase(_Case):
    kind: Literal["retrieval"]
    query: str = Field(min_length=1)
    expect: Expect
    assert_: list[AnyAssertion] = Field(alias="assert", min_length=1)

    @field_validator("assert_")
    @classmethod
    def _kinds(cls, value: list[Assertion]) -> list[Assertion]:
        _check_kinds(value, "retrieval")
        return value


class SummaryCase(_Case):
    kind: Literal["summary"]
    documents: list[str] = Field(min_length=1, description="Document ids or source globs to summarize.")
    assert_: list[AnyAssertion] = Field(alias="assert", min_length=1)

    @field_validator("assert_")
    @classmethod
    def _kinds(cls, value: list[Assertion]) -> list[Assertion]:
        _check_kinds(value, "summary")
        return value


class BriefingCase(_Case):
    """A briefing over documents of the corpus (all of them by default), as ``rag brief`` writes it."""

    kind: Literal["briefing"]
    documents: list[str] = Field(default_factory=lambda: ["*"], min_length=1, description="Document ids or source globs.")
    assert_: list[AnyAssertion] = Field(alias="assert", min_length=1)

    @field_validator("assert_")
    @classmethod
    def _kinds(cls, value: list[Assertion]) -> list[Assertion]:
        _check_kinds(value, "briefing")
        return value

    @model_validator(mode="after")
    def _figures_name_organisations(self) -> "BriefingCase":
        declared = {n for a in self.assert_ if isinstance(a, OrganisationAssert) for n in a.organisation.names()}
        for a in self.assert_:
            if isinstance(a, FigureAssert) and a.figure.organisation not in declared:
                raise PydanticCustomError("unknown_organisation", "figure {value!r} names organisation {name!r}, which no "
                                          "`organisation:` assertion of the case declares",
                                          {"value": a.figure.value, "name": a.figure.organisation})
        return self

    def organisation(self, name: str) -> ExpectedOrganisation:
        return next(a.organisation for a in self.assert_ if isinstance(a, OrganisationAssert) and name in a.organisation.names())


class Turn(_Strict):
    question: str = Field(min_length=1)
    assert_: list[AnyAssertion] = Field(default_factory=list, alias="assert")

    @field_validator("assert_")
    @classmethod
    def _kinds(cls, value: list[Assertion]) -> list[Assertion]:
        _check_kinds(value, "chat")
        return value


class ChatCase(_Case):
    kind: Literal["chat"]
    turns: list[Turn] = Field(min_length=2, description="Questions in order; assertions apply to each turn's answer.")
    k: int | None = Field(None, ge=1, le=100)

    @model_validator(mode="after")
    def _asserted(self) -> "ChatCase":
        if not any(t.assert_ for t in self.turns):
            raise ValueError("a chat case needs assertions on at least one turn")
        return self


Case = Annotated[Union[QACase, RetrievalCase, SummaryCase, BriefingCase, ChatCase], Field(discriminator="kind")]


def case_assertions(case: Any) -> list[Assertion]:
    if isinstance(case, ChatCase):
        return [a for t in case.turns for a in t.assert_]
    return list(case.assert_)


# ------------------------------------------------------------------ suite
class Thresholds(_Strict):
    """Suite gates, checked over the suite's cases that are not xfail; metrics with no data are not gated."""

    min_pass_rate: float = Field(1.0, ge=0, le=1, description="Share of cases that must pass (default: all).")
    min_answer_accuracy: float | None = Field(None, ge=0, le=1)
    min_refusal_precision: float | None = Field(None, ge=0, le=1)
    min_refusal_recall: float | None = Field(None, ge=0, le=1)
    min_citation_validity: float | None = Field(None, ge=0, le=1)
    min_hit_at_1: float | None = Field(None, ge=0, le=1)
    min_hit_at_5: float | None = Field(None, ge=0, le=1)
    min_mrr: float | None = Field(None, ge=0, le=1)
    min_summary_coverage: float | None = Field(None, ge=0, le=1)
    min_thesis_recall: float | None = Field(None, ge=0, le=1, description="Organisations with a section stating their thesis.")
    min_figure_placement: float | None = Field(None, ge=0, le=1, description="Figures listed under the right organisation.")
    max_false_sections: float | None = Field(None, ge=0, description="Sections named after a person, title or common word.")
    max_repeated_share: float | None = Field(None, ge=0, le=1, description="Worst share of repeated sentences in one briefing.")
    min_timeline_recall: float | None = Field(None, ge=0, le=1)
    min_open_question_recall: float | None = Field(None, ge=0, le=1)
    max_mean_latency_ms: float | None = Field(None, gt=0)


class Suite(_Strict):
    name: str = Field(pattern=_ID)
    description: str = ""
    corpora: dict[str, list[str]] = Field(min_length=1, description="Corpus name -> files/directories to index.")
    corpus: str | None = Field(None, description="Default corpus of the cases.")
    thresholds: Thresholds = Field(default_factory=Thresholds)
    requires: list[str] = Field(default_factory=list, description="Paths that must exist for the suite to run (a corpus a "
                                "system package installs); when one is missing the suite is reported as skipped, not failed.")
    requires_hint: str = Field("", description="How to provide what `requires` names, shown when it is missing.")
    cases: list[Case] = Field(min_length=1)

    def missing(self) -> list[str]:
        """The required paths that do not exist here."""
        from pathlib import Path

        return [p for p in self.requires if not Path(p).exists()]

    @field_validator("corpora")
    @classmethod
    def _paths(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, paths in value.items():
            if not re.match(_ID, name):
                raise PydanticCustomError("corpus_name", "corpus name '{name}' must be letters, digits, '.', '_' or '-'",
                                          {"name": name, "at": [name]})
            if not paths:
                raise PydanticCustomError("corpus_paths", "corpus '{name}' lists no paths", {"name": name, "at": [name]})
        return value

    @model_validator(mode="after")
    def _references(self) -> "Suite":
        if self.corpus is not None and self.corpus not in self.corpora:
            raise PydanticCustomError("unknown_corpus", "unknown corpus '{name}'; defined: {known}",
                                      {"name": self.corpus, "known": ", ".join(self.corpora), "at": ["corpus"]})
        seen: set[str] = set()
        for i, case in enumerate(self.cases):
            if case.id in seen:
                raise PydanticCustomError("duplicate_id", "duplicate case id '{id}'",
                                          {"id": case.id, "at": ["cases", i, "id"]})
            seen.add(case.id)
            corpus = case.corpus or self.corpus
            if corpus is None:
                raise PydanticCustomError("no_corpus", "case '{id}' names no corpus and the suite has no default",
                                          {"id": case.id, "at": ["cases", i]})
            if corpus not in self.corpora:
                raise PydanticCustomError("unknown_corpus", "unknown corpus '{name}'; defined: {known}",
                                          {"name": corpus, "known": ", ".join(self.corpora), "at": ["cases", i, "corpus"]})
        return self

    def corpus_of(self, case: Any) -> str:
        return case.corpus or self.corpus or ""
