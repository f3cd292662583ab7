"""The OpenAI-compatible backend: chat completions, validated structured output, one repair retry, streaming.

Structured output steps down when a server rejects it: ``json_schema`` -> ``json_object`` -> plain
text with JSON extraction; the mode that worked is remembered on the instance. Retries are ours
(``retry.py``); the SDK's own are off. Costs come from the editable price table ``rag/prices.toml``.
"""

from __future__ import annotations

import json
import re
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import openai
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from pydantic import BaseModel, ValidationError

from ..errors import BackendError, ConfigError, ValidationFailed
from ..grounding import CANNOT_ANSWER, MODEL_REFUSED
from ..prompts import render_prompt
from ..tokens import count_tokens
from ..types import AnswerDraft, Usage
from .base import Backend, Generation, GenerationRequest
from .retry import call_with_retries, is_context_length_error, server_message

if TYPE_CHECKING:
    from ..config import Settings

Mode = Literal["json_schema", "json_object", "text"]
MODES: tuple[Mode, ...] = ("json_schema", "json_object", "text")
PRICES_PATH = Path(__file__).resolve().parent.parent / "prices.toml"
STREAM_CUT = "the stream ended before the answer was complete"
_FORMAT_MARKERS = ("response_format", "json_schema", "json_object", "schema")
_MAX_REPAIR_ERRORS = 10


_VERIFIED_ONLY = {"quote": ("start", "end", "page"),  # Citation: the span and page are ours to find
                  "dropped_items": ("prompt", "backend", "model", "dropped_items", "schema_version"),  # StrategySummary provenance
                  "executive_summary": ("prompt", "backend", "model", "usage", "failures", "schema_version"),  # Briefing provenance
                  "silent": ("documents", "silent")}  # OrganisationProfile: which sources mention it, counted by us


@lru_cache(maxsize=32)
def _json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The schema sent to the model, without the fields we fill in after verification (spans, provenance)."""
    schema = model.model_json_schema()
    for definition in [schema, *schema.get("$defs", {}).values()]:
        props = definition.get("properties", {})
        for marker, names in _VERIFIED_ONLY.items():
            if marker in props:
                for name in names:
                    props.pop(name, None)
                if "required" in definition:
                    definition["required"] = [r for r in definition["required"] if r not in names]
    return schema


# ---------------------------------------------------------------- prices
@lru_cache(maxsize=8)
def load_prices(path: str) -> dict[str, tuple[float, float]]:
    """``{model: (input, output)}`` in USD per 1M tokens, from a toml ``[models."name"]`` table."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        return {name: (float(row["input"]), float(row["output"])) for name, row in data.get("models", {}).items()}
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError, AttributeError) as err:
        raise ConfigError(f"cannot read price table {path}: {err}",
                          hint='expected [models."<name>"] tables with input and output') from err


def cost_usd(model: str, prompt_tokens: int, completion_tokens: int, *,
             prices_path: str | Path | None = None) -> float | None:
    """Cost of one call, or None when the model is not in the price table (never a made-up 0)."""
    prices = load_prices(str(prices_path or PRICES_PATH))
    price = prices.get(model)
    if price is None:  # dated snapshots such as gpt-4o-mini-2024-07-18: longest listed prefix wins
        prefixes = [name for name in prices if model.startswith(name + "-")]
        price = prices[max(prefixes, key=len)] if prefixes else None
    if price is None:
        return None
    return (prompt_tokens * price[0] + completion_tokens * price[1]) / 1_000_000


# ---------------------------------------------------------------- parsing
class InvalidOutput(Exception):
    """A reply that does not fit its schema; ``problems`` are ``"loc: msg"`` lines for the repair prompt."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


_FENCE = re.compile(r"^\s*```[A-Za-z0-9_-]*[ \t]*\n?(.*?)\n?```\s*$", re.DOTALL)


def extract_json_object(text: str) -> dict[str, Any] | None:
    """The JSON object in a reply: the whole text (``` fences stripped) or its first balanced ``{...}``."""
    fenced = _FENCE.match(text)
    body = fenced.group(1) if fenced else text
    try:
        whole = json.loads(body)
        if isinstance(whole, dict):
            return whole
    except json.JSONDecodeError:
        pass
    start = body.find("{")
    while start >= 0:
        end = _balanced_end(body, start)
        if end is not None:
            try:
                found = json.loads(body[start:end])
                if isinstance(found, dict):
                    return found
            except json.JSONDecodeError:
                pass
        start = body.find("{", start + 1)
    return None


def _balanced_end(text: str, start: int) -> int | None:
    depth, in_string, escaped = 0, False, False
    for i in range(start, len(text)):
        ch = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return i + 1
    return None


def describe_errors(err: ValidationError) -> list[str]:
    return [f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in err.errors()]


def parse_output(schema: type[BaseModel], content: str) -> BaseModel:
    """Validate ``content`` against ``schema``; raise InvalidOutput naming each wrong field."""
    try:
        return schema.model_validate_json(content)
    except ValidationError as err:
        if not any(e["type"] == "json_invalid" for e in err.errors()):
            raise InvalidOutput(describe_errors(err)) from err
    found = extract_json_object(content)
    if found is None:
        raise InvalidOutput([f"(reply): not a JSON object matching {schema.__name__}"])
    try:
        return schema.model_validate(found)
    except ValidationError as err:
        raise InvalidOutput(describe_errors(err)) from err


# ---------------------------------------------------------------- streaming extraction
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


class AnswerFieldStreamer:
    """Pull the string value of the top-level ``"answer"`` key out of a JSON document fed in pieces.

    ``feed(piece)`` returns the newly decoded characters of that value (often ""). Text before the
    first ``{`` (a ``` fence) is skipped; nested ``"answer"`` keys are ignored; escapes, including
    ``\\uXXXX`` surrogate pairs split across pieces, decode exactly as ``json.loads`` would.
    """

    def __init__(self, key: str = "answer") -> None:
        self.key = key
        self.done = False
        self._started = False
        self._depth = 0
        self._expect_key = False
        self._last_key: str | None = None
        self._in_string = False
        self._role: Literal["key", "answer", "other"] = "other"
        self._key_chars: list[str] = []
        self._escape: str | None = None  # None, "" right after a backslash, or "u" + hex digits so far
        self._high: int | None = None  # a high surrogate waiting for its low half

    def feed(self, piece: str) -> str:
        out: list[str] = []
        for ch in piece:
            if self.done:
                break
            if not self._started:
                if ch == "{":
                    self._started, self._depth, self._expect_key = True, 1, True
            elif self._in_string:
                self._string_char(ch, out)
            elif ch == '"':
                self._in_string = True
                if self._depth == 1 and self._expect_key:
                    self._role, self._key_chars = "key", []
                elif self._depth == 1 and self._last_key == self.key:
                    self._role = "answer"
                else:
                    self._role = "other"
            elif ch in "{[":
                self._depth += 1
            elif ch in "}]":
                self._depth -= 1
                if self._depth <= 0:
                    self.done = True
            elif self._depth == 1 and ch == ":":
                self._expect_key = False
            elif self._depth == 1 and ch == ",":
                self._expect_key, self._last_key = True, None
        return "".join(out)

    def _emit(self, text: str, out: list[str]) -> None:
        if self._role == "answer":
            out.append(text)
        elif self._role == "key":
            self._key_chars.append(text)

    def _unit(self, code: int, out: list[str]) -> None:
        if self._high is not None:
            high, self._high = self._high, None
            if 0xDC00 <= code <= 0xDFFF:
                self._emit(chr(0x10000 + ((high - 0xD800) << 10) + (code - 0xDC00)), out)
                return
            self._emit(chr(high), out)
        if 0xD800 <= code <= 0xDBFF:
            self._high = code
        else:
            self._emit(chr(code), out)

    def _flush_high(self, out: list[str]) -> None:
        if self._high is not None:
            self._emit(chr(self._high), out)
            self._high = None

    def _string_char(self, ch: str, out: list[str]) -> None:
        if self._escape is not None:
            if self._escape == "" and ch != "u":
                self._flush_high(out)
                self._emit(_ESCAPES.get(ch, ch), out)
                self._escape = None
            elif self._escape == "":
                self._escape = "u"
            else:
                self._escape += ch
                if len(self._escape) == 5:
                    code, self._escape = int(self._escape[1:], 16), None
                    self._unit(code, out)
            return
        if ch == "\\":
            self._escape = ""
            return
        self._flush_high(out)
        if ch == '"':
            self._in_string = False
            if self._role == "key":
                self._last_key = "".join(self._key_chars)
            elif self._role == "answer":
                self.done = True
            return
        self._emit(ch, out)


# ---------------------------------------------------------------- the backend
@dataclass
class _Reply:
    content: str
    finish_reason: str | None
    refusal: str | None
    usage: Usage


def _rejects_format(exc: BaseException | None, mode: Mode) -> tuple[bool, bool]:
    """(try the next format, remember that for later calls). A 400 that names the format is remembered;
    an unexplained 400 in json_schema mode is retried once in JSON mode for this call only."""
    if not isinstance(exc, openai.APIStatusError) or exc.status_code not in (400, 422):
        return False, False
    if is_context_length_error(exc):
        return False, False
    said = f"{exc.param or ''} {exc.code or ''} {server_message(exc)}".lower()
    if any(m in said for m in _FORMAT_MARKERS):
        return True, True
    return mode == "json_schema" and exc.status_code == 400, False


def _rejects_stream_options(exc: BaseException | None) -> bool:
    return (isinstance(exc, openai.APIStatusError) and exc.status_code in (400, 422)
            and "stream_options" in f"{exc.param or ''} {server_message(exc)}")


class OpenAIBackend(Backend):
    """Any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, llama.cpp, Ollama, ...)."""

    name = "openai"

    def __init__(self, settings: "Settings", *, sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(settings)
        key = settings.api_key.get_secret_value() if settings.api_key else ""
        self._client = openai.OpenAI(api_key=key or "not-needed", base_url=settings.base_url,
                                     timeout=settings.llm.timeout, max_retries=0)
        self._sleep = sleep
        self._where = settings.base_url or str(self._client.base_url).rstrip("/")
        self.mode: Mode = "json_schema"  # the structured-output mode that last worked
        self._stream_usage = True  # ask for usage in streams until a server rejects stream_options

    # -- public interface
    def generate(self, request: GenerationRequest) -> Generation:
        messages = list(request.prompt.messages)
        return self._finish(request, messages, self._complete(request, messages))

    def stream(self, request: GenerationRequest) -> Iterator[str | Generation]:
        """Yield the answer text as it arrives, then the validated Generation (only the opening is retried)."""
        messages = list(request.prompt.messages)
        started = time.perf_counter()
        chunks = self._open(request, messages, stream=True)
        schema = request.schema
        streamer = AnswerFieldStreamer() if schema is not None and "answer" in schema.model_fields else None
        parts: list[str] = []
        refusal: list[str] = []
        finish: str | None = None
        sdk_usage = None
        try:
            for chunk in chunks:
                if not isinstance(chunk, ChatCompletionChunk):
                    raise BackendError(f"the endpoint at {self._where} streamed something that is not a chat completion chunk",
                                       hint="check OPENAI_BASE_URL: it must be an OpenAI-compatible /v1 URL")
                if chunk.usage is not None:
                    sdk_usage = chunk.usage
                for choice in chunk.choices[:1]:
                    text = choice.delta.content
                    if text:
                        parts.append(text)
                        delta = text if schema is None else streamer.feed(text) if streamer else ""
                        if delta:
                            yield delta
                    if getattr(choice.delta, "refusal", None):
                        refusal.append(choice.delta.refusal)
                    if choice.finish_reason:
                        finish = choice.finish_reason
        except openai.APIConnectionError as err:
            raise BackendError(STREAM_CUT, retryable=True, hint="try again") from err
        except openai.APIError as err:
            raise BackendError(f"the endpoint reported an error mid-stream: {server_message(err)}",
                               retryable=True) from err
        except ValueError as err:  # an SSE data line that is not JSON
            raise BackendError(f"the endpoint at {self._where} streamed malformed data: {' '.join(str(err).split())[:80]}",
                               retryable=True) from err
        finally:
            chunks.close()
        if finish is None:
            raise BackendError(STREAM_CUT, retryable=True, hint="try again")
        content = "".join(parts)
        usage = self._usage(messages, content, sdk_usage, (time.perf_counter() - started) * 1000)
        yield self._finish(request, messages, _Reply(content, finish, "".join(refusal) or None, usage))

    def close(self) -> None:
        self._client.close()

    # -- one call
    def _max_tokens(self, request: GenerationRequest) -> int:
        return request.max_tokens or self.settings.llm.max_output_tokens

    def _params(self, request: GenerationRequest, messages: list[dict[str, str]], mode: Mode) -> dict[str, Any]:
        params: dict[str, Any] = {"model": self.model, "messages": messages,
                                  "temperature": self.settings.llm.temperature if request.temperature is None
                                  else request.temperature, "max_tokens": self._max_tokens(request)}
        if request.schema is not None and mode == "json_schema":
            params["response_format"] = {"type": "json_schema", "json_schema": {
                "name": request.schema.__name__, "schema": _json_schema(request.schema), "strict": False}}
        elif request.schema is not None and mode == "json_object":
            params["response_format"] = {"type": "json_object"}
        return params

    def _open(self, request: GenerationRequest, messages: list[dict[str, str]], *, stream: bool) -> Any:
        """Send one call (with retries), stepping down the response_format ladder if the server rejects it."""
        mode: Mode = self.mode if request.schema is not None else "text"
        while True:
            params = self._params(request, messages, mode)
            if stream:
                params["stream"] = True
                if self._stream_usage:
                    params["stream_options"] = {"include_usage": True}
            try:
                return call_with_retries(
                    lambda: self._client.chat.completions.create(**params),
                    max_attempts=self.settings.llm.max_attempts, max_seconds=self.settings.llm.max_retry_seconds,
                    max_retry_after=self.settings.llm.max_retry_after, sleep=self._sleep,
                    model=self.model, base_url=self._where,
                )
            except BackendError as err:
                if stream and self._stream_usage and _rejects_stream_options(err.__cause__):
                    self._stream_usage = False
                    continue
                step, remember = _rejects_format(err.__cause__, mode) if mode != "text" else (False, False)
                if step:
                    mode = MODES[MODES.index(mode) + 1]
                    if remember and MODES.index(self.mode) < MODES.index(mode):
                        self.mode = mode
                    continue
                raise

    def _complete(self, request: GenerationRequest, messages: list[dict[str, str]]) -> _Reply:
        started = time.perf_counter()
        response = self._open(request, messages, stream=False)
        latency_ms = (time.perf_counter() - started) * 1000
        if not isinstance(response, ChatCompletion) or not isinstance(getattr(response, "choices", None), list):
            shown = " ".join(str(response).split())[:80] if isinstance(response, str) else type(response).__name__
            raise BackendError(f"the endpoint at {self._where} answered 200 with something that is not a chat completion "
                               f"({shown!r})", retryable=False, hint="check OPENAI_BASE_URL: it must be an OpenAI-compatible /v1 URL")
        if not response.choices:
            raise BackendError("the endpoint returned no choices", retryable=True)
        choice = response.choices[0]
        content = choice.message.content or ""
        usage = self._usage(messages, content, response.usage, latency_ms)
        return _Reply(content, choice.finish_reason, getattr(choice.message, "refusal", None), usage)

    def _usage(self, messages: list[dict[str, str]], content: str, sdk_usage: Any, latency_ms: float) -> Usage:
        if sdk_usage is not None and sdk_usage.prompt_tokens is not None:
            prompt, completion = sdk_usage.prompt_tokens, sdk_usage.completion_tokens or 0
        else:  # servers that omit usage: count locally (chat framing ~4 tokens a message)
            enc = self.settings.encoding
            prompt = sum(count_tokens(str(m.get("content", "")), enc) + 4 for m in messages) + 3
            completion = count_tokens(content, enc)
        return Usage(prompt_tokens=prompt, completion_tokens=completion, calls=1, latency_ms=latency_ms,
                     cost_usd=cost_usd(self.model, prompt, completion, prices_path=self.settings.prices))

    # -- turning a reply into a Generation
    def _check(self, request: GenerationRequest, reply: _Reply) -> Generation | None:
        """Raise for replies that must not be parsed; a refusal becomes a refused AnswerDraft."""
        if reply.finish_reason == "length":
            raise BackendError(f"the model's output was cut off at {self._max_tokens(request)} tokens "
                               "(finish_reason=length)", hint="raise --max-tokens (llm.max_output_tokens)")
        if reply.finish_reason == "content_filter":
            raise BackendError("the endpoint's content filter stopped the model's output "
                               "(finish_reason=content_filter)")
        if reply.refusal:
            reason = " ".join(reply.refusal.split())
            if request.schema is not None and issubclass(request.schema, AnswerDraft):
                draft = AnswerDraft(answer=f"{CANNOT_ANSWER} (model refused).", refused=True,
                                    refusal_reason=f"{MODEL_REFUSED}: {reason}", citations=[], confidence=0.0)
                return Generation(output=draft, usage=reply.usage, raw=reply.refusal)
            raise BackendError(f"the model refused: {reason}")
        return None

    def _finish(self, request: GenerationRequest, messages: list[dict[str, str]], reply: _Reply) -> Generation:
        stopped = self._check(request, reply)
        if stopped is not None:
            return stopped
        if request.schema is None:
            return Generation(output=reply.content.strip(), usage=reply.usage, raw=reply.content)
        try:
            return Generation(output=parse_output(request.schema, reply.content), usage=reply.usage, raw=reply.content)
        except InvalidOutput as first:
            problems = first.problems
        # One repair: show the model its reply and exactly which fields were wrong.
        name = request.schema.__name__
        repair = render_prompt("repair", errors=problems[:_MAX_REPAIR_ERRORS], schema_name=name).messages
        second = self._complete(request, messages + [{"role": "assistant", "content": reply.content}] + repair)
        second.usage = reply.usage.add(second.usage)
        stopped = self._check(request, second)
        if stopped is not None:
            return stopped
        try:
            output = parse_output(request.schema, second.content)
        except InvalidOutput as again:
            raise ValidationFailed(
                f"the model's reply did not fit {name} even after a repair retry: {'; '.join(again.problems[:3])}",
                hint=f"{len(again.problems)} problem(s); try another model or --backend offline",
                schema=name, problems=again.problems,
            ) from None
        return Generation(output=output, usage=second.usage, raw=second.content)
