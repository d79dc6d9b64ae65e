"""Queries on the predictions table: the forecast ledger and its scoring."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Cryptocurrency, Prediction

KEY = ("cryptocurrency_id", "model_name", "horizon", "target_timestamp")
# The same key as written: the database derives the horizon from the two timestamps, so a
# row to store names the origin instead (same target + same horizon = same origin).
WRITTEN_KEY = ("cryptocurrency_id", "model_name", "prediction_timestamp", "target_timestamp")
# Columns a re-run for the same key replaces; created_at keeps the first run's time.
REPLACED = (
    "prediction_timestamp",
    "predicted_price",
    "confidence_score",
    "model_version",
    "features_used",
    "lower_80",
    "upper_80",
    "lower_95",
    "upper_95",
)


@dataclass(frozen=True, slots=True)
class PredictionFilter:
    coin_id: int | None = None
    model_name: str | None = None
    horizon: str | None = None
    target_from: datetime | None = None
    target_to: datetime | None = None
    evaluated: bool | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    prediction_id: int
    actual_price: float
    error: float


async def upsert(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> int:
    """Store forecasts, one per key; a forecast that was already scored is left as it was.

    Scored rows are history: replacing one would rewrite a past forecast after seeing its
    outcome, which is exactly what an honest ledger must not allow.
    """
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(Prediction)
    statement = insert.values(list(rows))
    statement = statement.on_conflict_do_update(
        index_elements=list(KEY),
        set_={column: statement.excluded[column] for column in REPLACED},
        where=Prediction.actual_price.is_(None),
    )
    result = await session.execute(statement)
    return int(max(result.rowcount, 0))  # type: ignore[attr-defined]


async def by_keys(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> list[Prediction]:
    """The stored rows for the keys of ``rows`` (as just upserted), in the same order."""
    if not rows:
        return []
    statement = (
        select(Prediction)
        .where(
            Prediction.cryptocurrency_id.in_({row["cryptocurrency_id"] for row in rows}),
            Prediction.target_timestamp.in_({row["target_timestamp"] for row in rows}),
            Prediction.model_name.in_({row["model_name"] for row in rows}),
        )
        # The upsert bypassed the ORM: reload rather than trust objects already in the session.
        .execution_options(populate_existing=True)
    )
    stored = {
        tuple(getattr(found, column) for column in WRITTEN_KEY): found
        for found in (await session.execute(statement)).scalars()
    }
    keys = (tuple(row[column] for column in WRITTEN_KEY) for row in rows)
    return [stored[key] for key in keys if key in stored]


def _conditions(where: PredictionFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if where.coin_id is not None:
        conditions.append(Prediction.cryptocurrency_id == where.coin_id)
    if where.model_name is not None:
        conditions.append(Prediction.model_name == where.model_name)
    if where.horizon is not None:
        conditions.append(Prediction.horizon == where.horizon)
    if where.target_from is not None:
        conditions.append(Prediction.target_timestamp >= where.target_from)
    if where.target_to is not None:
        conditions.append(Prediction.target_timestamp < where.target_to)
    if where.evaluated is True:
        conditions.append(Prediction.actual_price.is_not(None))
    elif where.evaluated is False:
        conditions.append(Prediction.actual_price.is_(None))
    return conditions


async def page(
    session: AsyncSession, where: PredictionFilter, *, limit: int, offset: int
) -> tuple[list[tuple[Prediction, str]], int]:
    """Newest target first, with each row's coin symbol, and the total matching."""
    base = select(Prediction, Cryptocurrency.symbol).join(
        Cryptocurrency, Cryptocurrency.id == Prediction.cryptocurrency_id
    )
    statement = (
        base.where(*_conditions(where))
        .order_by(Prediction.target_timestamp.desc(), Prediction.id.desc())
        .limit(limit)
        .offset(offset)
    )
    rows = [(row[0], row[1]) for row in (await session.execute(statement)).all()]
    counted = select(func.count()).select_from(Prediction).where(*_conditions(where))
    total = int((await session.execute(counted)).scalar_one())
    return rows, total


async def latest_per_model(session: AsyncSession, coin_id: int) -> list[Prediction]:
    """For each (model, horizon), the forecasts made at its newest origin."""
    newest = (
        select(
            Prediction.model_name,
            Prediction.horizon,
            func.max(Prediction.prediction_timestamp).label("origin"),
        )
        .where(Prediction.cryptocurrency_id == coin_id)
        .group_by(Prediction.model_name, Prediction.horizon)
        .subquery()
    )
    statement = (
        select(Prediction)
        .join(
            newest,
            and_(
                Prediction.model_name == newest.c.model_name,
                Prediction.horizon == newest.c.horizon,
                Prediction.prediction_timestamp == newest.c.origin,
            ),
        )
        .where(Prediction.cryptocurrency_id == coin_id)
        .order_by(Prediction.horizon, Prediction.model_name)
    )
    return list((await session.execute(statement)).scalars().all())


async def due_for_scoring(
    session: AsyncSession,
    now: datetime,
    *,
    limit: int,
    after: tuple[datetime, int] | None = None,
) -> list[Prediction]:
    """Unscored forecasts whose target time has passed, by (target, id), after ``after``.

    Keyset pages: forecasts whose candle never arrives stay due, and must not hide the
    ones behind them.
    """
    statement = select(Prediction).where(
        Prediction.actual_price.is_(None), Prediction.target_timestamp <= now
    )
    if after is not None:
        target, last_id = after
        statement = statement.where(
            or_(
                Prediction.target_timestamp > target,
                and_(Prediction.target_timestamp == target, Prediction.id > last_id),
            )
        )
    statement = statement.order_by(Prediction.target_timestamp, Prediction.id).limit(limit)
    return list((await session.execute(statement)).scalars().all())


async def record_outcomes(
    session: AsyncSession, outcomes: Sequence[Outcome], evaluated_at: datetime
) -> int:
    """Fill actual price and error; a row scored meanwhile by another job is not touched."""
    scored = 0
    for outcome in outcomes:
        statement = (
            update(Prediction)
            .where(Prediction.id == outcome.prediction_id, Prediction.actual_price.is_(None))
            .values(
                actual_price=outcome.actual_price,
                error=outcome.error,
                evaluated_at=evaluated_at,
            )
            .execution_options(synchronize_session=False)
        )
        result = await session.execute(statement)
        scored += max(result.rowcount, 0)  # type: ignore[attr-defined]
    return scored
