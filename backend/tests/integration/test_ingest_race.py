"""Concurrent ingests of one coin: what one decides from the stored candles, the other sees.

Two first ingests of different timeframes into an empty coin both found "no candles yet",
both passed the one-timeframe-per-coin check and both stored: the coin then held 1h and 1d
candles mixed. The check now runs under the coin's ingest lock.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from app.cache import CacheManager
from app.database import Database
from app.errors import Conflict
from app.ingestion.batch import CandleBatch
from app.market import Candle, Timeframe
from app.models import MarketData
from app.schemas.coins import CoinOut
from app.services import market_data as service
from app.services.coins import get_coin
from tests.integration.live import live_database, make_live_coin

__all__ = ["live_database"]  # the fixture, imported for pytest to find

ROUNDS = 20
START = datetime(2024, 1, 1, tzinfo=UTC)


def _batch(timeframe: Timeframe, count: int) -> CandleBatch:
    step = timedelta(seconds=timeframe.seconds)
    candles = [Candle(START + i * step, 10.0, 11.0, 9.0, 10.5, 1.0) for i in range(count)]
    return CandleBatch(candles=candles, timeframe=timeframe)


async def _ingest(
    database: Database, cache: CacheManager, coin: CoinOut, batch: CandleBatch
) -> str:
    try:
        async with database.unit_of_work() as session:
            await service.ingest(session, cache, coin, batch, "test")
    except Conflict:
        return "conflict"
    return batch.timeframe.value


async def test_two_first_ingests_of_different_timeframes_never_mix(
    live_database: Database, cache: CacheManager
) -> None:
    for _ in range(ROUNDS):
        coin_id, symbol = await make_live_coin(live_database)
        coin = await _coin(live_database, cache, symbol)
        outcomes = await asyncio.gather(
            _ingest(live_database, cache, coin, _batch(Timeframe.H1, 48)),
            _ingest(live_database, cache, coin, _batch(Timeframe.D1, 2)),
        )
        assert sorted(outcomes) in (["1h", "conflict"], ["1d", "conflict"]), outcomes
        stored = await _stored_count(live_database, coin_id)
        assert stored == (48 if "1h" in outcomes else 2)


async def _coin(database: Database, cache: CacheManager, symbol: str) -> CoinOut:
    async with database.unit_of_work() as session:
        return await get_coin(session, cache, symbol)


async def _stored_count(database: Database, coin_id: int) -> int:
    async with database.unit_of_work() as session:
        statement = select(func.count()).where(MarketData.cryptocurrency_id == coin_id)
        return int((await session.execute(statement)).scalar_one())
