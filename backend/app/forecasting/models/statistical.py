"""Classical state-space models from statsforecast, fitted on trailing log prices.

statsforecast returns a mean and normal prediction intervals. The bounds handed to callers are
rebuilt by :func:`app.forecasting.base.forecast_from_log` from the mean and a sigma read off the
widest interval statsforecast returned, so every model's bounds, sigma and confidence score come
from one formula and stay mutually consistent (for ETS, whose intervals are Gaussian, the rebuilt
bounds equal statsforecast's own up to rounding).
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

import numpy as np
from statsforecast.models import AutoARIMA, AutoETS, AutoTheta

from app.forecasting.base import DEFAULT_MAX_TRAIN, Forecaster, LogForecast, z_score
from app.forecasting.registry import register

# sigma is read off the 95 % interval, or off a wider one when the caller asks for it, so the
# widest bounds a caller sees are the ones statsforecast itself computed.
SIGMA_LEVEL = 95


class StatsforecastModel(Forecaster):
    """Shared wrapper: fit the statsforecast model on log prices, read its forecast back."""

    features: ClassVar[tuple[str, ...]] = ("log_close",)
    min_history: ClassVar[int] = 10

    _model: Any

    def __init__(self, *, max_train: int = DEFAULT_MAX_TRAIN, season_length: int = 1) -> None:
        super().__init__(max_train=max_train)
        if season_length < 1:
            raise ValueError(f"season_length must be at least 1, got {season_length}")
        self.season_length = season_length

    @abstractmethod
    def _make_model(self) -> Any:
        """A new, unfitted statsforecast model configured from this instance."""

    def _fit_log(self, log_y: np.ndarray) -> None:
        self._model = self._make_model().fit(y=log_y)

    def _predict_log(self, h: int, levels: tuple[int, ...]) -> LogForecast:
        sigma_level = max((*levels, SIGMA_LEVEL))
        result = self._model.predict(h=h, level=[sigma_level])
        # AutoTheta returns float32 bounds; widen before subtracting to keep the precision.
        lo = np.asarray(result[f"lo-{sigma_level}"], dtype=np.float64)
        hi = np.asarray(result[f"hi-{sigma_level}"], dtype=np.float64)
        sigma = (hi - lo) / (2.0 * z_score(sigma_level))
        return LogForecast(mean_log=np.asarray(result["mean"], dtype=np.float64), sigma=sigma)


@register
class AutoEtsModel(StatsforecastModel):
    """Exponential smoothing with automatic error/trend/season selection by AICc."""

    name: ClassVar[str] = "auto_ets"
    code_version: ClassVar[str] = "1"

    def _make_model(self) -> Any:
        return AutoETS(season_length=self.season_length)


@register
class AutoThetaModel(StatsforecastModel):
    """Theta method family (standard/optimised/dynamic) selected by in-sample fit."""

    name: ClassVar[str] = "auto_theta"
    code_version: ClassVar[str] = "1"

    def _make_model(self) -> Any:
        return AutoTheta(season_length=self.season_length)


@register
class AutoArimaModel(StatsforecastModel):
    """ARIMA with automatic order selection. Slower than ETS/Theta; not in the default set."""

    name: ClassVar[str] = "auto_arima"
    code_version: ClassVar[str] = "1"
    min_history: ClassVar[int] = 20

    def _make_model(self) -> Any:
        return AutoARIMA(season_length=self.season_length)
