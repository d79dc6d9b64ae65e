"""Loads the bundled real market history (see app/data/demo/NOTICE.md) into the database."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from app.ingestion.demo_data import DemoSeries, demo_series, read_demo_series
from app.repositories import cryptocurrencies, market_data

logger = logging.getLogger(__name__)

# Names and CoinGecko ids of the coins the demo files cover.
DEMO_COINS = {
    "BTC": ("Bitcoin", "bitcoin"),
    "ETH": ("Ethereum", "ethereum"),
    "LTC": ("Litecoin", "litecoin"),
}


@dataclass
class SeedReport:
    coins_created: int = 0
    candles_inserted: int = 0
    candles_skipped: dict[str, int] = field(default_factory=dict)
    series_loaded: list[str] = field(default_factory=list)


def series_to_load() -> list[DemoSeries]:
    """One series per coin, the finest timeframe bundled.

    A coin's candles share one table keyed by (coin, timestamp), so mixing an hourly and a
    daily series would put two different candles at midnight.
    """
    chosen: dict[str, DemoSeries] = {}
    for series in demo_series():
        current = chosen.get(series.symbol)
        if current is None or series.timeframe.seconds < current.timeframe.seconds:
            chosen[series.symbol] = series
    return [chosen[symbol] for symbol in sorted(chosen)]


async def _load_series(session: AsyncSession, series: DemoSeries, report: SeedReport) -> None:
    name, gecko_id = DEMO_COINS.get(series.symbol, (series.symbol, None))
    coin, created = await cryptocurrencies.get_or_create(
        session, symbol=series.symbol, name=name, coin_gecko_id=gecko_id
    )
    report.coins_created += int(created)
    batch = read_demo_series(series)
    if batch.skipped:
        report.candles_skipped[series.path.name] = len(batch.skipped)
        logger.info("skipped %d inconsistent rows of %s", len(batch.skipped), series.path.name)
    # The newest row of each export was still forming when the file was downloaded (its
    # volume is a fraction of a normal one), so it is not a finished candle.
    finished = batch.candles[:-1]
    source = f"cryptodatadownload:{series.exchange.lower()}"
    report.candles_inserted += await market_data.insert_missing(session, coin.id, finished, source)
    report.series_loaded.append(f"{series.symbol} {series.timeframe} ({series.exchange})")


async def stored_candles(session: AsyncSession) -> int:
    """How many candles the database holds, for ``seed --if-empty``."""
    return await market_data.count_all(session)


async def seed_demo_data(session: AsyncSession) -> SeedReport:
    """Idempotent: coins are created once and candles already stored are left untouched."""
    report = SeedReport()
    for series in series_to_load():
        await _load_series(session, series, report)
    return report
