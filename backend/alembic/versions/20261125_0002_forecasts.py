"""Forecast ledger: horizon, interval bounds and scoring time on predictions; backtests.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIMESTAMP = sa.DateTime(timezone=False)
BOUNDS = ("lower_80", "upper_80", "lower_95", "upper_95")


def _extend_predictions() -> None:
    with op.batch_alter_table("predictions") as batch:
        # Rows written before this revision had no horizon; '1h' keeps them valid, and the
        # default is dropped again so new rows must say which horizon they forecast.
        batch.add_column(
            sa.Column("horizon", sa.String(length=8), nullable=False, server_default="1h")
        )
        for column in BOUNDS:
            batch.add_column(sa.Column(column, sa.Float(), nullable=True))
        batch.add_column(sa.Column("evaluated_at", UTC_TIMESTAMP, nullable=True))
        batch.create_unique_constraint(
            "uq_prediction_key",
            ["cryptocurrency_id", "model_name", "horizon", "target_timestamp"],
        )
    with op.batch_alter_table("predictions") as batch:
        batch.alter_column("horizon", server_default=None)


def _create_backtests() -> None:
    op.create_table(
        "backtests",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("cryptocurrency_id", sa.Integer(), nullable=False),
        sa.Column("horizon", sa.String(length=8), nullable=False),
        sa.Column("timeframe", sa.String(length=4), nullable=False),
        sa.Column("models", sa.JSON(), nullable=False),
        sa.Column("windows", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("windows_done", sa.Integer(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("started_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("finished_at", UTC_TIMESTAMP, nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'succeeded', 'failed')",
            name=op.f("ck_backtests_status_known"),
        ),
        sa.CheckConstraint(
            "windows > 0 AND step > 0", name=op.f("ck_backtests_windows_and_step_positive")
        ),
        sa.ForeignKeyConstraint(
            ["cryptocurrency_id"],
            ["cryptocurrencies.id"],
            name=op.f("fk_backtests_cryptocurrency_id_cryptocurrencies"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backtests")),
    )
    op.create_index(
        "idx_backtest_crypto_horizon_finished",
        "backtests",
        ["cryptocurrency_id", "horizon", "finished_at"],
    )


def upgrade() -> None:
    _extend_predictions()
    _create_backtests()


def downgrade() -> None:
    op.drop_index("idx_backtest_crypto_horizon_finished", table_name="backtests")
    op.drop_table("backtests")
    with op.batch_alter_table("predictions") as batch:
        batch.drop_constraint("uq_prediction_key", type_="unique")
        for column in ("evaluated_at", *reversed(BOUNDS), "horizon"):
            batch.drop_column(column)
