"""The leaderboard: the latest finished backtest's summary for a coin and horizon.

Predictions read their confidence calibration and champion from the same summary.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.cache import CacheManager, CacheTTL, cache_key
from app.database import after_commit
from app.errors import NotFound
from app.forecasting import BASELINE
from app.market import Horizon
from app.repositories import backtests
from app.schemas.predictions import Leaderboard
from app.services import coins


def _key(symbol: str, horizon: str) -> str:
    return cache_key(symbol.upper(), "leaderboard", horizon)


def invalidate(session: AsyncSession, cache: CacheManager, symbol: str, horizon: str) -> None:
    """Drop the cached leaderboard once the unit of work that replaced it has committed."""
    key = _key(symbol, horizon)

    async def drop() -> None:
        await cache.delete(key)

    after_commit(session, drop, key=("leaderboard", key))


async def latest(
    session: AsyncSession, cache: CacheManager, symbol: str, horizon: Horizon
) -> Leaderboard:
    key = _key(symbol, horizon.value)
    cached = await cache.get(key)
    if cached is not None:
        return Leaderboard.model_validate(cached)
    coin = await coins.get_coin(session, cache, symbol)
    row = await backtests.latest_succeeded(session, coin.id, horizon.value)
    if row is None or row.result is None:
        raise NotFound(
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
