"""OpenAI-compatible endpoints, so any chat client or SDK can use the grounded answers.

``POST /v1/chat/completions``: the last user message is the question, earlier user/assistant turns
are the conversation it is condensed against. The verified answer is the message content; its
citations ride along as ``citations`` (on the message and at the top level) and the grounding
details as ``rag``. Streaming uses ``chat.completion.chunk`` events ending with ``data: [DONE]``.
Streamed text is the model's draft; if verification changes it (e.g. into a refusal), a final
delta says so, since a client cannot take back text it has already shown.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from ..answer import Conversation, chat_turn
from ..types import Answer
from .api import check_question, services_of
from .errors import ApiError
from .schemas import ChatCompletionsBody
from .sse import SSE_HEADERS, error_body, frames, open_stream, sse
from .state import Services

router = APIRouter()
MODEL_ID = "rag"


@router.get("/v1/models", tags=["openai"], summary="The one model this server offers")
async def list_models() -> dict[str, Any]:
    return {"object": "list", "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "rag"}]}


def _usage(answer: Answer) -> dict[str, int]:
    u = answer.usage
    return {"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens,
            "total_tokens": u.prompt_tokens + u.completion_tokens}


def _grounding(answer: Answer) -> dict[str, Any]:
    return answer.model_dump(mode="json", include={"refused", "refusal_reason", "confidence", "flags", "dropped_citations",
                                                   "standalone_question", "backend", "model", "prompt", "latency_ms"})


def _citations(answer: Answer) -> list[dict[str, Any]]:
    return [c.model_dump(mode="json") for c in answer.citations]


def completion(answer: Answer, *, cid: str, created: int) -> dict[str, Any]:
    citations = _citations(answer)
    return {
        "id": cid, "object": "chat.completion", "created": created, "model": MODEL_ID,
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                     "message": {"role": "assistant", "content": answer.answer, "refusal": None, "citations": citations}}],
        "usage": _usage(answer), "citations": citations, "rag": _grounding(answer),
    }


def _question_and_turns(services: Services, body: ChatCompletionsBody) -> tuple[str, list[dict[str, str]]]:
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
    cid, created = f"chatcmpl-{secrets.token_hex(12)}", int(time.time())

    def items() -> Iterator[str | Answer]:
        with services.pool.use() as store:
            for item in chat_turn(Conversation(turns=turns), question, store=store, backend=services.backend,
                                  settings=services.settings):
                if isinstance(item, Answer):
                    services.metrics.observe_answer(item)
                yield item

    if not body.stream:
        answer = await services.run(lambda: [i for i in items() if isinstance(i, Answer)][-1])
        return completion(answer, cid=cid, created=created)

    first, gen = await open_stream(services, items)
    streamed: list[str] = []
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    final: list[Answer] = []

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        return sse({"id": cid, "object": "chat.completion.chunk", "created": created, "model": MODEL_ID,
                    "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}], **extra})

    def render(item: str | Answer) -> list[str]:
        if isinstance(item, str):
            streamed.append(item)
            return [chunk({"content": item})] if item else []
        final.append(item)
        out = []
        if "".join(streamed).strip() != item.answer.strip():
            out.append(chunk({"content": ("\n\n" if streamed else "") + item.answer}))
        citations = _citations(item)
        out.append(chunk({}, "stop", citations=citations, rag=_grounding(item)))
        return out

    def tail() -> list[str]:
        usage = [sse({"id": cid, "object": "chat.completion.chunk", "created": created, "model": MODEL_ID,
                      "choices": [], "usage": _usage(final[0])})] if include_usage and final else []
        return usage + ["data: [DONE]\n\n"]

    opening = [chunk({"role": "assistant", "content": ""})]
    return StreamingResponse(
        iter_chain(opening, frames(first, gen, render, lambda err: [sse(error_body(err))], tail)),
        media_type="text/event-stream", headers=SSE_HEADERS)


def iter_chain(head: list[str], rest: Iterator[str]) -> Iterator[str]:
    yield from head
    yield from rest
