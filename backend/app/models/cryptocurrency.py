"""Tracked coins and their metadata."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, String, UniqueConstraint, true
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime, utcnow


class Cryptocurrency(Base):
    __tablename__ = "cryptocurrencies"
    __table_args__ = (
        UniqueConstraint("symbol"),
        Index("idx_crypto_symbol_active", "symbol", "is_active"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    symbol: Mapped[str] = mapped_column(String(10))
    name: Mapped[str] = mapped_column(String(100))
    coin_gecko_id: Mapped[str | None] = mapped_column(String(100))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:
        return f"Cryptocurrency(symbol={self.symbol!r}, active={self.is_active})"
