"""Bulk imports outside the HTTP path: CSV files and CoinGecko gap backfills.

Both go through the same validation and the same bulk upsert as the API, inside one unit
of work, so an import is all or nothing like a request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.cache import CacheManager
from app.database import Database
from app.errors import InvalidInput
from app.ingestion.batch import BatchRejected, CandleBatch, RawRow, RowError, validate_batch
from app.ingestion.coingecko import CoinGeckoClient, MarketPoint, candle_rows_from_points
from app.ingestion.csv_formats import rows_from_csv
from app.market import Timeframe
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


def read_csv_rows(path: Path) -> list[RawRow]:
    """The file's rows, parsed but not validated; raises BatchRejected for its layout."""
    text = path.read_text(encoding="utf-8-sig")
    if not text.strip():
        raise BatchRejected([RowError(None, "body", "the file is empty")])
    return rows_from_csv(text, max_rows=FILE_ROW_LIMIT)


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


# ---------------------------------------------------------------- pipelined imports


@dataclass(frozen=True)
class RowChunk:
    """Up to CHUNK_ROWS received rows for one coin, not validated yet.

    Either ``rows`` already parsed, or ``parse``, which produces them; a ``parse`` runs in
    the worker thread with the validation, off the thread that feeds the database.
    """

    symbol: str
    rows: Sequence[RawRow] = ()
    parse: Callable[[], Sequence[RawRow]] | None = None

    def received(self) -> Sequence[RawRow]:
        return self.parse() if self.parse is not None else self.rows


def chunk_rows(symbol: str, rows: Sequence[RawRow]) -> list[RowChunk]:
    return [RowChunk(symbol, rows[i : i + CHUNK_ROWS]) for i in range(0, len(rows), CHUNK_ROWS)]


def _validate(chunk: RowChunk, timeframe: Timeframe | None, skip: bool, now: datetime) -> Any:
    return validate_batch(
        chunk.received(), timeframe=timeframe, now=now, max_rows=CHUNK_ROWS, skip_invalid=skip
    )


def _drop_repeats(batch: CandleBatch, seen: set[datetime], skip_invalid: bool) -> CandleBatch:
    """Duplicates across chunks: the per-chunk check cannot see rows of earlier chunks."""
    repeats = [c for c in batch.candles if c.timestamp in seen]
    if repeats and not skip_invalid:
        when = repeats[0].timestamp.isoformat()
        raise BatchRejected([RowError(None, "timestamp", f"duplicate timestamp {when}")])
    kept = [c for c in batch.candles if c.timestamp not in seen]
    seen.update(c.timestamp for c in kept)
    skipped = batch.skipped + [
        RowError(None, "timestamp", f"duplicate timestamp {c.timestamp.isoformat()}")
        for c in repeats
    ]
    return CandleBatch(kept, batch.timeframe, skipped)


async def store_row_chunks(
    database: Database,
    cache: CacheManager,
    chunks: Sequence[RowChunk],
    *,
    source: str,
    timeframe: Timeframe | None = None,
    skip_invalid: bool = False,
    progress: Progress | None = None,
) -> dict[str, ImportReport]:
    """Validate and store ``chunks`` in one unit of work, all or nothing.

    Chunk k+1 is validated in a worker thread while chunk k is being written: most of a
    COPY's work happens in the PostgreSQL server, so the two overlap on separate cores
    (docs/BENCHMARKS.md). A coin's timeframe is inferred from its first chunk (unless
    given) and then required of the rest.
    """
    now = datetime.now(UTC)
    reports: dict[str, ImportReport] = {}
    frames: dict[str, Timeframe | None] = {}
    seen: dict[str, set[datetime]] = {}
    done = 0

    def start(index: int) -> asyncio.Future[CandleBatch]:
        chunk = chunks[index]
        frame = frames.get(chunk.symbol, timeframe)
        return asyncio.ensure_future(asyncio.to_thread(_validate, chunk, frame, skip_invalid, now))

    async with database.unit_of_work() as session:
        pending = start(0) if chunks else None
        try:
            for index, chunk in enumerate(chunks):
                assert pending is not None
                batch: CandleBatch = await pending
                frames[chunk.symbol] = batch.timeframe
                pending = start(index + 1) if index + 1 < len(chunks) else None
                batch = _drop_repeats(batch, seen.setdefault(chunk.symbol, set()), skip_invalid)
                report = reports.setdefault(chunk.symbol, ImportReport(chunk.symbol.upper()))
                report.skipped.extend(batch.skipped)
                if batch.candles:
                    coin = await coins.get_coin(session, cache, chunk.symbol)
                    report.add(await service.ingest(session, cache, coin, batch, source))
                done += len(batch.candles) + len(batch.skipped)
                if progress is not None:
                    progress(done, sum(len(c.rows) for c in chunks))
        finally:
            if pending is not None:
                pending.cancel()
    return reports


# ---------------------------------------------------------------- CoinGecko backfill


@dataclass
class BackfillReport:
    symbol: str
    gaps: list[Gap] = field(default_factory=list)
    fetched: int = 0
    rejected: int = 0
    stored: ImportReport | None = None


async def _fetch_gaps(
    client: CoinGeckoClient, gecko_id: str, gaps: list[Gap], base: Timeframe, now: datetime
) -> list[RawRow]:
    """Candle rows of the finished ``base`` candles in ``gaps`` (each one request or more)."""
    points: list[MarketPoint] = []
    for gap in gaps:
        points.extend(await client.market_chart_range(gecko_id, gap.start, gap.end + base.delta))
    return candle_rows_from_points(points, base, complete_before=now)


def _validate_fetched(rows: list[RawRow], base: Timeframe, now: datetime) -> CandleBatch | None:
    """Upstream data is checked like user input: the valid candles, or None if there is none."""
    if not rows:
        return None
    try:
        # No row limit: the rows are as many as the gaps hold, not what a caller sent.
        return validate_batch(rows, timeframe=base, now=now, max_rows=len(rows), skip_invalid=True)
    except BatchRejected:  # with skip_invalid: not one valid row
        return None


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
        raise InvalidInput(f"{coin.symbol} has no coin_gecko_id; set it with PATCH first")
    base = coverage.base_timeframe
    found = await _fetch_gaps(client, coin.coin_gecko_id, coverage.gaps, base, now)
    report.fetched = len(found)
    batch = _validate_fetched(found, base, now)
    report.rejected = len(found) - (len(batch.candles) if batch else 0)
    if batch is not None:
        report.stored = await store_batch(database, cache, symbol, batch, source="coingecko")
    return report
