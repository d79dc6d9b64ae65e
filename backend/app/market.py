"""Market vocabulary shared by every layer: candles and timeframes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# 1970-01-01 was a Thursday; exchanges start weekly candles on Monday 00:00 UTC.
FIRST_MONDAY = datetime(1970, 1, 5, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Candle:
    """One OHLCV bar; ``timestamp`` is the tz-aware UTC time the candle opened."""

    timestamp: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float  # in the base currency (BTC for BTC/USD)


class Timeframe(StrEnum):
    """Candle lengths, spelled as ccxt spells them."""

    M1 = "1m"
    M5 = "5m"
    M15 = "15m"
    M30 = "30m"
    H1 = "1h"
    H4 = "4h"
    D1 = "1d"
    W1 = "1w"

    @property
    def seconds(self) -> int:
        return _SECONDS[self]

    @property
    def delta(self) -> timedelta:
        return timedelta(seconds=self.seconds)

    @property
    def origin(self) -> datetime:
        """The instant buckets are counted from: the epoch, or the first Monday for weeks."""
        return FIRST_MONDAY if self is Timeframe.W1 else EPOCH

    def floor(self, moment: datetime) -> datetime:
        """Start of the candle that contains ``moment``."""
        elapsed = int((moment - self.origin).total_seconds())
        return self.origin + timedelta(seconds=elapsed - elapsed % self.seconds)

    def is_aligned(self, moment: datetime) -> bool:
        return self.floor(moment) == moment

    @classmethod
    def from_seconds(cls, seconds: int) -> Timeframe | None:
        return _BY_SECONDS.get(seconds)


_SECONDS = {
    Timeframe.M1: 60,
    Timeframe.M5: 300,
    Timeframe.M15: 900,
    Timeframe.M30: 1800,
    Timeframe.H1: 3600,
    Timeframe.H4: 14400,
    Timeframe.D1: 86400,
    Timeframe.W1: 604800,
}
_BY_SECONDS = {seconds: frame for frame, seconds in _SECONDS.items()}

# Timeframes a coin's stored candles may have, and the ones a query may resample to.
BASE_TIMEFRAMES = (
    Timeframe.M1,
    Timeframe.M5,
    Timeframe.M15,
    Timeframe.M30,
    Timeframe.H1,
    Timeframe.H4,
    Timeframe.D1,
)
QUERY_INTERVALS = (Timeframe.H1, Timeframe.H4, Timeframe.D1, Timeframe.W1)


class Horizon(StrEnum):
    """How far ahead a prediction looks, measured from its origin (the last closed candle)."""

    H1 = "1h"
    H4 = "4h"
    H24 = "24h"
    D7 = "7d"

    @property
    def delta(self) -> timedelta:
        return _HORIZON_DELTAS[self]

    def steps(self, timeframe: Timeframe) -> int | None:
        """Candles of ``timeframe`` in this horizon, or None when it does not divide it."""
        whole, rest = divmod(int(self.delta.total_seconds()), timeframe.seconds)
        return whole if rest == 0 and whole > 0 else None


_HORIZON_DELTAS = {
    Horizon.H1: timedelta(hours=1),
    Horizon.H4: timedelta(hours=4),
    Horizon.H24: timedelta(hours=24),
    Horizon.D7: timedelta(days=7),
}
