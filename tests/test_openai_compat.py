"""`/v1/chat/completions` as real OpenAI clients see it: the official `openai` SDK (sync and streaming) and
simonw's `llm` CLI, pointed at a real `rag serve` (uvicorn on a loopback port).

What the endpoint promises: usage counted with tiktoken, answers streamed in pieces, 404 model_not_found for a
model it does not offer (or a configured alias), max_tokens and temperature passed on, and a refusal that shows
in the OpenAI shape (`message.refusal`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import SEED_FILE
from fake_openai import FakeOpenAI, fake_openai, forever, json_reply  # noqa: F401  (fixture)
from rag.tokens import count_tokens
from test_server import KEY, KROGER, SEED_ID, ThreadServer, index_seeds, make_settings

pytestmark = pytest.mark.slow
FRANCE = "What is the capital of France?"


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    index = tmp_path_factory.mktemp("compat") / "index.db"
    index_seeds(index)
    return index


@pytest.fixture(scope="module")
def server(seeds: Path) -> Iterator[ThreadServer]:
    settings = make_settings(seeds, api_keys=KEY, server={"rate_limit_per_minute": 100_000, "model_aliases": "gpt-4o-mini"})
    with ThreadServer(settings) as srv:
        yield srv


@pytest.fixture
def sdk(server: ThreadServer):
    import openai

    with openai.OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0) as client:
        yield client


def test_sdk_completion_counts_usage_with_tiktoken(sdk) -> None:
    completion = sdk.chat.completions.create(model="rag", messages=[{"role": "user", "content": KROGER}])
    content = completion.choices[0].message.content
    assert "hired a former Walmart U.S. CEO" in content and completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.refusal is None
    usage = completion.usage
    assert usage.completion_tokens == count_tokens(content)
    assert usage.prompt_tokens == count_tokens(KROGER) + count_tokens("user") + 6  # OpenAI's chat framing
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_sdk_stream_sends_the_answer_in_pieces_with_usage(sdk) -> None:
    chunks = list(sdk.chat.completions.create(model="rag", stream=True, stream_options={"include_usage": True},
                                              messages=[{"role": "user", "content": KROGER}]))
    deltas = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(deltas) > 5  # word by word, not one delta
    text = "".join(deltas)
    whole = sdk.chat.completions.create(model="rag", messages=[{"role": "user", "content": KROGER}])
    assert text == whole.choices[0].message.content
    final = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert [c.choices[0].finish_reason for c in final] == ["stop"]
    assert final[0].model_extra["citations"][0]["source"] == SEED_ID
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens == count_tokens(text) and usage.prompt_tokens > 0


def test_an_unknown_model_is_404_model_not_found(sdk) -> None:
    import openai

    with pytest.raises(openai.NotFoundError) as caught:
        sdk.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": KROGER}])
    assert caught.value.code == "model_not_found" and "gpt-4o" in caught.value.message
    with pytest.raises(openai.NotFoundError):
        list(sdk.chat.completions.create(model="gpt-4o", stream=True, messages=[{"role": "user", "content": KROGER}]))


def test_a_configured_alias_is_accepted_and_listed(sdk) -> None:
    assert [m.id for m in sdk.models.list()] == ["rag", "gpt-4o-mini"]
    completion = sdk.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": KROGER}])
    assert completion.model == "gpt-4o-mini" and "Walmart" in completion.choices[0].message.content


def test_max_tokens_cuts_the_answer_with_finish_reason_length(sdk) -> None:
    completion = sdk.chat.completions.create(model="rag", max_tokens=5, messages=[{"role": "user", "content": KROGER}])
    choice = completion.choices[0]
    assert choice.finish_reason == "length" and completion.usage.completion_tokens <= 5
    whole = sdk.chat.completions.create(model="rag", messages=[{"role": "user", "content": KROGER}]).choices[0].message.content
    assert choice.message.content and whole.startswith(choice.message.content) and len(choice.message.content) < len(whole)
    chunks = list(sdk.chat.completions.create(model="rag", max_tokens=5, stream=True, stream_options={"include_usage": True},
                                              messages=[{"role": "user", "content": KROGER}]))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert count_tokens(text) <= 5 and text
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["length"]


def test_a_refusal_sets_message_refusal(sdk) -> None:
    completion = sdk.chat.completions.create(model="rag", messages=[{"role": "user", "content": FRANCE}])
    message = completion.choices[0].message
    assert message.refusal and message.refusal == message.content and message.content.startswith("The sources don't say")
    assert completion.model_extra["rag"]["refused"] is True
    chunks = list(sdk.chat.completions.create(model="rag", stream=True, messages=[{"role": "user", "content": FRANCE}]))
    refusals = [c.choices[0].delta.refusal for c in chunks if c.choices and c.choices[0].delta.refusal]
    assert refusals == [message.refusal]


def test_answering_an_answerable_question_has_no_refusal_in_the_stream(sdk) -> None:
    chunks = list(sdk.chat.completions.create(model="rag", stream=True, messages=[{"role": "user", "content": KROGER}]))
    assert not any(c.choices and c.choices[0].delta.refusal for c in chunks)


def test_max_tokens_and_temperature_reach_the_model_backend(seeds: Path, fake_openai: FakeOpenAI) -> None:
    quote = "Kroger on Monday (Feb. 9) hired a former Walmart U.S. CEO"
    assert quote in SEED_FILE.read_text(encoding="utf-8")
    fake_openai.script([forever(json_reply({"answer": "Kroger hired a former Walmart U.S. CEO on Monday.",
                                            "citations": [{"source": SEED_ID, "chunk_id": "S1", "quote": quote}]}))])
    settings = make_settings(seeds, backend="openai", api_key="sk-test", base_url=fake_openai.base_url, cache="off",
                             model="upstream-model")
    with ThreadServer(settings) as srv, srv.client() as c:
        response = c.post("/v1/chat/completions", json={"model": "rag", "max_tokens": 300, "temperature": 0.7,
                                                        "messages": [{"role": "user", "content": KROGER}]})
        default = c.post("/v1/chat/completions", json={"model": "rag", "messages": [{"role": "user", "content": KROGER}]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["choices"][0]["message"]["citations"][0]["quote"] == quote
    sent = [r.body for r in fake_openai.requests]
    assert sent[0]["max_tokens"] == 300 and sent[0]["temperature"] == 0.7
    assert default.status_code == 200 and sent[-1]["temperature"] == 0.0 and sent[-1]["max_tokens"] == 1024
    assert body["rag"]["usage"]["prompt_tokens"] > body["usage"]["prompt_tokens"]  # upstream saw the sources too


# ------------------------------------------------------------------ a second client: the `llm` CLI
@pytest.fixture
def llm_home(server: ThreadServer, tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "llm"
    home.mkdir()
    (home / "extra-openai-models.yaml").write_text(
        f"- model_id: rag\n  model_name: rag\n  api_base: \"{server.url}/v1\"\n  api_key_name: rag\n", encoding="utf-8")
    (home / "keys.json").write_text(json.dumps({"rag": KEY}), encoding="utf-8")
    return {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LLM_"))} | {"LLM_USER_PATH": str(home)}


def _llm(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llm", *args], env=env, capture_output=True, text=True, timeout=120)


def test_llm_cli_streams_an_answer_and_logs_its_usage(llm_home: dict[str, str]) -> None:
    streamed = _llm(llm_home, "-m", "rag", KROGER)
    assert streamed.returncode == 0, streamed.stderr
    assert "hired a former Walmart U.S. CEO" in streamed.stdout
    whole = _llm(llm_home, "-m", "rag", "--no-stream", KROGER)
    assert whole.returncode == 0 and whole.stdout == streamed.stdout
    logs = json.loads(_llm(llm_home, "logs", "--json", "-n", "2").stdout)
    assert len(logs) == 2 and all(entry["model"] == "rag" for entry in logs)
    assert all(entry["input_tokens"] > 0 and entry["output_tokens"] == count_tokens(streamed.stdout.strip()) for entry in logs)


def test_llm_cli_reports_an_unknown_model(llm_home: dict[str, str], tmp_path: Path) -> None:
    config = Path(llm_home["LLM_USER_PATH"]) / "extra-openai-models.yaml"
    config.write_text(config.read_text(encoding="utf-8").replace("model_name: rag", "model_name: gpt-4o"), encoding="utf-8")
    result = _llm(llm_home, "-m", "rag", KROGER)
    assert result.returncode != 0 and "gpt-4o" in result.stderr and "does not exist" in result.stderr
