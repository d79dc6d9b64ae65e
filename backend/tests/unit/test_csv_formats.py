"""rows_from_csv: each layout, physical line numbers, and the bundled CryptoDataDownload files."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from app.ingestion.batch import (
    BatchRejected,
    BatchTooLarge,
    RawRow,
    RowError,
    summarise,
    validate_batch,
)
from app.ingestion.csv_formats import parse_csv, rows_from_csv
from app.ingestion.demo_data import DEMO_DIR
from app.market import Candle, Timeframe

NOW = datetime(2024, 1, 1, tzinfo=UTC)
# The CDD hourly file was downloaded while its newest candle (09-AM) was still open.
CDD_DOWNLOADED = datetime(2019, 10, 17, 9, 30, tzinfo=UTC)
EXPECTED_HEADER = "expected columns timestamp,open,high,low,close,volume"
CDD_BANNER = "Timestamps are UTC timezone,https://www.CryptoDataDownload.com"
CDD_OLD_HEADER = "date,symbol,open,high,low,close,volume_btc,volume"
VALUE_FIELDS = ("open", "high", "low", "close", "volume")

# The first lines of app/data/demo/Coinbase_BTCUSD_1h.csv, verbatim (CRLF, newest first).
CDD_HOURLY_HEAD = (
    "Timestamps are UTC timezone,https://www.CryptoDataDownload.com\r\n"
    "date,symbol,open,high,low,close,volume_btc,volume\r\n"
    "2019-10-17 09-AM,BTCUSD,8051,8056.83,8021.23,8035.88,61.25,492394.56\r\n"
    "2019-10-17 08-AM,BTCUSD,7975.89,8070,7975.89,8051,370.45,2971610.86\r\n"
    "2019-10-17 07-AM,BTCUSD,7964.62,7987.82,7964.61,7975.89,121.68,970521.83\r\n"
    "2019-10-17 06-AM,BTCUSD,7984.02,7993.97,7958.29,7964.62,212.35,1692336.84\r\n"
    "2019-10-17 05-AM,BTCUSD,7941.71,7986.99,7937.01,7984.02,97.26,774064.91\r\n"
)


def utc(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def values(*cells: str) -> dict[str, object]:
    return dict(zip(("timestamp", "open", "high", "low", "close", "volume"), cells, strict=True))


def lines(*rows: str) -> str:
    return "\r\n".join(rows) + "\r\n"


def totals(candles: list[Candle]) -> tuple[float, ...]:
    """Exact sums of each value column, rounded to what the files' decimals can add up to."""
    return tuple(round(math.fsum(getattr(c, name) for c in candles), 6) for name in VALUE_FIELDS)


def header_error(text: str) -> RowError:
    with pytest.raises(BatchRejected) as caught:
        rows_from_csv(text)
    (error,) = caught.value.errors
    return error


# ----------------------------------------------------------------------------- CryptoDataDownload


def test_cdd_sample_uses_the_base_volume_and_line_numbers() -> None:
    parsed = parse_csv(CDD_HOURLY_HEAD)
    assert parsed.layout == "cryptodatadownload"
    assert parsed.rows[0] == RawRow(
        3, values("2019-10-17 09-AM", "8051", "8056.83", "8021.23", "8035.88", "61.25")
    )
    assert [row.row for row in parsed.rows] == [3, 4, 5, 6, 7]


def test_cdd_sample_newest_first_becomes_ascending_hourly_candles() -> None:
    batch = validate_batch(rows_from_csv(CDD_HOURLY_HEAD), timeframe=None, now=CDD_DOWNLOADED)
    assert batch.timeframe is Timeframe.H1
    assert batch.candles == [
        Candle(utc(2019, 10, 17, 5), 7941.71, 7986.99, 7937.01, 7984.02, 97.26),
        Candle(utc(2019, 10, 17, 6), 7984.02, 7993.97, 7958.29, 7964.62, 212.35),
        Candle(utc(2019, 10, 17, 7), 7964.62, 7987.82, 7964.61, 7975.89, 121.68),
        Candle(utc(2019, 10, 17, 8), 7975.89, 8070.0, 7975.89, 8051.0, 370.45),
        Candle(utc(2019, 10, 17, 9), 8051.0, 8056.83, 8021.23, 8035.88, 61.25),
    ]


def test_cdd_rows_after_now_are_refused_by_line() -> None:
    before_download = datetime(2019, 10, 17, 8, 59, tzinfo=UTC)
    with pytest.raises(BatchRejected) as caught:
        validate_batch(rows_from_csv(CDD_HOURLY_HEAD), timeframe=None, now=before_download)
    assert caught.value.errors == [RowError(3, "timestamp", "is in the future")]


def test_cdd_daily_with_created_on_banner() -> None:
    text = (
        "Created on 10-17-2019,https://www.CryptoDataDownload.com\n"
        "date,symbol,open,high,low,close,volume_btc,volume\n"
        "2019-10-17,BTCUSD,7993.54,8070,7937.01,8034.32,1570.08,12537245.82\n"
        "2019-10-16,BTCUSD,8162.44,8171.59,7908.86,7993.54,8123.72,65132771.81\n"
    )
    batch = validate_batch(rows_from_csv(text), timeframe=None, now=NOW)
    assert batch.timeframe is Timeframe.D1
    assert batch.candles == [
        Candle(utc(2019, 10, 16), 8162.44, 8171.59, 7908.86, 7993.54, 8123.72),
        Candle(utc(2019, 10, 17), 7993.54, 8070.0, 7937.01, 8034.32, 1570.08),
    ]


def test_newer_cdd_layout_prefers_unix_and_volume_of_the_base_coin() -> None:
    text = (
        "https://www.CryptoDataDownload.com\n"
        "unix,date,symbol,open,high,low,close,Volume BTC,Volume USDT,tradecount\n"
        "1571302800000,2019-10-17 09:00:00,BTC/USDT,8051,8056.83,8021.23,8035.88,61.25,4923,9\n"
        "1571299200,2019-10-17 08:00:00,BTC/USDT,7975.89,8070,7975.89,8051,370.45,29716,7\n"
    )
    parsed = parse_csv(text)
    assert parsed.layout == "cryptodatadownload"
    assert [row.values["timestamp"] for row in parsed.rows] == ["1571302800000", "1571299200"]
    assert [row.values["volume"] for row in parsed.rows] == ["61.25", "370.45"]
    batch = validate_batch(parsed.rows, timeframe=None, now=CDD_DOWNLOADED)
    assert [c.timestamp for c in batch.candles] == [utc(2019, 10, 17, 8), utc(2019, 10, 17, 9)]


def test_cdd_without_a_base_volume_column_is_refused() -> None:
    text = "date,symbol,open,high,low,close,volume_eth,volume\n2019-10-17,BTCUSD,1,2,1,1,5,6\n"
    error = header_error(text)
    assert error == RowError(
        1, "header", "no volume column in the base currency of the symbol column"
    )
    assert "BTCUSD" not in error.message


def test_bundled_hourly_file_validates_to_the_known_values() -> None:
    path = DEMO_DIR / "Coinbase_BTCUSD_1h.csv"
    rows = rows_from_csv(path.read_text(encoding="utf-8"))
    assert (rows[0].row, rows[-1].row) == (3, 6002)
    batch = validate_batch(rows, timeframe=None, now=CDD_DOWNLOADED, skip_invalid=False)
    assert len(batch.candles) == 6000
    assert batch.timeframe is Timeframe.H1
    assert batch.candles[0].timestamp == utc(2019, 2, 9, 10)
    assert batch.candles[-1].timestamp == utc(2019, 10, 17, 9)
    # As the CryptoDataDownload reader that came before this one read them (test_demo_data).
    assert totals(batch.candles) == (
        46622242.58,
        46859936.87,
        46358300.22,
        46626613.7,
        3368566.87217,
    )


def test_bundled_daily_file_validates_to_the_known_values() -> None:
    path = DEMO_DIR / "Coinbase_BTCUSD_d.csv"
    batch = validate_batch(
        rows_from_csv(path.read_text(encoding="utf-8")), timeframe=None, now=CDD_DOWNLOADED
    )
    assert len(batch.candles) == 1770  # with a 12-day hole, still inferred as daily
    assert batch.timeframe is Timeframe.D1
    assert totals(batch.candles) == (
        6563452.76,
        6770567.18,
        6321850.55,
        6570987.24,
        18770612.73286,
    )


def test_cdd_old_layout_parses_to_hand_computed_candles() -> None:
    text = lines(
        CDD_BANNER,
        CDD_OLD_HEADER,
        "2019-10-17 12-PM,BTCUSD,8051,8056.83,8021.23,8035.88,61.25,492394.56",
        "2019-10-17 01-AM,BTCUSD,7990,8000.5,7980,7995,12.5,99875",
        "2019-10-17 12-AM,BTCUSD,7993.54,8001,7985.1,7990,3,23970",
        "2019-10-16 11-PM,BTCUSD,8000,8010,7990,7993.54,0.5,4000",
    )

    assert validate_batch(rows_from_csv(text), timeframe=None, now=NOW).candles == [
        Candle(utc(2019, 10, 16, 23), 8000.0, 8010.0, 7990.0, 7993.54, 0.5),
        Candle(utc(2019, 10, 17, 0), 7993.54, 8001.0, 7985.1, 7990.0, 3.0),
        Candle(utc(2019, 10, 17, 1), 7990.0, 8000.5, 7980.0, 7995.0, 12.5),
        Candle(utc(2019, 10, 17, 12), 8051.0, 8056.83, 8021.23, 8035.88, 61.25),
    ]


def test_cdd_daily_layout_without_banner() -> None:
    text = lines(CDD_OLD_HEADER, "2014-12-01,BTCUSD,300,370,300,370,0.05656,19.53")

    batch = validate_batch(rows_from_csv(text), timeframe=Timeframe.D1, now=NOW)
    assert batch.candles == [Candle(utc(2014, 12, 1), 300, 370, 300, 370, 0.05656)]


def test_cdd_unix_seconds_and_milliseconds_agree_with_the_date_column() -> None:
    text = lines(
        "https://www.CryptoDataDownload.com",
        "unix,date,symbol,open,high,low,close,Volume BTC,Volume USD",
        "1571302800000,2019-10-17 09:00:00,BTC/USD,2,3,1,2.5,10,25",
        "1571299200,2019-10-17 08:00:00,BTC/USD,1,2,0.5,1.5,4,6",
    )

    candles = validate_batch(rows_from_csv(text), timeframe=None, now=NOW).candles

    assert [c.timestamp for c in candles] == [utc(2019, 10, 17, 8), utc(2019, 10, 17, 9)]
    assert [c.volume for c in candles] == [4.0, 10.0]  # the BTC column, not the USD one


@pytest.mark.parametrize(
    ("bad_row", "error"),
    [
        ("2019-10-17 12-AM,BTCUSD,1,abc,1,1,1,1", RowError(4, "high", "is not a number")),
        ("2019-10-17 12-AM,BTCUSD,1,2,1", RowError(4, "row", "has 5 columns, expected 8")),
        (
            "2019-10-17 13-PM,BTCUSD,1,2,1,1,1,1",
            RowError(4, "timestamp", "is not an ISO 8601 time or epoch milliseconds"),
        ),
        ("2019-10-17 12-AM,BTCUSD,1,nan,1,1,1,1", RowError(4, "high", "is not a finite number")),
    ],
)
def test_cdd_malformed_row_names_its_line(bad_row: str, error: RowError) -> None:
    text = lines(CDD_BANNER, CDD_OLD_HEADER, "2019-10-17 01-AM,BTCUSD,1,2,1,1,1,1", bad_row)

    with pytest.raises(BatchRejected) as caught:
        validate_batch(rows_from_csv(text), timeframe=Timeframe.H1, now=NOW)
    assert caught.value.errors == [error]


def test_cdd_file_without_header_is_refused_at_line_1() -> None:
    error = header_error(lines(CDD_BANNER, "2019-10-17 01-AM,BTCUSD,1,2,1,1,1,1"))
    assert error == RowError(1, "header", f"unrecognised layout; {EXPECTED_HEADER}")


def test_cdd_missing_column_and_unknown_volume_are_refused_at_the_header() -> None:
    no_low = lines(
        CDD_BANNER,
        "date,symbol,open,high,close,volume_btc,volume",
        "2019-10-17 01-AM,BTCUSD,1,2,1,1,1",
    )
    assert header_error(no_low) == RowError(
        2, "header", f"missing column(s) low; {EXPECTED_HEADER}"
    )

    other_pair = lines(CDD_BANNER, CDD_OLD_HEADER, "2019-10-17 01-AM,ETHUSD,1,2,1,1,1,1")
    assert header_error(other_pair) == RowError(
        2, "header", "no volume column in the base currency of the symbol column"
    )


# ----------------------------------------------------------------------------- plain header


def test_plain_header_layout() -> None:
    text = (
        "timestamp,open,high,low,close,volume\n"
        "2023-12-31T00:00:00Z,100,110,90,105,1.5\n"
        "2023-12-31T01:00:00Z,105,115,95,100,2\n"
    )
    parsed = parse_csv(text)
    assert parsed.layout == "header"
    assert parsed.rows == [
        RawRow(2, values("2023-12-31T00:00:00Z", "100", "110", "90", "105", "1.5")),
        RawRow(3, values("2023-12-31T01:00:00Z", "105", "115", "95", "100", "2")),
    ]
    batch = validate_batch(parsed.rows, timeframe=None, now=NOW)
    assert batch.candles[1] == Candle(utc(2023, 12, 31, 1), 105.0, 115.0, 95.0, 100.0, 2.0)


@pytest.mark.parametrize("time_name", ["Time", "DATE", "datetime", "Unix", "Open Time"])
def test_header_is_case_insensitive_in_any_order_with_extra_columns(time_name: str) -> None:
    text = f"Volume,Close,Trades,Low,High,Open,{time_name}\n3,4,99,1,5,2,1703980800000\n"
    (row,) = rows_from_csv(text)
    assert row == RawRow(2, values("1703980800000", "2", "5", "1", "4", "3"))


def test_blank_lines_are_skipped_but_counted() -> None:
    text = (
        "\n"
        "timestamp,open,high,low,close,volume\n"
        "\n"
        "2023-12-31T00:00:00Z,1,2,1,2,1\n"
        "   \n"
        "2023-12-31T01:00:00Z,1,2,1,2,1\n"
        "\n"
    )
    assert [row.row for row in rows_from_csv(text)] == [4, 6]


def test_byte_order_mark_and_quotes_are_handled() -> None:
    text = (
        '\ufeff"timestamp","open","high","low","close","volume"\r\n'
        '"1703980800000","1","2","1","2","1"\r\n'
    )
    (row,) = rows_from_csv(text)
    assert row == RawRow(2, values("1703980800000", "1", "2", "1", "2", "1"))


def test_header_without_rows_gives_no_rows_and_validation_refuses_it() -> None:
    assert rows_from_csv("timestamp,open,high,low,close,volume\n") == []
    assert rows_from_csv("") == []
    assert rows_from_csv("\n\n") == []
    cdd_header_only = "\r\n".join(CDD_HOURLY_HEAD.splitlines()[:2]) + "\r\n"
    assert parse_csv(cdd_header_only).rows == []
    with pytest.raises(BatchRejected) as caught:
        validate_batch(rows_from_csv(""), timeframe=Timeframe.H1, now=NOW)
    assert caught.value.errors == [RowError(None, "body", "no candles")]


# ----------------------------------------------------------------------------- ccxt, no header


def test_headerless_ccxt_layout() -> None:
    text = "1703984400000,2.0,3.0,1.5,2.5,10.0\n1703980800000,1.0,2.0,0.5,1.5,20.0\n"
    parsed = parse_csv(text)
    assert parsed.layout == "ccxt"
    assert [row.row for row in parsed.rows] == [1, 2]
    batch = validate_batch(parsed.rows, timeframe=None, now=NOW)
    assert batch.timeframe is Timeframe.H1
    assert batch.candles == [
        Candle(utc(2023, 12, 31, 0), 1.0, 2.0, 0.5, 1.5, 20.0),
        Candle(utc(2023, 12, 31, 1), 2.0, 3.0, 1.5, 2.5, 10.0),
    ]


# ----------------------------------------------------------------------------- problems


@pytest.mark.parametrize(
    "text",
    [
        "a,b,c\n1,2,3\n",
        "banner\nanother line\ntimestamp,open,high,low,close,volume\n",
        "1703980800000,1,2,1,2\n",  # five columns, no header
        "only one line\n",
    ],
)
def test_unknown_layout_is_refused_at_line_1(text: str) -> None:
    error = header_error(text)
    assert error == RowError(1, "header", f"unrecognised layout; {EXPECTED_HEADER}")


def test_header_missing_columns_names_them() -> None:
    error = header_error("Timestamp,Open,Close\n1703980800000,1,1\n")
    assert error == RowError(1, "header", f"missing column(s) high, low, volume; {EXPECTED_HEADER}")
    error = header_error("banner\nopen,high,low,close,volume\n1,2,1,1,1\n")
    assert error == RowError(2, "header", f"missing column(s) timestamp; {EXPECTED_HEADER}")


def test_rows_of_the_wrong_width_are_row_errors_by_line() -> None:
    text = (
        "timestamp,open,high,low,close,volume\n"
        "2023-12-31T00:00:00Z,1,2,1,2,1\n"
        "2023-12-31T01:00:00Z,1,2,1,2\n"
        "2023-12-31T02:00:00Z,1,2,1,2,1,7\n"
    )
    rows = rows_from_csv(text)
    assert rows[1] == RawRow(3, {}, "has 5 columns, expected 6")
    first_short = rows_from_csv("timestamp,open,high,low,close,volume\n1,2\n")
    assert first_short == [RawRow(2, {}, "has 2 columns, expected 6")]
    with pytest.raises(BatchRejected) as caught:
        validate_batch(rows, timeframe=Timeframe.H1, now=NOW)
    assert caught.value.errors == [
        RowError(3, "row", "has 5 columns, expected 6"),
        RowError(4, "row", "has 7 columns, expected 6"),
    ]


def test_inconsistent_rows_are_refused_whole_or_skipped_by_line() -> None:
    text = (
        "timestamp,open,high,low,close,volume\n"
        "2023-12-31T00:00:00Z,100,110,90,105,1\n"
        "2023-12-31T01:00:00Z,120,110,90,105,1\n"  # open above high
        "2023-12-31T02:00:00Z,100,110,90,105,NaN\n"
        "2023-12-31T03:00:00Z,100,110,90,105,1\n"
    )
    rows = rows_from_csv(text)
    with pytest.raises(BatchRejected) as caught:
        validate_batch(rows, timeframe=None, now=NOW)
    assert str(caught.value) == "2 invalid rows; first: row 3 high: high is below max(open, close)"
    assert "120" not in str(caught.value)
    batch = validate_batch(rows, timeframe=None, now=NOW, skip_invalid=True)
    assert [c.timestamp.hour for c in batch.candles] == [0, 3]
    assert summarise(batch.skipped) == (
        "line 3: high: high is below max(open, close)\nline 4: volume: is not a finite number"
    )


def test_max_rows_stops_reading_early() -> None:
    text = "timestamp,open,high,low,close,volume\n" + "2023-12-31T00:00:00Z,1,2,1,2,1\n" * 5
    with pytest.raises(BatchTooLarge) as caught:
        rows_from_csv(text, max_rows=4)
    assert caught.value.errors == [RowError(None, "body", "more than 4 rows")]
    assert len(rows_from_csv(text, max_rows=5)) == 5


def test_a_field_over_the_csv_modules_limit_is_refused_naming_the_line() -> None:
    # Python's csv refuses a field over 128 KiB; that was a 500, not a 422.
    huge = "9" * (200 * 1024)
    text = (
        "timestamp,open,high,low,close,volume\n"
        "2024-01-01T00:00:00Z,1,1,1,1,1\n"
        f'2024-01-01T01:00:00Z,"{huge}",1,1,1,1\n'
    )
    with pytest.raises(BatchRejected) as caught:
        rows_from_csv(text)
    (error,) = caught.value.errors
    assert (error.row, error.field) == (3, "body")
    assert "not readable CSV" in error.message and "field limit" in error.message
    assert huge[:20] not in str(caught.value)
