"""The close-price series a forecast is fitted on, read from the stored candles.

Models assume evenly spaced observations. Exchange exports miss an hour here and there, and
sometimes days, or record an outage as a candle of zeros (no price, so missing too): short
holes are bridged by carrying the last close forward (at most
``MAX_FILL`` candles, counted in ``filled``), and a longer hole ends the series, because
inventing days of flat prices would teach a model that volatility vanishes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from app.cache import CacheManager
from app.errors import conflicting_field
from app.market import Horizon, Timeframe
from app.repositories import market_data
from app.repositories.market_data import Bucket
from app.schemas.coins import CoinOut
from app.services.market_data import stored_timeframe

MAX_FILL = 3


@dataclass(frozen=True, slots=True)
class PriceSeries:
    timeframe: Timeframe
    opens: list[datetime]  # open time of each candle, evenly spaced
    closes: np.ndarray
    filled: int  # candles bridged by carrying a close forward

    def close_time(self, index: int) -> datetime:
        return self.opens[index] + self.timeframe.delta

    @property
    def origin(self) -> datetime:
        """Close time of the newest candle: the moment a forecast from it is made."""
        return self.close_time(-1)


def series_timeframe(base: Timeframe) -> Timeframe:
    """Forecast on the stored candles, but never on anything finer than hours."""
    return base if base.seconds >= Timeframe.H1.seconds else Timeframe.H1


def horizon_steps(horizon: Horizon, series: PriceSeries, symbol: str, field: str) -> int:
    steps = horizon.steps(series.timeframe)
    if steps is None:
        raise conflicting_field(
            field,
            f"{horizon.value} cannot be forecast from {symbol}'s {series.timeframe.value} candles",
        )
    return steps


def _complete(bucket: Bucket, timeframe: Timeframe, base: Timeframe, now: datetime) -> bool:
    end = bucket.timestamp + timeframe.delta
    return end <= now and bucket.last_stored + base.delta >= end


def regular_tail(
    buckets: list[Bucket], timeframe: Timeframe, max_fill: int = MAX_FILL
) -> tuple[list[datetime], list[float], list[bool]]:
    """The newest evenly spaced run of ``buckets`` (ascending), short holes carried forward.

    Returns open times, closes, and for each candle whether it was bridged. A candle whose
    close is not a positive price (an exchange's outage day recorded as all zeros) counts
    as missing: models work on log prices, and one such candle must not sink a series.
    """
    buckets = [bucket for bucket in buckets if bucket.close > 0]  # NaN compares False too
    if not buckets:
        return [], [], []
    opens, closes, bridged = [buckets[-1].timestamp], [buckets[-1].close], [False]
    for newer, older in zip(reversed(buckets[1:]), reversed(buckets[:-1]), strict=True):
        missing = int((newer.timestamp - older.timestamp) / timeframe.delta) - 1
        if missing > max_fill:
            break
        for k in range(missing, 0, -1):  # the missing candles close where `older` closed
            opens.append(older.timestamp + k * timeframe.delta)
            closes.append(older.close)
            bridged.append(True)
        opens.append(older.timestamp)
        closes.append(older.close)
        bridged.append(False)
    return opens[::-1], closes[::-1], bridged[::-1]


async def load_series(
    session: AsyncSession,
    cache: CacheManager,
    coin: CoinOut,
    *,
    candles: int,
    now: datetime,
) -> PriceSeries:
    """Up to ``candles`` closed candles ending at the newest one; 409 when there are none."""
    base = await stored_timeframe(session, cache, coin)
    if base is None:
        raise conflicting_field("symbols", f"{coin.symbol} has no stored candles to forecast from")
    timeframe = series_timeframe(base)
    buckets = await market_data.candles_between(
        session,
        coin.id,
        timeframe,
        start=None,
        end=timeframe.floor(now),  # the candle holding `now` is still forming
        limit=candles + 1,
        resample=timeframe is not base,
    )
    closed = [b for b in buckets if _complete(b, timeframe, base, now)]
    opens, closes, bridged = regular_tail(closed, timeframe)
    return PriceSeries(
        timeframe,
        opens[-candles:],
        np.asarray(closes[-candles:], dtype=np.float64),
        filled=sum(bridged[-candles:]),
    )
