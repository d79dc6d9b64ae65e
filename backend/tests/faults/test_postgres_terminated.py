"""PostgreSQL terminates every pooled connection: the next requests still succeed.

The pool pre-pings each connection it hands out (``pool_pre_ping``), so a connection the
server has closed is replaced before a request uses it. The cache is emptied after the
termination, so every request below has to reach the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from sqlalchemy import text

from app.cache import CacheManager
from app.cli import upgrade_database
from app.database import Database
from tests.faults.conftest import ThrowawayPostgres
from tests.faults.support import (
    app_client,
    count_pool_events,
    create_write_key,
    hourly_candles,
    seed_coin,
)

POOL_SIZE = 3
DB_NAME = "crypto"
TERMINATION_DEADLINE_S = 10.0


async def test_requests_succeed_after_connections_are_terminated(
    throwaway_postgres: ThrowawayPostgres,
) -> None:
    url = await throwaway_postgres.create_database(DB_NAME)
    await asyncio.to_thread(upgrade_database, url)
    database = Database.from_url(url, pool_size=POOL_SIZE, max_overflow=0)
    cache = CacheManager()  # in-process; emptied below so that nothing is answered from it
    pool = count_pool_events(database)
    candles = hourly_candles(200)
    async with app_client(database, cache, LOG_LEVEL="WARNING") as http:
        key = await create_write_key(database)
        await seed_coin(http, key, candles)
        # Fill the pool: hold every connection at once, then give them back.
        async with contextlib.AsyncExitStack() as stack:
            for _ in range(POOL_SIZE):
                connection = await stack.enter_async_context(database.engine.connect())
                await connection.execute(text("SELECT 1"))
        await cache.flush_all()
        warm = await asyncio.gather(
            *(http.get("/api/v1/cryptocurrencies/BTC/coverage") for _ in range(POOL_SIZE))
        )
        assert [r.status_code for r in warm] == [200] * len(warm)
        pooled = await throwaway_postgres.backend_pids(DB_NAME)
        assert len(pooled) == POOL_SIZE, pooled

        terminated = await throwaway_postgres.terminate_connections(DB_NAME)
        assert terminated == pooled
        await wait_until_gone(throwaway_postgres, terminated)
        await cache.flush_all()
        connects_before = pool.connects

        new_close = 4242.5
        new_candle = hourly_candles(201)[-1] | {"close": new_close, "high": new_close + 1}
        headers = {"X-API-Key": key}
        started = time.monotonic()
        # Concurrent first, so that several dead pooled connections are checked out at once.
        first = await asyncio.gather(
            http.get("/api/v1/cryptocurrencies/BTC/price"),
            http.get("/api/v1/cryptocurrencies/BTC/ohlcv?limit=100"),
            http.get("/api/v1/cryptocurrencies/BTC"),
        )
        written = await http.post(
            "/api/v1/cryptocurrencies/BTC/ohlcv", json={"candles": [new_candle]}, headers=headers
        )
        rest = [
            await http.get("/api/v1/cryptocurrencies/BTC/price"),
            await http.get("/api/v1/cryptocurrencies/BTC/coverage"),
            await http.get("/api/v1/cryptocurrencies/BTC/ohlcv?start=2024-01-01T00:00:00Z"),
            await http.get("/api/v1/cryptocurrencies"),
            await http.get("/health/db"),
        ]
        elapsed = time.monotonic() - started
        responses = [*first, written, *rest]
        assert [r.status_code for r in responses] == [200] * len(responses), [
            (r.request.url.path, r.status_code, r.text[:200]) for r in responses if r.is_error
        ]
        assert first[0].json()["price"] == candles[-1]["close"]
        assert len(first[1].json()["candles"]) == 100
        assert written.json()["inserted"] == 1
        assert rest[0].json()["price"] == new_close  # the write is committed and visible
        assert rest[1].json()["count"] == len(candles) + 1
        assert len(rest[2].json()["candles"]) == len(candles) + 1

        serving = await throwaway_postgres.backend_pids(DB_NAME)
        reconnected = pool.connects - connects_before
        assert serving and not serving & terminated  # new server processes, none of the old
        assert 1 <= reconnected <= POOL_SIZE
    print(
        f"\n[pg terminate] terminated {len(terminated)} pooled connections; the next "
        f"{len(responses)} requests (1 write) all 200 in {elapsed * 1000:.0f} ms, "
        f"{reconnected} new connection(s) opened by the pool"
    )


async def wait_until_gone(server: ThrowawayPostgres, pids: set[int]) -> None:
    """pg_terminate_backend only signals; wait until those processes have exited."""
    deadline = time.monotonic() + TERMINATION_DEADLINE_S
    while await server.backend_pids(DB_NAME) & pids:
        assert time.monotonic() < deadline, "terminated backends still listed"
        await asyncio.sleep(0.02)
