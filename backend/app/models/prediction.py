"""Forecasts and, once the target candle exists, how far off they were.

The spec's columns, plus the forecast horizon and the 80%/95% interval bounds (added in
migration 0002): a point forecast without its spread cannot be judged or drawn honestly.

The horizon is derived by the database from the two timestamps (migration 0004), so a row
written with the spec's columns alone is valid, and the horizon cannot disagree with them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Computed,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ColumnElement

from app.market import Horizon
from app.models.base import Base, BigIntPK, UTCDateTime, utcnow


class HorizonLabel(ColumnElement[str]):
    """``target_timestamp - prediction_timestamp`` as a horizon name ('1h', '24h'), or as
    seconds ('7200s') for a span that is no named horizon.

    Each database spells "seconds between two timestamps" its own way, hence one compiled
    form per dialect; the names come from :class:`app.market.Horizon`.
    """

    inherit_cache = True


def _label(seconds: str) -> str:
    named = " ".join(
        f"WHEN {int(h.delta.total_seconds())} THEN '{h.value}'"
        for h in sorted(Horizon, key=lambda h: h.delta)
    )
    return f"CASE {seconds} {named} ELSE CAST({seconds} AS TEXT) || 's' END"


@compiles(HorizonLabel, "postgresql")
def _postgresql_label(_element: HorizonLabel, _compiler: SQLCompiler, **_kw: object) -> str:
    return _label("CAST(EXTRACT(epoch FROM target_timestamp - prediction_timestamp) AS BIGINT)")


@compiles(HorizonLabel)
def _sqlite_label(_element: HorizonLabel, _compiler: SQLCompiler, **_kw: object) -> str:
    # julianday() is deterministic on a column (not 'now'), which a generated column needs.
    spread = "(julianday(target_timestamp) - julianday(prediction_timestamp)) * 86400"
    return _label(f"CAST(ROUND({spread}) AS INTEGER)")


class Prediction(Base):
    __tablename__ = "predictions"
    __table_args__ = (
        Index("idx_prediction_crypto_target", "cryptocurrency_id", "target_timestamp"),
        Index("idx_prediction_crypto_prediction_time", "cryptocurrency_id", "prediction_timestamp"),
        Index("idx_prediction_model", "model_name", "model_version"),
        CheckConstraint("target_timestamp > prediction_timestamp", name="target_after_prediction"),
        CheckConstraint(
            "confidence_score >= 0 AND confidence_score <= 1", name="confidence_in_unit_range"
        ),
        CheckConstraint("predicted_price >= 0", name="predicted_price_non_negative"),
        # One forecast per model, coin, horizon and target time: re-running replaces it.
        UniqueConstraint(
            "cryptocurrency_id",
            "model_name",
            "horizon",
            "target_timestamp",
            name="uq_prediction_key",
        ),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    cryptocurrency_id: Mapped[int] = mapped_column(Integer, ForeignKey("cryptocurrencies.id"))
    prediction_timestamp: Mapped[datetime] = mapped_column(UTCDateTime)
    target_timestamp: Mapped[datetime] = mapped_column(UTCDateTime)
    predicted_price: Mapped[float] = mapped_column(Float)
    confidence_score: Mapped[float | None] = mapped_column(Float)
    model_name: Mapped[str] = mapped_column(String(100))
    model_version: Mapped[str] = mapped_column(String(50))
    horizon: Mapped[str] = mapped_column(String(16), Computed(HorizonLabel(), persisted=True))
    features_used: Mapped[dict[str, Any] | list[Any] | None] = mapped_column(JSON)
    actual_price: Mapped[float | None] = mapped_column(Float)
    # Absolute percentage error: 100 * |predicted - actual| / actual.
    error: Mapped[float | None] = mapped_column(Float)
    lower_80: Mapped[float | None] = mapped_column(Float)
    upper_80: Mapped[float | None] = mapped_column(Float)
    lower_95: Mapped[float | None] = mapped_column(Float)
    upper_95: Mapped[float | None] = mapped_column(Float)
    evaluated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
