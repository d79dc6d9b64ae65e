"""validate_batch and rows_from_json: every rule refuses the right row and field, never echoing."""

from __future__ import annotations

import gc
import json
import math
from datetime import UTC, datetime, timedelta

import pytest

from app.ingestion import fields
from app.ingestion.batch import (
    MAX_BATCH_ROWS,
    MAX_REPORTED,
    BatchRejected,
    BatchTooLarge,
    CandleBatch,
    RawRow,
    RowError,
    summarise,
    validate_batch,
)
from app.ingestion.json_rows import rows_from_json
from app.market import Candle, Timeframe

NOW = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
H0 = datetime(2023, 12, 31, 0, 0, tzinfo=UTC)  # epoch 1703980800 s
H0_MS = 1_703_980_800_000


def utc(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def raw(
    row: int,
    timestamp: object,
    open_: object = 100.0,
    high: object = 110.0,
    low: object = 90.0,
    close: object = 105.0,
    volume: object = 1.5,
) -> RawRow:
    values = {
        "timestamp": timestamp,
        "open": open_,
        "high": high,
        "low": low,
        "close": close,
        "volume": volume,
    }
    return RawRow(row, values)


def ohlcv(open_: float, high: float, low: float, close: float, volume: float) -> dict[str, float]:
    return {"open": open_, "high": high, "low": low, "close": close, "volume": volume}


def hourly(count: int, start: datetime = H0) -> list[RawRow]:
    return [raw(i, (start + timedelta(hours=i)).isoformat()) for i in range(count)]


def rejected(rows: list[RawRow], **options: object) -> BatchRejected:
    options.setdefault("timeframe", Timeframe.H1)
    options.setdefault("now", NOW)
    with pytest.raises(BatchRejected) as caught:
        validate_batch(rows, **options)  # type: ignore[arg-type]
    return caught.value


def only_error(rows: list[RawRow], **options: object) -> RowError:
    exc = rejected(rows, **options)
    assert exc.total_errors == 1
    (error,) = exc.errors
    return error


def assert_not_echoed(exc: BatchRejected, text: str) -> None:
    rendered = [str(exc), *(error.message for error in exc.errors)]
    for output in rendered:
        assert text.lower() not in output.lower()


def with_value(field: str, value: object) -> list[RawRow]:
    """Three valid hourly rows, the middle one (row 1) carrying ``value`` in ``field``."""
    rows = hourly(3)
    values = dict(rows[1].values)
    values[field] = value
    rows[1] = RawRow(1, values)
    return rows


# ----------------------------------------------------------------------------- the happy path


def test_valid_batch_becomes_ascending_candles() -> None:
    rows = [
        raw(0, "2023-12-31T01:00:00Z", 101, 111, 91, 106, 2),
        raw(1, "2023-12-31T00:00:00Z", "100", "110.5", "90.25", "105", "1.5"),
    ]
    batch = validate_batch(rows, timeframe=Timeframe.H1, now=NOW)
    assert batch == CandleBatch(
        candles=[
            Candle(utc(2023, 12, 31, 0), 100.0, 110.5, 90.25, 105.0, 1.5),
            Candle(utc(2023, 12, 31, 1), 101.0, 111.0, 91.0, 106.0, 2.0),
        ],
        timeframe=Timeframe.H1,
        skipped=[],
    )
    assert all(type(value) is float for value in (batch.candles[1].open, batch.candles[1].volume))


def test_boundaries_of_the_ohlc_rules_are_accepted() -> None:
    # high == max(open, close), low == min(open, close), zero volume and a flat candle.
    rows = [
        raw(0, H0.isoformat(), 100, 105, 100, 105, 0),
        raw(1, "2023-12-31T01:00Z", 7, 7, 7, 7, 0),
    ]
    batch = validate_batch(rows, timeframe=Timeframe.H1, now=NOW)
    assert [c.high for c in batch.candles] == [105.0, 7.0]
    assert [c.low for c in batch.candles] == [100.0, 7.0]


def test_negative_zero_is_accepted_as_zero() -> None:
    batch = validate_batch(with_value("volume", -0.0), timeframe=Timeframe.H1, now=NOW)
    assert batch.candles[1].volume == 0.0
    assert math.copysign(1.0, batch.candles[1].volume) == 1.0


def test_an_outage_candle_of_zeros_is_refused_naming_the_row() -> None:
    rows = hourly(3)
    rows[1] = raw(1, (H0 + timedelta(hours=1)).isoformat(), 0, 0, 0, 0, 0)
    error = only_error(rows)
    assert (error.row, error.field) == (1, "open")
    assert "zero" in error.message and "no price" in error.message
    # --skip-invalid drops it and keeps the rest.
    batch = validate_batch(rows, timeframe=Timeframe.H1, now=NOW, skip_invalid=True)
    assert [c.timestamp for c in batch.candles] == [H0, H0 + timedelta(hours=2)]
    assert [(e.row, e.field) for e in batch.skipped] == [(1, "open")]


@pytest.mark.parametrize("field", ["open", "high", "low", "close"])
def test_a_zero_price_is_refused_in_every_price_field(field: str) -> None:
    error = only_error(with_value(field, 0))
    assert (error.row, error.field) == (1, field) and "zero" in error.message


# ----------------------------------------------------------------------------- numbers


NON_FINITE = [
    float("nan"),
    float("inf"),
    float("-inf"),
    "NaN",
    "nan",
    "Infinity",
    "-Infinity",
    "inf",
    "1e400",
    "-1e400",
    10**400,  # a JSON integer too large for a float
]


@pytest.mark.parametrize("field", ["open", "high", "low", "close", "volume"])
@pytest.mark.parametrize("value", NON_FINITE, ids=repr)
def test_non_finite_numbers_are_refused(field: str, value: object) -> None:
    exc = rejected(with_value(field, value))
    assert exc.errors == [RowError(1, field, "is not a finite number")]
    assert_not_echoed(exc, str(value) if not isinstance(value, int) else "1000000")
    if isinstance(value, str):
        assert_not_echoed(exc, value)


def test_nan_and_infinity_literals_from_a_json_body_are_refused() -> None:
    body = (
        '{"candles": ['
        '{"timestamp": "2023-12-31T00:00:00Z", "open": NaN, "high": 2, "low": 1, "close": 1,'
        ' "volume": 1},'
        '{"timestamp": "2023-12-31T01:00:00Z", "open": 1, "high": Infinity, "low": 1,'
        ' "close": 1, "volume": 1},'
        '{"timestamp": "2023-12-31T02:00:00Z", "open": 1, "high": 2, "low": -Infinity,'
        ' "close": 1, "volume": 1},'
        '{"timestamp": "2023-12-31T03:00:00Z", "open": 1, "high": 2, "low": 1, "close": 1,'
        ' "volume": 1e400}'
        "]}"
    )
    exc = rejected(rows_from_json(json.loads(body)))
    assert [(e.row, e.field, e.message) for e in exc.errors] == [
        (0, "open", "is not a finite number"),
        (1, "high", "is not a finite number"),
        (2, "low", "is not a finite number"),
        (3, "volume", "is not a finite number"),
    ]
    assert str(exc) == "4 invalid rows; first: row 0 open: is not a finite number"
    for text in ("NaN", "Infinity", "1e400", "inf"):
        assert_not_echoed(exc, text)


@pytest.mark.parametrize("field", ["open", "high", "low", "close", "volume"])
@pytest.mark.parametrize("value", [-5, -5.0, "-5", "-0.001"], ids=repr)
def test_negative_prices_and_volume_are_refused(field: str, value: object) -> None:
    exc = rejected(with_value(field, value))
    assert exc.errors == [RowError(1, field, "is negative")]
    assert_not_echoed(exc, str(value))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", "is not a number"),
        ("12,5", "is not a number"),
        ("", "is missing"),
        ("   ", "is missing"),
        (None, "is missing"),
        ([1], "is not a number"),
        ({"v": 1}, "is not a number"),
    ],
    ids=repr,
)
def test_values_that_are_not_numbers_are_refused(value: object, message: str) -> None:
    exc = rejected(with_value("close", value))
    assert exc.errors == [RowError(1, "close", message)]
    if isinstance(value, str) and value.strip():
        assert_not_echoed(exc, value)


@pytest.mark.parametrize("field", ["open", "high", "low", "close", "volume"])
@pytest.mark.parametrize("value", [True, False])
def test_booleans_are_not_numbers(field: str, value: bool) -> None:
    # float(True) is 1.0 and float(False) is 0.0: both would pass every other rule here.
    exc = rejected(with_value(field, value))
    assert exc.errors == [RowError(1, field, "is a boolean, not a number")]


def test_a_missing_key_is_reported_as_missing() -> None:
    rows = hourly(2)
    values = dict(rows[0].values)
    del values["volume"]
    rows[0] = RawRow(0, values)
    assert only_error(rows) == RowError(0, "volume", "is missing")


def test_timestamp_raises_invalid_without_the_value() -> None:
    with pytest.raises(fields.Invalid, match=r"^is before 2009$"):
        fields.timestamp("1999-12-31T00:00:00Z")


def test_number_accepts_int_float_and_text() -> None:
    assert fields.number(3) == 3.0
    assert fields.number(" 2.5 ") == 2.5
    assert fields.number("1e3") == 1000.0
    with pytest.raises(fields.Invalid, match="is not a finite number"):
        fields.number("nan")
    with pytest.raises(fields.Invalid, match="is a boolean"):
        fields.number(True)
    zero = fields.number("-0.0")
    assert zero == 0.0
    assert math.copysign(1.0, zero) == 1.0


# ----------------------------------------------------------------------------- high and low


def test_high_below_max_of_open_and_close_is_refused() -> None:
    # close 105 is above high 104.99.
    exc = rejected(with_value("high", "104.99"))
    assert exc.errors == [RowError(1, "high", "high is below max(open, close)")]
    assert_not_echoed(exc, "104.99")


def test_high_below_open_is_refused() -> None:
    rows = hourly(2)
    rows[1] = raw(1, rows[1].values["timestamp"], open_=120, high=110, low=90, close=100)
    assert only_error(rows) == RowError(1, "high", "high is below max(open, close)")


def test_low_above_min_of_open_and_close_is_refused() -> None:
    # open 100 is below low 100.5.
    exc = rejected(with_value("low", 100.5))
    assert exc.errors == [RowError(1, "low", "low is above min(open, close)")]
    assert_not_echoed(exc, "100.5")


def test_low_above_close_is_refused() -> None:
    rows = hourly(2)
    rows[0] = raw(0, rows[0].values["timestamp"], open_=100, high=110, low=96, close=95)
    assert only_error(rows) == RowError(0, "low", "low is above min(open, close)")


# ----------------------------------------------------------------------------- timestamps


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2023-12-31T05:30:00+05:30", utc(2023, 12, 31, 0)),
        ("2023-12-30T19:00:00-05:00", utc(2023, 12, 31, 0)),
        ("2023-12-31T00:00:00Z", utc(2023, 12, 31, 0)),
        ("2023-12-31T00:00:00.000Z", utc(2023, 12, 31, 0)),
        ("2023-12-31 00:00:00", utc(2023, 12, 31, 0)),  # naive: UTC
        ("2023-12-31T00:00", utc(2023, 12, 31, 0)),
        ("2023-12-31", utc(2023, 12, 31, 0)),
        (" 2023-12-31T00:00:00Z ", utc(2023, 12, 31, 0)),
        (H0_MS, utc(2023, 12, 31, 0)),  # epoch milliseconds
        (1_703_980_800, utc(2023, 12, 31, 0)),  # epoch seconds
        (float(H0_MS), utc(2023, 12, 31, 0)),
        (str(H0_MS), utc(2023, 12, 31, 0)),
        ("1703980800", utc(2023, 12, 31, 0)),
        # The value decides the unit, not the number of digits: seconds, despite 13 digits.
        ("0001703980000", datetime(2023, 12, 30, 23, 46, 40, tzinfo=UTC)),
        ("1703980800001", datetime(2023, 12, 31, 0, 0, 0, 1000, tzinfo=UTC)),
        ("1.7039808e12", utc(2023, 12, 31, 0)),
        (1_703_980_800_000_000, utc(2023, 12, 31, 0)),  # epoch microseconds
        (H0_MS + 1500, datetime(2023, 12, 31, 0, 0, 1, 500_000, tzinfo=UTC)),
        (1_703_980_800.25, datetime(2023, 12, 31, 0, 0, 0, 250_000, tzinfo=UTC)),
        ("2019-10-17 09-AM", utc(2019, 10, 17, 9)),  # CryptoDataDownload hourly
        ("2019-10-17 12-AM", utc(2019, 10, 17, 0)),
        ("2019-10-17 12-PM", utc(2019, 10, 17, 12)),
        ("2019-10-17 01-PM", utc(2019, 10, 17, 13)),
        ("2009-01-01T00:00:00Z", utc(2009, 1, 1)),
        (datetime(2023, 12, 31), utc(2023, 12, 31)),
        # The unit boundaries: 2009-01-01 in each unit, and the largest value of each unit.
        (1_230_768_000, utc(2009, 1, 1)),
        (1_230_768_000_000, utc(2009, 1, 1)),
        (1_230_768_000_000_000, utc(2009, 1, 1)),
        (10**11 - 1, datetime(5138, 11, 16, 9, 46, 39, tzinfo=UTC)),
        (10**14 - 1, datetime(5138, 11, 16, 9, 46, 39, 999_000, tzinfo=UTC)),
        (10**17 - 1, datetime(5138, 11, 16, 9, 46, 39, 999_999, tzinfo=UTC)),
    ],
    ids=repr,
)
def test_timestamps_are_read_as_utc(value: object, expected: datetime) -> None:
    parsed = fields.timestamp(value)
    assert parsed == expected
    assert parsed.tzinfo is UTC
    assert parsed.utcoffset() == timedelta(0)


def test_offset_timestamps_become_utc_candles() -> None:
    # 06:00+05:00 is 01:00 UTC and 01:00+01:00 is 00:00 UTC.
    rows = [raw(0, "2023-12-31T06:00:00+05:00"), raw(1, "2023-12-31T01:00:00+01:00")]
    batch = validate_batch(rows, timeframe=None, now=NOW)
    assert [c.timestamp.isoformat() for c in batch.candles] == [
        "2023-12-31T00:00:00+00:00",
        "2023-12-31T01:00:00+00:00",
    ]
    assert batch.timeframe is Timeframe.H1


def test_naive_iso_is_taken_as_utc() -> None:
    rows = [raw(0, "2023-12-31 00:00:00"), raw(1, "2023-12-31 01:00:00")]
    batch = validate_batch(rows, timeframe=None, now=NOW)
    assert [c.timestamp for c in batch.candles] == [utc(2023, 12, 31, 0), utc(2023, 12, 31, 1)]


def test_epoch_milliseconds_and_seconds_mean_the_same_instants() -> None:
    in_ms = [raw(i, H0_MS + i * 3_600_000) for i in range(3)]
    in_s = [raw(i, 1_703_980_800 + i * 3600) for i in range(3)]
    as_ms = validate_batch(in_ms, timeframe=None, now=NOW).candles
    as_s = validate_batch(in_s, timeframe=None, now=NOW).candles
    assert as_ms == as_s
    assert [c.timestamp for c in as_ms] == [utc(2023, 12, 31, h) for h in range(3)]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (-1, "is negative"),
        ("-5", "is negative"),
        (-1.5e12, "is negative"),
        (0, "is before 2009"),
        (1_230_767_999, "is before 2009"),  # 2008-12-31T23:59:59Z
        (10**11, "is before 2009"),  # milliseconds from here on: 1973-03-03
        (10**14, "is before 2009"),  # microseconds from here on: 1973-03-03
        ("2008-12-31T23:00:00Z", "is before 2009"),
        ("1970-01-01", "is before 2009"),
        ("20231231", "is before 2009"),  # digits are always epoch time: 1970-08-23
        (10**17, "is out of range"),
        ("9" * 30, "is out of range"),
        (1e300, "is out of range"),
        ("0001-01-01T00:00:00+05:00", "is out of range"),
        (float("nan"), "is not a finite number"),
        (float("inf"), "is not a finite number"),
        ("NaN", "is not a finite number"),
        ("Infinity", "is not a finite number"),
        ("1e400", "is not a finite number"),
        ("yesterday", "is not an ISO 8601 time or epoch milliseconds"),
        ("2023-02-30T00:00:00Z", "is not an ISO 8601 time or epoch milliseconds"),
        ("2019-10-17 13-PM", "is not an ISO 8601 time or epoch milliseconds"),
        ("2019-10-17 00-AM", "is not an ISO 8601 time or epoch milliseconds"),
        ("2" * 80, "is too long for a time"),
        ("", "is missing"),
        (None, "is missing"),
        (True, "is a boolean, not a time"),
        (False, "is a boolean, not a time"),
        ([H0_MS], "is not an ISO 8601 time or epoch milliseconds"),
    ],
    ids=repr,
)
def test_bad_timestamps_are_refused(value: object, message: str) -> None:
    exc = rejected(with_value("timestamp", value))
    assert exc.errors == [RowError(1, "timestamp", message)]
    if isinstance(value, str) and value:
        assert_not_echoed(exc, value)


def test_misaligned_timestamp_is_refused() -> None:
    rows = hourly(3)
    rows[2] = raw(2, "2023-12-31T02:30:00Z")
    exc = rejected(rows)
    assert exc.errors == [RowError(2, "timestamp", "is not aligned to 1h candles")]
    assert_not_echoed(exc, "02:30")


@pytest.mark.parametrize(
    ("timeframe", "value"),
    [
        (Timeframe.M1, "2023-12-31T00:00:30Z"),
        (Timeframe.M5, "2023-12-31T00:07:00Z"),
        (Timeframe.M15, "2023-12-31T00:05:00Z"),
        (Timeframe.M30, "2023-12-31T00:15:00Z"),
        (Timeframe.H1, "2023-12-31T00:00:00.001Z"),
        (Timeframe.H4, "2023-12-31T02:00:00Z"),
        (Timeframe.D1, "2023-12-31T01:00:00Z"),
    ],
)
def test_alignment_follows_each_timeframe(timeframe: Timeframe, value: str) -> None:
    aligned = raw(0, "2023-12-30T00:00:00Z")
    error = only_error([aligned, raw(1, value)], timeframe=timeframe)
    assert error == RowError(1, "timestamp", f"is not aligned to {timeframe.value} candles")
    assert not timeframe.is_aligned(fields.timestamp(value))
    assert timeframe.is_aligned(fields.timestamp("2023-12-30T00:00:00Z"))


def test_future_open_time_is_refused_but_a_forming_candle_is_not() -> None:
    rows = [raw(0, "2024-01-01T11:00:00Z"), raw(1, "2024-01-01T12:00:00Z")]
    now_forming = datetime(2024, 1, 1, 12, 59, tzinfo=UTC)
    assert len(validate_batch(rows, timeframe=Timeframe.H1, now=now_forming).candles) == 2
    assert len(validate_batch(rows, timeframe=Timeframe.H1, now=NOW).candles) == 2  # open == now
    later = [*rows, raw(2, "2024-01-01T13:00:00Z")]
    exc = rejected(later, now=NOW)
    assert exc.errors == [RowError(2, "timestamp", "is in the future")]


def test_now_in_another_zone_is_the_same_instant() -> None:
    rows = [raw(0, "2024-01-01T12:00:00Z"), raw(1, "2024-01-01T13:00:00Z")]
    plus_one = datetime(2024, 1, 1, 13, tzinfo=UTC).astimezone(
        datetime.fromisoformat("2024-01-01T00:00+01:00").tzinfo
    )
    error = only_error(rows, now=plus_one - timedelta(seconds=1))
    assert error == RowError(1, "timestamp", "is in the future")


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        validate_batch(hourly(2), timeframe=Timeframe.H1, now=datetime(2024, 1, 1))


# ----------------------------------------------------------------------------- duplicates


def test_duplicates_name_the_first_row() -> None:
    rows = hourly(3)
    rows.append(raw(3, "2023-12-31T00:00:00+00:00"))  # the time of row 0
    rows.append(raw(4, H0_MS))  # again, as epoch milliseconds
    exc = rejected(rows)
    assert exc.errors == [
        RowError(3, "timestamp", "duplicate timestamp (also row 0)"),
        RowError(4, "timestamp", "duplicate timestamp (also row 0)"),
    ]
    assert exc.total_errors == 2


def test_skip_invalid_keeps_the_first_of_duplicates() -> None:
    rows = [
        raw(0, "2023-12-31T01:00:00Z", 1, 2, 1, 1, 1),
        raw(1, "2023-12-31T00:00:00Z", 5, 6, 5, 5, 5),
        raw(2, "2023-12-31T01:00:00Z", 9, 9, 9, 9, 9),
    ]
    batch = validate_batch(rows, timeframe=Timeframe.H1, now=NOW, skip_invalid=True)
    assert batch.candles == [
        Candle(utc(2023, 12, 31, 0), 5.0, 6.0, 5.0, 5.0, 5.0),
        Candle(utc(2023, 12, 31, 1), 1.0, 2.0, 1.0, 1.0, 1.0),
    ]
    assert batch.skipped == [RowError(2, "timestamp", "duplicate timestamp (also row 0)")]


def test_an_invalid_first_occurrence_does_not_make_the_next_a_duplicate() -> None:
    rows = [raw(0, "2023-12-31T00:00:00Z", open_="NaN"), *hourly(2)[0:2]]
    rows[1] = RawRow(1, rows[1].values)
    rows[2] = RawRow(2, rows[2].values)
    batch = validate_batch(rows, timeframe=Timeframe.H1, now=NOW, skip_invalid=True)
    assert [c.timestamp for c in batch.candles] == [utc(2023, 12, 31, 0), utc(2023, 12, 31, 1)]
    assert batch.skipped == [RowError(0, "open", "is not a finite number")]


# ----------------------------------------------------------------------------- timeframe


def test_infers_one_hour() -> None:
    rows = [raw(i, H0_MS + h * 3_600_000) for i, h in enumerate([5, 0, 1, 2, 4])]  # gap at 3
    batch = validate_batch(rows, timeframe=None, now=NOW)
    assert batch.timeframe is Timeframe.H1
    assert [c.timestamp.hour for c in batch.candles] == [0, 1, 2, 4, 5]


def test_infers_one_day() -> None:
    rows = [raw(i, f"2023-12-{day:02d}") for i, day in enumerate([28, 27, 26, 30])]
    batch = validate_batch(rows, timeframe=None, now=NOW)
    assert batch.timeframe is Timeframe.D1
    assert [c.timestamp for c in batch.candles] == [
        utc(2023, 12, 26),
        utc(2023, 12, 27),
        utc(2023, 12, 28),
        utc(2023, 12, 30),
    ]


def test_infers_fifteen_minutes_from_epoch_seconds() -> None:
    rows = [raw(i, 1_703_980_800 + i * 900) for i in range(4)]
    assert validate_batch(rows, timeframe=None, now=NOW).timeframe is Timeframe.M15


def test_one_stray_row_does_not_change_the_inferred_timeframe() -> None:
    # The usual spacing is 1h, so 02:30 is reported as misaligned rather than turning the
    # batch into 30-minute candles.
    rows = hourly(6)
    rows.append(raw(6, "2023-12-31T02:30:00Z"))
    exc = rejected(rows, timeframe=None)
    assert exc.errors == [RowError(6, "timestamp", "is not aligned to 1h candles")]


def test_repeated_times_do_not_count_as_a_spacing() -> None:
    rows = [raw(0, H0_MS), raw(1, H0_MS), raw(2, H0_MS), raw(3, H0_MS + 3_600_000)]
    exc = rejected(rows, timeframe=None)
    assert exc.errors == [
        RowError(1, "timestamp", "duplicate timestamp (also row 0)"),
        RowError(2, "timestamp", "duplicate timestamp (also row 0)"),
    ]
    repeated = rejected([raw(0, H0_MS), raw(1, H0_MS)], timeframe=None)
    assert repeated.errors[-1] == RowError(
        None, "timeframe", "cannot infer from one row; pass timeframe"
    )


def test_one_row_without_timeframe_cannot_be_inferred() -> None:
    exc = rejected(hourly(1), timeframe=None)
    assert exc.errors == [RowError(None, "timeframe", "cannot infer from one row; pass timeframe")]
    assert str(exc) == "timeframe: cannot infer from one row; pass timeframe"
    batch = validate_batch(hourly(1), timeframe=Timeframe.H1, now=NOW)
    assert batch.candles == [Candle(H0, 100.0, 110.0, 90.0, 105.0, 1.5)]


def test_unsupported_spacing_cannot_be_inferred() -> None:
    rows = [raw(i, H0_MS + i * 2 * 3_600_000) for i in range(3)]  # every 2 hours
    exc = rejected(rows, timeframe=None)
    assert [(e.row, e.field) for e in exc.errors] == [(None, "timeframe")]
    assert "pass timeframe" in exc.errors[0].message


def test_weekly_timeframe_is_not_a_storable_timeframe() -> None:
    exc = rejected(hourly(2), timeframe=Timeframe.W1)
    assert exc.errors[0].field == "timeframe"
    assert exc.errors[0].message == "must be one of 1m, 5m, 15m, 30m, 1h, 4h, 1d"


def test_unknown_timeframe_spelling_is_refused_without_echo() -> None:
    exc = rejected(hourly(2), timeframe="2h")
    assert [(e.row, e.field) for e in exc.errors] == [(None, "timeframe")]
    assert_not_echoed(exc, "2h")


def test_collector_state_is_restored() -> None:
    assert gc.isenabled()
    validate_batch(hourly(2), timeframe=Timeframe.H1, now=NOW)
    assert gc.isenabled()
    gc.disable()
    try:
        validate_batch(hourly(2), timeframe=Timeframe.H1, now=NOW)
        assert not gc.isenabled()
    finally:
        gc.enable()
    with pytest.raises(BatchRejected):
        validate_batch(hourly(1), timeframe=None, now=NOW)
    assert gc.isenabled()


def test_timeframe_may_be_given_as_its_spelling() -> None:
    batch = validate_batch(hourly(2), timeframe="1h", now=NOW)  # type: ignore[arg-type]
    assert batch.timeframe is Timeframe.H1


# ----------------------------------------------------------------------------- size and body


def test_empty_batch_is_refused() -> None:
    exc = rejected([])
    assert exc.errors == [RowError(None, "body", "no candles")]
    assert str(exc) == "body: no candles"


def test_too_many_rows_is_refused_before_any_row_is_read() -> None:
    rows = [*hourly(3), RawRow(3, {}, "is not an object or an array")]
    with pytest.raises(BatchTooLarge) as caught:
        validate_batch(rows, timeframe=Timeframe.H1, now=NOW, max_rows=3)
    assert caught.value.errors == [RowError(None, "body", "more than 3 rows")]
    assert len(validate_batch(rows[:3], timeframe=Timeframe.H1, now=NOW, max_rows=3).candles) == 3
    assert MAX_BATCH_ROWS == 100_000


def test_too_many_rows_always_raises_even_when_skipping() -> None:
    with pytest.raises(BatchTooLarge):
        validate_batch(hourly(3), timeframe=Timeframe.H1, now=NOW, max_rows=2, skip_invalid=True)


# ----------------------------------------------------------------------------- all or nothing


def test_one_bad_row_rejects_the_whole_batch() -> None:
    rows = hourly(5)
    rows[3] = raw(3, rows[3].values["timestamp"], high=50)
    exc = rejected(rows)
    assert exc.total_errors == 1
    assert str(exc) == "row 3 high: high is below max(open, close)"


def test_errors_are_in_row_order_and_capped() -> None:
    rows = hourly(MAX_REPORTED + 10)
    rows = [raw(r.row, r.values["timestamp"], volume="-1") for r in rows]
    rows[0] = raw(0, "2023-12-31T00:30:00Z")  # misaligned: found in the second pass
    exc = rejected(rows)
    assert exc.total_errors == MAX_REPORTED + 10
    assert len(exc.errors) == MAX_REPORTED
    assert exc.errors[0] == RowError(0, "timestamp", "is not aligned to 1h candles")
    assert [e.row for e in exc.errors] == list(range(MAX_REPORTED))
    assert str(exc) == "60 invalid rows; first: row 0 timestamp: is not aligned to 1h candles"
    assert exc.as_dicts()[1] == {"row": 1, "field": "volume", "message": "is negative"}


def test_skip_invalid_imports_the_valid_rows_and_reports_the_rest() -> None:
    rows = hourly(6)
    rows[1] = raw(1, rows[1].values["timestamp"], open_=120)  # open above high
    rows[3] = raw(3, rows[3].values["timestamp"], volume="NaN")
    rows[4] = RawRow(4, {}, "has 5 columns, expected 6")
    batch = validate_batch(rows, timeframe=None, now=NOW, skip_invalid=True)
    assert [c.timestamp.hour for c in batch.candles] == [0, 2, 5]
    assert batch.timeframe is Timeframe.H1
    assert batch.skipped == [
        RowError(1, "high", "high is below max(open, close)"),
        RowError(3, "volume", "is not a finite number"),
        RowError(4, "row", "has 5 columns, expected 6"),
    ]
    assert summarise(batch.skipped) == (
        "line 1: high: high is below max(open, close)\n"
        "line 3: volume: is not a finite number\n"
        "line 4: row: has 5 columns, expected 6"
    )


def test_rows_refused_for_their_numbers_still_show_the_spacing() -> None:
    # Every other hour is refused: the remaining rows alone are 2h apart, which is no timeframe.
    rows = hourly(5)
    rows[1] = raw(1, rows[1].values["timestamp"], volume="NaN")
    rows[3] = raw(3, rows[3].values["timestamp"], open_="-1")
    batch = validate_batch(rows, timeframe=None, now=NOW, skip_invalid=True)
    assert batch.timeframe is Timeframe.H1
    assert [c.timestamp.hour for c in batch.candles] == [0, 2, 4]
    assert [(e.row, e.field) for e in batch.skipped] == [(1, "volume"), (3, "open")]
    rows[3] = raw(3, rows[3].values["timestamp"], high=1)  # refused by the high rule instead
    batch = validate_batch(rows[:1] + rows[3:], timeframe=None, now=NOW, skip_invalid=True)
    assert batch.timeframe is Timeframe.H1
    assert [c.timestamp.hour for c in batch.candles] == [0, 4]


def test_skip_invalid_with_nothing_valid_still_raises() -> None:
    rows = [raw(0, H0_MS, volume=-1), raw(1, H0_MS + 3_600_000, volume=-1)]
    with pytest.raises(BatchRejected) as caught:
        validate_batch(rows, timeframe=Timeframe.H1, now=NOW, skip_invalid=True)
    assert caught.value.total_errors == 2


def test_skip_invalid_without_timeframe_still_needs_an_inferable_one() -> None:
    rows = [raw(0, H0_MS), raw(1, "not a time")]
    with pytest.raises(BatchRejected) as caught:
        validate_batch(rows, timeframe=None, now=NOW, skip_invalid=True)
    located = [(e.row, e.field) for e in caught.value.errors]
    assert located == [(1, "timestamp"), (None, "timeframe")]
    assert str(caught.value).startswith("2 problems; first: row 1 timestamp")


def test_row_error_renderings() -> None:
    error = RowError(12, "high", "high is below max(open, close)")
    assert error.as_dict() == {
        "row": 12,
        "field": "high",
        "message": "high is below max(open, close)",
    }
    assert str(error) == "row 12 high: high is below max(open, close)"
    assert summarise([error, RowError(None, "body", "no candles")], unit="row") == (
        "row 12: high: high is below max(open, close)\nbody: no candles"
    )


# ----------------------------------------------------------------------------- JSON input


def test_json_objects_with_any_time_key() -> None:
    payload = {
        "candles": [
            {"timestamp": "2023-12-31T00:00:00Z", **ohlcv(1, 2, 1, 2, 3)},
            {"time": H0_MS + 3_600_000, **ohlcv(2, 3, 2, 3, 4)},
            {"t": "2023-12-31T02:00:00Z", **ohlcv(3, 4, 3, 4, 5), "x": 1},
        ],
        "timeframe": "1h",
    }
    rows = rows_from_json(payload)
    assert [r.row for r in rows] == [0, 1, 2]
    batch = validate_batch(rows, timeframe=None, now=NOW)
    assert batch.candles == [
        Candle(utc(2023, 12, 31, 0), 1.0, 2.0, 1.0, 2.0, 3.0),
        Candle(utc(2023, 12, 31, 1), 2.0, 3.0, 2.0, 3.0, 4.0),
        Candle(utc(2023, 12, 31, 2), 3.0, 4.0, 3.0, 4.0, 5.0),
    ]


def test_timestamp_key_wins_over_time() -> None:
    (row,) = rows_from_json([{"timestamp": 1, "time": 2, "t": 3}])
    assert row.values["timestamp"] == 1


def test_ccxt_arrays_are_rows() -> None:
    payload = [
        [H0_MS + 3_600_000, 2.0, 3.0, 1.5, 2.5, 10.0],
        [H0_MS, 1.0, 2.0, 0.5, 1.5, 20.0],
    ]
    batch = validate_batch(rows_from_json(payload), timeframe=None, now=NOW)
    assert batch.candles == [
        Candle(utc(2023, 12, 31, 0), 1.0, 2.0, 0.5, 1.5, 20.0),
        Candle(utc(2023, 12, 31, 1), 2.0, 3.0, 1.5, 2.5, 10.0),
    ]
    assert batch.timeframe is Timeframe.H1


def test_malformed_json_items_are_row_errors() -> None:
    payload = [[H0_MS, 1, 2, 1, 1], "2023-12-31", None, 7, [H0_MS, 1, 2, 1, 1, 1, 1]]
    exc = rejected(rows_from_json(payload))
    assert exc.errors == [
        RowError(0, "row", "has 5 values, expected 6: timestamp, open, high, low, close, volume"),
        RowError(1, "row", "is not an object or an array"),
        RowError(2, "row", "is not an object or an array"),
        RowError(3, "row", "is not an object or an array"),
        RowError(4, "row", "has 7 values, expected 6: timestamp, open, high, low, close, volume"),
    ]


@pytest.mark.parametrize("payload", ["candles", 5, None, {"rows": []}, {"candles": {"a": 1}}])
def test_json_body_that_is_not_a_list_is_refused(payload: object) -> None:
    with pytest.raises(BatchRejected) as caught:
        rows_from_json(payload)
    assert [(e.row, e.field) for e in caught.value.errors] == [(None, "body")]


def test_json_too_many_rows_is_refused_early() -> None:
    with pytest.raises(BatchTooLarge) as caught:
        rows_from_json([[H0_MS, 1, 1, 1, 1, 1]] * 4, max_rows=3)
    assert caught.value.errors == [RowError(None, "body", "more than 3 rows")]
