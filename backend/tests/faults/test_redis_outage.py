"""Redis killed and restarted while clients read: no read fails, health notices, hits resume.

The cache is a throwaway redis-server; the database is PostgreSQL (a database of its own,
created on the server TEST_DATABASE_URL names, and dropped afterwards) or, without that
variable, a SQLite file. Only Redis is killed here.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.cache import CacheManager
from app.cli import upgrade_database
from app.database import Database, create_engine
from tests.conftest import is_sqlite
from tests.faults.conftest import ThrowawayRedis, app_server, cli_env, unique_name
from tests.faults.support import (
    app_client,
    count_pool_events,
    create_write_key,
    hourly_candles,
    poll_until,
    seed_coin,
    wait_until,
)

READERS = 4
HEALTH_DEADLINE_S = 2.0  # the bound: /health/cache says 503 within 2 s of the kill
# A read may wait for at most one cache call (1 s deadline) before it goes to the database.
READ_LATENCY_BOUND_S = 2.0
OUTAGE_READS = 200  # reads answered while Redis is dead, before it is restarted
OUTAGE_DB_READS = 6  # of which at least this many from the database (about 3 s of outage)
RESUME_DEADLINE_S = 10.0  # breaker cooldown (2 s) + near-copy lifetime (1 s), with room


@pytest.fixture
async def read_database_url(tmp_path: Path) -> AsyncIterator[str]:
    shared = os.environ.get("TEST_DATABASE_URL", "")
    if not shared or is_sqlite(shared):
        url = f"sqlite:///{tmp_path / 'reads.db'}"
        await asyncio.to_thread(upgrade_database, url)
        yield url
        return
    # A database of our own on the shared server: committed rows never meet other tests.
    name = unique_name("crypto_faults")
    admin = create_engine(shared, pool_size=1, max_overflow=0)

    async def run(statement: str) -> None:
        async with admin.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(text(statement))

    await run(f'CREATE DATABASE "{name}"')
    try:
        url = make_url(shared).set(database=name).render_as_string(hide_password=False)
        await asyncio.to_thread(upgrade_database, url)
        yield url
    finally:
        await run(f'DROP DATABASE IF EXISTS "{name}"')  # the app's engine is disposed by now
        await admin.dispose()


@dataclass(frozen=True)
class Read:
    path: str
    started: float
    ended: float
    status: int
    correct: bool


def expectations(candles: list[dict[str, Any]]) -> dict[str, Callable[[Any], bool]]:
    last = candles[-1]
    page = [(c["timestamp"], c["close"]) for c in candles[-100:]]
    return {
        "/api/v1/cryptocurrencies/BTC/price": lambda body: (
            body == {"symbol": "BTC", "price": last["close"], "timestamp": last["timestamp"]}
        ),
        "/api/v1/cryptocurrencies/BTC/ohlcv?limit=100": lambda body: (
            [(c["timestamp"], c["close"]) for c in body["candles"]] == page
        ),
        "/api/v1/cryptocurrencies/BTC": lambda body: (
            (body["symbol"], body["name"]) == ("BTC", "Bitcoin")
        ),
    }


async def read_until(
    http: httpx.AsyncClient,
    checks: dict[str, Callable[[Any], bool]],
    stop: asyncio.Event,
    reads: list[Read],
) -> None:
    while not stop.is_set():
        for path, check in checks.items():
            started = time.monotonic()
            response = await http.get(path)
            ended = time.monotonic()
            correct = response.status_code == 200 and check(response.json())
            reads.append(Read(path, started, ended, response.status_code, correct))
            # A request answered from the near cache never suspends in-process; without this
            # yield one reader could hold the event loop until its near copy expires.
            await asyncio.sleep(0)


async def redis_keyspace_hits(url: str) -> int:
    async with Redis.from_url(url, socket_timeout=1) as direct:
        stats = await direct.info("stats")
    return int(stats["keyspace_hits"])


async def test_redis_killed_during_reads_then_restarted(
    throwaway_redis: ThrowawayRedis, read_database_url: str
) -> None:
    database = Database.from_url(read_database_url, pool_size=5, max_overflow=5)
    cache = CacheManager()
    cache.configure(throwaway_redis.url)
    pool = count_pool_events(database)
    candles = hourly_candles(300)
    checks = expectations(candles)
    async with app_client(database, cache, LOG_LEVEL="WARNING") as http:
        await seed_coin(http, await create_write_key(database), candles)
        reads: list[Read] = []
        stop = asyncio.Event()
        readers = [
            asyncio.create_task(read_until(http, checks, stop, reads)) for _ in range(READERS)
        ]
        try:
            # 1. Redis up: reads are answered by Redis (not only by the 1 s near copies).
            await wait_until(
                lambda: cache.stats.hits - cache.stats.near_hits >= 5, 10, "hits from Redis"
            )
            assert await redis_keyspace_hits(throwaway_redis.url) >= 5

            # 2. SIGKILL; /health/cache must answer 503 within 2 s of it.
            errors_before, checkouts_before = cache.stats.errors, pool.checkouts
            killed_at = time.monotonic()
            throwaway_redis.kill()
            health: httpx.Response | None = None
            while health is None or health.status_code != 503:
                health = await http.get("/health/cache")
                assert time.monotonic() - killed_at < HEALTH_DEADLINE_S, "/health/cache still 200"
            time_to_503 = time.monotonic() - killed_at
            assert health.json()["status"] == "unhealthy"
            assert health.json()["connected"] is False

            # 3. Reads go on during the outage, answered from the database (each for a second
            # by this process's near copy, which does not need Redis).
            done_at_kill = len(reads)
            await wait_until(
                lambda: (
                    len(reads) - done_at_kill >= OUTAGE_READS
                    and pool.checkouts - checkouts_before >= OUTAGE_DB_READS
                ),
                30,
                "reads answered by the database during the outage",
            )
            outage_reads = [r for r in reads if r.started > killed_at]
            outage_db_reads = pool.checkouts - checkouts_before
            assert cache.stats.errors > errors_before  # the reads did meet the dead server

            # 4. Restart on the same port (empty: no persistence); Redis answers hits again.
            await asyncio.to_thread(throwaway_redis.start)
            backend_hits_at_restart = cache.stats.hits - cache.stats.near_hits

            async def hits_resumed() -> bool:
                backend_hits = cache.stats.hits - cache.stats.near_hits
                return (
                    backend_hits > backend_hits_at_restart
                    and await redis_keyspace_hits(throwaway_redis.url) > 0
                )

            time_to_hits = await poll_until(hits_resumed, RESUME_DEADLINE_S, "hits after restart")
            async with Redis.from_url(throwaway_redis.url, socket_timeout=1) as direct:
                assert await direct.exists("crypto:BTC:price", "crypto:BTC:meta") == 2
            healthy = await http.get("/health/cache")
            assert healthy.status_code == 200, healthy.text
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*readers), 30)

    failed = [r for r in reads if not r.correct]
    assert failed == [], f"{len(failed)} of {len(reads)} reads failed, first: {failed[:3]}"
    slowest = max(r.ended - r.started for r in outage_reads)
    assert slowest < READ_LATENCY_BOUND_S, f"a read took {slowest:.2f} s during the outage"
    print(
        f"\n[redis outage, in-process, {database.dialect}] reads: {len(reads)} total, "
        f"{len(outage_reads)} during the outage, "
        f"0 failed, {outage_db_reads} answered by the database; /health/cache 503 after "
        f"{time_to_503 * 1000:.0f} ms; slowest outage read {slowest * 1000:.0f} ms; "
        f"Redis hits again {time_to_hits:.2f} s after the restart; "
        f"cache stats {cache.stats.as_dict()}"
    )


OUTAGE_MIN_S = 3.0  # longer than the near copies (1 s) and the breaker's cooldown (2 s)


async def test_redis_killed_under_a_real_server_process(
    throwaway_redis: ThrowawayRedis, read_database_url: str, tmp_path: Path
) -> None:
    """The same outage against ``cryptopredict serve``: real sockets, the app's lifespan
    (its invalidation listener subscribes to the Redis that is killed), a clean exit."""
    candles = hourly_candles(300)
    seeding = Database.from_url(read_database_url, pool_size=2, max_overflow=0)
    async with app_client(seeding, CacheManager(), LOG_LEVEL="WARNING") as http:
        await seed_coin(http, await create_write_key(seeding), candles)
    checks = expectations(candles)
    env = cli_env(DATABASE_URL=read_database_url, REDIS_URL=throwaway_redis.url)
    reads: list[Read] = []
    stop = asyncio.Event()
    with app_server(env, tmp_path) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
            readers = [
                asyncio.create_task(read_until(http, checks, stop, reads)) for _ in range(READERS)
            ]
            try:

                async def redis_answers_hits() -> bool:
                    return await redis_keyspace_hits(throwaway_redis.url) >= 5

                await poll_until(redis_answers_hits, 10, "hits from Redis")
                killed_at = time.monotonic()
                throwaway_redis.kill()
                while (await http.get("/health/cache")).status_code != 503:
                    assert time.monotonic() - killed_at < HEALTH_DEADLINE_S, "/health/cache 200"
                time_to_503 = time.monotonic() - killed_at
                done_at_kill = len(reads)
                await wait_until(
                    lambda: (
                        len(reads) - done_at_kill >= OUTAGE_READS
                        and time.monotonic() - killed_at >= OUTAGE_MIN_S
                    ),
                    30,
                    "reads during the outage",
                )
                await asyncio.to_thread(throwaway_redis.start)

                async def hits_resumed() -> bool:
                    return await redis_keyspace_hits(throwaway_redis.url) > 0

                time_to_hits = await poll_until(hits_resumed, RESUME_DEADLINE_S, "hits again")
                assert (await http.get("/health/cache")).status_code == 200
            finally:
                stop.set()
                await asyncio.wait_for(asyncio.gather(*readers), 30)
        server.process.send_signal(signal.SIGTERM)
        returncode = await asyncio.to_thread(server.process.wait, 20)
        stderr = server.stderr()

    outage_reads = [r for r in reads if r.started > killed_at]
    failed = [r for r in reads if not r.correct]
    assert failed == [], f"{len(failed)} of {len(reads)} reads failed, first: {failed[:3]}"
    slowest = max(r.ended - r.started for r in outage_reads)
    assert slowest < READ_LATENCY_BOUND_S, f"a read took {slowest:.2f} s during the outage"
    assert "Traceback" not in stderr, stderr
    assert "cache redis unavailable" in stderr and "cache redis available again" in stderr
    assert returncode in (0, -signal.SIGTERM), (returncode, stderr)
    print(
        f"\n[redis outage, uvicorn process] reads: {len(reads)} total, {len(outage_reads)} "
        f"during the outage, 0 failed; /health/cache 503 after {time_to_503 * 1000:.0f} ms; "
        f"slowest outage read {slowest * 1000:.0f} ms; Redis hits again "
        f"{time_to_hits:.2f} s after the restart"
    )
