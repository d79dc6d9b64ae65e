"""Pure forecasting library: models, walk-forward backtest, metrics and confidence scores.

Depends only on numpy, scipy, statsforecast and LightGBM, never on the rest of the application,
so it can be used (and published) on its own. Importing the package registers every model::

    from app.forecasting import BacktestConfig, get_model, walk_forward

    forecast = get_model("random_walk").fit(closes).predict(24)
    result = walk_forward(closes, DEFAULT_MODELS, BacktestConfig(horizon=24, windows=100, step=24))

Models work on log prices; forecasts are log-normal (see :mod:`app.forecasting.base`), and the
confidence score is defined in :mod:`app.forecasting.confidence`.
"""

from __future__ import annotations

from app.forecasting import models as models
from app.forecasting.backtest import BacktestConfig, BacktestResult, ModelResult, walk_forward
from app.forecasting.base import Forecast, Forecaster, forecast_from_log
from app.forecasting.confidence import (
    CalibrationBucket,
    calibration_table,
    fit_hit_scale,
    fit_sigma_scale,
    hit_probability,
    is_hit,
)
from app.forecasting.features import lagged_return_features
from app.forecasting.metrics import (
    DMResult,
    coverage,
    diebold_mariano,
    directional_accuracy,
    mae,
    mape,
    mase,
    naive_scale,
    relative_mae,
    rmse,
    smape,
    up_share,
)
from app.forecasting.registry import (
    BASELINE,
    DEFAULT_MODELS,
    UnknownModel,
    get_model,
    model_names,
    register,
)

__all__ = [
    "BASELINE",
    "DEFAULT_MODELS",
    "BacktestConfig",
    "BacktestResult",
    "CalibrationBucket",
    "DMResult",
    "Forecast",
    "Forecaster",
    "ModelResult",
    "UnknownModel",
    "calibration_table",
    "coverage",
    "diebold_mariano",
    "directional_accuracy",
    "fit_hit_scale",
    "fit_sigma_scale",
    "forecast_from_log",
    "get_model",
    "hit_probability",
    "is_hit",
    "lagged_return_features",
    "mae",
    "mape",
    "mase",
    "model_names",
    "naive_scale",
    "register",
    "relative_mae",
    "rmse",
    "smape",
    "up_share",
    "walk_forward",
]
