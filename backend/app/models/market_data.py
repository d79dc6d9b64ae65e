"""OHLCV candles: one row per coin and candle-open time."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigIntPK, UTCDateTime, utcnow


class MarketData(Base):
    __tablename__ = "market_data"
    __table_args__ = (
        Index("idx_market_data_crypto_timestamp", "cryptocurrency_id", "timestamp", unique=True),
        Index("idx_market_data_timestamp", "timestamp"),
        Index("idx_market_data_crypto_created", "cryptocurrency_id", "created_at"),
        CheckConstraint(
            "open_price >= 0 AND high_price >= 0 AND low_price >= 0 AND close_price >= 0",
            name="prices_non_negative",
        ),
        CheckConstraint("high_price >= low_price", name="high_gte_low"),
        CheckConstraint(
            "volume >= 0 AND (market_cap IS NULL OR market_cap >= 0)",
            name="volume_non_negative",
        ),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    cryptocurrency_id: Mapped[int] = mapped_column(Integer, ForeignKey("cryptocurrencies.id"))
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime)
    open_price: Mapped[float] = mapped_column(Float)
    high_price: Mapped[float] = mapped_column(Float)
    low_price: Mapped[float] = mapped_column(Float)
    close_price: Mapped[float] = mapped_column(Float)
    volume: Mapped[float] = mapped_column(Float)
    market_cap: Mapped[float | None] = mapped_column(Float)
    data_source: Mapped[str] = mapped_column(String(50))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
