"""Admission control: one key flooding heavy work gets 429s; everyone else still gets in.

Forecasts and uploads are bounded by what is in progress (per key, per process), backtests by
what is outstanding (pending or running, in model-windows, from the database), and backtests
run in an API process without a queue one at a time.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.cache import CacheManager
from app.database import Database
from app.ingestion.batch import CandleBatch
from app.jobs.backtest_runner import BacktestRunner
from app.main import create_app
from app.market import Timeframe
from app.services import backtest_runs
from app.services import market_data as candles_service
from app.services import predictions as predictions_service
from app.services.coins import get_coin
from tests.conftest import TransactionalDatabase, make_api_key, make_settings
from tests.integration.live import live_database, make_live_coin, make_live_key
from tests.integration.test_predictions_api import btc, candles_ending, geometric_walk, this_hour

__all__ = ["btc", "live_database"]  # fixtures, imported for pytest to find

CHEAP = ["random_walk", "random_walk_drift"]


def _client(app: FastAPI, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test", headers={"X-API-Key": key}
    )


class HeldFits:
    """Model fits that wait until released, so requests stay in progress on purpose."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = 0
        self._lock = threading.Lock()

    def fit(self, closes: np.ndarray, steps: int, models: Any) -> Any:
        with self._lock:
            self.started += 1
        self.release.wait(timeout=30)
        return predictions_service.ForecastBatch()

    async def until_started(self, count: int) -> None:
        for _ in range(1000):
            if self.started >= count:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"only {self.started} of {count} fits started")


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> HeldFits:
    fits = HeldFits()
    monkeypatch.setattr(predictions_service, "forecast_models", fits.fit)
    return fits


async def _coin_with_history(database: Database, cache: CacheManager) -> str:
    _id, symbol = await make_live_coin(database)
    closes = geometric_walk(300, seed=3)
    batch = CandleBatch(candles_ending(this_hour(), closes, Timeframe.H1), Timeframe.H1)
    async with database.unit_of_work() as session:
        await candles_service.ingest(
            session, cache, await get_coin(session, cache, symbol), batch, "t"
        )
    return symbol


async def test_a_key_past_its_forecasts_in_progress_gets_429_and_others_still_get_in(
    live_database: Database, cache: CacheManager, held: HeldFits
) -> None:
    app = create_app(
        make_settings(FORECASTS_PER_KEY=2, FORECASTS_TOTAL=3), database=live_database, cache=cache
    )
    symbol = await _coin_with_history(live_database, cache)
    body = {"symbols": [symbol], "horizons": ["1h"], "models": CHEAP}
    flooder, polite, third = [await make_live_key(live_database) for _ in range(3)]
    async with _client(app, flooder) as a, _client(app, polite) as b, _client(app, third) as c:
        flood = [asyncio.create_task(a.post("/api/v1/predictions", json=body)) for _ in range(2)]
        await held.until_started(2)
        refused = await a.post("/api/v1/predictions", json=body)  # answered at once
        assert refused.status_code == 429, refused.text
        assert refused.json()["type"].endswith("/too-busy-for-this-key")
        assert int(refused.headers["retry-after"]) >= 1
        politely = asyncio.create_task(b.post("/api/v1/predictions", json=body))
        await held.until_started(3)
        busy = await c.post("/api/v1/predictions", json=body)  # the server's total is reached
        assert busy.status_code == 503, busy.text
        assert busy.json()["type"].endswith("/server-busy")
        assert int(busy.headers["retry-after"]) >= 1
        held.release.set()
        answers = await asyncio.gather(*flood, politely)
        assert [r.status_code for r in answers] == [200, 200, 200]
        # Slots are given back: the flooding key may forecast again.
        assert (await a.post("/api/v1/predictions", json=body)).status_code == 200
    assert app.state.admission["forecasts"].in_flight == 0


@pytest.fixture
async def parked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Accepted backtests stay pending, as if every worker were busy."""
    dispatched: list[str] = []

    async def park(_runner: BacktestRunner, backtest_id: str) -> None:
        dispatched.append(backtest_id)

    monkeypatch.setattr(BacktestRunner, "dispatch", park)
    return dispatched


async def test_backtests_are_bounded_by_what_each_key_and_everyone_has_outstanding(
    engine: AsyncEngine,
    db_session: AsyncSession,
    cache: CacheManager,
    btc: np.ndarray,
    parked: list[str],
) -> None:
    # Each request costs 5 windows x 2 models = 10 model-windows.
    settings = make_settings(BACKTEST_BUDGET_PER_KEY=25, BACKTEST_BUDGET_TOTAL=35)
    app = create_app(settings, database=TransactionalDatabase(engine, db_session), cache=cache)
    body = {"symbol": "BTC", "horizon": "1h", "windows": 5, "models": CHEAP}
    keys = [await make_api_key(db_session) for _ in range(3)]
    async with _client(app, keys[0]) as first, _client(app, keys[1]) as second:
        codes = [(await first.post("/api/v1/backtests", json=body)).status_code for _ in range(3)]
        assert codes == [202, 202, 429]
        refused = await first.post("/api/v1/backtests", json=body)
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        assert "20 model-windows" in refused.json()["detail"]
        # Another key has its own budget...
        assert (await second.post("/api/v1/backtests", json=body)).status_code == 202
        # ...until everyone's outstanding work reaches the total.
        async with _client(app, keys[2]) as third:
            busy = await third.post("/api/v1/backtests", json=body)
        assert busy.status_code == 503 and int(busy.headers["retry-after"]) >= 1
        # A request larger than a key's whole budget could never succeed: not a 429.
        huge = await second.post("/api/v1/backtests", json={**body, "windows": 20})
        assert huge.status_code == 409 and huge.json()["errors"][0]["field"] == "body.windows"
    assert len(parked) == 3


async def test_without_a_queue_backtests_compute_one_at_a_time(
    monkeypatch: pytest.MonkeyPatch, cache: CacheManager
) -> None:
    computing, most = 0, 0

    async def execute(*_args: Any, **_kwargs: Any) -> None:
        nonlocal computing, most
        computing += 1
        most = max(most, computing)
        await asyncio.sleep(0.02)
        computing -= 1

    monkeypatch.setattr(backtest_runs, "execute", execute)
    runner = BacktestRunner(Database.from_url("sqlite:///:memory:"), cache, None, local_limit=1)
    for n in range(4):
        await runner.dispatch(f"{n:032x}")
    assert runner.running == 4  # accepted and waiting their turn, not refused
    await runner.wait()
    assert most == 1
    assert runner.outcomes["finished"] == 4


async def test_uploads_in_progress_are_bounded_per_key(
    live_database: Database, cache: CacheManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(
        make_settings(INGESTS_PER_KEY=1, INGESTS_TOTAL=5), database=live_database, cache=cache
    )
    _id, symbol = await make_live_coin(live_database)
    release = asyncio.Event()
    ingest = candles_service.ingest

    async def slow_ingest(*args: Any, **kwargs: Any) -> Any:
        await release.wait()
        return await ingest(*args, **kwargs)

    monkeypatch.setattr(candles_service, "ingest", slow_ingest)
    row = {"timestamp": "2024-01-01T00:00:00Z", "open": 1, "high": 1, "low": 1, "close": 1}
    url = f"/api/v1/cryptocurrencies/{symbol}/ohlcv?timeframe=1h"
    key, other = await make_live_key(live_database), await make_live_key(live_database)
    async with _client(app, key) as a, _client(app, other) as b:
        first = asyncio.create_task(a.post(url, json=[{**row, "volume": 1}]))
        for _ in range(500):
            if app.state.admission["ingests"].in_flight:
                break
            await asyncio.sleep(0.01)
        second = await a.post(url, json=[{**row, "volume": 2}])
        assert second.status_code == 429 and int(second.headers["retry-after"]) >= 1
        others = asyncio.create_task(b.post(url, json=[{**row, "volume": 3}]))
        await asyncio.sleep(0.05)
        release.set()
        assert (await first).status_code == 200
        assert (await others).status_code == 200
