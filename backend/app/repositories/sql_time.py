"""Time in hand-written SQL, per dialect: bucketing, and moments as bound parameters.

Buckets are computed on epoch seconds, so they align to UTC midnight (and to Monday 00:00
UTC for weeks) on PostgreSQL and SQLite alike, without depending on a session time zone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from app.market import EPOCH, Timeframe

_EPOCH_SQL = {
    "postgresql": "CAST(EXTRACT(EPOCH FROM {column}) AS BIGINT)",
    "sqlite": "CAST(strftime('%s', {column}) AS INTEGER)",
}


def epoch_seconds(dialect: str, column: str) -> str:
    return _EPOCH_SQL[dialect].format(column=column)


def sqlite_text(moment: datetime) -> str:
    """The text SQLAlchemy stores for a DateTime on SQLite, for comparisons in raw SQL."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def naive_utc(moment: datetime) -> datetime:
    """The naive UTC time for a ``timestamp`` column.

    Candles are already UTC, so the fields are copied as they are: this runs once per row
    and is twice as fast as ``astimezone(UTC).replace(tzinfo=None)``.
    """
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return datetime(
        moment.year,
        moment.month,
        moment.day,
        moment.hour,
        moment.minute,
        moment.second,
        moment.microsecond,
    )


def _range_filter(start: bool, end: bool) -> str:
    clauses = ["cryptocurrency_id = :coin"]
    if start:
        clauses.append("timestamp >= :start")
    if end:
        clauses.append("timestamp < :end")
    return " AND ".join(clauses)


def bucket_query(
    dialect: str,
    interval: Timeframe | None,
    *,
    newest_first: bool,
    has_start: bool = True,
    has_end: bool = True,
) -> tuple[str, dict[str, Any]]:
    """SQL returning (bucket, open, high, low, close, volume, last_ts) rows.

    ``interval`` None reads stored candles as they are; otherwise they are resampled: first
    open, highest high, lowest low, last close, summed volume.
    """
    order = "DESC" if newest_first else "ASC"
    where = _range_filter(has_start, has_end)
    if interval is None:
        sql = (
            "SELECT timestamp, open_price, high_price, low_price, close_price, volume, timestamp "
            f"FROM market_data WHERE {where} ORDER BY timestamp {order} LIMIT :limit"
        )
        return sql, {}
    bucket = f"(({epoch_seconds(dialect, 'timestamp')} - :origin) / :step) * :step + :origin"
    sql = (
        "WITH buckets AS ("
        f"SELECT {bucket} AS bucket, MIN(timestamp) AS first_ts, MAX(timestamp) AS last_ts, "
        "MAX(high_price) AS high, MIN(low_price) AS low, SUM(volume) AS volume "
        f"FROM market_data WHERE {where} GROUP BY 1 ORDER BY 1 {order} LIMIT :limit) "
        "SELECT b.bucket, o.open_price, b.high, b.low, c.close_price, b.volume, b.last_ts "
        "FROM buckets b "
        "JOIN market_data o ON o.cryptocurrency_id = :coin AND o.timestamp = b.first_ts "
        "JOIN market_data c ON c.cryptocurrency_id = :coin AND c.timestamp = b.last_ts "
        f"ORDER BY b.bucket {order}"
    )
    origin = int((interval.origin - EPOCH).total_seconds())
    return sql, {"origin": origin, "step": interval.seconds}


def gap_query(dialect: str) -> str:
    """SQL returning (before, after) for consecutive candles spaced more than :step apart."""
    spacing = f"{epoch_seconds(dialect, 'timestamp')} - {epoch_seconds(dialect, 'previous')}"
    return (
        "SELECT previous, timestamp FROM ("
        "SELECT timestamp, LAG(timestamp) OVER (ORDER BY timestamp) AS previous "
        "FROM market_data WHERE cryptocurrency_id = :coin) AS spaced "
        f"WHERE previous IS NOT NULL AND {spacing} > :step ORDER BY timestamp"
    )
