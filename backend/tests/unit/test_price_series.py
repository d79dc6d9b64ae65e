"""The evenly spaced series a forecast is fitted on: short holes bridged, long ones cut."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.market import Horizon, Timeframe
from app.repositories.market_data import Bucket
from app.services.price_series import regular_tail, series_timeframe

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def buckets(hours: list[int]) -> list[Bucket]:
    out = []
    for hour in hours:
        stamp = T0 + timedelta(hours=hour)
        close = 100.0 + hour
        out.append(Bucket(stamp, close, close, close, close, 1.0, stamp))
    return out


def test_a_contiguous_run_is_returned_as_it_is() -> None:
    opens, closes, bridged = regular_tail(buckets([0, 1, 2, 3]), Timeframe.H1)
    assert opens == [T0 + timedelta(hours=h) for h in range(4)]
    assert closes == [100.0, 101.0, 102.0, 103.0]
    assert bridged == [False] * 4


def test_short_holes_carry_the_last_close_forward() -> None:
    opens, closes, bridged = regular_tail(buckets([0, 1, 4, 5]), Timeframe.H1, max_fill=2)
    assert opens == [T0 + timedelta(hours=h) for h in range(6)]
    assert closes == [100.0, 101.0, 101.0, 101.0, 104.0, 105.0]
    assert bridged == [False, False, True, True, False, False]


def test_a_long_hole_ends_the_series() -> None:
    opens, closes, bridged = regular_tail(buckets([0, 1, 5, 6, 7]), Timeframe.H1, max_fill=2)
    assert opens == [T0 + timedelta(hours=h) for h in (5, 6, 7)]
    assert closes == [105.0, 106.0, 107.0] and not any(bridged)


def test_no_candles_no_series() -> None:
    assert regular_tail([], Timeframe.H1) == ([], [], [])


def test_minute_data_is_forecast_on_hours_and_horizons_must_divide() -> None:
    assert series_timeframe(Timeframe.M5) is Timeframe.H1
    assert series_timeframe(Timeframe.D1) is Timeframe.D1
    assert Horizon.D7.steps(Timeframe.H1) == 168
    assert Horizon.D7.steps(Timeframe.D1) == 7
    assert Horizon.H4.steps(Timeframe.D1) is None
    assert Horizon.H24.steps(Timeframe.H4) == 6


def test_a_candle_without_a_positive_close_is_a_hole() -> None:
    # An exchange's outage hour recorded as all zeros; a NaN that reached the table.
    rows = buckets([0, 1, 2, 3, 4])
    rows[2] = rows[2]._replace(close=0.0)
    rows[3] = rows[3]._replace(close=float("nan"))
    opens, closes, bridged = regular_tail(rows, Timeframe.H1, max_fill=2)
    assert opens == [T0 + timedelta(hours=h) for h in range(5)]
    assert closes == [100.0, 101.0, 101.0, 101.0, 104.0]
    assert bridged == [False, False, True, True, False]
    # Three in a row pass max_fill: the series starts after them.
    rows[1] = rows[1]._replace(close=-1.0)
    opens, closes, _ = regular_tail(rows, Timeframe.H1, max_fill=2)
    assert opens == [T0 + timedelta(hours=4)] and closes == [104.0]
