"""The forecaster contract: what every model takes, what it returns, and the shared plumbing.

Every model works on log prices internally. Crypto prices move multiplicatively, so errors are
roughly symmetric in log space; a forecast is a normal distribution of the log price at each step
ahead, i.e. a log-normal distribution of the price. :func:`forecast_from_log` is the single place
where that distribution is turned into price-space numbers:

* the point forecast is ``exp(mean_log)``, the *median* of the log-normal (not its mean, which is
  pulled up by the right tail and would bias every error metric upwards);
* the bounds of the central ``level`` % interval are ``exp(mean_log ± z * sigma)`` with
  ``z = Φ⁻¹(0.5 + level / 200)``;
* ``sigma`` is kept on the forecast because the confidence score is built from it.

Subclasses implement :meth:`Forecaster._fit_log` and :meth:`Forecaster._predict_log`; the public
:meth:`Forecaster.fit` / :meth:`Forecaster.predict` validate inputs, apply the trailing
``max_train`` cap and take logs, so no model can forget to.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Self

import numpy as np
from scipy.stats import norm

DEFAULT_MAX_TRAIN = 2000
DEFAULT_LEVELS: tuple[int, ...] = (80, 95)
# A forecast with sigma == 0 would claim certainty and make the confidence score divide by zero;
# a flat history (e.g. a stable coin over a quiet window) must still yield a usable distribution.
MIN_SIGMA = 1e-9


@dataclass(frozen=True, eq=False)
class Forecast:
    """A predictive distribution for the next ``h`` steps, in price space.

    ``mean`` is the median price (``exp`` of the log-space mean); ``lower``/``upper`` map an
    interval level (e.g. 80, 95) to its bounds; ``sigma`` is the standard deviation of the
    log-price forecast error at each step ahead. All arrays have shape ``(h,)``.
    """

    mean: np.ndarray
    lower: dict[int, np.ndarray]
    upper: dict[int, np.ndarray]
    sigma: np.ndarray

    @property
    def horizon(self) -> int:
        return int(self.mean.shape[0])


@dataclass(frozen=True, eq=False)
class LogForecast:
    """What a model produces before conversion: log-space mean and sigma per step ahead.

    ``median`` optionally gives the price-space point forecast exactly, for models that know it
    without a log round trip (``exp(log(p))`` can differ from ``p`` in the last bit, which would
    turn the random walk's "no change" into a tiny directional call).
    """

    mean_log: np.ndarray
    sigma: np.ndarray
    median: np.ndarray | None = None


def z_score(level: int) -> float:
    """Two-sided normal quantile of a central ``level`` % interval (80 -> 1.2816)."""
    check_level(level)
    return float(norm.ppf(0.5 + level / 200.0))


def check_level(level: int) -> None:
    if not 0 < level < 100:
        raise ValueError(f"interval level must be strictly between 0 and 100, got {level}")


def forecast_from_log(
    mean_log: np.ndarray,
    sigma: np.ndarray,
    levels: Sequence[int],
    *,
    median: np.ndarray | None = None,
) -> Forecast:
    """Turn a log-normal predictive distribution into price-space point forecast and bounds.

    ``median`` overrides ``exp(mean_log)`` as the point forecast when the caller has it exactly.
    """
    mean_log = np.asarray(mean_log, dtype=np.float64)
    sigma = np.maximum(np.asarray(sigma, dtype=np.float64), MIN_SIGMA)
    if mean_log.shape != sigma.shape or mean_log.ndim != 1:
        raise ValueError(f"mean_log {mean_log.shape} and sigma {sigma.shape} must be equal 1-D")
    lower: dict[int, np.ndarray] = {}
    upper: dict[int, np.ndarray] = {}
    for level in levels:
        half_width = z_score(level) * sigma
        lower[level] = np.exp(mean_log - half_width)
        upper[level] = np.exp(mean_log + half_width)
    point = np.exp(mean_log) if median is None else np.asarray(median, dtype=np.float64)
    if point.shape != mean_log.shape:
        raise ValueError(f"median {point.shape} must have the shape of mean_log {mean_log.shape}")
    return Forecast(mean=point, lower=lower, upper=upper, sigma=sigma)


def validate_prices(y: np.ndarray, min_points: int) -> np.ndarray:
    """Return ``y`` as a 1-D float64 array, or raise ValueError saying what is wrong with it."""
    prices = np.asarray(y, dtype=np.float64)
    if prices.ndim != 1:
        raise ValueError(f"prices must be a 1-D array, got shape {prices.shape}")
    if prices.shape[0] < min_points:
        raise ValueError(f"need at least {min_points} prices, got {prices.shape[0]}")
    if not np.all(np.isfinite(prices)):
        raise ValueError("prices must all be finite")
    if np.any(prices <= 0):
        raise ValueError("prices must all be positive (models work on log prices)")
    return prices


class Forecaster(ABC):
    """Base class of every model: fit on past closes, predict ``h`` steps ahead.

    Subclasses set the class variables and implement ``_fit_log``/``_predict_log``. They are
    registered with :func:`app.forecasting.registry.register` under ``(name, code_version)``;
    bump ``code_version`` whenever a change alters the numbers a model produces, so stored
    forecasts and scores stay attributable to the code that made them.
    """

    name: ClassVar[str]
    code_version: ClassVar[str]
    features: ClassVar[tuple[str, ...]]
    min_history: ClassVar[int]

    def __init__(self, *, max_train: int = DEFAULT_MAX_TRAIN) -> None:
        # Subclasses whose required_history depends on parameters set them before calling this.
        if max_train < self.required_history:
            raise ValueError(
                f"max_train must be at least {self.name}'s required history "
                f"({self.required_history}), got {max_train}"
            )
        self.max_train = max_train
        self._training_size = 0
        self._last_price = math.nan

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Inputs this instance uses; models whose features depend on parameters override it."""
        return self.features

    @property
    def required_history(self) -> int:
        """Fewest prices :meth:`fit` accepts for this instance (``min_history`` by default)."""
        return self.min_history

    @property
    def training_size(self) -> int:
        """Observations used by the last fit, after the trailing ``max_train`` cap (0 if unfit)."""
        return self._training_size

    @property
    def is_fitted(self) -> bool:
        return self._training_size > 0

    def fit(self, y: np.ndarray) -> Self:
        """Fit on closes ``y`` (oldest first); only the last ``max_train`` of them are used."""
        prices = validate_prices(y, self.required_history)
        # The cap keeps fitting cost bounded and lets old regimes drop out of the estimate.
        window = prices[-self.max_train :]
        self._training_size = 0  # a failed refit must not leave a half-updated model usable
        self._fit_log(np.log(window))
        self._last_price = float(window[-1])
        self._training_size = int(window.shape[0])
        return self

    def predict(self, h: int, levels: Sequence[int] = DEFAULT_LEVELS) -> Forecast:
        """Forecast ``h`` steps after the last fitted observation."""
        if not self.is_fitted:
            raise RuntimeError(f"{self.name}: predict() called before fit()")
        if h < 1:
            raise ValueError(f"horizon h must be at least 1, got {h}")
        for level in levels:
            check_level(level)
        log_forecast = self._predict_log(h, tuple(levels))
        return forecast_from_log(
            log_forecast.mean_log, log_forecast.sigma, levels, median=log_forecast.median
        )

    @abstractmethod
    def _fit_log(self, log_y: np.ndarray) -> None:
        """Estimate the model from validated, capped log prices."""

    @abstractmethod
    def _predict_log(self, h: int, levels: tuple[int, ...]) -> LogForecast:
        """Log-space mean and sigma for steps ``1..h``; ``levels`` are already validated."""


def step_scaled_sigma(sigma_1: float, h: int) -> np.ndarray:
    """``sigma_1 * sqrt(k)`` for k = 1..h: independent per-step errors add up in variance."""
    return sigma_1 * np.sqrt(np.arange(1, h + 1, dtype=np.float64))
