"""Running an accepted backtest: claim its row, compute it in memory, store its summary.

The computation runs in a worker thread, so the event loop goes on serving while it fits.
Runs are delivered at least once: a redelivered run takes over a row its stopped worker
left running, and a run cancelled mid-way (its worker shutting down) hands the row back to
pending for the next one. Who calls ``execute``, a queue worker or the process that
accepted the backtest, is the job layer's choice (`app.jobs.backtest_runner`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from app.cache import CacheManager
from app.database import Database
from app.forecasting.backtest import BacktestConfig, BacktestResult, walk_forward
from app.market import Horizon, Timeframe
from app.models import Backtest
from app.repositories import backtests, cryptocurrencies
from app.schemas.coins import CoinOut
from app.services import coins, leaderboard
from app.services.backtests import MIN_TRAIN, candles_needed
from app.services.predictions import TOLERANCE, TRAIN_CANDLES, invalidate_latest
from app.services.price_series import PriceSeries, load_series

logger = logging.getLogger(__name__)

MASE_WINDOW = 720
PROGRESS_EVERY_S = 1.0
ABANDONED_AFTER = timedelta(hours=6)
Progress = Callable[[int, int], None]


class BacktestCancelled(Exception):
    """Raised from the progress callback to stop a backtest between windows."""


def _finite(value: Any) -> Any:
    """JSON columns refuse NaN: an undefined metric (no up-moves, say) is stored as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def summarize(result: BacktestResult, series: PriceSeries, horizon: Horizon) -> dict[str, Any]:
    """What is kept of a backtest: scores, calibration and when each window was."""
    origins = [series.close_time(int(index)).isoformat() for index in result.origins]
    rows = []
    for rank, row in enumerate(result.leaderboard(), start=1):
        model = result.models[str(row["model"])]
        rows.append({"rank": rank, **row, "fit_failures": model.fit_failures})
    summary: dict[str, Any] = _finite(
        {
            "horizon": horizon.value,
            "timeframe": series.timeframe.value,
            "steps": result.config.horizon,
            "step": result.config.step,
            "tolerance": result.config.tolerance,
            "bridged_candles": series.filled,
            "origins": origins,
            "champion": result.champion(),
            "leaderboard": rows,
            "models": {
                name: {
                    "code_version": model.code_version,
                    "sigma_scale": model.sigma_scale,
                    "fit_failures": model.fit_failures,
                    "calibration": [asdict(bucket) for bucket in model.calibration],
                }
                for name, model in result.models.items()
            },
        }
    )
    return summary


def _compute(
    series: PriceSeries, row: Backtest, steps: int, on_progress: Progress
) -> BacktestResult:
    config = BacktestConfig(
        horizon=steps,
        windows=row.windows,
        step=row.step,
        tolerance=TOLERANCE[Horizon(row.horizon)],
        mase_window=MASE_WINDOW,
        min_train=MIN_TRAIN,
    )
    params = {name: {"max_train": TRAIN_CANDLES} for name in row.models}
    return walk_forward(
        series.closes, list(row.models), config, progress=on_progress, model_params=params
    )


async def _claim(
    database: Database, cache: CacheManager, backtest_id: str, reclaim: bool
) -> tuple[Backtest, CoinOut, PriceSeries] | None:
    async with database.unit_of_work() as session:
        now = datetime.now(UTC)
        if not await backtests.mark_running(session, backtest_id, now, reclaim=reclaim):
            return None
        row = await backtests.get(session, backtest_id)
        assert row is not None
        symbols = await cryptocurrencies.symbols_by_id(session, [row.cryptocurrency_id])
        coin = await coins.get_coin(session, cache, symbols[row.cryptocurrency_id])
        steps = Horizon(row.horizon).steps(Timeframe(row.timeframe)) or 1
        candles = candles_needed(row.windows, row.step, steps)
        series = await load_series(session, cache, coin, candles=candles, now=datetime.now(UTC))
        session.expunge(row)
        return row, coin, series


class _Watch:
    """What the computing thread and the event loop share: windows done, and an order to
    stop (the thread cannot be cancelled, only told)."""

    def __init__(self, progress: Progress | None, cancel: threading.Event | None) -> None:
        self.done = 0
        self.stop = threading.Event()
        self._progress = progress
        self._cancel = cancel

    def __call__(self, windows_done: int, total: int) -> None:
        self.done = windows_done
        if self._progress is not None:
            self._progress(windows_done, total)
        if self.stop.is_set() or (self._cancel is not None and self._cancel.is_set()):
            raise BacktestCancelled


async def _report_progress(database: Database, backtest_id: str, watch: _Watch) -> None:
    written = 0
    while True:
        await asyncio.sleep(PROGRESS_EVERY_S)
        if watch.done != written:
            written = watch.done
            async with database.unit_of_work() as session:
                await backtests.record_progress(session, backtest_id, written)


async def _compute_within(
    series: PriceSeries, row: Backtest, watch: _Watch, deadline_s: float | None
) -> tuple[BacktestResult | None, str | None]:
    """The result, or why there is none."""
    steps = Horizon(row.horizon).steps(Timeframe(row.timeframe)) or 1
    try:
        async with asyncio.timeout(deadline_s):
            return await asyncio.to_thread(_compute, series, row, steps, watch), None
    except BacktestCancelled:
        return None, "cancelled: the service stopped"
    except TimeoutError:
        watch.stop.set()
        return None, f"stopped: it ran longer than {deadline_s:g} s"
    except ValueError as invalid:  # the series changed since the request was accepted
        return None, str(invalid)


async def _finish(
    database: Database,
    cache: CacheManager,
    row: Backtest,
    symbol: str,
    *,
    result: dict[str, Any] | None = None,
    error: str | None = None,
) -> None:
    async with database.unit_of_work() as session:
        await backtests.finish(session, row.id, datetime.now(UTC), result=result, error=error)
        if error is None:  # a new leaderboard: new champion and calibration
            leaderboard.invalidate(session, cache, symbol, row.horizon)
            invalidate_latest(session, cache, symbol)


async def _release(database: Database, backtest_id: str) -> None:
    try:
        async with database.unit_of_work() as session:
            await backtests.release(session, backtest_id)
    except Exception as error:  # the redelivered run reclaims a row left running anyway
        logger.warning("could not hand backtest %s back: %s", backtest_id, type(error).__name__)


async def execute(
    database: Database,
    cache: CacheManager,
    backtest_id: str,
    *,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    reclaim: bool = False,
    deadline_s: float | None = None,
) -> str | None:
    """Run a pending backtest to the end and store its summary (or why it failed).

    Returns the status it ended with, or None when it was not this call's to run (claimed
    or finished already). ``reclaim`` takes over a row left running (a redelivered job).
    Past ``deadline_s`` it fails with that reason. Cancelled from outside (a worker shutting
    down), it stops between windows and hands the row back to pending.
    """
    claimed = await _claim(database, cache, backtest_id, reclaim)
    if claimed is None:
        return None
    row, coin, series = claimed
    watch = _Watch(progress, cancel)
    reporter = asyncio.create_task(_report_progress(database, backtest_id, watch))
    try:
        result, error = await _compute_within(series, row, watch, deadline_s)
    except asyncio.CancelledError:
        watch.stop.set()
        await _release(database, backtest_id)
        raise
    finally:
        reporter.cancel()
    if result is None:
        await _finish(database, cache, row, coin.symbol, error=error)
        return "failed"
    summary = summarize(result, series, Horizon(row.horizon))
    await _finish(database, cache, row, coin.symbol, result=summary)
    return "succeeded"


async def fail(database: Database, backtest_id: str, error: str) -> None:
    """Record a run that broke off without finishing its row (a crash, say) as failed."""
    async with database.unit_of_work() as session:
        await backtests.finish(session, backtest_id, datetime.now(UTC), error=error)


async def fail_abandoned(database: Database) -> int:
    """Fail the runs left running longer than any run takes: their process stopped."""
    now = datetime.now(UTC)
    async with database.unit_of_work() as session:
        return await backtests.fail_abandoned(
            session, now, now - ABANDONED_AFTER, "abandoned: the process running it stopped"
        )
