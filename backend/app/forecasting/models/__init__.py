"""Concrete forecasters. Importing this package registers every model with the registry."""

from __future__ import annotations

from app.forecasting.models.gradient_boosting import LightGbmReturns
from app.forecasting.models.random_walk import RandomWalk, RandomWalkDrift
from app.forecasting.models.statistical import AutoArimaModel, AutoEtsModel, AutoThetaModel

__all__ = [
    "AutoArimaModel",
    "AutoEtsModel",
    "AutoThetaModel",
    "LightGbmReturns",
    "RandomWalk",
    "RandomWalkDrift",
]
