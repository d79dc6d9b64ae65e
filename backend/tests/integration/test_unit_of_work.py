"""The request's unit of work: one commit at the end, a rollback on any error."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.database import AfterCommit, Database, after_commit
from app.database_url import normalize_database_url
from app.models import Cryptocurrency


async def _count(database: Database, symbol: str) -> int:
    async with database.sessions() as session:
        statement = select(func.count()).where(Cryptocurrency.symbol == symbol)
        return int((await session.execute(statement)).scalar_one())


async def test_error_rolls_back_and_skips_after_commit(engine: AsyncEngine) -> None:
    database = Database(engine)
    symbol = f"U{uuid.uuid4().hex[:8].upper()}"
    ran: list[str] = []

    async def hook() -> None:
        ran.append("hook")

    with pytest.raises(RuntimeError):
        async with database.unit_of_work() as session:
            session.add(Cryptocurrency(symbol=symbol, name="rolled back"))
            await session.flush()
            after_commit(session, hook)
            raise RuntimeError("boom")
    assert await _count(database, symbol) == 0
    assert ran == []


async def test_success_commits_once_then_runs_hooks(engine: AsyncEngine) -> None:
    database = Database(engine)
    symbol = f"C{uuid.uuid4().hex[:8].upper()}"
    seen: list[int] = []

    async def hook() -> None:
        seen.append(await _count(database, symbol))  # visible to another session: committed

    try:
        async with database.unit_of_work() as session:
            session.add(Cryptocurrency(symbol=symbol, name="kept"))
            after_commit(session, hook)
        assert seen == [1]
    finally:
        async with database.sessions() as cleanup:
            await cleanup.execute(delete(Cryptocurrency).where(Cryptocurrency.symbol == symbol))
            await cleanup.commit()


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("postgresql://u:p@db:5432/crypto", "postgresql+asyncpg"),
        ("postgres://u@db/crypto", "postgresql+asyncpg"),
        ("postgresql+psycopg://u@db/crypto", "postgresql+asyncpg"),
        ("sqlite:///var/x.db", "sqlite+aiosqlite"),
        ("sqlite+aiosqlite:///var/x.db", "sqlite+aiosqlite"),
    ],
)
def test_plain_urls_get_the_async_driver(given: str, driver: str) -> None:
    url = normalize_database_url(given)
    assert url.drivername == driver
    assert url.database in {"crypto", "var/x.db"}


async def test_keyed_hooks_run_once_with_the_last_registration(engine: AsyncEngine) -> None:
    database = Database(engine)
    ran: list[str] = []

    def hook(label: str) -> AfterCommit:
        async def run() -> None:
            ran.append(label)

        return run

    async with database.unit_of_work() as session:
        for chunk in ("first", "second", "third"):
            after_commit(session, hook(chunk), key=("refresh", "BTC"))
        after_commit(session, hook("other coin"), key=("refresh", "ETH"))
    assert ran == ["third", "other coin"]


@pytest.mark.parametrize("mode", ["require", "verify-full", "disable"])
def test_sslmode_is_handed_to_asyncpg_as_ssl(mode: str) -> None:
    url = normalize_database_url(f"postgresql://u:p@db.example:5432/crypto?sslmode={mode}")
    assert url.query == {"ssl": mode}


def test_an_unknown_sslmode_is_refused_by_the_settings() -> None:
    from app.config import SettingsError, load_settings

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DATABASE_URL", "postgresql://u@h/db?sslmode=sometimes")
        patch.setenv("DEBUG", "true")
        with pytest.raises(SettingsError, match="sslmode must be one of"):
            load_settings()
