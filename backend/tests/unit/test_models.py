"""The ORM metadata matches the spec's tables: names, types, indexes and constraints."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import BigInteger, Boolean, DateTime, Float, Integer, String, Table
from sqlalchemy.dialects import postgresql, sqlite

from app.models import Base, Cryptocurrency, MarketData, Prediction
from app.models.base import UTCDateTime


def _table(name: str) -> Table:
    return Base.metadata.tables[name]


def _index_map(table: Table) -> dict[str, tuple[tuple[str, ...], bool]]:
    return {
        str(index.name): (tuple(col.name for col in index.columns), bool(index.unique))
        for index in table.indexes
    }


def _check_names(table: Table) -> set[str]:
    return {str(c.name) for c in table.constraints if c.__class__.__name__ == "CheckConstraint"}


def test_tables_exist() -> None:
    assert set(Base.metadata.tables) == {
        "cryptocurrencies",
        "market_data",
        "predictions",
        "backtests",
        "api_keys",
    }
    assert Cryptocurrency.__tablename__ == "cryptocurrencies"
    assert MarketData.__tablename__ == "market_data"
    assert Prediction.__tablename__ == "predictions"


@pytest.mark.parametrize(
    ("table", "column", "kind", "length", "nullable"),
    [
        ("cryptocurrencies", "symbol", String, 10, False),
        ("cryptocurrencies", "name", String, 100, False),
        ("cryptocurrencies", "coin_gecko_id", String, 100, True),
        ("cryptocurrencies", "is_active", Boolean, None, False),
        ("market_data", "cryptocurrency_id", Integer, None, False),
        ("market_data", "close_price", Float, None, False),
        ("market_data", "market_cap", Float, None, True),
        ("market_data", "data_source", String, 50, False),
        ("predictions", "model_name", String, 100, False),
        ("predictions", "model_version", String, 50, False),
        ("predictions", "actual_price", Float, None, True),
        ("predictions", "error", Float, None, True),
    ],
)
def test_column_types_follow_the_spec(
    table: str, column: str, kind: type, length: int | None, nullable: bool
) -> None:
    col = _table(table).c[column]
    assert isinstance(col.type, kind)
    assert getattr(col.type, "length", None) == length
    assert col.nullable is nullable


@pytest.mark.parametrize("table", ["market_data", "predictions"])
def test_big_tables_use_bigint_keys_on_postgresql(table: str) -> None:
    id_type = _table(table).c.id.type
    assert isinstance(id_type.dialect_impl(postgresql.dialect()), BigInteger)
    # SQLite only auto-increments INTEGER PRIMARY KEY columns.
    assert isinstance(id_type.dialect_impl(sqlite.dialect()), Integer)


def test_every_timestamp_is_a_plain_timestamp_holding_utc() -> None:
    for table in Base.metadata.tables.values():
        for col in table.columns:
            if col.name.endswith(("timestamp", "_at")):
                assert isinstance(col.type, UTCDateTime), col
                assert isinstance(col.type.impl, DateTime)
                assert col.type.impl.timezone is False


def test_named_indexes_match_the_spec() -> None:
    assert _index_map(_table("cryptocurrencies")) == {
        "idx_crypto_symbol_active": (("symbol", "is_active"), False)
    }
    assert _index_map(_table("market_data")) == {
        "idx_market_data_crypto_timestamp": (("cryptocurrency_id", "timestamp"), True),
        "idx_market_data_timestamp": (("timestamp",), False),
        "idx_market_data_crypto_created": (("cryptocurrency_id", "created_at"), False),
    }
    assert _index_map(_table("predictions")) == {
        "idx_prediction_crypto_target": (("cryptocurrency_id", "target_timestamp"), False),
        "idx_prediction_crypto_prediction_time": (
            ("cryptocurrency_id", "prediction_timestamp"),
            False,
        ),
        "idx_prediction_model": (("model_name", "model_version"), False),
    }


def test_check_constraints_are_named() -> None:
    assert _check_names(_table("market_data")) == {
        "ck_market_data_prices_non_negative",
        "ck_market_data_high_gte_low",
        "ck_market_data_volume_non_negative",
    }
    assert _check_names(_table("predictions")) == {
        "ck_predictions_target_after_prediction",
        "ck_predictions_confidence_in_unit_range",
        "ck_predictions_predicted_price_non_negative",
    }


def test_foreign_keys_point_at_cryptocurrencies() -> None:
    for name in ("market_data", "predictions"):
        (fk,) = _table(name).c.cryptocurrency_id.foreign_keys
        assert fk.target_fullname == "cryptocurrencies.id"


def test_utc_type_converts_aware_values_and_refuses_naive() -> None:
    column_type = UTCDateTime()
    dialect = postgresql.dialect()
    plus_two = datetime(2024, 1, 1, 2, 30, tzinfo=timezone(timedelta(hours=2)))
    assert column_type.process_bind_param(plus_two, dialect) == datetime(2024, 1, 1, 0, 30)
    with pytest.raises(ValueError, match="naive"):
        column_type.process_bind_param(datetime(2024, 1, 1), dialect)
    restored = column_type.process_result_value(datetime(2024, 1, 1, 0, 30), dialect)
    assert restored == datetime(2024, 1, 1, 0, 30, tzinfo=UTC)
    assert column_type.process_bind_param(None, dialect) is None
