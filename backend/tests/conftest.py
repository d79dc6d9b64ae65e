"""Shared fixtures: real databases and caches, each test inside a rolled-back transaction.

``TEST_DATABASE_URL`` / ``TEST_REDIS_URL`` point the suite at real servers; without them it
runs on a throwaway SQLite file and the in-process cache. ``CRYPTO_FAIL_ON_SKIP=1`` (set by
CI) turns any skipped test into a failed run, so no db or cache test goes quietly missing.
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from app.cache import CacheManager
from app.cli import upgrade_database
from app.config import Settings
from app.database import (
    Database,
    create_engine,
    discard_after_commit,
    run_after_commit,
)
from app.main import create_app

DB_FIXTURES = {"database_url", "migrated_url", "engine", "db_connection", "db_session", "client"}
CACHE_FIXTURES = {"cache", "client", "redis_url"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        if used & DB_FIXTURES:
            item.add_marker(pytest.mark.db)
        if used & CACHE_FIXTURES:
            item.add_marker(pytest.mark.cache)


_skipped: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("CRYPTO_FAIL_ON_SKIP") == "1" and _skipped:
        print(f"\nCRYPTO_FAIL_ON_SKIP: {len(_skipped)} skipped test(s): {_skipped[:10]}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def make_settings(**overrides: object) -> Settings:
    # Fits run in threads here, so tests can watch or hold them, and no app a test builds
    # (without running its lifespan) leaves processes behind; test_fitting covers processes.
    values: dict[str, object] = {
        "DEBUG": True,
        "SECRET_KEY": "test-secret-key-of-enough-length",
        "FORECAST_PROCESSES": 0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        return configured
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


@pytest.fixture(scope="session")
def redis_url() -> str | None:
    return os.environ.get("TEST_REDIS_URL") or None


async def _reset_schema(url: str) -> None:
    if is_sqlite(url):
        return  # a fresh file per session
    engine = create_engine(url, pool_size=1, max_overflow=0)
    async with engine.begin() as connection:
        await connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        await connection.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


@pytest.fixture(scope="session")
async def migrated_url(database_url: str) -> str:
    await _reset_schema(database_url)
    # Alembic runs its own event loop, so it goes to a worker thread.
    import asyncio

    await asyncio.to_thread(upgrade_database, database_url)
    return database_url


@pytest.fixture(scope="session")
async def engine(migrated_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(migrated_url, pool_size=2, max_overflow=2)
    yield engine
    await engine.dispose()


@pytest.fixture
async def db_connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with engine.connect() as connection:
        transaction = await connection.begin()
        try:
            yield connection
        finally:
            await transaction.rollback()


@pytest.fixture
async def db_session(db_connection: AsyncConnection) -> AsyncIterator[AsyncSession]:
    # Commits inside the test release savepoints; the outer transaction is rolled back.
    session = AsyncSession(
        bind=db_connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
    )
    try:
        yield session
    finally:
        await session.close()


@pytest.fixture
async def cache(redis_url: str | None) -> AsyncIterator[CacheManager]:
    manager = CacheManager()
    manager.configure(redis_url)
    await manager.flush_all()
    yield manager
    await manager.flush_all()
    await manager.close()


class TransactionalDatabase(Database):
    """A Database whose requests all run inside the test's rolled-back transaction."""

    def __init__(self, engine: AsyncEngine, session: AsyncSession) -> None:
        super().__init__(engine)
        self._session = session

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[AsyncSession]:
        savepoint = await self._session.begin_nested()
        try:
            yield self._session
        except BaseException:
            discard_after_commit(self._session)
            if savepoint.is_active:
                await savepoint.rollback()
            raise
        if savepoint.is_active:
            await savepoint.commit()
        await run_after_commit(self._session)

    async def dispose(self) -> None:
        """The engine belongs to the test session, not to the app."""


async def make_api_key(session: AsyncSession, *scopes: str) -> str:
    """A stored API key (default scope: write) for requests that change data."""
    from app.services.api_keys import KeyScope, create_key

    _row, key = await create_key(session, "tests", [KeyScope(s) for s in scopes or ("write",)])
    return key


@pytest.fixture
async def write_key(db_session: AsyncSession) -> str:
    return await make_api_key(db_session, "write")


@pytest.fixture
async def client(
    engine: AsyncEngine, db_session: AsyncSession, cache: CacheManager, write_key: str
) -> AsyncIterator[httpx.AsyncClient]:
    """The app inside the test's transaction; requests carry a write-scope API key."""
    app = create_app(
        make_settings(), database=TransactionalDatabase(engine, db_session), cache=cache
    )
    transport = httpx.ASGITransport(app=app)
    headers = {"X-API-Key": write_key}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers=headers
    ) as http:
        yield http


@pytest.fixture
def backend_dir() -> Iterator[Path]:
    yield Path(__file__).resolve().parent.parent
