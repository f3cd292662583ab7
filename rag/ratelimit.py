"""A shared, thread-safe limit on requests and tokens per minute for batch work (sliding window)."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class RateLimiter:
    def __init__(self, *, requests_per_minute: int = 0, tokens_per_minute: int = 0,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.rpm, self.tpm = requests_per_minute, tokens_per_minute
        self.clock, self.sleep = clock, sleep
        self.events: deque[tuple[float, int]] = deque()
        self.lock = threading.Lock()

    def wait_time(self, tokens: int, now: float) -> float:
        """Seconds until a request of ``tokens`` fits in the last minute's window (0 = now)."""
        while self.events and now - self.events[0][0] >= 60:
            self.events.popleft()
        waits = [0.0]
        if self.rpm and len(self.events) >= self.rpm:
            waits.append(60 - (now - self.events[len(self.events) - self.rpm][0]))
        if self.tpm:
            used = sum(t for _, t in self.events)
            for stamp, t in self.events:
                if used + tokens <= self.tpm:
                    break
                used -= t
                waits.append(60 - (now - stamp))
        return max(waits)

    def acquire(self, tokens: int = 0) -> None:
        if not self.rpm and not self.tpm:
            return
        tokens = min(tokens, self.tpm) if self.tpm else tokens
        while True:
            with self.lock:
                now = self.clock()
                wait = self.wait_time(tokens, now)
                if wait <= 0:
                    self.events.append((now, tokens))
                    return
            self.sleep(wait)
