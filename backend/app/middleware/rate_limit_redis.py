"""Counting rate-limit hits in Redis: the scripts, and the batching of concurrent hits.

The counting is the `limits` library's sliding-window counter, run as our own Lua script;
the hits of concurrent requests travel together as one script call (`SharedCounter`): one
round trip and one reply to parse per batch, not per request. `app.middleware.rate_limit`
decides with the numbers it answers, and counts in memory when it answers nothing.

Compatibility with the library's own Redis storage: the script works on the keys that
`limits.storage.RedisStorage(key_prefix=KEY_PREFIX)` uses (`<prefix>:{<key>}` for the current
window, `<prefix>:{<key>}/-1` for the previous one) with the arithmetic of its scripts, so a
process running the library's `SlidingWindowCounterRateLimiter` on that storage and a process
running this module share one count (the tests check this against the library itself).

One script call carries the keys of many callers. Redis runs a script on one node, so this
needs every key on one server: right for the single Redis this project supports, wrong for a
Redis Cluster (each caller's keys share a hash tag, but different callers' do not).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from functools import partial
from typing import Any

from limits import RateLimitItem
from redis.asyncio import BlockingConnectionPool
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import NoScriptError, ResponseError

from app.cache import CacheBackend, CacheManager

KEY_PREFIX = "crypto:ratelimit"  # inside the cache namespace, so flushes and scans see it

# The `limits` library's sliding-window counter for one hit, in one round trip. Its Redis
# storage takes two: `hit` runs acquire_sliding_window.lua, then `get_window_stats` runs
# sliding_window.lua to read the counts back for the headers. This is the first script
# followed by the second one's reads, on the same keys (KEYS[1] the previous window, KEYS[2]
# the current one; ARGV the limit and the window in seconds) with the same arithmetic, so
# processes running either version share one count; and the counts read back are exactly the
# ones this hit was judged on. TTLs are in milliseconds, as in the library's scripts.
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

# N hits in one call: ACQUIRE_AND_READ, word for word, as a function run once per hit in
# order (KEYS: previous, current window of hit 1, then of hit 2, ...; ARGV: limit, window of
# hit 1, then of hit 2, ...). A script runs atomically and each hit sees the counts the hits
# before it left, so hits on one key within a call count exactly as separate scripts would.
# The reply is the five numbers of hit 1, then of hit 2, ...: one flat array of integers.
ACQUIRE_AND_READ_MANY = (
    "local function acquire_and_read(KEYS, ARGV)\n"
    + ACQUIRE_AND_READ
    + """end

local replies = {}
for hit = 1, #KEYS / 2 do
    local reply = acquire_and_read(
        {KEYS[2 * hit - 1], KEYS[2 * hit]}, {ARGV[2 * hit - 1], ARGV[2 * hit]}
    )
    for i = 1, 5 do
        replies[#replies + 1] = reply[i]
    end
end
return replies
"""
)

REPLY_LENGTH = 5  # integers per hit in the script's reply
MAX_HITS_PER_CALL = 256  # a bigger batch goes as several calls on one pipeline
MAX_CACHED_CALLERS = 10_000  # per limit: callers whose keys are kept ready to send


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(value), value)


def _command(*parts: bytes) -> bytes:
    """One command in the Redis protocol."""
    return b"*%d\r\n%s" % (len(parts), b"".join(_bulk(part) for part in parts))


class Limit:
    """One rate limit's numbers, and its callers' keys as sent, computed once per caller."""

    __slots__ = ("_keys", "amount", "args", "expiry", "item")

    def __init__(self, item: RateLimitItem) -> None:
        self.item = item
        self.amount = item.amount
        self.expiry = item.get_expiry()
        # This hit's ARGV in the Redis protocol: the limit, the window in seconds.
        self.args = _bulk(b"%d" % self.amount) + _bulk(b"%d" % self.expiry)
        self._keys: dict[str, tuple[str, bytes]] = {}

    def keys(self, caller: str) -> tuple[str, bytes]:
        """The library's key for the caller, and the script's KEYS for it in the protocol."""
        found = self._keys.get(caller)
        if found is None:
            if len(self._keys) >= MAX_CACHED_CALLERS:
                self._keys.clear()  # a cache, not a registry: start again
            key = self.item.key_for(caller)
            current = f"{KEY_PREFIX}:{{{key}}}".encode()
            found = self._keys[caller] = (key, _bulk(current + b"/-1") + _bulk(current))
        return found


Reply = list[int]
Waiting = tuple[bytes, bytes, asyncio.Future[Reply | None]]  # KEYS, ARGV, the reply's future


class SharedCounter:
    """Runs the hits of concurrent requests as one ACQUIRE_AND_READ_MANY call.

    A request's hit joins a queue; one task at a time (the sender) takes everything queued,
    sends it as one script call, and hands each request its own five numbers. The hits run
    in arrival order, each as ACQUIRE_AND_READ would, so the counts and replies are what one
    script per request would give.

    Each round trip runs under the cache's breaker and deadline (`CacheManager.guarded`), so
    the breaker gets one verdict per call to Redis, as from any other cache call. Requests
    have no timers of their own: every way the sender ends a batch (replies, a failure, the
    breaker open, the deadline, cancellation or shutdown) answers every request in it, a
    failure with None (the request then counts in memory). A request thus waits at most about
    two deadlines: the batch already on the wire, then its own.

    The sender keeps the pool connection it used while batches keep coming (one at a time
    is in flight, so one connection serves them all), without the socket timeouts that
    redis-py puts around every write and read (a task and a timer each): the deadline above
    bounds the round trip instead. After `HOLD_IDLE_SECONDS` without a batch, or after any
    error, the connection goes back to the pool, whose check before handing a connection
    out (dropped by the server? data left unread?) then runs as for any other Redis call.
    """

    HOLD_IDLE_SECONDS = 1.0

    def __init__(self, cache: CacheManager, pool: BlockingConnectionPool) -> None:
        self.cache = cache
        self.pool = pool
        digest = hashlib.sha1(ACQUIRE_AND_READ_MANY.encode(), usedforsecurity=False)
        self.sha = digest.hexdigest().encode()  # the name Redis gives the script
        self._load = _command(b"SCRIPT", b"LOAD", ACQUIRE_AND_READ_MANY.encode())
        self._queue: list[Waiting] = []
        self._sender: asyncio.Task[None] | None = None
        self._held: AbstractConnection | None = None
        self._held_timeout: float | None = None  # its socket timeout, restored on release
        self._held_until = 0.0

    def submit(self, keys: bytes, args: bytes) -> asyncio.Future[Reply | None]:
        """Queue a hit; the future gets its five numbers, or None if Redis failed, its
        breaker is open or time ran out. It is always answered (see the class docstring).

        ``keys`` and ``args`` are the hit's KEYS and ARGV in the Redis protocol (`Limit`).
        """
        loop = asyncio.get_running_loop()
        sender = self._sender
        if sender is None or sender.done() or sender.get_loop() is not loop:
            if sender is not None and sender.get_loop() is not loop:
                # Another event loop's (tests): its queue and connection are unusable here.
                self._queue, self._held = [], None
            sender = self._sender = loop.create_task(self._send_queued())
            sender.add_done_callback(self._sender_done)
        future: asyncio.Future[Reply | None] = loop.create_future()
        self._queue.append((keys, args, future))
        return future

    async def _send_queued(self) -> None:
        batch: list[Waiting] = []
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                batch = [waiting for waiting in batch if not waiting[2].done()]
                if not batch:
                    continue
                ok, replies = await self.cache.guarded(partial(self._send, batch))
                if ok and replies is not None:
                    for index, (_, _, future) in enumerate(batch):
                        if not future.done():
                            start = index * REPLY_LENGTH
                            future.set_result(replies[start : start + REPLY_LENGTH])
                else:
                    _answer(batch)
        finally:
            # However the sender stops (cancelled, shut down, a bug), nobody is left waiting.
            _answer(batch)
            _answer(self._queue)

    def _sender_done(self, sender: asyncio.Task[None]) -> None:
        # A sender cancelled before it first ran never reached its `finally`: answer its
        # queue here. (If a new sender has replaced it, the queue is the new one's.)
        if self._sender is sender:
            _answer(self._queue)

    async def _send(self, batch: list[Waiting], _backend: CacheBackend) -> Reply:
        """All the batch's replies, flat; raises if Redis failed or answered nonsense."""
        size = MAX_HITS_PER_CALL
        calls = [batch[start : start + size] for start in range(0, len(batch), size)]
        commands = [self._evalsha(call) for call in calls]
        connection = await self._connection()
        try:
            replies = await _exchange(connection, commands)
            await self._rerun_unknown_script(connection, commands, replies)
        except BaseException:
            # Replies may be left unread on it: never use this connection again as is.
            self._held = None
            await connection.disconnect()
            await self._release(connection)
            raise
        self._held_until = time.monotonic() + self.HOLD_IDLE_SECONDS
        return _flat_replies(calls, replies)

    async def _rerun_unknown_script(
        self, connection: AbstractConnection, commands: list[bytes], replies: list[Any]
    ) -> None:
        """Fill in, in place, the replies of calls Redis answered NOSCRIPT to."""
        missing = [index for index, reply in enumerate(replies) if reply is None]
        if not missing:
            return
        # Redis restarted or its scripts were flushed; no hit of those calls ran.
        # Load the script and send them again, in one round trip.
        again = await _exchange(connection, [self._load, *(commands[i] for i in missing)])
        if again[0] not in (self.sha, self.sha.decode()):
            raise ResponseError(f"SCRIPT LOAD answered {again[0]!r}")
        for index, reply in zip(missing, again[1:], strict=True):
            if reply is None:
                raise NoScriptError("the script vanished again")
            replies[index] = reply

    async def _connection(self) -> AbstractConnection:
        held = self._held
        if held is not None:
            if time.monotonic() < self._held_until and held.is_connected:
                return held
            self._held = None  # idle for a while: let the pool check it again
            await self._release(held)
        connection: AbstractConnection = await self.pool.get_connection()
        self._held, self._held_timeout = connection, connection.socket_timeout
        connection.socket_timeout = None  # the round trip's deadline bounds it instead
        return connection

    async def _release(self, connection: AbstractConnection) -> None:
        connection.socket_timeout = self._held_timeout
        await self.pool.release(connection)

    def _evalsha(self, call: list[Waiting]) -> bytes:
        """EVALSHA for these hits: their KEYS (two each), then their ARGV (two each)."""
        hits = len(call)
        return b"".join(
            [
                b"*%d\r\n$7\r\nEVALSHA\r\n$40\r\n%s\r\n" % (3 + 4 * hits, self.sha),
                _bulk(b"%d" % (2 * hits)),
                *[keys for keys, _, _ in call],
                *[args for _, args, _ in call],
            ]
        )


async def _exchange(connection: AbstractConnection, commands: list[bytes]) -> list[Any]:
    """Send the commands in one write; their replies, None for a script Redis does not have."""
    await connection.send_packed_command(b"".join(commands), check_health=False)
    replies: list[Any] = []
    for _ in commands:
        try:
            replies.append(await connection.read_response())
        except NoScriptError:  # an error reply, read in full: the next reply is in step
            replies.append(None)
    return replies


def _answer(waiting: list[Waiting]) -> None:
    """No reply from Redis for these: each request counts in memory."""
    for _, _, future in waiting:
        if not future.done():
            future.set_result(None)


def _flat_replies(calls: list[list[Waiting]], replies: list[Any]) -> Reply:
    """The calls' replies as one flat list, after checking each has its hits' numbers."""
    for call, reply in zip(calls, replies, strict=True):
        if not isinstance(reply, list) or len(reply) != len(call) * REPLY_LENGTH:
            raise ResponseError(f"unexpected reply to the rate limit script: {reply!r}")
    if len(replies) == 1:
        flat: Reply = replies[0]
        return flat
    return [number for reply in replies for number in reply]
