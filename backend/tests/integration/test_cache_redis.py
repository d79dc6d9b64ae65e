"""The cache against real Redis servers.

Tests marked `shared` use the server named by TEST_REDIS_URL (CI sets
redis://127.0.0.1:6379/15) and are skipped without it; they delete every `crypto:*` key in
that database, so never point it at a database whose cache you want to keep. The outage tests
start their own throwaway `redis-server` so they can kill, freeze and restart it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest
from redis.asyncio import Redis

from app.cache import (
    BreakerState,
    CacheManager,
    CacheTTL,
    CircuitBreaker,
    RedisBackend,
    cache_key,
)

pytestmark = pytest.mark.cache

T = TypeVar("T")
STALL_BOUND_SECONDS = 5.0
REDIS_SERVER = shutil.which("redis-server")
needs_redis_server = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server not on PATH")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def state_of(breaker: CircuitBreaker) -> BreakerState:
    # A call, not an attribute, so type checkers do not carry one assert's narrowing on.
    return breaker.state


async def bounded(awaitable: Awaitable[T], seconds: float = STALL_BOUND_SECONDS) -> T:
    return await asyncio.wait_for(awaitable, seconds)


# --------------------------------------------------------------------------- shared server


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("TEST_REDIS_URL", "")
    if not url:
        pytest.skip("TEST_REDIS_URL is not set (e.g. redis://127.0.0.1:6379/15)")
    return url


@pytest.fixture
async def plain(redis_url: str) -> AsyncIterator[Redis]:
    """A default redis-py client, to check what the cache really stored."""
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def manager(redis_url: str) -> AsyncIterator[CacheManager]:
    cache = CacheManager()
    cache.configure(redis_url, max_connections=5)
    yield cache
    await cache.close()


@pytest.fixture
def run_id() -> str:
    """Keeps keys of concurrent test runs apart."""
    return uuid.uuid4().hex[:12].upper()


async def test_redis_backend_round_trip(redis_url: str, run_id: str) -> None:
    backend = RedisBackend(redis_url)
    key = cache_key(run_id, "price")
    try:
        assert await backend.get(key) is None
        await backend.set(key, b"42", CacheTTL.PRICE)
        assert await backend.get(key) == b"42"
        assert await backend.delete(key, cache_key(run_id, "absent")) == 1
        assert await backend.get(key) is None
    finally:
        await backend.close()


async def test_manager_round_trip_and_stats(manager: CacheManager, run_id: str) -> None:
    key = cache_key(run_id, "prediction")
    assert manager.backend_name == "redis"
    assert await manager.get(key) is None
    await manager.set(key, {"symbol": run_id, "price": 1.5}, CacheTTL.PREDICTION)
    assert await manager.get(key) == {"symbol": run_id, "price": 1.5}
    assert await manager.delete(key) == 1
    stats = manager.stats
    assert (stats.hits, stats.misses, stats.sets, stats.errors) == (1, 1, 1, 0)
    assert stats.hit_ratio == 0.5


@pytest.mark.parametrize("ttl", list(CacheTTL))
async def test_ttl_is_set_on_the_key(
    manager: CacheManager, plain: Redis, run_id: str, ttl: CacheTTL
) -> None:
    key = cache_key(run_id, ttl.name.lower())
    await manager.set(key, 1, ttl)
    remaining = await plain.ttl(key)
    await plain.delete(key)
    assert 0 < remaining <= ttl


async def test_flush_all_spares_other_namespaces(
    manager: CacheManager, plain: Redis, run_id: str
) -> None:
    # More keys than one SCAN batch, so the cursor loop and batching are exercised.
    keys = [cache_key(run_id, str(n)) for n in range(1_200)]
    await plain.mset(dict.fromkeys(keys, b"1"))
    other = f"othernamespace:{run_id}"
    await plain.set(other, b"keep", ex=60)
    try:
        removed = await manager.flush_all()
        assert removed >= len(keys)
        assert await plain.exists(*keys) == 0
        assert await plain.get(other) == b"keep"
    finally:
        await plain.delete(other)


async def test_flush_all_sync_uses_a_fresh_client(
    manager: CacheManager, plain: Redis, run_id: str
) -> None:
    key = cache_key(run_id, "price")
    await manager.set(key, 1, CacheTTL.PRICE)
    # From a thread with no running loop, as a shell would call it.
    assert await asyncio.to_thread(manager.flush_all_sync) >= 1
    assert await plain.exists(key) == 0
    assert await manager.get(key) is None  # the manager's own client still works


async def test_info_and_health_report_the_server(manager: CacheManager) -> None:
    info = await manager.backend.info()
    assert info.uptime_seconds > 0
    assert info.connected_clients >= 1
    assert info.used_memory_mb > 0
    health = await manager.health()
    assert health.connected is True
    assert health.latency_ms > 0
    assert health.error is None
    assert health.connected_clients >= 1 and health.uptime_seconds > 0


# --------------------------------------------------------------------------- throwaway server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class ThrowawayRedis:
    """A redis-server of our own on a fixed port, to kill, freeze and restart at will."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/15"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert REDIS_SERVER is not None
        command = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no"]
        self._process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while not answers_ping(self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)

    def kill(self) -> None:
        process = self._require()
        process.kill()
        process.wait(timeout=10)

    def freeze(self) -> None:
        self._require().send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self._require().send_signal(signal.SIGCONT)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGCONT)  # a frozen server cannot act on SIGTERM
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def _require(self) -> subprocess.Popen[bytes]:
        assert self._process is not None, "server not running"
        return self._process


@pytest.fixture
def throwaway() -> Iterator[ThrowawayRedis]:
    server = ThrowawayRedis(free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def read_until_stopped(
    manager: CacheManager, key: str, stop: asyncio.Event, results: list[Any]
) -> None:
    while not stop.is_set():
        results.append(await manager.get(key))
        await asyncio.sleep(0.005)


@needs_redis_server
async def test_server_killed_during_reads_then_restarted(throwaway: ThrowawayRedis) -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=2, cooldown_seconds=1.0, clock=clock)
    manager = CacheManager(RedisBackend(throwaway.url), breaker)
    key = cache_key("OUTAGE", "price")
    value = {"price": 1.0}
    try:
        await manager.set(key, value, CacheTTL.PRICE)
        stop, results = asyncio.Event(), list[Any]()
        reader = asyncio.create_task(read_until_stopped(manager, key, stop, results))
        await bounded(_wait_for(lambda: results.count(value) >= 3))
        throwaway.kill()
        await bounded(_wait_for(lambda: results[-3:] == [None] * 3))
        stop.set()
        await bounded(reader)  # re-raises anything a read raised; none may
        assert results[0] == value and results[-1] is None
        assert manager.stats.errors >= 1
        assert state_of(breaker) is BreakerState.OPEN

        health = await bounded(manager.health(), 2.0)
        assert health.connected is False and health.error

        throwaway.start()  # same port, empty dataset (no persistence)
        async with Redis.from_url(throwaway.url) as direct:
            await direct.set(key, b'{"price":2.0}', ex=60)
        refused = manager.stats.short_circuits
        assert await manager.get(key) is None  # still cooling down: no call made
        assert manager.stats.short_circuits == refused + 1
        clock.advance(1.0)
        assert await bounded(manager.get(key)) == {"price": 2.0}  # the probe succeeds
        assert state_of(breaker) is BreakerState.CLOSED
        assert await bounded(manager.get(key)) == {"price": 2.0}
    finally:
        await manager.close()


@needs_redis_server
async def test_health_recovers_without_waiting_for_cooldown(throwaway: ThrowawayRedis) -> None:
    breaker = CircuitBreaker(failure_threshold=1, cooldown_seconds=60.0)
    manager = CacheManager(RedisBackend(throwaway.url), breaker)
    try:
        throwaway.kill()
        assert (await bounded(manager.health(), 2.0)).connected is False
        assert state_of(breaker) is BreakerState.OPEN
        throwaway.start()
        health = await bounded(manager.health(), 2.0)
        assert health.connected is True and health.uptime_seconds >= 0
        assert state_of(breaker) is BreakerState.CLOSED
    finally:
        await manager.close()


@needs_redis_server
async def test_frozen_server_does_not_stall_reads(throwaway: ThrowawayRedis) -> None:
    # SIGSTOP leaves the port accepting (the kernel completes the handshake) but nothing
    # answers: the failure mode in which redis-py's defaults wait longest.
    manager = CacheManager(RedisBackend(throwaway.url))
    key = cache_key("FROZEN", "price")
    try:
        await manager.set(key, 1, CacheTTL.PRICE)
        assert await manager.get(key) == 1
        throwaway.freeze()
        for _ in range(5):
            assert await bounded(manager.get(key)) is None
        assert state_of(manager.breaker) is BreakerState.OPEN
        health = await bounded(manager.health(), 2.0)
        assert health.connected is False
        throwaway.thaw()
        assert (await bounded(manager.health(), 2.0)).connected is True
        assert await bounded(manager.get(key)) == 1
    finally:
        await manager.close()


async def _wait_for(condition: Callable[[], bool]) -> None:
    # Polls state another task updates; the caller bounds the wait.
    while True:
        if condition():
            return
        await asyncio.sleep(0.01)


async def test_near_copies_follow_writes_from_another_process(redis_url: str, run_id: str) -> None:
    """Two managers stand for two API processes sharing one Redis."""
    reader, writer = CacheManager(near_ttl=30), CacheManager(near_ttl=30)
    reader.configure(redis_url)
    writer.configure(redis_url)
    listener = asyncio.create_task(reader.listen_for_invalidations())
    key = cache_key(run_id, "price")
    try:
        await writer.set_bytes(key, b"old", CacheTTL.PRICE)
        assert await reader.get_bytes(key) == b"old"
        assert await reader.get_bytes(key) == b"old"
        assert reader.stats.near_hits == 1  # the second read never left the process

        async def reader_sees(value: bytes) -> None:
            for _ in range(10_000):
                if await reader.get_bytes(key) == value:
                    return
                await asyncio.sleep(0.01)

        # The listener subscribes asynchronously; repeat the write until it is heard.
        async def write_until_seen() -> None:
            while True:
                await writer.set_bytes(key, b"new", CacheTTL.PRICE, broadcast=True)
                try:
                    await asyncio.wait_for(reader_sees(b"new"), 0.5)
                    return
                except TimeoutError:
                    continue

        await asyncio.wait_for(write_until_seen(), 10)
        await writer.delete(key)

        async def reader_misses() -> None:
            for _ in range(10_000):
                if await reader.get_bytes(key) is None:
                    return
                await asyncio.sleep(0.01)

        await asyncio.wait_for(reader_misses(), 10)
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
        await reader.close()
        await writer.close()
