"""The vocabulary clients need before their first real request, from the definitions the
service itself uses: a client (the dashboard among them) copies none of it."""

from __future__ import annotations

from functools import cache

from fastapi import APIRouter

from app import __version__
from app.api.deps import API_RESPONSES
from app.forecasting import BASELINE, DEFAULT_MODELS, model_names
from app.market import BASE_TIMEFRAMES, QUERY_INTERVALS, Horizon, Timeframe
from app.schemas.meta import CandlePages, HorizonInfo, TimeframeInfo, Vocabulary
from app.services.market_data import CACHED_LIMITS, MAX_LIMIT

router = APIRouter(prefix="/api/v1", tags=["meta"], responses=API_RESPONSES)


def _horizon(horizon: Horizon) -> HorizonInfo:
    steps = {frame: horizon.steps(frame) for frame in BASE_TIMEFRAMES}
    return HorizonInfo(
        name=horizon,
        seconds=int(horizon.delta.total_seconds()),
        steps={frame: count for frame, count in steps.items() if count is not None},
    )


@cache
def vocabulary() -> Vocabulary:
    """Built once: models register when the forecasting package is imported."""
    return Vocabulary(
        version=__version__,
        timeframes=[
            TimeframeInfo(
                name=frame,
                seconds=frame.seconds,
                storable=frame in BASE_TIMEFRAMES,
                queryable=frame in QUERY_INTERVALS,
            )
            for frame in sorted(Timeframe, key=lambda frame: frame.seconds)
        ],
        horizons=[_horizon(h) for h in sorted(Horizon, key=lambda h: h.delta)],
        models=model_names(),
        default_models=list(DEFAULT_MODELS),
        baseline=BASELINE,
        candle_pages=CandlePages(cached_limits=sorted(CACHED_LIMITS), max_limit=MAX_LIMIT),
    )


@router.get("/meta", response_model=Vocabulary)
async def read_vocabulary() -> Vocabulary:
    """Timeframes, horizons and models as this service defines them, with candle page sizes."""
    return vocabulary()
