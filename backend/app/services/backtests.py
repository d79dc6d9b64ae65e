"""Backtests: walk-forward evaluation of the models on a coin's stored history.

A backtest is started by a request (a ``pending`` row), computed in memory in a worker
thread, and its summary stored on the row. With a job queue (Redis) it runs on the workers
as the ``run_backtest`` job, delivered at least once: a redelivered run takes over a row its
stopped worker left running, and a worker that shuts down mid-run hands the row back to
pending for the next one. Without a queue (or while it cannot be reached) it runs in the
process that accepted it (``BacktestRunner``). The leaderboard is the latest summary for a
coin and horizon; predictions read their confidence calibration and champion from it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.cache import CacheManager, CacheTTL, cache_key
from app.database import Database, after_commit
from app.errors import NotFoundError, ServiceUnavailable, conflicting_field
from app.forecasting import BASELINE
from app.forecasting.backtest import BacktestConfig, BacktestResult, walk_forward
from app.jobs.records import JobQueue
from app.market import Horizon, Timeframe
from app.models import Backtest
from app.repositories import backtests, cryptocurrencies
from app.schemas.coins import CoinOut
from app.schemas.predictions import BacktestOut, BacktestRequest, Leaderboard
from app.services import coins
from app.services.predictions import TOLERANCE, TRAIN_CANDLES, invalidate_latest, resolve_models
from app.services.price_series import PriceSeries, horizon_steps, load_series

logger = logging.getLogger(__name__)

MIN_TRAIN = 200
MASE_WINDOW = 720
PROGRESS_EVERY_S = 1.0
ABANDONED_AFTER = timedelta(hours=6)
JOB_NAME = "run_backtest"
Progress = Callable[[int, int], None]


class BacktestCancelled(Exception):
    """Raised from the progress callback to stop a backtest between windows."""


def job_id(backtest_id: str) -> str:
    """One queue job per backtest, however often its request is retried."""
    return f"backtest:{backtest_id}"


def leaderboard_key(symbol: str, horizon: str) -> str:
    return cache_key(symbol.upper(), "leaderboard", horizon)


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


# ---------------------------------------------------------------- starting


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
        raise NotFoundError("no backtest with this id")
    symbols = await cryptocurrencies.symbols_by_id(session, [row.cryptocurrency_id])
    return to_out(row, symbols[row.cryptocurrency_id])


# ---------------------------------------------------------------- running


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


async def _report_progress(database: Database, backtest_id: str, done: list[int]) -> None:
    written = 0
    while True:
        await asyncio.sleep(PROGRESS_EVERY_S)
        if done[0] != written:
            written = done[0]
            async with database.unit_of_work() as session:
                await backtests.record_progress(session, backtest_id, written)


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
            key = leaderboard_key(symbol, row.horizon)

            async def drop() -> None:
                await cache.delete(key)

            after_commit(session, drop, key=("leaderboard", key))
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
    done = [0]
    stop = threading.Event()  # this run's own: the thread cannot be cancelled, only told

    def on_progress(windows_done: int, total: int) -> None:
        done[0] = windows_done
        if progress is not None:
            progress(windows_done, total)
        if stop.is_set() or (cancel is not None and cancel.is_set()):
            raise BacktestCancelled

    reporter = asyncio.create_task(_report_progress(database, backtest_id, done))
    steps = Horizon(row.horizon).steps(Timeframe(row.timeframe)) or 1
    error: str | None = None
    try:
        async with asyncio.timeout(deadline_s):
            result = await asyncio.to_thread(_compute, series, row, steps, on_progress)
    except BacktestCancelled:
        error = "cancelled: the service stopped"
    except TimeoutError:
        stop.set()
        error = f"stopped: it ran longer than {deadline_s:g} s"
    except ValueError as invalid:  # the series changed since the request was accepted
        error = str(invalid)
    except asyncio.CancelledError:
        stop.set()
        await _release(database, backtest_id)
        raise
    finally:
        reporter.cancel()
    if error is not None:
        await _finish(database, cache, row, coin.symbol, error=error)
        return "failed"
    summary = summarize(result, series, Horizon(row.horizon))
    await _finish(database, cache, row, coin.symbol, result=summary)
    return "succeeded"


class BacktestRunner:
    """Sends accepted backtests to the workers' queue, or runs them here in the background."""

    def __init__(
        self, database: Database, cache: CacheManager, queue: JobQueue | None = None
    ) -> None:
        self._database = database
        self._cache = cache
        self._queue = queue  # the workers' queue; None: run everything in this process
        self._tasks: set[asyncio.Task[None]] = set()
        self._cancel = threading.Event()
        # Finished backtests by outcome, for the metrics endpoint.
        self.outcomes: Counter[str] = Counter()

    @property
    def running(self) -> int:
        return len(self._tasks)

    async def dispatch(self, backtest_id: str) -> None:
        """To the workers when there are some; here when not, or when their queue is away
        (the backtest is accepted already: it runs somewhere)."""
        if self._queue is not None:
            try:
                await self._queue.enqueue(
                    JOB_NAME, {"backtest_id": backtest_id}, job_id=job_id(backtest_id)
                )
                return
            except ServiceUnavailable:
                logger.warning("job queue unavailable: backtest %s runs here", backtest_id)
        self.submit(backtest_id)

    def submit(self, backtest_id: str) -> None:
        """Run it in this process, in the background."""
        task = asyncio.create_task(self._run(backtest_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, backtest_id: str) -> None:
        try:
            await execute(self._database, self._cache, backtest_id, cancel=self._cancel)
            self.outcomes["finished"] += 1
        except Exception:  # logged, not raised: nobody awaits a background task
            self.outcomes["crashed"] += 1
            logger.exception("backtest %s failed", backtest_id)
            async with self._database.unit_of_work() as session:
                await backtests.finish(
                    session, backtest_id, datetime.now(UTC), error="internal error"
                )

    async def wait(self) -> None:
        """Until every submitted backtest has finished (tests, the CLI)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Stop running backtests between windows; they are recorded as failed."""
        self._cancel.set()
        await self.wait()

    async def fail_abandoned(self) -> int:
        now = datetime.now(UTC)
        async with self._database.unit_of_work() as session:
            return await backtests.fail_abandoned(
                session, now, now - ABANDONED_AFTER, "abandoned: the process running it stopped"
            )


# ---------------------------------------------------------------- leaderboard


async def leaderboard(
    session: AsyncSession, cache: CacheManager, symbol: str, horizon: Horizon
) -> Leaderboard:
    key = leaderboard_key(symbol, horizon.value)
    cached = await cache.get(key)
    if cached is not None:
        return Leaderboard.model_validate(cached)
    coin = await coins.get_coin(session, cache, symbol)
    row = await backtests.latest_succeeded(session, coin.id, horizon.value)
    if row is None or row.result is None:
        raise NotFoundError(
            f"no finished backtest for {coin.symbol} at {horizon.value}; "
            "start one with POST /api/v1/backtests"
        )
    result = row.result
    origins = result.get("origins") or [None]
    board = Leaderboard(
        symbol=coin.symbol,
        horizon=horizon,
        backtest_id=row.id,
        finished_at=row.finished_at,
        windows=row.windows,
        first_origin=origins[0],
        last_origin=origins[-1],
        champion=result.get("champion", BASELINE),
        rows=result.get("leaderboard", []),
        calibration={
            name: model.get("calibration", []) for name, model in result["models"].items()
        },
    )
    await cache.set(key, board.model_dump(mode="json"), CacheTTL.PREDICTION)
    return board
