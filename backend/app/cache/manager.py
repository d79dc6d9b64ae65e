"""The CacheManager: one interface over Redis or an in-process store, that never stalls a request.

The cache is an optimisation, never a dependency: `CacheManager.get` answers `None` (a miss)
and `set`/`delete` do nothing when the backend fails, and callers then read the database. To
keep a Redis outage from stalling requests, every call has an overall deadline on top of the
Redis client's short timeouts, and a circuit breaker stops calling a backend that keeps
failing. In front of Redis, a per-process near copy answers hot keys without a round trip.

Clear the cache from async code with `await cache_manager.flush_all()`; from a shell or
script, where no event loop runs, use `cache_manager.flush_all_sync()`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson

from app.cache.backend import BACKEND_ERRORS, CacheBackend
from app.cache.breaker import BreakerState, CircuitBreaker
from app.cache.encoding import encode_value
from app.cache.invalidation import INVALIDATION_CHANNEL, invalidation_message, listen
from app.cache.keys import CacheTTL, require_namespaced, require_positive_ttl
from app.cache.memory import MemoryBackend
from app.cache.near import NearCache
from app.cache.redis import RedisBackend
from app.cache.single_flight import SingleFlight
from app.cache.types import CacheError, CacheHealth, CacheInfo, CacheStats
from app.config import get_settings

# The package's name, as httpx does: log lines and filters do not depend on the file layout.
logger = logging.getLogger("app.cache")

T = TypeVar("T")

# A flush walks the whole keyspace; it may take longer than a request-path call.
FLUSH_TIMEOUT_SECONDS = 30.0


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
        self._flights = SingleFlight()
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
        require_namespaced((key,))
        near = self.near
        if near is None:
            return await self._read_backend(key)
        copy = near.get(key)
        if copy is not None:
            self.stats.hits += 1
            self.stats.near_hits += 1
            return copy
        # Single flight: concurrent misses of one key share one backend read, so a near
        # copy expiring under load does not send every waiting request to Redis.
        pending = self._flights.in_flight(key)
        if pending is not None:
            return await asyncio.shield(pending)
        self._flights.start(key)
        try:
            value = await self._read_backend(key)
        except BaseException as error:
            self._flights.fail(key, error)
            raise
        self._flights.land(key, value)
        return value

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
        require_namespaced((key,))
        seconds = require_positive_ttl(ttl)
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
        require_namespaced(keys)
        if self.near is not None:
            self.near.drop(keys)
        deleted, removed = await self.guarded(lambda backend: backend.delete(*keys))
        if deleted:
            await self._broadcast(keys)
        return removed or 0

    # ----------------------------------------------------------------- near-copy invalidation

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
            await listen(backend.pubsub, near, self.origin)

    # ----------------------------------------------------------------- administration

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
        url = self._redis_url if self._configured else get_settings().REDIS_URL
        if self.near is not None:
            self.near.clear()
        if url:
            return asyncio.run(_flush_redis_once(url))
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

    # ----------------------------------------------------------------- the breaker's side

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


async def _flush_redis_once(url: str) -> int:
    # Generous timeouts: a person is waiting for this one answer, not a request queue.
    backend = RedisBackend(url, max_connections=1, connect_timeout=2.0, socket_timeout=30.0)
    try:
        return await backend.flush_all()
    except BACKEND_ERRORS as error:
        raise CacheError(f"cache flush failed on redis: {error}") from error
    finally:
        await backend.close()


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


cache_manager = CacheManager()
