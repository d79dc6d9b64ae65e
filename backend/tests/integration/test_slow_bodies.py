"""A client that sends its body slowly holds no database connection, and not for ever.

`POST .../ohlcv` looked the coin up before reading the body, so 32 uploads trickling a byte
every 2 s held the pool and every read answered 503. The body is now read first, whole, with a
time limit (REQUEST_BODY_TIMEOUT_S, 408 past it). These run the app on a real pool.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest

from app.cache import CacheManager
from app.database import Database
from app.main import create_app
from tests.conftest import make_settings
from tests.integration.live import live_database, make_live_coin, make_live_key

__all__ = ["live_database"]  # the fixture, imported for pytest to find

CANDLES = [
    {
        "timestamp": f"2024-01-01T{hour:02d}:00:00Z",
        "open": 10,
        "high": 11,
        "low": 9,
        "close": 10,
        "volume": 1,
    }
    for hour in range(6)
]


def _client(
    database: Database, cache: CacheManager, key: str, **settings: object
) -> httpx.AsyncClient:
    app = create_app(make_settings(**settings), database=database, cache=cache)
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://test",
        headers={"X-API-Key": key, "Content-Type": "application/json"},
    )


@pytest.fixture
async def key(live_database: Database) -> str:
    return await make_live_key(live_database)


async def test_a_slow_upload_holds_no_connection_while_its_body_arrives(
    live_database: Database, cache: CacheManager, key: str
) -> None:
    _id, symbol = await make_live_coin(live_database)
    body = orjson.dumps(CANDLES)
    pool_while_sending: list[int] = []

    async def trickle() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 64):
            await asyncio.sleep(0.01)
            pool_while_sending.append(live_database.engine.pool.checkedout())  # type: ignore[attr-defined]
            yield body[start : start + 64]

    async with _client(live_database, cache, key) as http:
        response = await http.post(
            f"/api/v1/cryptocurrencies/{symbol}/ohlcv",
            content=trickle(),
            headers={"Content-Length": str(len(body))},  # declared: no buffering on the way
        )
    assert response.status_code == 200, response.text
    assert response.json()["inserted"] == len(CANDLES)
    assert len(pool_while_sending) > 3
    assert set(pool_while_sending) == {0}


async def test_a_body_that_stalls_is_408_and_writes_nothing(
    live_database: Database, cache: CacheManager, key: str
) -> None:
    _id, symbol = await make_live_coin(live_database)
    body = orjson.dumps(CANDLES)

    async def stall() -> AsyncIterator[bytes]:
        yield body[:10]
        await asyncio.sleep(5)  # well past the limit below; the server stops waiting first
        yield body[10:]

    async with _client(live_database, cache, key, REQUEST_BODY_TIMEOUT_S=0.2) as http:
        response = await http.post(
            f"/api/v1/cryptocurrencies/{symbol}/ohlcv",
            content=stall(),
            headers={"Content-Length": str(len(body))},
        )
        assert response.status_code == 408, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.headers["connection"] == "close"
        assert "0.2 s" in response.json()["detail"]
        coverage = await http.get(f"/api/v1/cryptocurrencies/{symbol}/coverage")
    assert coverage.json()["count"] == 0
