"""The prediction horizon is derived from the two timestamps by the database.

0002 added ``horizon`` as a NOT NULL column with no default, so a row valid under the spec's
table definition (which has no horizon) was refused. A stored generated column keeps the
spec's columns sufficient, and makes a horizon that disagrees with the timestamps impossible.
Existing rows keep their value: every forecast was written with target = origin + horizon.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY = ["cryptocurrency_id", "model_name", "horizon", "target_timestamp"]
# Frozen here rather than imported from the model, so this revision builds the same schema
# whatever later code says; test_migrations checks the two still agree.
NAMED = (
    "WHEN 3600 THEN '1h' WHEN 14400 THEN '4h' WHEN 86400 THEN '24h' WHEN 604800 THEN '7d'"
)
SECONDS = {
    "postgresql": "CAST(EXTRACT(epoch FROM target_timestamp - prediction_timestamp) AS BIGINT)",
    "sqlite": "CAST(ROUND((julianday(target_timestamp) - julianday(prediction_timestamp)) "
    "* 86400) AS INTEGER)",
}


def _label(dialect: str) -> str:
    seconds = SECONDS[dialect]
    return f"CASE {seconds} {NAMED} ELSE CAST({seconds} AS TEXT) || 's' END"


def upgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.drop_constraint("uq_prediction_key", type_="unique")
        batch.drop_column("horizon")
    derived = sa.Computed(_label(op.get_bind().dialect.name), persisted=True)
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("horizon", sa.String(length=16), derived, nullable=False))
        batch.create_unique_constraint("uq_prediction_key", KEY)


def downgrade() -> None:
    # Back to a written column holding the same values: copy, then swap the columns. The
    # copy column comes first, alone: SQLite adds it in place, where a table rebuild would
    # try to copy into the generated column and fail.
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("written_horizon", sa.String(length=8), nullable=True))
    op.execute("UPDATE predictions SET written_horizon = horizon")
    with op.batch_alter_table("predictions") as batch:
        batch.drop_constraint("uq_prediction_key", type_="unique")
        batch.drop_column("horizon")
    with op.batch_alter_table("predictions") as batch:
        batch.alter_column(
            "written_horizon", new_column_name="horizon", existing_type=sa.String(8), nullable=False
        )
    # A batch of its own: SQLite's rebuild drops a constraint on a column renamed in the same
    # batch.
    with op.batch_alter_table("predictions") as batch:
        batch.create_unique_constraint("uq_prediction_key", KEY)
