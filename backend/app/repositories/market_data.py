"""Queries on the market_data table: bulk upserts, range scans, resampling, coverage."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any, NamedTuple

from sqlalchemy import Insert, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.market import EPOCH, Candle, Timeframe
from app.models import MarketData
from app.repositories import market_data_pg, sql_time
from app.repositories.market_data_rows import UpsertCounts

# SQLite caps bound parameters per statement (32766); 11 columns x 1000 rows stays below it.
INSERT_CHUNK_ROWS = 1000
VALUE_COLUMNS = ("open_price", "high_price", "low_price", "close_price", "volume")


@dataclass(frozen=True, slots=True)
class StoredRange:
    first: datetime | None
    last: datetime | None
    count: int


class Bucket(NamedTuple):
    """One candle as returned by a query, possibly resampled from several stored ones.

    A named tuple: thousands are built per request, and a frozen dataclass costs 3x more.
    """

    timestamp: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float
    last_stored: datetime  # open time of the newest stored candle inside the bucket


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def _aware(value: Any) -> datetime:
    if isinstance(value, str):  # SQLite hands back text from raw SQL
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _chunks(rows: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
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


def _insert_ignoring_duplicates(session: AsyncSession, rows: list[dict[str, Any]]) -> Insert:
    keys = ["cryptocurrency_id", "timestamp"]
    if _dialect(session) == "postgresql":
        pg_insert = postgresql.insert(MarketData).values(rows)
        return pg_insert.on_conflict_do_nothing(index_elements=keys)
    return sqlite.insert(MarketData).values(rows).on_conflict_do_nothing(index_elements=keys)


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


# ---------------------------------------------------------------- the bulk ingest path


async def lock_coin(session: AsyncSession, coin_id: int) -> None:
    """Hold the coin's ingest lock until the transaction ends.

    Taken before anything an ingest decides from the stored candles (their timeframe), so
    that the decision and the write it allows are one step to every other ingest of the coin.
    The lock is the one `upsert_candles` takes (PostgreSQL advisory locks nest). SQLite has
    a single writer and needs none.
    """
    if _dialect(session) == "postgresql":
        await market_data_pg.lock_coin(await market_data_pg.driver_connection(session), coin_id)


async def upsert_candles(
    session: AsyncSession, coin_id: int, candles: Sequence[Candle], source: str
) -> UpsertCounts:
    """Store ``candles`` (ascending, unique timestamps): new rows inserted, changed rows
    updated, identical rows left alone. Safe to repeat."""
    if not candles:
        return UpsertCounts()
    if _dialect(session) == "postgresql":
        return await market_data_pg.upsert_candles(session, coin_id, candles, source)
    return await _upsert_sqlite(session, coin_id, candles, source)


async def _stored_values(
    session: AsyncSession, coin_id: int, first: datetime, last: datetime
) -> dict[datetime, tuple[float, ...]]:
    values = (getattr(MarketData, column) for column in VALUE_COLUMNS)
    statement = select(MarketData.timestamp, *values).where(
        MarketData.cryptocurrency_id == coin_id,
        MarketData.timestamp >= first,
        MarketData.timestamp <= last,
    )
    return {row[0]: tuple(row[1:]) for row in (await session.execute(statement)).all()}


def _values(candle: Candle) -> tuple[float, ...]:
    return (candle.open, candle.high, candle.low, candle.close, candle.volume)


async def _upsert_sqlite(
    session: AsyncSession, coin_id: int, candles: Sequence[Candle], source: str
) -> UpsertCounts:
    # SQLite has one writer at a time, so reading then writing inside the transaction is safe.
    stored = await _stored_values(session, coin_id, candles[0].timestamp, candles[-1].timestamp)
    new = [c for c in candles if c.timestamp not in stored]
    changed = [c for c in candles if c.timestamp in stored and stored[c.timestamp] != _values(c)]
    now = datetime.now(UTC)
    for chunk in _chunks([_row(coin_id, c, source, now) for c in new], INSERT_CHUNK_ROWS):
        await session.execute(sqlite.insert(MarketData).values(list(chunk)))
    if changed:
        await session.execute(
            text(
                "UPDATE market_data SET open_price = :o, high_price = :h, low_price = :l, "
                "close_price = :c, volume = :v, data_source = :source "
                "WHERE cryptocurrency_id = :coin AND timestamp = :ts"
            ),
            [
                {
                    "o": c.open,
                    "h": c.high,
                    "l": c.low,
                    "c": c.close,
                    "v": c.volume,
                    "source": source,
                    "coin": coin_id,
                    "ts": sql_time.sqlite_text(c.timestamp),
                }
                for c in changed
            ],
        )
    return UpsertCounts(len(new), len(changed), len(candles) - len(new) - len(changed))


# ---------------------------------------------------------------- reads


async def stored_range(session: AsyncSession, coin_id: int) -> StoredRange:
    statement = select(
        func.min(MarketData.timestamp), func.max(MarketData.timestamp), func.count()
    ).where(MarketData.cryptocurrency_id == coin_id)
    first, last, count = (await session.execute(statement)).one()
    return StoredRange(
        first=_aware(first) if first is not None else None,
        last=_aware(last) if last is not None else None,
        count=int(count),
    )


async def latest_candle(session: AsyncSession, coin_id: int) -> Candle | None:
    statement = (
        select(MarketData)
        .where(MarketData.cryptocurrency_id == coin_id)
        .order_by(MarketData.timestamp.desc())
        .limit(1)
    )
    row = (await session.execute(statement)).scalar_one_or_none()
    if row is None:
        return None
    return Candle(
        row.timestamp, row.open_price, row.high_price, row.low_price, row.close_price, row.volume
    )


async def base_timeframe(session: AsyncSession, coin_id: int, sample: int = 64) -> Timeframe | None:
    """The stored candles' length: the smallest spacing among the newest ``sample`` candles.

    The schema keeps no interval column, so it is read off the data (an index-only scan).
    """
    statement = (
        select(MarketData.timestamp)
        .where(MarketData.cryptocurrency_id == coin_id)
        .order_by(MarketData.timestamp.desc())
        .limit(sample)
    )
    stamps = [_aware(value) for value in (await session.execute(statement)).scalars()]
    spacings = {int((a - b).total_seconds()) for a, b in pairwise(stamps)}
    known = sorted(s for s in spacings if Timeframe.from_seconds(s) is not None)
    return Timeframe.from_seconds(known[0]) if known else None


async def candles_between(
    session: AsyncSession,
    coin_id: int,
    interval: Timeframe,
    *,
    start: datetime | None,
    end: datetime | None,
    limit: int,
    resample: bool,
) -> list[Bucket]:
    """Up to ``limit`` ascending buckets in [start, end); with no start, the newest ones."""
    dialect = _dialect(session)
    statement, params = sql_time.bucket_query(
        dialect,
        interval if resample else None,
        newest_first=start is None,
        has_start=start is not None,
        has_end=end is not None,
    )
    params.update(coin=coin_id, limit=limit)
    for name, moment in (("start", start), ("end", end)):
        if moment is not None:
            params[name] = (
                sql_time.sqlite_text(moment) if dialect == "sqlite" else sql_time.naive_utc(moment)
            )
    if dialect == "postgresql":
        rows = await market_data_pg.fetch(session, statement, params)
    else:
        rows = list((await session.execute(text(statement), params)).all())
    if resample:
        buckets = [
            Bucket(_bucket_time(r[0]), r[1], r[2], r[3], r[4], r[5], _aware(r[6])) for r in rows
        ]
    else:  # a stored candle is its own bucket: convert its time once
        buckets = [
            Bucket(t, r[1], r[2], r[3], r[4], r[5], t) for r in rows for t in (_aware(r[0]),)
        ]
    if start is None:  # the newest came first
        buckets.reverse()
    return buckets


def _bucket_time(value: Any) -> datetime:
    if isinstance(value, int):
        return EPOCH + timedelta(seconds=value)
    return _aware(value)


async def gaps(
    session: AsyncSession, coin_id: int, base: Timeframe
) -> list[tuple[datetime, datetime]]:
    """Pairs (last candle before a gap, first candle after it) wherever spacing > ``base``."""
    statement = sql_time.gap_query(_dialect(session))
    rows = await session.execute(text(statement), {"coin": coin_id, "step": base.seconds})
    return [(_aware(before), _aware(after)) for before, after in rows.all()]


async def count_all(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count(MarketData.id)))).scalar_one())


async def closes_at(
    session: AsyncSession, coin_id: int, opens: Sequence[datetime]
) -> dict[datetime, float]:
    """Close prices of the stored candles that opened at ``opens`` (absent ones omitted)."""
    found: dict[datetime, float] = {}
    for chunk in _chunks(sorted(set(opens)), INSERT_CHUNK_ROWS):
        statement = select(MarketData.timestamp, MarketData.close_price).where(
            MarketData.cryptocurrency_id == coin_id,
            MarketData.timestamp.in_(chunk),
        )
        for stamp, close in (await session.execute(statement)).all():
            found[_aware(stamp)] = close
    return found
