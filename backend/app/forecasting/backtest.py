"""Walk-forward backtest: score every model on forecasts it could really have made.

Rolling origin, expanding window. Forecast origins are spaced ``step`` apart and end so that the
last window's target is the last observation:

    o_i = n - 1 - horizon - (windows - 1 - i) * step,   i = 0 .. windows - 1

At each origin every model is fitted on ``y[: o + 1]`` only — a copy-free slice that physically
ends at the origin, so no model can see the future (each model's own ``max_train`` trailing cap
then applies) — and predicts ``horizon`` steps. Only the last step is scored: a prediction
targets one time, ``y[o + horizon]``.

The baseline (:data:`~app.forecasting.registry.BASELINE`, the random walk) always runs, and every
model is scored on exactly the baseline's windows. If a model raises while fitting or predicting
in a window, the backtest goes on: the window counts in the model's ``fit_failures`` and the
baseline's forecast stands in for it (so a model that fails often drifts towards a relative MAE of
1 rather than silently dropping its hardest windows); the leaderboard shows ``fit_failures``.

Scores relative to the baseline: relative MAE and the Diebold-Mariano test on absolute errors.
Windows ``step`` apart whose ``horizon``-step targets overlap have correlated errors; the DM test
accounts for that with ``ceil(horizon / step)`` as its h, the lag (in windows) beyond which two
windows share no steps — equal to ``horizon`` for the usual ``step = 1``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.forecasting import metrics
from app.forecasting.base import Forecaster, check_level, validate_prices
from app.forecasting.confidence import (
    CalibrationBucket,
    calibration_table,
    fit_hit_scale,
    hit_probability,
    is_hit,
)
from app.forecasting.registry import BASELINE, get_model


@dataclass(frozen=True)
class BacktestConfig:
    """How to backtest: which step ahead is scored, how many origins, how far apart."""

    horizon: int
    windows: int
    step: int
    levels: tuple[int, ...] = (80, 95)
    tolerance: float = 0.02
    mase_window: int = 720
    min_train: int = 200

    def __post_init__(self) -> None:
        for name in ("horizon", "windows", "step", "mase_window", "min_train"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if not self.levels:
            raise ValueError("levels must name at least one interval level")
        for level in self.levels:
            try:
                check_level(level)
            except ValueError as exc:
                raise ValueError(f"levels: {exc}") from None
        if not 0 < self.tolerance < 1:
            raise ValueError(f"tolerance must be strictly between 0 and 1, got {self.tolerance}")

    @property
    def dm_lag_horizon(self) -> int:
        """The DM test's h, in windows: errors of windows this far apart share no target steps."""
        return math.ceil(self.horizon / self.step)

    def required_points(self, min_history: int = 1) -> int:
        """Series length needed: the first origin must see max(min_train, min_history) points."""
        first_training = max(self.min_train, min_history, self.horizon + 1)
        return first_training + self.horizon + (self.windows - 1) * self.step


@dataclass(frozen=True, eq=False)
class ModelResult:
    """One model's forecasts in every window and their scores."""

    name: str
    code_version: str
    features: tuple[str, ...]
    predicted: np.ndarray
    lower: dict[int, np.ndarray]
    upper: dict[int, np.ndarray]
    sigma: np.ndarray
    metrics: dict[str, float]
    sigma_scale: float
    calibration: list[CalibrationBucket]
    fit_failures: int


@dataclass(frozen=True, eq=False)
class BacktestResult:
    """Forecast origins, actual outcomes, and every model's results on them."""

    config: BacktestConfig
    origins: np.ndarray
    origin_price: np.ndarray
    actual: np.ndarray
    models: dict[str, ModelResult]

    def leaderboard(self) -> list[dict[str, float | str]]:
        """One row per model, best (lowest relative MAE) first; the baseline has exactly 1.0."""
        rows = [self._leaderboard_row(result) for result in self.models.values()]
        return sorted(rows, key=_leaderboard_order)

    def champion(self, alpha: float = 0.05) -> str:
        """The model to serve: the baseline unless another is better *and* significantly so.

        A challenger qualifies with relative MAE < 1 and a DM statistic < 0 at p < ``alpha``;
        among those the lowest relative MAE wins.
        """
        qualified = [
            result
            for name, result in self.models.items()
            if name != BASELINE
            and result.metrics["relative_mae"] < 1
            and result.metrics["dm_statistic"] < 0
            and result.metrics["dm_p_value"] < alpha
        ]
        if not qualified:
            return BASELINE
        return min(qualified, key=lambda r: (r.metrics["relative_mae"], r.name)).name

    def _leaderboard_row(self, result: ModelResult) -> dict[str, float | str]:
        return {
            "model": result.name,
            "code_version": result.code_version,
            "relative_mae": result.metrics["relative_mae"],
            **result.metrics,
            "fit_failures": result.fit_failures,
        }


def forecast_origins(n: int, config: BacktestConfig) -> np.ndarray:
    """Index of the last observation each window's models may see, oldest first."""
    offsets = (config.windows - 1 - np.arange(config.windows)) * config.step
    return np.asarray(n - 1 - config.horizon - offsets, dtype=np.int64)


def walk_forward(
    y: np.ndarray,
    models: Sequence[str],
    config: BacktestConfig,
    *,
    progress: Callable[[int, int], None] | None = None,
    model_params: Mapping[str, Mapping[str, Any]] | None = None,
) -> BacktestResult:
    """Backtest ``models`` (registry names) on prices ``y``; see the module docstring."""
    params = model_params or {}
    names = [BASELINE, *(name for name in dict.fromkeys(models) if name != BASELINE)]
    # Build each model once up front: unknown names and bad params fail before any work is done.
    prototypes = {name: get_model(name, **params.get(name, {})) for name in names}
    min_history = max(model.required_history for model in prototypes.values())
    prices = validate_prices(y, 1)
    needed = config.required_points(min_history)
    if prices.shape[0] < needed:
        raise ValueError(
            f"walk_forward needs at least {needed} prices for {config.windows} windows of "
            f"horizon {config.horizon} every {config.step} steps with "
            f"{max(config.min_train, min_history)} training points; got {prices.shape[0]}"
        )
    origins = forecast_origins(prices.shape[0], config)
    collectors = {name: _Collector(config) for name in names}
    for i, origin in enumerate(origins):
        history = prices[: origin + 1]
        baseline = _last_step(_fresh(prototypes[BASELINE], params), history, config)
        collectors[BASELINE].record(i, baseline, failed=False)
        for name in names[1:]:
            try:
                forecast = _last_step(_fresh(prototypes[name], params), history, config)
            except Exception:  # any model bug or numerical failure: see the module docstring
                collectors[name].record(i, baseline, failed=True)
            else:
                collectors[name].record(i, forecast, failed=False)
        if progress is not None:
            progress(i + 1, config.windows)
    return _score(prices, origins, config, prototypes, collectors)


def _fresh(prototype: Forecaster, params: Mapping[str, Mapping[str, Any]]) -> Forecaster:
    """A new instance per window, so no state can leak from one origin into the next."""
    name = prototype.name
    return get_model(name, prototype.code_version, **params.get(name, {}))


@dataclass(frozen=True)
class _WindowForecast:
    """The scored (last) step of one model's forecast in one window."""

    predicted: float
    lower: dict[int, float]
    upper: dict[int, float]
    sigma: float


def _last_step(model: Forecaster, history: np.ndarray, config: BacktestConfig) -> _WindowForecast:
    forecast = model.fit(history).predict(config.horizon, config.levels)
    return _WindowForecast(
        predicted=float(forecast.mean[-1]),
        lower={level: float(bound[-1]) for level, bound in forecast.lower.items()},
        upper={level: float(bound[-1]) for level, bound in forecast.upper.items()},
        sigma=float(forecast.sigma[-1]),
    )


@dataclass
class _Collector:
    """Per-window forecasts of one model, filled in window by window."""

    config: BacktestConfig
    predicted: np.ndarray = field(init=False)
    lower: dict[int, np.ndarray] = field(init=False)
    upper: dict[int, np.ndarray] = field(init=False)
    sigma: np.ndarray = field(init=False)
    failures: int = 0

    def __post_init__(self) -> None:
        windows = self.config.windows
        self.predicted = np.empty(windows)
        self.sigma = np.empty(windows)
        self.lower = {level: np.empty(windows) for level in self.config.levels}
        self.upper = {level: np.empty(windows) for level in self.config.levels}

    def record(self, i: int, forecast: _WindowForecast, *, failed: bool) -> None:
        self.predicted[i] = forecast.predicted
        self.sigma[i] = forecast.sigma
        for level in self.config.levels:
            self.lower[level][i] = forecast.lower[level]
            self.upper[level][i] = forecast.upper[level]
        self.failures += int(failed)


def _score(
    prices: np.ndarray,
    origins: np.ndarray,
    config: BacktestConfig,
    prototypes: Mapping[str, Forecaster],
    collectors: Mapping[str, _Collector],
) -> BacktestResult:
    origin_price = prices[origins]
    actual = prices[origins + config.horizon]
    scales = np.array(
        [metrics.naive_scale(prices[: o + 1], config.horizon, config.mase_window) for o in origins]
    )
    baseline_errors = np.abs(actual - collectors[BASELINE].predicted)
    results = {
        name: ModelResult(
            name=name,
            code_version=prototypes[name].code_version,
            features=prototypes[name].feature_names,
            predicted=collected.predicted,
            lower=collected.lower,
            upper=collected.upper,
            sigma=collected.sigma,
            metrics=_model_metrics(
                collected, origin_price, actual, scales, baseline_errors, config
            ),
            sigma_scale=fit_hit_scale(
                np.log(actual / collected.predicted), collected.sigma, config.tolerance
            ),
            calibration=_honest_calibration(actual, collected, config.tolerance),
            fit_failures=collected.failures,
        )
        for name, collected in collectors.items()
    }
    return BacktestResult(config, origins, origin_price, actual, results)


def _model_metrics(
    collected: _Collector,
    origin_price: np.ndarray,
    actual: np.ndarray,
    scales: np.ndarray,
    baseline_errors: np.ndarray,
    config: BacktestConfig,
) -> dict[str, float]:
    predicted = collected.predicted
    errors = np.abs(actual - predicted)
    dm = _dm_against_baseline(errors, baseline_errors, config.dm_lag_horizon)
    # A flat stretch gives a zero naive scale; MASE is then undefined rather than infinite.
    mase = metrics.mase(actual, predicted, scales) if np.all(scales > 0) else math.nan
    scores = {
        "mae": metrics.mae(actual, predicted),
        "rmse": metrics.rmse(actual, predicted),
        "mape": metrics.mape(actual, predicted),
        "smape": metrics.smape(actual, predicted),
        "mase": mase,
        "relative_mae": metrics.relative_mae(errors, baseline_errors),
        "directional_accuracy": metrics.directional_accuracy(origin_price, actual, predicted),
        "up_share": metrics.up_share(origin_price, actual),
    }
    for level in config.levels:
        scores[f"coverage_{level}"] = metrics.coverage(
            actual, collected.lower[level], collected.upper[level]
        )
    scores["dm_statistic"] = dm.statistic
    scores["dm_p_value"] = dm.p_value
    return scores


def _dm_against_baseline(
    errors: np.ndarray, baseline_errors: np.ndarray, h: int
) -> metrics.DMResult:
    """The DM test, or NaN when a single window leaves nothing to estimate a variance from."""
    if errors.shape[0] >= 2 or np.array_equal(errors, baseline_errors):
        return metrics.diebold_mariano(errors, baseline_errors, h)
    return metrics.DMResult(math.nan, math.nan, float(np.mean(errors - baseline_errors)))


def _honest_calibration(
    actual: np.ndarray, collected: _Collector, tolerance: float
) -> list[CalibrationBucket]:
    """Calibration of the confidence score on data its scale was not fitted on.

    The sigma scale is fitted on the first (older) half of the windows; confidences and hits are
    computed on the second half only, as they would have been live.
    """
    half = actual.shape[0] // 2
    log_errors = np.log(actual / collected.predicted)
    scale = fit_hit_scale(log_errors[:half], collected.sigma[:half], tolerance)
    confidences = hit_probability(collected.sigma[half:], tolerance, scale)
    hits = is_hit(actual[half:], collected.predicted[half:], tolerance)
    return calibration_table(confidences, hits)


def _leaderboard_order(row: Mapping[str, float | str]) -> tuple[bool, float, bool, str]:
    relative = float(row["relative_mae"])
    model = str(row["model"])
    # NaN (undefined relative MAE) last; among equal scores the baseline first, then by name.
    return (math.isnan(relative), relative, model != BASELINE, model)
