"""Retry policy: which failures are retried, how long we wait, and what the user sees when we give up."""

from __future__ import annotations

import email.utils

import httpx2
import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fake_openai import (
    FakeOpenAI, context_length_exceeded, error, fake_openai, forever, hangup, model_not_found,  # noqa: F401
    rate_limited, reply, server_error, unauthorized,
)
from rag.backends.retry import (
    backoff_seconds, call_with_retries, describe_failure, parse_retry_after, random_jitter, should_retry,
)
from rag.errors import BackendError

URL = "http://127.0.0.1:9/v1/chat/completions"


def status_error(code: int, message: str = "boom", *, headers: dict[str, str] | None = None,
                 code_name: str | None = None) -> openai.APIStatusError:
    """A real SDK status error, built the way the SDK builds it from a response."""
    request = httpx2.Request("POST", URL)
    response = httpx2.Response(code, headers=headers or {}, request=request)
    body = {"message": message, "type": "x", "param": None, "code": code_name}
    classes = {400: openai.BadRequestError, 401: openai.AuthenticationError, 403: openai.PermissionDeniedError,
               404: openai.NotFoundError, 409: openai.ConflictError, 422: openai.UnprocessableEntityError,
               429: openai.RateLimitError}
    cls = classes.get(code, openai.InternalServerError if code >= 500 else openai.APIStatusError)
    return cls(f"Error code: {code}", response=response, body=body)


# ---------------------------------------------------------------- should_retry
@pytest.mark.parametrize("code", [408, 409, 429, 500, 502, 503, 504])
def test_retries_transient_statuses(code: int):
    assert should_retry(status_error(code))


@pytest.mark.parametrize("code", [400, 401, 403, 404, 422])
def test_never_retries_client_errors(code: int):
    assert not should_retry(status_error(code))


def test_retries_timeouts_and_connection_errors_only():
    request = httpx2.Request("POST", URL)
    assert should_retry(openai.APITimeoutError(request=request))
    assert should_retry(openai.APIConnectionError(request=request))
    assert should_retry(BackendError("cut", retryable=True))
    assert not should_retry(BackendError("nope"))
    assert not should_retry(ValueError("a bug"))


# ---------------------------------------------------------------- parse_retry_after
@pytest.mark.parametrize(("headers", "expected"), [
    ({"retry-after-ms": "10"}, 0.01),
    ({"Retry-After-Ms": "1500", "Retry-After": "9"}, 1.5),  # ms first
    ({"Retry-After": "2"}, 2.0),
    ({"retry-after": "0.5"}, 0.5),
    ({"retry-after-ms": "0", "Retry-After": "3"}, 3.0),  # a non-positive ms falls through
    ({"Retry-After": "0"}, None),
    ({"Retry-After": "-4"}, None),
    ({"Retry-After": "soon"}, None),
    ({"retry-after-ms": "nan"}, None),
    ({}, None),
    (None, None),
])
def test_parse_retry_after(headers, expected):
    assert parse_retry_after(headers) == expected


def test_parse_retry_after_http_date():
    now = 1_700_000_000.0
    later = email.utils.formatdate(now + 30, usegmt=True)
    earlier = email.utils.formatdate(now - 30, usegmt=True)
    assert parse_retry_after({"Retry-After": later}, now=now) == pytest.approx(30)
    assert parse_retry_after({"Retry-After": earlier}, now=now) is None


def test_parse_retry_after_reads_sdk_headers_case_insensitively():
    assert parse_retry_after(httpx2.Headers({"RETRY-AFTER": "7"})) == 7.0


# ---------------------------------------------------------------- backoff
@pytest.mark.parametrize(("attempt", "seconds"), [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)])
def test_backoff_doubles_up_to_eight_seconds(attempt: int, seconds: float):
    assert backoff_seconds(attempt, 1.0) == seconds
    assert backoff_seconds(attempt, 0.75) == seconds * 0.75


@given(st.integers(0, 60), st.floats(0.75, 1.0, exclude_min=True))
def test_backoff_is_bounded_and_monotone(attempt: int, jitter: float):
    wait = backoff_seconds(attempt, jitter)
    assert 0.375 < wait <= 8.0
    assert backoff_seconds(attempt + 1, jitter) >= wait


def test_jitter_is_in_range():
    assert all(0.75 < random_jitter() <= 1.0 for _ in range(2000))


# ---------------------------------------------------------------- call_with_retries (pure)
class Script:
    """A callable that raises the given exceptions in turn, then returns ``result``."""

    def __init__(self, *failures: BaseException, result: object = "ok", forever: bool = False) -> None:
        self.failures = list(failures)
        self.result = result
        self.forever = forever
        self.calls = 0

    def __call__(self) -> object:
        self.calls += 1
        if self.failures:
            exc = self.failures[0] if self.forever else self.failures.pop(0)
            raise exc
        return self.result


def run(fn, **kw):
    sleeps: list[float] = []
    options = {"max_attempts": 4, "max_seconds": 60.0, "max_retry_after": 60.0} | kw
    return call_with_retries(fn, sleep=sleeps.append, model="gpt-4o-mini", base_url="http://h/v1", **options), sleeps


def test_two_server_errors_then_success_backs_off_twice():
    fn = Script(status_error(500), status_error(503))
    result, sleeps = run(fn)
    assert result == "ok" and fn.calls == 3
    assert len(sleeps) == 2 and 0.375 < sleeps[0] <= 0.5 and 0.75 < sleeps[1] <= 1.0


def test_retry_after_ms_is_honoured():
    fn = Script(status_error(429, headers={"retry-after-ms": "10"}))
    result, sleeps = run(fn)
    assert result == "ok" and sleeps == [0.01]


def test_too_long_retry_after_is_reported_not_slept():
    fn = Script(status_error(429, headers={"Retry-After": "120"}))
    with pytest.raises(BackendError) as info:
        run(fn, max_retry_after=60)
    assert str(info.value).startswith("the server asked to wait 120 s before retrying, more than the 60 s limit")
    assert info.value.retryable and info.value.status == 429 and fn.calls == 1


def test_gives_up_after_max_attempts_with_one_clear_line():
    fn = Script(status_error(500, "The server had an error"), forever=True)
    with pytest.raises(BackendError) as info:
        run(fn, max_attempts=3)
    assert info.value.message == "the model endpoint failed with status 500 after 3 attempts: The server had an error"
    assert info.value.retryable and info.value.status == 500 and fn.calls == 3
    assert "\n" not in str(info.value)


def test_gives_up_when_the_time_budget_would_be_exceeded():
    fn = Script(status_error(502), forever=True)
    with pytest.raises(BackendError) as info:
        run(fn, max_attempts=10, max_seconds=0.3)  # the first backoff (>= 0.375 s) would not fit
    assert "after 1 attempt:" in str(info.value) and fn.calls == 1


def test_connection_errors_are_retried():
    fn = Script(openai.APIConnectionError(request=httpx2.Request("POST", URL)))
    assert run(fn)[0] == "ok" and fn.calls == 2


def test_bugs_are_not_wrapped_or_retried():
    fn = Script(KeyError("oops"))
    with pytest.raises(KeyError):
        run(fn)
    assert fn.calls == 1


@pytest.mark.parametrize(("exc", "message", "hint"), [
    (status_error(401), "the endpoint rejected the API key (401)", "OPENAI_API_KEY"),
    (status_error(403, "project has no access"), "the endpoint refused access (403): project has no access",
     "gpt-4o-mini"),
    (status_error(404), "model 'gpt-4o-mini' not found at http://h/v1 (404)", "--model"),
    (status_error(400, "maximum context length is 8192 tokens", code_name="context_length_exceeded"),
     "prompt is too long for the model's context window (400)", "-k"),
    (status_error(400, "temperature must be <= 2"),
     "the endpoint rejected the request (400): temperature must be <= 2", None),
    (status_error(422, "bad field"), "the endpoint could not process the request (422): bad field", None),
])
def test_client_errors_fail_at_once_with_one_line(exc, message, hint):
    fn = Script(exc)
    with pytest.raises(BackendError) as info:
        run(fn)
    assert info.value.message == message and fn.calls == 1 and not info.value.retryable
    assert info.value.status == exc.status_code
    if hint:
        assert hint in (info.value.hint or "")
    assert info.value.__cause__ is exc


def test_timeout_message():
    err = describe_failure(openai.APITimeoutError(request=httpx2.Request("POST", URL)), base_url="http://h/v1",
                           attempts=2)
    assert err.message == "the request to http://h/v1 timed out after 2 attempts" and err.retryable


# ---------------------------------------------------------------- call_with_retries over the wire
def _client(fake: FakeOpenAI) -> openai.OpenAI:
    return openai.OpenAI(api_key="test", base_url=fake.base_url, max_retries=0, timeout=10)


def _create(client: openai.OpenAI):
    return lambda: client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])


def test_real_sdk_rate_limit_then_success(fake_openai: FakeOpenAI):
    fake_openai.script([rate_limited(retry_after_ms="10"), hangup(), reply("hello")])
    with _client(fake_openai) as client:
        result, sleeps = run(_create(client))
    assert result.choices[0].message.content == "hello"
    assert len(fake_openai.requests) == 3 and sleeps[0] == 0.01


def test_real_sdk_server_error_forever(fake_openai: FakeOpenAI):
    fake_openai.script([forever(server_error())])
    with _client(fake_openai) as client, pytest.raises(BackendError) as info:
        run(_create(client), max_attempts=3)
    assert "status 500 after 3 attempts" in str(info.value)
    assert len(fake_openai.requests) == 3


@pytest.mark.parametrize(("step", "expected"), [
    (unauthorized(), "the endpoint rejected the API key (401)"),
    (model_not_found("gpt-4o-mini"), "model 'gpt-4o-mini' not found at http://h/v1 (404)"),
    (context_length_exceeded(), "prompt is too long for the model's context window (400)"),
    (error(409, "conflict"), None),
])
def test_real_sdk_errors(fake_openai: FakeOpenAI, step, expected):
    fake_openai.script([step, reply("after conflict")])
    with _client(fake_openai) as client:
        if expected is None:  # 409 is retried
            assert run(_create(client))[0].choices[0].message.content == "after conflict"
            assert len(fake_openai.requests) == 2
            return
        with pytest.raises(BackendError) as info:
            run(_create(client))
    assert info.value.message == expected and len(fake_openai.requests) == 1
