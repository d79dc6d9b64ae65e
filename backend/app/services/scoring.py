"""Scoring: fill the actual price and error of every forecast whose target has passed.

Idempotent and safe to run at any time or concurrently: a forecast is scored once (the
update only touches rows still unscored), and one whose target candle is missing simply
waits for the next run.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.cache import CacheManager
from app.models import Prediction
from app.repositories import cryptocurrencies, market_data, predictions
from app.repositories.predictions import Outcome
from app.schemas.predictions import ScoreReport
from app.services.predictions import invalidate_latest

PAGE = 2000


def absolute_percentage_error(predicted: float, actual: float) -> float:
    """100 * |predicted - actual| / actual: the `error` column's definition."""
    return 100.0 * abs(predicted - actual) / actual


async def _outcomes(session: AsyncSession, coin_id: int, due: list[Prediction]) -> list[Outcome]:
    """Actual = close of the stored candle that ends exactly at the target time."""
    base = await market_data.base_timeframe(session, coin_id)
    if base is None:
        return []
    closes = await market_data.closes_at(
        session, coin_id, [p.target_timestamp - base.delta for p in due]
    )
    outcomes = []
    for prediction in due:
        actual = closes.get(prediction.target_timestamp - base.delta)
        if actual is not None and actual > 0:
            error = absolute_percentage_error(prediction.predicted_price, actual)
            outcomes.append(Outcome(prediction.id, actual, error))
    return outcomes


async def score_due(
    session: AsyncSession, cache: CacheManager, now: datetime | None = None
) -> ScoreReport:
    now = now or datetime.now(UTC)
    scored = waiting = 0
    touched: set[int] = set()
    after: tuple[datetime, int] | None = None
    while due := await predictions.due_for_scoring(session, now, limit=PAGE, after=after):
        after = (due[-1].target_timestamp, due[-1].id)
        by_coin: dict[int, list[Prediction]] = defaultdict(list)
        for prediction in due:
            by_coin[prediction.cryptocurrency_id].append(prediction)
        for coin_id, group in by_coin.items():
            outcomes = await _outcomes(session, coin_id, group)
            done = await predictions.record_outcomes(session, outcomes, now)
            scored += done
            waiting += len(group) - len(outcomes)
            if done:
                touched.add(coin_id)
    for symbol in (await cryptocurrencies.symbols_by_id(session, sorted(touched))).values():
        invalidate_latest(session, cache, symbol)
    return ScoreReport(scored=scored, waiting=waiting)
