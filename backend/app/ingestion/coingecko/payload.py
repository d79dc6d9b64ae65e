"""Read a market_chart/range answer: price samples, checked like user input.

``GET /coins/{id}/market_chart/range?vs_currency=usd&from=<unix s>&to=<unix s>`` answers
``{"prices": [[ms, price], ...], "market_caps": [[ms, cap], ...],
"total_volumes": [[ms, volume_24h], ...]}`` (docs.coingecko.com, "Coin Historical Chart Data
within Time Range by ID"). These are price *samples* (snapshots), not candles, and
``total_volumes`` is a rolling 24-hour total in the quote currency, not a per-sample volume.

Upstream data is validated like user input: every number finite and non-negative, timestamps
integer milliseconds, rows of the right length, timestamps strictly increasing. A payload that
breaks a rule raises :class:`CoinGeckoFatal` naming the first bad element, e.g. ``prices[3][1]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from app.ingestion.coingecko.errors import CoinGeckoFatal
from app.market import EPOCH

__all__ = ["MarketPoint", "parse_market_chart"]

# Plausible millisecond timestamps: 2001-09-09 .. 2286-11-20. A value in seconds (~1.7e9)
# or microseconds (~1.7e15) falls outside, so a unit mix-up is caught instead of stored.
_MIN_MS: Final = 10**12
_MAX_MS: Final = 10**13


@dataclass(frozen=True, slots=True)
class MarketPoint:
    """One market_chart sample. ``volume`` is CoinGecko's rolling 24 h total in the quote
    currency at that instant, NOT the volume traded since the previous sample."""

    timestamp: datetime  # tz-aware UTC, millisecond precision, as sent by CoinGecko
    price: float
    market_cap: float | None  # None when the response had no market cap for this instant
    volume: float | None  # None when the response had no total_volume for this instant


def parse_market_chart(payload: object) -> list[MarketPoint]:
    """Validate a market_chart(/range) body and join its three series by timestamp.

    ``prices`` is required; ``market_caps`` / ``total_volumes`` may be missing, and a
    ``null`` value in them becomes None.
    """
    if not isinstance(payload, dict):
        raise CoinGeckoFatal(f"expected a JSON object, got {_json_type(payload)}")
    if "prices" not in payload:
        raise CoinGeckoFatal("the response has no 'prices'")
    prices = _pairs(payload["prices"], "prices", nullable=False)
    caps = _pairs(payload.get("market_caps", []), "market_caps", nullable=True)
    volumes = _pairs(payload.get("total_volumes", []), "total_volumes", nullable=True)
    cap_at = dict(caps)
    volume_at = dict(volumes)
    points = []
    for ms, price in prices:
        assert price is not None  # nullable=False
        points.append(MarketPoint(_from_ms(ms), price, cap_at.get(ms), volume_at.get(ms)))
    return points


def _pairs(value: object, name: str, *, nullable: bool) -> list[tuple[int, float | None]]:
    rows = _rows(value, name)
    pairs: list[tuple[int, float | None]] = []
    previous: int | None = None
    for i, row in enumerate(rows):
        where = f"{name}[{i}]"
        if not isinstance(row, list) or len(row) != 2:
            raise CoinGeckoFatal(f"{where}: expected [ms, value], got {_shape(row)}")
        ms = _timestamp(row[0], f"{where}[0]", previous)
        number = None if nullable and row[1] is None else _number(row[1], f"{where}[1]")
        pairs.append((ms, number))
        previous = ms
    return pairs


def _rows(value: object, name: str) -> list[object]:
    if not isinstance(value, list):
        raise CoinGeckoFatal(f"{name}: expected a list, got {_json_type(value)}")
    return value


def _timestamp(value: object, where: str, previous: int | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise CoinGeckoFatal(
            f"{where}: timestamp must be integer milliseconds, got {_json_type(value)}"
        )
    if not _MIN_MS <= value < _MAX_MS:
        raise CoinGeckoFatal(f"{where}: timestamp {value} is not a plausible millisecond time")
    if previous is not None and value <= previous:
        raise CoinGeckoFatal(f"{where}: timestamp {value} is not after the previous row's")
    return value


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CoinGeckoFatal(f"{where}: expected a number, got {_json_type(value)}")
    try:
        number = float(value)
    except OverflowError:  # an integer beyond float range, e.g. 10**400
        raise CoinGeckoFatal(f"{where}: number is not finite") from None
    if not math.isfinite(number):
        raise CoinGeckoFatal(f"{where}: number is not finite")
    if number < 0:
        raise CoinGeckoFatal(f"{where}: number is negative")
    return number


def _from_ms(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def _json_type(value: object) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", float: "float"}
    if value is None:
        return "null"
    return names.get(type(value), type(value).__name__)


def _shape(row: object) -> str:
    return f"an array of {len(row)}" if isinstance(row, list) else _json_type(row)
