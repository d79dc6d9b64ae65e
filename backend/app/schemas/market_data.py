"""Response models for candles, prices, coverage and ingestion.

Hot endpoints encode their bodies with orjson themselves; these models document the shapes
in the OpenAPI schema and are what the encoders follow.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from app.market import Timeframe


class CandleOut(BaseModel):
    timestamp: datetime = Field(description="Candle open time, UTC.")
    open: float
    high: float
    low: float
    close: float
    volume: float = Field(description="Traded volume in the base currency.")
    forming: bool = Field(
        description="True for the newest candle when the period it covers has not ended "
        "or the stored data does not reach its end yet."
    )


class CandlePage(BaseModel):
    symbol: str
    interval: Timeframe
    base_timeframe: Timeframe = Field(description="Length of the stored candles.")
    candles: list[CandleOut] = Field(description="Ascending by timestamp.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the following page; null on the last page."
    )


class PriceOut(BaseModel):
    symbol: str
    price: float = Field(description="Close of the newest stored candle, USD.")
    timestamp: datetime = Field(description="Open time of that candle, UTC.")


class Gap(BaseModel):
    start: datetime = Field(description="Open time of the first missing candle.")
    end: datetime = Field(description="Open time of the last missing candle.")
    missing: int = Field(description="Candles missing in this gap.")


class Coverage(BaseModel):
    symbol: str
    base_timeframe: Timeframe | None
    first: datetime | None
    last: datetime | None
    count: int
    missing: int = Field(description="Candles missing between first and last.")
    gaps: list[Gap]


class IngestResult(BaseModel):
    symbol: str
    timeframe: Timeframe
    received: int
    inserted: int
    updated: int
    unchanged: int
    first: datetime | None
    last: datetime | None
