"""Backtests: walk-forward evaluation of the models on a coin's stored history.

A backtest is started by a request, checked here against the stored candles and recorded as
a ``pending`` row; it is then run elsewhere (`backtest_runs`, on a worker or in the process
that accepted it) and its summary stored on the row, which `get` reads back. The latest
summary for a coin and horizon is its leaderboard (`leaderboard`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.cache import CacheManager
from app.errors import NotFound, ServerBusy, TooManyRequests, conflicting_field
from app.forecasting import BASELINE
from app.market import Horizon, Timeframe
from app.models import Backtest
from app.repositories import backtests, cryptocurrencies
from app.schemas.predictions import BacktestOut, BacktestRequest
from app.services import coins
from app.services.predictions import TRAIN_CANDLES, resolve_models
from app.services.price_series import horizon_steps, load_series

MIN_TRAIN = 200


@dataclass(frozen=True, slots=True)
class BacktestBudget:
    """How much backtesting may be outstanding (pending or running), in model-windows.

    A backtest costs windows x models model fits, which is what occupies the workers. Each
    API key may have ``per_key`` outstanding, everyone together ``total``; past either the
    request is refused (429 for the key, 503 for everyone) instead of queueing without end.
    """

    per_key: int
    total: int
    retry_after: int = 30


def cost(windows: int, models: int) -> int:
    return windows * models


async def _admit(
    session: AsyncSession, budget: BacktestBudget, requested_by: str, wanted: int
) -> None:
    if wanted > budget.per_key:
        raise conflicting_field(
            "body.windows",
            f"this backtest costs {wanted} model-windows (windows x models); an API key may "
            f"have at most {budget.per_key} outstanding",
        )
    await backtests.lock_admission(session)
    outstanding = await backtests.outstanding(session)
    mine = sum(spent for who, spent in outstanding if who == requested_by)
    if mine + wanted > budget.per_key:
        raise TooManyRequests(
            f"this API key has backtests of {mine} model-windows pending or running; with this "
            f"one ({wanted}) it would pass its budget of {budget.per_key}",
            retry_after=budget.retry_after,
        )
    everyone = sum(spent for _, spent in outstanding)
    if everyone + wanted > budget.total:
        raise ServerBusy(
            f"the server has {everyone} model-windows of backtests outstanding; retry later",
            retry_after=budget.retry_after,
        )


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
    session: AsyncSession,
    cache: CacheManager,
    request: BacktestRequest,
    *,
    requested_by: str | None = None,
    budget: BacktestBudget | None = None,
) -> BacktestOut:
    """Check the request against the stored history and the caller's budget, and record a
    pending backtest. Without a requester (the command line) no budget applies."""
    models = resolve_models(request.models)
    if BASELINE not in models:
        models.insert(0, BASELINE)  # every score is relative to it, on the same windows
    coin = await coins.get_coin(session, cache, request.symbol)
    # The budget first: a refused request must not cost the candle read a backtest needs.
    if budget is not None and requested_by is not None:
        await _admit(session, budget, requested_by, cost(request.windows, len(models)))
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
        requested_by=requested_by,
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
