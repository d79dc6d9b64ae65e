"""Consistency rules every stored candle must satisfy, shared by every ingestion path."""

from __future__ import annotations

import math

from app.market import Candle


def candle_problem(candle: Candle) -> str | None:
    """The first rule ``candle`` breaks, in words, or None when it is consistent."""
    values = {
        "open": candle.open,
        "high": candle.high,
        "low": candle.low,
        "close": candle.close,
        "volume": candle.volume,
    }
    for field, value in values.items():
        if not math.isfinite(value):
            return f"{field} is not a finite number"
        if value < 0:
            return f"{field} is negative"
    if candle.high < max(candle.open, candle.close):
        return "high is below open or close"
    if candle.low > min(candle.open, candle.close):
        return "low is above open or close"
    return None
