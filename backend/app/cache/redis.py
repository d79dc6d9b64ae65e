"""The Redis backend, tuned so that an outage costs a request well under a second.

redis-py's defaults wait 5 s per connect and per reply and then retry; a cache reply slower
than a database query is worthless, so this client uses sub-second socket timeouts and no
retries, and leaves the decision to stop calling a dead server to the circuit breaker.
It also carries the pub/sub calls the near cache's invalidations travel on.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from app.cache.keys import NAMESPACE_PREFIX
from app.cache.types import CacheInfo


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
                cursor=cursor, match=f"{NAMESPACE_PREFIX}*", count=self.SCAN_BATCH
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
