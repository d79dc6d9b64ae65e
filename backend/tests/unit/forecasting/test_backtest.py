"""Walk-forward backtest: origins, scoring, leaderboard, champion and the no-look-ahead rule."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import pytest

from app.forecasting import metrics, registry
from app.forecasting.backtest import (
    BacktestConfig,
    BacktestResult,
    ModelResult,
    forecast_origins,
    walk_forward,
)
from app.forecasting.base import LogForecast
from app.forecasting.confidence import calibration_table, fit_hit_scale, hit_probability, is_hit
from app.forecasting.models import RandomWalk
from app.forecasting.registry import BASELINE, DEFAULT_MODELS, get_model
from tests.unit.forecasting.synthetic import geometric_random_walk

LEADERBOARD_KEYS = [
    "model",
    "code_version",
    "relative_mae",
    "mae",
    "rmse",
    "mape",
    "smape",
    "mase",
    "directional_accuracy",
    "up_share",
    "coverage_80",
    "coverage_95",
    "dm_statistic",
    "dm_p_value",
    "fit_failures",
]

# Small enough for every default model (LightGBM needs 200 prices) to run in about a second.
LOOKAHEAD_CONFIG = BacktestConfig(horizon=3, windows=5, step=4, min_train=220)
LOOKAHEAD_PRICES = geometric_random_walk(240, seed=4)
CHANGED_WINDOW = 2


@pytest.fixture(scope="module")
def default_run() -> BacktestResult:
    return walk_forward(LOOKAHEAD_PRICES, DEFAULT_MODELS, LOOKAHEAD_CONFIG)


@pytest.fixture(scope="module")
def random_walk_run() -> BacktestResult:
    """The baseline alone on a true random walk, 200 non-overlapping 3-step windows."""
    config = BacktestConfig(horizon=3, windows=200, step=3, min_train=100)
    prices = geometric_random_walk(config.required_points(), volatility=0.02, seed=0)
    return walk_forward(prices, [BASELINE], config)


@pytest.fixture(scope="module")
def trend_run() -> BacktestResult:
    """A strong steady trend: the drift model should beat the random walk, significantly."""
    config = BacktestConfig(horizon=6, windows=40, step=6, min_train=100)
    prices = geometric_random_walk(config.required_points(), volatility=0.002, drift=0.002, seed=5)
    return walk_forward(prices, ["random_walk_drift"], config)


# --- configuration and origins -----------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [("horizon", 0), ("windows", 0), ("step", -1), ("mase_window", 0), ("min_train", 0)],
)
def test_config_rejects_non_positive_fields_by_name(field: str, value: int) -> None:
    kwargs = {"horizon": 1, "windows": 1, "step": 1, field: value}
    with pytest.raises(ValueError, match=field):
        BacktestConfig(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"levels": (80, 100)}, "levels"),
        ({"levels": ()}, "levels"),
        ({"tolerance": 0.0}, "tolerance"),
    ],
)
def test_config_rejects_bad_levels_and_tolerance(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        BacktestConfig(horizon=1, windows=1, step=1, **kwargs)  # type: ignore[arg-type]


def test_origins_end_so_the_last_target_is_the_last_observation() -> None:
    config = BacktestConfig(horizon=3, windows=4, step=5)
    origins = forecast_origins(300, config)
    np.testing.assert_array_equal(origins, [281, 286, 291, 296])
    assert origins[-1] + config.horizon == 299


def test_too_short_a_series_is_refused_with_the_needed_length() -> None:
    config = BacktestConfig(horizon=3, windows=4, step=5, min_train=50)
    needed = 50 + 3 + 3 * 5
    prices = geometric_random_walk(needed)
    assert walk_forward(prices, [], config).origins[0] + 1 == 50
    with pytest.raises(ValueError, match=f"at least {needed} prices"):
        walk_forward(prices[1:], [], config)


def test_a_model_needing_more_history_than_min_train_is_refused_up_front() -> None:
    config = BacktestConfig(horizon=1, windows=2, step=1, min_train=50)
    with pytest.raises(ValueError, match="at least 202 prices"):
        walk_forward(geometric_random_walk(150), ["lightgbm_returns"], config)


def test_unknown_model_fails_before_any_work() -> None:
    config = BacktestConfig(horizon=1, windows=2, step=1, min_train=10)
    with pytest.raises(registry.UnknownModel):
        walk_forward(geometric_random_walk(50), ["no_such_model"], config)


# --- no look-ahead -------------------------------------------------------------------------


def test_no_look_ahead_future_prices_never_change_earlier_forecasts(
    default_run: BacktestResult,
) -> None:
    origin = int(default_run.origins[CHANGED_WINDOW])
    rng = np.random.default_rng(99)
    changed = LOOKAHEAD_PRICES.copy()
    changed[origin + 1 :] *= np.exp(rng.normal(0.0, 0.05, changed.shape[0] - origin - 1))
    rerun = walk_forward(changed, DEFAULT_MODELS, LOOKAHEAD_CONFIG)

    seen = slice(0, CHANGED_WINDOW + 1)
    for name in DEFAULT_MODELS:
        before, after = default_run.models[name], rerun.models[name]
        assert before.fit_failures == after.fit_failures == 0
        np.testing.assert_array_equal(after.predicted[seen], before.predicted[seen])
        np.testing.assert_array_equal(after.sigma[seen], before.sigma[seen])
        for level in LOOKAHEAD_CONFIG.levels:
            np.testing.assert_array_equal(after.lower[level][seen], before.lower[level][seen])
            np.testing.assert_array_equal(after.upper[level][seen], before.upper[level][seen])
        # Later windows do see the change, so the equality above is not vacuous.
        assert not np.any(
            after.predicted[CHANGED_WINDOW + 1 :] == before.predicted[CHANGED_WINDOW + 1 :]
        )


@pytest.mark.parametrize("name", DEFAULT_MODELS)
def test_backtest_forecast_is_a_fit_on_the_history_up_to_the_origin(
    default_run: BacktestResult, name: str
) -> None:
    window = 3
    origin = int(default_run.origins[window])
    forecast = get_model(name).fit(LOOKAHEAD_PRICES[: origin + 1]).predict(LOOKAHEAD_CONFIG.horizon)
    result = default_run.models[name]
    assert result.predicted[window] == forecast.mean[-1]
    assert result.sigma[window] == forecast.sigma[-1]
    assert result.lower[95][window] == forecast.lower[95][-1]
    assert result.upper[80][window] == forecast.upper[80][-1]
    assert default_run.actual[window] == LOOKAHEAD_PRICES[origin + LOOKAHEAD_CONFIG.horizon]
    assert default_run.origin_price[window] == LOOKAHEAD_PRICES[origin]


# --- scoring -------------------------------------------------------------------------------


def test_every_default_model_runs_without_failures_and_is_scored(
    default_run: BacktestResult,
) -> None:
    assert list(default_run.models) == list(DEFAULT_MODELS)
    for name, result in default_run.models.items():
        assert result.fit_failures == 0, name
        assert result.predicted.shape == (LOOKAHEAD_CONFIG.windows,)
        assert result.code_version in registry.model_versions(name)
        assert result.features == get_model(name).feature_names
        assert set(result.metrics) == set(LEADERBOARD_KEYS) - {
            "model",
            "code_version",
            "fit_failures",
        }
        assert all(math.isfinite(v) for v in result.metrics.values()), name


def test_metrics_are_the_metric_functions_on_the_window_arrays(
    default_run: BacktestResult,
) -> None:
    config = LOOKAHEAD_CONFIG
    actual, result = default_run.actual, default_run.models["random_walk_drift"]
    baseline = default_run.models[BASELINE]
    scales = np.array(
        [
            metrics.naive_scale(LOOKAHEAD_PRICES[: o + 1], config.horizon, config.mase_window)
            for o in default_run.origins
        ]
    )
    errors, baseline_errors = np.abs(actual - result.predicted), np.abs(actual - baseline.predicted)
    dm = metrics.diebold_mariano(errors, baseline_errors, h=1)  # step 4 >= horizon 3: no overlap
    expected = {
        "mae": metrics.mae(actual, result.predicted),
        "mase": metrics.mase(actual, result.predicted, scales),
        "relative_mae": float(errors.mean() / baseline_errors.mean()),
        "coverage_80": metrics.coverage(actual, result.lower[80], result.upper[80]),
        "dm_statistic": dm.statistic,
        "dm_p_value": dm.p_value,
    }
    for key, value in expected.items():
        assert result.metrics[key] == pytest.approx(value), key


def test_baseline_is_always_included_and_scores_exactly_one(
    random_walk_run: BacktestResult,
) -> None:
    config = BacktestConfig(horizon=1, windows=3, step=1, min_train=10)
    result = walk_forward(geometric_random_walk(20), ["random_walk_drift"], config)
    assert list(result.models) == [BASELINE, "random_walk_drift"]
    baseline = random_walk_run.models[BASELINE].metrics
    assert baseline["relative_mae"] == 1.0
    assert (baseline["dm_statistic"], baseline["dm_p_value"]) == (0.0, 1.0)
    # A flat forecast makes no directional call: half credit in every window that moved.
    assert baseline["directional_accuracy"] == 0.5


def test_random_walk_intervals_cover_close_to_nominal(random_walk_run: BacktestResult) -> None:
    metrics_ = random_walk_run.models[BASELINE].metrics
    assert abs(metrics_["coverage_80"] - 0.80) <= 0.08
    assert abs(metrics_["coverage_95"] - 0.95) <= 0.08


def test_random_walk_needs_no_sigma_recalibration(random_walk_run: BacktestResult) -> None:
    assert 0.8 <= random_walk_run.models[BASELINE].sigma_scale <= 1.25


def test_calibration_is_fitted_on_the_first_half_and_scored_on_the_second(
    random_walk_run: BacktestResult,
) -> None:
    result, actual = random_walk_run.models[BASELINE], random_walk_run.actual
    log_errors = np.log(actual / result.predicted)
    scale = fit_hit_scale(log_errors[:100], result.sigma[:100], 0.02)
    confidences = hit_probability(result.sigma[100:], 0.02, scale)
    expected = calibration_table(confidences, is_hit(actual[100:], result.predicted[100:], 0.02))
    assert result.calibration == expected
    assert sum(bucket.count for bucket in result.calibration) == 100
    assert result.sigma_scale == fit_hit_scale(log_errors, result.sigma, 0.02)


def test_progress_is_reported_after_every_window() -> None:
    config = BacktestConfig(horizon=2, windows=4, step=1, min_train=20)
    calls: list[tuple[int, int]] = []
    walk_forward(geometric_random_walk(30), [], config, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_model_params_reach_the_models() -> None:
    config = BacktestConfig(horizon=2, windows=3, step=1, min_train=60)
    prices = geometric_random_walk(80)
    result = walk_forward(prices, [], config, model_params={BASELINE: {"max_train": 10}})
    origin = int(result.origins[0])
    expected = RandomWalk(max_train=10).fit(prices[: origin + 1]).predict(2)
    assert result.models[BASELINE].sigma[0] == expected.sigma[-1]


def test_a_failing_model_falls_back_to_the_baseline_window(monkeypatch: pytest.MonkeyPatch) -> None:
    class FailsOnOddLengths(RandomWalk):
        name: ClassVar[str] = "fails_on_odd_lengths"

        def _fit_log(self, log_y: np.ndarray) -> None:
            if log_y.shape[0] % 2:
                raise FloatingPointError("numerical trouble")
            super()._fit_log(log_y)

        def _predict_log(self, h: int, levels: tuple[int, ...]) -> LogForecast:
            forecast = super()._predict_log(h, levels)
            return LogForecast(forecast.mean_log + 0.1, forecast.sigma)

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    registry.register(FailsOnOddLengths)
    config = BacktestConfig(horizon=1, windows=6, step=1, min_train=20)
    result = walk_forward(geometric_random_walk(40), [FailsOnOddLengths.name], config)

    flaky, baseline = result.models[FailsOnOddLengths.name], result.models[BASELINE]
    failed = (result.origins + 1) % 2 == 1  # the history length is origin + 1
    assert flaky.fit_failures == int(failed.sum()) == 3
    np.testing.assert_array_equal(flaky.predicted[failed], baseline.predicted[failed])
    assert np.all(flaky.predicted[~failed] > baseline.predicted[~failed])
    row = next(r for r in result.leaderboard() if r["model"] == FailsOnOddLengths.name)
    assert row["fit_failures"] == 3


# --- leaderboard and champion -----------------------------------------------------------------


def test_leaderboard_rows_are_sorted_and_complete(default_run: BacktestResult) -> None:
    rows = default_run.leaderboard()
    assert [list(row) for row in rows] == [LEADERBOARD_KEYS] * len(DEFAULT_MODELS)
    relative = [float(row["relative_mae"]) for row in rows]
    assert relative == sorted(relative)
    baseline_row = next(row for row in rows if row["model"] == BASELINE)
    assert baseline_row["relative_mae"] == 1.0


def test_champion_is_the_baseline_when_no_model_is_significantly_better(
    random_walk_run: BacktestResult, default_run: BacktestResult
) -> None:
    assert random_walk_run.champion() == BASELINE
    significant = [
        r.name
        for r in default_run.models.values()
        if r.metrics["dm_p_value"] < 0.05 and r.metrics["relative_mae"] < 1
    ]
    assert significant == []  # 5 windows cannot show significance
    assert default_run.champion() == BASELINE


def test_champion_is_a_significantly_better_model(trend_run: BacktestResult) -> None:
    drift = trend_run.models["random_walk_drift"].metrics
    assert drift["relative_mae"] < 0.7
    assert drift["dm_statistic"] < 0
    assert drift["dm_p_value"] < 0.01
    assert trend_run.champion() == "random_walk_drift"
    assert trend_run.champion(alpha=drift["dm_p_value"] / 2) == BASELINE
    assert trend_run.leaderboard()[0]["model"] == "random_walk_drift"


def with_metrics(name: str, relative_mae: float, dm_statistic: float, p: float) -> ModelResult:
    empty = np.empty(0)
    return ModelResult(
        name=name,
        code_version="1",
        features=(),
        predicted=empty,
        lower={},
        upper={},
        sigma=empty,
        metrics={"relative_mae": relative_mae, "dm_statistic": dm_statistic, "dm_p_value": p},
        sigma_scale=1.0,
        calibration=[],
        fit_failures=0,
    )


def test_champion_rules_on_constructed_results() -> None:
    def champion(*results: ModelResult) -> str:
        models = {r.name: r for r in (with_metrics(BASELINE, 1.0, 0.0, 1.0), *results)}
        config = BacktestConfig(horizon=1, windows=1, step=1)
        return BacktestResult(config, np.zeros(1), np.ones(1), np.ones(1), models).champion()

    assert champion(with_metrics("a", 0.9, -3.0, 0.2)) == BASELINE  # better, not significant
    assert champion(with_metrics("a", 1.1, 3.0, 0.001)) == BASELINE  # significantly worse
    assert champion(with_metrics("a", 0.9, -3.0, 0.01)) == "a"
    both = (with_metrics("a", 0.9, -3.0, 0.01), with_metrics("b", 0.8, -2.5, 0.04))
    assert champion(*both) == "b"  # lowest relative MAE among the significant ones


def test_a_run_keeps_every_window_model_and_calibration_bucket(
    default_run: BacktestResult,
) -> None:
    assert default_run.origins.shape == (LOOKAHEAD_CONFIG.windows,)
    assert default_run.config.levels == (80, 95)
    assert {row["model"] for row in default_run.leaderboard()} == set(DEFAULT_MODELS)
    assert set(default_run.models) == set(DEFAULT_MODELS)
    assert len(default_run.models[BASELINE].calibration) == 5


def test_a_single_window_backtest_leaves_the_dm_test_undefined() -> None:
    config = BacktestConfig(horizon=2, windows=1, step=1, min_train=30)
    result = walk_forward(geometric_random_walk(40), ["random_walk_drift"], config)
    drift = result.models["random_walk_drift"].metrics
    assert math.isnan(drift["dm_statistic"]) and math.isnan(drift["dm_p_value"])
    assert result.models[BASELINE].metrics["dm_p_value"] == 1.0
    assert result.champion() == BASELINE
    row = next(r for r in result.leaderboard() if r["model"] == "random_walk_drift")
    assert math.isnan(float(row["dm_statistic"]))
