"""Predictions: run models on the latest closed candles, store them, read the ledger back.

The CPU work (fitting) runs in a worker thread so the event loop keeps serving requests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from app.cache import CacheManager, CacheTTL, cache_key
from app.database import Database, after_commit
from app.errors import invalid_field
from app.forecasting import BASELINE, DEFAULT_MODELS, Forecaster, get_model, model_names
from app.forecasting.confidence import hit_probability
from app.market import Horizon
from app.models import Backtest, Prediction
from app.repositories import backtests, predictions
from app.repositories.predictions import PredictionFilter as PredictionFilter  # the api builds one
from app.schemas.coins import CoinOut
from app.schemas.predictions import (
    LatestPredictions,
    PredictionOut,
    PredictionPage,
    PredictionRequest,
    PredictionRun,
    SkippedForecast,
)
from app.services import coins
from app.services.price_series import PriceSeries, horizon_steps, load_series

# Every model fits on at most this many of the newest candles (about 83 days of hours).
TRAIN_CANDLES = 2000
# The band `confidence_score` refers to, per horizon: roughly one typical move of BTC, so
# the score says something (a 20% band around a 1-hour forecast would always be hit).
TOLERANCE = {Horizon.H1: 0.005, Horizon.H4: 0.01, Horizon.H24: 0.02, Horizon.D7: 0.05}
LEVELS = (80, 95)


def latest_key(symbol: str) -> str:
    return cache_key(symbol.upper(), "predictions", "latest")


def resolve_models(names: Sequence[str] | None, field_name: str = "body.models") -> list[str]:
    """The requested models (default set when none), each checked against the registry."""
    if names is None:
        return list(DEFAULT_MODELS)
    known = set(model_names())
    for index, name in enumerate(names):
        if name not in known:
            raise invalid_field(
                f"{field_name}[{index}]",
                f"unknown model; available: {', '.join(sorted(known))}",
            )
    return list(dict.fromkeys(names))


# ---------------------------------------------------------------- computing


@dataclass(frozen=True, slots=True)
class ModelForecast:
    model: str
    code_version: str
    features: tuple[str, ...]
    training_size: int
    predicted: float
    lower: dict[int, float]
    upper: dict[int, float]
    sigma: float  # log-price spread at the target step


@dataclass
class ForecastBatch:
    made: list[ModelForecast] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def _forecast_one(model: Forecaster, closes: np.ndarray, steps: int) -> ModelForecast:
    # Prices the ingest accepts (any finite number) can be wild enough that a band or a point
    # overflows exp(): that is a forecast the model cannot make, not an infinite price.
    with np.errstate(over="raise"):
        forecast = model.fit(closes).predict(steps, LEVELS)
    ends = [forecast.mean[-1], forecast.sigma[-1]]
    ends += [band[level][-1] for band in (forecast.lower, forecast.upper) for level in LEVELS]
    if not np.all(np.isfinite(ends)):
        raise ValueError("the forecast is not finite for this series")
    return ModelForecast(
        model=model.name,
        code_version=model.code_version,
        features=tuple(model.feature_names),
        training_size=model.training_size,
        predicted=float(forecast.mean[-1]),
        lower={level: float(forecast.lower[level][-1]) for level in LEVELS},
        upper={level: float(forecast.upper[level][-1]) for level in LEVELS},
        sigma=float(forecast.sigma[-1]),
    )


def forecast_models(closes: np.ndarray, steps: int, models: Sequence[str]) -> ForecastBatch:
    """Fit each model on ``closes`` and forecast ``steps`` ahead; failures are collected.

    A model that cannot fit this series (too short, degenerate) must not stop the others.
    """
    batch = ForecastBatch()
    for name in models:
        model = get_model(name, max_train=TRAIN_CANDLES)
        try:
            batch.made.append(_forecast_one(model, closes, steps))
        except (ValueError, ArithmeticError, np.linalg.LinAlgError) as error:
            batch.failed[name] = str(error) or type(error).__name__
    return batch


# ---------------------------------------------------------------- storing


def _version(made: ModelForecast, series: PriceSeries) -> str:
    last_open = series.opens[-1]
    return f"{made.code_version}.{last_open:%Y%m%d%H%M}.{made.training_size}"


def _features(
    made: ModelForecast,
    series: PriceSeries,
    tolerance: float,
    scale: float,
    backtest_id: str | None,
) -> dict[str, Any]:
    first = series.opens[-made.training_size]
    return {
        "inputs": list(made.features),
        "series": {
            "field": "close",
            "timeframe": series.timeframe.value,
            "first_open": first.isoformat(),
            "last_open": series.opens[-1].isoformat(),
            "observations": made.training_size,
            "bridged": series.filled,
        },
        "confidence": {
            "tolerance": tolerance,
            "sigma": made.sigma,
            "sigma_scale": scale,
            "calibrated_by_backtest": backtest_id,
        },
    }


def _row(
    coin: CoinOut,
    horizon: Horizon,
    series: PriceSeries,
    made: ModelForecast,
    calibration: Backtest | None,
) -> dict[str, Any]:
    scale = sigma_scale(calibration, made.model)
    tolerance = TOLERANCE[horizon]
    confidence = float(hit_probability(made.sigma, tolerance, scale))
    return {
        "cryptocurrency_id": coin.id,
        "prediction_timestamp": series.origin,
        "target_timestamp": series.origin + horizon.delta,
        "predicted_price": made.predicted,
        "confidence_score": min(max(confidence, 0.0), 1.0),
        "model_name": made.model,
        "model_version": _version(made, series),
        "features_used": _features(
            made, series, tolerance, scale, calibration.id if calibration else None
        ),
        "lower_80": made.lower[80],
        "upper_80": made.upper[80],
        "lower_95": made.lower[95],
        "upper_95": made.upper[95],
        "created_at": datetime.now(UTC),
    }


def sigma_scale(calibration: Backtest | None, model: str) -> float:
    """The spread correction a finished backtest measured for ``model``, else 1."""
    if calibration is None or calibration.result is None:
        return 1.0
    entry = calibration.result.get("models", {}).get(model, {})
    scale = entry.get("sigma_scale") if isinstance(entry, dict) else None
    return float(scale) if isinstance(scale, int | float) else 1.0


def champion_of(calibration: Backtest | None) -> str:
    if calibration is None or calibration.result is None:
        return BASELINE
    return str(calibration.result.get("champion", BASELINE))


def to_out(row: Prediction, symbol: str) -> PredictionOut:
    features = row.features_used if isinstance(row.features_used, dict) else {}
    confidence = features.get("confidence", {})
    tolerance = confidence.get("tolerance") if isinstance(confidence, dict) else None
    return PredictionOut(
        id=row.id,
        symbol=symbol,
        model_name=row.model_name,
        model_version=row.model_version,
        horizon=Horizon(row.horizon),
        prediction_timestamp=row.prediction_timestamp,
        target_timestamp=row.target_timestamp,
        predicted_price=row.predicted_price,
        lower_80=row.lower_80,
        upper_80=row.upper_80,
        lower_95=row.lower_95,
        upper_95=row.upper_95,
        confidence_score=row.confidence_score,
        confidence_tolerance=tolerance,
        features_used=row.features_used,
        actual_price=row.actual_price,
        error=row.error,
        evaluated_at=row.evaluated_at,
        status="evaluated" if row.actual_price is not None else "pending",
    )


@dataclass(frozen=True, slots=True)
class _Target:
    horizon: Horizon
    steps: int
    calibration: Backtest | None


@dataclass(frozen=True, slots=True)
class _CoinPlan:
    """Everything a coin's forecasts need from the database, read before any fitting."""

    coin: CoinOut
    series: PriceSeries
    targets: list[_Target]


@dataclass
class _CoinRun:
    rows: list[dict[str, Any]] = field(default_factory=list)
    champion: dict[str, str] = field(default_factory=dict)
    skipped: list[SkippedForecast] = field(default_factory=list)


async def _plan(
    session: AsyncSession,
    cache: CacheManager,
    symbols: Sequence[str],
    horizons: Sequence[Horizon],
    now: datetime,
) -> list[_CoinPlan]:
    # Every symbol is looked up before any series is read, so an unknown one late in the
    # list is a 404 at once, not after the coins before it were forecast.
    found = [await coins.get_coin(session, cache, symbol) for symbol in symbols]
    plans = []
    for coin in found:
        series = await load_series(session, cache, coin, candles=TRAIN_CANDLES, now=now)
        targets = [
            _Target(
                horizon,
                horizon_steps(horizon, series, coin.symbol, "body.horizons"),
                await backtests.latest_succeeded(session, coin.id, horizon.value),
            )
            for horizon in horizons
        ]
        plans.append(_CoinPlan(coin, series, targets))
    return plans


# Runs forecast_models somewhere: a thread (below) or a process (services.fitting).
Fit = Callable[[np.ndarray, int, Sequence[str]], Awaitable[ForecastBatch]]


async def fit_in_thread(closes: np.ndarray, steps: int, models: Sequence[str]) -> ForecastBatch:
    return await asyncio.to_thread(forecast_models, closes, steps, models)


async def _run_coin(plan: _CoinPlan, models: Sequence[str], fit: Fit) -> _CoinRun:
    run = _CoinRun()
    coin, series = plan.coin, plan.series
    for target in plan.targets:
        run.champion[target.horizon.value] = champion_of(target.calibration)
        batch = await fit(series.closes, target.steps, models)
        run.rows += [
            _row(coin, target.horizon, series, made, target.calibration) for made in batch.made
        ]
        run.skipped += [
            SkippedForecast(symbol=coin.symbol, horizon=target.horizon, model=name, reason=reason)
            for name, reason in batch.failed.items()
        ]
    return run


async def make_predictions(
    database: Database, cache: CacheManager, request: PredictionRequest, fit: Fit = fit_in_thread
) -> PredictionRun:
    """Read what the forecasts need, fit with no connection held, then store in one short
    transaction: fitting takes seconds, and a pooled connection held that long is one every
    other request waits for (32 concurrent forecasts once held the whole pool)."""
    models = resolve_models(request.models)
    horizons = list(dict.fromkeys(request.horizons))
    async with database.unit_of_work() as session:
        symbols = list(dict.fromkeys(request.symbols))
        plans = await _plan(session, cache, symbols, horizons, datetime.now(UTC))
    runs = [await _run_coin(plan, models, fit) for plan in plans]
    result = PredictionRun(predictions=[], stored=0, champion={}, skipped=[])
    async with database.unit_of_work() as session:
        for plan, run in zip(plans, runs, strict=True):
            symbol = plan.coin.symbol
            result.stored += await predictions.upsert(session, run.rows)
            stored = await predictions.by_keys(session, run.rows)
            result.predictions += [to_out(row, symbol) for row in stored]
            result.champion[symbol] = run.champion
            result.skipped += run.skipped
            invalidate_latest(session, cache, symbol)
    return result


def invalidate_latest(session: AsyncSession, cache: CacheManager, symbol: str) -> None:
    async def drop() -> None:
        await cache.delete(latest_key(symbol))

    after_commit(session, drop, key=("predictions-latest", symbol.upper()))


# ---------------------------------------------------------------- reading


async def list_predictions(
    session: AsyncSession,
    cache: CacheManager,
    *,
    symbol: str | None,
    where: PredictionFilter,
    limit: int,
    offset: int,
) -> PredictionPage:
    if symbol is not None:
        coin = await coins.get_coin(session, cache, symbol)
        where = PredictionFilter(**{**_fields(where), "coin_id": coin.id})
    rows, total = await predictions.page(session, where, limit=limit, offset=offset)
    return PredictionPage(
        items=[to_out(row, sym) for row, sym in rows], total=total, limit=limit, offset=offset
    )


def _fields(where: PredictionFilter) -> dict[str, Any]:
    return {name: getattr(where, name) for name in where.__slots__}


async def latest(session: AsyncSession, cache: CacheManager, symbol: str) -> LatestPredictions:
    """Each model's newest forecasts per horizon, and the champion per horizon (30 min tier)."""
    cached = await cache.get(latest_key(symbol))
    if cached is not None:
        return LatestPredictions.model_validate(cached)
    coin = await coins.get_coin(session, cache, symbol)
    rows = await predictions.latest_per_model(session, coin.id)
    champion: dict[str, str] = {}
    for horizon in sorted({row.horizon for row in rows}):
        champion[horizon] = champion_of(await backtests.latest_succeeded(session, coin.id, horizon))
    body = LatestPredictions(
        symbol=coin.symbol,
        champion=champion,
        predictions=[to_out(row, coin.symbol) for row in rows],
    )
    await cache.set(latest_key(symbol), body.model_dump(mode="json"), CacheTTL.PREDICTION)
    return body
