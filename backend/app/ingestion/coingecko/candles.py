"""Candles of any timeframe built from CoinGecko's price samples, as rows to validate.

CoinGecko's free endpoints give price samples, not candles; these rows go through
:func:`app.ingestion.batch.validate_batch` like every other source's.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from operator import attrgetter

from app.ingestion.batch import RawRow
from app.ingestion.coingecko.payload import MarketPoint
from app.market import Timeframe

__all__ = ["candle_rows_from_points"]


def candle_rows_from_points(
    points: Sequence[MarketPoint],
    timeframe: Timeframe,
    *,
    complete_before: datetime | None = None,
) -> list[RawRow]:
    """One candle row per aligned ``timeframe`` bucket with samples, ascending; row = index.

    open = first sample's price in the bucket, high = max, low = min, close = last.
    These are sampled prices, not trades: high/low are the extremes of the samples and
    understate the real range; with hourly samples an H1 candle has a single sample
    (open = high = low = close). Buckets with no sample produce no candle (gaps stay gaps).

    ``volume`` is always 0.0 and must be read as "unknown": CoinGecko's ``total_volumes`` is a
    rolling 24-hour total in the QUOTE currency, which cannot be turned into a per-candle
    base-currency volume (what a candle's volume means), so nothing is derived from it.
    Market cap has no place in a candle and is dropped.

    ``complete_before`` drops buckets that end after that instant (e.g. pass the fetch time
    so the still-open bucket is not stored as if it were final). Points need not be sorted.
    """
    buckets: dict[datetime, list[float]] = {}
    for point in sorted(points, key=attrgetter("timestamp")):
        buckets.setdefault(timeframe.floor(point.timestamp), []).append(point.price)
    rows: list[RawRow] = []
    for opened, prices in buckets.items():
        if complete_before is not None and opened + timeframe.delta > complete_before:
            continue
        values = {
            "timestamp": opened,
            "open": prices[0],
            "high": max(prices),
            "low": min(prices),
            "close": prices[-1],
            "volume": 0.0,
        }
        rows.append(RawRow(len(rows), values))
    return rows
