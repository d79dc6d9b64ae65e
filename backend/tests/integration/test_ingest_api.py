"""POST /ohlcv: idempotent upserts, JSON and CSV, and all-or-nothing validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.api import market_data as market_data_api
from app.models import MarketData
from tests.integration.factories import make_coin

URL = "/api/v1/cryptocurrencies/BTC/ohlcv"
T0 = datetime(2024, 3, 1, tzinfo=UTC)


def candle(hour: int, **changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "timestamp": (T0 + timedelta(hours=hour)).isoformat().replace("+00:00", "Z"),
        "open": 100.0 + hour,
        "high": 110.0 + hour,
        "low": 90.0 + hour,
        "close": 105.0 + hour,
        "volume": 10.0,
    }
    row.update(changes)
    return row


def batch(hours: int = 3, **changes_at_1: Any) -> dict[str, Any]:
    rows = [candle(h) for h in range(hours)]
    if changes_at_1:
        rows[1] = candle(1, **changes_at_1)
    return {"candles": rows}


@pytest.fixture
async def btc(db_session: AsyncSession) -> int:
    coin = await make_coin(db_session, symbol="BTC", name="Bitcoin")
    return coin.id


async def _state(session: AsyncSession) -> tuple[int, float]:
    """Row count and a checksum of every stored price."""
    statement = select(
        func.count(),
        func.coalesce(func.sum(MarketData.close_price + MarketData.high_price), 0.0),
    )
    count, checksum = (await session.execute(statement)).one()
    return int(count), float(checksum)


async def _post_json(client: httpx.AsyncClient, body: object) -> httpx.Response:
    return await client.post(URL, json=body)


@pytest.mark.usefixtures("btc")
async def test_json_batch_is_inserted_then_idempotent(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    first = await _post_json(client, batch(3))
    assert first.status_code == 200, first.text
    assert first.json() | {"first": None, "last": None} == {
        "symbol": "BTC",
        "timeframe": "1h",
        "received": 3,
        "inserted": 3,
        "updated": 0,
        "unchanged": 0,
        "first": None,
        "last": None,
    }
    assert first.json()["first"] == "2024-03-01T00:00:00Z"
    state = await _state(db_session)
    again = await _post_json(client, batch(3))
    assert (again.json()["inserted"], again.json()["unchanged"]) == (0, 3)
    assert await _state(db_session) == state

    changed = await _post_json(client, batch(4, close=106.5))
    assert (changed.json()["inserted"], changed.json()["updated"]) == (1, 1)
    assert changed.json()["unchanged"] == 2


@pytest.mark.usefixtures("btc")
@pytest.mark.parametrize(
    "body",
    [
        "timestamp,open,high,low,close,volume\n"
        "2024-03-01T00:00:00Z,100,110,90,105,10\n"
        "2024-03-01T01:00:00Z,101,111,91,106,10\n",
        # ccxt layout: epoch milliseconds, no header
        "1709251200000,100,110,90,105,10\n1709254800000,101,111,91,106,10\n",
    ],
)
async def test_csv_bodies(client: httpx.AsyncClient, body: str) -> None:
    response = await client.post(URL, content=body, headers={"content-type": "text/csv"})
    assert response.status_code == 200, response.text
    assert response.json()["inserted"] == 2
    page = (await client.get(URL + "?start=2024-03-01T00:00:00Z")).json()
    assert [c["close"] for c in page["candles"]] == [105.0, 106.0]


@pytest.mark.usefixtures("btc")
async def test_ccxt_arrays_and_epoch_milliseconds(client: httpx.AsyncClient) -> None:
    ms = int(T0.timestamp() * 1000)
    rows = [[ms, 1, 2, 0.5, 1.5, 3], [ms + 3_600_000, 1.5, 2, 1, 1.8, 4]]
    response = await _post_json(client, rows)
    assert response.status_code == 200, response.text
    assert response.json()["inserted"] == 2


@pytest.mark.usefixtures("btc")
async def test_price_is_refreshed_by_ingest(client: httpx.AsyncClient) -> None:
    await _post_json(client, batch(2))
    first = await client.get("/api/v1/cryptocurrencies/btc/price")
    assert first.json() == {"symbol": "BTC", "price": 106.0, "timestamp": "2024-03-01T01:00:00Z"}
    await _post_json(client, {"candles": [candle(2, close=107.25)]})
    second = await client.get("/api/v1/cryptocurrencies/BTC/price")
    assert second.json()["price"] == 107.25


@pytest.mark.usefixtures("btc")
async def test_cached_latest_page_is_dropped_on_ingest(client: httpx.AsyncClient) -> None:
    await _post_json(client, batch(2))
    assert len((await client.get(URL)).json()["candles"]) == 2
    await _post_json(client, {"candles": [candle(2)]})
    assert len((await client.get(URL)).json()["candles"]) == 3


# (description, body or callable producing (content, content-type), status, field, row)
BAD_INPUTS: list[tuple[str, Any, int, str | None, int | None]] = [
    ("negative price", batch(open=-1.0), 422, "open", 1),
    ("negative volume", batch(volume=-5), 422, "volume", 1),
    ("high below low", batch(high=80.0), 422, "high", 1),
    ("high below close", batch(high=104.0, close=105.0), 422, "high", 1),
    ("low above open", batch(low=102.0), 422, "low", 1),
    ("price as text", batch(close="lots"), 422, "close", 1),
    ("boolean price", batch(close=True), 422, "close", 1),
    ("NaN as string", batch(close="NaN"), 422, "close", 1),
    ("Infinity as string", batch(high="Infinity"), 422, "high", 1),
    (
        "1e400 overflows",
        (
            b'{"candles":[' + b'{"timestamp":"2024-03-01T00:00:00Z","open":1,'
            b'"high":1e400,"low":1,"close":1,"volume":1}]}',
            "application/json",
        ),
        422,
        None,
        None,
    ),
    (
        "bare NaN token",
        (b'{"candles":[{"timestamp":"2024-03-01T00:00:00Z","open":NaN}]}', "application/json"),
        422,
        "body",
        None,
    ),
    ("duplicate timestamps", {"candles": [candle(0), candle(1), candle(1)]}, 422, "timestamp", 2),
    (
        "misaligned timestamp",
        {
            "candles": [
                candle(0),
                candle(1),
                candle(2, timestamp="2024-03-01T02:30:00Z"),
                candle(3),
                candle(4),
            ]
        },
        422,
        "timestamp",
        2,
    ),
    (
        "future timestamp",
        {"candles": [candle(0), candle(1), candle(24 * 365 * 50)]},
        422,
        "timestamp",
        2,
    ),
    ("bad timestamp", batch(timestamp="not a date"), 422, "timestamp", 1),
    (
        "missing field",
        {"candles": [candle(0), {"timestamp": "2024-03-01T01:00:00Z"}]},
        422,
        "open",
        1,
    ),
    ("wrong shape", {"candles": "everything"}, 422, None, None),
    ("empty body", (b"", "application/json"), 422, "body", None),
    ("empty list", {"candles": []}, 422, "body", None),
    ("wrong content type", (b"open=1", "application/x-www-form-urlencoded"), 415, None, None),
    ("no content type", (b"{}", ""), 415, None, None),
    ("SQL injection in a field", batch(close="1); DROP TABLE market_data; --"), 422, "close", 1),
    (
        "SQL injection in a timestamp",
        batch(timestamp="2024-03-01'; DELETE FROM market_data;--"),
        422,
        "timestamp",
        1,
    ),
    (
        "CSV with a bad row",
        (
            b"timestamp,open,high,low,close,volume\n"
            b"2024-03-01T00:00:00Z,100,110,90,105,10\n2024-03-01T01:00:00Z,100,90,95,105,10\n",
            "text/csv",
        ),
        422,
        "high",
        3,
    ),
    ("CSV without known columns", (b"a,b,c\n1,2,3\n", "text/csv"), 422, "header", 1),
    (
        "CSV with a field over 128 KiB",
        (
            b"timestamp,open,high,low,close,volume\n2024-03-01T00:00:00Z,"
            + b"9" * (200 * 1024)
            + b",110,90,105,10\n",
            "text/csv",
        ),
        422,
        "body",
        2,
    ),
    ("an outage candle of zeros", batch(open=0, high=0, low=0, close=0, volume=0), 422, "open", 1),
    ("a zero close", batch(close=0, low=0), 422, "low", 1),
]


def _request(body: Any) -> tuple[bytes, str]:
    if isinstance(body, tuple):
        return body
    return orjson.dumps(body), "application/json"


@pytest.mark.parametrize(
    ("case", "body", "status", "field", "row"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS]
)
async def test_bad_input_is_refused_whole(
    client: httpx.AsyncClient,
    db_session: AsyncSession,
    btc: int,
    case: str,
    body: Any,
    status: int,
    field: str | None,
    row: int | None,
) -> None:
    assert (await _post_json(client, batch(3))).status_code == 200  # something to protect
    before = await _state(db_session)
    content, content_type = _request(body)
    headers = {"content-type": content_type} if content_type else {}
    response = await client.post(URL, content=content, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status
    if field is not None:
        assert (problem["errors"][0]["field"], problem["errors"][0]["row"]) == (field, row)
    for echoed in ("DROP TABLE", "DELETE FROM", "lots", "not a date"):
        assert echoed not in response.text
    assert await _state(db_session) == before, case


async def test_unknown_symbol_is_404(client: httpx.AsyncClient, db_session: AsyncSession) -> None:
    response = await client.post("/api/v1/cryptocurrencies/NOPE/ohlcv", json=batch(2))
    assert response.status_code == 404
    assert await _state(db_session) == (0, 0.0)


@pytest.mark.usefixtures("btc")
async def test_limits_give_413(
    client: httpx.AsyncClient, db_session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(market_data_api, "MAX_ROWS", 2)
    too_many = await _post_json(client, batch(3))
    assert too_many.status_code == 413
    monkeypatch.setattr(market_data_api, "MAX_BODY_BYTES", 100)
    too_big = await _post_json(client, batch(1))
    assert too_big.status_code == 413
    assert await _state(db_session) == (0, 0.0)


@pytest.mark.usefixtures("btc")
async def test_a_second_timeframe_for_a_coin_is_a_conflict(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    await _post_json(client, batch(3))
    before = await _state(db_session)
    days = {"candles": [candle(0), candle(24), candle(48)]}
    response = await _post_json(client, days)
    assert response.status_code == 409
    assert "1h" in response.json()["detail"]
    assert await _state(db_session) == before


@pytest.mark.usefixtures("btc")
async def test_explicit_timeframe_allows_a_single_row(client: httpx.AsyncClient) -> None:
    alone = await _post_json(client, {"candles": [candle(0)]})
    assert alone.status_code == 422
    assert alone.json()["errors"][-1]["field"] == "timeframe"
    response = await client.post(URL + "?timeframe=1h", json={"candles": [candle(0)]})
    assert response.status_code == 200
    wrong = await client.post(URL + "?timeframe=1w", json={"candles": [candle(0)]})
    assert wrong.status_code == 422


async def test_the_schema_states_the_times_the_ingest_accepts(client: httpx.AsyncClient) -> None:
    """Epoch integers are read by size (seconds, ms, µs) from 2009 on: the schema says so."""
    document = (await client.get("/openapi.json")).json()
    body = document["paths"]["/api/v1/cryptocurrencies/{symbol}/ohlcv"]["post"]["requestBody"]
    candle = body["content"]["application/json"]["schema"]["properties"]["candles"]["items"]
    stamp = candle["oneOf"][0]["properties"]["timestamp"]["oneOf"]
    integers = [(s["minimum"], s["maximum"]) for s in stamp if s["type"] == "integer"]
    assert integers == [
        (1_230_768_000, 10**11 - 1),
        (1_230_768_000_000, 10**14 - 1),
        (1_230_768_000_000_000, 10**17 - 1),
    ]
