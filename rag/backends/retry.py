"""Retry policy for model calls: pure decisions (retry? how long?) plus one tenacity loop.

Mirrors openai-python's own semantics (whose retries we switch off): retry 408, 409, 429, >= 500,
timeouts and connection errors; never other 4xx. Backoff ``min(0.5 * 2**n, 8) s`` times a jitter
in (0.75, 1]; ``retry-after-ms`` then ``Retry-After`` win when positive and within the limit.
Every failure leaves as a one-line ``BackendError``.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Mapping
from typing import TypeVar

import openai
import tenacity

from ..errors import BackendError

T = TypeVar("T")

RETRY_STATUSES = frozenset({408, 409, 429})
INITIAL_DELAY = 0.5
MAX_DELAY = 8.0
_CONTEXT_MARKERS = ("context_length", "context length", "maximum context", "context window", "too many tokens",
                    "prompt is too long", "reduce the length", "context size", "exceed_context")  # last two: llama.cpp


def should_retry(exc: BaseException) -> bool:
    """True when trying the same call again may succeed.

    As openai-python: the server's ``x-should-retry`` header, when it says ``true`` or ``false``,
    overrides the status code."""
    if isinstance(exc, BackendError):
        return exc.retryable
    if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
        return True
    if isinstance(exc, openai.APIStatusError):
        told = _server_says_retry(exc)
        if told is not None:
            return told
        return exc.status_code in RETRY_STATUSES or exc.status_code >= 500
    return False


def _server_says_retry(exc: BaseException) -> bool | None:
    headers = _headers(exc)
    value = headers.get("x-should-retry") if headers is not None else None
    if value is None:
        return None
    value = str(value).strip().lower()
    return True if value == "true" else False if value == "false" else None


def parse_retry_after(headers: Mapping[str, str] | None, *, now: float | None = None) -> float | None:
    """Seconds the server asked us to wait (``retry-after-ms``, then ``Retry-After``); None unless positive."""
    if not headers:
        return None
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    ms = lowered.get("retry-after-ms")
    if ms is not None:
        try:
            seconds = float(ms) / 1000
        except ValueError:
            seconds = None
        if seconds is not None and 0 < seconds < float("inf"):
            return seconds
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    return seconds if 0 < seconds < float("inf") else None


def backoff_seconds(attempt: int, jitter: float) -> float:
    """Wait before retry number ``attempt`` (0 for the first retry), scaled by ``jitter`` in (0.75, 1]."""
    return min(INITIAL_DELAY * 2 ** max(attempt, 0), MAX_DELAY) * jitter


def random_jitter() -> float:
    return 1 - 0.25 * random.random()  # (0.75, 1]


def is_context_length_error(exc: BaseException) -> bool:
    if not isinstance(exc, openai.APIStatusError) or exc.status_code != 400:
        return False
    kind = exc.body.get("type") if isinstance(exc.body, Mapping) else None
    text = f"{exc.code or ''} {kind or ''} {server_message(exc)}".lower()
    return any(marker in text for marker in _CONTEXT_MARKERS)


def server_message(exc: BaseException) -> str:
    """The server's own error message, on one line."""
    message = None
    body = getattr(exc, "body", None)
    if isinstance(body, Mapping):
        message = body.get("message")
    elif isinstance(body, str) and body.strip():
        message = body
    if not isinstance(message, str) or not message.strip():
        message = getattr(exc, "message", None) or str(exc)
    return " ".join(str(message).split())[:300]


def _headers(exc: BaseException) -> Mapping[str, str] | None:
    response = getattr(exc, "response", None)
    return getattr(response, "headers", None)


def describe_failure(exc: BaseException, *, model: str = "", base_url: str | None = None,
                     attempts: int = 1) -> BackendError:
    """The one-line BackendError a user sees for ``exc`` (already retried ``attempts`` times)."""
    if isinstance(exc, BackendError):
        return exc
    where = base_url or "the OpenAI API"
    tries = f" after {attempts} attempt{'s' if attempts != 1 else ''}"
    if isinstance(exc, openai.APITimeoutError):
        return BackendError(f"the request to {where} timed out{tries}", retryable=True,
                            hint="raise llm.timeout (RAG_LLM__TIMEOUT) or try again")
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        detail = f": {' '.join(str(cause).split())}" if cause else ""
        return BackendError(f"could not connect to {where}{tries}{detail}", retryable=True,
                            hint="check OPENAI_BASE_URL and that the server is running")
    if not isinstance(exc, openai.APIStatusError):
        return BackendError(f"the model call failed: {type(exc).__name__}: {exc}")
    code, message = exc.status_code, server_message(exc)
    if code == 401:
        return BackendError("the endpoint rejected the API key (401)", status=code,
                            hint="check OPENAI_API_KEY (or RAG_API_KEY)")
    if code == 403:
        return BackendError(f"the endpoint refused access (403): {message}", status=code,
                            hint="check that the key's project may use model " + repr(model))
    if code == 404:
        return BackendError(f"model {model!r} not found at {where} (404)", status=code,
                            hint="check --model / RAG_MODEL and OPENAI_BASE_URL")
    if code == 400 and is_context_length_error(exc):
        return BackendError("prompt is too long for the model's context window (400)", status=code,
                            hint="lower -k or llm.context_window (RAG_LLM__CONTEXT_WINDOW)")
    if code == 400:
        return BackendError(f"the endpoint rejected the request (400): {message}", status=code)
    if code == 422:
        return BackendError(f"the endpoint could not process the request (422): {message}", status=code)
    if code == 429:
        return BackendError(f"rate limited by {where} (429){tries}: {message}", retryable=True, status=code,
                            hint="wait and try again, or lower llm.requests_per_minute")
    if should_retry(exc):
        return BackendError(f"the model endpoint failed with status {code}{tries}: {message}", retryable=True,
                            status=code)
    return BackendError(f"the model endpoint answered with status {code}: {message}", status=code)


def call_with_retries(fn: Callable[[], T], *, max_attempts: int, max_seconds: float, max_retry_after: float,
                      sleep: Callable[[float], None] = time.sleep, model: str = "",
                      base_url: str | None = None) -> T:
    """``fn()``, retried per ``should_retry``; any failure becomes a one-line BackendError."""
    max_attempts = max(1, max_attempts)

    def wait(state: tenacity.RetryCallState) -> float:
        if state.attempt_number >= max_attempts:
            return 0.0  # giving up anyway; don't report a wait we will never take
        exc = state.outcome.exception() if state.outcome else None
        requested = parse_retry_after(_headers(exc)) if exc is not None else None
        if requested is not None:
            if requested > max_retry_after:
                status = getattr(exc, "status_code", None)
                raise BackendError(
                    f"the server asked to wait {requested:.0f} s before retrying, more than the "
                    f"{max_retry_after:.0f} s limit (status {status})",
                    retryable=True, status=status, hint="try again later or raise llm.max_retry_after",
                ) from exc
            return requested
        return backoff_seconds(state.attempt_number - 1, random_jitter())

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(should_retry),
        wait=wait,
        stop=tenacity.stop_after_attempt(max_attempts) | tenacity.stop_before_delay(max_seconds),
        sleep=sleep,
        reraise=False,
    )
    attempts = 0

    def counted() -> T:
        nonlocal attempts
        attempts += 1
        return fn()

    try:
        return retrying(counted)
    except tenacity.RetryError as err:
        last = err.last_attempt.exception()
        assert last is not None
        if isinstance(last, BackendError):
            raise last
        raise describe_failure(last, model=model, base_url=base_url, attempts=attempts) from last
    except BackendError:
        raise
    except openai.OpenAIError as err:
        raise describe_failure(err, model=model, base_url=base_url, attempts=attempts) from err
