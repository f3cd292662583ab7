"""OpenAI-compatible endpoints, so any chat client or SDK can use the grounded answers.

``POST /v1/chat/completions``: the last user message is the question, earlier user/assistant turns
are the conversation it is condensed against. The verified answer is the message content; its
citations ride along as ``citations`` (on the message and at the top level) and the grounding
details as ``rag``. A refusal also sets ``message.refusal`` (``delta.refusal`` when streaming), as
OpenAI does for a model's refusal, and ``rag.refused``. ``usage`` counts, with tiktoken, the tokens of
the messages sent and of the answer returned; what the backend itself spent is ``rag.usage``.
Streaming sends the answer in pieces as ``chat.completion.chunk`` events ending with ``data: [DONE]``.
Streamed text is the draft; if verification changes it (e.g. into a refusal), a final delta says so,
since a client cannot take back text it has already shown. The one model is ``rag`` (plus the names
in ``RAG_SERVER__MODEL_ALIASES``); another name is 404 ``model_not_found``, as OpenAI answers.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from ..answer import Conversation, chat_turn
from ..tokens import get_encoding
from ..types import Answer
from .api import check_question, services_of
from .errors import ApiError
from .schemas import ChatCompletionsBody, ChatMessage
from .sse import SSE_HEADERS, error_body, frames, open_stream, sse
from .state import Services

router = APIRouter()
MODEL_ID = "rag"
_TOKENS_PER_MESSAGE = 3  # OpenAI's chat framing: <|start|>role ... <|end|>, and 3 to prime the reply


def model_names(services: Services) -> list[str]:
    aliases = [a.strip() for a in services.settings.server.model_aliases.split(",") if a.strip()]
    return list(dict.fromkeys([MODEL_ID, *aliases]))


@router.get("/v1/models", tags=["openai"], summary="The model this server offers (and its aliases)")
async def list_models(request: Request) -> dict[str, Any]:
    return {"object": "list", "data": [{"id": name, "object": "model", "created": 0, "owned_by": "rag"}
                                       for name in model_names(services_of(request))]}


@dataclass
class Counter:
    """Token counts of what the client sent and what it receives (tiktoken, the configured encoding)."""

    encoding: str
    prompt_tokens: int = 0

    def count(self, text: str) -> int:
        return len(get_encoding(self.encoding).encode_ordinary(text))

    def messages(self, messages: list[ChatMessage]) -> int:
        return sum(_TOKENS_PER_MESSAGE + self.count(m.role) + self.count(m.text) for m in messages) + _TOKENS_PER_MESSAGE

    def cut(self, text: str, limit: int | None) -> tuple[str, bool]:
        """``text`` within ``limit`` tokens (whole characters), and whether it was cut."""
        if limit is None:
            return text, False
        enc = get_encoding(self.encoding)
        tokens = enc.encode_ordinary(text)
        if len(tokens) <= limit:
            return text, False
        return enc.decode_bytes(tokens[:limit]).decode("utf-8", errors="ignore"), True

    def usage(self, content: str) -> dict[str, int]:
        completion = self.count(content)
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": completion,
                "total_tokens": self.prompt_tokens + completion}


def _grounding(answer: Answer) -> dict[str, Any]:
    return answer.model_dump(mode="json", include={"refused", "refusal_reason", "confidence", "flags", "dropped_citations",
                                                   "standalone_question", "backend", "model", "prompt", "latency_ms",
                                                   "usage"})


def _citations(answer: Answer) -> list[dict[str, Any]]:
    return [c.model_dump(mode="json") for c in answer.citations]


def completion(answer: Answer, *, cid: str, created: int, model: str, counter: Counter,
               max_tokens: int | None = None) -> dict[str, Any]:
    citations = _citations(answer)
    content, cut = counter.cut(answer.answer, max_tokens)
    message = {"role": "assistant", "content": content, "refusal": answer.answer if answer.refused else None,
               "citations": citations}
    return {
        "id": cid, "object": "chat.completion", "created": created, "model": model,
        "choices": [{"index": 0, "finish_reason": "length" if cut else "stop", "logprobs": None, "message": message}],
        "usage": counter.usage(content), "citations": citations, "rag": _grounding(answer),
    }


def _question_and_turns(services: Services, body: ChatCompletionsBody) -> tuple[str, list[dict[str, str]]]:
    if body.model not in model_names(services):
        raise ApiError(404, "invalid_request_error", f"The model `{body.model}` does not exist: this server offers "
                       f"{', '.join(model_names(services))} (GET /v1/models)", field="model", code="model_not_found")
    *history, last = body.messages
    if last.role != "user":
        raise ApiError(422, "validation_error", "messages: the last message must have role 'user' (the question)",
                       field="messages")
    question = check_question(services, last.text, field="messages")
    turns = [{"role": m.role, "content": m.text} for m in history if m.role in ("user", "assistant") and m.text.strip()]
    return question, turns


@router.post("/v1/chat/completions", tags=["openai"], summary="OpenAI-compatible chat completions (grounded)")
async def chat_completions(body: ChatCompletionsBody, request: Request) -> Any:
    services = services_of(request)
    question, turns = _question_and_turns(services, body)
    cid, created, model = f"chatcmpl-{secrets.token_hex(12)}", int(time.time()), body.model
    counter = Counter(services.settings.encoding)
    counter.prompt_tokens = counter.messages(body.messages)
    limit = body.token_limit

    def items() -> Iterator[str | Answer]:
        with services.pool.use() as store:
            for item in chat_turn(Conversation(turns=turns), question, store=store, backend=services.backend,
                                  settings=services.settings, max_tokens=limit, temperature=body.temperature):
                if isinstance(item, Answer):
                    services.metrics.observe_answer(item)
                yield item

    if not body.stream:
        answer = await services.run(lambda: [i for i in items() if isinstance(i, Answer)][-1])
        return completion(answer, cid=cid, created=created, model=model, counter=counter, max_tokens=limit)

    first, gen = await open_stream(services, items)
    streamed: list[str] = []
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    final: list[str] = []  # the content the client received, for usage

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        return sse({"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                    "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}], **extra})

    def take(text: str) -> str:
        """The part of ``text`` that still fits in max_tokens after what was sent."""
        sent = "".join(streamed)
        allowed = counter.cut(sent + text, limit)[0]
        return allowed[len(sent):] if allowed.startswith(sent) else ""

    def render(item: str | Answer) -> list[str]:
        if isinstance(item, str):
            piece = take(item)
            if piece:
                streamed.append(piece)
            return [chunk({"content": piece})] if piece else []
        draft = "".join(streamed)
        intended = draft
        out = []
        if draft.split() != item.answer.split():  # verification changed the draft: say what holds
            addition = ("\n\n" if draft else "") + item.answer
            intended += addition
            piece = take(addition)
            if piece:
                streamed.append(piece)
                out.append(chunk({"content": piece}))
        final.append("".join(streamed))
        if item.refused:
            out.append(chunk({"refusal": item.answer}))
        cut = limit is not None and counter.count(intended) > limit
        out.append(chunk({}, "length" if cut else "stop", citations=_citations(item), rag=_grounding(item)))
        return out

    def tail() -> list[str]:
        usage = [sse({"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                      "choices": [], "usage": counter.usage(final[0])})] if include_usage and final else []
        return usage + ["data: [DONE]\n\n"]

    opening = [chunk({"role": "assistant", "content": ""})]
    return StreamingResponse(
        iter_chain(opening, frames(first, gen, render, lambda err: [sse(error_body(err))], tail)),
        media_type="text/event-stream", headers=SSE_HEADERS)


def iter_chain(head: list[str], rest: Iterator[str]) -> Iterator[str]:
    yield from head
    yield from rest
