"""Forecasts and, once the target candle exists, how far off they were.

The spec's columns, plus the forecast horizon and the 80%/95% interval bounds (added in
migration 0002): a point forecast without its spread cannot be judged or drawn honestly.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigIntPK, UTCDateTime, utcnow


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
    horizon: Mapped[str] = mapped_column(String(8))
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
