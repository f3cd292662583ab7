"""Prometheus metrics in the text exposition format, written by hand (no extra dependency).

Requests by route template and status, a latency histogram per route, and what answers cost:
tokens, response-cache hits and refusals. Route labels are templates (``/v1/documents/{doc_id}``),
never raw paths, so label cardinality stays bounded.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

from ..types import Answer, Usage

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}" if labels else ""


def _num(x: float) -> str:
    return repr(float(x)) if x != int(x) else str(int(x))


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, str], int] = defaultdict(int)
        self.latency: dict[str, list[int]] = {}
        self.latency_sum: dict[str, float] = defaultdict(float)
        self.latency_count: dict[str, int] = defaultdict(int)
        self.tokens: dict[str, int] = {"prompt": 0, "completion": 0}
        self.answers = 0
        self.refusals = 0
        self.cache_hits = 0
        self.jobs: dict[str, int] = defaultdict(int)

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(route, method, str(status))] += 1
            counts = self.latency.setdefault(route, [0] * len(BUCKETS))
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    counts[i] += 1
            self.latency_sum[route] += seconds
            self.latency_count[route] += 1

    def observe_usage(self, usage: Usage) -> None:
        with self._lock:
            self.tokens["prompt"] += usage.prompt_tokens
            self.tokens["completion"] += usage.completion_tokens
            self.cache_hits += int(usage.cached)

    def observe_answer(self, answer: Answer) -> None:
        self.observe_usage(answer.usage)
        with self._lock:
            self.answers += 1
            self.refusals += int(answer.refused)

    def observe_job(self, status: str) -> None:
        with self._lock:
            self.jobs[status] += 1

    # ---------------------------------------------------------- across workers
    def snapshot(self) -> dict[str, Any]:
        """Every counter as plain JSON: what a worker publishes for the others to add up."""
        with self._lock:
            return {
                "requests": [[r, m, s, n] for (r, m, s), n in self.requests.items()],
                "latency": {r: list(c) for r, c in self.latency.items()},
                "latency_sum": dict(self.latency_sum), "latency_count": dict(self.latency_count),
                "tokens": dict(self.tokens), "answers": self.answers, "refusals": self.refusals,
                "cache_hits": self.cache_hits, "jobs": dict(self.jobs),
            }

    def absorb(self, snap: dict[str, Any]) -> None:
        """Add another worker's snapshot to these counters."""
        with self._lock:
            for route, method, status, n in snap.get("requests", []):
                self.requests[(route, method, status)] += int(n)
            for route, counts in snap.get("latency", {}).items():
                mine = self.latency.setdefault(route, [0] * len(BUCKETS))
                for i, n in enumerate(counts[:len(BUCKETS)]):
                    mine[i] += int(n)
            for route, value in snap.get("latency_sum", {}).items():
                self.latency_sum[route] += float(value)
            for route, n in snap.get("latency_count", {}).items():
                self.latency_count[route] += int(n)
            for kind, n in snap.get("tokens", {}).items():
                self.tokens[kind] = self.tokens.get(kind, 0) + int(n)
            self.answers += int(snap.get("answers", 0))
            self.refusals += int(snap.get("refusals", 0))
            self.cache_hits += int(snap.get("cache_hits", 0))
            for status, n in snap.get("jobs", {}).items():
                self.jobs[status] += int(n)

    def render(self, *, documents: int | None = None) -> str:
        out: list[str] = []

        def family(name: str, kind: str, help: str) -> None:
            out.extend([f"# HELP {name} {help}", f"# TYPE {name} {kind}"])

        with self._lock:
            family("rag_http_requests_total", "counter", "HTTP requests by route template, method and status.")
            for (route, method, status), n in sorted(self.requests.items()):
                out.append(f"rag_http_requests_total{_labels(route=route, method=method, status=status)} {n}")
            family("rag_http_request_duration_seconds", "histogram", "Time to the last byte of the response.")
            for route, counts in sorted(self.latency.items()):
                for bound, n in zip(BUCKETS, counts):
                    out.append(f"rag_http_request_duration_seconds_bucket{_labels(route=route, le=_num(bound))} {n}")
                out.append(f"rag_http_request_duration_seconds_bucket{_labels(route=route, le='+Inf')} {self.latency_count[route]}")
                out.append(f"rag_http_request_duration_seconds_sum{_labels(route=route)} {self.latency_sum[route]:.6f}")
                out.append(f"rag_http_request_duration_seconds_count{_labels(route=route)} {self.latency_count[route]}")
            family("rag_tokens_total", "counter", "Model tokens used by answers and briefings.")
            for kind, n in self.tokens.items():
                out.append(f"rag_tokens_total{_labels(kind=kind)} {n}")
            family("rag_cache_hits_total", "counter", "Generations answered from the response cache.")
            out.append(f"rag_cache_hits_total {self.cache_hits}")
            family("rag_answers_total", "counter", "Verified answers returned (ask, chat, chat completions).")
            out.append(f"rag_answers_total {self.answers}")
            family("rag_refusals_total", "counter", "Answers that were refusals (the sources don't hold the answer).")
            out.append(f"rag_refusals_total {self.refusals}")
            family("rag_briefing_jobs_total", "counter", "Briefing jobs that ended, by final status.")
            for status, n in sorted(self.jobs.items()):
                out.append(f"rag_briefing_jobs_total{_labels(status=status)} {n}")
        if documents is not None:
            family("rag_documents", "gauge", "Documents in the index.")
            out.append(f"rag_documents {documents}")
        return "\n".join(out) + "\n"
