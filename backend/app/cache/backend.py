"""The contract every store behind the cache meets, and the errors that mean it is down.

A backend moves bytes and raises when it fails; deciding what a failure means (a miss, an
open breaker, a log line) is the manager's job, so backends stay small and testable alone.
"""

from __future__ import annotations

from typing import Protocol

from redis.exceptions import RedisError

from app.cache.types import CacheInfo

# Errors that mean "the backend is unreachable or misbehaving", as opposed to caller bugs.
BACKEND_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)


class CacheBackend(Protocol):
    """Bytes in, bytes out. Backends raise on failure; `CacheManager` absorbs the errors."""

    name: str

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl: int) -> None: ...

    async def delete(self, *keys: str) -> int: ...

    async def flush_all(self) -> int:
        """Delete this project's keys (`crypto:*`) only; return how many were removed."""
        ...

    async def ping(self) -> None: ...

    async def info(self) -> CacheInfo: ...

    async def close(self) -> None: ...
