"""The OpenAI backend against a real local server speaking the wire protocol, through the real SDK.

Each scripted case checks what the user gets (output or error message) and how many requests the
server saw. Sleeps between retries are recorded, not slept, so the suite stays fast.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fake_openai import (
    Call, FakeOpenAI, context_length_exceeded, error, fake_openai, forever, hangup, json_reply,  # noqa: F401
    model_not_found, rate_limited, rejects_response_format, reply, server_error, stream, unauthorized,
)
from rag.backends.base import Generation, GenerationRequest
from rag.backends.openai import (
    STREAM_CUT, AnswerFieldStreamer, OpenAIBackend, extract_json_object, load_prices,
)
from rag.config import Settings, load_settings
from rag.errors import BackendError, ValidationFailed
from rag.prompts import render_prompt
from rag.tokens import count_tokens
from rag.types import AnswerDraft

SOURCES = [{"id": "S1", "source": "a.txt", "title": "t", "text": "Acme grew revenue 12% in 2023."}]
GOOD = {"answer": "Revenue grew 12% [S1].", "refused": False, "refusal_reason": None,
        "citations": [{"source": "a.txt", "chunk_id": "S1", "quote": "Acme grew revenue 12% in 2023."}],
        "confidence": 0.9}


def make_settings(fake: FakeOpenAI, *, model: str = "gpt-4o-mini", prices: object = None, **llm: object) -> Settings:
    return load_settings(backend="openai", base_url=fake.base_url, api_key="test", model=model, prices=prices,
                         cache="off", llm={"max_attempts": 3, "max_retry_seconds": 5} | llm)


def answer_request(question: str = "How much did revenue grow?", *, schema=AnswerDraft, max_tokens=None):
    prompt = render_prompt("answer", question=question, sources=SOURCES, cannot_answer="The sources don't say.")
    return GenerationRequest(task="answer", prompt=prompt, schema=schema, max_tokens=max_tokens)


class Sleeps(list):
    """Records the waits call_with_retries asks for instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def backend(fake_openai: FakeOpenAI, sleeps: Sleeps):
    b = OpenAIBackend(make_settings(fake_openai), sleep=sleeps)
    yield b
    b.close()


# ---------------------------------------------------------------- structured output
def test_valid_structured_json(fake_openai: FakeOpenAI, backend: OpenAIBackend):
    fake_openai.script([json_reply(GOOD, usage={"prompt_tokens": 1000, "completion_tokens": 200})])
    result = backend.generate(answer_request())
    assert result.output == AnswerDraft.model_validate(GOOD)
    assert len(fake_openai.requests) == 1
    sent = fake_openai.requests[0]
    assert sent.headers["authorization"] == "Bearer test"
    assert sent.body["model"] == "gpt-4o-mini" and sent.body["max_tokens"] == 1024 and sent.body["temperature"] == 0
    assert sent.body["response_format"]["type"] == "json_schema"
    assert sent.body["response_format"]["json_schema"]["name"] == "AnswerDraft"
    assert sent.body["response_format"]["json_schema"]["strict"] is False
    schema = sent.body["response_format"]["json_schema"]["schema"]
    # The model is asked for what it must write: citations without the spans we verify and fill in.
    assert list(schema["$defs"]["Citation"]["properties"]) == ["source", "chunk_id", "quote"]
    assert schema["properties"] == AnswerDraft.model_json_schema()["properties"]
    assert sent.messages == answer_request().prompt.messages
    usage = result.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.calls, usage.cached) == (1000, 200, 1, False)
    assert usage.cost_usd == pytest.approx((1000 * 0.15 + 200 * 0.60) / 1e6)


def test_request_max_tokens_overrides_the_setting(fake_openai: FakeOpenAI, backend: OpenAIBackend):
    fake_openai.script([json_reply(GOOD)])
    backend.generate(answer_request(max_tokens=99))
    assert fake_openai.requests[0].body["max_tokens"] == 99


def test_fenced_json_is_accepted_without_a_repair(fake_openai: FakeOpenAI, backend: OpenAIBackend):
    fake_openai.script([reply("```json\n" + json.dumps(GOOD, indent=2) + "\n```")])
    assert backend.generate(answer_request()).output.answer == GOOD["answer"]
    assert len(fake_openai.requests) == 1


def test_invalid_then_valid_uses_one_repair_naming_the_bad_field(fake_openai: FakeOpenAI, backend: OpenAIBackend):
    bad = json.dumps({"answer": "Revenue grew 12%.", "citations": [{"source": "a.txt", "quote": "Acme grew"}]})
    fake_openai.script([reply(bad, usage={"prompt_tokens": 100, "completion_tokens": 10}),
                        json_reply(GOOD, usage={"prompt_tokens": 150, "completion_tokens": 20})])
    result = backend.generate(answer_request())
    assert result.output.answer == GOOD["answer"]
    assert len(fake_openai.requests) == 2
    repair = fake_openai.requests[1].messages
    assert repair[:-2] == answer_request().prompt.messages
    assert repair[-2] == {"role": "assistant", "content": bad}
    assert repair[-1]["role"] == "user"
    assert "not a valid AnswerDraft" in repair[-1]["content"]
    assert "- citations.0.chunk_id: Field required" in repair[-1]["content"]
    assert (result.usage.prompt_tokens, result.usage.completion_tokens, result.usage.calls) == (250, 30, 2)


def test_invalid_twice_fails_naming_the_schema_and_fields(fake_openai: FakeOpenAI, backend: OpenAIBackend):
    fake_openai.script([json_reply({"answer": 3, "extra": 1}), reply("I think revenue grew.")])
    with pytest.raises(ValidationFailed) as info:
        backend.generate(answer_request())
    assert str(info.value).startswith("the model's reply did not fit AnswerDraft even after a repair retry: "
                                      "(reply): not a JSON object matching AnswerDraft")
    assert len(fake_openai.requests) == 2
    first_repair = fake_openai.requests[1].messages[-1]["content"]
    assert "- answer: Input should be a valid string" in first_repair
    assert "- extra: Extra inputs are not permitted" in first_repair


def test_plain_text_without_schema(fake_openai: FakeOpenAI, backend: OpenAIBackend):
    fake_openai.script([reply("  A short summary.\n")])
    result = backend.generate(answer_request(schema=None))
    assert result.output == "A short summary."
    assert "response_format" not in fake_openai.requests[0].body


def test_missing_usage_is_counted_with_tiktoken(fake_openai: FakeOpenAI, backend: OpenAIBackend):
    content = json.dumps(GOOD)
    fake_openai.script([reply(content, usage=None)])
    usage = backend.generate(answer_request()).usage
    assert usage.completion_tokens == count_tokens(content)
    assert usage.prompt_tokens > sum(count_tokens(m["content"]) for m in answer_request().prompt.messages)
    assert usage.cost_usd is not None


def test_unknown_model_has_unknown_cost(fake_openai: FakeOpenAI, sleeps: Sleeps):
    fake_openai.script([json_reply(GOOD)])
    b = OpenAIBackend(make_settings(fake_openai, model="my-local-llama"), sleep=sleeps)
    assert b.generate(answer_request()).usage.cost_usd is None
    b.close()


def test_price_table_can_be_replaced(fake_openai: FakeOpenAI, sleeps: Sleeps, tmp_path, monkeypatch):
    prices = tmp_path / "prices.toml"
    prices.write_text('[models."gpt-4o-mini"]\ninput = 1.0\noutput = 2.0\n')
    monkeypatch.setenv("RAG_PRICES", str(prices))  # read by Settings, like every RAG_ variable
    backend = OpenAIBackend(load_settings(backend="openai", base_url=fake_openai.base_url, api_key="test", cache="off"),
                            sleep=sleeps)
    fake_openai.script([json_reply(GOOD, usage={"prompt_tokens": 1_000_000, "completion_tokens": 1_000_000})])
    assert backend.generate(answer_request()).usage.cost_usd == pytest.approx(3.0)


# ---------------------------------------------------------------- retries and errors
def test_429_with_retry_after_then_success(fake_openai: FakeOpenAI, backend: OpenAIBackend, sleeps: Sleeps):
    fake_openai.script([rate_limited(retry_after_ms="10"), rate_limited(retry_after="0"), json_reply(GOOD)])
    assert backend.generate(answer_request()).output.answer == GOOD["answer"]
    assert len(fake_openai.requests) == 3
    assert sleeps[0] == 0.01  # retry-after-ms honoured
    assert 0.75 < sleeps[1] <= 1.0  # Retry-After: 0 is not positive: plain backoff for the 2nd retry


def test_500_twice_then_success(fake_openai: FakeOpenAI, backend: OpenAIBackend):
    fake_openai.script([server_error(), server_error(502), json_reply(GOOD)])
    assert backend.generate(answer_request()).output.answer == GOOD["answer"]
    assert len(fake_openai.requests) == 3


def test_500_forever_gives_up_after_max_attempts(fake_openai: FakeOpenAI, backend: OpenAIBackend):
    fake_openai.script([forever(server_error())])
    with pytest.raises(BackendError) as info:
        backend.generate(answer_request())
    assert str(info.value) == ("the model endpoint failed with status 500 after 3 attempts: "
                               "The server had an error while processing your request.")
    assert info.value.retryable
    assert len(fake_openai.requests) == 3


def test_connection_drop_is_retried(fake_openai: FakeOpenAI, backend: OpenAIBackend):
    fake_openai.script([hangup(), json_reply(GOOD)])
    assert backend.generate(answer_request()).output.answer == GOOD["answer"]
    assert len(fake_openai.requests) == 2


def test_401(fake_openai: FakeOpenAI, backend: OpenAIBackend):
    fake_openai.script([forever(unauthorized())])
    with pytest.raises(BackendError) as info:
        backend.generate(answer_request())
    assert str(info.value) == "the endpoint rejected the API key (401) (check OPENAI_API_KEY (or RAG_API_KEY))"
    assert not info.value.retryable and len(fake_openai.requests) == 1


def test_404_unknown_model(fake_openai: FakeOpenAI, backend: OpenAIBackend):
    fake_openai.script([forever(model_not_found("gpt-4o-mini"))])
    with pytest.raises(BackendError) as info:
        backend.generate(answer_request())
    assert info.value.message == f"model 'gpt-4o-mini' not found at {fake_openai.base_url} (404)"
    assert len(fake_openai.requests) == 1


def test_400_context_length_is_not_retried_nor_a_format_fallback(fake_openai: FakeOpenAI, backend: OpenAIBackend):
    fake_openai.script([forever(context_length_exceeded())])
    with pytest.raises(BackendError) as info:
        backend.generate(answer_request())
    assert info.value.message == "prompt is too long for the model's context window (400)"
    assert len(fake_openai.requests) == 1 and backend.mode == "json_schema"


def test_finish_reason_length_is_never_parsed(fake_openai: FakeOpenAI, backend: OpenAIBackend):
    fake_openai.script([reply('{"answer": "Revenue gr', finish_reason="length")])
    with pytest.raises(BackendError) as info:
        backend.generate(answer_request())
    assert info.value.message == "the model's output was cut off at 1024 tokens (finish_reason=length)"
    assert "--max-tokens" in info.value.hint
    assert len(fake_openai.requests) == 1


def test_finish_reason_content_filter(fake_openai: FakeOpenAI, backend: OpenAIBackend):
    fake_openai.script([reply("", finish_reason="content_filter")])
    with pytest.raises(BackendError, match="content filter"):
        backend.generate(answer_request())
    assert len(fake_openai.requests) == 1


def test_refusal_becomes_a_refused_answer(fake_openai: FakeOpenAI, backend: OpenAIBackend):
    fake_openai.script([reply(None, refusal="I can't help with that.")])
    draft = backend.generate(answer_request()).output
    assert draft.refused and draft.citations == []
    assert draft.answer.startswith("The sources don't say") and "(model refused)" in draft.answer
    assert draft.refusal_reason == "the model refused to answer: I can't help with that."
    assert len(fake_openai.requests) == 1


def test_refusal_without_answer_schema_is_an_error(fake_openai: FakeOpenAI, backend: OpenAIBackend):
    fake_openai.script([reply(None, refusal="No.")])
    with pytest.raises(BackendError, match="the model refused: No."):
        backend.generate(answer_request(schema=None))


# ---------------------------------------------------------------- response_format fallback
def test_json_schema_rejected_falls_back_to_json_object(fake_openai: FakeOpenAI, backend: OpenAIBackend):
    fake_openai.script([rejects_response_format("json_schema"), json_reply(GOOD), json_reply(GOOD)])
    assert backend.generate(answer_request()).output.answer == GOOD["answer"]
    assert [r.response_format for r in fake_openai.requests] == ["json_schema", "json_object"]
    assert backend.mode == "json_object"
    backend.generate(answer_request("Again?"))  # remembered: no second rejected request
    assert [r.response_format for r in fake_openai.requests] == ["json_schema", "json_object", "json_object"]


def test_both_formats_rejected_falls_back_to_text_extraction(fake_openai: FakeOpenAI, backend: OpenAIBackend):
    prose = "Sure! Here is the JSON:\n```json\n" + json.dumps(GOOD) + "\n```\nHope that helps {really}."
    fake_openai.script([rejects_response_format("json_schema"),
                        error(400, "response_format json_object is not supported", param="response_format"),
                        reply(prose)])
    assert backend.generate(answer_request()).output == AnswerDraft.model_validate(GOOD)
    assert [r.response_format for r in fake_openai.requests] == ["json_schema", "json_object", None]
    assert backend.mode == "text"


def test_an_unrelated_400_in_json_object_mode_is_reported(fake_openai: FakeOpenAI, backend: OpenAIBackend):
    fake_openai.script([rejects_response_format("json_schema"), error(400, "temperature is not supported")])
    with pytest.raises(BackendError) as info:
        backend.generate(answer_request())
    assert info.value.message == "the endpoint rejected the request (400): temperature is not supported"
    assert len(fake_openai.requests) == 2


# ---------------------------------------------------------------- streaming
TRICKY = {**GOOD, "answer": 'He said "grew 12%"\nthat\u2019s all \\ done \U0001F4C8 {not json}'}


def _drain(it):
    deltas, finals = [], []
    for item in it:
        (finals if isinstance(item, Generation) else deltas).append(item)
    return deltas, finals


@pytest.mark.parametrize("ensure_ascii", [True, False])
def test_stream_read_to_the_end(fake_openai: FakeOpenAI, backend: OpenAIBackend, ensure_ascii: bool):
    content = json.dumps(TRICKY, ensure_ascii=ensure_ascii)
    fake_openai.script([stream(content, chunk_size=3, usage={"prompt_tokens": 70, "completion_tokens": 30})])
    deltas, finals = _drain(backend.stream(answer_request()))
    assert len(finals) == 1 and len(deltas) > 3
    assert "".join(deltas) == finals[0].output.answer == TRICKY["answer"]
    assert (finals[0].usage.prompt_tokens, finals[0].usage.completion_tokens) == (70, 30)
    body = fake_openai.requests[0].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert len(fake_openai.requests) == 1


def test_stream_cut_mid_way(fake_openai: FakeOpenAI, backend: OpenAIBackend):
    fake_openai.script([stream(json.dumps(GOOD), chunk_size=5, cut_after=4), json_reply(GOOD)])
    seen = []
    with pytest.raises(BackendError) as info:
        for item in backend.stream(answer_request()):
            seen.append(item)
    assert info.value.message == STREAM_CUT and info.value.retryable
    assert not any(isinstance(item, Generation) for item in seen)
    assert len(fake_openai.requests) == 1  # only the opening is retried


def test_stream_without_finish_reason_is_cut(fake_openai: FakeOpenAI, backend: OpenAIBackend):
    fake_openai.script([stream(json.dumps(GOOD), finish_reason=None)])
    with pytest.raises(BackendError, match=STREAM_CUT):
        _drain(backend.stream(answer_request()))


def test_stream_opening_is_retried(fake_openai: FakeOpenAI, backend: OpenAIBackend):
    fake_openai.script([server_error(503), stream(json.dumps(GOOD))])
    deltas, finals = _drain(backend.stream(answer_request()))
    assert "".join(deltas) == GOOD["answer"] and len(finals) == 1
    assert len(fake_openai.requests) == 2


def test_stream_cut_off_by_length(fake_openai: FakeOpenAI, backend: OpenAIBackend):
    fake_openai.script([stream('{"answer": "Revenue grew', finish_reason="length")])
    with pytest.raises(BackendError, match="cut off at 1024 tokens"):
        _drain(backend.stream(answer_request()))


def test_stream_invalid_output_gets_the_repair_retry(fake_openai: FakeOpenAI, backend: OpenAIBackend):
    fake_openai.script([stream(json.dumps({"answer": "Revenue grew 12%.", "confidence": 7})), json_reply(GOOD)])
    deltas, finals = _drain(backend.stream(answer_request()))
    assert "".join(deltas) == "Revenue grew 12%."
    assert finals[0].output == AnswerDraft.model_validate(GOOD) and finals[0].usage.calls == 2
    assert "- confidence: Input should be less than or equal to 1" in fake_openai.requests[1].messages[-1]["content"]


def test_stream_options_rejected_is_dropped(fake_openai: FakeOpenAI, backend: OpenAIBackend):
    def step(body):
        if "stream_options" in body:
            return error(400, "Unrecognized request argument supplied: stream_options", param="stream_options")
        return stream(json.dumps(GOOD), usage=None)

    fake_openai.script([forever(Call(step))])
    deltas, finals = _drain(backend.stream(answer_request()))
    assert "".join(deltas) == GOOD["answer"]
    assert finals[0].usage.completion_tokens == count_tokens(json.dumps(GOOD))
    assert len(fake_openai.requests) == 2 and backend.mode == "json_schema"


def test_stream_text_without_schema(fake_openai: FakeOpenAI, backend: OpenAIBackend):
    fake_openai.script([stream("Plain summary text.", chunk_size=2)])
    deltas, finals = _drain(backend.stream(answer_request(schema=None)))
    assert "".join(deltas) == "Plain summary text." == finals[0].output


# ---------------------------------------------------------------- pure helpers
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(
    answer=st.text(),
    others=st.dictionaries(st.text(max_size=10).filter(lambda k: k != "answer"), json_values, max_size=4),
    position=st.integers(0, 4),
    ensure_ascii=st.booleans(),
    indent=st.none() | st.integers(0, 2),
    cuts=st.lists(st.integers(0, 10_000), max_size=12),
    prefix=st.sampled_from(["", "```json\n", "Here it is: "]),
)
def test_answer_streamer_matches_json_loads_at_any_split(answer, others, position, ensure_ascii, indent, cuts, prefix):
    items = list(others.items())
    items.insert(min(position, len(items)), ("answer", answer))
    document = prefix + json.dumps(dict(items), ensure_ascii=ensure_ascii, indent=indent)
    points = sorted({c % (len(document) + 1) for c in cuts})
    pieces = [document[a:b] for a, b in zip([0, *points], [*points, len(document)])]
    streamer = AnswerFieldStreamer()
    assert "".join(streamer.feed(p) for p in pieces) == answer
    assert streamer.done


def test_answer_streamer_ignores_nested_answer_keys_and_lookalike_values():
    doc = '{"meta": {"answer": "nested"}, "note": "answer", "list": ["answer", {"answer": 1}], "answer": "top"}'
    streamer = AnswerFieldStreamer()
    assert "".join(streamer.feed(ch) for ch in doc) == "top"


def test_answer_streamer_escaped_key():
    assert AnswerFieldStreamer().feed('{"\\u0061nswer": "yes"}') == "yes"


@pytest.mark.parametrize(("text", "expected"), [
    ('{"a": 1}', {"a": 1}),
    ('```json\n{"a": 1}\n```', {"a": 1}),
    ('Sure: {"a": "}"} and {"b": 2}', {"a": "}"}),
    ('{broken {"a": [1, {"b": "x"}]}', {"a": [1, {"b": "x"}]}),
    ("no json here", None),
    ('["a list"]', None),
])
def test_extract_json_object(text, expected):
    assert extract_json_object(text) == expected
