"""Backtests: walk-forward evaluation of the models on a coin's stored history.

A backtest is started by a request, checked here against the stored candles and recorded as
a ``pending`` row; it is then run elsewhere (`backtest_runs`, on a worker or in the process
that accepted it) and its summary stored on the row, which `get` reads back. The latest
summary for a coin and horizon is its leaderboard (`leaderboard`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.cache import CacheManager
from app.errors import NotFound, conflicting_field
from app.forecasting import BASELINE
from app.market import Horizon, Timeframe
from app.models import Backtest
from app.repositories import backtests, cryptocurrencies
from app.schemas.predictions import BacktestOut, BacktestRequest
from app.services import coins
from app.services.predictions import TRAIN_CANDLES, resolve_models
from app.services.price_series import horizon_steps, load_series

MIN_TRAIN = 200


def candles_needed(windows: int, step: int, steps: int) -> int:
    """History for ``windows`` origins ``step`` apart, each with a full training window."""
    return TRAIN_CANDLES + (windows - 1) * step + steps


def to_out(row: Backtest, symbol: str) -> BacktestOut:
    return BacktestOut(
        id=row.id,
        symbol=symbol,
        horizon=Horizon(row.horizon),
        timeframe=Timeframe(row.timeframe),
        models=list(row.models),
        windows=row.windows,
        step=row.step,
        status=row.status,
        windows_done=row.windows_done,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        error=row.error,
        result=row.result,
    )


async def start(
    session: AsyncSession, cache: CacheManager, request: BacktestRequest
) -> BacktestOut:
    """Check the request against the stored history and record a pending backtest."""
    models = resolve_models(request.models)
    if BASELINE not in models:
        models.insert(0, BASELINE)  # every score is relative to it, on the same windows
    coin = await coins.get_coin(session, cache, request.symbol)
    now = datetime.now(UTC)
    probe = await load_series(session, cache, coin, candles=1, now=now)
    steps = horizon_steps(request.horizon, probe, coin.symbol, "body.horizon")
    step = request.step or steps
    needed = MIN_TRAIN + (request.windows - 1) * step + steps
    series = await load_series(
        session, cache, coin, candles=candles_needed(request.windows, step, steps), now=now
    )
    if len(series.closes) < needed:
        raise conflicting_field(
            "body.windows",
            f"{request.windows} windows {step} candles apart need {needed} closed "
            f"{series.timeframe.value} candles in one run; {coin.symbol} has "
            f"{len(series.closes)}",
        )
    row = await backtests.create(
        session,
        cryptocurrency_id=coin.id,
        horizon=request.horizon.value,
        timeframe=series.timeframe.value,
        models=models,
        windows=request.windows,
        step=step,
    )
    return to_out(row, coin.symbol)


async def get(session: AsyncSession, backtest_id: str) -> BacktestOut:
    row = await backtests.get(session, backtest_id)
    if row is None:
        raise NotFound("no backtest with this id")
    symbols = await cryptocurrencies.symbols_by_id(session, [row.cryptocurrency_id])
    return to_out(row, symbols[row.cryptocurrency_id])
