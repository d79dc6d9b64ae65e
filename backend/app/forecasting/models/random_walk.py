"""Random-walk baselines: the forecast every other model has to beat.

Crypto closes are close to a random walk in log space, so "tomorrow's price is today's price" is
a hard benchmark. Both models estimate the spread of 1-step log returns over the trailing training
window; the drift variant also extrapolates their mean.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from app.forecasting.base import Forecaster, LogForecast, step_scaled_sigma
from app.forecasting.registry import register


@register
class RandomWalk(Forecaster):
    """Point forecast = last price; sigma_k = sd(1-step log returns) * sqrt(k)."""

    name: ClassVar[str] = "random_walk"
    code_version: ClassVar[str] = "1"
    features: ClassVar[tuple[str, ...]] = ("log_close",)
    # Two returns are the fewest a sample standard deviation can be computed from.
    min_history: ClassVar[int] = 3

    _last_log: float
    _return_sd: float
    _return_mean: float
    _return_count: int

    def _fit_log(self, log_y: np.ndarray) -> None:
        returns = np.diff(log_y)
        self._last_log = float(log_y[-1])
        self._return_sd = float(returns.std(ddof=1))
        self._return_mean = float(returns.mean())
        self._return_count = int(returns.shape[0])

    def _predict_log(self, h: int, levels: tuple[int, ...]) -> LogForecast:
        return LogForecast(
            mean_log=np.full(h, self._last_log),
            sigma=step_scaled_sigma(self._return_sd, h),
            median=np.full(h, self._last_price),
        )


@register
class RandomWalkDrift(RandomWalk):
    """Random walk plus the mean trailing log return per step.

    sigma_k = sd * sqrt(k * (1 + k / n)), n the number of returns: the second term is the
    uncertainty of the estimated drift, which grows with k because the drift is extrapolated.
    """

    name: ClassVar[str] = "random_walk_drift"
    code_version: ClassVar[str] = "1"

    def _predict_log(self, h: int, levels: tuple[int, ...]) -> LogForecast:
        steps = np.arange(1, h + 1, dtype=np.float64)
        mean_log = self._last_log + steps * self._return_mean
        sigma = self._return_sd * np.sqrt(steps * (1.0 + steps / self._return_count))
        return LogForecast(mean_log=mean_log, sigma=sigma)
