"""The circuit breaker: after repeated failures, stop calling the backend for a while.

Without it, every request during a Redis outage would spend a full socket timeout finding out
what the previous request already knew. The breaker only counts and decides; the manager feeds
it each call's outcome and logs its transitions.
"""

from __future__ import annotations

import time
from enum import StrEnum

from app.cache.types import Clock


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Stops calling a failing backend, then lets exactly one probe test it after a cooldown.

    closed --(failure_threshold consecutive failures)--> open --(cooldown)--> half-open;
    in half-open one caller gets through: its success closes the breaker, its failure
    re-opens it for another cooldown. Everyone else fails fast, without touching the network.
    """

    def __init__(
        self,
        failure_threshold: int = 2,
        cooldown_seconds: float = 2.0,
        clock: Clock = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if cooldown_seconds < 0:
            raise ValueError("cooldown_seconds must not be negative")
        self.failure_threshold = failure_threshold
        self.cooldown_seconds = cooldown_seconds
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_started = 0.0

    @property
    def state(self) -> BreakerState:
        return self._state

    def allow_request(self) -> bool:
        """True if the caller may use the backend now; in half-open, only the probe may."""
        if self._state is BreakerState.CLOSED:
            return True
        now = self._clock()
        if self._state is BreakerState.OPEN:
            if now - self._opened_at < self.cooldown_seconds:
                return False
            return self._start_probe(now)
        # A probe whose caller vanished without reporting must not wedge the breaker:
        # after another cooldown, a new probe is allowed.
        if now - self._probe_started >= self.cooldown_seconds:
            return self._start_probe(now)
        return False

    def record_success(self) -> None:
        self._state = BreakerState.CLOSED
        self._failures = 0

    def record_failure(self) -> bool:
        """Count a failure; True if it opened (or re-opened) the breaker."""
        self._failures += 1
        if self._state is BreakerState.HALF_OPEN or self._failures >= self.failure_threshold:
            was_open = self._state is BreakerState.OPEN
            self._state = BreakerState.OPEN
            self._opened_at = self._clock()
            return not was_open
        return False

    def release_probe(self) -> None:
        """The probe ended without a verdict (its caller was cancelled): allow another now."""
        if self._state is BreakerState.HALF_OPEN:
            self._state = BreakerState.OPEN
            self._opened_at = self._clock() - self.cooldown_seconds

    def reset(self) -> None:
        self.record_success()

    def _start_probe(self, now: float) -> bool:
        self._state = BreakerState.HALF_OPEN
        self._probe_started = now
        return True
