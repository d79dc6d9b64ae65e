"""Health endpoints: the spec's fields, real figures, and 503 when a dependency is down."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from app.cache import CacheManager
from app.database import Database
from app.main import create_app
from tests.conftest import free_port, make_settings


def _recent(stamp: str) -> bool:
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return abs(datetime.now(UTC) - moment) < timedelta(minutes=1)


async def test_health_is_always_healthy(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"status", "service", "version", "timestamp"}
    assert body["status"] == "healthy"
    assert body["service"] == "Crypto Prediction API"
    assert body["version"] == "1.0.0"
    assert _recent(body["timestamp"])


async def test_database_health_reports_real_latency(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/db")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"status", "database", "latency_ms", "timestamp"}
    assert body["status"] == "healthy"
    assert body["database"] == "connected"
    assert 0 < body["latency_ms"] < 2000


async def test_cache_health_reports_server_figures(
    client: httpx.AsyncClient, redis_url: str | None
) -> None:
    response = await client.get("/health/cache")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "status",
        "connected",
        "latency_ms",
        "used_memory_mb",
        "connected_clients",
        "uptime_seconds",
        "timestamp",
    }
    assert body["status"] == "healthy"
    assert body["connected"] is True
    assert body["latency_ms"] >= 0
    assert body["used_memory_mb"] >= 0
    assert body["connected_clients"] >= 1
    if redis_url:  # a real server has been up a while and uses real memory
        assert body["used_memory_mb"] > 0
        assert body["uptime_seconds"] >= 1


async def test_detailed_health_when_all_is_up(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/detailed")
    assert response.status_code == 200
    body = response.json()
    # The spec's fields, and the job queue's (no Redis here: this process runs the jobs).
    assert set(body) == {"status", "service", "database", "cache", "jobs", "timestamp"}
    assert body["jobs"]["queue"] == "local" and body["jobs"]["workers"] == 1
    assert body["jobs"]["status"] == "healthy" and body["jobs"]["detail"] is None
    assert body["status"] == "healthy"
    assert set(body["service"]) == {"name", "version", "environment"}
    assert set(body["database"]) == {"status", "connected", "latency_ms"}
    assert set(body["cache"]) == {"status", "connected", "used_memory_mb"}
    assert body["database"]["connected"] is True
    assert body["cache"]["connected"] is True


@pytest.fixture
async def broken_client() -> AsyncIterator[httpx.AsyncClient]:
    """An app whose database and Redis both point at closed loopback ports."""
    cache = CacheManager()
    cache.configure(f"redis://127.0.0.1:{free_port()}/0")
    database = Database.from_url(f"postgresql://nobody@127.0.0.1:{free_port()}/none")
    app = create_app(make_settings(), database=database, cache=cache)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:
        yield http
    await cache.close()
    await database.dispose()


async def test_unreachable_dependencies_give_503_not_500(
    broken_client: httpx.AsyncClient,
) -> None:
    assert (await broken_client.get("/health")).status_code == 200

    db = await broken_client.get("/health/db")
    assert db.status_code == 503
    assert db.json()["status"] == "unhealthy"
    assert db.json()["database"] == "disconnected"
    assert db.json()["latency_ms"] is None

    cache = await broken_client.get("/health/cache")
    assert cache.status_code == 503
    assert cache.json()["status"] == "unhealthy"
    assert cache.json()["connected"] is False

    detailed = await broken_client.get("/health/detailed")
    assert detailed.status_code == 503
    assert detailed.json()["status"] == "unhealthy"
    assert detailed.json()["database"]["connected"] is False


async def test_cache_outage_alone_degrades(engine: object, database_url: str) -> None:
    cache = CacheManager()
    cache.configure(f"redis://127.0.0.1:{free_port()}/0")
    database = Database.from_url(database_url, pool_size=1, max_overflow=0)
    app = create_app(make_settings(), database=database, cache=cache)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:
        response = await http.get("/health/detailed")
    await cache.close()
    await database.dispose()
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["cache"]["status"] == "unhealthy"
    assert response.json()["database"]["status"] == "healthy"


async def test_unknown_route_is_a_problem_document(client: httpx.AsyncClient) -> None:
    response = await client.get("/no/such/thing")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 404
