"""Redis over TLS (``rediss://``): the cache, its health probe and the app through it.

A throwaway redis-server listening only on a TLS port (``--port 0 --tls-port N``) with a
self-signed certificate for 127.0.0.1/localhost; clients need no certificate of their own.
redis-py reads the TLS options from the URL's query string.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
from redis.asyncio import Redis

from app.cache import BreakerState, CacheManager, CacheTTL, cache_key
from app.database import Database
from tests.conftest import make_settings
from tests.faults.conftest import ThrowawayRedis, TlsFiles
from tests.faults.support import app_client


def url_forms(server: ThrowawayRedis, tls: TlsFiles) -> dict[str, str]:
    """The URL forms documented for REDIS_URL, by what they check."""
    ca = quote(str(tls.cert))
    return {
        "no verification": f"{server.url}?ssl_cert_reqs=none",
        "CA": f"{server.url}?ssl_ca_certs={ca}",
        "CA and host name": f"{server.url}?ssl_ca_certs={ca}&ssl_check_hostname=true",
    }


@pytest.mark.parametrize("form", ["no verification", "CA", "CA and host name"])
async def test_cache_works_over_tls(
    throwaway_tls_redis: ThrowawayRedis, tls_files: TlsFiles, form: str
) -> None:
    url = url_forms(throwaway_tls_redis, tls_files)[form]
    assert make_settings(REDIS_URL=url).REDIS_URL == url  # the settings accept the form
    cache = CacheManager(near_ttl=0)  # every read goes to Redis
    cache.configure(url)
    key = cache_key("TLS", "price")
    try:
        await cache.set(key, {"price": 1.5}, CacheTTL.PRICE)
        assert await cache.get(key) == {"price": 1.5}
        health = await cache.health()
        assert health.connected is True, health.error
        assert (cache.stats.hits, cache.stats.errors) == (1, 0)
    finally:
        await cache.close()
    # Checked with a client of our own: the value really is in the TLS server.
    async with Redis.from_url(f"{throwaway_tls_redis.url}?ssl_cert_reqs=none") as direct:
        assert await direct.get(key) == b'{"price":1.5}'
    print(f"\n[redis tls] {form}: {url}")


async def test_a_certificate_from_another_ca_is_refused(
    throwaway_tls_redis: ThrowawayRedis, tls_files: TlsFiles
) -> None:
    cache = CacheManager(near_ttl=0)
    cache.configure(f"{throwaway_tls_redis.url}?ssl_ca_certs={quote(str(tls_files.other_cert))}")
    key = cache_key("TLS", "price")
    try:
        await cache.set(key, 1, CacheTTL.PRICE)
        assert await cache.get(key) is None  # a miss, not an exception
        health = await cache.health()
        assert health.connected is False
        assert health.error is not None and "CERTIFICATE_VERIFY_FAILED" in health.error
        assert cache.breaker.state is BreakerState.OPEN
    finally:
        await cache.close()


async def test_plain_redis_url_cannot_reach_a_tls_port(
    throwaway_tls_redis: ThrowawayRedis,
) -> None:
    cache = CacheManager(near_ttl=0)
    cache.configure(throwaway_tls_redis.url.replace("rediss://", "redis://"))
    try:
        assert (await cache.health()).connected is False
    finally:
        await cache.close()


async def test_the_app_reports_a_tls_cache_healthy(
    throwaway_tls_redis: ThrowawayRedis, tls_files: TlsFiles, tmp_path: Path
) -> None:
    url = url_forms(throwaway_tls_redis, tls_files)["CA and host name"]
    cache = CacheManager()
    cache.configure(url)
    database = Database.from_url(f"sqlite:///{tmp_path / 'unused.db'}")
    async with app_client(database, cache, REDIS_URL=url, LOG_LEVEL="WARNING") as http:
        response = await http.get("/health/cache")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["connected"] is True and body["uptime_seconds"] >= 0
