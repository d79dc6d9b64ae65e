"""Request-scoped dependencies: the unit-of-work session, the cache, the settings.

All are ``async def``: FastAPI runs a plain ``def`` dependency in a worker thread, which
cost more than the whole cached request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader
from sqlalchemy.ext.asyncio import AsyncSession

from app.cache import CacheManager
from app.config import Settings
from app.database import Database
from app.http_limits import require_json
from app.services.api_keys import Principal, Scope, authenticate


async def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


async def get_cache(request: Request) -> CacheManager:
    cache: CacheManager = request.app.state.cache
    return cache


async def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def services_of(request: Request) -> tuple[Database, CacheManager]:
    """Database and cache read straight off the app, for the hottest read endpoints: each
    declared dependency costs a resolution step per request, which showed in benchmarks."""
    state = request.app.state
    return state.database, state.cache


async def get_session(
    database: Annotated[Database, Depends(get_database)],
) -> AsyncIterator[AsyncSession]:
    async with database.unit_of_work() as session:
        yield session


DatabaseDep = Annotated[Database, Depends(get_database)]
# scope="function": commit before the response is sent, so a read after a write sees it.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
CacheDep = Annotated[CacheManager, Depends(get_cache)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]


# ---------------------------------------------------------------- authentication

# Declared through FastAPI's security helper so the OpenAPI schema documents the header.
api_key_header = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    description="An API key made with `cryptopredict keys create`.",
)


def requires(scope: Scope) -> Callable[..., Awaitable[Principal | None]]:
    """A dependency that lets the request through only with a key allowed to do ``scope``.

    Reads are public unless ``PUBLIC_READS`` is false; a key that is sent is checked anyway,
    so a wrong key is reported rather than ignored.
    """

    async def check(
        request: Request, key: Annotated[str | None, Depends(api_key_header)]
    ) -> Principal | None:
        settings: Settings = request.app.state.settings
        if scope is Scope.READ and key is None and settings.PUBLIC_READS:
            return None
        database, cache = services_of(request)
        principal = await authenticate(database, cache, key, scope)
        request.state.principal = principal
        return principal

    return check


ReadAccess = Depends(requires(Scope.READ))
WriteAccess = Depends(requires(Scope.WRITE))
JsonBody = Depends(require_json)
AdminAccess = Depends(requires(Scope.ADMIN))
# Documented on every route that takes a key.
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No API key, or an unknown, revoked or expired one."},
    403: {"description": "The API key lacks the scope this operation needs."},
}
# Documented on every route that takes a JSON body.
BODY_RESPONSES: dict[int | str, dict[str, Any]] = {
    413: {"description": "The body is larger than MAX_REQUEST_BYTES."},
    415: {"description": "The body is not application/json."},
}
