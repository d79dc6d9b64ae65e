"""Committed data for tests of concurrent work.

The usual fixtures run each test inside one rolled-back transaction, which cannot show what
two transactions do to each other: row locks, read-committed re-checks, advisory locks. These
helpers use real, separate transactions on the test database and delete what they made.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import delete, select, text

from app.database import Database
from app.models import ApiKey, Backtest, Cryptocurrency, MarketData, Prediction
from app.services.api_keys import KeyScope, create_key
from tests.conftest import is_sqlite

# Symbols and key names made here carry this mark, so cleaning up never touches other rows.
MARK = "race"


def unique_symbol() -> str:
    return f"R{secrets.token_hex(3).upper()}"


@pytest.fixture
async def live_database(migrated_url: str) -> AsyncIterator[Database]:
    if is_sqlite(migrated_url):
        pytest.skip("row locks and concurrent transactions need PostgreSQL (TEST_DATABASE_URL)")
    database = Database.from_url(migrated_url, pool_size=8, max_overflow=4)
    try:
        yield database
    finally:
        async with database.unit_of_work() as session:
            await session.execute(delete(ApiKey).where(ApiKey.name == MARK))
            marked = select(Cryptocurrency.id).where(Cryptocurrency.name == MARK)
            for table in (MarketData, Prediction, Backtest):
                await session.execute(delete(table).where(table.cryptocurrency_id.in_(marked)))
            await session.execute(delete(Cryptocurrency).where(Cryptocurrency.name == MARK))
        await database.dispose()


async def wait_for_lock_waiters(database: Database, count: int = 1) -> None:
    """Until ``count`` backends wait on a lock: the interleaving under test has happened."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    for _ in range(500):
        async with database.engine.connect() as connection:
            if (await connection.execute(query)).scalar_one() >= count:
                return
        await asyncio.sleep(0.01)
    raise AssertionError(f"no {count} backend(s) waited on a lock within 5 s")


async def make_live_coin(database: Database) -> tuple[int, str]:
    """A committed coin, marked for clean-up: its id and symbol."""
    symbol = unique_symbol()
    async with database.unit_of_work() as session:
        coin = Cryptocurrency(symbol=symbol, name=MARK)
        session.add(coin)
        await session.flush()
        return coin.id, symbol


async def make_live_key(database: Database, scope: str = "write") -> str:
    """A committed API key, marked for clean-up."""
    async with database.unit_of_work() as session:
        _row, key = await create_key(session, MARK, [KeyScope(scope)])
    return key
