"""Predictions end to end: forecast from stored candles, the ledger, scoring, backtests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.cache import CacheManager
from app.jobs.backtest_runner import BacktestRunner
from app.main import create_app
from app.market import Candle, Timeframe
from app.models import Prediction
from app.repositories import cryptocurrencies, market_data
from app.services.predictions import latest_key
from tests.conftest import TransactionalDatabase, make_settings
from tests.integration.factories import make_coin

HOURS = 2300
URL = "/api/v1/predictions"
CHEAP = ["random_walk", "random_walk_drift"]


def geometric_walk(n: int, seed: int, start: float = 100.0) -> np.ndarray:
    returns = np.random.default_rng(seed).normal(0.0, 0.01, size=n)
    return start * np.exp(np.cumsum(returns))


def candles_ending(last_open: datetime, closes: np.ndarray, frame: Timeframe) -> list[Candle]:
    first = last_open - (len(closes) - 1) * frame.delta
    out = []
    for i, close in enumerate(closes):
        open_ = closes[i - 1] if i else close
        high, low = max(open_, close) * 1.001, min(open_, close) * 0.999
        out.append(Candle(first + i * frame.delta, open_, high, low, float(close), 1.0))
    return out


def this_hour() -> datetime:
    return Timeframe.H1.floor(datetime.now(UTC))


@pytest.fixture
async def app(engine: AsyncEngine, db_session: AsyncSession, cache: CacheManager) -> FastAPI:
    return create_app(
        make_settings(), database=TransactionalDatabase(engine, db_session), cache=cache
    )


@pytest.fixture
async def api(app: FastAPI, write_key: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    headers = {"X-API-Key": write_key}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers=headers
    ) as http:
        yield http


@pytest.fixture
async def btc(db_session: AsyncSession) -> np.ndarray:
    """Hourly BTC up to the candle that is still forming now."""
    coin = await make_coin(db_session, symbol="BTC", name="Bitcoin")
    closes = geometric_walk(HOURS, seed=1)
    await market_data.insert_missing(
        db_session, coin.id, candles_ending(this_hour(), closes, Timeframe.H1), "test"
    )
    return closes


@pytest.fixture
async def eth_daily(db_session: AsyncSession) -> None:
    coin = await make_coin(db_session, symbol="ETH", name="Ether")
    last = Timeframe.D1.floor(datetime.now(UTC)) - timedelta(days=1)
    await market_data.insert_missing(
        db_session, coin.id, candles_ending(last, geometric_walk(300, seed=2), Timeframe.D1), "t"
    )


async def _count(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count(Prediction.id)))).scalar_one())


async def _predict(api: httpx.AsyncClient, **body: Any) -> httpx.Response:
    payload = {"symbols": ["BTC"], "horizons": ["1h", "4h"], "models": CHEAP, **body}
    return await api.post(URL, json=payload)


async def test_predictions_start_at_the_last_closed_candle(
    api: httpx.AsyncClient, btc: np.ndarray
) -> None:
    response = await _predict(api)
    assert response.status_code == 200, response.text
    run = response.json()
    assert run["stored"] == 4 and run["skipped"] == []
    origin = this_hour()  # the candle opened at this hour is still forming: left out
    last_closed = btc[-2]
    by_key = {(p["model_name"], p["horizon"]): p for p in run["predictions"]}
    assert set(by_key) == {(m, h) for m in CHEAP for h in ("1h", "4h")}
    for (_model, horizon), p in by_key.items():
        hours = int(horizon[:-1])
        assert p["prediction_timestamp"] == origin.isoformat().replace("+00:00", "Z")
        target = datetime.fromisoformat(p["target_timestamp"])
        assert target == origin + timedelta(hours=hours)
        assert p["lower_95"] < p["lower_80"] < p["predicted_price"] < p["upper_80"] < p["upper_95"]
        assert 0 < p["confidence_score"] < 1
        assert p["confidence_tolerance"] == {"1h": 0.005, "4h": 0.01}[horizon]
        series = p["features_used"]["series"]
        assert series["observations"] == 2000 and series["timeframe"] == "1h"
        assert series["last_open"] == (origin - timedelta(hours=1)).isoformat()
        assert p["model_version"] == f"1.{origin - timedelta(hours=1):%Y%m%d%H%M}.2000"
        assert p["status"] == "pending" and p["actual_price"] is None
    assert by_key[("random_walk", "4h")]["predicted_price"] == pytest.approx(last_closed)
    # A wider horizon has a wider band and less chance of landing inside a wider tolerance.
    rw1, rw4 = by_key[("random_walk", "1h")], by_key[("random_walk", "4h")]
    assert rw4["upper_95"] - rw4["lower_95"] > rw1["upper_95"] - rw1["lower_95"]


async def test_the_forming_candle_cannot_move_a_forecast(
    api: httpx.AsyncClient, btc: np.ndarray, db_session: AsyncSession
) -> None:
    """No look-ahead through the service: the candle after the origin is still forming."""
    models = ["random_walk", "random_walk_drift", "lightgbm_returns"]
    before = (await _predict(api, models=models)).json()["predictions"]
    coin = await cryptocurrencies.get_by_symbol(db_session, "BTC")
    assert coin is not None
    forming = Candle(this_hour(), 1.0, 1e6, 0.5, 1e6, 1e9)  # absurd on purpose
    counts = await market_data.upsert_candles(db_session, coin.id, [forming], "test")
    assert counts.updated == 1
    after = (await _predict(api, models=models)).json()["predictions"]
    keys = ("predicted_price", "lower_95", "upper_95", "confidence_score", "model_version")
    assert [[p[k] for k in keys] for p in after] == [[p[k] for k in keys] for p in before]


async def test_rerunning_does_not_duplicate_and_never_rewrites_a_scored_row(
    api: httpx.AsyncClient, btc: np.ndarray, db_session: AsyncSession
) -> None:
    first = (await _predict(api)).json()
    assert await _count(db_session) == 4
    scored_id = first["predictions"][0]["id"]
    row = await db_session.get(Prediction, scored_id)
    assert row is not None
    row.actual_price, row.error, row.predicted_price = 1.0, 5.0, 1234.5
    await db_session.flush()

    second = (await _predict(api)).json()
    assert await _count(db_session) == 4
    assert second["stored"] == 3  # the scored row was left alone
    again = {p["id"]: p for p in second["predictions"]}
    assert again[scored_id]["predicted_price"] == 1234.5
    assert again[scored_id]["status"] == "evaluated"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"models": ["random_walk", "crystal_ball"]}, 422, "body.models[1]"),
        ({"symbols": ["BTC", "NOPE"]}, 404, None),
        ({"symbols": ["ETH"], "horizons": ["1h"]}, 409, "body.horizons"),
        ({"horizons": ["2h"]}, 422, None),
        ({"symbols": []}, 422, None),
    ],
)
async def test_bad_requests_write_nothing(
    api: httpx.AsyncClient,
    btc: np.ndarray,
    eth_daily: None,
    db_session: AsyncSession,
    body: dict[str, Any],
    status: int,
    field: str | None,
) -> None:
    response = await _predict(api, **body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    if field is not None:
        assert field in [error["field"] for error in response.json()["errors"]]
    assert await _count(db_session) == 0


async def test_daily_coins_forecast_days(api: httpx.AsyncClient, eth_daily: None) -> None:
    response = await _predict(api, symbols=["ETH"], horizons=["24h", "7d"])
    assert response.status_code == 200, response.text
    targets = {
        p["horizon"]: datetime.fromisoformat(p["target_timestamp"])
        for p in response.json()["predictions"]
    }
    origin = Timeframe.D1.floor(datetime.now(UTC))
    assert targets == {"24h": origin + timedelta(days=1), "7d": origin + timedelta(days=7)}


async def test_ledger_filters_and_pages(api: httpx.AsyncClient, btc: np.ndarray) -> None:
    await _predict(api)
    everything = (await api.get(URL, params={"symbol": "btc"})).json()
    assert everything["total"] == 4
    targets = [p["target_timestamp"] for p in everything["items"]]
    assert targets == sorted(targets, reverse=True)
    only = (await api.get(URL, params={"model": "random_walk", "horizon": "4h"})).json()
    assert [(p["model_name"], p["horizon"]) for p in only["items"]] == [("random_walk", "4h")]
    page = (await api.get(URL, params={"limit": 3, "offset": 3})).json()
    assert (len(page["items"]), page["total"]) == (1, 4)
    soon = this_hour() + timedelta(hours=2)
    early = (await api.get(URL, params={"target_to": soon.isoformat()})).json()
    assert {p["horizon"] for p in early["items"]} == {"1h"}
    assert (await api.get(URL, params={"status": "evaluated"})).json()["total"] == 0
    assert (await api.get(URL, params={"status": "pending"})).json()["total"] == 4
    naive = await api.get(URL, params={"target_to": "2024-01-01T00:00:00"})
    assert naive.status_code == 422 and "query.target_to" in naive.text


async def test_latest_is_cached_and_refreshed_by_new_predictions(
    api: httpx.AsyncClient, btc: np.ndarray, cache: CacheManager
) -> None:
    await _predict(api, horizons=["1h"], models=["random_walk"])
    latest = (await api.get(f"{URL}/latest", params={"symbol": "BTC"})).json()
    assert latest["champion"] == {"1h": "random_walk"}
    assert [p["model_name"] for p in latest["predictions"]] == ["random_walk"]
    assert await cache.get(latest_key("BTC")) is not None
    await _predict(api, horizons=["1h"], models=["random_walk_drift"])
    assert await cache.get(latest_key("BTC")) is None  # dropped after the commit
    latest = (await api.get(f"{URL}/latest", params={"symbol": "BTC"})).json()
    assert {p["model_name"] for p in latest["predictions"]} == set(CHEAP[:2])


async def test_scoring_fills_actuals_once(api: httpx.AsyncClient, db_session: AsyncSession) -> None:
    coin = await make_coin(db_session, symbol="BTC", name="Bitcoin")
    closes = geometric_walk(HOURS, seed=3)
    last_open = this_hour() - timedelta(hours=10)  # history ends 10 hours ago
    await market_data.insert_missing(
        db_session, coin.id, candles_ending(last_open, closes, Timeframe.H1), "test"
    )
    run = (await _predict(api)).json()
    assert run["stored"] == 4
    first = await api.post(f"{URL}/score")
    assert first.json() == {"scored": 0, "waiting": 4}  # targets passed, candles missing

    # The next hour's candle arrives: the 1h forecasts can be scored, the 4h ones cannot.
    arrived = Candle(last_open + timedelta(hours=1), 100.0, 102.0, 99.0, 101.0, 1.0)
    await market_data.insert_missing(db_session, coin.id, [arrived], "test")
    second = await api.post(f"{URL}/score")
    assert second.json() == {"scored": 2, "waiting": 2}
    scored = (await api.get(URL, params={"status": "evaluated"})).json()["items"]
    assert {p["horizon"] for p in scored} == {"1h"}
    for p in scored:
        assert p["actual_price"] == 101.0
        assert p["error"] == pytest.approx(100 * abs(p["predicted_price"] - 101.0) / 101.0)
        assert p["evaluated_at"] is not None
    third = await api.post(f"{URL}/score")
    assert third.json() == {"scored": 0, "waiting": 2}


async def _backtest(api: httpx.AsyncClient, app: FastAPI, **body: Any) -> dict[str, Any]:
    payload = {"symbol": "BTC", "horizon": "4h", "models": ["random_walk_drift"], **body}
    accepted = await api.post("/api/v1/backtests", json=payload)
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["status"] == "pending"
    runner: BacktestRunner = app.state.backtests
    await runner.wait()
    response = await api.get(f"/api/v1/backtests/{accepted.json()['id']}")
    assert response.status_code == 200
    return dict(response.json())


async def test_backtest_runs_in_the_background_and_feeds_the_leaderboard(
    api: httpx.AsyncClient, app: FastAPI, btc: np.ndarray
) -> None:
    done = await _backtest(api, app, windows=12, step=6)
    assert done["status"] == "succeeded", done["error"]
    assert done["windows_done"] == 12 and done["models"] == ["random_walk", "random_walk_drift"]
    result = done["result"]
    assert len(result["origins"]) == 12
    gaps = {
        datetime.fromisoformat(b) - datetime.fromisoformat(a)
        for a, b in zip(result["origins"], result["origins"][1:], strict=False)
    }
    assert gaps == {timedelta(hours=6)}
    assert datetime.fromisoformat(result["origins"][-1]) == this_hour() - timedelta(hours=4)

    board = await api.get("/api/v1/leaderboard", params={"symbol": "BTC", "horizon": "4h"})
    assert board.status_code == 200
    rows = board.json()["rows"]
    assert [r["rank"] for r in rows] == [1, 2]
    baseline = next(r for r in rows if r["model"] == "random_walk")
    assert baseline["relative_mae"] == 1.0 and baseline["dm_p_value"] == 1.0
    assert [r["relative_mae"] for r in rows] == sorted(r["relative_mae"] for r in rows)
    assert board.json()["champion"] in {"random_walk", "random_walk_drift"}
    assert set(board.json()["calibration"]) == {"random_walk", "random_walk_drift"}

    # Later predictions take their confidence calibration from this backtest.
    run = (await _predict(api, horizons=["4h"], models=["random_walk"])).json()
    confidence = run["predictions"][0]["features_used"]["confidence"]
    assert confidence["calibrated_by_backtest"] == done["id"]
    assert confidence["sigma_scale"] == result["models"]["random_walk"]["sigma_scale"]


async def test_backtest_requests_are_checked_before_they_are_accepted(
    api: httpx.AsyncClient, btc: np.ndarray, db_session: AsyncSession
) -> None:
    too_long = await api.post(
        "/api/v1/backtests", json={"symbol": "BTC", "horizon": "24h", "windows": 400}
    )
    assert too_long.status_code == 409  # valid, but BTC's history is too short for it
    assert too_long.json()["errors"][0]["field"] == "body.windows"
    unknown = await api.get(f"/api/v1/backtests/{'0' * 32}")
    assert unknown.status_code == 404
    malformed = await api.get("/api/v1/backtests/not-an-id")
    assert malformed.status_code == 422
    missing = await api.get("/api/v1/leaderboard", params={"symbol": "BTC", "horizon": "7d"})
    assert missing.status_code == 404 and "POST /api/v1/backtests" in missing.json()["detail"]


async def test_models_are_listed(api: httpx.AsyncClient) -> None:
    models = {m["name"]: m for m in (await api.get("/api/v1/models")).json()}
    assert models["random_walk"]["baseline"] is True
    assert {"random_walk", "random_walk_drift", "auto_ets", "auto_theta", "lightgbm_returns"} <= {
        name for name, m in models.items() if m["default"]
    }


async def test_an_outage_candle_of_zeros_does_not_fail_a_backtest(
    api: httpx.AsyncClient, app: FastAPI, btc: np.ndarray, db_session: AsyncSession
) -> None:
    """Stored before the ingest refused such rows, or written by hand: bridged as a gap."""
    coin = await cryptocurrencies.get_by_symbol(db_session, "BTC")
    assert coin is not None
    outage = this_hour() - timedelta(hours=30)
    zeros = Candle(outage, 0.0, 0.0, 0.0, 0.0, 0.0)
    assert (await market_data.upsert_candles(db_session, coin.id, [zeros], "test")).updated == 1
    done = await _backtest(api, app, windows=12, step=6)
    assert done["status"] == "succeeded", done["error"]
    assert done["result"]["bridged_candles"] >= 1
    run = await _predict(api, horizons=["1h"], models=["random_walk"])
    assert run.status_code == 200 and run.json()["stored"] == 1
