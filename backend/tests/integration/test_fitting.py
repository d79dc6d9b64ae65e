"""Forecasts fitted in worker processes are the forecasts fitted in a thread, bit for bit.

The API fits in processes (FORECAST_PROCESSES) so a fit holding the GIL cannot stall its event
loop; the other tests fit in threads (tests/conftest.make_settings), so this one runs the
process path end to end, through the API and the app's lifespan.
"""

from __future__ import annotations

import httpx
import numpy as np
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.cache import CacheManager
from app.main import create_app
from app.services.fitting import ProcessFits
from app.services.predictions import forecast_models
from tests.conftest import TransactionalDatabase, make_settings
from tests.integration.test_predictions_api import btc, geometric_walk

__all__ = ["btc"]  # the fixture, imported for pytest to find

MODELS = ["random_walk", "random_walk_drift", "auto_theta"]


async def test_a_process_fit_equals_a_thread_fit() -> None:
    closes = geometric_walk(600, seed=5)
    fits = ProcessFits(1)
    try:
        in_process = await fits(closes, 24, MODELS)
    finally:
        fits.close()
    here = forecast_models(closes, 24, MODELS)
    assert in_process.failed == here.failed == {}
    assert in_process.made == here.made  # dataclasses of floats: equal to the last bit


async def test_the_api_fits_in_its_processes(
    engine: AsyncEngine,
    db_session: AsyncSession,
    cache: CacheManager,
    btc: np.ndarray,
    write_key: str,
) -> None:
    settings = make_settings(FORECAST_PROCESSES=1)
    app = create_app(settings, database=TransactionalDatabase(engine, db_session), cache=cache)
    assert isinstance(app.state.fits, ProcessFits)
    body = {"symbols": ["BTC"], "horizons": ["1h"], "models": MODELS}
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://test",
            headers={"X-API-Key": write_key},
        ) as http:
            response = await http.post("/api/v1/predictions", json=body)
        assert response.status_code == 200, response.text
        assert response.json()["stored"] == len(MODELS)
        assert app.state.fits._pool is not None  # the processes did the fitting
    finally:
        app.state.fits.close()


async def test_the_apps_shutdown_stops_its_fitting_processes(cache: CacheManager) -> None:
    settings = make_settings(
        FORECAST_PROCESSES=1, DATABASE_URL="sqlite:///:memory:", JOBS_ENABLED=False
    )
    app = create_app(settings, cache=cache)
    async with app.router.lifespan_context(app):
        made = await app.state.fits(geometric_walk(300, seed=9), 1, ["random_walk"])
        assert [forecast.model for forecast in made.made] == ["random_walk"]
        assert app.state.fits._pool is not None
    assert app.state.fits._pool is None
