"""Coins endpoints: create, list with filters and pages, read any case, update, cache."""

from __future__ import annotations

import httpx
import pytest

from app.cache import CacheManager
from app.services.coins import ALL_COINS_KEY, coin_key


async def _create(client: httpx.AsyncClient, **fields: object) -> httpx.Response:
    body = {"symbol": "BTC", "name": "Bitcoin", "coin_gecko_id": "bitcoin"} | fields
    return await client.post("/api/v1/cryptocurrencies", json=body)


async def test_create_then_read_in_any_case(client: httpx.AsyncClient) -> None:
    created = await _create(client, symbol="btc")
    assert created.status_code == 201
    assert created.json()["symbol"] == "BTC"
    assert created.json()["is_active"] is True
    for spelling in ("BTC", "btc", "Btc"):
        response = await client.get(f"/api/v1/cryptocurrencies/{spelling}")
        assert response.status_code == 200
        assert response.json()["id"] == created.json()["id"]
        assert response.json()["created_at"].endswith("Z")


async def test_duplicate_symbol_is_a_conflict(client: httpx.AsyncClient) -> None:
    assert (await _create(client)).status_code == 201
    again = await _create(client, symbol="Btc", name="Other")
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"symbol": "TOO-LONG-SYMBOL"}, "body.symbol"),
        ({"symbol": ""}, "body.symbol"),
        ({"name": ""}, "body.name"),
        ({"coin_gecko_id": "Not Valid!"}, "body.coin_gecko_id"),
        ({"unexpected": 1}, "body.unexpected"),
        ({"is_active": "perhaps"}, "body.is_active"),
    ],
)
async def test_invalid_coin_names_the_field(
    client: httpx.AsyncClient, fields: dict[str, object], field: str
) -> None:
    response = await _create(client, **fields)
    assert response.status_code == 422
    problem = response.json()
    assert problem["status"] == 422
    assert [error["field"] for error in problem["errors"]] == [field]
    assert "perhaps" not in response.text and "Not Valid!" not in response.text


async def test_unknown_symbol_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/cryptocurrencies/NOPE")
    assert response.status_code == 404
    assert "NOPE" in response.json()["detail"]
    assert (await client.get("/api/v1/cryptocurrencies/bad-symbol!")).status_code == 422


async def test_list_filters_and_pages(client: httpx.AsyncClient) -> None:
    for symbol in ("AAA", "BBB", "CCC", "DDD"):
        assert (await _create(client, symbol=symbol, name=symbol)).status_code == 201
    patch = await client.patch("/api/v1/cryptocurrencies/bbb", json={"is_active": False})
    assert patch.status_code == 200

    everything = (await client.get("/api/v1/cryptocurrencies")).json()
    assert [c["symbol"] for c in everything["items"]] == ["AAA", "BBB", "CCC", "DDD"]
    assert everything["total"] == 4

    active = (await client.get("/api/v1/cryptocurrencies?is_active=true")).json()
    assert [c["symbol"] for c in active["items"]] == ["AAA", "CCC", "DDD"]
    inactive = (await client.get("/api/v1/cryptocurrencies?is_active=false")).json()
    assert [c["symbol"] for c in inactive["items"]] == ["BBB"]

    page = (await client.get("/api/v1/cryptocurrencies?limit=2&offset=1")).json()
    assert [c["symbol"] for c in page["items"]] == ["BBB", "CCC"]
    assert (page["total"], page["limit"], page["offset"]) == (4, 2, 1)
    assert (await client.get("/api/v1/cryptocurrencies?limit=0")).status_code == 422


async def test_patch_changes_only_given_fields(client: httpx.AsyncClient) -> None:
    created = (await _create(client)).json()
    response = await client.patch("/api/v1/cryptocurrencies/BTC", json={"name": "Bitcoin Core"})
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "Bitcoin Core"
    assert body["coin_gecko_id"] == "bitcoin"
    assert body["is_active"] is True
    assert body["updated_at"] >= created["updated_at"]
    for bad in ({"symbol": "ETH"}, {"name": None}, {"is_active": None}):
        assert (await client.patch("/api/v1/cryptocurrencies/BTC", json=bad)).status_code == 422
    missing = await client.patch("/api/v1/cryptocurrencies/NONE", json={"name": "x"})
    assert missing.status_code == 404


async def test_metadata_is_cached_and_invalidated_on_write(
    client: httpx.AsyncClient, cache: CacheManager
) -> None:
    await _create(client)
    await client.get("/api/v1/cryptocurrencies/BTC")
    await client.get("/api/v1/cryptocurrencies")
    assert (await cache.get(coin_key("BTC")))["name"] == "Bitcoin"
    assert await cache.get(ALL_COINS_KEY) is not None

    hits_before = cache.stats.hits
    # A public read without a key: the coin's cache entry is the only cache read.
    public = await client.get("/api/v1/cryptocurrencies/BTC", headers={"X-API-Key": ""})
    assert public.json()["name"] == "Bitcoin"
    assert cache.stats.hits == hits_before + 1

    await client.patch("/api/v1/cryptocurrencies/BTC", json={"name": "Renamed"})
    assert await cache.get(coin_key("BTC")) is None
    assert await cache.get(ALL_COINS_KEY) is None
    assert (await client.get("/api/v1/cryptocurrencies/BTC")).json()["name"] == "Renamed"
    listed = (await client.get("/api/v1/cryptocurrencies")).json()["items"]
    assert listed[0]["name"] == "Renamed"
