"""Backtests remember which API key asked for them, so each key's outstanding work is bounded.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("backtests") as batch:
        # The key's public prefix; NULL for backtests started from the command line.
        batch.add_column(sa.Column("requested_by", sa.String(length=16), nullable=True))
    # Admission sums the pending and running backtests on every request: a small index.
    op.create_index("idx_backtest_status", "backtests", ["status"])


def downgrade() -> None:
    op.drop_index("idx_backtest_status", table_name="backtests")
    with op.batch_alter_table("backtests") as batch:
        batch.drop_column("requested_by")
