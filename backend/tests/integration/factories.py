"""Small factories for test rows; each returns a flushed ORM object."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.market import Horizon
from app.models import Cryptocurrency, MarketData, Prediction

_sequence = count(1)
T0 = datetime(2024, 1, 1, tzinfo=UTC)


async def make_coin(session: AsyncSession, **fields: Any) -> Cryptocurrency:
    n = next(_sequence)
    values: dict[str, Any] = {"symbol": f"T{n}", "name": f"Test coin {n}"}
    values.update(fields)
    coin = Cryptocurrency(**values)
    session.add(coin)
    await session.flush()
    return coin


async def make_candle(session: AsyncSession, coin: Cryptocurrency, **fields: Any) -> MarketData:
    values: dict[str, Any] = {
        "cryptocurrency_id": coin.id,
        "timestamp": T0,
        "open_price": 100.0,
        "high_price": 110.0,
        "low_price": 90.0,
        "close_price": 105.0,
        "volume": 12.5,
        "data_source": "test",
    }
    values.update(fields)
    candle = MarketData(**values)
    session.add(candle)
    await session.flush()
    return candle


async def make_prediction(
    session: AsyncSession, coin: Cryptocurrency, *, horizon: str | None = None, **fields: Any
) -> Prediction:
    """A forecast; ``horizon`` keeps the target and moves the origin back by that much (the
    database derives the stored horizon from the two timestamps)."""
    values: dict[str, Any] = {
        "cryptocurrency_id": coin.id,
        "prediction_timestamp": T0,
        "target_timestamp": T0 + timedelta(hours=1),
        "predicted_price": 101.0,
        "confidence_score": 0.5,
        "model_name": "random_walk",
        "model_version": "1",
        "features_used": {"inputs": ["close"]},
    }
    values.update(fields)
    if horizon is not None:
        values["prediction_timestamp"] = values["target_timestamp"] - Horizon(horizon).delta
    prediction = Prediction(**values)
    session.add(prediction)
    await session.flush()
    return prediction


async def run_queued_jobs(settings: Any, database: Any, cache: Any) -> None:
    """Real arq Workers, as `cryptopredict worker --burst` builds them: they run what is
    queued in Redis on both queues, then return.

    With the tests' database and cache, and without the cron jobs. One queue, and one job,
    at a time: the tests' database is one session, which allows no concurrent use.
    """
    from app.jobs.queues import QUEUES
    from app.jobs.tasks import JobContext
    from app.jobs.worker_process import WorkerProcess

    job = JobContext(database, cache, settings)
    for queue in QUEUES:
        workers = WorkerProcess(
            settings, [queue], job, burst=True, cron_jobs=[], poll_delay=0.05, max_jobs=1
        )
        await workers.run()
