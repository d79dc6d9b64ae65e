"""GET /api/v1/meta: the vocabulary a client reads instead of copying it."""

from __future__ import annotations

import httpx

from app.forecasting import BASELINE, model_names


async def test_meta_lists_the_timeframes_the_ohlcv_endpoint_accepts(
    client: httpx.AsyncClient,
) -> None:
    body = (await client.get("/api/v1/meta")).json()
    queryable = [frame["name"] for frame in body["timeframes"] if frame["queryable"]]
    assert queryable == ["1h", "4h", "1d", "1w"]
    for interval in queryable:
        response = await client.get(
            "/api/v1/cryptocurrencies/BTC/ohlcv", params={"interval": interval}
        )
        assert response.status_code != 422, interval  # 404 (no coin yet) is fine
    seconds = [frame["seconds"] for frame in body["timeframes"]]
    assert seconds == sorted(seconds)


async def test_meta_horizons_count_steps_only_where_a_horizon_is_whole(
    client: httpx.AsyncClient,
) -> None:
    horizons = {h["name"]: h for h in (await client.get("/api/v1/meta")).json()["horizons"]}
    assert list(horizons) == ["1h", "4h", "24h", "7d"]
    assert horizons["24h"]["seconds"] == 86_400
    assert horizons["24h"]["steps"]["1h"] == 24
    assert horizons["1h"]["steps"]["1h"] == 1
    assert "1d" not in horizons["1h"]["steps"]  # an hour is not a whole number of days


async def test_meta_models_are_the_registry(client: httpx.AsyncClient) -> None:
    body = (await client.get("/api/v1/meta")).json()
    assert body["models"] == model_names()
    assert body["baseline"] == BASELINE
    assert set(body["default_models"]) <= set(body["models"])
    assert body["candle_pages"]["max_limit"] >= max(body["candle_pages"]["cached_limits"])
