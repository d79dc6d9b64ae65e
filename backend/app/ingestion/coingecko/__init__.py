"""CoinGecko as a source of candles: prices sampled over a time range, turned into candle rows.

* :mod:`.config`: plans, keys and limits; :mod:`.client`: requests, chunking and retries;
  :mod:`.errors`: retryable versus fatal failures.
* :mod:`.payload`: the market_chart/range answer, validated like user input.
* :mod:`.candles`: candle rows of any timeframe from the price samples, which then go through
  :func:`app.ingestion.batch.validate_batch` like every other source's rows.
"""

from app.ingestion.coingecko.candles import candle_rows_from_points
from app.ingestion.coingecko.client import CoinGeckoClient
from app.ingestion.coingecko.config import CoinGeckoConfig, Plan
from app.ingestion.coingecko.errors import CoinGeckoError, CoinGeckoFatal, CoinGeckoRetryable
from app.ingestion.coingecko.payload import MarketPoint, parse_market_chart

__all__ = [
    "CoinGeckoClient",
    "CoinGeckoConfig",
    "CoinGeckoError",
    "CoinGeckoFatal",
    "CoinGeckoRetryable",
    "MarketPoint",
    "Plan",
    "candle_rows_from_points",
    "parse_market_chart",
]
