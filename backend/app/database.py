"""Engine, session factory and the per-request unit of work.

The engine is built from the URL's async form (`app.database_url`), so the deployment guide's
plain ``postgresql://...`` and ``sqlite:///...`` URLs work as written.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.database_url import normalize_database_url


def _ensure_sqlite_directory(url: URL) -> None:
    if url.database and url.database != ":memory:":
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _enable_sqlite_foreign_keys(engine: AsyncEngine) -> None:
    # SQLite ignores FOREIGN KEY clauses unless asked on every connection.
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()


def create_engine(
    url: str, *, pool_size: int = 20, max_overflow: int = 10, echo: bool = False
) -> AsyncEngine:
    async_url = normalize_database_url(url)
    if async_url.get_backend_name() == "sqlite":
        _ensure_sqlite_directory(async_url)
        engine = create_async_engine(async_url, echo=echo, pool_pre_ping=True)
        _enable_sqlite_foreign_keys(engine)
        return engine
    return create_async_engine(
        async_url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=max_overflow,
        # A server restart kills pooled connections; pre-ping replaces them before use.
        pool_pre_ping=True,
        pool_timeout=5,
        connect_args={"timeout": 5, "command_timeout": 30},
    )


class Database:
    """Owns the engine and hands out sessions; built once in the app lifespan."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)

    @classmethod
    def from_url(cls, url: str, *, pool_size: int = 20, max_overflow: int = 10) -> Database:
        return cls(create_engine(url, pool_size=pool_size, max_overflow=max_overflow))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[AsyncSession]:
        """One session per request: commit once at the end, roll back on any error.

        A context manager, not a bare generator: an error raised in the body must reach the
        rollback below, which iterating a generator with ``async for`` would not do.
        """
        session = self.sessions()
        try:
            yield session
            # A request answered from the cache never touched the database: skipping the
            # commit and close then saves two greenlet switches.
            if session.in_transaction():
                await session.commit()
        except BaseException:
            discard_after_commit(session)
            if session.in_transaction():
                await session.rollback()
            raise
        finally:
            if session.in_transaction() or session.identity_map:
                await session.close()
        await run_after_commit(session)

    async def ping(self) -> DatabasePing:
        started = time.perf_counter()
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        return DatabasePing(latency_ms=(time.perf_counter() - started) * 1000)

    async def dispose(self) -> None:
        await self.engine.dispose()


@dataclass(frozen=True, slots=True)
class DatabasePing:
    latency_ms: float


AfterCommit = Callable[[], Awaitable[None]]
_AFTER_COMMIT = "after_commit"


def after_commit(session: AsyncSession, callback: AfterCommit, *, key: object = None) -> None:
    """Run ``callback`` once the unit of work has committed (cache writes go here).

    Writing a cache before the commit could publish data that is then rolled back. A
    callback registered again under the same ``key`` replaces the earlier one, so work
    repeated inside one unit of work (an import's chunks) refreshes the cache once.
    """
    callbacks: dict[object, AfterCommit] = session.info.setdefault(_AFTER_COMMIT, {})
    callbacks[object() if key is None else key] = callback


def discard_after_commit(session: AsyncSession) -> None:
    """Forget the callbacks of a unit of work that rolled back."""
    session.info.pop(_AFTER_COMMIT, None)


async def run_after_commit(session: AsyncSession) -> None:
    callbacks: dict[object, AfterCommit] = session.info.pop(_AFTER_COMMIT, {})
    for callback in callbacks.values():
        await callback()
