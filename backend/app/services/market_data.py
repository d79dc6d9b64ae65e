"""Candles in and out: ingestion, range queries with resampling, latest price, coverage."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from app.cache import CacheManager, CacheTTL, cache_key
from app.database import Database, after_commit
from app.errors import Conflict, NotFound, conflicting_field, invalid_field
from app.ingestion.batch import CandleBatch
from app.market import QUERY_INTERVALS, Timeframe
from app.repositories import market_data
from app.repositories.market_data import Bucket
from app.schemas.coins import CoinOut
from app.schemas.market_data import Coverage, Gap, IngestResult
from app.services import coins

# Latest-N candle pages that are cached; ingestion deletes exactly these keys.
CACHED_LIMITS = (100, 500, 1000)
MAX_LIMIT = 5000


def price_key(symbol: str) -> str:
    return cache_key(symbol.upper(), "price")


def base_key(symbol: str) -> str:
    return cache_key(symbol, "base_timeframe")


def latest_page_key(symbol: str, interval: Timeframe | None, limit: int) -> str:
    label = interval.value if interval is not None else "stored"
    return cache_key(symbol.upper(), "ohlcv", label, f"latest{limit}")


PAGE_LABELS: tuple[Timeframe | None, ...] = (None, *QUERY_INTERVALS)


def _iso(moment: datetime) -> str:
    """ISO 8601 with a Z; every stored timestamp is already UTC."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------- base timeframe


async def stored_timeframe(
    session: AsyncSession, cache: CacheManager, coin: CoinOut
) -> Timeframe | None:
    cached = await cache.get(base_key(coin.symbol))
    if cached is not None:
        return Timeframe(cached)
    found = await market_data.base_timeframe(session, coin.id)
    if found is not None:
        await cache.set(base_key(coin.symbol), found.value, CacheTTL.METADATA)
    return found


# ---------------------------------------------------------------- queries


@dataclass(frozen=True, slots=True)
class CandleQuery:
    interval: Timeframe | None
    start: datetime | None
    end: datetime | None
    limit: int
    cursor: str | None


def encode_cursor(interval: Timeframe, after: datetime) -> str:
    raw = f"{interval.value}:{int(after.timestamp())}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, interval: Timeframe) -> datetime:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        frame, seconds = base64.urlsafe_b64decode(padded.encode()).decode().split(":")
        moment = datetime.fromtimestamp(int(seconds), UTC)
    except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError, OSError):
        raise invalid_field("query.cursor", "is not a cursor returned by this endpoint") from None
    if frame != interval.value:
        raise invalid_field("query.cursor", f"belongs to interval {frame}, not {interval.value}")
    return moment


def _check_interval(interval: Timeframe, base: Timeframe) -> None:
    # 409, not 422: the interval is a valid one, this coin's stored candles cannot build it.
    if interval.seconds < base.seconds or interval.seconds % base.seconds:
        raise conflicting_field(
            "query.interval",
            f"cannot be built from this coin's {base.value} candles; use a multiple of it",
        )


def _ceil(interval: Timeframe, moment: datetime) -> datetime:
    floor = interval.floor(moment)
    return floor if floor == moment else floor + interval.delta


def _is_forming(bucket: Bucket, interval: Timeframe, base: Timeframe, now: datetime) -> bool:
    bucket_end = bucket.timestamp + interval.delta
    return bucket_end > now or bucket.last_stored + base.delta < bucket_end


def _encode_page(
    symbol: str,
    interval: Timeframe,
    base: Timeframe,
    buckets: Sequence[Bucket],
    next_cursor: str | None,
    last_is_final: bool,
) -> bytes:
    now = datetime.now(UTC)
    candles = [
        {
            "timestamp": b.timestamp,  # orjson writes it, with Z (OPT_UTC_Z)
            "open": b.open,
            "high": b.high,
            "low": b.low,
            "close": b.close,
            "volume": b.volume,
            "forming": False,
        }
        for b in buckets
    ]
    if candles and last_is_final:
        candles[-1]["forming"] = _is_forming(buckets[-1], interval, base, now)
    page = {
        "symbol": symbol,
        "interval": interval.value,
        "base_timeframe": base.value,
        "candles": candles,
        "next_cursor": next_cursor,
    }
    return orjson.dumps(page, option=orjson.OPT_UTC_Z)


def _cacheable(query: CandleQuery) -> bool:
    """Only the newest page of common sizes is cached; ingestion knows these keys."""
    return (
        query.start is None
        and query.end is None
        and query.cursor is None
        and query.limit in CACHED_LIMITS
    )


async def cached_page(cache: CacheManager, symbol: str, query: CandleQuery) -> bytes | None:
    """The cached newest page, looked up before anything else so a hit costs one read."""
    if not _cacheable(query):
        return None
    return await cache.get_bytes(latest_page_key(symbol, query.interval, query.limit))


async def candle_page(
    session: AsyncSession, cache: CacheManager, coin: CoinOut, query: CandleQuery
) -> bytes:
    """One page of ascending candles as JSON bytes (see schemas.market_data.CandlePage)."""
    base = await stored_timeframe(session, cache, coin)
    interval = query.interval or base or Timeframe.H1
    if interval not in QUERY_INTERVALS and interval != base:
        raise invalid_field("query.interval", "must be one of 1h, 4h, 1d, 1w")
    # With fewer than two candles stored the base timeframe is unknown: read them as they are.
    base = base or interval
    _check_interval(interval, base)
    body = await _query_page(session, coin, interval, base, query)
    if _cacheable(query):
        key = latest_page_key(coin.symbol, query.interval, query.limit)
        await cache.set_bytes(key, body, CacheTTL.PRICE)
    return body


async def _query_page(
    session: AsyncSession,
    coin: CoinOut,
    interval: Timeframe,
    base: Timeframe,
    query: CandleQuery,
) -> bytes:
    if query.start is not None and query.start == query.end and not query.cursor:
        return _encode_page(coin.symbol, interval, base, [], None, True)  # an empty range
    start = decode_cursor(query.cursor, interval) if query.cursor else query.start
    end = _ceil(interval, query.end) if query.end else None
    if start is not None:
        start = interval.floor(start)
    if start is not None and end is not None and start >= end:
        # A cursor at or past `end`: the range is done (`end` before `start` is refused as
        # a 422 when the query is parsed, before either is rounded or clamped).
        return _encode_page(coin.symbol, interval, base, [], None, True)
    buckets = await market_data.candles_between(
        session,
        coin.id,
        interval,
        start=start,
        end=end,
        limit=query.limit + 1 if start is not None else query.limit,
        resample=interval != base,
    )
    next_cursor = None
    if start is not None and len(buckets) > query.limit:
        buckets = buckets[: query.limit]
        next_cursor = encode_cursor(interval, buckets[-1].timestamp + interval.delta)
    return _encode_page(coin.symbol, interval, base, buckets, next_cursor, next_cursor is None)


async def page_for_request(
    database: Database, cache: CacheManager, symbol: str, query: CandleQuery
) -> bytes:
    """A page for one HTTP request: a cache hit opens no database session at all."""
    cached = await cached_page(cache, symbol, query)
    if cached is not None:
        return cached
    async with database.unit_of_work() as session:
        coin = await coins.get_coin(session, cache, symbol)
        return await candle_page(session, cache, coin, query)


# ---------------------------------------------------------------- latest price


async def price_for_request(database: Database, cache: CacheManager, symbol: str) -> bytes:
    """The latest price for one HTTP request; a cache hit opens no database session."""
    cached = await cached_price(cache, symbol)
    if cached is not None:
        return cached
    async with database.unit_of_work() as session:
        coin = await coins.get_coin(session, cache, symbol)
        return await price(session, cache, coin)


async def cached_price(cache: CacheManager, symbol: str) -> bytes | None:
    return await cache.get_bytes(price_key(symbol.upper()))


async def price(session: AsyncSession, cache: CacheManager, coin: CoinOut) -> bytes:
    """The latest price read from the database, then cached (cache-aside)."""
    body = await _price_body(session, coin)
    await cache.set_bytes(price_key(coin.symbol), body, CacheTTL.PRICE)
    return body


async def _price_body(session: AsyncSession, coin: CoinOut) -> bytes:
    latest = await market_data.latest_candle(session, coin.id)
    if latest is None:
        raise NotFound(f"no candles stored for {coin.symbol}")
    return orjson.dumps(
        {"symbol": coin.symbol, "price": latest.close, "timestamp": _iso(latest.timestamp)}
    )


# ---------------------------------------------------------------- coverage


async def coverage(session: AsyncSession, cache: CacheManager, coin: CoinOut) -> Coverage:
    stored = await market_data.stored_range(session, coin.id)
    base = await stored_timeframe(session, cache, coin)
    gaps: list[Gap] = []
    if base is not None:
        for before, after in await market_data.gaps(session, coin.id, base):
            missing = int((after - before) / base.delta) - 1
            gaps.append(Gap(start=before + base.delta, end=after - base.delta, missing=missing))
    return Coverage(
        symbol=coin.symbol,
        base_timeframe=base,
        first=stored.first,
        last=stored.last,
        count=stored.count,
        missing=sum(gap.missing for gap in gaps),
        gaps=gaps,
    )


# ---------------------------------------------------------------- ingestion


async def ingest(
    session: AsyncSession,
    cache: CacheManager,
    coin: CoinOut,
    batch: CandleBatch,
    source: str,
) -> IngestResult:
    """Store a validated batch; cached prices and pages are refreshed once it commits.

    The timeframe check runs under the coin's ingest lock: two first ingests of different
    timeframes into an empty coin would otherwise both pass it and mix the two.
    """
    await market_data.lock_coin(session, coin.id)
    base = await market_data.base_timeframe(session, coin.id)
    if base is not None and base != batch.timeframe:
        raise Conflict(
            f"{coin.symbol} stores {base.value} candles; this batch has {batch.timeframe.value} "
            "candles (one timeframe per coin; resample on read with `interval`)"
        )
    counts = await market_data.upsert_candles(session, coin.id, batch.candles, source)
    latest_body = await _price_body(session, coin)
    _refresh_cache_after_commit(session, cache, coin.symbol, latest_body)
    return IngestResult(
        symbol=coin.symbol,
        timeframe=batch.timeframe,
        received=len(batch.candles),
        inserted=counts.inserted,
        updated=counts.updated,
        unchanged=counts.unchanged,
        first=batch.candles[0].timestamp if batch.candles else None,
        last=batch.candles[-1].timestamp if batch.candles else None,
    )


def _refresh_cache_after_commit(
    session: AsyncSession, cache: CacheManager, symbol: str, price_body: bytes
) -> None:
    async def refresh() -> None:
        # Write-through for the price, so a read after a write is never stale; pages and
        # the base timeframe are dropped and rebuilt by the next read.
        await cache.set_bytes(price_key(symbol), price_body, CacheTTL.PRICE, broadcast=True)
        pages = [
            latest_page_key(symbol, interval, limit)
            for interval in PAGE_LABELS
            for limit in CACHED_LIMITS
        ]
        await cache.delete(base_key(symbol), *pages)

    # Keyed by coin: an import storing many chunks refreshes each coin once, after commit,
    # with the price left by its last chunk.
    after_commit(session, refresh, key=("market-data-cache", symbol))
