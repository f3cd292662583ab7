"""The response cache: a real SQLite file in tmp_path in front of the real OpenAI backend and local server."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import pytest

from fake_openai import FakeOpenAI, fake_openai, json_reply, reply, stream, unauthorized  # noqa: F401
from rag.backends.base import Generation, GenerationRequest, get_backend
from rag.backends.openai import OpenAIBackend
from rag.cache import CachedBackend, SQLiteCache, cache_key
from rag.config import Settings, load_settings
from rag.errors import BackendError
from rag.prompts import render_prompt
from rag.types import AnswerDraft

SOURCES = [{"id": "S1", "source": "a.txt", "title": "t", "text": "Acme grew revenue 12% in 2023."}]
GOOD = {"answer": "Revenue grew 12%.", "refused": False, "refusal_reason": None,
        "citations": [{"source": "a.txt", "chunk_id": "S1", "quote": "Acme grew revenue 12% in 2023."}],
        "confidence": 0.9}


def make_settings(fake: FakeOpenAI, tmp_path: Path, **kw: object) -> Settings:
    options = {"backend": "openai", "OPENAI_BASE_URL": fake.base_url, "OPENAI_API_KEY": "test",
               "model": "gpt-4o-mini", "cache": "off", "cache_path": tmp_path / "cache" / "responses.db",
               "llm": {"max_attempts": 2, "max_retry_seconds": 2}} | kw
    return load_settings(**options)


def request(question: str = "How much did revenue grow?", *, schema=AnswerDraft, max_tokens=None):
    prompt = render_prompt("answer", question=question, sources=SOURCES, cannot_answer="The sources don't say.")
    return GenerationRequest(task="answer", prompt=prompt, schema=schema, max_tokens=max_tokens)


@pytest.fixture
def settings(fake_openai: FakeOpenAI, tmp_path: Path) -> Settings:
    return make_settings(fake_openai, tmp_path)


def cached(settings: Settings, mode: str) -> CachedBackend:
    inner = OpenAIBackend(settings, sleep=lambda s: None)
    return CachedBackend(inner, SQLiteCache(settings.resolved_cache_path), mode=mode)


# ---------------------------------------------------------------- the key
def test_cache_key_is_stable_and_covers_what_shapes_the_reply():
    base = cache_key("openai", "gpt-4o-mini", request(), temperature=0.0, max_tokens=1024)
    assert base == cache_key("openai", "gpt-4o-mini", request(), temperature=0.0, max_tokens=1024)
    assert len(base) == 64 and int(base, 16) >= 0
    variants = [
        cache_key("offline", "gpt-4o-mini", request(), temperature=0.0, max_tokens=1024),
        cache_key("openai", "gpt-4o", request(), temperature=0.0, max_tokens=1024),
        cache_key("openai", "gpt-4o-mini", request("Another question?"), temperature=0.0, max_tokens=1024),
        cache_key("openai", "gpt-4o-mini", request(schema=None), temperature=0.0, max_tokens=1024),
        cache_key("openai", "gpt-4o-mini", request(max_tokens=50), temperature=0.0, max_tokens=1024),
        cache_key("openai", "gpt-4o-mini", request(), temperature=0.7, max_tokens=1024),
        cache_key("openai", "gpt-4o-mini", request(), temperature=0.0, max_tokens=2048),
    ]
    assert len({base, *variants}) == len(variants) + 1


# ---------------------------------------------------------------- the store
def test_sqlite_cache_round_trip_persists_and_replaces(tmp_path: Path):
    path = tmp_path / "deep" / "dir" / "cache.db"
    cache = SQLiteCache(path)
    assert cache.get("k") is None
    cache.put("k", {"output": "caf\u00e9", "n": 1})
    cache.put("k", {"output": "second", "n": 2})
    cache.close()
    again = SQLiteCache(path)
    assert again.get("k") == {"output": "second", "n": 2} and len(again) == 1
    again.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        columns = [row[1] for row in conn.execute("PRAGMA table_info(responses)")]
    assert columns == ["key", "value", "created_at"]


def test_sqlite_cache_is_safe_across_threads(tmp_path: Path):
    cache = SQLiteCache(tmp_path / "cache.db")

    def work(n: int) -> None:
        for i in range(20):
            cache.put(f"{n}-{i}", {"i": i})
            assert cache.get(f"{n}-{i}") == {"i": i}

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(cache) == 80


# ---------------------------------------------------------------- read-write
def test_read_write_stores_then_hits_without_a_request(fake_openai: FakeOpenAI, settings: Settings):
    fake_openai.script([json_reply(GOOD, usage={"prompt_tokens": 500, "completion_tokens": 40})])
    backend = cached(settings, "read-write")
    assert (backend.name, backend.model) == ("openai", "gpt-4o-mini")
    first = backend.generate(request())
    assert not first.usage.cached and len(fake_openai.requests) == 1
    second = backend.generate(request())
    assert len(fake_openai.requests) == 1  # no new request
    assert second.output == first.output == AnswerDraft.model_validate(GOOD)
    assert second.usage.cached and second.usage.latency_ms == 0.0 and second.usage.cost_usd == 0.0
    assert (second.usage.prompt_tokens, second.usage.completion_tokens) == (500, 40)
    backend.close()


def test_a_different_question_is_a_miss(fake_openai: FakeOpenAI, settings: Settings):
    fake_openai.script([json_reply(GOOD), json_reply({**GOOD, "answer": "Other."})])
    backend = cached(settings, "read-write")
    backend.generate(request())
    assert backend.generate(request("Something else?")).output.answer == "Other."
    assert len(fake_openai.requests) == 2
    backend.close()


def test_errors_are_not_cached(fake_openai: FakeOpenAI, settings: Settings):
    fake_openai.script([unauthorized(), json_reply(GOOD)])
    backend = cached(settings, "read-write")
    with pytest.raises(BackendError, match="401"):
        backend.generate(request())
    assert backend.generate(request()).output.answer == GOOD["answer"]
    assert len(fake_openai.requests) == 2
    backend.close()


def test_text_outputs_are_cached(fake_openai: FakeOpenAI, settings: Settings):
    fake_openai.script([reply("A summary.")])
    backend = cached(settings, "read-write")
    backend.generate(request(schema=None))
    hit = backend.generate(request(schema=None))
    assert hit.output == "A summary." and hit.usage.cached and len(fake_openai.requests) == 1
    backend.close()


# ---------------------------------------------------------------- replay
def test_replay_answers_a_recorded_call_with_no_http(fake_openai: FakeOpenAI, settings: Settings):
    fake_openai.script([json_reply(GOOD)])
    recorder = cached(settings, "read-write")
    recorded = recorder.generate(request())
    recorder.close()
    replay = cached(settings, "replay")
    replayed = replay.generate(request())
    assert replayed.output == recorded.output and replayed.usage.cached
    assert len(fake_openai.requests) == 1  # only the recording
    replay.close()


def test_replay_miss_fails_clearly(fake_openai: FakeOpenAI, settings: Settings):
    fake_openai.script([json_reply(GOOD)])
    replay = cached(settings, "replay")
    with pytest.raises(BackendError) as info:
        replay.generate(request())
    assert str(info.value) == "no cached response for this call (replay mode) (record it first with RAG_CACHE=read-write)"
    assert len(fake_openai.requests) == 0
    replay.close()


def test_get_backend_wraps_unless_off(fake_openai: FakeOpenAI, tmp_path: Path):
    fake_openai.script([json_reply(GOOD)])
    rw = get_backend(make_settings(fake_openai, tmp_path, cache="read-write"))
    assert isinstance(rw, CachedBackend) and rw.name == "openai"
    rw.generate(request())
    rw.close()
    replay = get_backend(make_settings(fake_openai, tmp_path, cache="replay"))
    assert replay.generate(request()).usage.cached
    replay.close()
    off = get_backend(make_settings(fake_openai, tmp_path, cache="off"))
    assert isinstance(off, OpenAIBackend)
    off.close()
    assert len(fake_openai.requests) == 1


# ---------------------------------------------------------------- streaming through the cache
def test_stream_miss_records_and_hit_replays_the_answer(fake_openai: FakeOpenAI, settings: Settings):
    fake_openai.script([stream(json.dumps(GOOD), chunk_size=3)])
    backend = cached(settings, "read-write")
    first = list(backend.stream(request()))
    assert isinstance(first[-1], Generation) and "".join(first[:-1]) == GOOD["answer"]
    second = list(backend.stream(request()))
    assert second[0] == GOOD["answer"] and second[-1].usage.cached and len(second) == 2
    assert backend.generate(request()).output == first[-1].output
    assert len(fake_openai.requests) == 1
    backend.close()


def test_cut_stream_is_not_recorded(fake_openai: FakeOpenAI, settings: Settings):
    fake_openai.script([stream(json.dumps(GOOD), cut_after=2), json_reply(GOOD)])
    backend = cached(settings, "read-write")
    with pytest.raises(BackendError, match="stream ended"):
        list(backend.stream(request()))
    assert not backend.generate(request()).usage.cached
    assert len(fake_openai.requests) == 2
    backend.close()
