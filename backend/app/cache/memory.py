"""The in-process backend: what the cache uses when no Redis is configured.

An LRU store with per-key expiry that keeps the same contract as Redis (bytes, TTLs, a
namespaced flush), so running without Redis changes where entries live, not how they behave.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from app.cache.keys import NAMESPACE_PREFIX
from app.cache.types import CacheInfo, Clock


class MemoryBackend:
    """An in-process LRU store with per-key expiry, for running without Redis.

    Every method runs to completion without awaiting, so on one event loop no two calls
    interleave and no lock is needed (it is not meant to be shared across threads).
    """

    name = "memory"

    def __init__(self, max_entries: int = 10_000, clock: Clock = time.monotonic) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._clock = clock
        self._created = clock()
        # key -> (value, expires_at); order is recency of use, oldest first.
        self._entries: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self._stored_bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, expires_at = entry
        if self._clock() >= expires_at:
            self._remove(key)
            return None
        self._entries.move_to_end(key)
        return value

    async def set(self, key: str, value: bytes, ttl: int) -> None:
        self._remove(key)
        self._entries[key] = (value, self._clock() + ttl)
        self._stored_bytes += len(key) + len(value)
        while len(self._entries) > self.max_entries:
            self._remove(next(iter(self._entries)))

    async def delete(self, *keys: str) -> int:
        return sum(self._remove(key) for key in keys)

    async def flush_all(self) -> int:
        doomed = [key for key in self._entries if key.startswith(NAMESPACE_PREFIX)]
        return await self.delete(*doomed)

    async def ping(self) -> None:
        return None

    async def info(self) -> CacheInfo:
        return CacheInfo(
            used_memory_mb=self._stored_bytes / (1024 * 1024),
            connected_clients=1,
            uptime_seconds=int(self._clock() - self._created),
        )

    async def close(self) -> None:
        self._entries.clear()
        self._stored_bytes = 0

    def _remove(self, key: str) -> bool:
        entry = self._entries.pop(key, None)
        if entry is None:
            return False
        self._stored_bytes -= len(key) + len(entry[0])
        return True
