"""Split an OHLCV CSV into raw rows for :func:`app.ingestion.batch.validate_batch`.

Pure: standard library plus :mod:`app.ingestion.batch`. Three layouts are recognised:

* ``cryptodatadownload``: CryptoDataDownload files (the bundled demo files in ``app/data/demo``
  are real ones): an optional banner line (``https://www.CryptoDataDownload.com``,
  ``Created on ...``), then ``date,symbol,open,high,low,close,volume_btc,volume`` or the newer
  ``unix,date,symbol,open,high,low,close,Volume BTC,Volume USD``, rows newest first. The volume
  kept is the base currency's, the ``volume_X`` / ``Volume X`` column whose X starts the pair in
  the ``symbol`` column (BTCUSD, BTC/USD); a ``unix`` column (seconds or milliseconds) is
  preferred over ``date`` (hourly dates are on a 12-hour clock: ``2019-10-17 09-AM``).
* ``header``: any header naming a time column (timestamp, unix, time, open_time, datetime,
  date; the first found in that order) and open, high, low, close, volume; case-insensitive,
  spaces and dashes count as underscores, other columns are ignored.
* ``ccxt``: no header, six columns in ccxt order ``ms, open, high, low, close, volume``.

A layout of the caller's own (the demo data's wide table) is read by :func:`rows_under_header`
with a function that finds the columns in its header.

Row numbers are physical line numbers, 1-based, counting the banner, the header and blank
lines; blank lines are skipped. A row with the wrong number of columns becomes a RawRow with a
``problem`` (reported as field "row"); a file whose layout is not recognised raises
:class:`BatchRejected` with field "header". Values stay text: parsing, ordering and all the
rules belong to ``validate_batch``.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from _csv import Reader

from app.ingestion.batch import BatchRejected, RawRow, RowError, gc_paused, too_many_rows

__all__ = [
    "Columns",
    "CsvLayout",
    "HeaderReader",
    "ParsedCsv",
    "header_error",
    "parse_csv",
    "rows_from_csv",
    "rows_under_header",
]

CsvLayout = Literal["cryptodatadownload", "header", "ccxt"]

EXPECTED_COLUMNS = "timestamp,open,high,low,close,volume"
_TIME_COLUMNS = ("timestamp", "unix", "unix_timestamp", "time", "open_time", "datetime", "date")
_PRICE_COLUMNS = ("open", "high", "low", "close")
_CCXT_WIDTH = 6


@dataclass(frozen=True, slots=True)
class ParsedCsv:
    layout: CsvLayout
    rows: list[RawRow]


@dataclass(frozen=True, slots=True)
class Columns:
    """Where each candle field stands in a row of ``width`` cells (0-based positions)."""

    width: int
    time: int
    open: int
    high: int
    low: int
    close: int
    volume: int


# Reads a header line (its line number and cells) as Columns, or raises header_error.
HeaderReader = Callable[[int, list[str]], Columns]


def rows_from_csv(text: str, *, max_rows: int | None = None) -> list[RawRow]:
    """Raw rows of a CSV text in any supported layout (see the module docstring)."""
    return parse_csv(text, max_rows=max_rows).rows


def parse_csv(text: str, *, max_rows: int | None = None) -> ParsedCsv:
    """Like :func:`rows_from_csv`, also naming the layout that was recognised.

    ``max_rows`` stops reading as soon as there are more data rows than that
    (:class:`BatchTooLarge`), so an oversized upload is not split whole first.
    """
    with gc_paused():
        return _parse(text, max_rows)


def rows_under_header(text: str, read_header: HeaderReader) -> list[RawRow]:
    """Raw rows of a CSV whose first non-blank line is a header ``read_header`` understands."""
    reader = _reader(text)
    try:
        header = _next_row(reader)
        if header is None:
            return []
        columns = read_header(*header)
        with gc_paused():
            return _rows(reader, columns, [], sys.maxsize)
    except csv.Error as error:
        raise _unreadable(reader, error) from None


def _reader(text: str) -> Reader:
    # csv's own line counter stays right even if a quoted field spans lines.
    return csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))


def _parse(text: str, max_rows: int | None) -> ParsedCsv:
    reader = _reader(text)
    try:
        first = _next_row(reader)
        if first is None:
            return ParsedCsv("header", [])
        layout, columns, pending = _detect(first, reader)
        limit = max_rows if max_rows is not None else sys.maxsize
        return ParsedCsv(layout, _rows(reader, columns, pending, limit))
    except csv.Error as error:
        raise _unreadable(reader, error) from None


def _unreadable(reader: Reader, error: csv.Error) -> BatchRejected:
    """What the csv module cannot split (a field over its 128 KiB limit, say), as the batch's
    rejection naming the line, not a 500. Its messages never contain the data."""
    return BatchRejected([RowError(reader.line_num, "body", f"is not readable CSV: {error}")])


def _rows(
    reader: Reader, columns: Columns, pending: list[tuple[int, list[str]]], limit: int
) -> list[RawRow]:
    """The rows already read (``pending``), then the rest of ``reader``, at most ``limit``."""
    width = columns.width
    time, open_, high, low = columns.time, columns.open, columns.high, columns.low
    close, volume = columns.close, columns.volume
    rows = [_raw_row(line, cells, columns) for line, cells in pending]
    append = rows.append
    for cells in reader:  # the loop body of _raw_row, inlined: this runs once per line
        if len(cells) == width:
            values = {
                "timestamp": cells[time],
                "open": cells[open_],
                "high": cells[high],
                "low": cells[low],
                "close": cells[close],
                "volume": cells[volume],
            }
            append(RawRow(reader.line_num, values))
        elif not cells or (len(cells) == 1 and not cells[0].strip()):
            continue  # a blank line, or one of spaces
        else:
            append(RawRow(reader.line_num, {}, _width_problem(cells, width)))
        if len(rows) > limit:
            raise too_many_rows(limit)
    return rows


def _raw_row(line: int, cells: list[str], columns: Columns) -> RawRow:
    """One non-blank row (as _next_row returns them)."""
    if len(cells) == columns.width:
        values = {
            "timestamp": cells[columns.time],
            "open": cells[columns.open],
            "high": cells[columns.high],
            "low": cells[columns.low],
            "close": cells[columns.close],
            "volume": cells[columns.volume],
        }
        return RawRow(line, values)
    return RawRow(line, {}, _width_problem(cells, columns.width))


def _width_problem(cells: list[str], width: int) -> str:
    return f"has {len(cells)} columns, expected {width}"


def _next_row(reader: Reader) -> tuple[int, list[str]] | None:
    """The next non-blank row and its physical line number, or None at the end."""
    for cells in reader:
        if cells and not (len(cells) == 1 and not cells[0].strip()):
            return reader.line_num, cells
    return None


def _detect(
    first: tuple[int, list[str]], reader: Reader
) -> tuple[CsvLayout, Columns, list[tuple[int, list[str]]]]:
    """The layout, its columns, and the data rows already read while finding them."""
    line, cells = first
    if _is_ccxt_row(cells):
        return "ccxt", Columns(_CCXT_WIDTH, 0, 1, 2, 3, 4, 5), [first]
    header = first
    if not _looks_like_header(cells):
        second = _next_row(reader)
        if second is None or not _looks_like_header(second[1]):
            raise header_error(line, f"unrecognised layout; expected columns {EXPECTED_COLUMNS}")
        header = second  # the first line was a banner (CryptoDataDownload)
    header_line, names = header[0], _normalise(header[1])
    data = _next_row(reader)
    pending = [data] if data is not None else []
    layout, columns = _header_columns(header_line, names, data)
    return layout, columns, pending


def _normalise(cells: list[str]) -> list[str]:
    # "Volume BTC", "volume_btc" and "Unix Timestamp" all occur across CDD vintages.
    return [cell.strip().lower().replace(" ", "_").replace("-", "_") for cell in cells]


def _looks_like_header(cells: list[str]) -> bool:
    names = _normalise(cells)
    return "open" in names and "close" in names


def _is_ccxt_row(cells: list[str]) -> bool:
    if len(cells) != _CCXT_WIDTH:
        return False
    try:
        for cell in cells[1:]:
            float(cell)
    except ValueError:
        return False
    return True


def _header_columns(
    line: int, names: list[str], data: tuple[int, list[str]] | None
) -> tuple[CsvLayout, Columns]:
    time_name = next((name for name in _TIME_COLUMNS if name in names), None)
    missing = [name for name in _PRICE_COLUMNS if name not in names]
    if time_name is None:
        missing.insert(0, "timestamp")
    volume = _volume_index(line, names, data)
    if volume is None:
        missing.append("volume")
    if missing or time_name is None or volume is None:
        raise header_error(
            line, f"missing column(s) {', '.join(missing)}; expected columns {EXPECTED_COLUMNS}"
        )
    layout: CsvLayout = "cryptodatadownload" if names[volume].startswith("volume_") else "header"
    open_, high, low, close = (names.index(name) for name in _PRICE_COLUMNS)
    return layout, Columns(len(names), names.index(time_name), open_, high, low, close, volume)


def _volume_index(line: int, names: list[str], data: tuple[int, list[str]] | None) -> int | None:
    """The base-currency volume column: CDD's ``volume_X`` matching the symbol, else ``volume``."""
    named = [index for index, name in enumerate(names) if name.startswith("volume_") and name[7:]]
    if named and "symbol" in names:
        if data is None:
            return named[0]  # no rows: any choice reads nothing
        cells = data[1]
        position = names.index("symbol")
        symbol = cells[position] if position < len(cells) else ""
        pair = symbol.replace("/", "").replace("-", "").replace("_", "").strip().upper()
        matches = [
            index
            for index in named
            if pair.startswith(names[index].removeprefix("volume_").upper())
        ]
        if len(matches) != 1:
            raise header_error(line, "no volume column in the base currency of the symbol column")
        return matches[0]
    if "volume" in names:
        return names.index("volume")
    return None


def header_error(line: int, message: str) -> BatchRejected:
    """The refusal of a file whose header (on ``line``) does not say where the candles are."""
    return BatchRejected([RowError(line, "header", message)])
