"""Lagged-return features: hand-checked values and no look-ahead."""

from __future__ import annotations

import numpy as np
import pytest

from app.forecasting.features import FeatureSpec, lagged_return_features, warmup_rows

# Returns r[1..6] = 1, 2, 3, 4, 5, 6
LOG_PRICES = np.array([0.0, 1.0, 3.0, 6.0, 10.0, 15.0, 21.0])


def small_features() -> tuple[np.ndarray, list[str]]:
    return lagged_return_features(
        LOG_PRICES, lags=2, volatility_window=3, short_window=2, long_window=3
    )


def test_feature_names_follow_the_windows() -> None:
    _, names = small_features()
    assert names == ["return_lag_1", "return_lag_2", "volatility_3", "return_sum_2", "return_sum_3"]
    assert FeatureSpec().names[:2] == ["return_lag_1", "return_lag_2"]
    assert FeatureSpec().names[-3:] == ["volatility_24", "return_sum_4", "return_sum_24"]
    assert len(FeatureSpec().names) == 27


def test_rows_hold_hand_computed_values() -> None:
    matrix, _ = small_features()
    assert matrix.shape == (7, 5)
    # row 3: r[3]=3, r[2]=2, std(1, 2, 3)=1, lp[3]-lp[1]=5, lp[3]-lp[0]=6
    np.testing.assert_allclose(matrix[3], [3.0, 2.0, 1.0, 5.0, 6.0])
    # row 6: r[6]=6, r[5]=5, std(4, 5, 6)=1, 21-10=11, 21-6=15
    np.testing.assert_allclose(matrix[6], [6.0, 5.0, 1.0, 11.0, 15.0])


def test_warmup_rows_are_entirely_nan() -> None:
    matrix, _ = small_features()
    assert warmup_rows(FeatureSpec(2, 3, 2, 3)) == 3
    assert np.isnan(matrix[:3]).all()
    assert np.isfinite(matrix[3:]).all()


def test_no_look_ahead_changing_the_future_leaves_past_rows_unchanged() -> None:
    rng = np.random.default_rng(11)
    log_prices = np.cumsum(rng.normal(0.0, 0.01, 120))
    original, _ = lagged_return_features(log_prices, lags=24)
    for t in (24, 60, 118):
        changed = log_prices.copy()
        changed[t + 1 :] += rng.normal(0.0, 0.5, changed.shape[0] - t - 1)
        perturbed, _ = lagged_return_features(changed, lags=24)
        np.testing.assert_array_equal(perturbed[: t + 1], original[: t + 1])
        # the change is visible from the next row on, so the comparison above is not vacuous
        assert not np.array_equal(perturbed[t + 1], original[t + 1])


def test_features_of_a_short_series_are_all_warmup() -> None:
    matrix, names = lagged_return_features(np.zeros(5), lags=24)
    assert matrix.shape == (5, len(names))
    assert np.isnan(matrix).all()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lags": 0},
        {"lags": 3, "volatility_window": 1},
        {"lags": 3, "short_window": 0},
        {"lags": 3, "long_window": 0},
    ],
)
def test_invalid_windows_are_rejected(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        lagged_return_features(LOG_PRICES, **kwargs)


def test_two_dimensional_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="1-D"):
        lagged_return_features(np.zeros((4, 4)), lags=2)
