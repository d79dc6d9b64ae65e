"""Forecasts: run models, read the ledger, score it; backtests and the leaderboard."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, status
from pydantic import BeforeValidator

from app.api.candle_query import stored_era
from app.api.deps import (
    API_RESPONSES,
    AUTH_RESPONSES,
    BODY_RESPONSES,
    TOO_LARGE,
    CacheDep,
    DatabaseDep,
    Forecasting,
    JsonBody,
    SessionDep,
    WriteAccess,
)
from app.database import after_commit
from app.errors import invalid_field
from app.forecasting import BASELINE, DEFAULT_MODELS, get_model, model_names
from app.jobs.backtest_runner import BacktestRunner
from app.market import Horizon
from app.schemas.predictions import (
    BacktestOut,
    BacktestRequest,
    LatestPredictions,
    Leaderboard,
    ModelInfo,
    PredictionPage,
    PredictionRequest,
    PredictionRun,
    ScoreReport,
)
from app.services import backtests, leaderboard, predictions, scoring
from app.services.backtests import BacktestBudget
from app.services.predictions import PredictionFilter

router = APIRouter(prefix="/api/v1", tags=["predictions"], responses=API_RESPONSES)

_ISO_DATE_TIME = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}")


def _iso_only(value: object) -> object:
    # Pydantic would also read "0.5" or "1700000000" as seconds since the epoch.
    if isinstance(value, str) and not _ISO_DATE_TIME.match(value):
        raise ValueError("must be an ISO 8601 date-time")
    return value


IsoDateTime = Annotated[datetime, BeforeValidator(_iso_only)]
SymbolQuery = Annotated[
    str, Query(pattern=r"^[A-Za-z0-9]{1,10}$", description="Trading symbol, any case.")
]
PROBLEMS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No coin (or backtest) with this identifier."},
    422: {"description": "A parameter or field is invalid; `errors` names it."},
}
# Requests the schema allows but a coin's stored candles cannot serve.
CANNOT_SERVE: dict[int | str, dict[str, Any]] = {
    409: {
        "description": "The coin's stored candles cannot serve the request: none yet, a "
        "horizon finer than their timeframe, or (backtests) too short a history for the "
        "windows asked for; `errors` names the field."
    },
}


@router.get("/models", response_model=list[ModelInfo], tags=["models"])
async def list_models() -> list[ModelInfo]:
    """Every registered forecasting model; `default` ones run when a request names none."""
    infos = []
    for name in model_names():
        model = get_model(name)
        infos.append(
            ModelInfo(
                name=name,
                code_version=model.code_version,
                features=list(model.feature_names),
                default=name in DEFAULT_MODELS,
                baseline=name == BASELINE,
            )
        )
    return infos


@router.post(
    "/predictions",
    response_model=PredictionRun,
    responses={**PROBLEMS, **CANNOT_SERVE, **AUTH_RESPONSES, **BODY_RESPONSES},
    dependencies=[WriteAccess, JsonBody, Forecasting],
)
async def create_predictions(
    body: PredictionRequest, request: Request, database: DatabaseDep, cache: CacheDep
) -> PredictionRun:
    """Forecast from each coin's newest closed candle; one row per model, coin, horizon and
    target time (a re-run replaces unscored rows, never scored ones)."""
    # The app's worker processes, or (FORECAST_PROCESSES=0) a thread of this process.
    fit = request.app.state.fits or predictions.fit_in_thread
    return await predictions.make_predictions(database, cache, body, fit)


@router.get("/predictions", response_model=PredictionPage, responses=PROBLEMS)
async def list_predictions(
    session: SessionDep,
    cache: CacheDep,
    symbol: Annotated[
        str | None, Query(pattern=r"^[A-Za-z0-9]{1,10}$", description="Only this coin.")
    ] = None,
    model: Annotated[
        str | None, Query(pattern=r"^[a-z][a-z0-9_]{0,99}$", description="Only this model.")
    ] = None,
    horizon: Annotated[Horizon | None, Query(description="Only this horizon.")] = None,
    target_from: Annotated[
        IsoDateTime | None, Query(description="Targets at or after this time (ISO 8601).")
    ] = None,
    target_to: Annotated[
        IsoDateTime | None, Query(description="Targets before this time (ISO 8601).")
    ] = None,
    status_: Annotated[
        Literal["pending", "evaluated"] | None,
        Query(alias="status", description="Only scored (`evaluated`) or unscored ones."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> PredictionPage:
    """The ledger, newest target first."""
    for name, moment in (("query.target_from", target_from), ("query.target_to", target_to)):
        if moment is not None and moment.tzinfo is None:
            raise invalid_field(name, "needs a time zone (end with Z or +00:00)")
    where = PredictionFilter(
        model_name=model,
        horizon=horizon.value if horizon else None,
        # In UTC and clamped to years no forecast is near: 0001-01-01T00:00+05:00 has no UTC.
        target_from=stored_era(target_from),
        target_to=stored_era(target_to),
        evaluated=None if status_ is None else status_ == "evaluated",
    )
    return await predictions.list_predictions(
        session, cache, symbol=symbol, where=where, limit=limit, offset=offset
    )


@router.get("/predictions/latest", response_model=LatestPredictions, responses=PROBLEMS)
async def latest_predictions(
    symbol: SymbolQuery, session: SessionDep, cache: CacheDep
) -> LatestPredictions:
    """Each model's newest forecasts per horizon, and the champion per horizon."""
    return await predictions.latest(session, cache, symbol)


@router.post(
    "/predictions/score",
    response_model=ScoreReport,
    responses={**AUTH_RESPONSES, **TOO_LARGE},
    dependencies=[WriteAccess],
)
async def score_predictions(session: SessionDep, cache: CacheDep) -> ScoreReport:
    """Fill actual price and error for every forecast whose target candle is stored."""
    return await scoring.score_due(session, cache)


@router.post(
    "/backtests",
    response_model=BacktestOut,
    status_code=status.HTTP_202_ACCEPTED,
    responses={**PROBLEMS, **CANNOT_SERVE, **AUTH_RESPONSES, **BODY_RESPONSES},
    tags=["backtests"],
    dependencies=[WriteAccess, JsonBody],
)
async def start_backtest(
    body: BacktestRequest, request: Request, session: SessionDep, cache: CacheDep
) -> BacktestOut:
    """Accept a walk-forward backtest; it runs in the background. Poll its `id`."""
    principal = request.state.principal  # set by WriteAccess
    budget: BacktestBudget = request.app.state.backtest_budget
    accepted = await backtests.start(
        session, cache, body, requested_by=principal.prefix, budget=budget
    )
    runner: BacktestRunner = request.app.state.backtests

    async def dispatch() -> None:  # once committed: the run reads the row in its own session
        await runner.dispatch(accepted.id)

    after_commit(session, dispatch)
    return accepted


@router.get(
    "/backtests/{backtest_id}", response_model=BacktestOut, responses=PROBLEMS, tags=["backtests"]
)
async def get_backtest(
    backtest_id: Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")], session: SessionDep
) -> BacktestOut:
    return await backtests.get(session, backtest_id)


@router.get("/leaderboard", response_model=Leaderboard, responses=PROBLEMS, tags=["backtests"])
async def get_leaderboard(
    symbol: SymbolQuery,
    session: SessionDep,
    cache: CacheDep,
    horizon: Annotated[Horizon, Query(description="Forecast horizon.")] = Horizon.H24,
) -> Leaderboard:
    """Models ranked by MAE relative to the random walk in the latest finished backtest."""
    return await leaderboard.latest(session, cache, symbol, horizon)
