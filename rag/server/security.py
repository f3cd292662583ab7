"""Who may call the service and how often: API keys, the bind rule, a per-key token bucket.

The policies are pure functions (``bind_refusal``, ``take_token``) so they are tested without a
server; ``Guard`` applies them to a request and raises ``ApiError`` (401, 429).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import threading
import time
from dataclasses import dataclass

from .errors import ApiError

LOCAL_HOSTS = {"localhost", "ip6-localhost"}


def parse_keys(raw: str) -> list[str]:
    """Comma-separated bearer tokens; blanks ignored."""
    return [k.strip() for k in raw.split(",") if k.strip()]


def is_loopback(host: str) -> bool:
    if host.lower() in LOCAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind_refusal(host: str, *, keys: list[str], insecure: bool) -> str | None:
    """Why we refuse to listen on ``host``, or None. Without keys only loopback is safe."""
    if keys or insecure or is_loopback(host):
        return None
    return (f"refusing to listen on {host} without API keys: set RAG_API_KEYS=<key>[,<key>...] "
            f"or pass --insecure to expose an unauthenticated service")


# ------------------------------------------------------------------ rate limit
@dataclass
class Bucket:
    tokens: float
    updated: float


def take_token(bucket: Bucket, now: float, *, per_minute: int) -> float:
    """Spend one token from ``bucket`` (refilled at ``per_minute``/60 per second, capacity ``per_minute``).

    Returns 0 when the request may go ahead, else the seconds until a token is available.
    """
    rate = per_minute / 60.0
    bucket.tokens = min(float(per_minute), bucket.tokens + (now - bucket.updated) * rate)
    bucket.updated = now
    if bucket.tokens >= 1.0:
        bucket.tokens -= 1.0
        return 0.0
    return (1.0 - bucket.tokens) / rate


class RateLimiter:
    """Token buckets per identity (an API key's fingerprint, or the client address without keys)."""

    def __init__(self, per_minute: int, *, clock=time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._buckets: dict[str, Bucket] = {}
        self._lock = threading.Lock()

    def check(self, identity: str) -> None:
        now = self.clock()
        with self._lock:
            bucket = self._buckets.get(identity)
            if bucket is None:
                if len(self._buckets) > 10_000:  # forget idle identities; a full bucket is the default anyway
                    idle = now - 60.0
                    self._buckets = {k: b for k, b in self._buckets.items() if b.updated > idle}
                bucket = self._buckets[identity] = Bucket(tokens=float(self.per_minute), updated=now)
            wait = take_token(bucket, now, per_minute=self.per_minute)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise ApiError(429, "rate_limited", f"rate limit of {self.per_minute} requests per minute exceeded; "
                           f"retry in {seconds} s", headers={"Retry-After": str(seconds)})


# ------------------------------------------------------------------ auth
class Auth:
    """Bearer-token check. With no keys configured every caller is accepted (localhost unless --insecure)."""

    def __init__(self, keys: list[str]) -> None:
        self.keys = [k.encode() for k in keys]

    @property
    def required(self) -> bool:
        return bool(self.keys)

    def identify(self, token: str | None, client: str) -> str:
        """The rate-limit identity of an accepted caller; ApiError 401 otherwise."""
        if not self.keys:
            return f"addr:{client}"
        if not token:
            raise ApiError(401, "unauthorized", "missing API key: send 'Authorization: Bearer <key>'",
                           headers={"WWW-Authenticate": "Bearer"})
        given = token.encode()
        # Compare against every key so the time taken does not reveal which one nearly matched.
        ok = False
        for key in self.keys:
            ok |= hmac.compare_digest(given, key)
        if not ok:
            raise ApiError(401, "unauthorized", "invalid API key", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return "key:" + hashlib.sha256(given).hexdigest()[:12]
