"""A forecast holds no database connection while its models fit.

`POST /api/v1/predictions` used to fit inside the request's open transaction: 32 concurrent
forecasts held every pooled connection and unrelated reads answered 503. These tests run the
app on a real connection pool and look at the pool from inside the fitting.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import numpy as np
import pytest

from app.cache import CacheManager
from app.database import Database
from app.ingestion.batch import CandleBatch
from app.main import create_app
from app.market import Timeframe
from app.services import market_data as candles_service
from app.services import predictions as predictions_service
from app.services.coins import get_coin
from tests.conftest import make_settings
from tests.integration.live import live_database, make_live_coin, make_live_key
from tests.integration.test_predictions_api import candles_ending, geometric_walk, this_hour

__all__ = ["live_database"]  # the fixture, imported for pytest to find

URL = "/api/v1/predictions"
CHEAP = ["random_walk", "random_walk_drift"]


async def _coin_with_history(database: Database, cache: CacheManager) -> str:
    _id, symbol = await make_live_coin(database)
    closes = geometric_walk(400, seed=7)
    batch = CandleBatch(candles_ending(this_hour(), closes, Timeframe.H1), Timeframe.H1)
    async with database.unit_of_work() as session:
        coin = await get_coin(session, cache, symbol)
        await candles_service.ingest(session, cache, coin, batch, "test")
    return symbol


@pytest.fixture
async def api(live_database: Database, cache: CacheManager) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(), database=live_database, cache=cache)
    headers = {"X-API-Key": await make_live_key(live_database)}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers=headers
    ) as http:
        yield http


@pytest.fixture
def fits(monkeypatch: pytest.MonkeyPatch, live_database: Database) -> list[int]:
    """Each model fit's view of the pool: how many connections were checked out."""
    seen: list[int] = []
    fit = predictions_service.forecast_models

    def watched(closes: np.ndarray, steps: int, models: Any) -> Any:
        seen.append(live_database.engine.pool.checkedout())  # type: ignore[attr-defined]
        return fit(closes, steps, models)

    monkeypatch.setattr(predictions_service, "forecast_models", watched)
    return seen


async def test_models_fit_with_no_connection_checked_out(
    api: httpx.AsyncClient, live_database: Database, cache: CacheManager, fits: list[int]
) -> None:
    symbols = [await _coin_with_history(live_database, cache) for _ in range(2)]
    body = {"symbols": symbols, "horizons": ["1h", "4h"], "models": CHEAP}
    response = await api.post(URL, json=body)
    assert response.status_code == 200, response.text
    assert response.json()["stored"] == 2 * 2 * len(CHEAP)
    assert fits == [0, 0, 0, 0]  # two coins x two horizons, each fit with the pool idle


async def test_an_unknown_symbol_anywhere_is_404_before_any_fitting(
    api: httpx.AsyncClient, live_database: Database, cache: CacheManager, fits: list[int]
) -> None:
    known = await _coin_with_history(live_database, cache)
    body = {"symbols": [known, "NOSUCHCOIN"], "horizons": ["1h"], "models": CHEAP}
    response = await api.post(URL, json=body)
    assert response.status_code == 404, response.text
    assert "NOSUCHCOIN" in response.json()["detail"]
    assert fits == []
