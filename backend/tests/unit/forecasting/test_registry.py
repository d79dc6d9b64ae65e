"""Model registry: lookup by name and version, helpful errors, registration rules."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

import app.forecasting as forecasting
from app.forecasting import registry
from app.forecasting.base import Forecaster, LogForecast
from app.forecasting.models import AutoEtsModel, RandomWalk
from app.forecasting.registry import (
    BASELINE,
    DEFAULT_MODELS,
    UnknownModel,
    get_model,
    model_names,
    register,
)


@pytest.fixture
def scratch_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register test models into a copy, so they never leak into other tests."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


def make_dummy(version: str, qualname: str = "Dummy") -> type[Forecaster]:
    class Dummy(Forecaster):
        name: ClassVar[str] = "dummy"
        code_version: ClassVar[str] = version
        features: ClassVar[tuple[str, ...]] = ()
        min_history: ClassVar[int] = 1

        def _fit_log(self, log_y: np.ndarray) -> None:
            pass

        def _predict_log(self, h: int, levels: tuple[int, ...]) -> LogForecast:
            return LogForecast(np.zeros(h), np.ones(h))

    Dummy.__qualname__ = qualname
    return Dummy


def test_every_default_model_and_the_baseline_are_registered() -> None:
    assert BASELINE in DEFAULT_MODELS
    assert set(DEFAULT_MODELS) <= set(model_names())
    assert "auto_arima" in model_names()
    assert "auto_arima" not in DEFAULT_MODELS


def test_get_model_returns_a_new_configured_instance() -> None:
    first, second = get_model("random_walk"), get_model("random_walk")
    assert isinstance(first, RandomWalk)
    assert first is not second
    ets = get_model("auto_ets", version="1", max_train=500, season_length=24)
    assert isinstance(ets, AutoEtsModel)
    assert (ets.max_train, ets.season_length) == (500, 24)


def test_unknown_name_names_the_model_and_the_alternatives() -> None:
    with pytest.raises(UnknownModel) as raised:
        get_model("prophet")
    message = str(raised.value)
    assert "'prophet'" in message
    assert all(name in message for name in DEFAULT_MODELS)
    assert isinstance(raised.value, KeyError)


def test_version_mismatch_is_an_unknown_model() -> None:
    with pytest.raises(UnknownModel, match=r"no version '999'.*registered versions: 1"):
        get_model("random_walk", version="999")


def test_latest_version_is_chosen_numerically(scratch_registry: None) -> None:
    for version in ("2", "10", "9"):
        register(make_dummy(version, f"Dummy{version}"))
    assert get_model("dummy").code_version == "10"
    assert get_model("dummy", version="2").code_version == "2"
    assert registry.model_versions("dummy") == ["2", "9", "10"]


def test_two_classes_cannot_share_a_name_and_version(scratch_registry: None) -> None:
    register(make_dummy("1", "First"))
    with pytest.raises(ValueError, match="bump code_version"):
        register(make_dummy("1", "Second"))


def test_package_exports_the_public_api() -> None:
    for name in ("walk_forward", "BacktestConfig", "get_model", "Forecast", "diebold_mariano"):
        assert name in forecasting.__all__
        assert hasattr(forecasting, name)
