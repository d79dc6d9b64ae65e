"""The bulk path: inserted / updated / unchanged counts, idempotence, both code paths."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.database import Database
from app.market import Candle
from app.models import Cryptocurrency, MarketData
from app.repositories import market_data
from app.repositories.market_data_rows import UpsertCounts
from tests.integration.factories import make_coin

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def _hours(first: int, count: int) -> list[Candle]:
    return [
        Candle(T0 + timedelta(hours=h), 100 + h, 110 + h, 90 + h, 105 + h, 1 + h)
        for h in range(first, first + count)
    ]


async def _stored(session: AsyncSession, coin_id: int) -> list[tuple[object, ...]]:
    rows = await session.execute(
        select(
            MarketData.timestamp,
            MarketData.open_price,
            MarketData.high_price,
            MarketData.low_price,
            MarketData.close_price,
            MarketData.volume,
        )
        .where(MarketData.cryptocurrency_id == coin_id)
        .order_by(MarketData.timestamp)
    )
    return [tuple(row) for row in rows.all()]


async def test_first_load_inserts_everything(db_session: AsyncSession) -> None:
    coin = await make_coin(db_session)
    counts = await market_data.upsert_candles(db_session, coin.id, _hours(0, 48), "test")
    assert counts == UpsertCounts(inserted=48)
    stored = await _stored(db_session, coin.id)
    assert len(stored) == 48
    assert stored[5] == (T0 + timedelta(hours=5), 105.0, 115.0, 95.0, 110.0, 6.0)


async def test_resending_changes_nothing(db_session: AsyncSession) -> None:
    coin = await make_coin(db_session)
    await market_data.upsert_candles(db_session, coin.id, _hours(0, 24), "test")
    before = await _stored(db_session, coin.id)
    again = await market_data.upsert_candles(db_session, coin.id, _hours(0, 24), "test")
    assert again == UpsertCounts(unchanged=24)
    assert await _stored(db_session, coin.id) == before


async def test_changed_rows_update_and_new_rows_insert(db_session: AsyncSession) -> None:
    coin = await make_coin(db_session)
    await market_data.upsert_candles(db_session, coin.id, _hours(0, 10), "test")
    batch = _hours(0, 12)  # two new hours at the end
    batch[3] = replace(batch[3], close=999.0, high=999.0)
    counts = await market_data.upsert_candles(db_session, coin.id, batch, "test")
    assert counts == UpsertCounts(inserted=2, updated=1, unchanged=9)
    stored = await _stored(db_session, coin.id)
    assert len(stored) == 12
    assert stored[3][4] == 999.0


async def test_rows_before_and_inside_the_stored_range(db_session: AsyncSession) -> None:
    coin = await make_coin(db_session)
    # Stored: hours 10-19, with a hole at 15.
    stored_hours = [c for c in _hours(10, 10) if c.timestamp != T0 + timedelta(hours=15)]
    await market_data.upsert_candles(db_session, coin.id, stored_hours, "test")
    # Batch: 5-9 are older than anything stored, 15 fills the hole, 18 is unchanged.
    batch = [*_hours(5, 5), *_hours(15, 1), *_hours(18, 1)]
    counts = await market_data.upsert_candles(db_session, coin.id, batch, "test")
    assert counts == UpsertCounts(inserted=6, unchanged=1)
    assert len(await _stored(db_session, coin.id)) == 15


async def test_coins_are_kept_apart(db_session: AsyncSession) -> None:
    first = await make_coin(db_session)
    second = await make_coin(db_session)
    await market_data.upsert_candles(db_session, first.id, _hours(0, 5), "test")
    counts = await market_data.upsert_candles(db_session, second.id, _hours(0, 5), "test")
    assert counts == UpsertCounts(inserted=5)
    assert len(await _stored(db_session, first.id)) == 5


async def test_base_timeframe_is_read_off_the_data(db_session: AsyncSession) -> None:
    coin = await make_coin(db_session)
    assert await market_data.base_timeframe(db_session, coin.id) is None
    await market_data.upsert_candles(db_session, coin.id, _hours(0, 3), "test")
    found = await market_data.base_timeframe(db_session, coin.id)
    assert found is not None and found.value == "1h"


async def test_bulk_path_as_first_statement_stays_in_the_unit_of_work(
    engine: AsyncEngine,
) -> None:
    """On PostgreSQL the bulk path works on the raw asyncpg connection; it must still be
    rolled back with the unit of work, and see its own staged rows, when it runs first."""
    database = Database(engine)
    symbol = f"W{uuid.uuid4().hex[:8].upper()}"
    async with database.unit_of_work() as session:
        coin = Cryptocurrency(symbol=symbol, name="unit of work")
        session.add(coin)
        await session.flush()
        coin_id = coin.id
    try:
        with pytest.raises(RuntimeError):
            async with database.unit_of_work() as session:
                await market_data.upsert_candles(session, coin_id, _hours(0, 5), "test")
                raise RuntimeError("after the copy")
        async with database.unit_of_work() as session:
            assert (await market_data.stored_range(session, coin_id)).count == 0
        async with database.unit_of_work() as session:
            first = await market_data.upsert_candles(session, coin_id, _hours(0, 5), "test")
        changed = _hours(0, 5)
        changed[2] = replace(changed[2], close=1.5, low=1.0)
        async with database.unit_of_work() as session:
            second = await market_data.upsert_candles(session, coin_id, changed, "test")
        assert first == UpsertCounts(inserted=5)
        assert second == UpsertCounts(updated=1, unchanged=4)
    finally:
        async with database.unit_of_work() as session:
            await session.execute(delete(MarketData).where(MarketData.cryptocurrency_id == coin_id))
            await session.execute(delete(Cryptocurrency).where(Cryptocurrency.id == coin_id))
