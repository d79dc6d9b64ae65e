"""The rate limiter's batched Redis script, against real Redis servers (never a mock).

Concurrent hits travel as one ACQUIRE_AND_READ_MANY call: the counts must be exactly those
of one script per hit, in arrival order, shared with the `limits` library's own Redis
storage; and however a batch ends (replies, a flushed script cache, a killed or frozen
server, a cancelled sender, an open breaker), every waiting request gets an answer.

Tests that flush scripts, stop or kill a server use a throwaway redis-server of their own;
the others use TEST_REDIS_URL, under callers of their own.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from limits import RateLimitItem
from limits.storage import RedisStorage
from limits.strategies import SlidingWindowCounterRateLimiter
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.cache import CacheBackend, CacheManager, RedisBackend
from app.main import create_app
from app.middleware import rate_limit_redis
from app.middleware.rate_limit import Decision, LocalCounter, RateLimiter
from app.middleware.rate_limit_redis import (
    ACQUIRE_AND_READ,
    ACQUIRE_AND_READ_MANY,
    KEY_PREFIX,
    SharedCounter,
    Waiting,
)
from tests.conftest import TransactionalDatabase, free_port, make_settings
from tests.faults.conftest import REDIS_SERVER, ThrowawayRedis

# Far above the two deadlines a request may wait: fails a hang, not a slow machine.
NO_HANG_S = 15.0


def _caller() -> str:
    return f"ip:test-{uuid.uuid4().hex[:12]}"


async def _shared_cache(url: str, operation_timeout: float = 1.0) -> CacheManager:
    cache = CacheManager(operation_timeout=operation_timeout)
    cache.configure(url)
    return cache


def _counter(limiter: RateLimiter) -> SharedCounter:
    backend = limiter.cache.backend
    assert isinstance(backend, RedisBackend)
    return limiter._counter(backend)


def _record_batches(counter: SharedCounter, sizes: list[int]) -> None:
    """Note the size of each batch the sender sends (the call itself is the real one)."""
    send = counter._send

    async def recording(batch: list[Waiting], backend: CacheBackend) -> list[int]:
        sizes.append(len(batch))
        return await send(batch, backend)

    counter._send = recording  # type: ignore[method-assign]


async def _hits(limiter: RateLimiter, hits: list[tuple[RateLimitItem, str]]) -> list[Decision]:
    async with asyncio.timeout(NO_HANG_S):
        return await asyncio.gather(*(limiter.hit(item, caller) for item, caller in hits))


@pytest.fixture
async def shared_url(redis_url: str | None) -> str:
    if redis_url is None:
        pytest.skip("needs TEST_REDIS_URL: the shared count lives in Redis")
    return redis_url


@pytest.fixture
async def caches(shared_url: str) -> AsyncIterator[list[CacheManager]]:
    """Two cache managers on one Redis: two "processes"."""
    made = [await _shared_cache(shared_url) for _ in range(2)]
    yield made
    for cache in made:
        await cache.close()


class OwnRedis:
    """A throwaway redis-server this test may flush, freeze (SIGSTOP) and kill."""

    def __init__(self, server: ThrowawayRedis) -> None:
        self.server = server
        self.url = server.url
        self.frozen = False
        self.killed = False

    def freeze(self) -> None:
        os.kill(self.server.pid, signal.SIGSTOP)
        self.frozen = True

    def kill(self) -> None:
        self.server.kill()  # SIGKILL ends a stopped process too
        self.killed = True

    def release(self) -> None:
        if self.frozen and not self.killed:
            os.kill(self.server.pid, signal.SIGCONT)
        self.server.stop()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not on PATH")
    server = ThrowawayRedis(tmp_path, free_port())
    server.start()
    own = OwnRedis(server)
    try:
        yield own
    finally:
        own.release()


# --------------------------------------------------------------------------- the script


def test_the_batch_script_runs_the_single_script_word_for_word() -> None:
    assert ACQUIRE_AND_READ in ACQUIRE_AND_READ_MANY
    assert ACQUIRE_AND_READ_MANY.startswith("local function acquire_and_read(KEYS, ARGV)\n")


# --------------------------------------------------------------------------- exact counts


async def test_concurrent_hits_on_one_key_allow_exactly_the_limit(
    caches: list[CacheManager],
) -> None:
    limiter = RateLimiter(caches[0], "10/minute", "5/minute")
    sizes: list[int] = []
    _record_batches(_counter(limiter), sizes)
    caller = _caller()
    decisions = await _hits(limiter, [(limiter.reads, caller)] * 25)
    assert [d.allowed for d in decisions] == [True] * 10 + [False] * 15
    assert [d.remaining for d in decisions] == [*range(9, -1, -1)] + [0] * 15
    assert all(d.shared and d.limit == 10 for d in decisions)
    assert all(1 <= d.reset_after <= 60 for d in decisions)
    assert sizes == [25]  # one script call carried them all


async def test_a_batch_bigger_than_one_call_still_counts_in_order(
    caches: list[CacheManager], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rate_limit_redis, "MAX_HITS_PER_CALL", 7)
    limiter = RateLimiter(caches[0], "20/minute", "5/minute")
    sizes: list[int] = []
    _record_batches(_counter(limiter), sizes)
    decisions = await _hits(limiter, [(limiter.reads, _caller())] * 30)
    assert sizes == [30]  # one batch, sent as five calls on one pipeline
    assert [d.remaining for d in decisions] == [*range(19, -1, -1)] + [0] * 10
    assert [d.allowed for d in decisions] == [True] * 20 + [False] * 10


async def test_two_processes_share_one_exact_count(caches: list[CacheManager]) -> None:
    limiters = [RateLimiter(cache, "12/minute", "5/minute") for cache in caches]
    caller = _caller()

    async def both() -> list[Decision]:
        # Interleaved: each process batches its own hits, both on one key.
        return await asyncio.gather(
            *(limiters[i % 2].hit(limiters[i % 2].reads, caller) for i in range(30))
        )

    async with asyncio.timeout(NO_HANG_S):
        decisions = await both()
    allowed = [d for d in decisions if d.allowed]
    assert len(allowed) == 12
    # Every allowed hit saw a different count: 11 left, 10 left, ... 0 left, once each.
    assert sorted(d.remaining for d in allowed) == list(range(12))
    assert all(d.remaining == 0 for d in decisions if not d.allowed)
    assert all(d.shared for d in decisions)


async def test_a_batch_of_several_callers_and_both_limits_counts_each_in_order(
    caches: list[CacheManager],
) -> None:
    limiter = RateLimiter(caches[0], "5/minute", "3/minute")
    sizes: list[int] = []
    _record_batches(_counter(limiter), sizes)
    a, b, c = _caller(), _caller(), _caller()
    reads, writes = limiter.reads, limiter.writes
    plan = {(reads, a): 7, (writes, a): 4, (reads, b): 6, (writes, c): 5, (reads, c): 1}
    hits: list[tuple[RateLimitItem, str]] = []
    for round_ in range(max(plan.values())):  # interleave the groups within the batch
        hits += [group for group, count in plan.items() if round_ < count]
    decisions = await _hits(limiter, hits)
    assert sizes == [len(hits)]
    for (item, caller), count in plan.items():
        mine = [d for (i, c_), d in zip(hits, decisions, strict=True) if (i, c_) == (item, caller)]
        allowed = min(count, item.amount)
        assert [d.allowed for d in mine] == [True] * allowed + [False] * (count - allowed)
        assert [d.remaining for d in mine] == [max(item.amount - n, 0) for n in range(1, count + 1)]
        assert all(d.limit == item.amount for d in mine)


async def test_counts_are_the_ones_the_librarys_own_redis_storage_sees(
    caches: list[CacheManager], shared_url: str
) -> None:
    limiter = RateLimiter(caches[0], "5/minute", "5/minute")
    storage = RedisStorage(shared_url, key_prefix=KEY_PREFIX)
    library = SlidingWindowCounterRateLimiter(storage)
    item, caller = limiter.reads, _caller()
    try:
        ours = await _hits(limiter, [(item, caller)] * 3)
        assert [d.remaining for d in ours] == [4, 3, 2]
        stats = library.get_window_stats(item, caller)
        assert stats.remaining == 2
        # The library takes its reset as the counter key's TTL modulo the window, so right at
        # a window's start it says 0 where 60 is meant: compare the two modulo the window.
        gap = ((stats.reset_time - time.time()) - ours[-1].reset_after) % 60
        assert min(gap, 60 - gap) <= 1
        assert library.hit(item, caller)  # the library counts the fourth
        fifth, sixth = await _hits(limiter, [(item, caller)] * 2)
        assert (fifth.allowed, fifth.remaining) == (True, 0)
        assert not sixth.allowed
        assert not library.hit(item, caller)
        assert not library.test(item, caller)
        assert library.get_window_stats(item, caller).remaining == 0
    finally:
        storage.get_connection().close()


# --------------------------------------------------------------------------- memory


def test_counting_in_memory_matches_the_librarys_strategy_on_one_storage() -> None:
    counter = LocalCounter()
    library = SlidingWindowCounterRateLimiter(counter.storage)
    limiter = RateLimiter(CacheManager(), "4/minute", "4/minute")
    limit = limiter.limit(limiter.reads)
    item, caller = limiter.reads, _caller()
    key = item.key_for(caller)
    first, second = counter.hit(limit, key), counter.hit(limit, key)
    assert [first.remaining, second.remaining] == [3, 2]
    assert not first.shared
    stats = library.get_window_stats(item, caller)
    assert stats.remaining == 2
    assert abs((stats.reset_time - time.time()) - second.reset_after) <= 1
    assert library.hit(item, caller)
    third, fourth = counter.hit(limit, key), counter.hit(limit, key)
    assert (third.allowed, third.remaining, fourth.allowed) == (True, 0, False)
    assert not library.hit(item, caller)


# --------------------------------------------------------------------------- recovery


async def test_a_flushed_script_cache_is_reloaded_and_no_hit_is_lost(
    own_redis: OwnRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rate_limit_redis, "MAX_HITS_PER_CALL", 4)  # the batch below: three calls
    cache = await _shared_cache(own_redis.url)
    admin = Redis.from_url(own_redis.url)
    try:
        limiter = RateLimiter(cache, "8/minute", "8/minute")
        caller = _caller()
        (first,) = await _hits(limiter, [(limiter.reads, caller)])
        assert first.shared and first.remaining == 7
        await admin.script_flush()
        counter = _counter(limiter)
        assert await admin.script_exists(counter.sha.decode()) == [False]
        decisions = await _hits(limiter, [(limiter.reads, caller)] * 9)
        assert all(d.shared for d in decisions)  # answered by Redis, not the fallback
        assert [d.remaining for d in decisions] == [*range(6, -1, -1), 0, 0]
        assert [d.allowed for d in decisions] == [True] * 7 + [False] * 2
        assert cache.stats.errors == 0
        assert await admin.script_exists(counter.sha.decode()) == [True]
    finally:
        await admin.aclose()
        await cache.close()


async def _warm(limiter: RateLimiter) -> None:
    """A first hit: connection open and held, script loaded."""
    (decision,) = await _hits(limiter, [(limiter.reads, _caller())])
    assert decision.shared


async def _answered(
    hits: list[Awaitable[Decision]], within: float = NO_HANG_S
) -> tuple[list[Decision], float]:
    started = time.monotonic()
    async with asyncio.timeout(within):
        decisions = await asyncio.gather(*hits)
    return decisions, time.monotonic() - started


async def _wait_for(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(NO_HANG_S):
        while not condition():  # noqa: ASYNC110 (state the sender task updates)
            await asyncio.sleep(0.005)


async def test_a_redis_killed_mid_batch_answers_every_waiting_request_from_memory(
    own_redis: OwnRedis,
) -> None:
    cache = await _shared_cache(own_redis.url, operation_timeout=0.5)
    try:
        limiter = RateLimiter(cache, "30/minute", "30/minute")
        await _warm(limiter)
        counter, sizes = _counter(limiter), []
        _record_batches(counter, sizes)
        caller = _caller()
        own_redis.freeze()  # the first batch goes out and gets no reply...
        first = [asyncio.ensure_future(limiter.hit(limiter.reads, caller)) for _ in range(20)]
        await _wait_for(lambda: sizes == [len(first)])  # the first batch is on the wire
        # ...the next ones queue up behind it...
        second = [asyncio.ensure_future(limiter.hit(limiter.reads, caller)) for _ in range(20)]
        await asyncio.sleep(0.05)
        assert len(counter._queue) == 20
        own_redis.kill()  # ...and the server dies under both.
        decisions, _ = await _answered([*first, *second])
        assert not any(d.shared for d in decisions)  # all counted in this process
        assert [d.allowed for d in decisions] == [True] * 30 + [False] * 10
        assert [d.remaining for d in decisions][:30] == list(range(29, -1, -1))
    finally:
        await cache.close()


async def test_after_a_redis_restart_the_next_batches_count_in_redis_again(
    own_redis: OwnRedis,
) -> None:
    cache = await _shared_cache(own_redis.url)
    try:
        limiter = RateLimiter(cache, "50/minute", "50/minute")
        await _warm(limiter)  # the sender now holds a connection to the old server
        own_redis.server.kill()
        own_redis.server.start()  # same port, empty, no scripts
        caller = _caller()
        decisions = [await limiter.hit(limiter.reads, caller) for _ in range(4)]
        # The held connection died with the old server: at most that one batch (and none
        # after it) is counted in memory; then a fresh connection reloads the script.
        assert [d.shared for d in decisions[1:]] == [True] * 3
        assert decisions[-1].remaining == 50 - sum(d.shared for d in decisions)
        assert cache.breaker.state == "closed"
    finally:
        await cache.close()


async def test_a_frozen_redis_delays_a_request_by_about_two_deadlines_at_most(
    own_redis: OwnRedis,
) -> None:
    deadline = 0.3
    cache = await _shared_cache(own_redis.url, operation_timeout=deadline)
    try:
        limiter = RateLimiter(cache, "100/minute", "100/minute")
        await _warm(limiter)
        counter, sizes = _counter(limiter), []
        _record_batches(counter, sizes)
        own_redis.freeze()  # connections stay open; nothing is ever answered
        caller = _caller()
        first = [asyncio.ensure_future(limiter.hit(limiter.reads, caller)) for _ in range(5)]
        await _wait_for(lambda: sizes == [len(first)])  # the first batch is on the wire
        second = [asyncio.ensure_future(limiter.hit(limiter.reads, caller)) for _ in range(5)]
        # Generous: the point is that no request waits on a frozen server indefinitely.
        decisions, took = await _answered([*first, *second], within=2 * deadline + 5)
        assert not any(d.shared for d in decisions)
        assert [d.remaining for d in decisions] == list(range(99, 89, -1))
        assert took >= deadline * 0.9  # they did wait for the deadline, not a timer of theirs
    finally:
        await cache.close()


async def test_a_cancelled_sender_answers_every_waiting_request(own_redis: OwnRedis) -> None:
    cache = await _shared_cache(own_redis.url, operation_timeout=30)
    try:
        limiter = RateLimiter(cache, "10/minute", "10/minute")
        await _warm(limiter)
        counter, sizes = _counter(limiter), []
        _record_batches(counter, sizes)
        own_redis.freeze()
        caller = _caller()
        first = [asyncio.ensure_future(limiter.hit(limiter.reads, caller)) for _ in range(3)]
        await _wait_for(lambda: sizes == [len(first)])  # the first batch is on the wire
        second = [asyncio.ensure_future(limiter.hit(limiter.reads, caller)) for _ in range(3)]
        await asyncio.sleep(0)
        sender = counter._sender
        assert sender is not None and not sender.done()
        sender.cancel()  # as at shutdown: in flight and queued requests alike
        decisions, _ = await _answered([*first, *second])
        assert not any(d.shared for d in decisions)
        assert [d.remaining for d in decisions] == list(range(9, 3, -1))
    finally:
        await cache.close()


async def test_a_sender_cancelled_before_it_ran_answers_its_queue(shared_url: str) -> None:
    cache = await _shared_cache(shared_url)
    try:
        limiter = RateLimiter(cache, "10/minute", "10/minute")
        caller = _caller()
        hits = [asyncio.ensure_future(limiter.hit(limiter.reads, caller)) for _ in range(4)]
        await asyncio.sleep(0)  # each hit queued; the sender they started has not run yet
        counter = _counter(limiter)
        assert len(counter._queue) == 4
        sender = counter._sender
        assert sender is not None
        sender.cancel()
        decisions, _ = await _answered(hits)
        assert sender.cancelled()
        assert not any(d.shared for d in decisions)
        # The next hit starts a new sender and is counted in Redis again.
        (after,) = await _hits(limiter, [(limiter.reads, _caller())])
        assert after.shared
    finally:
        await cache.close()


async def test_an_open_breaker_counts_in_memory_without_calling_redis(shared_url: str) -> None:
    cache = await _shared_cache(shared_url)
    try:
        limiter = RateLimiter(cache, "3/minute", "3/minute")
        await _warm(limiter)
        for _ in range(cache.breaker.failure_threshold):
            cache.breaker.record_failure()
        sizes: list[int] = []
        _record_batches(_counter(limiter), sizes)
        decisions = await _hits(limiter, [(limiter.reads, _caller())] * 4)
        assert [(d.allowed, d.shared) for d in decisions] == [(True, False)] * 3 + [(False, False)]
        assert sizes == []
        assert cache.stats.short_circuits == 1  # one refused call for the whole batch
    finally:
        await cache.close()


# --------------------------------------------------------------------------- over HTTP


async def test_two_apps_answer_concurrent_requests_with_exact_headers(
    engine: AsyncEngine, db_session: AsyncSession, caches: list[CacheManager]
) -> None:
    settings = make_settings(RATE_LIMIT_READS="6/minute")
    # One client address of this test's own, for both apps: both count one caller.
    address = (f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.7", 1234)
    clients = []
    for cache in caches:
        app = create_app(settings, database=TransactionalDatabase(engine, db_session), cache=cache)
        transport = httpx.ASGITransport(app=app, client=address)
        clients.append(httpx.AsyncClient(transport=transport, base_url="http://test"))
    try:
        path = "/api/v1/no-such-thing"  # limited like any /api/ path, and no database work
        async with asyncio.timeout(NO_HANG_S):
            answers = await asyncio.gather(*(clients[i % 2].get(path) for i in range(10)))
        statuses = [a.status_code for a in answers]
        assert statuses.count(429) == 4 and statuses.count(404) == 6
        served = [a for a in answers if a.status_code != 429]
        assert sorted(int(a.headers["x-ratelimit-remaining"]) for a in served) == list(range(6))
        for answer in answers:
            assert answer.headers["x-ratelimit-limit"] == "6"
            assert 1 <= int(answer.headers["x-ratelimit-reset"]) <= 60
        for refused in (a for a in answers if a.status_code == 429):
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert refused.headers["retry-after"] == refused.headers["x-ratelimit-reset"]
    finally:
        for client in clients:
            await client.aclose()
