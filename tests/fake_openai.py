"""A real local HTTP server speaking the OpenAI chat-completions wire protocol, scripted per request.

Tests point the real ``openai`` SDK at ``fake.base_url`` and script what each request gets back:

    fake_openai.script([rate_limited(retry_after="0"), reply('{"answer": "hi"}')])

Steps: ``reply`` (JSON, or SSE when the request asks ``"stream": true``), ``stream`` (SSE, optionally
cut off mid-way), ``status``/``error`` (any status, body and headers), ``hangup`` (close without
answering), ``Call`` (compute the step from the request body) and ``forever`` (repeat the last step).
Every request is recorded in ``fake.requests`` (body + headers). A request beyond the script gets a
418 naming the problem, so a test that sends too many requests fails loudly.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


# ---------------------------------------------------------------- steps
@dataclass
class Reply:
    """A completion: plain ChatCompletion JSON, or chunked SSE when the request asked to stream."""

    content: str | None = ""
    finish_reason: str | None = "stop"
    refusal: str | None = None
    usage: dict[str, int] | None | bool = True  # True: computed from lengths; None/False: omitted
    chunk_size: int = 4  # characters per SSE content delta
    cut_after: int | None = None  # SSE only: drop the connection after this many content deltas
    delay: float | None = None


@dataclass
class Status:
    """Any HTTP status with a body (dict -> JSON, str -> text) and headers."""

    status: int
    body: dict[str, Any] | str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float | None = None


@dataclass
class Hangup:
    """Close the connection without sending a response (a connection error for the client)."""

    delay: float | None = None


@dataclass
class Call:
    """Compute the step from the request body (a dict)."""

    fn: Callable[[dict[str, Any]], "Step"]


@dataclass
class Forever:
    """Serve ``step`` for this and every later request; must be the last step."""

    step: "Step"


Step = Reply | Status | Hangup | Call | Forever


def reply(content: str | None = "", **kw: Any) -> Reply:
    return Reply(content=content, **kw)


def json_reply(obj: Any, **kw: Any) -> Reply:
    return Reply(content=json.dumps(obj), **kw)


def stream(content: str, *, chunk_size: int = 4, cut_after: int | None = None, **kw: Any) -> Reply:
    """An SSE reply (the request must ask to stream); ``cut_after`` drops the connection mid-way."""
    return Reply(content=content, chunk_size=chunk_size, cut_after=cut_after, **kw)


def status(code: int, body: dict[str, Any] | str | None = None, headers: dict[str, str] | None = None,
           **kw: Any) -> Status:
    return Status(code, body, headers or {}, **kw)


def error(code: int, message: str, *, type: str = "invalid_request_error", code_name: str | None = None,
          param: str | None = None, headers: dict[str, str] | None = None, **kw: Any) -> Status:
    """An OpenAI-style error body: {"error": {"message", "type", "param", "code"}}."""
    body = {"error": {"message": message, "type": type, "param": param, "code": code_name}}
    return Status(code, body, headers or {}, **kw)


def hangup(**kw: Any) -> Hangup:
    return Hangup(**kw)


def forever(step: Step) -> Forever:
    return Forever(step)


def rate_limited(*, retry_after: str | None = None, retry_after_ms: str | None = None) -> Status:
    headers = {}
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    if retry_after_ms is not None:
        headers["retry-after-ms"] = retry_after_ms
    return error(429, "Rate limit reached for requests", type="requests", code_name="rate_limit_exceeded",
                 headers=headers)


def server_error(code: int = 500) -> Status:
    return error(code, "The server had an error while processing your request.", type="server_error")


def unauthorized() -> Status:
    return error(401, "Incorrect API key provided: test. You can find your API key at "
                      "https://platform.openai.com/account/api-keys.", code_name="invalid_api_key")


def model_not_found(model: str) -> Status:
    return error(404, f"The model `{model}` does not exist or you do not have access to it.",
                 code_name="model_not_found")


def context_length_exceeded() -> Status:
    return error(400, "This model's maximum context length is 128000 tokens. However, your messages resulted "
                      "in 131000 tokens. Please reduce the length of the messages.",
                 code_name="context_length_exceeded", param="messages")


def rejects_response_format(kind: str = "json_schema") -> Status:
    return error(400, f"Invalid parameter: 'response_format' of type '{kind}' is not supported with this model.",
                 param="response_format")


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up (cut streams, closed SDK clients) are part of the script, not failures.
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


# ---------------------------------------------------------------- recording
@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages", []))

    @property
    def response_format(self) -> str | None:
        fmt = self.body.get("response_format")
        return fmt.get("type") if isinstance(fmt, dict) else None


class FakeOpenAI:
    """The server's state: its address, the script, what it received."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.delay: float = 0.0  # default per-response delay (seconds), e.g. for benchmarks
        self._steps: list[Step] = []
        self._lock = threading.Lock()
        self._server = _QuietServer(("127.0.0.1", 0), _make_handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="fake-openai", daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def script(self, steps: list[Step]) -> None:
        """Replace the script; each chat-completions request takes the next step."""
        for i, step in enumerate(steps):
            if isinstance(step, Forever) and i != len(steps) - 1:
                raise ValueError("forever(...) must be the last step")
        with self._lock:
            self._steps = list(steps)

    def start(self) -> "FakeOpenAI":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _record_and_next(self, request: RecordedRequest) -> Step | None:
        with self._lock:
            self.requests.append(request)
            if not self._steps:
                return None
            head = self._steps[0]
            if isinstance(head, Forever):
                return head.step
            return self._steps.pop(0)


# ---------------------------------------------------------------- wire protocol
def _usage(body: dict[str, Any], content: str | None, given: dict[str, int] | None | bool) -> dict[str, int] | None:
    if given is None or given is False:
        return None
    if given is True:
        prompt = sum(len(str(m.get("content", ""))) for m in body.get("messages", [])) // 4 + 1
        given = {"prompt_tokens": prompt, "completion_tokens": len(content or "") // 4 + 1}
    return {**given, "total_tokens": given["prompt_tokens"] + given["completion_tokens"]}


def completion_json(body: dict[str, Any], step: Reply, n: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": f"chatcmpl-fake-{n}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "unknown"),
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": step.content, "refusal": step.refusal},
            "logprobs": None,
            "finish_reason": step.finish_reason,
        }],
    }
    usage = _usage(body, step.content, step.usage)
    if usage is not None:
        out["usage"] = usage
    return out


def chunk_events(body: dict[str, Any], step: Reply, n: int) -> Iterator[dict[str, Any]]:
    """The chat.completion.chunk objects for ``step``: role, content deltas, finish, optional usage."""
    base = {"id": f"chatcmpl-fake-{n}", "object": "chat.completion.chunk", "created": int(time.time()),
            "model": body.get("model", "unknown")}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}

    yield chunk({"role": "assistant", "content": ""})
    text, size = step.content or "", max(1, step.chunk_size)
    for i in range(0, len(text), size):
        yield chunk({"content": text[i:i + size]})
    if step.refusal:
        for i in range(0, len(step.refusal), size):
            yield chunk({"refusal": step.refusal[i:i + size]})
    yield chunk({}, step.finish_reason)
    if (body.get("stream_options") or {}).get("include_usage"):
        usage = _usage(body, step.content, step.usage)
        if usage is not None:
            yield {**base, "choices": [], "usage": usage}


def _make_handler(fake: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        disable_nagle_algorithm = True  # otherwise every response waits ~40 ms for a delayed ACK
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            return None

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError:
                body = {"_raw": raw.decode("utf-8", "replace")}
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._send_json(404, {"error": {"message": f"fake_openai: no route {self.path}",
                                                "type": "invalid_request_error", "param": None, "code": None}})
                return
            request = RecordedRequest(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            step = fake._record_and_next(request)
            n = len(fake.requests)
            while isinstance(step, Call):
                step = step.fn(body)
                if isinstance(step, Forever):
                    step = step.step
            if step is None:
                self._send_json(418, {"error": {"message": f"fake_openai: request {n} is beyond the script",
                                                "type": "test_error", "param": None, "code": None}})
                return
            delay = step.delay if step.delay is not None else fake.delay
            if delay:
                time.sleep(delay)
            if isinstance(step, Hangup):
                self._hang_up()
            elif isinstance(step, Status):
                self._send_status(step)
            elif body.get("stream"):
                self._send_sse(body, step, n)
            else:
                self._send_json(200, completion_json(body, step, n))

        def do_GET(self) -> None:
            self._send_json(404, {"error": {"message": "fake_openai: only POST /v1/chat/completions",
                                            "type": "invalid_request_error", "param": None, "code": None}})

        def _send_json(self, code: int, obj: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _send_status(self, step: Status) -> None:
            if isinstance(step.body, str) or step.body is None:
                data = (step.body or "").encode()
                self.send_response(step.status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                for k, v in step.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)
            else:
                self._send_json(step.status, step.body, step.headers)

        def _send_sse(self, body: dict[str, Any], step: Reply, n: int) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            deltas = 0
            for event in chunk_events(body, step, n):
                if step.cut_after is not None and event["choices"] and "content" in event["choices"][0]["delta"]:
                    if event["choices"][0]["delta"]["content"]:
                        if deltas >= step.cut_after:
                            self.wfile.flush()
                            self._hang_up()  # no terminating chunk, no [DONE]
                            return
                        deltas += 1
                self._write_chunk(f"data: {json.dumps(event)}\n\n".encode())
            self._write_chunk(b"data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

        def _write_chunk(self, data: bytes) -> None:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def _hang_up(self) -> None:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    return Handler


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI().start()
    try:
        yield fake
    finally:
        fake.stop()
