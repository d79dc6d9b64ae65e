"""Walk-forward backtests: the request, its progress and, once finished, its scores.

The computation runs in memory (``app.forecasting.backtest``); this row is only its ledger,
so a client can start one, poll it, and the leaderboard can read the latest result.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime, utcnow


class Backtest(Base):
    __tablename__ = "backtests"
    __table_args__ = (
        Index(
            "idx_backtest_crypto_horizon_finished", "cryptocurrency_id", "horizon", "finished_at"
        ),
        CheckConstraint(
            "status IN ('pending', 'running', 'succeeded', 'failed')", name="status_known"
        ),
        CheckConstraint("windows > 0 AND step > 0", name="windows_and_step_positive"),
        Index("idx_backtest_status", "status"),
    )

    # A random public id: backtests are started by clients and polled by id.
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    cryptocurrency_id: Mapped[int] = mapped_column(Integer, ForeignKey("cryptocurrencies.id"))
    horizon: Mapped[str] = mapped_column(String(8))
    timeframe: Mapped[str] = mapped_column(String(4))
    models: Mapped[list[str]] = mapped_column(JSON)
    windows: Mapped[int] = mapped_column(Integer)
    step: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    windows_done: Mapped[int] = mapped_column(Integer, default=0)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The public prefix of the API key that asked for it; None from the command line.
    requested_by: Mapped[str | None] = mapped_column(String(16))
