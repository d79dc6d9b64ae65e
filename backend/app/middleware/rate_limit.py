"""Rate limits per API key or client address, shared through Redis, in memory without it.

The counting is the `limits` library's sliding-window counter. With Redis it runs as our own
Lua script, and the hits of concurrent requests travel together as one script call
(`SharedCounter`): one round trip and one reply to parse per batch, not per request. With
Redis every process shares one count per caller; when Redis is absent or its circuit breaker
is open, each process counts on its own in memory (a caller then gets up to N times the limit
across N processes: degraded, never blocked). Requests under `/api/` are limited; health
checks, metrics, the docs and the dashboard's files are not.

A caller is its API key when the key is valid (checked before counting, from the cache when
it was verified within the minute), and its address otherwise, so sending made-up keys does
not earn a fresh allowance per key, and a valid key never pays for its address's traffic.

The Redis side (scripts, batching, compatibility with the library's own storage) is in
`app.middleware.rate_limit_redis`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from typing import NamedTuple

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.cache import CacheManager, RedisBackend
from app.errors import is_connection_failure, problem_response
from app.middleware.rate_limit_redis import Limit, SharedCounter

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_floor, _ceil = math.floor, math.ceil  # per request: spared the attribute lookups


class Decision(NamedTuple):
    allowed: bool
    limit: int
    remaining: int
    reset_after: int  # seconds until a request is allowed again / the window resets
    shared: bool  # counted in Redis (True) or in this process only


class LocalCounter:
    """This process's own count, on the library's in-memory storage (`MemoryStorage`).

    The library's `SlidingWindowCounterRateLimiter` reads the window three times per request
    (`hit`: the window, then the count again inside `incr`; `get_window_stats`: the window
    again, for the headers), and no call of its answers both the verdict and the counts.
    Here the window is read once (`get` on the two keys `sliding_window_keys` names, with
    the TTLs the storage's `get_sliding_window` derives from the clock), judged with the
    strategy's arithmetic (the Redis script's too), and an allowed hit is counted with the
    storage's `incr`, which answers the new count: storage, keys and numbers are the
    library's, and the tests check the two agree on one storage. Synchronous, like the
    storage: no await runs between the read and the count, so on one event loop no other hit
    comes between them. (The storage sweeps expired counters from a thread it starts anew
    every 10 ms while hits come in; that is the largest cost left on this path.)
    """

    def __init__(self) -> None:
        self.storage = MemoryStorage()

    def hit(self, limit: Limit, key: str) -> Decision:
        storage, expiry = self.storage, limit.expiry
        now = time.time()
        previous_key, current_key = storage.sliding_window_keys(key, expiry, now)
        previous, current = storage.get(previous_key), storage.get(current_key)
        # The memory storage's windows are slices of the clock, so their TTLs follow from the
        # time, as in its `get_sliding_window`.
        previous_ttl = (1 - (((now - expiry) / expiry) % 1)) * expiry if previous else 0.0
        current_ttl = (1 - ((now / expiry) % 1)) * expiry + expiry
        allowed = _floor(previous * previous_ttl / expiry) + current + 1 <= limit.amount
        if allowed:
            current = storage.incr(current_key, 2 * expiry)
        return _decide(limit, allowed, previous, previous_ttl, current, current_ttl, False)


class RateLimiter:
    def __init__(self, cache: CacheManager, reads: str, writes: str) -> None:
        self.cache = cache
        self.reads: RateLimitItem = parse(reads)
        self.writes: RateLimitItem = parse(writes)
        self._read_limit, self._write_limit = Limit(self.reads), Limit(self.writes)
        self._other_limits: dict[RateLimitItem, Limit] = {}
        self._memory = LocalCounter()
        self._shared: tuple[RedisBackend, SharedCounter] | None = None

    def limit(self, item: RateLimitItem) -> Limit:
        if item is self.reads:
            return self._read_limit
        if item is self.writes:
            return self._write_limit
        found = self._other_limits.get(item)
        if found is None:
            found = self._other_limits[item] = Limit(item)
        return found

    def _counter(self, backend: RedisBackend) -> SharedCounter:
        shared = self._shared
        if shared is None or shared[0] is not backend:
            # The cache's tuned pool: short timeouts, no retries.
            shared = self._shared = (backend, SharedCounter(self.cache, backend.pool))
        return shared[1]

    async def hit(self, item: RateLimitItem, caller: str) -> Decision:
        limit = self.limit(item)
        key, keys = limit.keys(caller)
        backend = self.cache.backend
        if isinstance(backend, RedisBackend):
            reply = await self._counter(backend).submit(keys, limit.args)
            if reply is not None:
                allowed, previous, previous_ttl, current, current_ttl = reply
                return _decide(
                    limit,
                    allowed == 1,
                    previous,
                    previous_ttl / 1000,
                    current,
                    current_ttl / 1000,
                    True,
                )
        return self._memory.hit(limit, key)


def _decide(
    limit: Limit,
    allowed: bool,
    previous_count: int,
    previous_expires_in: float,
    current_count: int,
    current_expires_in: float,
    shared: bool,
) -> Decision:
    """Remaining and reset as `SlidingWindowCounterRateLimiter.get_window_stats` has them.

    But for one instant: where the library's `expires_in % period` is exactly 0 with time
    left (a window set in this very millisecond, as hits batched with the one that creates
    it see, Redis' clock standing still during a script), the reset is the full period, as
    the library says a moment later, not 0.
    """
    expiry, amount = limit.expiry, limit.amount
    remaining = amount - _floor(previous_count * previous_expires_in / expiry + current_count)
    if previous_count:
        period = expiry / previous_count
        reset_in = previous_expires_in % period or (period if previous_expires_in else 0.0)
        if current_count:
            current_reset_in = current_expires_in % expiry or expiry
            if current_reset_in < reset_in:
                reset_in = current_reset_in
    elif current_count:
        reset_in = current_expires_in % expiry or expiry
    else:
        reset_in = 0.0
    reset_after = _ceil(reset_in)
    return Decision(
        allowed,
        amount,
        remaining if remaining > 0 else 0,
        reset_after if reset_after > 1 else 1,
        shared,
    )


# Given a presented API key, its prefix if it is a valid key, else None: verified before the
# request is counted, so a valid key is charged to its own allowance from its first request
# (an address whose anonymous allowance is spent cannot lock out the keys behind it).
# `services.api_keys.caller_prefix` is one: the cache answers a key verified within the
# minute, the database any other. It may raise if the database cannot be reached.
KeyIdentity = Callable[[str], Awaitable[str | None]]


async def identify(scope: Scope, caller_key: KeyIdentity) -> str:
    """`key:<prefix>` for a valid key, else `ip:<address>` (made-up keys earn nothing)."""
    for name, value in scope["headers"]:
        if name == b"x-api-key":
            try:
                prefix = await caller_key(value.decode("latin-1"))
            except Exception as error:
                if not is_connection_failure(error):
                    raise
                break  # counted by address; the key check that follows answers 503
            if prefix is not None:
                return f"key:{prefix}"
            break
    client = scope.get("client")
    return f"ip:{client[0] if client else 'unknown'}"


def _headers(decision: Decision) -> list[tuple[bytes, bytes]]:
    return [
        (b"x-ratelimit-limit", b"%d" % decision.limit),
        (b"x-ratelimit-remaining", b"%d" % decision.remaining),
        (b"x-ratelimit-reset", b"%d" % decision.reset_after),
    ]


class RateLimitMiddleware:
    """Pure ASGI: counts before routing, adds the headers to every limited response."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter, caller_key: KeyIdentity) -> None:
        self.app = app
        self.limiter = limiter
        self.caller_key = caller_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        item = self.limiter.reads if scope["method"] in READ_METHODS else self.limiter.writes
        caller = await identify(scope, self.caller_key)
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
