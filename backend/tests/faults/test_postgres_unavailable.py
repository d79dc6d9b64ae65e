"""PostgreSQL refusing new connections while it shuts down (or starts up): 503, not 500.

Between a shutdown request and the server's exit, and again while it starts up or recovers,
PostgreSQL answers a new connection with SQLSTATE 57P03 ("the database system is shutting
down" / "is starting up"). That is the database being unavailable for a moment, so clients
must get the retryable 503 problem document and ``/health/db`` must say 503, as when the port
is closed. A smart shutdown holds that state for as long as one session stays open.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg

from app.cache import CacheManager
from app.cli import upgrade_database
from app.database import Database
from tests.faults.conftest import ThrowawayPostgres
from tests.faults.support import app_client, create_write_key, hourly_candles, seed_coin

DB_NAME = "crypto"
STATE_DEADLINE_S = 20.0


async def refuses_new_connections(server: ThrowawayPostgres) -> bool:
    try:
        connection = await server.connect(DB_NAME)
    except asyncpg.CannotConnectNowError:
        return True
    await connection.close()
    return False


async def test_a_server_shutting_down_answers_503_then_recovers(
    throwaway_postgres: ThrowawayPostgres,
) -> None:
    url = await throwaway_postgres.create_database(DB_NAME)
    await asyncio.to_thread(upgrade_database, url)
    database = Database.from_url(url, pool_size=2, max_overflow=0)
    cache = CacheManager()
    candles = hourly_candles(48)
    paths = ["/health/db", "/api/v1/cryptocurrencies/BTC/price", "/api/v1/cryptocurrencies"]
    async with app_client(database, cache, LOG_LEVEL="WARNING") as http:
        await seed_coin(http, await create_write_key(database), candles)
        await database.engine.dispose()  # no pooled session: every request needs a new one
        await cache.flush_all()

        session = await throwaway_postgres.connect()  # keeps the smart shutdown pending
        try:
            await asyncio.to_thread(throwaway_postgres.stop, "smart", wait=False)
            deadline = time.monotonic() + STATE_DEADLINE_S
            while not await refuses_new_connections(throwaway_postgres):
                assert time.monotonic() < deadline, "server still accepts connections"
                await asyncio.sleep(0.05)
            during = [await http.get(path) for path in paths]
        finally:
            await session.close()  # the last session ends: the server exits
        deadline = time.monotonic() + STATE_DEADLINE_S
        while await asyncio.to_thread(lambda: throwaway_postgres.running):
            assert time.monotonic() < deadline, "server did not finish shutting down"
            await asyncio.sleep(0.05)
        await asyncio.to_thread(throwaway_postgres.start)
        after = [await http.get(path) for path in paths]

    assert [r.status_code for r in during] == [503, 503, 503], [r.text for r in during]
    assert during[0].json()["database"] == "disconnected"
    for problem in during[1:]:
        assert problem.headers["content-type"] == "application/problem+json"
        assert problem.json()["type"].endswith("/database-unavailable")
        assert problem.headers["retry-after"] == "5"
    assert [r.status_code for r in after] == [200, 200, 200], [r.text for r in after]
    assert after[1].json()["price"] == candles[-1]["close"]
    statuses = [r.status_code for r in during], [r.status_code for r in after]
    print(
        f"\n[pg shutting down] new connections refused with 57P03: {len(during)} requests "
        f"answered {statuses[0]}; after the restart {statuses[1]}"
    )
