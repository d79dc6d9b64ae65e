"""The cache: one interface over Redis or an in-process store, that never stalls a request.

Three kinds of data are cached, each with its own lifetime (`CacheTTL`): latest prices,
recent predictions and cryptocurrency metadata. Every key lives under the `crypto:` namespace
(`cache_key("BTC", "price") == "crypto:BTC:price"`), so this project's keys can be told apart
from anyone else's in a shared Redis and flushed on their own.

The cache is an optimisation, never a dependency: `CacheManager.get` answers `None` (a miss)
and `set`/`delete` do nothing when the backend fails, and callers then read the database. To
keep a Redis outage from stalling requests, the Redis client uses sub-second socket timeouts
and no retries (redis-py's defaults wait 5 s per connect and reply and retry), every call has
an overall deadline, and a circuit breaker stops calling a backend that keeps failing.

Clear the cache from async code with `await cache_manager.flush_all()`; from a shell or
script, where no event loop runs, use `cache_manager.flush_all_sync()`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from decimal import Decimal
from enum import IntEnum, StrEnum
from typing import Any, Protocol, TypeVar

import orjson
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from app import near_cache
from app.near_cache import INVALIDATION_CHANNEL, NearCache, invalidation_message

logger = logging.getLogger(__name__)

NAMESPACE = "crypto"
_NAMESPACE_PREFIX = f"{NAMESPACE}:"

# Errors that mean "the backend is unreachable or misbehaving", as opposed to caller bugs.
BACKEND_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)

Clock = Callable[[], float]
T = TypeVar("T")

# A flush walks the whole keyspace; it may take longer than a request-path call.
FLUSH_TIMEOUT_SECONDS = 30.0


class CacheTTL(IntEnum):
    """Lifetimes in seconds, from the spec: prices go stale fast, metadata rarely changes."""

    PRICE = 300
    PREDICTION = 1800
    METADATA = 3600


def cache_key(*parts: str) -> str:
    """Build a namespaced key: `cache_key("BTC", "price") == "crypto:BTC:price"`.

    Callers upper-case symbols themselves; this function does not guess which part is one.
    """
    if not parts or any(not part for part in parts):
        raise ValueError(f"cache key parts must be non-empty strings, got {parts!r}")
    return _NAMESPACE_PREFIX + ":".join(parts)


def _require_namespaced(keys: tuple[str, ...]) -> None:
    # flush_all only removes `crypto:*`, so a key outside the namespace could never be
    # flushed; refuse it at the door rather than leave it to linger.
    for key in keys:
        if not key.startswith(_NAMESPACE_PREFIX):
            raise ValueError(f"cache key {key!r} is outside the {NAMESPACE!r} namespace")


def _require_positive_ttl(ttl: int) -> int:
    seconds = int(ttl)
    if seconds <= 0:
        raise ValueError(f"cache ttl must be a positive number of seconds, got {ttl!r}")
    return seconds


# --------------------------------------------------------------------------- value types


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


# --------------------------------------------------------------------------- backends


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
        doomed = [key for key in self._entries if key.startswith(_NAMESPACE_PREFIX)]
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


class RedisBackend:
    """Redis through redis.asyncio, tuned to fail fast rather than wait.

    Timeouts are short because a cache reply slower than a database query is worthless;
    retries are off because, behind a circuit breaker, a retry only doubles the wait.
    Options given in the URL's query string override these (redis-py lets the URL win).
    """

    name = "redis"
    SCAN_BATCH = 500

    def __init__(
        self,
        url: str,
        *,
        max_connections: int = 50,
        connect_timeout: float = 0.25,
        socket_timeout: float = 0.5,
    ) -> None:
        # A blocking pool makes a burst wait briefly for a free connection; the default
        # pool raises "Too many connections" instead, which the breaker took for an outage.
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=socket_timeout,
            socket_connect_timeout=connect_timeout,
            socket_timeout=socket_timeout,
            # Zero retries: the one attempt fails within the timeout, then the breaker decides.
            retry=Retry(NoBackoff(), 0),
            retry_on_error=[],
            # The pool already checks a connection before handing it out; a periodic PING
            # on top would only add a round trip.
            health_check_interval=0,
        )
        self._pool = pool
        self._client: Redis = Redis(connection_pool=pool)

    @property
    def pool(self) -> BlockingConnectionPool:
        """The tuned pool, shared by other Redis users (the rate limiter)."""
        return self._pool

    async def get(self, key: str) -> bytes | None:
        value = await self._client.get(key)
        # str only if the URL asked for decode_responses; the interface is bytes either way.
        return value.encode() if isinstance(value, str) else value

    async def set(self, key: str, value: bytes, ttl: int) -> None:
        # int(): redis-py would send an IntEnum such as CacheTTL.PRICE by its name.
        await self._client.set(key, value, ex=int(ttl))

    async def delete(self, *keys: str) -> int:
        if not keys:
            return 0
        # UNLINK frees memory in a background thread, so a large value never blocks Redis.
        removed: int = await self._client.unlink(*keys)
        return removed

    async def flush_all(self) -> int:
        """Remove `crypto:*` keys by SCAN + UNLINK, batch by batch.

        Not FLUSHDB: the database may be shared (job queues, sessions, other services'
        caches) and FLUSHDB would wipe their data too; managed Redis often disables it
        anyway. SCAN walks the keyspace in small steps, so Redis keeps serving meanwhile.
        """
        removed = 0
        cursor: int = 0
        while True:
            cursor, keys = await self._client.scan(
                cursor=cursor, match=f"{_NAMESPACE_PREFIX}*", count=self.SCAN_BATCH
            )
            if keys:
                removed += await self._client.unlink(*keys)
            if cursor == 0:
                return removed

    async def ping(self) -> None:
        await self._client.ping()

    async def info(self) -> CacheInfo:
        # One round trip for three sections (Redis >= 7); redis-py 5's stubs type the extra
        # sections as lists, though the call takes plain names.
        raw: dict[str, Any] = await self._client.info(
            "memory",
            "clients",  # type: ignore[arg-type]
            "server",  # type: ignore[arg-type]
        )
        return CacheInfo(
            used_memory_mb=int(raw.get("used_memory", 0)) / (1024 * 1024),
            connected_clients=int(raw.get("connected_clients", 0)),
            uptime_seconds=int(raw.get("uptime_in_seconds", 0)),
        )

    async def close(self) -> None:
        await self._client.aclose()
        await self._pool.aclose()

    async def publish(self, channel: str, message: bytes) -> None:
        await self._client.publish(channel, message)

    def pubsub(self) -> Any:
        """A PubSub on its own connection; its reads block, so no socket timeout applies."""
        return self._client.pubsub(ignore_subscribe_messages=True)


# --------------------------------------------------------------------------- circuit breaker


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

    @property
    def consecutive_failures(self) -> int:
        return self._failures

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


# --------------------------------------------------------------------------- manager


def _encode_default(value: Any) -> Any:
    # Prices come out of SQL NUMERIC columns as Decimal, which orjson refuses; a string
    # keeps every digit, where a float would round.
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot cache a value of type {type(value).__name__}")


_ORJSON_OPTIONS = orjson.OPT_NAIVE_UTC | orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def encode_value(value: Any) -> bytes:
    """JSON bytes for the cache; naive datetimes are taken as UTC, Decimals become strings."""
    return orjson.dumps(value, default=_encode_default, option=_ORJSON_OPTIONS)


class CacheManager:
    """The one entry point the application uses; see the module docstring for the contract.

    `get`/`set`/`delete` never raise for a backend failure (RedisError, OSError, timeout or
    any other exception from the backend): the failure is counted in `stats.errors`, fed to
    the circuit breaker and logged at WARNING once when the breaker opens. They do raise
    `ValueError`/`TypeError` for caller bugs (a key outside `crypto:`, a TTL <= 0, a value
    orjson cannot encode), which tests catch long before production.
    `flush_all` is an explicit admin action and raises `CacheError` when it fails.
    """

    def __init__(
        self,
        backend: CacheBackend | None = None,
        breaker: CircuitBreaker | None = None,
        *,
        operation_timeout: float = 1.0,
        near_ttl: float = 1.0,
    ) -> None:
        self._backend: CacheBackend = backend if backend is not None else MemoryBackend()
        # In front of Redis only: the memory backend is already in-process.
        self.near_ttl = near_ttl
        self.near: NearCache | None = None
        self.origin = uuid.uuid4().hex
        self._inflight: dict[str, asyncio.Future[bytes | None]] = {}
        self.breaker = breaker if breaker is not None else CircuitBreaker()
        # A ceiling over the socket timeouts, for any path in the client that ignores them.
        self.operation_timeout = operation_timeout
        self.stats = CacheStats()
        self._redis_url: str | None = None
        # False until configure() or an injected backend says where the cache lives.
        self._configured = backend is not None
        self._retired: list[CacheBackend] = []

    # ----------------------------------------------------------------- configuration

    def configure(self, redis_url: str | None, max_connections: int = 50) -> None:
        """Switch backend: empty or None selects the in-memory store, a URL selects Redis.

        No connection is made here (the first call connects), so start-up never waits on
        Redis. The previous backend is closed by `close()`, since closing is async.
        """
        url = (redis_url or "").strip()
        new_backend: CacheBackend = (
            RedisBackend(url, max_connections=max_connections) if url else MemoryBackend()
        )
        self._retired.append(self._backend)
        self._backend = new_backend
        self.near = NearCache(self.near_ttl) if url and self.near_ttl > 0 else None
        self._redis_url = url or None
        self._configured = True
        self.breaker.reset()

    @property
    def backend(self) -> CacheBackend:
        return self._backend

    @property
    def backend_name(self) -> str:
        return self._backend.name

    async def close(self) -> None:
        """Close every backend this manager opened; it then falls back to memory."""
        backends, self._retired = [*self._retired, self._backend], []
        self._backend = MemoryBackend()
        self.near = None
        self._redis_url = None
        self.breaker.reset()
        for backend in backends:
            try:
                await backend.close()
            except Exception as error:  # shutting down: report, and close the rest anyway
                logger.warning("closing cache %s failed: %s", backend.name, _describe(error))

    # ----------------------------------------------------------------- reads and writes

    async def get_bytes(self, key: str) -> bytes | None:
        _require_namespaced((key,))
        near = self.near
        if near is not None:
            copy = near.get(key)
            if copy is not None:
                self.stats.hits += 1
                self.stats.near_hits += 1
                return copy
            # Single flight: concurrent misses of one key share one backend read, so a
            # near copy expiring under load does not send every waiting request to Redis.
            pending = self._inflight.get(key)
            if pending is not None:
                return await asyncio.shield(pending)
            future: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
            self._inflight[key] = future
            try:
                value = await self._read_backend(key)
                future.set_result(value)
            except BaseException as error:
                future.set_exception(error)
                future.exception()  # retrieved here, so an unawaited future logs nothing
                raise
            finally:
                del self._inflight[key]
            return value
        return await self._read_backend(key)

    async def _read_backend(self, key: str) -> bytes | None:
        found, value = await self.guarded(lambda backend: backend.get(key))
        if not found:
            return None
        if value is None:
            self.stats.misses += 1
        else:
            self.stats.hits += 1
            if self.near is not None:
                self.near.put(key, value, self.near_ttl)
        return value

    async def get(self, key: str) -> Any:
        """The decoded JSON value, or None on a miss, an outage or an undecodable entry."""
        raw = await self.get_bytes(key)
        if raw is None:
            return None
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            # Not our format (another writer, or a version change): a miss, not an outage.
            self.stats.errors += 1
            logger.debug("cache entry %s is not valid JSON; treated as a miss", key)
            return None

    async def set_bytes(
        self, key: str, value: bytes, ttl: int | CacheTTL, *, broadcast: bool = False
    ) -> None:
        """Store ``value``; ``broadcast`` tells other processes to drop their near copy
        (for writes that change data, not for filling the cache after a miss)."""
        _require_namespaced((key,))
        seconds = _require_positive_ttl(ttl)
        if self.near is not None:
            self.near.put(key, value, seconds)
        stored, _ = await self.guarded(lambda backend: backend.set(key, value, seconds))
        if stored:
            self.stats.sets += 1
            if broadcast:
                await self._broadcast((key,))

    async def set(self, key: str, value: Any, ttl: int | CacheTTL) -> None:
        await self.set_bytes(key, encode_value(value), ttl)

    async def delete(self, *keys: str) -> int:
        """Number of keys removed; 0 when the backend is unavailable.

        An invalidation lost to an outage leaves the old value until its TTL ends.
        """
        if not keys:
            return 0
        _require_namespaced(keys)
        if self.near is not None:
            self.near.drop(keys)
        deleted, removed = await self.guarded(lambda backend: backend.delete(*keys))
        if deleted:
            await self._broadcast(keys)
        return removed or 0

    async def _broadcast(self, keys: tuple[str, ...]) -> None:
        backend = self._backend
        if isinstance(backend, RedisBackend):
            message = invalidation_message(self.origin, keys)
            await self.guarded(lambda _: backend.publish(INVALIDATION_CHANNEL, message))

    async def listen_for_invalidations(self) -> None:
        """Keep this process's near copies in step with writes made by other processes.

        Runs until cancelled (the app's lifespan owns the task); a no-op without Redis.
        """
        backend, near = self._backend, self.near
        if isinstance(backend, RedisBackend) and near is not None:
            await near_cache.listen(backend.pubsub, near, self.origin)

    async def flush_all(self) -> int:
        """Delete every `crypto:*` key; return the count. Raises CacheError on failure.

        It bypasses the breaker: an operator asking for a flush should learn the truth.
        """
        if self.near is not None:
            self.near.clear()
        try:
            async with asyncio.timeout(FLUSH_TIMEOUT_SECONDS):
                return await self._backend.flush_all()
        except BACKEND_ERRORS as error:
            raise CacheError(f"cache flush failed on {self.backend_name}: {error}") from error

    def flush_all_sync(self) -> int:
        """`flush_all` for a shell or script with no running event loop.

        Uses the configured Redis URL, or `REDIS_URL` from the settings if this process never
        configured the cache, so `cache_manager.flush_all_sync()` in a fresh shell clears the
        real cache. A fresh client is used because redis.asyncio connections belong to the
        loop that opened them.
        """
        url = self._redis_url if self._configured else self._settings_redis_url()
        if self.near is not None:
            self.near.clear()
        if url:
            return asyncio.run(self._flush_redis_once(url))
        if isinstance(self._backend, MemoryBackend):
            return asyncio.run(self._backend.flush_all())
        raise CacheError("this backend can only be flushed with `await cache_manager.flush_all()`")

    async def health(self) -> CacheHealth:
        """Probe the backend now (bypassing the breaker) and report what was found.

        A real PING under the short timeouts, so an outage shows within about a second;
        its outcome is fed to the breaker, so a good probe also ends an open period.
        """
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.operation_timeout):
                await self._backend.ping()
        except Exception as error:
            self._on_failure(error)
            return self._health(False, started, error=_describe(error))
        latency_ms = (time.perf_counter() - started) * 1000
        self._on_success()
        try:
            async with asyncio.timeout(self.operation_timeout):
                info = await self._backend.info()
        except Exception as error:
            return self._health(True, started, latency_ms, error=f"info: {_describe(error)}")
        return self._health(True, started, latency_ms, info=info)

    # ----------------------------------------------------------------- internals

    async def guarded(self, call: Callable[[CacheBackend], Awaitable[T]]) -> tuple[bool, T | None]:
        """Run one backend call under the breaker and deadline: (succeeded, result).

        Public so that other users of the same Redis (the rate limiter) share the breaker:
        one outage, one decision, no request waiting on a dead server twice.
        """
        if not self.breaker.allow_request():
            self.stats.short_circuits += 1
            return False, None
        try:
            async with asyncio.timeout(self.operation_timeout):
                result = await call(self._backend)
        except asyncio.CancelledError:
            # The caller went away (client disconnect, shutdown): no verdict on the backend.
            self.breaker.release_probe()
            raise
        except Exception as error:
            self._on_failure(error)
            return False, None
        self._on_success()
        return True, result

    def _on_failure(self, error: Exception) -> None:
        self.stats.errors += 1
        first_opening = self.breaker.state is BreakerState.CLOSED
        if not self.breaker.record_failure():
            logger.debug("cache %s call failed: %s", self.backend_name, _describe(error))
        elif first_opening:
            # One line per outage, not one per request.
            logger.warning(
                "cache %s unavailable (%s); serving from the database, retrying in %.1f s",
                self.backend_name,
                _describe(error),
                self.breaker.cooldown_seconds,
                exc_info=not isinstance(error, BACKEND_ERRORS),
            )
        else:
            logger.debug("cache %s probe failed: %s", self.backend_name, _describe(error))

    def _on_success(self) -> None:
        if self.breaker.state is not BreakerState.CLOSED:
            logger.warning("cache %s available again", self.backend_name)
        self.breaker.record_success()

    def _health(
        self,
        connected: bool,
        started: float,
        latency_ms: float | None = None,
        *,
        info: CacheInfo | None = None,
        error: str | None = None,
    ) -> CacheHealth:
        if latency_ms is None:
            latency_ms = (time.perf_counter() - started) * 1000
        return CacheHealth(
            backend=self.backend_name,
            connected=connected,
            latency_ms=round(latency_ms, 3),
            used_memory_mb=round(info.used_memory_mb, 3) if info else 0.0,
            connected_clients=info.connected_clients if info else 0,
            uptime_seconds=info.uptime_seconds if info else 0,
            breaker=self.breaker.state.value,
            error=error,
        )

    async def _flush_redis_once(self, url: str) -> int:
        # Generous timeouts: a person is waiting for this one answer, not a request queue.
        backend = RedisBackend(url, max_connections=1, connect_timeout=2.0, socket_timeout=30.0)
        try:
            return await backend.flush_all()
        except BACKEND_ERRORS as error:
            raise CacheError(f"cache flush failed on redis: {error}") from error
        finally:
            await backend.close()

    @staticmethod
    def _settings_redis_url() -> str:
        from app.config import get_settings  # late: importing the cache must not load settings

        return get_settings().REDIS_URL


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


cache_manager = CacheManager()
