"""API keys: writes need a key with the right scope; keys are stored only as hashes."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.cache import CacheManager
from app.main import create_app
from app.models import ApiKey, Cryptocurrency
from app.services.api_keys import KeyScope, create_key, revoke_key, verified_cache_key
from tests.conftest import TransactionalDatabase, make_api_key, make_settings

COINS = "/api/v1/cryptocurrencies"
NEW_COIN = {"symbol": "ADA", "name": "Cardano"}


def _app_client(
    engine: AsyncEngine, session: AsyncSession, cache: CacheManager, **settings: object
) -> httpx.AsyncClient:
    app = create_app(
        make_settings(**settings), database=TransactionalDatabase(engine, session), cache=cache
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


@pytest.fixture
async def anonymous(
    engine: AsyncEngine, db_session: AsyncSession, cache: CacheManager
) -> AsyncIterator[httpx.AsyncClient]:
    async with _app_client(engine, db_session, cache) as http:
        yield http


async def _coins(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count(Cryptocurrency.id)))).scalar_one())


def _problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, object] = response.json()
    assert body["status"] == status
    return body


async def test_a_write_without_a_key_is_401_and_writes_nothing(
    anonymous: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    before = await _coins(db_session)
    response = await anonymous.post(COINS, json=NEW_COIN)
    body = _problem(response, 401)
    assert response.headers["www-authenticate"] == 'ApiKey header="X-API-Key"'
    assert "X-API-Key" in str(body["detail"])
    assert await _coins(db_session) == before


@pytest.mark.parametrize(
    "key",
    ["not-a-key", "cp_0123abcd_" + "x" * 43, "cp_0123abcd_short"],
)
async def test_unknown_or_malformed_keys_are_401(
    anonymous: httpx.AsyncClient, key: str, db_session: AsyncSession
) -> None:
    response = await anonymous.post(COINS, json=NEW_COIN, headers={"X-API-Key": key})
    body = _problem(response, 401)
    assert key not in response.text  # never echoed
    assert body["title"] == "Unauthorized"


async def test_a_read_key_cannot_write(
    anonymous: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    key = await make_api_key(db_session, "read")
    response = await anonymous.post(COINS, json=NEW_COIN, headers={"X-API-Key": key})
    assert "'write' scope" in str(_problem(response, 403)["detail"])
    for scope in ("write", "admin"):
        allowed = await make_api_key(db_session, scope)
        created = await anonymous.post(
            COINS, json={**NEW_COIN, "symbol": scope[:3].upper()}, headers={"X-API-Key": allowed}
        )
        assert created.status_code == 201, created.text


async def test_reads_are_public_by_default_but_a_bad_key_is_still_refused(
    anonymous: httpx.AsyncClient,
) -> None:
    assert (await anonymous.get(COINS)).status_code == 200
    _problem(await anonymous.get(COINS, headers={"X-API-Key": "wrong"}), 401)


async def test_private_reads_need_a_read_key(
    engine: AsyncEngine, db_session: AsyncSession, cache: CacheManager
) -> None:
    key = await make_api_key(db_session, "read")
    async with _app_client(engine, db_session, cache, PUBLIC_READS=False) as http:
        _problem(await http.get(COINS), 401)
        assert (await http.get(COINS, headers={"X-API-Key": key})).status_code == 200
        assert (await http.get("/health")).status_code == 200  # health stays open


async def test_keys_are_stored_as_hashes_only(db_session: AsyncSession) -> None:
    row, key = await create_key(db_session, "ci", [KeyScope.WRITE])
    assert key.startswith(f"cp_{row.prefix}_") and len(key) == 3 + 8 + 1 + 43
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    stored = (await db_session.execute(select(ApiKey).where(ApiKey.id == row.id))).scalar_one()
    assert (
        key not in repr([stored.prefix, stored.key_hash, stored.name, stored.scopes])
        and key.split("_", 2)[2] not in stored.key_hash  # the whole secret (it may hold "_")
    )


async def test_revoked_and_expired_keys_stop_working_at_once(
    anonymous: httpx.AsyncClient, db_session: AsyncSession, cache: CacheManager
) -> None:
    _row, key = await create_key(db_session, "soon revoked", [KeyScope.WRITE])
    headers = {"X-API-Key": key}
    assert (await anonymous.post(COINS, json=NEW_COIN, headers=headers)).status_code == 201
    await revoke_key(db_session, cache, _row.prefix)
    await cache.delete(verified_cache_key(_row.prefix))  # what the after-commit hook does
    _problem(await anonymous.post(COINS, json={**NEW_COIN, "symbol": "DOT"}, headers=headers), 401)

    _row, old = await create_key(db_session, "expired", [KeyScope.WRITE], expires_in=timedelta(0))
    response = await anonymous.post(
        COINS, json={**NEW_COIN, "symbol": "XLM"}, headers={"X-API-Key": old}
    )
    _problem(response, 401)


async def test_the_schema_documents_the_key_and_its_errors(anonymous: httpx.AsyncClient) -> None:
    schema = (await anonymous.get("/openapi.json")).json()
    assert schema["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"
    post = schema["paths"]["/api/v1/cryptocurrencies"]["post"]
    assert {"401", "403"} <= set(post["responses"])


async def test_every_read_documents_the_read_scope(
    engine: AsyncEngine, db_session: AsyncSession, cache: CacheManager, anonymous: httpx.AsyncClient
) -> None:
    # Reads are checked before routing (app.middleware.read_access), so the schema adds their scope.
    public = (await anonymous.get("/openapi.json")).json()["paths"]
    async with _app_client(engine, db_session, cache, PUBLIC_READS=False) as http:
        private = (await http.get("/openapi.json")).json()["paths"]
    reads = [
        (p, o) for p, ops in public.items() if p.startswith("/api/") for o in ops if o == "get"
    ]
    assert len(reads) >= 10
    for path, method in reads:
        assert public[path][method]["security"] == [{}, {"APIKeyHeader": ["read"]}], path
        assert private[path][method]["security"] == [{"APIKeyHeader": ["read"]}], path
    assert public["/api/v1/cryptocurrencies"]["post"]["security"] == [{"APIKeyHeader": ["write"]}]
    assert "security" not in public["/health"]["get"]
    # Every operation takes the optional X-Request-ID header (app.observability.metrics).
    for ops in public.values():
        for operation in ops.values():
            names = [p["name"] for p in operation["parameters"] if p["in"] == "header"]
            assert names.count("X-Request-ID") == 1


async def test_private_reads_check_every_read_route_and_head(
    engine: AsyncEngine, db_session: AsyncSession, cache: CacheManager
) -> None:
    read_key, write_key = await make_api_key(db_session, "read"), await make_api_key(db_session)
    async with _app_client(engine, db_session, cache, PUBLIC_READS=False) as http:
        for path in (COINS, f"{COINS}/BTC/price", "/api/v1/models", "/api/v1/jobs/x"):
            body = _problem(await http.get(path), 401)
            assert "X-API-Key" in str(body["detail"])
        # HEAD is checked like GET; past the check, the router has no HEAD routes (405).
        assert (await http.head(COINS)).status_code == 401
        assert (await http.head(COINS, headers={"X-API-Key": read_key})).status_code == 405
        assert (await http.get(COINS, headers={"X-API-Key": read_key})).status_code == 200
        # write includes read
        assert (await http.get(COINS, headers={"X-API-Key": write_key})).status_code == 200


async def test_a_revoked_key_cannot_read_even_where_reads_are_public(
    anonymous: httpx.AsyncClient, db_session: AsyncSession, cache: CacheManager
) -> None:
    row, key = await create_key(db_session, "reader", [KeyScope.READ])
    assert (await anonymous.get(COINS, headers={"X-API-Key": key})).status_code == 200
    await revoke_key(db_session, cache, row.prefix)
    await cache.delete(verified_cache_key(row.prefix))
    response = await anonymous.get(COINS, headers={"X-API-Key": key})
    assert "revoked" in str(_problem(response, 401)["detail"])
    assert key not in response.text


async def test_a_key_checked_while_the_database_is_down_is_503_not_500(
    cache: CacheManager,
) -> None:
    from app.database import Database

    # Port 1 on loopback: nothing listens, the connection is refused at once.
    unreachable = Database.from_url("postgresql://postgres@127.0.0.1:1/none")
    app = create_app(make_settings(PUBLIC_READS=False), database=unreachable, cache=cache)
    transport = httpx.ASGITransport(app=app)
    key = "cp_0123abcd_" + "A" * 43  # well-formed, so its row is looked up
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            response = await http.get(COINS, headers={"X-API-Key": key})
    finally:
        await unreachable.dispose()
    body = _problem(response, 503)
    assert response.headers["retry-after"] == "5"
    assert body["type"].endswith("/database-unavailable")  # type: ignore[union-attr]
