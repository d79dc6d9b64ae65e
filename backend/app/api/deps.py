"""Request-scoped dependencies: the unit-of-work session, the cache, the settings.

All are ``async def``: FastAPI runs a plain ``def`` dependency in a worker thread, which
cost more than the whole cached request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.cache import CacheManager
from app.config import Settings
from app.database import Database


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
