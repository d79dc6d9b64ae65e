"""The Alembic history builds exactly the models' schema, and unwinds cleanly."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, make_url

from alembic import command
from app.cli import upgrade_database
from app.config import BACKEND_DIR
from app.database import create_engine
from app.models import Base
from tests.conftest import is_sqlite

SPEC_INDEXES = {
    "cryptocurrencies": {"idx_crypto_symbol_active"},
    "market_data": {
        "idx_market_data_crypto_timestamp",
        "idx_market_data_timestamp",
        "idx_market_data_crypto_created",
    },
    "predictions": {
        "idx_prediction_crypto_target",
        "idx_prediction_crypto_prediction_time",
        "idx_prediction_model",
    },
}


async def _admin_execute(url: str, statement: str) -> None:
    admin_url = make_url(url).set(database="postgres")
    engine = create_engine(admin_url.render_as_string(hide_password=False), pool_size=1)
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text(statement))
    await engine.dispose()


@pytest.fixture
async def scratch_url(database_url: str, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of the same kind as the suite's, dropped afterwards."""
    if is_sqlite(database_url):
        yield f"sqlite:///{tmp_path / 'scratch.db'}"
        return
    name = f"migration_{uuid.uuid4().hex[:10]}"
    await _admin_execute(database_url, f'CREATE DATABASE "{name}"')
    try:
        yield make_url(database_url).set(database=name).render_as_string(hide_password=False)
    finally:
        await _admin_execute(database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _alembic(url: str, *args: Any) -> None:
    config = Config(str(BACKEND_DIR / "alembic.ini"))
    config.attributes["database_url"] = url
    config.attributes["configure_logger"] = False
    command_name, *rest = args
    getattr(command, command_name)(config, *rest)


def _schema_facts(connection: Connection) -> dict[str, Any]:
    inspector = inspect(connection)
    return {
        "tables": set(inspector.get_table_names()) - {"alembic_version"},
        "indexes": {
            table: {ix["name"] for ix in inspector.get_indexes(table)} for table in SPEC_INDEXES
        }
        if "market_data" in inspector.get_table_names()
        else {},
        "diff": compare_metadata(MigrationContext.configure(connection), Base.metadata),
    }


async def _facts(url: str) -> dict[str, Any]:
    engine = create_engine(url, pool_size=1)
    async with engine.connect() as connection:
        facts = await connection.run_sync(_schema_facts)
    await engine.dispose()
    return facts


async def test_upgrade_downgrade_upgrade(scratch_url: str) -> None:
    await asyncio.to_thread(upgrade_database, scratch_url)
    facts = await _facts(scratch_url)
    assert facts["tables"] == {
        "cryptocurrencies",
        "market_data",
        "predictions",
        "backtests",
        "api_keys",
    }
    assert facts["diff"] == [], "migrations and models disagree"
    for table, names in SPEC_INDEXES.items():
        assert names <= facts["indexes"][table]

    await asyncio.to_thread(_alembic, scratch_url, "downgrade", "base")
    assert (await _facts(scratch_url))["tables"] == set()

    await asyncio.to_thread(_alembic, scratch_url, "upgrade", "head")
    again = await _facts(scratch_url)
    assert again["tables"] == facts["tables"]
    assert again["diff"] == []


async def test_suite_schema_has_no_autogenerate_diff(migrated_url: str) -> None:
    assert (await _facts(migrated_url))["diff"] == []


async def test_forecast_revision_keeps_existing_predictions(scratch_url: str) -> None:
    """0002 adds a NOT NULL horizon: a prediction written under 0001 must survive it."""
    await asyncio.to_thread(_alembic, scratch_url, "upgrade", "0001")
    engine = create_engine(scratch_url, pool_size=1)
    insert_coin = (
        "INSERT INTO cryptocurrencies (symbol, name, is_active, created_at, updated_at) "
        "VALUES ('BTC', 'Bitcoin', true, '2026-01-01', '2026-01-01')"
    )
    insert_prediction = (
        "INSERT INTO predictions (cryptocurrency_id, prediction_timestamp, target_timestamp, "
        "predicted_price, model_name, model_version, created_at) "
        "VALUES (1, '2026-01-01 00:00', '2026-01-01 01:00', 100.0, 'random_walk', '1', "
        "'2026-01-01')"
    )
    async with engine.begin() as connection:
        await connection.execute(text(insert_coin))
        await connection.execute(text(insert_prediction))
    await asyncio.to_thread(_alembic, scratch_url, "upgrade", "head")
    async with engine.connect() as connection:
        row = (await connection.execute(text("SELECT horizon, lower_80 FROM predictions"))).one()
    await engine.dispose()
    assert tuple(row) == ("1h", None)


async def test_derived_horizon_revision_keeps_values_both_ways(scratch_url: str) -> None:
    """0004 derives the horizon; written horizons survive it, and its downgrade keeps them."""
    await asyncio.to_thread(_alembic, scratch_url, "upgrade", "0003")
    engine = create_engine(scratch_url, pool_size=1)
    insert_coin = (
        "INSERT INTO cryptocurrencies (symbol, name, is_active, created_at, updated_at) "
        "VALUES ('BTC', 'Bitcoin', true, '2026-01-01', '2026-01-01')"
    )
    insert_prediction = (
        "INSERT INTO predictions (cryptocurrency_id, prediction_timestamp, target_timestamp, "
        "predicted_price, model_name, model_version, horizon, created_at) "
        "VALUES (1, '2026-01-01 00:00', '2026-01-02 00:00', 100.0, 'random_walk', '1', '24h', "
        "'2026-01-01')"
    )
    async with engine.begin() as connection:
        await connection.execute(text(insert_coin))
        await connection.execute(text(insert_prediction))
    await engine.dispose()
    for revision, step in (("0004", "upgrade"), ("0003", "downgrade")):
        await asyncio.to_thread(_alembic, scratch_url, step, revision)
        # A new engine each time: asyncpg's cached statement plans outlive a schema change.
        engine = create_engine(scratch_url, pool_size=1)
        async with engine.connect() as connection:
            horizon = (await connection.execute(text("SELECT horizon FROM predictions"))).one()
            keys = await connection.run_sync(
                lambda sync: inspect(sync).get_unique_constraints("predictions")
            )
        await engine.dispose()
        assert tuple(horizon) == ("24h",), revision
        assert [key["name"] for key in keys] == ["uq_prediction_key"], revision
