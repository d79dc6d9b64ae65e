"""PostgreSQL's bulk ingest path: binary COPY, plus a staging upsert only where rows can clash.

Candles outside a coin's stored range cannot conflict with anything, so they are copied
straight into the table, which is as fast as a raw COPY. Only candles inside the stored
range go through a staging table and one ``INSERT ... ON CONFLICT DO UPDATE`` that leaves
identical rows untouched. A per-coin advisory lock keeps two ingests of one coin from
racing between reading the range and copying.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.market import Candle
from app.repositories.market_data_rows import COLUMNS, UpsertCounts
from app.repositories.sql_time import naive_utc

# First key of pg_advisory_xact_lock(int, int); the second is the coin id.
INGEST_LOCK_SPACE = 0x43414E44  # "CAND"
STAGING_COLUMNS = ("timestamp", "open_price", "high_price", "low_price", "close_price", "volume")

CREATE_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS market_data_staging (
    timestamp timestamp NOT NULL,
    open_price double precision NOT NULL,
    high_price double precision NOT NULL,
    low_price double precision NOT NULL,
    close_price double precision NOT NULL,
    volume double precision NOT NULL
) ON COMMIT DELETE ROWS
"""

MERGE_STAGING = """
WITH upserted AS (
    INSERT INTO market_data (
        cryptocurrency_id, timestamp, open_price, high_price, low_price, close_price,
        volume, market_cap, data_source, created_at
    )
    SELECT $1, timestamp, open_price, high_price, low_price, close_price, volume, NULL, $2, $3
    FROM market_data_staging
    ON CONFLICT (cryptocurrency_id, timestamp) DO UPDATE SET
        open_price = EXCLUDED.open_price,
        high_price = EXCLUDED.high_price,
        low_price = EXCLUDED.low_price,
        close_price = EXCLUDED.close_price,
        volume = EXCLUDED.volume,
        data_source = EXCLUDED.data_source
    WHERE (market_data.open_price, market_data.high_price, market_data.low_price,
           market_data.close_price, market_data.volume)
          IS DISTINCT FROM
          (EXCLUDED.open_price, EXCLUDED.high_price, EXCLUDED.low_price,
           EXCLUDED.close_price, EXCLUDED.volume)
    RETURNING (xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM upserted
"""


async def driver_connection(session: AsyncSession) -> Any:
    """The asyncpg connection under the session's transaction.

    SQLAlchemy's asyncpg dialect opens the server-side transaction with its first
    statement, not with ``session.connection()``; without this SELECT, work done on the
    raw connection would run in autocommit and escape the unit of work.
    """
    await session.execute(text("SELECT 1"))
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    return raw.driver_connection


_NAMED = re.compile(r"(?<!:):([a-z_]+)")


def positional(sql: str, params: dict[str, Any]) -> tuple[str, list[Any]]:
    """``:name`` placeholders rewritten as asyncpg's ``$n``, with the argument list."""
    order: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in order:
            order.append(name)
        return f"${order.index(name) + 1}"

    return _NAMED.sub(number, sql), [params[name] for name in order]


async def fetch(session: AsyncSession, sql: str, params: dict[str, Any]) -> list[Any]:
    """Rows straight from asyncpg: range reads skip SQLAlchemy's per-row processing."""
    pg = await driver_connection(session)
    statement, args = positional(sql, params)
    return list(await pg.fetch(statement, *args))


async def lock_coin(pg: Any, coin_id: int) -> None:
    await pg.execute("SELECT pg_advisory_xact_lock($1, $2)", INGEST_LOCK_SPACE, coin_id)


def _split(
    candles: Sequence[Candle], first: datetime | None, last: datetime | None
) -> tuple[list[Candle], list[Candle]]:
    """(candles that cannot clash with stored ones, candles inside the stored range)."""
    if first is None or last is None:
        return list(candles), []
    outside = [c for c in candles if c.timestamp > last or c.timestamp < first]
    inside = [c for c in candles if first <= c.timestamp <= last]
    return outside, inside


async def _copy_new(
    pg: Any, coin_id: int, candles: Sequence[Candle], source: str, now: datetime
) -> None:
    records = [
        (
            coin_id,
            naive_utc(c.timestamp),
            c.open,
            c.high,
            c.low,
            c.close,
            c.volume,
            None,
            source,
            now,
        )
        for c in candles
    ]
    await pg.copy_records_to_table("market_data", records=records, columns=list(COLUMNS))


async def _merge_overlap(
    pg: Any, coin_id: int, candles: Sequence[Candle], source: str, now: datetime
) -> UpsertCounts:
    await pg.execute(CREATE_STAGING)
    await pg.execute("TRUNCATE market_data_staging")
    records = [(naive_utc(c.timestamp), c.open, c.high, c.low, c.close, c.volume) for c in candles]
    await pg.copy_records_to_table(
        "market_data_staging", records=records, columns=list(STAGING_COLUMNS)
    )
    inserted, updated = await pg.fetchrow(MERGE_STAGING, coin_id, source, now)
    return UpsertCounts(inserted, updated, len(candles) - inserted - updated)


async def upsert_candles(
    session: AsyncSession, coin_id: int, candles: Sequence[Candle], source: str
) -> UpsertCounts:
    pg = await driver_connection(session)
    await lock_coin(pg, coin_id)
    first, last = await pg.fetchrow(
        "SELECT min(timestamp), max(timestamp) FROM market_data WHERE cryptocurrency_id = $1",
        coin_id,
    )
    outside, inside = _split(
        candles,
        first.replace(tzinfo=UTC) if first else None,
        last.replace(tzinfo=UTC) if last else None,
    )
    now = naive_utc(datetime.now(UTC))
    counts = UpsertCounts()
    if outside:
        await _copy_new(pg, coin_id, outside, source, now)
        counts = UpsertCounts(inserted=len(outside))
    if inside:
        counts = counts + await _merge_overlap(pg, coin_id, inside, source, now)
    return counts
