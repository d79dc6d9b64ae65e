"""Helpers shared by the fault tests: candles with known values, an app over real servers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import event

from app.cache import CacheManager
from app.database import Database
from app.main import create_app
from app.services.api_keys import KeyScope, create_key
from tests.conftest import make_settings

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def hourly_candles(count: int, start: datetime = T0) -> list[dict[str, Any]]:
    """``count`` consistent hourly candles; closes are multiples of 0.25 (exact in binary)."""
    candles = []
    for n in range(count):
        close = 100.0 + (n * 7 % 400) * 0.25
        open_ = 100.0 + ((n - 1) * 7 % 400) * 0.25 if n else close
        candles.append(
            {
                "timestamp": (start + timedelta(hours=n)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "open": open_,
                "high": max(open_, close) + 1.0,
                "low": min(open_, close) - 1.0,
                "close": close,
                "volume": 10.0 + n % 13,
            }
        )
    return candles


async def create_write_key(database: Database) -> str:
    async with database.unit_of_work() as session:
        _row, key = await create_key(session, "faults", [KeyScope.WRITE])
    return key


async def seed_coin(
    http: httpx.AsyncClient, key: str, candles: list[dict[str, Any]], symbol: str = "BTC"
) -> None:
    """The coin and its candles, written through the API as a client would."""
    headers = {"X-API-Key": key}
    created = await http.post(
        "/api/v1/cryptocurrencies", json={"symbol": symbol, "name": "Bitcoin"}, headers=headers
    )
    assert created.status_code == 201, created.text
    stored = await http.post(
        f"/api/v1/cryptocurrencies/{symbol}/ohlcv", json={"candles": candles}, headers=headers
    )
    assert stored.status_code == 200, stored.text
    assert stored.json()["inserted"] == len(candles)


@dataclass
class PoolCounters:
    """Counts the engine's pool events, to tell which requests reached the database."""

    checkouts: int = 0
    connects: int = 0


def count_pool_events(database: Database) -> PoolCounters:
    counters = PoolCounters()

    def on_checkout(*_args: Any) -> None:
        counters.checkouts += 1

    def on_connect(*_args: Any) -> None:
        counters.connects += 1

    event.listen(database.engine.sync_engine, "checkout", on_checkout)
    event.listen(database.engine.sync_engine, "connect", on_connect)
    return counters


@asynccontextmanager
async def app_client(
    database: Database, cache: CacheManager, **settings: object
) -> AsyncIterator[httpx.AsyncClient]:
    """The real app in-process (no lifespan: the test owns and closes both services)."""
    app = create_app(
        make_settings(RATE_LIMIT_ENABLED=False, **settings), database=database, cache=cache
    )
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://faults") as http:
            yield http
    finally:
        await cache.close()
        await database.dispose()


async def wait_until(condition: Callable[[], bool], within: float, what: str) -> float:
    """Poll ``condition`` (state other tasks update); return the seconds it took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > within:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(0.01)
    return time.monotonic() - started


async def poll_until(condition: Callable[[], Awaitable[bool]], within: float, what: str) -> float:
    """``wait_until`` for a condition that has to ask a server."""
    started = time.monotonic()
    while not await condition():
        if time.monotonic() - started > within:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(0.02)
    return time.monotonic() - started
