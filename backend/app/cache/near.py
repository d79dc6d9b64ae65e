"""A short-lived in-process copy of hot cache entries, in front of Redis.

A Redis round trip per request halves the throughput of an endpoint that only returns
cached bytes (see docs/BENCHMARKS.md), so each process keeps what it read or wrote for at most
``ttl`` seconds (1 s by default). Writes made by this process update its copy at once; writes
made elsewhere reach it through a Redis pub/sub message naming the changed keys (see
`app.cache.invalidation`), and the short lifetime bounds how stale a copy can be if such a
message is lost (Redis down, a reconnect in progress).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable

from app.cache.types import Clock


class NearCache:
    """Bounded LRU of bytes with a per-entry expiry; all methods are synchronous."""

    def __init__(
        self, ttl: float = 1.0, max_entries: int = 4096, clock: Clock = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[bytes, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self._clock() >= entry[1]:
            del self._entries[key]
            return None
        return entry[0]

    def put(self, key: str, value: bytes, ttl: float) -> None:
        self._entries[key] = (value, self._clock() + min(ttl, self.ttl))
        self._entries.move_to_end(key)
        if len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def drop(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()
