"""Request-scoped dependencies: the unit-of-work session, the cache, the settings.

All are ``async def``: FastAPI runs a plain ``def`` dependency in a worker thread, which
cost more than the whole cached request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader
from sqlalchemy.ext.asyncio import AsyncSession

from app.cache import CacheManager
from app.config import Settings
from app.database import Database
from app.middleware.body_limit import require_json
from app.services.admission import Admission
from app.services.api_keys import KeyScope, Principal, authenticate


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


def requires(scope: KeyScope) -> Callable[..., Awaitable[Principal]]:
    """A dependency that lets the request through only with a key allowed to do ``scope``.

    For writes: reads are checked before routing, all alike (``app.middleware.read_access``).
    """

    async def check(
        request: Request, key: Annotated[str | None, Depends(api_key_header)]
    ) -> Principal:
        database, cache = services_of(request)
        principal = await authenticate(database, cache, key, scope)
        request.state.principal = principal
        return principal

    return check


# Declared with Security so the OpenAPI document names the scope each operation needs
# (app.api.openapi adds the read scope to every read, public ones when PUBLIC_READS is on).
WriteAccess = Security(requires(KeyScope.WRITE), scopes=[KeyScope.WRITE.value])


def caller_of(request: Request) -> str:
    """Who to count heavy work against: the verified key, else the client address."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is not None:
        return f"key:{principal.prefix}"
    client = request.client
    return f"ip:{client.host if client else 'unknown'}"


def admitted(work: str) -> Any:
    """A dependency holding one of ``work``'s admission slots (app.services.admission) for
    the caller while the endpoint runs; 429 or 503 at once when there is none."""

    async def hold(request: Request) -> AsyncIterator[None]:
        admission: Admission = request.app.state.admission[work]
        with admission.slot(caller_of(request)):
            yield

    return Depends(hold, scope="function")


Forecasting = admitted("forecasts")
Ingesting = admitted("ingests")
JsonBody = Depends(require_json)
# Documented on every route under /api/ (set on the routers). Error responses are problem
# documents: app.api.openapi gives them the `Problem` schema under application/problem+json.
API_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {
        "description": "An API key is needed and none was sent, or the one sent is unknown, "
        "revoked or expired (a key that is sent is checked even where none is needed)."
    },
    429: {
        "description": "Over the rate limit of this API key (or client address), or, for "
        "forecasts, uploads and backtests, as much such work in progress as it may have; "
        "retry after `Retry-After` seconds.",
        "headers": {
            "Retry-After": {
                "description": "Seconds until a request is allowed again.",
                "schema": {"type": "integer", "minimum": 1},
            }
        },
    },
    503: {
        "description": "The database cannot be reached or is busy, or the server has as much "
        "heavy work in progress as it takes from everyone; retry after `Retry-After` seconds.",
        "headers": {
            "Retry-After": {
                "description": "Seconds to wait before retrying.",
                "schema": {"type": "integer", "minimum": 1},
            }
        },
    },
}
# Documented on every route that needs the write (or admin) scope.
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No API key, or an unknown, revoked or expired one."},
    403: {"description": "The API key lacks the scope this operation needs."},
}
# Every POST and PATCH: the size ceiling is checked before the route runs.
TOO_LARGE: dict[int | str, dict[str, Any]] = {
    408: {"description": "The body did not arrive whole within REQUEST_BODY_TIMEOUT_S."},
    413: {"description": "The body is larger than MAX_REQUEST_BYTES."},
}
# Documented on every route that takes a JSON body.
BODY_RESPONSES: dict[int | str, dict[str, Any]] = {
    **TOO_LARGE,
    415: {"description": "The body is not application/json."},
}
