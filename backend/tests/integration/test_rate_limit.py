"""Rate limits: per key or address, shared through Redis, in memory without it; 429s."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.cache import CacheManager
from app.main import create_app
from tests.conftest import TransactionalDatabase, free_port, make_api_key, make_settings

COINS = "/api/v1/cryptocurrencies"


def _client(app: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")  # type: ignore[arg-type]


@pytest.fixture
async def limited(
    engine: AsyncEngine, db_session: AsyncSession, cache: CacheManager
) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(RATE_LIMIT_READS="3/minute", RATE_LIMIT_WRITES="2/minute")
    app = create_app(settings, database=TransactionalDatabase(engine, db_session), cache=cache)
    async with _client(app) as http:
        yield http


async def test_reads_over_the_limit_get_429_with_retry_after(
    limited: httpx.AsyncClient,
) -> None:
    answers = [await limited.get(COINS) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["x-ratelimit-remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert all(a.headers["x-ratelimit-limit"] == "3" for a in answers)
    refused = answers[-1]
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["status"] == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    # Health checks are never limited: a load balancer must always get an answer.
    assert (await limited.get("/health")).status_code == 200


async def test_each_verified_key_has_its_own_allowance(
    limited: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    first, second = await make_api_key(db_session, "read"), await make_api_key(db_session, "read")
    # A key is verified before it is counted: all of its requests, the first included,
    # are charged to its own allowance.
    codes = [(await limited.get(COINS, headers={"X-API-Key": first})).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    assert (await limited.get(COINS, headers={"X-API-Key": second})).status_code == 200
    # ...and none of them to the address's: anonymous reads still have all three.
    assert [(await limited.get(COINS)).status_code for _ in range(4)] == [200, 200, 200, 429]


async def test_a_spent_address_does_not_lock_out_a_valid_key(
    limited: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    # One anonymous client behind a shared address (a NAT, a proxy) spends its allowance...
    assert [(await limited.get(COINS)).status_code for _ in range(4)] == [200, 200, 200, 429]
    # ...a key nobody has used yet from there still gets in, from its first request on...
    key = await make_api_key(db_session, "read")
    assert (await limited.get(COINS, headers={"X-API-Key": key})).status_code == 200
    # ...while a made-up key is counted by the spent address: inventing keys earns nothing.
    made_up = "cp_0badc0de_" + "b" * 43
    refused = await limited.get(COINS, headers={"X-API-Key": made_up})
    assert refused.status_code == 429


async def test_made_up_keys_are_counted_by_address(limited: httpx.AsyncClient) -> None:
    fake = [f"cp_{i:08x}_" + "a" * 43 for i in range(4)]
    codes = [(await limited.get(COINS, headers={"X-API-Key": key})).status_code for key in fake]
    assert codes == [401, 401, 401, 429]


async def test_writes_have_their_own_lower_limit(
    limited: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    key = await make_api_key(db_session, "write")
    headers = {"X-API-Key": key}
    codes = [
        (
            await limited.post(COINS, json={"symbol": f"C{i}", "name": "x"}, headers=headers)
        ).status_code
        for i in range(4)
    ]
    # The key is verified before it is counted: it has its own 2 writes, the first included.
    assert codes == [201, 201, 429, 429]


async def test_processes_share_the_count_through_redis(
    engine: AsyncEngine, db_session: AsyncSession, redis_url: str | None
) -> None:
    if redis_url is None:
        pytest.skip("needs TEST_REDIS_URL: the shared count lives in Redis")
    settings = make_settings(RATE_LIMIT_READS="4/minute")
    caches, clients = [], []
    for _ in range(2):  # two "processes": separate apps, separate cache managers
        cache = CacheManager()
        cache.configure(redis_url)
        caches.append(cache)
        app = create_app(settings, database=TransactionalDatabase(engine, db_session), cache=cache)
        clients.append(_client(app))
    await caches[0].flush_all()
    try:
        codes = [(await clients[i % 2].get(COINS)).status_code for i in range(5)]
        assert codes == [200, 200, 200, 200, 429]
    finally:
        for client in clients:
            await client.aclose()
        await caches[0].flush_all()
        for cache in caches:
            await cache.close()


async def test_a_dead_redis_falls_back_to_counting_in_memory(
    engine: AsyncEngine, db_session: AsyncSession
) -> None:
    cache = CacheManager()
    cache.configure(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    settings = make_settings(RATE_LIMIT_READS="2/minute")
    app = create_app(settings, database=TransactionalDatabase(engine, db_session), cache=cache)
    try:
        async with _client(app) as http:
            codes = [(await http.get(COINS)).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
    finally:
        await cache.close()
