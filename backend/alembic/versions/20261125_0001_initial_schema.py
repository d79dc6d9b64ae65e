"""Initial schema: cryptocurrencies, market_data and predictions as the spec describes them.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the model types: a migration must not change when the models do.
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_TIMESTAMP = sa.DateTime(timezone=False)


def _create_cryptocurrencies() -> None:
    op.create_table(
        "cryptocurrencies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("symbol", sa.String(length=10), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("coin_gecko_id", sa.String(length=100), nullable=True),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("updated_at", UTC_TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cryptocurrencies")),
        sa.UniqueConstraint("symbol", name=op.f("uq_cryptocurrencies_symbol")),
    )
    op.create_index("idx_crypto_symbol_active", "cryptocurrencies", ["symbol", "is_active"])


def _create_market_data() -> None:
    op.create_table(
        "market_data",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("cryptocurrency_id", sa.Integer(), nullable=False),
        sa.Column("timestamp", UTC_TIMESTAMP, nullable=False),
        sa.Column("open_price", sa.Float(), nullable=False),
        sa.Column("high_price", sa.Float(), nullable=False),
        sa.Column("low_price", sa.Float(), nullable=False),
        sa.Column("close_price", sa.Float(), nullable=False),
        sa.Column("volume", sa.Float(), nullable=False),
        sa.Column("market_cap", sa.Float(), nullable=True),
        sa.Column("data_source", sa.String(length=50), nullable=False),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.CheckConstraint(
            "open_price >= 0 AND high_price >= 0 AND low_price >= 0 AND close_price >= 0",
            name=op.f("ck_market_data_prices_non_negative"),
        ),
        sa.CheckConstraint("high_price >= low_price", name=op.f("ck_market_data_high_gte_low")),
        sa.CheckConstraint(
            "volume >= 0 AND (market_cap IS NULL OR market_cap >= 0)",
            name=op.f("ck_market_data_volume_non_negative"),
        ),
        sa.ForeignKeyConstraint(
            ["cryptocurrency_id"],
            ["cryptocurrencies.id"],
            name=op.f("fk_market_data_cryptocurrency_id_cryptocurrencies"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_market_data")),
    )
    op.create_index(
        "idx_market_data_crypto_timestamp",
        "market_data",
        ["cryptocurrency_id", "timestamp"],
        unique=True,
    )
    op.create_index("idx_market_data_timestamp", "market_data", ["timestamp"])
    op.create_index(
        "idx_market_data_crypto_created", "market_data", ["cryptocurrency_id", "created_at"]
    )


def _create_predictions() -> None:
    op.create_table(
        "predictions",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("cryptocurrency_id", sa.Integer(), nullable=False),
        sa.Column("prediction_timestamp", UTC_TIMESTAMP, nullable=False),
        sa.Column("target_timestamp", UTC_TIMESTAMP, nullable=False),
        sa.Column("predicted_price", sa.Float(), nullable=False),
        sa.Column("confidence_score", sa.Float(), nullable=True),
        sa.Column("model_name", sa.String(length=100), nullable=False),
        sa.Column("model_version", sa.String(length=50), nullable=False),
        sa.Column("features_used", sa.JSON(), nullable=True),
        sa.Column("actual_price", sa.Float(), nullable=True),
        sa.Column("error", sa.Float(), nullable=True),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.CheckConstraint(
            "target_timestamp > prediction_timestamp",
            name=op.f("ck_predictions_target_after_prediction"),
        ),
        sa.CheckConstraint(
            "confidence_score >= 0 AND confidence_score <= 1",
            name=op.f("ck_predictions_confidence_in_unit_range"),
        ),
        sa.CheckConstraint(
            "predicted_price >= 0", name=op.f("ck_predictions_predicted_price_non_negative")
        ),
        sa.ForeignKeyConstraint(
            ["cryptocurrency_id"],
            ["cryptocurrencies.id"],
            name=op.f("fk_predictions_cryptocurrency_id_cryptocurrencies"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_predictions")),
    )
    op.create_index(
        "idx_prediction_crypto_target", "predictions", ["cryptocurrency_id", "target_timestamp"]
    )
    op.create_index(
        "idx_prediction_crypto_prediction_time",
        "predictions",
        ["cryptocurrency_id", "prediction_timestamp"],
    )
    op.create_index("idx_prediction_model", "predictions", ["model_name", "model_version"])


def upgrade() -> None:
    _create_cryptocurrencies()
    _create_market_data()
    _create_predictions()


def downgrade() -> None:
    # Dropping a table drops its indexes and constraints with it.
    op.drop_table("predictions")
    op.drop_table("market_data")
    op.drop_table("cryptocurrencies")
