"""Per-caller request budgets: a token bucket per key (a token id, or a client address for
failed authentications)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class RateLimiter:
    """Each key may make ``burst`` requests at once and ``rate`` per second on average.

    A bucket holds up to ``burst`` permits and refills at ``rate`` permits per second; a request
    takes one. Buckets are kept for at most ``max_keys`` keys (the least recently refilled are
    dropped first — a dropped key starts again with a full bucket), so that a flood of made-up
    keys cannot grow memory.
    """

    def __init__(self, rate: float, burst: int, max_keys: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str) -> float:
        """Take a permit for ``key``: 0 when granted, else the seconds until one is free."""
        now = self._clock()
        with self._lock:
            permits, last = self._buckets.pop(key, (float(self.burst), now))
            permits = min(float(self.burst), permits + (now - last) * self.rate)
            wait = 0.0 if permits >= 1 else (1 - permits) / self.rate
            self._buckets[key] = (permits - 1 if wait == 0 else permits, now)
            if len(self._buckets) > self.max_keys:
                del self._buckets[next(iter(self._buckets))]
        return wait

    @staticmethod
    def retry_after(wait: float) -> str:
        """A Retry-After header value (whole seconds, at least 1)."""
        return str(max(1, math.ceil(wait)))
