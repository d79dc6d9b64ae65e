"""Rate limits per API key or client address, shared through Redis, in memory without it.

The counting is the `limits` library's sliding-window counter. With Redis every process
shares one count per caller; when Redis is absent or its circuit breaker is open, each
process counts on its own in memory (a caller then gets up to N times the limit across N
processes: degraded, never blocked). Requests under `/api/` are limited; health checks,
metrics, the docs and the dashboard's files are not.

A caller is its API key once the key has been verified (the key check caches it), and its
address otherwise, so sending made-up keys does not earn a fresh allowance per key.
"""

from __future__ import annotations

import hmac
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.cache import CacheBackend, CacheManager, RedisBackend
from app.errors import problem_response

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
KEY_PREFIX = "crypto:ratelimit"  # inside the cache namespace, so flushes and scans see it


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_after: int  # seconds until a request is allowed again / the window resets
    shared: bool  # counted in Redis (True) or in this process only


class RateLimiter:
    def __init__(self, cache: CacheManager, reads: str, writes: str) -> None:
        self.cache = cache
        self.reads: RateLimitItem = parse(reads)
        self.writes: RateLimitItem = parse(writes)
        self._memory = SlidingWindowCounterRateLimiter(MemoryStorage())
        self._shared: dict[int, SlidingWindowCounterRateLimiter] = {}

    def _redis_limiter(self, backend: RedisBackend) -> SlidingWindowCounterRateLimiter:
        limiter = self._shared.get(id(backend))
        if limiter is None:
            storage = RedisStorage(
                "async+redis://",
                implementation="redispy",
                key_prefix=KEY_PREFIX,
                connection_pool=backend.pool,  # type: ignore[arg-type]
            )
            limiter = self._shared[id(backend)] = SlidingWindowCounterRateLimiter(storage)
        return limiter

    async def hit(self, item: RateLimitItem, caller: str) -> Decision:
        backend = self.cache.backend
        if isinstance(backend, RedisBackend):

            async def shared(_backend: CacheBackend) -> Decision:
                return await _count(self._redis_limiter(backend), item, caller, shared=True)

            ok, decision = await self.cache.guarded(shared)
            if ok and decision is not None:
                return decision
        return await _count(self._memory, item, caller, shared=False)


async def _count(
    limiter: SlidingWindowCounterRateLimiter, item: RateLimitItem, caller: str, *, shared: bool
) -> Decision:
    allowed = await limiter.hit(item, caller)
    stats = await limiter.get_window_stats(item, caller)
    reset_after = max(1, math.ceil(stats.reset_time - time.time()))
    return Decision(allowed, item.amount, max(stats.remaining, 0), reset_after, shared)


async def identify(scope: Scope, cache: CacheManager) -> str:
    """`key:<prefix>` for a key the key check has verified, else `ip:<address>`."""
    from app.services.api_keys import KEY_PATTERN, hash_key, verified_cache_key

    for name, value in scope["headers"]:
        if name == b"x-api-key":
            key = value.decode("latin-1")
            match = KEY_PATTERN.match(key)
            if match is not None:
                record = await cache.get(verified_cache_key(match.group(1)))
                if isinstance(record, dict) and hmac.compare_digest(
                    str(record.get("hash", "")), hash_key(key)
                ):
                    return f"key:{match.group(1)}"
            break
    client = scope.get("client")
    return f"ip:{client[0] if client else 'unknown'}"


def _headers(decision: Decision) -> list[tuple[bytes, bytes]]:
    return [
        (b"x-ratelimit-limit", str(decision.limit).encode()),
        (b"x-ratelimit-remaining", str(decision.remaining).encode()),
        (b"x-ratelimit-reset", str(decision.reset_after).encode()),
    ]


class RateLimitMiddleware:
    """Pure ASGI: counts before routing, adds the headers to every limited response."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        item = self.limiter.reads if scope["method"] in READ_METHODS else self.limiter.writes
        caller = await identify(scope, self.limiter.cache)
        decision = await self.limiter.hit(item, caller)
        headers = _headers(decision)
        if not decision.allowed:
            response = problem_response(
                429,
                "Too many requests",
                f"rate limit of {item} exceeded; retry in {decision.reset_after} s",
                slug="rate-limited",
                headers={"Retry-After": str(decision.reset_after)},
            )
            response.raw_headers.extend(headers)
            await response(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)
