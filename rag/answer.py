"""Ask and chat: retrieve, pack context, generate through the backend, verify, return an Answer.

Grounding is applied to every backend's output here, offline included: citations that do not
verify are dropped, an answer left with none becomes a refusal, and unsupported specifics are flagged.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache

from .backends.base import Backend, Generation, GenerationRequest
from .config import Settings
from .context import ContextChunk, pack_context
from .errors import RagError
from .grounding import CANNOT_ANSWER, MODEL_REFUSED, supported_reason, unsupported_sentences, unsupported_specifics, verify_citations
from .index import IndexStore
from .prompts import RenderedPrompt, render_prompt
from .render import clean_text
from .retrieve import retrieve
from .tokens import get_encoding
from .types import Answer, AnswerDraft, Usage


@lru_cache(maxsize=8)
def _prompt_overhead(encoding: str) -> int:
    """Tokens of the answer prompt around the question and sources (chat framing ~4 per message)."""
    enc = get_encoding(encoding)
    empty = render_prompt("answer", question="", sources=[], cannot_answer=CANNOT_ANSWER)
    return sum(len(enc.encode_ordinary(m["content"])) + 4 for m in empty.messages)


@dataclass
class Prepared:
    question: str
    context: list[ContextChunk]
    prompt: RenderedPrompt
    started: float


def prepare(question: str, *, store: IndexStore, settings: Settings, k: int | None = None,
            source_glob: str | None = None, max_tokens: int | None = None) -> Prepared:
    """Retrieve and pack the context into the token budget, and render the answer prompt."""
    started = time.perf_counter()
    hits = retrieve(store, question, k=k or settings.k, source_glob=source_glob, hybrid=True)
    enc = get_encoding(settings.encoding)
    count = lambda text: len(enc.encode_ordinary(text))  # noqa: E731
    overhead = _prompt_overhead(settings.encoding) + count(question)
    budget = settings.llm.context_window - (max_tokens or settings.llm.max_output_tokens) - overhead
    context = pack_context(hits, budget=max(0, budget), count=count)
    pages = store.page_starts({c.chunk.doc_id for c in context}) if context else {}
    if pages:  # paged documents (PDF): citations get the page their quote starts on
        context = [c.model_copy(update={"page_starts": pages[c.chunk.doc_id]}) if c.chunk.doc_id in pages else c
                   for c in context]
    prompt = render_prompt("answer", question=question, sources=[c.prompt_vars() for c in context], cannot_answer=CANNOT_ANSWER)
    return Prepared(question=question, context=context, prompt=prompt, started=started)


def finalize(prepared: Prepared, draft: AnswerDraft, *, backend: Backend, usage: Usage) -> Answer:
    """Verify a draft against the context it was generated from.

    A model's words are checked like its quotes: refusal text is replaced by our own (its reason kept
    only when it is about the question and the sources), and sentences that share too few key terms
    with the verified quotes are removed; an answer with nothing left is refused as ungrounded."""
    verified, dropped = verify_citations(draft.citations, prepared.context)
    # Answers read as prose; the source's line breaks and headings stay in the quotes, shown as written.
    refused, reason, text, flags = draft.refused, draft.refusal_reason, clean_text(draft.answer), []
    checked = not backend.trusted_text
    if refused:
        verified = []
        texts = [ctx.chunk.text for ctx in prepared.context]
        if checked and reason and reason.startswith(MODEL_REFUSED):
            # The endpoint's own refusal: say so; its words are shown only if they are about the question.
            detail = reason[len(MODEL_REFUSED):].lstrip(": ")
            reason = f"{MODEL_REFUSED}: {detail}" if detail and supported_reason(detail, prepared.question, texts) else MODEL_REFUSED
        elif checked and not (reason and supported_reason(reason, prepared.question, texts)):
            reason = "the sources do not hold the answer"
        reason = " ".join((reason or "the sources do not hold the answer").split()).rstrip(".")
        text = f"{CANNOT_ANSWER}: {reason}." if checked or not text.strip() else text
    elif not verified:
        refused, reason = True, "no citation in the answer could be verified against the sources"
        text = f"{CANNOT_ANSWER}: {reason}."
        flags.append("ungrounded")
    else:
        if checked:
            unsupported = unsupported_sentences(text, [c.quote for c in verified])
            for sentence in unsupported:
                text = text.replace(sentence, " ")
                flags.append(f"unsupported claim removed: {sentence[:80]}")
            text = " ".join(text.split())
        if not text.strip():
            refused, reason = True, "the answer's claims are not what its citations say"
            text, verified = f"{CANNOT_ANSWER}: {reason}.", []
            flags.append("ungrounded")
        else:
            cited = {c.chunk_id for c in verified}
            texts = [ctx.chunk.text for ctx in prepared.context if ctx.chunk.id in cited]
            flags += [f"unsupported: {item}" for item in unsupported_specifics(text, texts)]
    return Answer(
        question=prepared.question, answer=text, refused=refused, refusal_reason=reason, citations=verified,
        confidence=0.0 if refused else draft.confidence, flags=flags, dropped_citations=len(dropped),
        backend=backend.name, model=backend.model, prompt=prepared.prompt.ref, usage=usage,
        latency_ms=round((time.perf_counter() - prepared.started) * 1000, 2),
    )


def _request(prepared: Prepared, max_tokens: int | None, temperature: float | None = None) -> GenerationRequest:
    return GenerationRequest(task="answer", prompt=prepared.prompt, schema=AnswerDraft, max_tokens=max_tokens,
                             temperature=temperature, inputs={"question": prepared.question, "context": prepared.context})


def _no_context(prepared: Prepared, backend: Backend) -> Answer:
    draft = AnswerDraft(answer=f"{CANNOT_ANSWER}: nothing in the index matches this question.", refused=True,
                        refusal_reason="nothing in the index matches this question")
    return finalize(prepared, draft, backend=backend, usage=Usage())


def ask(question: str, *, store: IndexStore, backend: Backend, settings: Settings, k: int | None = None,
        source_glob: str | None = None, max_tokens: int | None = None, temperature: float | None = None) -> Answer:
    """Answer ``question`` from the index, verified; a refusal when the sources don't hold it."""
    prepared = prepare(question, store=store, settings=settings, k=k, source_glob=source_glob, max_tokens=max_tokens)
    if not prepared.context:
        return _no_context(prepared, backend)
    gen = backend.generate(_request(prepared, max_tokens, temperature))
    assert isinstance(gen.output, AnswerDraft)
    return finalize(prepared, gen.output, backend=backend, usage=gen.usage)


def ask_stream(question: str, *, store: IndexStore, backend: Backend, settings: Settings, k: int | None = None,
               source_glob: str | None = None, max_tokens: int | None = None,
               temperature: float | None = None) -> Iterator[str | Answer]:
    """Yield answer text as it is generated (unverified), then the verified Answer."""
    prepared = prepare(question, store=store, settings=settings, k=k, source_glob=source_glob, max_tokens=max_tokens)
    if not prepared.context:
        answer = _no_context(prepared, backend)
        yield answer.answer
        yield answer
        return
    for item in backend.stream(_request(prepared, max_tokens, temperature)):
        if isinstance(item, Generation):
            assert isinstance(item.output, AnswerDraft)
            yield finalize(prepared, item.output, backend=backend, usage=item.usage)
        else:
            yield item


# ------------------------------------------------------------------ chat
def _standalone_line(text: str) -> str:
    """The rewritten question from a model's reply: the first line that reads like a question."""
    lines = [re.sub(r"^(standalone question|rewritten question|question)\s*:\s*", "", ln.strip().strip('"'), flags=re.I).strip()
             for ln in text.strip().splitlines() if ln.strip()]
    lines = [ln for ln in lines if ln and not ln.lower().startswith(("conversation", "follow-up", "user:", "assistant:"))]
    return next((ln for ln in lines if ln.endswith("?")), lines[0] if lines else "")

@dataclass
class Conversation:
    """Turns of a chat; follow-ups are condensed into standalone questions before retrieval."""

    turns: list[dict[str, str]] = field(default_factory=list)
    last_answer: Answer | None = None

    def standalone(self, question: str, backend: Backend) -> tuple[str, Usage]:
        if not self.turns:
            return question, Usage()
        history = self.turns[-6:]
        prompt = render_prompt("condense", history=history, question=question)
        try:
            gen = backend.generate(GenerationRequest(task="condense", prompt=prompt, max_tokens=200,
                                                     inputs={"history": history, "question": question}))
        except RagError:
            return question, Usage()  # a failed rewrite must not lose an answerable question
        return _standalone_line(str(gen.output)) or question, gen.usage

    def record(self, question: str, answer: Answer) -> None:
        self.turns.append({"role": "user", "content": answer.standalone_question or question})
        self.turns.append({"role": "assistant", "content": answer.answer})
        self.last_answer = answer

    def reset(self) -> None:
        self.turns.clear()
        self.last_answer = None


def chat_turn(conversation: Conversation, question: str, *, store: IndexStore, backend: Backend, settings: Settings,
              k: int | None = None, source_glob: str | None = None, max_tokens: int | None = None,
              temperature: float | None = None) -> Iterator[str | Answer]:
    """One chat turn: condense the follow-up, stream the answer, record it in the conversation."""
    standalone, condense_usage = conversation.standalone(question, backend)
    for item in ask_stream(standalone, store=store, backend=backend, settings=settings, k=k, source_glob=source_glob,
                           max_tokens=max_tokens, temperature=temperature):
        if isinstance(item, Answer):
            item.question = question
            item.standalone_question = standalone if standalone != question else None
            item.usage = condense_usage.add(item.usage)
            conversation.record(question, item)
        yield item
