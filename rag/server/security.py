"""Who may call the service, from where and how often: API keys with roles, the bind rule, the Host
and Origin rules, per-key and per-address token buckets.

The policies are pure functions (``bind_refusal``, ``take_token``, ``host_allowed``,
``mutation_refusal``, ``parse_keys``) so they are tested without a server; ``guard.GuardMiddleware``
applies them to every request before the app sees it, and raises ``ApiError`` (401, 403, 421, 429).
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


ROLES = ("read", "write", "admin")
LOCAL_OWNER = "local"  # the one caller of a keyless (localhost-only) server


@dataclass(frozen=True)
class ApiKey:
    name: str
    token: str
    role: str


@dataclass(frozen=True)
class Principal:
    """An accepted caller: ``owner`` names what it creates (sessions, uploads, jobs); ``identity`` is its rate-limit bucket."""

    owner: str
    role: str
    identity: str

    def can(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


def parse_keys(raw: object) -> list[ApiKey]:
    """``[name=]token[:role]`` entries, comma-separated; role read, write (default) or admin.

    A ConfigError names a bad entry by position (never by its token)."""
    from ..errors import ConfigError

    text = raw.get_secret_value() if hasattr(raw, "get_secret_value") else str(raw or "")
    keys: list[ApiKey] = []
    for i, entry in enumerate((e.strip() for e in text.split(",")), 1):
        if not entry:
            continue
        name, eq, rest = entry.partition("=")
        if not eq:
            name, rest = "", entry
        token, colon, role = rest.rpartition(":") if rest.rsplit(":", 1)[-1] in ROLES else (rest, "", "write")
        token, role, name = token.strip(), (role or "write").strip(), name.strip()
        if not token or (eq and not name):
            raise ConfigError(f"RAG_API_KEYS entry {i} is malformed", hint="use [name=]token[:read|write|admin]")
        keys.append(ApiKey(name=name or "key-" + hashlib.sha256(token.encode()).hexdigest()[:8], token=token, role=role))
    names = [k.name for k in keys]
    if len(set(names)) != len(names):
        raise ConfigError("RAG_API_KEYS has two keys with the same name", hint="names must be unique")
    return keys


def is_loopback(host: str) -> bool:
    if host.lower() in LOCAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind_refusal(host: str, *, keys: list, insecure: bool) -> str | None:
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

    def _bucket(self, identity: str, now: float) -> Bucket:
        bucket = self._buckets.get(identity)
        if bucket is None:
            if len(self._buckets) > 10_000:  # forget idle identities; a full bucket is the default anyway
                idle = now - 60.0
                self._buckets = {k: b for k, b in self._buckets.items() if b.updated > idle}
            bucket = self._buckets[identity] = Bucket(tokens=float(self.per_minute), updated=now)
        return bucket

    def spend(self, identity: str) -> float:
        """Take one token; 0 if there was one, else the seconds until there is."""
        now = self.clock()
        with self._lock:
            return take_token(self._bucket(identity, now), now, per_minute=self.per_minute)

    def exhausted(self, identity: str) -> bool:
        """True when ``identity`` has no token left (without spending one)."""
        now = self.clock()
        with self._lock:
            bucket = self._bucket(identity, now)
            rate = self.per_minute / 60.0
            return min(float(self.per_minute), bucket.tokens + (now - bucket.updated) * rate) < 1.0

    def refusal(self, identity: str, *, what: str = "requests") -> ApiError:
        now = self.clock()
        with self._lock:
            bucket = self._bucket(identity, now)
            rate = self.per_minute / 60.0
            have = min(float(self.per_minute), bucket.tokens + (now - bucket.updated) * rate)
        seconds = max(1, math.ceil((1.0 - have) / rate)) if have < 1 else 1
        return ApiError(429, "rate_limited", f"too many {what}: the limit is {self.per_minute} per minute; "
                        f"retry in {seconds} s", headers={"Retry-After": str(seconds)})

    def check(self, identity: str) -> None:
        wait = self.spend(identity)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise ApiError(429, "rate_limited", f"rate limit of {self.per_minute} requests per minute exceeded; "
                           f"retry in {seconds} s", headers={"Retry-After": str(seconds)})


# ------------------------------------------------------------------ auth
class Auth:
    """Bearer-token check. With no keys configured every caller is one local writer (localhost unless --insecure)."""

    def __init__(self, keys: list[ApiKey]) -> None:
        self.keys = keys

    @property
    def required(self) -> bool:
        return bool(self.keys)

    def identify(self, token: str | None, client: str) -> Principal:
        """The accepted caller; ApiError 401 otherwise."""
        if not self.keys:
            return Principal(owner=LOCAL_OWNER, role="write", identity=f"addr:{client}")
        if not token:
            raise ApiError(401, "unauthorized", "missing API key: send 'Authorization: Bearer <key>'",
                           headers={"WWW-Authenticate": "Bearer"})
        given = token.encode()
        # Compare against every key so the time taken does not reveal which one nearly matched.
        found: ApiKey | None = None
        for key in self.keys:
            if hmac.compare_digest(given, key.token.encode()):
                found = key
        if found is None:
            raise ApiError(401, "unauthorized", "invalid API key", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return Principal(owner=found.name, role=found.role, identity=f"key:{found.name}")


# ------------------------------------------------------------------ Host and Origin
def _host_name(host: str) -> str:
    """``host[:port]`` -> host, lower case, IPv6 brackets kept off."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def local_names(bound_host: str | None) -> set[str]:
    """Host names a server bound to ``bound_host`` answers to without configuration."""
    names = {"localhost", "127.0.0.1", "::1", "ip6-localhost"}
    if bound_host:
        bound = _host_name(bound_host)
        if bound in ("0.0.0.0", "::", ""):
            # Every address of this machine: its names and interface addresses.
            import socket

            for name in {socket.gethostname(), socket.getfqdn()}:
                names.add(name.lower())
                try:
                    names.update(info[4][0].lower() for info in socket.getaddrinfo(name, None))
                except OSError:
                    pass
        else:
            names.add(bound)
    return names


def host_allowed(host_header: str | None, *, names: set[str], extra: list[str]) -> bool:
    """A DNS-rebinding page reaches us under its own name: only our names (and configured ones) are served."""
    if "*" in extra:
        return True
    if not host_header:
        return False
    host = host_header.strip().lower()
    return _host_name(host) in names or host in extra or _host_name(host) in {_host_name(e) for e in extra if ":" not in e}


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_SIMPLE_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data", "text/plain", "")


def mutation_refusal(method: str, headers: dict[str, str], *, scheme: str, allowed_origins: list[str]) -> str | None:
    """Why a state-changing request is refused, or None.

    Browsers send ``Origin`` with every cross-origin POST/DELETE, even ``mode: "no-cors"``: a
    foreign origin is refused. And a "simple" request (a form content type, no Authorization or
    custom header), the only kind a page on another origin can send without a CORS preflight, never
    changes state: such clients must send JSON, an Authorization header or ``X-Requested-With``."""
    if method in SAFE_METHODS:
        return None
    origin = headers.get("origin")
    own = f"{scheme}://{headers.get('host', '')}".lower()
    if origin is not None and origin.lower() != own and origin.lower() not in allowed_origins:
        return f"requests from origin {origin!r} may not change anything here (allowed: this server's own pages)"
    if origin is None and headers.get("sec-fetch-site") in ("cross-site", "same-site"):
        return "cross-site requests may not change anything here"
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    # Only POST can be "simple"; PUT, PATCH and DELETE always need a preflight that we never grant.
    if method == "POST" and content_type in _SIMPLE_TYPES and "authorization" not in headers and "x-requested-with" not in headers:
        return ("a form-style request (no JSON body, no Authorization or X-Requested-With header) may not change "
                "anything: send JSON, or add the header X-Requested-With: rag")
    return None
