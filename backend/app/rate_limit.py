"""Rate limits per API key or client address, shared through Redis, in memory without it.

The counting is the `limits` library's sliding-window counter, run in Redis as one script per
request (the library's own Redis storage takes two round trips), with the scripts of
concurrent requests sent together (`SharedCounter`). With Redis every process shares one count
per caller; when Redis is absent or its circuit breaker is open, each process counts on its own
in memory (a caller then gets up to N times the limit across N processes: degraded, never
blocked). Requests under `/api/` are limited; health checks, metrics, the docs and the
dashboard's files are not.

A caller is its API key once the key has been verified (the key check caches it), and its
address otherwise, so sending made-up keys does not earn a fresh allowance per key.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import math
import time
from dataclasses import dataclass
from functools import partial

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import NoScriptError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.cache import CacheBackend, CacheManager, RedisBackend
from app.errors import problem_response

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
KEY_PREFIX = "crypto:ratelimit"  # inside the cache namespace, so flushes and scans see it

# The `limits` library's sliding-window counter in one round trip. Its Redis storage takes
# two: `hit` runs acquire_sliding_window.lua, then `get_window_stats` runs
# sliding_window.lua to read the counts back for the headers. This is the first script
# followed by the second one's reads, on the same keys (`<prefix>:{<key>}` for the current
# window, `<prefix>:{<key>}/-1` for the previous one) with the same arithmetic, so processes
# running either version share one count; and the counts read back are exactly the ones
# this hit was judged on. TTLs are in milliseconds, as in the library's scripts.
ACQUIRE_AND_READ = """
local limit = tonumber(ARGV[1])
local expiry = tonumber(ARGV[2]) * 1000

local current_ttl = tonumber(redis.call('pttl', KEYS[2]))
if current_ttl > 0 and current_ttl < expiry then
    -- Current window expired, shift it to the previous window
    redis.call('rename', KEYS[2], KEYS[1])
    redis.call('set', KEYS[2], 0, 'PX', current_ttl + expiry)
end

local previous_count = tonumber(redis.call('get', KEYS[1])) or 0
local previous_ttl = math.max(tonumber(redis.call('pttl', KEYS[1])), 0)
local current_count = tonumber(redis.call('get', KEYS[2])) or 0
current_ttl = math.max(tonumber(redis.call('pttl', KEYS[2])), 0)

local allowed = 0
if math.floor(previous_count * previous_ttl / expiry) + current_count + 1 <= limit then
    allowed = 1
    if redis.call('exists', KEYS[2]) == 1 then
        current_count = redis.call('incrby', KEYS[2], 1)
    else
        redis.call('set', KEYS[2], 1, 'PX', expiry * 2)
        current_count = 1
    end
    current_ttl = math.max(tonumber(redis.call('pttl', KEYS[2])), 0)
end
return {allowed, previous_count, previous_ttl, current_count, current_ttl}
"""


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_after: int  # seconds until a request is allowed again / the window resets
    shared: bool  # counted in Redis (True) or in this process only


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(value), value)


class SharedCounter:
    """Runs ACQUIRE_AND_READ for concurrent requests, sharing round trips to Redis.

    A request's EVALSHA joins a queue; one task at a time sends everything queued as one
    pipeline on one pooled connection and hands each request its own reply. Every hit is
    still its own atomic script, in arrival order, so the counts and replies are what one
    round trip per request would give; under load, one round trip carries many requests.

    Each round trip runs under the cache's breaker and deadline (`CacheManager.guarded`), so
    the breaker gets one verdict per call to Redis, as from any other cache call, not one per
    request riding on it. A request waits at most the cache's deadline for its reply (the
    batch on the wire, then its own); without one it counts in memory, like a request whose
    Redis call failed.
    """

    def __init__(self, cache: CacheManager, pool: BlockingConnectionPool) -> None:
        self.cache = cache
        self.pool = pool
        digest = hashlib.sha1(ACQUIRE_AND_READ.encode(), usedforsecurity=False)
        self.sha = digest.hexdigest().encode()  # the name Redis gives the script
        self._queue: list[tuple[bytes, asyncio.Future[list[int] | None]]] = []
        self._sender: asyncio.Task[None] | None = None

    def command(self, key: str, item: RateLimitItem) -> bytes:
        """EVALSHA in the Redis protocol: keys previous window, current window."""
        current = key.encode()
        return b"".join(
            (
                b"*7\r\n$7\r\nEVALSHA\r\n",
                _bulk(self.sha),
                b"$1\r\n2\r\n",
                _bulk(current + b"/-1"),
                _bulk(current),
                _bulk(str(item.amount).encode()),
                _bulk(str(item.get_expiry()).encode()),
            )
        )

    async def run(self, command: bytes) -> list[int] | None:
        """The script's reply; None if Redis failed, its breaker is open or time ran out."""
        loop = asyncio.get_running_loop()
        if self._sender is not None and self._sender.get_loop() is not loop:
            self._queue, self._sender = [], None  # another event loop's (tests): unanswerable
        future: asyncio.Future[list[int] | None] = loop.create_future()
        self._queue.append((command, future))
        if self._sender is None or self._sender.done():
            self._sender = loop.create_task(self._send_queued())
        try:
            async with asyncio.timeout(self.cache.operation_timeout):
                return await future
        except TimeoutError:
            return None

    async def _send_queued(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            batch = [(command, future) for command, future in batch if not future.done()]
            if not batch:
                continue
            commands = [command for command, _ in batch]
            try:
                ok, replies = await self.cache.guarded(partial(self._send, commands))
            except BaseException:
                _answer(batch + self._queue, None)  # stopped (shutdown): count in memory
                raise
            if ok and replies is not None:
                for (_, future), reply in zip(batch, replies, strict=True):
                    if not future.done():
                        future.set_result(reply)
            else:
                _answer(batch, None)

    async def _send(self, commands: list[bytes], _backend: CacheBackend) -> list[list[int]]:
        try:
            return await self._round_trip(commands)
        except NoScriptError:  # Redis restarted or its scripts were flushed
            await Redis(connection_pool=self.pool).script_load(ACQUIRE_AND_READ)
            return await self._round_trip(commands)

    async def _round_trip(self, commands: list[bytes]) -> list[list[int]]:
        connection = await self.pool.get_connection()
        try:
            await connection.send_packed_command(b"".join(commands), check_health=False)
            return [await connection.read_response() for _ in commands]
        except BaseException:
            # Replies may be left unread on it: never hand this connection out again as is.
            await connection.disconnect()
            raise
        finally:
            await self.pool.release(connection)


def _answer(batch: list[tuple[bytes, asyncio.Future[list[int] | None]]], reply: None) -> None:
    for _, future in batch:
        if not future.done():
            future.set_result(reply)


class RateLimiter:
    def __init__(self, cache: CacheManager, reads: str, writes: str) -> None:
        self.cache = cache
        self.reads: RateLimitItem = parse(reads)
        self.writes: RateLimitItem = parse(writes)
        self._memory = SlidingWindowCounterRateLimiter(MemoryStorage())
        self._shared: dict[int, SharedCounter] = {}

    def _counter(self, backend: RedisBackend) -> SharedCounter:
        counter = self._shared.get(id(backend))
        if counter is None:
            # The cache's tuned pool: short timeouts, no retries.
            counter = self._shared[id(backend)] = SharedCounter(self.cache, backend.pool)
        return counter

    async def hit(self, item: RateLimitItem, caller: str) -> Decision:
        backend = self.cache.backend
        if isinstance(backend, RedisBackend):
            counter = self._counter(backend)
            key = f"{KEY_PREFIX}:{{{item.key_for(caller)}}}"
            reply = await counter.run(counter.command(key, item))
            if reply is not None:
                allowed, previous, previous_ttl, current, current_ttl = reply
                return _decide(
                    item, bool(allowed), previous, previous_ttl / 1000, current, current_ttl / 1000
                )
        return await _count(self._memory, item, caller)


def _decide(
    item: RateLimitItem,
    allowed: bool,
    previous_count: int,
    previous_expires_in: float,
    current_count: int,
    current_expires_in: float,
) -> Decision:
    """Remaining and reset as `SlidingWindowCounterRateLimiter.get_window_stats` has them."""
    expiry = item.get_expiry()
    weighted = previous_count * previous_expires_in / expiry + current_count
    remaining = max(0, item.amount - math.floor(weighted))
    reset_in = 0.0
    if previous_count or current_count:
        reset_in = min(
            previous_expires_in % (expiry / previous_count) if previous_count else math.inf,
            current_expires_in % expiry if current_count else math.inf,
        )
    return Decision(allowed, item.amount, remaining, max(1, math.ceil(reset_in)), True)


async def _count(
    limiter: SlidingWindowCounterRateLimiter, item: RateLimitItem, caller: str
) -> Decision:
    """This process's own count (no Redis, or its breaker is open)."""
    allowed = await limiter.hit(item, caller)
    stats = await limiter.get_window_stats(item, caller)
    reset_after = max(1, math.ceil(stats.reset_time - time.time()))
    return Decision(allowed, item.amount, max(stats.remaining, 0), reset_after, False)


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
