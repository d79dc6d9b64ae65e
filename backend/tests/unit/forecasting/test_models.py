"""Every forecaster: the contract of the base class, and each model's own formulas."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy.stats import norm
from statsforecast.models import AutoETS

from app.forecasting.base import MIN_SIGMA, Forecaster, forecast_from_log
from app.forecasting.registry import DEFAULT_MODELS, get_model
from app.forecasting.registry import model_names as registered_names
from tests.unit.forecasting.synthetic import geometric_random_walk

ALL_MODELS = (*DEFAULT_MODELS, "auto_arima")
PRICES = geometric_random_walk(300, seed=1)
HORIZON = 6


def fitted(name: str, prices: np.ndarray = PRICES, **params: Any) -> Forecaster:
    return get_model(name, **params).fit(prices)


def test_all_models_are_covered_here() -> None:
    assert set(ALL_MODELS) == set(registered_names())


@pytest.mark.parametrize("name", ALL_MODELS)
def test_forecast_shapes_and_ordered_bounds(name: str) -> None:
    forecast = fitted(name).predict(HORIZON, levels=(80, 95))
    assert forecast.horizon == HORIZON
    bounds = [*forecast.lower.values(), *forecast.upper.values()]
    for array in (forecast.mean, forecast.sigma, *bounds):
        assert array.shape == (HORIZON,)
        assert array.dtype == np.float64
        assert np.isfinite(array).all()
    assert set(forecast.lower) == set(forecast.upper) == {80, 95}
    assert (forecast.sigma > 0).all()
    assert (forecast.lower[95] < forecast.lower[80]).all()
    assert (forecast.lower[80] < forecast.mean).all()
    assert (forecast.mean < forecast.upper[80]).all()
    assert (forecast.upper[80] < forecast.upper[95]).all()


@pytest.mark.parametrize("name", ALL_MODELS)
def test_bounds_are_the_lognormal_quantiles_of_mean_and_sigma(name: str) -> None:
    forecast = fitted(name).predict(HORIZON, levels=(50, 99))
    for level in (50, 99):
        z = norm.ppf(0.5 + level / 200)
        log_mean = np.log(forecast.mean)
        np.testing.assert_allclose(np.log(forecast.lower[level]), log_mean - z * forecast.sigma)
        np.testing.assert_allclose(np.log(forecast.upper[level]), log_mean + z * forecast.sigma)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_reruns_are_bitwise_identical(name: str) -> None:
    first = fitted(name).predict(HORIZON)
    second = fitted(name, PRICES.copy()).predict(HORIZON)
    np.testing.assert_array_equal(first.mean, second.mean)
    np.testing.assert_array_equal(first.sigma, second.sigma)
    for level in (80, 95):
        np.testing.assert_array_equal(first.lower[level], second.lower[level])
        np.testing.assert_array_equal(first.upper[level], second.upper[level])


@pytest.mark.parametrize("name", ALL_MODELS)
def test_bad_prices_are_rejected(name: str) -> None:
    model = get_model(name)
    too_short = PRICES[: model.required_history - 1]
    with_zero = PRICES.copy()
    with_zero[10] = 0.0
    with_nan = PRICES.copy()
    with_nan[-1] = np.nan
    with_inf = PRICES.copy()
    with_inf[5] = np.inf
    for bad, reason in [
        (too_short, "at least"),
        (with_zero, "positive"),
        (-PRICES, "positive"),
        (with_nan, "finite"),
        (with_inf, "finite"),
        (PRICES.reshape(-1, 2), "1-D"),
    ]:
        with pytest.raises(ValueError, match=reason):
            model.fit(bad)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_predict_needs_a_fit_and_valid_arguments(name: str) -> None:
    with pytest.raises(RuntimeError, match="before fit"):
        get_model(name).predict(1)
    model = fitted(name)
    for kwargs in ({"h": 0}, {"h": 3, "levels": (80, 100)}, {"h": 3, "levels": (0,)}):
        with pytest.raises(ValueError):
            model.predict(**kwargs)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_trailing_cap_uses_only_the_last_max_train_prices(name: str) -> None:
    long_prices = geometric_random_walk(420, seed=2)
    capped = get_model(name, max_train=250).fit(long_prices)
    assert capped.training_size == 250
    assert get_model(name).fit(long_prices).training_size == 420
    # The capped fit is the same as a fit on the trailing 250 prices alone.
    alone = fitted(name, long_prices[-250:], max_train=250)
    np.testing.assert_array_equal(capped.predict(3).mean, alone.predict(3).mean)
    np.testing.assert_array_equal(capped.predict(3).sigma, alone.predict(3).sigma)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_max_train_below_the_required_history_is_rejected(name: str) -> None:
    required = get_model(name).required_history
    with pytest.raises(ValueError, match="max_train"):
        get_model(name, max_train=required - 1)


def test_random_walk_formulas() -> None:
    forecast = fitted("random_walk").predict(HORIZON)
    sd = np.std(np.diff(np.log(PRICES)), ddof=1)
    steps = np.arange(1, HORIZON + 1)
    np.testing.assert_array_equal(forecast.mean, np.full(HORIZON, PRICES[-1]))
    np.testing.assert_allclose(forecast.sigma, sd * np.sqrt(steps))
    assert (np.diff(forecast.sigma) > 0).all()


def test_random_walk_drift_formulas() -> None:
    forecast = fitted("random_walk_drift").predict(HORIZON)
    returns = np.diff(np.log(PRICES))
    n, drift, sd = returns.shape[0], returns.mean(), returns.std(ddof=1)
    steps = np.arange(1, HORIZON + 1)
    np.testing.assert_allclose(np.log(forecast.mean), np.log(PRICES[-1]) + steps * drift)
    np.testing.assert_allclose(forecast.sigma, sd * np.sqrt(steps * (1 + steps / n)))


def test_flat_prices_still_give_a_positive_sigma() -> None:
    forecast = fitted("random_walk", np.full(50, 3.0)).predict(2)
    np.testing.assert_array_equal(forecast.sigma, [MIN_SIGMA, MIN_SIGMA])
    np.testing.assert_allclose(forecast.upper[95], 3.0)


def test_ets_sigma_reproduces_statsforecast_intervals() -> None:
    log_prices = np.log(PRICES)
    reference = AutoETS(season_length=1).forecast(y=log_prices, h=HORIZON, level=[80])
    forecast = fitted("auto_ets").predict(HORIZON, levels=(80,))
    np.testing.assert_allclose(np.log(forecast.mean), reference["mean"])
    np.testing.assert_allclose(np.log(forecast.lower[80]), reference["lo-80"], rtol=1e-9)
    np.testing.assert_allclose(np.log(forecast.upper[80]), reference["hi-80"], rtol=1e-9)


def test_lightgbm_feature_names_follow_its_windows() -> None:
    model = get_model("lightgbm_returns", lags=3, volatility_window=5, short_window=2)
    assert model.feature_names == (
        "return_lag_1",
        "return_lag_2",
        "return_lag_3",
        "volatility_5",
        "return_sum_2",
        "return_sum_24",
    )
    assert get_model("lightgbm_returns").feature_names == type(model).features


def test_lightgbm_interpolates_the_steps_before_its_horizon() -> None:
    forecast = fitted("lightgbm_returns").predict(HORIZON)
    steps = np.arange(1, HORIZON + 1) / HORIZON
    np.testing.assert_allclose(forecast.sigma, forecast.sigma[-1] * np.sqrt(steps))
    moves = np.log(forecast.mean / forecast.mean[0])
    np.testing.assert_allclose(np.diff(moves), np.diff(moves)[0], atol=1e-12)


def test_lightgbm_learns_a_pattern_in_the_returns() -> None:
    # Returns alternate +1 % / -1 % (plus noise): the last return predicts the next one's sign.
    rng = np.random.default_rng(5)
    returns = np.tile([0.01, -0.01], 150) + rng.normal(0.0, 0.001, 300)
    prices = 100.0 * np.exp(np.concatenate([[0.0], np.cumsum(returns)]))
    model = fitted("lightgbm_returns", prices)
    last_return = returns[-1]
    one_step = model.predict(1)
    first_move = np.log(one_step.mean[0] / prices[-1])
    assert np.sign(first_move) == -np.sign(last_return)
    assert abs(first_move) > 0.005
    # The holdout residuals are small next to the 1 % moves it has learnt to predict.
    assert one_step.sigma[0] < 0.005
    # Two steps ahead the moves cancel out, and the model trained for h = 2 knows it.
    two_steps = model.predict(2)
    assert abs(np.log(two_steps.mean[-1] / prices[-1])) < 0.003


@pytest.mark.parametrize("name", ["auto_ets", "auto_theta", "auto_arima"])
def test_season_length_must_be_positive(name: str) -> None:
    with pytest.raises(ValueError, match="season_length"):
        get_model(name, season_length=0)


def test_forecast_from_log_checks_shapes_and_uses_an_exact_median() -> None:
    forecast = forecast_from_log(np.zeros(2), np.full(2, 0.1), (80,), median=np.array([1.5, 2.5]))
    np.testing.assert_array_equal(forecast.mean, [1.5, 2.5])
    np.testing.assert_allclose(forecast.upper[80], np.exp(norm.ppf(0.9) * 0.1))
    with pytest.raises(ValueError, match="sigma"):
        forecast_from_log(np.zeros(2), np.ones(3), (80,))
    with pytest.raises(ValueError, match="median"):
        forecast_from_log(np.zeros(2), np.ones(2), (80,), median=np.ones(3))
