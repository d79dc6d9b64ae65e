"""Queries on the market_data table."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Insert, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.ingestion.cryptodatadownload import Candle
from app.models import MarketData

# SQLite caps bound parameters per statement (32766); 11 columns x 1000 rows stays below it.
INSERT_CHUNK_ROWS = 1000


def _insert_ignoring_duplicates(session: AsyncSession, rows: list[dict[str, Any]]) -> Insert:
    keys = ["cryptocurrency_id", "timestamp"]
    if session.get_bind().dialect.name == "postgresql":
        return (
            postgresql.insert(MarketData).values(rows).on_conflict_do_nothing(index_elements=keys)
        )
    return sqlite.insert(MarketData).values(rows).on_conflict_do_nothing(index_elements=keys)


def _chunks(rows: Sequence[dict[str, Any]], size: int) -> Iterator[Sequence[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _row(coin_id: int, candle: Candle, source: str, now: datetime) -> dict[str, Any]:
    return {
        "cryptocurrency_id": coin_id,
        "timestamp": candle.timestamp,
        "open_price": candle.open,
        "high_price": candle.high,
        "low_price": candle.low,
        "close_price": candle.close,
        "volume": candle.volume,
        "market_cap": None,
        "data_source": source,
        "created_at": now,
    }


async def insert_missing(
    session: AsyncSession, coin_id: int, candles: Sequence[Candle], source: str
) -> int:
    """Insert the candles whose (coin, timestamp) is not stored yet; return how many were new."""
    now = datetime.now(UTC)
    rows = [_row(coin_id, candle, source, now) for candle in candles]
    inserted = 0
    for chunk in _chunks(rows, INSERT_CHUNK_ROWS):
        result = await session.execute(_insert_ignoring_duplicates(session, list(chunk)))
        inserted += max(result.rowcount, 0)  # type: ignore[attr-defined]
    return inserted


async def count_for(session: AsyncSession, coin_id: int) -> int:
    statement = select(func.count()).where(MarketData.cryptocurrency_id == coin_id)
    return int((await session.execute(statement)).scalar_one())


async def count_all(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count(MarketData.id)))).scalar_one())
