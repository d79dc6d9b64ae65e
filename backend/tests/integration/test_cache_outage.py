"""With Redis unreachable, reads fall through to the database and writes still work."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.cache import CacheManager
from app.main import create_app
from tests.conftest import TransactionalDatabase, free_port, make_settings
from tests.integration.factories import make_coin


@pytest.fixture
async def dead_cache_client(
    engine: AsyncEngine, db_session: AsyncSession, write_key: str
) -> AsyncIterator[httpx.AsyncClient]:
    cache = CacheManager()
    cache.configure(f"redis://127.0.0.1:{free_port()}/0")
    app = create_app(
        make_settings(), database=TransactionalDatabase(engine, db_session), cache=cache
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://test",
        headers={"X-API-Key": write_key},
    ) as http:
        yield http
    await cache.close()


async def test_reads_and_writes_survive_a_dead_redis(
    dead_cache_client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    await make_coin(db_session, symbol="BTC")
    candles = {
        "candles": [
            {
                "timestamp": "2024-01-01T00:00:00Z",
                "open": 1,
                "high": 2,
                "low": 1,
                "close": 2,
                "volume": 1,
            },
            {
                "timestamp": "2024-01-01T01:00:00Z",
                "open": 2,
                "high": 3,
                "low": 2,
                "close": 3,
                "volume": 1,
            },
        ]
    }

    async def scenario() -> None:
        written = await dead_cache_client.post("/api/v1/cryptocurrencies/BTC/ohlcv", json=candles)
        assert written.status_code == 200, written.text
        for _ in range(5):  # repeated reads: the breaker answers "miss" without waiting
            price = await dead_cache_client.get("/api/v1/cryptocurrencies/btc/price")
            assert price.status_code == 200
            assert price.json()["price"] == 3.0
            page = await dead_cache_client.get("/api/v1/cryptocurrencies/BTC/ohlcv")
            assert [c["close"] for c in page.json()["candles"]] == [2.0, 3.0]

    # Bounded so a stall fails the test instead of hanging it (not a timing assertion).
    await asyncio.wait_for(scenario(), timeout=30)
