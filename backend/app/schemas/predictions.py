"""Request and response models for predictions, backtests and the leaderboard."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from app.forecasting.registry import model_names
from app.market import Horizon, Timeframe
from app.schemas.coins import Symbol

MODEL_NAMES = model_names()  # importing app.forecasting registered every model


def _registered(name: str) -> str:
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown model; available: {', '.join(MODEL_NAMES)}")
    return name


ModelName = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,99}$"),
    AfterValidator(_registered),
    Field(
        description="A registered model name (see `GET /api/v1/models`).",
        examples=["random_walk"],
        json_schema_extra={"enum": MODEL_NAMES},
    ),
]

CONFIDENCE_DEFINITION = (
    "The model's probability that the actual price at `target_timestamp` lands within "
    "±`confidence_tolerance` (a fraction: 0.02 is 2%) of `predicted_price`. It comes from "
    "the model's log-normal predictive distribution (median = predicted price), whose "
    "spread is rescaled by the factor the latest walk-forward backtest of this model, coin "
    "and horizon measured on its past errors (1.0 when no backtest exists yet). "
    "`GET /api/v1/leaderboard` reports how well these scores were calibrated."
)
ERROR_DEFINITION = (
    "Absolute percentage error once scored: 100 * |predicted - actual| / actual. Null until "
    "the candle closing at `target_timestamp` is stored."
)


class PredictionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    symbols: list[Symbol] = Field(min_length=1, max_length=20, description="Coins to forecast.")
    horizons: list[Horizon] = Field(
        default=[Horizon.H24], min_length=1, max_length=4, description="How far ahead."
    )
    models: list[ModelName] | None = Field(
        default=None,
        max_length=10,
        description="Models to run; the default set when omitted (see `GET /api/v1/models`).",
    )


class PredictionOut(BaseModel):
    id: int
    symbol: str
    model_name: str
    model_version: str = Field(
        description="`<code version>.<last training candle, YYYYmmddHHMM>.<observations>`."
    )
    horizon: Horizon
    prediction_timestamp: datetime = Field(
        description="The forecast origin: close time of the last candle the model saw, UTC."
    )
    target_timestamp: datetime = Field(description="The time the forecast is for, UTC.")
    predicted_price: float = Field(description="Median of the predictive distribution, USD.")
    lower_80: float | None
    upper_80: float | None
    lower_95: float | None
    upper_95: float | None
    confidence_score: float | None = Field(description=CONFIDENCE_DEFINITION)
    confidence_tolerance: float | None = Field(
        description="The tolerance (a fraction of the predicted price) the confidence refers to."
    )
    features_used: dict[str, Any] | list[Any] | None = Field(
        description="The inputs: the series, its window, the model's features, calibration."
    )
    actual_price: float | None = Field(description="Close at `target_timestamp`, once stored.")
    error: float | None = Field(description=ERROR_DEFINITION)
    evaluated_at: datetime | None
    status: Literal["pending", "evaluated"]


class SkippedForecast(BaseModel):
    symbol: str
    horizon: Horizon
    model: str
    reason: str = Field(description="Why the model could not forecast this series.")


class PredictionRun(BaseModel):
    predictions: list[PredictionOut]
    skipped: list[SkippedForecast]
    stored: int = Field(description="Rows inserted or replaced (scored rows are never replaced).")
    champion: dict[str, dict[str, str]] = Field(
        description="Per symbol and horizon, the model the leaderboard recommends."
    )


class PredictionPage(BaseModel):
    items: list[PredictionOut]
    total: int
    limit: int
    offset: int


class LatestPredictions(BaseModel):
    symbol: str
    champion: dict[str, str] = Field(
        description="Per horizon, the random walk unless a model beat it significantly."
    )
    predictions: list[PredictionOut] = Field(
        description="Per model and horizon, the forecasts from its newest origin."
    )


class ScoreReport(BaseModel):
    scored: int = Field(description="Forecasts whose actual price and error were filled.")
    waiting: int = Field(description="Due forecasts whose target candle is not stored yet.")


class ModelInfo(BaseModel):
    name: str
    code_version: str
    features: list[str]
    default: bool
    baseline: bool


class BacktestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    symbol: Symbol
    horizon: Horizon = Horizon.H24
    models: list[ModelName] | None = Field(
        default=None,
        max_length=10,
        description="Default set when omitted; always scored "
        "against the random walk on the same windows.",
    )
    windows: int = Field(default=30, ge=5, le=500, description="Forecast origins.")
    step: int | None = Field(
        default=None,
        ge=1,
        le=10_000,
        description="Candles between origins; the horizon's length when omitted.",
    )


class CalibrationBucketOut(BaseModel):
    lower: float
    upper: float
    count: int
    mean_confidence: float | None
    hit_rate: float | None


class LeaderboardRow(BaseModel):
    """One model's walk-forward scores; a metric is null where it is undefined."""

    rank: int
    model: str
    code_version: str
    relative_mae: float | None = Field(
        description="MAE / the random walk's MAE on the same windows."
    )
    mae: float | None
    rmse: float | None
    mape: float | None
    smape: float | None
    mase: float | None = Field(
        description="Scaled by the naive h-step change over a trailing window."
    )
    directional_accuracy: float | None
    up_share: float | None = Field(
        description="Share of windows where the price rose: the bar directional accuracy "
        "must clear."
    )
    coverage_80: float | None
    coverage_95: float | None
    dm_statistic: float | None = Field(
        description="Diebold-Mariano vs the random walk; < 0 is better."
    )
    dm_p_value: float | None
    fit_failures: int = 0


class BacktestOut(BaseModel):
    id: str
    symbol: str
    horizon: Horizon
    timeframe: Timeframe
    models: list[str]
    windows: int
    step: int
    status: Literal["pending", "running", "succeeded", "failed"]
    windows_done: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    result: dict[str, Any] | None = Field(
        description="Once succeeded: leaderboard, calibration and the windows' origins."
    )


class Leaderboard(BaseModel):
    symbol: str
    horizon: Horizon
    backtest_id: str
    finished_at: datetime | None
    windows: int
    first_origin: datetime | None
    last_origin: datetime | None
    champion: str
    rows: list[LeaderboardRow]
    calibration: dict[str, list[CalibrationBucketOut]] = Field(
        description="Per model: confidence scores (scale fitted on the first half of the "
        "windows) against the hit rate observed on the second half."
    )
