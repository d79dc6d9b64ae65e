"""What the cache reports: backend facts, a health probe's result, counters, and its error.

These are plain values shared by the backends (which produce `CacheInfo`) and the manager
(which keeps `CacheStats` and answers `CacheHealth`), kept apart from both so neither has to
import the other to speak about them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

# Seconds from an arbitrary origin (time.monotonic); tests pass a fake one to move time.
Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class CacheInfo:
    used_memory_mb: float
    connected_clients: int
    uptime_seconds: int


@dataclass(frozen=True, slots=True)
class CacheHealth:
    backend: str
    connected: bool
    latency_ms: float
    used_memory_mb: float = 0.0
    connected_clients: int = 0
    uptime_seconds: int = 0
    breaker: str = "closed"
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class CacheStats:
    """Counters for monitoring; hit_ratio covers only the reads the backend answered.

    `errors` counts backend failures, `short_circuits` the calls the open breaker refused;
    neither is counted as a miss, so an outage shows up there rather than in hit_ratio.
    """

    hits: int = 0
    misses: int = 0
    errors: int = 0
    sets: int = 0
    short_circuits: int = 0
    near_hits: int = 0  # hits answered by this process's near copy (also counted in hits)

    @property
    def hit_ratio(self) -> float:
        reads = self.hits + self.misses
        return self.hits / reads if reads else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "hits": self.hits,
            "misses": self.misses,
            "errors": self.errors,
            "sets": self.sets,
            "short_circuits": self.short_circuits,
            "near_hits": self.near_hits,
            "hit_ratio": round(self.hit_ratio, 4),
        }

    def reset(self) -> None:
        self.hits = self.misses = self.errors = self.sets = self.short_circuits = 0
        self.near_hits = 0


class CacheError(RuntimeError):
    """An explicit cache action (flush) could not be carried out."""
