"""Range queries, resampling and coverage against hand-computed candles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.market import Candle
from app.models import Cryptocurrency
from app.repositories import market_data
from tests.integration.factories import make_coin


def _t(day: int, hour: int) -> datetime:
    return datetime(2024, 1, day, hour, tzinfo=UTC)


# Sunday 7 January 21:00 to Monday 8 January 02:00 (UTC), hourly.
HOURLY = [
    Candle(_t(7, 21), 10, 15, 9, 12, 1),
    Candle(_t(7, 22), 12, 18, 11, 13, 2),
    Candle(_t(7, 23), 13, 14, 7, 8, 3),
    Candle(_t(8, 0), 8, 9, 6, 7, 4),
    Candle(_t(8, 1), 7, 11, 7, 10, 5),
    Candle(_t(8, 2), 10, 12, 9, 11, 6),
]
SUNDAY = {"open": 10.0, "high": 18.0, "low": 7.0, "close": 8.0, "volume": 6.0}
MONDAY = {"open": 8.0, "high": 12.0, "low": 6.0, "close": 11.0, "volume": 15.0}


@pytest.fixture
async def hourly_coin(db_session: AsyncSession) -> Cryptocurrency:
    coin = await make_coin(db_session, symbol="HOUR")
    await market_data.upsert_candles(db_session, coin.id, HOURLY, "test")
    return coin


def _ohlcv(candle: dict[str, object]) -> dict[str, object]:
    return {k: candle[k] for k in ("open", "high", "low", "close", "volume")}


async def _page(client: httpx.AsyncClient, query: str) -> dict[str, object]:
    response = await client.get(f"/api/v1/cryptocurrencies/hour/ohlcv?{query}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body, dict)
    return body


@pytest.mark.usefixtures("hourly_coin")
@pytest.mark.parametrize(
    ("interval", "first_bucket", "second_bucket"),
    [
        ("4h", "2024-01-07T20:00:00Z", "2024-01-08T00:00:00Z"),
        ("1d", "2024-01-07T00:00:00Z", "2024-01-08T00:00:00Z"),
        # Weeks start on Monday: Sunday the 7th closes the week of 1 January.
        ("1w", "2024-01-01T00:00:00Z", "2024-01-08T00:00:00Z"),
    ],
)
async def test_resampled_candles_match_hand_computed_values(
    client: httpx.AsyncClient, interval: str, first_bucket: str, second_bucket: str
) -> None:
    body = await _page(client, f"interval={interval}&start=2024-01-01T00:00:00Z")
    candles = body["candles"]
    assert isinstance(candles, list)
    assert [c["timestamp"] for c in candles] == [first_bucket, second_bucket]
    assert _ohlcv(candles[0]) == SUNDAY
    assert _ohlcv(candles[1]) == MONDAY
    # The data stops at 03:00, before the last bucket ends: it is still forming.
    assert [c["forming"] for c in candles] == [False, True]
    assert body["base_timeframe"] == "1h"
    assert body["next_cursor"] is None


@pytest.mark.usefixtures("hourly_coin")
async def test_base_candles_page_forward_with_a_cursor(client: httpx.AsyncClient) -> None:
    first = await _page(client, "start=2024-01-07T21:00:00Z&limit=4")
    assert [c["timestamp"][11:13] for c in first["candles"]] == ["21", "22", "23", "00"]  # type: ignore[index, union-attr]
    assert first["next_cursor"]
    second = await _page(
        client, f"start=2024-01-07T21:00:00Z&limit=4&cursor={first['next_cursor']}"
    )
    assert [c["timestamp"][11:13] for c in second["candles"]] == ["01", "02"]  # type: ignore[index, union-attr]
    assert second["next_cursor"] is None
    assert _ohlcv(second["candles"][1]) == {  # type: ignore[index]
        "open": 10.0,
        "high": 12.0,
        "low": 9.0,
        "close": 11.0,
        "volume": 6.0,
    }


@pytest.mark.usefixtures("hourly_coin")
async def test_without_start_the_newest_candles_come_ascending(client: httpx.AsyncClient) -> None:
    body = await _page(client, "limit=2")
    assert [c["timestamp"] for c in body["candles"]] == [  # type: ignore[union-attr]
        "2024-01-08T01:00:00Z",
        "2024-01-08T02:00:00Z",
    ]
    # A finished hour in the past is not forming.
    assert body["candles"][-1]["forming"] is False  # type: ignore[index]


@pytest.mark.usefixtures("hourly_coin")
async def test_end_is_exclusive_and_start_is_rounded_down(client: httpx.AsyncClient) -> None:
    body = await _page(client, "start=2024-01-07T22:30:00Z&end=2024-01-08T00:00:00Z")
    assert [c["timestamp"] for c in body["candles"]] == [  # type: ignore[union-attr]
        "2024-01-07T22:00:00Z",
        "2024-01-07T23:00:00Z",
    ]


@pytest.mark.usefixtures("hourly_coin")
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("interval=5m", "query.interval"),
        ("interval=2h", "query.interval"),
        ("limit=0", "query.limit"),
        ("limit=5001", "query.limit"),
        ("cursor=bm90LWEtY3Vyc29y", "query.cursor"),
        ("start=2024-01-08T00:00:00Z&end=2024-01-07T00:00:00Z", "query.end"),
        ("start=yesterday", "query.start"),
        ("start=2024-13-01", "query.start"),
        ("end=" + "9" * 60, "query.end"),
        ("limit=abc", "query.limit"),
        ("limit=-1", "query.limit"),
        ("limit=%C2%B2", "query.limit"),
        ("cursor=has%20space", "query.cursor"),
    ],
)
async def test_bad_query_parameters_are_422_naming_the_field(
    client: httpx.AsyncClient, query: str, field: str
) -> None:
    response = await client.get(f"/api/v1/cryptocurrencies/HOUR/ohlcv?{query}")
    assert response.status_code == 422, response.text
    assert field in [error["field"] for error in response.json()["errors"]]


@pytest.mark.parametrize("symbol", ["B-C", "ABCDEFGHIJK", "BTC%0A", "%C3%A9TH"])
@pytest.mark.parametrize("endpoint", ["price", "ohlcv", "coverage"])
async def test_a_malformed_symbol_is_422_naming_the_path_on_every_candle_read(
    client: httpx.AsyncClient, symbol: str, endpoint: str
) -> None:
    # price and ohlcv check it themselves (app.api.cryptocurrencies.symbol_of), coverage
    # through FastAPI: the same answer either way.
    response = await client.get(f"/api/v1/cryptocurrencies/{symbol}/{endpoint}")
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"] == [
        {"field": "path.symbol", "message": "String should match pattern '^[A-Za-z0-9]{1,10}$'"}
    ]


async def test_interval_finer_than_the_stored_candles_is_refused(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    coin = await make_coin(db_session, symbol="DAILY")
    days = [Candle(_t(d, 0), 1, 2, 1, 2, 1) for d in (1, 2, 3)]
    await market_data.upsert_candles(db_session, coin.id, days, "test")
    response = await client.get("/api/v1/cryptocurrencies/DAILY/ohlcv?interval=4h")
    assert response.status_code == 409  # a valid interval these stored candles cannot build
    assert "1d" in response.json()["errors"][0]["message"]
    weekly = await client.get("/api/v1/cryptocurrencies/DAILY/ohlcv?interval=1w")
    assert weekly.status_code == 200
    assert _ohlcv(weekly.json()["candles"][0]) == {
        "open": 1.0,
        "high": 2.0,
        "low": 1.0,
        "close": 2.0,
        "volume": 3.0,
    }


async def test_coverage_lists_every_gap(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    coin = await make_coin(db_session, symbol="GAPS")
    hours = [0, 1, 4, 5, 6, 9]
    candles = [Candle(_t(2, h), 1, 1, 1, 1, 0) for h in hours]
    await market_data.upsert_candles(db_session, coin.id, candles, "test")
    response = await client.get("/api/v1/cryptocurrencies/gaps/coverage")
    assert response.status_code == 200
    body = response.json()
    assert body["base_timeframe"] == "1h"
    assert (body["first"], body["last"], body["count"]) == (
        "2024-01-02T00:00:00Z",
        "2024-01-02T09:00:00Z",
        6,
    )
    assert body["gaps"] == [
        {"start": "2024-01-02T02:00:00Z", "end": "2024-01-02T03:00:00Z", "missing": 2},
        {"start": "2024-01-02T07:00:00Z", "end": "2024-01-02T08:00:00Z", "missing": 2},
    ]
    assert body["missing"] == 4


async def test_empty_coin_has_empty_pages_and_no_price(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    await make_coin(db_session, symbol="EMPTY")
    page = await client.get("/api/v1/cryptocurrencies/EMPTY/ohlcv")
    assert page.status_code == 200
    assert page.json()["candles"] == []
    assert (await client.get("/api/v1/cryptocurrencies/EMPTY/price")).status_code == 404
    coverage = (await client.get("/api/v1/cryptocurrencies/EMPTY/coverage")).json()
    assert (coverage["count"], coverage["gaps"], coverage["first"]) == (0, [], None)


async def test_forming_flag_for_the_current_hour(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    coin = await make_coin(db_session, symbol="LIVE")
    this_hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    candles = [
        Candle(this_hour - timedelta(hours=1), 1, 2, 1, 2, 1),
        Candle(this_hour, 2, 3, 2, 3, 1),
    ]
    await market_data.upsert_candles(db_session, coin.id, candles, "test")
    body = (await client.get("/api/v1/cryptocurrencies/LIVE/ohlcv")).json()
    assert [c["forming"] for c in body["candles"]] == [False, True]


@pytest.mark.usefixtures("hourly_coin")
@pytest.mark.parametrize("moment", ["2024-01-07T22:00:00Z", "2024-01-07T22:30:00Z"])
async def test_an_empty_range_is_an_empty_page(client: httpx.AsyncClient, moment: str) -> None:
    # start == end is a range the schema allows; it holds no time, so no candle, even where
    # rounding start down and end up would otherwise take in the candle around it.
    body = await _page(client, f"start={moment}&end={moment}")
    assert body["candles"] == [] and body["next_cursor"] is None
    assert body["symbol"] == "HOUR" and body["interval"] == "1h"
