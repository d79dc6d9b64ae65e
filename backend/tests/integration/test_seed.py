"""The seed loads the bundled real history once; running it again changes nothing."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.ingestion.demo_data import read_demo_series
from app.models import Cryptocurrency, MarketData
from app.services.seed import seed_demo_data, series_to_load


async def _counts(session: AsyncSession) -> dict[str, int]:
    statement = (
        select(Cryptocurrency.symbol, func.count(MarketData.id))
        .join(MarketData, MarketData.cryptocurrency_id == Cryptocurrency.id)
        .group_by(Cryptocurrency.symbol)
    )
    return {symbol: count for symbol, count in (await session.execute(statement)).all()}


def test_one_series_per_coin_preferring_the_finest() -> None:
    chosen = {series.symbol: series.timeframe for series in series_to_load()}
    assert chosen == {"BTC": "1h", "ETH": "1d", "LTC": "1d"}


async def test_seed_loads_every_finished_candle_once(db_session: AsyncSession) -> None:
    first = await seed_demo_data(db_session)
    expected = {s.symbol: len(read_demo_series(s).candles) - 1 for s in series_to_load()}
    assert first.coins_created == 3
    assert first.candles_inserted == sum(expected.values())
    assert first.candles_skipped == {}  # every bundled row passes the upload rules
    assert await _counts(db_session) == expected

    second = await seed_demo_data(db_session)
    assert second.coins_created == 0
    assert second.candles_inserted == 0
    assert await _counts(db_session) == expected


async def test_seed_stores_the_file_values(db_session: AsyncSession) -> None:
    await seed_demo_data(db_session)
    btc = next(s for s in series_to_load() if s.symbol == "BTC")
    oldest = read_demo_series(btc).candles[0]
    coin = (
        await db_session.execute(select(Cryptocurrency).where(Cryptocurrency.symbol == "BTC"))
    ).scalar_one()
    row = (
        await db_session.execute(
            select(MarketData)
            .where(MarketData.cryptocurrency_id == coin.id)
            .order_by(MarketData.timestamp)
            .limit(1)
        )
    ).scalar_one()
    assert coin.coin_gecko_id == "bitcoin"
    assert row.timestamp == oldest.timestamp
    assert (row.open_price, row.high_price, row.low_price, row.close_price) == (
        oldest.open,
        oldest.high,
        oldest.low,
        oldest.close,
    )
    assert row.data_source == "cryptodatadownload:coinbase"
