"""Accuracy metrics and the Diebold-Mariano test, against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import t as student_t

from app.forecasting.metrics import (
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

ACTUAL = np.array([100.0, 200.0, 50.0])
PREDICTED = np.array([110.0, 180.0, 50.0])  # errors 10, 20, 0


def test_mae_rmse_on_hand_computed_errors() -> None:
    assert mae(ACTUAL, PREDICTED) == pytest.approx((10 + 20 + 0) / 3)
    assert rmse(ACTUAL, PREDICTED) == pytest.approx(math.sqrt((100 + 400 + 0) / 3))


def test_mape_and_smape_are_percentages() -> None:
    assert mape(ACTUAL, PREDICTED) == pytest.approx(100 * (10 / 100 + 20 / 200 + 0) / 3)
    assert smape(ACTUAL, PREDICTED) == pytest.approx(100 * (20 / 210 + 40 / 380 + 0) / 3)


def test_mase_divides_each_window_by_its_own_scale() -> None:
    scale = np.array([5.0, 10.0, 2.0])
    assert mase(ACTUAL, PREDICTED, scale) == pytest.approx((10 / 5 + 20 / 10 + 0 / 2) / 3)


def test_mase_rejects_a_zero_scale() -> None:
    with pytest.raises(ValueError, match="positive"):
        mase(ACTUAL, PREDICTED, np.array([1.0, 0.0, 1.0]))


def test_naive_scale_uses_only_the_trailing_window() -> None:
    y = np.array([1.0, 2.0, 4.0, 7.0, 11.0])  # 1-step changes 1, 2, 3, 4
    assert naive_scale(y, h=1, window=2) == pytest.approx((3 + 4) / 2)
    # 2-step changes 3, 5, 7; a window longer than the history uses all of them.
    assert naive_scale(y, h=2, window=10) == pytest.approx((3 + 5 + 7) / 3)


def test_naive_scale_ignores_early_small_changes_of_a_grown_series() -> None:
    early = np.full(100, 1.0) + np.arange(100) * 0.01  # changes of 0.01
    late = 100.0 + np.arange(50) * 2.0  # changes of 2.0
    y = np.concatenate([early, late])
    assert naive_scale(y, h=1, window=20) == pytest.approx(2.0)


@pytest.mark.parametrize(("h", "window", "points"), [(0, 5, 10), (1, 0, 10), (3, 5, 3)])
def test_naive_scale_validates_its_arguments(h: int, window: int, points: int) -> None:
    with pytest.raises(ValueError):
        naive_scale(np.arange(1.0, points + 1), h=h, window=window)


def test_relative_mae_is_a_ratio_of_means() -> None:
    assert relative_mae(np.array([1.0, 1.0]), np.array([2.0, 2.0])) == pytest.approx(0.5)
    assert relative_mae(np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 2.0])) == 1.0
    assert math.isnan(relative_mae(np.array([1.0]), np.array([0.0])))


def test_directional_accuracy_scores_ties_as_documented() -> None:
    origin = np.full(5, 10.0)
    actual = np.array([11.0, 9.0, 10.0, 12.0, 10.0])
    predicted = np.array([12.0, 11.0, 10.0, 10.0, 9.0])
    # up/up 1, up/down 0, flat/flat 1, flat forecast vs up 0.5, down forecast vs flat 0.5
    assert directional_accuracy(origin, actual, predicted) == pytest.approx(3 / 5)


def test_up_share_counts_strict_rises() -> None:
    origin = np.full(5, 10.0)
    actual = np.array([11.0, 9.0, 10.0, 12.0, 10.0])
    assert up_share(origin, actual) == pytest.approx(2 / 5)


def test_coverage_includes_the_bounds() -> None:
    actual = np.array([1.0, 2.0, 3.0, 4.0])
    lower = np.array([0.0, 2.0, 3.5, 5.0])
    upper = np.array([2.0, 2.0, 4.0, 6.0])
    assert coverage(actual, lower, upper) == pytest.approx(2 / 4)


@pytest.mark.parametrize(
    ("a", "b"),
    [(np.array([1.0, 2.0]), np.array([1.0])), (np.array([]), np.array([])), (np.ones((2, 2)),) * 2],
)
def test_metrics_reject_mismatched_or_empty_input(a: np.ndarray, b: np.ndarray) -> None:
    with pytest.raises(ValueError):
        mae(a, b)


def test_dm_matches_a_hand_computation() -> None:
    loss_model = np.array([1.0, 2.0, 3.0, 1.0, 2.0])
    loss_baseline = np.array([2.0, 2.0, 2.0, 2.0, 4.0])
    # d = [-1, 0, 1, -1, -2], mean -0.6, centred [-0.4, 0.6, 1.6, -0.4, -1.4]
    gamma_0 = (0.16 + 0.36 + 2.56 + 0.16 + 1.96) / 5
    gamma_1 = (0.6 * -0.4 + 1.6 * 0.6 + -0.4 * 1.6 + -1.4 * -0.4) / 5
    long_run_variance = gamma_0 + 2 * gamma_1  # h = 2: autocovariances up to lag 1
    hln = math.sqrt((5 + 1 - 2 * 2 + 2 * 1 / 5) / 5)
    expected = hln * -0.6 / math.sqrt(long_run_variance / 5)

    result = diebold_mariano(loss_model, loss_baseline, h=2)

    assert result.statistic == pytest.approx(expected)
    assert result.p_value == pytest.approx(2 * student_t.sf(abs(expected), df=4))
    assert result.mean_difference == pytest.approx(-0.6)


def test_dm_falls_back_to_lag_zero_variance_when_the_estimate_is_not_positive() -> None:
    # d alternates 2, 0: gamma_0 = 1, gamma_1 = -5/6, so gamma_0 + 2 gamma_1 < 0.
    loss_model = np.array([3.0, 1.0, 3.0, 1.0, 3.0, 1.0])
    loss_baseline = np.ones(6)
    hln = math.sqrt((6 + 1 - 4 + 2 / 6) / 6)
    expected = hln * 1.0 / math.sqrt(1.0 / 6)
    assert diebold_mariano(loss_model, loss_baseline, h=2).statistic == pytest.approx(expected)


def test_dm_with_identical_losses_is_not_significant() -> None:
    losses = np.array([0.5, 1.0, 2.0, 0.1])
    result = diebold_mariano(losses, losses.copy(), h=3)
    assert (result.statistic, result.p_value, result.mean_difference) == (0.0, 1.0, 0.0)


def test_dm_detects_a_clearly_better_model() -> None:
    rng = np.random.default_rng(7)
    baseline = np.abs(rng.normal(0.0, 1.0, 200))
    model = 0.6 * baseline + np.abs(rng.normal(0.0, 0.05, 200))
    result = diebold_mariano(model, baseline, h=1)
    assert result.statistic < 0
    assert result.p_value < 0.01
    # and the reverse comparison is the mirror image
    assert diebold_mariano(baseline, model, h=1).statistic == pytest.approx(-result.statistic)


def test_dm_validates_its_input() -> None:
    with pytest.raises(ValueError):
        diebold_mariano(np.ones(3), np.ones(3), h=0)
    with pytest.raises(ValueError, match="at least 2"):
        diebold_mariano(np.ones(1), np.zeros(1), h=1)


def test_dm_with_a_constant_difference_is_infinitely_significant() -> None:
    result = diebold_mariano(np.full(4, 1.0), np.full(4, 2.0), h=1)
    assert (result.statistic, result.p_value, result.mean_difference) == (-math.inf, 0.0, -1.0)
