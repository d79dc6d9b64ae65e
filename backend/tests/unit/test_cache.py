"""The cache without a Redis server: the in-memory backend, the breaker and the manager.

Failure paths use a real `RedisBackend` aimed at loopback ports that refuse, reset or never
answer, so what is tested is redis-py's real behaviour under our timeouts, not a mock's.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Awaitable
from datetime import datetime
from decimal import Decimal
from typing import TypeVar

import pytest
import redis.exceptions

from app.cache import (
    BreakerState,
    CacheBackend,
    CacheError,
    CacheInfo,
    CacheManager,
    CacheTTL,
    CircuitBreaker,
    MemoryBackend,
    RedisBackend,
    cache_key,
)

pytestmark = pytest.mark.cache

T = TypeVar("T")

# Far above the 0.25 s connect / 0.5 s read timeouts: only a real stall can reach it.
STALL_BOUND_SECONDS = 5.0


class FakeClock:
    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class CountingBackend:
    """A real backend with a tally of the calls that reach it (not a stand-in for Redis)."""

    def __init__(self, inner: CacheBackend) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls = 0

    async def get(self, key: str) -> bytes | None:
        self.calls += 1
        return await self.inner.get(key)

    async def set(self, key: str, value: bytes, ttl: int) -> None:
        self.calls += 1
        await self.inner.set(key, value, ttl)

    async def delete(self, *keys: str) -> int:
        self.calls += 1
        return await self.inner.delete(*keys)

    async def flush_all(self) -> int:
        return await self.inner.flush_all()

    async def ping(self) -> None:
        await self.inner.ping()

    async def info(self) -> CacheInfo:
        return await self.inner.info()

    async def close(self) -> None:
        await self.inner.close()


class GatedBackend(MemoryBackend):
    """A memory backend whose reads wait for a gate, to hold a call in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.entered = asyncio.Event()

    async def get(self, key: str) -> bytes | None:
        self.entered.set()
        await self.gate.wait()
        return await super().get(key)


def closed_port() -> int:
    """A loopback port nobody listens on: bound to learn a free number, then released."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class Listener:
    """A loopback TCP server that counts connections and then hangs up or stays silent."""

    def __init__(self, answer_never: bool) -> None:
        self.answer_never = answer_never
        self.connections = 0
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/15"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)

    async def stop(self) -> None:
        for writer in self._writers:
            writer.close()
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        if self.answer_never:
            # Read and discard until the client gives up; never reply.
            while await reader.read(4096):
                pass
        writer.close()


@pytest.fixture
async def reset_listener() -> AsyncIterator[Listener]:
    listener = Listener(answer_never=False)
    await listener.start()
    yield listener
    await listener.stop()


@pytest.fixture
async def black_hole() -> AsyncIterator[Listener]:
    listener = Listener(answer_never=True)
    await listener.start()
    yield listener
    await listener.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def managers() -> AsyncIterator[list[CacheManager]]:
    """Managers created in a test are closed afterwards, so no Redis connection leaks."""
    created: list[CacheManager] = []
    yield created
    for manager in created:
        await manager.close()


def redis_manager(
    url: str, clock: FakeClock, managers: list[CacheManager], threshold: int = 2
) -> tuple[CacheManager, CountingBackend]:
    backend = CountingBackend(RedisBackend(url))
    breaker = CircuitBreaker(failure_threshold=threshold, cooldown_seconds=2.0, clock=clock)
    manager = CacheManager(backend, breaker)
    managers.append(manager)
    return manager, backend


async def bounded(awaitable: Awaitable[T]) -> T:
    return await asyncio.wait_for(awaitable, STALL_BOUND_SECONDS)


# --------------------------------------------------------------------------- keys and TTLs


def test_cache_key_namespaces_parts() -> None:
    assert cache_key("BTC", "price") == "crypto:BTC:price"
    assert cache_key("ETH", "prediction", "24h") == "crypto:ETH:prediction:24h"


@pytest.mark.parametrize("parts", [(), ("BTC", ""), ("",)])
def test_cache_key_refuses_empty_parts(parts: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="non-empty"):
        cache_key(*parts)


def test_ttls_match_the_spec() -> None:
    assert (CacheTTL.PRICE, CacheTTL.PREDICTION, CacheTTL.METADATA) == (300, 1800, 3600)


# --------------------------------------------------------------------------- memory backend


async def test_memory_round_trip() -> None:
    backend = MemoryBackend()
    await backend.set("crypto:BTC:price", b"1", 60)
    await backend.set("crypto:ETH:price", b"2", 60)
    assert await backend.get("crypto:BTC:price") == b"1"
    assert await backend.delete("crypto:BTC:price", "crypto:nope") == 1
    assert await backend.get("crypto:BTC:price") is None
    assert await backend.get("crypto:ETH:price") == b"2"


async def test_memory_entries_expire_at_their_ttl(clock: FakeClock) -> None:
    backend = MemoryBackend(clock=clock)
    await backend.set("crypto:BTC:price", b"1", CacheTTL.PRICE)
    clock.advance(CacheTTL.PRICE - 0.001)
    assert await backend.get("crypto:BTC:price") == b"1"
    clock.advance(0.001)
    assert await backend.get("crypto:BTC:price") is None
    assert len(backend) == 0


async def test_memory_overwrite_renews_ttl(clock: FakeClock) -> None:
    backend = MemoryBackend(clock=clock)
    await backend.set("crypto:k", b"old", 10)
    clock.advance(8)
    await backend.set("crypto:k", b"new", 10)
    clock.advance(8)
    assert await backend.get("crypto:k") == b"new"


async def test_memory_evicts_least_recently_used() -> None:
    backend = MemoryBackend(max_entries=3)
    for name in "abc":
        await backend.set(f"crypto:{name}", name.encode(), 60)
    assert await backend.get("crypto:a") == b"a"  # a is now the most recent
    await backend.set("crypto:d", b"d", 60)
    assert len(backend) == 3
    assert await backend.get("crypto:b") is None
    assert [await backend.get(f"crypto:{n}") for n in "acd"] == [b"a", b"c", b"d"]


async def test_memory_flush_drops_only_the_namespace() -> None:
    backend = MemoryBackend()
    await backend.set("crypto:BTC:price", b"1", 60)
    await backend.set("crypto:ETH:meta", b"2", 60)
    await backend.set("sessions:abc", b"keep", 60)
    assert await backend.flush_all() == 2
    assert await backend.get("crypto:BTC:price") is None
    assert await backend.get("sessions:abc") == b"keep"


async def test_memory_info_tracks_stored_bytes_and_uptime(clock: FakeClock) -> None:
    backend = MemoryBackend(clock=clock)
    await backend.set("crypto:k", b"x" * 1024 * 1024, 60)
    clock.advance(42)
    info = await backend.info()
    assert info.used_memory_mb == pytest.approx(1.0, abs=0.001)
    assert (info.connected_clients, info.uptime_seconds) == (1, 42)
    await backend.delete("crypto:k")
    assert (await backend.info()).used_memory_mb == 0


# --------------------------------------------------------------------------- circuit breaker


def test_breaker_opens_after_threshold_consecutive_failures(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=3, cooldown_seconds=2.0, clock=clock)
    assert [breaker.record_failure() for _ in range(2)] == [False, False]
    breaker.record_success()  # a success in between resets the count
    assert [breaker.record_failure() for _ in range(2)] == [False, False]
    # One short of the threshold the breaker is still closed; the third failure opens it.
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow_request() is True
    assert breaker.record_failure() is True
    assert breaker.state is BreakerState.OPEN
    assert breaker.allow_request() is False


def test_breaker_half_open_allows_exactly_one_probe(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=1, cooldown_seconds=2.0, clock=clock)
    breaker.record_failure()
    clock.advance(1.999)
    assert breaker.allow_request() is False
    clock.advance(0.001)
    assert breaker.allow_request() is True
    assert breaker.state is BreakerState.HALF_OPEN
    assert [breaker.allow_request() for _ in range(5)] == [False] * 5


def test_breaker_probe_success_closes(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=1, cooldown_seconds=2.0, clock=clock)
    breaker.record_failure()
    clock.advance(2)
    assert breaker.allow_request()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert all(breaker.allow_request() for _ in range(3))


def test_breaker_probe_failure_reopens_for_a_full_cooldown(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=3, cooldown_seconds=2.0, clock=clock)
    for _ in range(3):
        breaker.record_failure()
    clock.advance(2)
    assert breaker.allow_request()
    assert breaker.record_failure() is True  # one probe failure suffices, below threshold
    assert breaker.state is BreakerState.OPEN
    clock.advance(1.5)
    assert breaker.allow_request() is False
    clock.advance(0.5)
    assert breaker.allow_request() is True


def test_breaker_released_probe_lets_the_next_caller_probe(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=1, cooldown_seconds=2.0, clock=clock)
    breaker.record_failure()
    clock.advance(2)
    assert breaker.allow_request()
    breaker.release_probe()
    assert breaker.state is BreakerState.OPEN
    assert breaker.allow_request() is True
    assert breaker.allow_request() is False


def test_breaker_lost_probe_does_not_wedge_it(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=1, cooldown_seconds=2.0, clock=clock)
    breaker.record_failure()
    clock.advance(2)
    assert breaker.allow_request()  # this probe never reports back
    clock.advance(1)
    assert breaker.allow_request() is False
    clock.advance(1)
    assert breaker.allow_request() is True


@pytest.mark.parametrize(("threshold", "cooldown"), [(0, 1.0), (1, -1.0)])
def test_breaker_refuses_nonsense_settings(threshold: int, cooldown: float) -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(failure_threshold=threshold, cooldown_seconds=cooldown)


# --------------------------------------------------------------------------- manager, memory


async def test_manager_round_trips_json_values() -> None:
    manager = CacheManager(MemoryBackend())
    key = cache_key("BTC", "prediction")
    value = {
        "symbol": "BTC",
        "at": datetime(2024, 1, 2, 3, 4, 5),
        "price": Decimal("43210.123456789"),
        "horizons": [1, 7],
    }
    await manager.set(key, value, CacheTTL.PREDICTION)
    assert await manager.get(key) == {
        "symbol": "BTC",
        "at": "2024-01-02T03:04:05+00:00",
        "price": "43210.123456789",
        "horizons": [1, 7],
    }
    assert await manager.delete(key) == 1
    assert await manager.get(key) is None


async def test_manager_counts_hits_misses_and_sets() -> None:
    manager = CacheManager(MemoryBackend())
    assert manager.stats.hit_ratio == 0.0
    await manager.set_bytes(cache_key("BTC", "price"), b"1", CacheTTL.PRICE)
    for _ in range(3):
        assert await manager.get_bytes(cache_key("BTC", "price")) == b"1"
    assert await manager.get_bytes(cache_key("ETH", "price")) is None
    assert manager.stats.as_dict() == {
        "hits": 3,
        "misses": 1,
        "errors": 0,
        "sets": 1,
        "short_circuits": 0,
        "near_hits": 0,
        "hit_ratio": 0.75,
    }
    manager.stats.reset()
    assert manager.stats.hits == manager.stats.sets == 0


async def test_manager_ttl_expiry_through_the_manager(clock: FakeClock) -> None:
    manager = CacheManager(MemoryBackend(clock=clock))
    await manager.set(cache_key("BTC", "meta"), {"name": "Bitcoin"}, CacheTTL.METADATA)
    clock.advance(CacheTTL.METADATA - 1)
    assert await manager.get(cache_key("BTC", "meta")) == {"name": "Bitcoin"}
    clock.advance(1)
    assert await manager.get(cache_key("BTC", "meta")) is None


async def test_manager_refuses_caller_bugs() -> None:
    manager = CacheManager(MemoryBackend())
    with pytest.raises(ValueError, match="namespace"):
        await manager.set("BTC:price", 1, CacheTTL.PRICE)
    with pytest.raises(ValueError, match="namespace"):
        await manager.get("BTC:price")
    with pytest.raises(ValueError, match="ttl"):
        await manager.set(cache_key("BTC", "price"), 1, 0)
    with pytest.raises(TypeError):
        await manager.set(cache_key("BTC", "price"), object(), CacheTTL.PRICE)


async def test_manager_treats_undecodable_entry_as_miss() -> None:
    backend = MemoryBackend()
    await backend.set("crypto:BTC:price", b"\xff not json", 60)
    manager = CacheManager(backend)
    assert await manager.get("crypto:BTC:price") is None
    assert manager.stats.errors == 1
    assert manager.breaker.state is BreakerState.CLOSED  # bad data is not an outage


async def test_manager_flush_all_on_memory() -> None:
    manager = CacheManager(MemoryBackend())
    await manager.set(cache_key("BTC", "price"), 1, CacheTTL.PRICE)
    await manager.set(cache_key("ETH", "price"), 2, CacheTTL.PRICE)
    assert await manager.flush_all() == 2
    assert await manager.get(cache_key("BTC", "price")) is None


async def test_flush_all_sync_runs_without_a_loop() -> None:
    manager = CacheManager()
    manager.configure(None)
    await manager.set(cache_key("BTC", "price"), 1, CacheTTL.PRICE)
    # In its own thread, as from a shell: no event loop is running there.
    assert await asyncio.to_thread(manager.flush_all_sync) == 1
    assert await manager.get(cache_key("BTC", "price")) is None


async def test_memory_health_reports_connected() -> None:
    manager = CacheManager(MemoryBackend())
    health = await manager.health()
    assert (health.backend, health.connected, health.error) == ("memory", True, None)
    assert health.connected_clients == 1
    assert health.as_dict()["breaker"] == "closed"


async def test_successful_health_probe_closes_an_open_breaker(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=1, cooldown_seconds=60, clock=clock)
    manager = CacheManager(MemoryBackend(), breaker)
    breaker.record_failure()
    assert await manager.get(cache_key("BTC", "price")) is None
    assert manager.stats.short_circuits == 1
    assert (await manager.health()).connected
    assert breaker.state is BreakerState.CLOSED


async def test_configure_picks_backend_and_close_returns_to_memory(
    managers: list[CacheManager],
) -> None:
    manager = CacheManager()
    managers.append(manager)
    assert manager.backend_name == "memory"
    manager.configure(f"redis://127.0.0.1:{closed_port()}/15", max_connections=5)
    assert manager.backend_name == "redis"  # nothing connected yet: start-up never waits
    manager.configure("")
    assert manager.backend_name == "memory"
    await manager.close()
    assert manager.backend_name == "memory"
    with pytest.raises(ValueError):
        manager.configure("http://127.0.0.1:6379/0")


async def test_cancelled_probe_does_not_wedge_the_breaker(clock: FakeClock) -> None:
    backend = GatedBackend()
    breaker = CircuitBreaker(failure_threshold=1, cooldown_seconds=2.0, clock=clock)
    manager = CacheManager(backend, breaker)
    breaker.record_failure()
    clock.advance(2)
    probe = asyncio.create_task(manager.get(cache_key("BTC", "price")))
    await bounded(backend.entered.wait())
    assert breaker.state is BreakerState.HALF_OPEN
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    assert breaker.allow_request() is True  # the next caller may probe at once


# --------------------------------------------------------------------------- manager, outages


async def test_refused_port_gives_misses_then_fails_fast(
    clock: FakeClock, managers: list[CacheManager]
) -> None:
    manager, backend = redis_manager(f"redis://127.0.0.1:{closed_port()}/15", clock, managers)
    key = cache_key("BTC", "price")
    for _ in range(2):
        assert await bounded(manager.get(key)) is None
    assert manager.stats.errors == 2
    assert manager.breaker.state is BreakerState.OPEN
    reached = backend.calls
    for _ in range(20):
        assert await bounded(manager.get(key)) is None
    await bounded(manager.set(key, 1, CacheTTL.PRICE))
    assert await bounded(manager.delete(key)) == 0
    assert backend.calls == reached  # the open breaker kept every call off the network
    assert manager.stats.short_circuits == 22
    assert (manager.stats.hits, manager.stats.misses, manager.stats.sets) == (0, 0, 0)

    clock.advance(2)
    assert await bounded(manager.get(key)) is None  # the single probe, which fails
    assert backend.calls == reached + 1
    assert manager.breaker.state is BreakerState.OPEN


async def test_open_breaker_opens_no_connections(
    reset_listener: Listener, clock: FakeClock, managers: list[CacheManager]
) -> None:
    manager, _ = redis_manager(reset_listener.url, clock, managers)
    key = cache_key("BTC", "price")
    for _ in range(2):
        assert await bounded(manager.get(key)) is None
    assert manager.breaker.state is BreakerState.OPEN
    seen = reset_listener.connections
    assert seen >= 1
    for _ in range(50):
        assert await bounded(manager.get(key)) is None
    await asyncio.sleep(0.05)  # give any stray connection attempt time to land
    assert reset_listener.connections == seen


async def test_outage_is_logged_once_per_opening(
    clock: FakeClock, managers: list[CacheManager], caplog: pytest.LogCaptureFixture
) -> None:
    manager, _ = redis_manager(f"redis://127.0.0.1:{closed_port()}/15", clock, managers)
    key = cache_key("BTC", "price")
    with caplog.at_level(logging.DEBUG, logger="app.cache"):
        for _ in range(10):
            await bounded(manager.get(key))
        clock.advance(2)
        for _ in range(10):  # includes a failed probe: a re-opening, not a new outage
            await bounded(manager.get(key))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "unavailable" in warnings[0].getMessage()


async def test_black_hole_reads_are_bounded(
    black_hole: Listener, clock: FakeClock, managers: list[CacheManager]
) -> None:
    manager, backend = redis_manager(black_hole.url, clock, managers)
    key = cache_key("BTC", "price")
    assert await bounded(manager.get(key)) is None
    await bounded(manager.set(key, 1, CacheTTL.PRICE))
    assert manager.stats.errors == 2
    assert manager.breaker.state is BreakerState.OPEN
    assert await bounded(manager.get(key)) is None
    assert backend.calls == 2
    health = await bounded(manager.health())
    assert health.connected is False and health.error


async def test_redis_backend_gives_up_on_its_own(black_hole: Listener) -> None:
    # Without the manager's deadline: the client's own timeouts, with no retries, must end
    # the call. redis-py's defaults would still be waiting when the bound expires, and
    # wait_for's builtin TimeoutError would not match redis' own TimeoutError below.
    backend = RedisBackend(black_hole.url)
    try:
        with pytest.raises(redis.exceptions.TimeoutError):
            await bounded(backend.get(cache_key("BTC", "price")))
        assert black_hole.connections == 1  # one attempt, no retry
    finally:
        await backend.close()


async def test_flush_all_raises_when_backend_is_down(managers: list[CacheManager]) -> None:
    manager = CacheManager(RedisBackend(f"redis://127.0.0.1:{closed_port()}/15"))
    managers.append(manager)
    with pytest.raises(CacheError, match="flush failed"):
        await bounded(manager.flush_all())


async def test_health_reports_refused_port(managers: list[CacheManager]) -> None:
    manager = CacheManager(RedisBackend(f"redis://127.0.0.1:{closed_port()}/15"))
    managers.append(manager)
    health = await bounded(manager.health())
    assert health.connected is False
    assert health.error is not None and "ConnectionError" in health.error
