"""Bodies: 413 over the configured size (declared or streamed), 415 for non-JSON bodies."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.cache import CacheManager
from app.main import create_app
from app.models import Cryptocurrency
from tests.conftest import TransactionalDatabase, make_settings

COINS = "/api/v1/cryptocurrencies"


@pytest.fixture
async def small(
    engine: AsyncEngine, db_session: AsyncSession, cache: CacheManager, write_key: str
) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(MAX_REQUEST_BYTES=2048)
    app = create_app(settings, database=TransactionalDatabase(engine, db_session), cache=cache)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://test",
        headers={"X-API-Key": write_key},
    ) as http:
        yield http


async def _coins(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count(Cryptocurrency.id)))).scalar_one())


def _problem(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_declared_oversize_body_is_refused_unread(
    small: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    body = b'{"symbol": "ADA", "name": "' + b"x" * 4000 + b'"}'
    response = await small.post(COINS, content=body, headers={"Content-Type": "application/json"})
    _problem(response, 413)
    assert "2048 bytes" in response.json()["detail"]
    assert await _coins(db_session) == 0


async def test_a_streamed_oversize_body_is_refused(
    small: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked
        yield b'{"symbol": "ADA", "name": "'
        for _ in range(10):
            yield b"x" * 500
        yield b'"}'

    response = await small.post(
        COINS, content=chunks(), headers={"Content-Type": "application/json"}
    )
    _problem(response, 413)
    assert await _coins(db_session) == 0


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        (COINS, "text/plain"),
        (COINS, "application/x-www-form-urlencoded"),
        ("/api/v1/predictions", "text/csv"),
        ("/api/v1/backtests", "application/xml"),
        ("/api/v1/jobs", "text/plain"),
    ],
)
async def test_json_endpoints_refuse_other_media_types(
    client: httpx.AsyncClient, db_session: AsyncSession, path: str, content_type: str
) -> None:
    response = await client.post(
        path,
        content=b'{"symbol": "ADA", "name": "Cardano"}',
        headers={"Content-Type": content_type},
    )
    _problem(response, 415)
    assert response.json()["detail"] == "send the body as application/json"
    assert await _coins(db_session) == 0


async def test_json_with_a_charset_or_a_json_suffix_is_fine(client: httpx.AsyncClient) -> None:
    for content_type in ("application/json; charset=utf-8", "application/merge-patch+json"):
        symbol = "ADA" if "charset" in content_type else "DOT"
        response = await client.post(
            COINS,
            content=f'{{"symbol": "{symbol}", "name": "x"}}'.encode(),
            headers={"Content-Type": content_type},
        )
        assert response.status_code == 201, response.text


async def test_the_schema_documents_413_and_415(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    for path in ("/api/v1/cryptocurrencies", "/api/v1/predictions", "/api/v1/jobs"):
        assert {"413", "415"} <= set(schema["paths"][path]["post"]["responses"])
