"""Every pooled connection in use is "busy, retry shortly", not "cannot be reached".

A pool timeout used to be reported like a database that is down, which sends an operator
looking for an outage that is not there.
"""

from __future__ import annotations

import httpx

from app.cache import CacheManager
from app.database import Database
from app.main import create_app
from tests.conftest import make_settings
from tests.integration.live import live_database, make_live_coin

__all__ = ["live_database"]  # the fixture, imported for pytest to find


async def test_a_request_that_finds_the_pool_exhausted_is_503_busy(
    live_database: Database, cache: CacheManager, migrated_url: str
) -> None:
    _id, symbol = await make_live_coin(live_database)
    one = Database.from_url(migrated_url, pool_size=1, max_overflow=0)
    app = create_app(make_settings(), database=one, cache=cache)
    transport = httpx.ASGITransport(app=app)
    try:
        async with (
            one.engine.connect(),
            httpx.AsyncClient(transport=transport, base_url="http://test") as http,
        ):  # the test holds the only connection
            response = await http.get(f"/api/v1/cryptocurrencies/{symbol}/coverage")
    finally:
        await one.dispose()
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["type"].endswith("/database-busy")
    assert "busy" in body["detail"] and "cannot be reached" not in body["detail"]
    assert int(response.headers["retry-after"]) >= 1
