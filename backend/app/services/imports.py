"""Bulk imports outside the HTTP path: CSV files and CoinGecko gap backfills.

Both go through the same validation and the same bulk upsert as the API, inside one unit
of work, so an import is all or nothing like a request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from app.cache import CacheManager
from app.database import Database
from app.errors import InvalidInputError
from app.ingestion.batch import CandleBatch, RowError, validate_batch
from app.ingestion.coingecko import CoinGeckoClient, hourly_candles_from_points
from app.ingestion.csv_formats import rows_from_csv
from app.ingestion.validation import candle_problem
from app.market import Candle, Timeframe
from app.schemas.market_data import Gap, IngestResult
from app.services import coins
from app.services import market_data as service

# The API's batch limit; a file is stored in slices of this size, one transaction in all.
CHUNK_ROWS = 100_000
FILE_ROW_LIMIT = 50_000_000

Progress = Callable[[int, int], None]


@dataclass
class ImportReport:
    symbol: str
    timeframe: Timeframe | None = None
    received: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: list[RowError] = field(default_factory=list)

    def add(self, result: IngestResult) -> None:
        self.timeframe = result.timeframe
        self.received += result.received
        self.inserted += result.inserted
        self.updated += result.updated
        self.unchanged += result.unchanged


def read_csv_batch(
    path: Path, *, timeframe: Timeframe | None, skip_invalid: bool, now: datetime | None = None
) -> CandleBatch:
    """Parse and validate a whole file; raises BatchRejected naming line and field."""
    text = path.read_text(encoding="utf-8-sig")
    rows = rows_from_csv(text, max_rows=FILE_ROW_LIMIT)
    return validate_batch(
        rows,
        timeframe=timeframe,
        now=now or datetime.now(UTC),
        max_rows=FILE_ROW_LIMIT,
        skip_invalid=skip_invalid,
    )


async def store_batch(
    database: Database,
    cache: CacheManager,
    symbol: str,
    batch: CandleBatch,
    *,
    source: str,
    progress: Progress | None = None,
) -> ImportReport:
    report = ImportReport(symbol=symbol.upper(), skipped=list(batch.skipped))
    total = len(batch.candles)
    async with database.unit_of_work() as session:
        coin = await coins.get_coin(session, cache, symbol)
        for start in range(0, total, CHUNK_ROWS):
            chunk = CandleBatch(batch.candles[start : start + CHUNK_ROWS], batch.timeframe)
            report.add(await service.ingest(session, cache, coin, chunk, source))
            if progress is not None:
                progress(min(start + CHUNK_ROWS, total), total)
    return report


# ---------------------------------------------------------------- CoinGecko backfill


@dataclass
class BackfillReport:
    symbol: str
    gaps: list[Gap] = field(default_factory=list)
    fetched: int = 0
    rejected: int = 0
    stored: ImportReport | None = None


def _within(candles: list[Candle], gap: Gap, base: Timeframe) -> list[Candle]:
    end = gap.end + base.delta
    return [c for c in candles if gap.start <= c.timestamp < end]


async def _fetch_gap(
    client: CoinGeckoClient, gecko_id: str, gap: Gap, base: Timeframe, now: datetime
) -> list[Candle]:
    points = await client.market_chart_range(gecko_id, gap.start, gap.end + base.delta)
    candles = hourly_candles_from_points(points, base, complete_before=now)
    return _within(candles, gap, base)


async def backfill_gaps(
    database: Database,
    cache: CacheManager,
    symbol: str,
    client: CoinGeckoClient,
    *,
    now: datetime | None = None,
) -> BackfillReport:
    """Fetch from CoinGecko only the ranges the coverage report says are missing."""
    now = now or datetime.now(UTC)
    async with database.unit_of_work() as session:
        coin = await coins.get_coin(session, cache, symbol)
        coverage = await service.coverage(session, cache, coin)
    report = BackfillReport(symbol=coin.symbol, gaps=coverage.gaps)
    if not coverage.gaps or coverage.base_timeframe is None:
        return report
    if not coin.coin_gecko_id:
        raise InvalidInputError(f"{coin.symbol} has no coin_gecko_id; set it with PATCH first")
    base = coverage.base_timeframe
    found: list[Candle] = []
    for gap in coverage.gaps:
        found.extend(await _fetch_gap(client, coin.coin_gecko_id, gap, base, now))
    report.fetched = len(found)
    # Upstream data is checked like user input; an inconsistent candle is not stored.
    valid = [candle for candle in found if candle_problem(candle) is None]
    report.rejected = len(found) - len(valid)
    if valid:
        batch = CandleBatch(sorted(valid, key=lambda c: c.timestamp), base)
        report.stored = await store_batch(database, cache, symbol, batch, source="coingecko")
    return report
