"""The service's vocabulary as GET /api/v1/meta tells it: timeframes, horizons and models."""

from __future__ import annotations

from pydantic import BaseModel, Field

from app.market import Horizon, Timeframe


class TimeframeInfo(BaseModel):
    name: Timeframe
    seconds: int = Field(description="Length of one candle.")
    storable: bool = Field(description="A coin's stored candles may have this length.")
    queryable: bool = Field(
        description="An `interval` of `GET /api/v1/cryptocurrencies/{symbol}/ohlcv`."
    )


class HorizonInfo(BaseModel):
    name: Horizon
    seconds: int = Field(description="How far past its origin a forecast looks.")
    steps: dict[Timeframe, int] = Field(
        description="Candles of each storable timeframe the horizon spans; a coin whose "
        "stored timeframe is missing here cannot be forecast at this horizon."
    )


class CandlePages(BaseModel):
    cached_limits: list[int] = Field(
        description="`limit`s of the newest-candles page that are answered from the cache."
    )
    max_limit: int = Field(description="The largest `limit` a page may have.")


class Vocabulary(BaseModel):
    version: str = Field(description="The service's version.")
    timeframes: list[TimeframeInfo] = Field(description="Shortest first.")
    horizons: list[HorizonInfo] = Field(description="Shortest first.")
    models: list[str] = Field(description="Registered models, sorted; see `GET /api/v1/models`.")
    default_models: list[str] = Field(description="The models a request that names none runs.")
    baseline: str = Field(description="The model every score is relative to.")
    candle_pages: CandlePages
