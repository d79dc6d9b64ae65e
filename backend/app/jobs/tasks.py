"""The job functions. Each is idempotent, because delivery is at least once:

- scoring fills only unscored rows;
- a prediction run upserts one row per model, coin, horizon and target time;
- a backfill fetches only missing candles and upserts them;
- a backtest runs only while its row is pending (or, redelivered, still running).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.cache import CacheManager
from app.config import Settings
from app.database import Database
from app.ingestion.coingecko import CoinGeckoClient, CoinGeckoConfig
from app.jobs import backtest_runner
from app.jobs.schedule import BACKTEST_DEADLINE_S
from app.market import Horizon
from app.repositories import cryptocurrencies
from app.schemas.predictions import PredictionRequest
from app.services import backtest_runs, coins, predictions, scoring
from app.services.imports import backfill_gaps
from app.services.price_series import load_series

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobContext:
    database: Database
    cache: CacheManager
    settings: Settings


async def score_predictions(ctx: JobContext) -> dict[str, Any]:
    async with ctx.database.unit_of_work() as session:
        report = await scoring.score_due(session, ctx.cache)
    return report.model_dump()


async def _horizons_for(ctx: JobContext, symbol: str, wanted: list[Horizon]) -> list[Horizon]:
    """The wanted horizons this coin's candles can be forecast at (none without candles)."""
    async with ctx.database.unit_of_work() as session:
        coin = await coins.get_coin(session, ctx.cache, symbol)
        try:
            series = await load_series(session, ctx.cache, coin, candles=1, now=datetime.now(UTC))
        except Exception:  # no candles yet: nothing to forecast from
            return []
    return [h for h in wanted if h.steps(series.timeframe) is not None]


async def make_predictions(
    ctx: JobContext, symbols: list[str] | None = None, horizons: list[str] | None = None
) -> dict[str, Any]:
    """Forecast every requested (default: every active) coin at every horizon it supports."""
    wanted = [Horizon(h) for h in horizons] if horizons else list(Horizon)
    if symbols is None:
        async with ctx.database.unit_of_work() as session:
            symbols = [c.symbol for c in await cryptocurrencies.list_all(session) if c.is_active]
    stored, skipped, coins_done = 0, 0, 0
    for symbol in symbols:
        supported = await _horizons_for(ctx, symbol, wanted)
        if not supported:
            continue
        request = PredictionRequest(symbols=[symbol], horizons=supported)
        run = await predictions.make_predictions(ctx.database, ctx.cache, request)
        stored += run.stored
        skipped += len(run.skipped)
        coins_done += 1
    return {"coins": coins_done, "stored": stored, "skipped": skipped}


async def backfill(ctx: JobContext, symbol: str) -> dict[str, Any]:
    config = CoinGeckoConfig(
        api_key=ctx.settings.COINGECKO_API_KEY or None, plan=ctx.settings.COINGECKO_PLAN
    )
    async with CoinGeckoClient(config) as client:
        report = await backfill_gaps(ctx.database, ctx.cache, symbol, client)
    inserted = report.stored.inserted if report.stored else 0
    return {"symbol": report.symbol, "gaps": len(report.gaps), "inserted": inserted}


async def run_backtest(
    ctx: JobContext, backtest_id: str, redelivered: bool = False
) -> dict[str, Any]:
    """An accepted backtest (``POST /backtests`` enqueues it); a redelivered run takes over
    the row its stopped worker left running."""
    status = await backtest_runs.execute(
        ctx.database,
        ctx.cache,
        backtest_id,
        reclaim=redelivered,
        deadline_s=BACKTEST_DEADLINE_S,
    )
    return {"backtest_id": backtest_id, "status": status or "already claimed or finished"}


Task = Callable[..., Awaitable[dict[str, Any]]]
TASKS: dict[str, Task] = {
    "score_predictions": score_predictions,
    "make_predictions": make_predictions,
    "backfill": backfill,
    backtest_runner.JOB_NAME: run_backtest,
}
# Tasks told whether this delivery is a repeat (arq's job_try > 1).
REDELIVERY_AWARE = frozenset({backtest_runner.JOB_NAME})
