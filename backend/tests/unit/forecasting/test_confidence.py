"""Confidence score, its recalibration scale and the calibration table."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.forecasting.confidence import (
    CalibrationBucket,
    calibration_table,
    fit_hit_scale,
    fit_sigma_scale,
    hit_probability,
    is_hit,
)


def normal_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def test_hit_probability_matches_the_lognormal_formula() -> None:
    sigma = math.log(1.02)  # so the upper limit is exactly one sigma away
    expected = normal_cdf(1.0) - normal_cdf(math.log(0.98) / sigma)
    assert float(hit_probability(sigma, 0.02)) == pytest.approx(expected)


def test_scale_acts_as_a_sigma_multiplier() -> None:
    sigmas = np.array([0.005, 0.01, 0.03])
    scaled = hit_probability(sigmas, 0.02, 2.0)
    np.testing.assert_allclose(scaled, hit_probability(2 * sigmas, 0.02))


def test_hit_probability_falls_as_sigma_grows_and_rises_with_tolerance() -> None:
    p = hit_probability(np.array([0.001, 0.01, 0.1]), 0.02)
    assert p[0] > p[1] > p[2]
    assert p[0] > 0.999
    assert float(hit_probability(0.01, 0.05)) > float(hit_probability(0.01, 0.01))


@pytest.mark.parametrize(
    ("sigma", "tolerance", "scale"),
    [(0.0, 0.02, 1.0), (0.01, 0.0, 1.0), (0.01, 1.0, 1.0), (0.01, 0.02, 0.0)],
)
def test_hit_probability_validates(sigma: float, tolerance: float, scale: float) -> None:
    with pytest.raises(ValueError):
        hit_probability(sigma, tolerance, scale)


def test_is_hit_is_the_event_hit_probability_measures() -> None:
    predicted = np.full(4, 100.0)
    actual = np.array([101.99, 98.01, 102.01, 97.99])
    np.testing.assert_array_equal(is_hit(actual, predicted, 0.02), [True, True, False, False])


def test_fit_sigma_scale_hand_value() -> None:
    errors = np.array([1.0, -2.0, 3.0, -4.0, 5.0])  # median |z| = 3
    assert fit_sigma_scale(errors, np.ones(5)) == pytest.approx(3 / 0.67449)


def test_fit_sigma_scale_recovers_the_true_error_ratio() -> None:
    rng = np.random.default_rng(3)
    sigmas = rng.uniform(0.005, 0.03, 2000)
    errors = sigmas * rng.standard_normal(2000)
    assert 0.9 < fit_sigma_scale(errors, sigmas) < 1.1
    # Errors twice as large as the model claims: the scale finds the factor 2.
    assert fit_sigma_scale(2 * errors, sigmas) == pytest.approx(2.0, rel=0.08)


def test_fit_sigma_scale_clips_and_needs_five_errors() -> None:
    assert fit_sigma_scale(np.full(4, 10.0), np.ones(4)) == 1.0
    assert fit_sigma_scale(np.full(10, 100.0), np.ones(10)) == 5.0
    assert fit_sigma_scale(np.full(10, 1e-6), np.ones(10)) == 0.2


def test_calibration_table_hand_example() -> None:
    confidences = np.array([0.1, 0.15, 0.5, 1.0, 0.95])
    hits = np.array([True, False, True, True, False])
    table = calibration_table(confidences, hits)
    assert [b.count for b in table] == [2, 0, 1, 0, 2]
    assert (table[0].lower, table[0].upper, table[0].hit_rate) == (0.0, 0.2, 0.5)
    assert table[0].mean_confidence == pytest.approx((0.1 + 0.15) / 2)
    assert table[1] == CalibrationBucket(0.2, 0.4, 0, None, None)
    assert table[2].hit_rate == 1.0
    # the last bucket is closed: a confidence of exactly 1.0 is counted
    assert (table[4].lower, table[4].upper, table[4].hit_rate) == (0.8, 1.0, 0.5)
    assert table[4].mean_confidence == pytest.approx((1.0 + 0.95) / 2)


def test_calibration_table_bucket_edges_are_half_open() -> None:
    table = calibration_table(np.array([0.2, 0.4]), np.array([True, False]), edges=(0, 0.2, 0.4, 1))
    assert [b.count for b in table] == [0, 1, 1]


def test_calibration_table_validates() -> None:
    with pytest.raises(ValueError):
        calibration_table(np.array([0.1]), np.array([True, False]))
    with pytest.raises(ValueError):
        calibration_table(np.array([0.1]), np.array([True]), edges=(0.0, 0.5, 0.5, 1.0))


def test_fit_sigma_scale_validates() -> None:
    with pytest.raises(ValueError, match="equal"):
        fit_sigma_scale(np.ones(6), np.ones(5))
    with pytest.raises(ValueError, match="positive"):
        fit_sigma_scale(np.ones(6), np.array([1.0, 1.0, 0.0, 1.0, 1.0, 1.0]))


def test_fit_hit_scale_recovers_the_true_error_ratio() -> None:
    rng = np.random.default_rng(4)
    sigmas = rng.uniform(0.005, 0.03, 4000)
    errors = sigmas * rng.standard_normal(4000)
    assert 0.9 < fit_hit_scale(errors, sigmas, 0.02) < 1.1
    assert fit_hit_scale(2 * errors, sigmas, 0.02) == pytest.approx(2.0, rel=0.1)


def test_fit_hit_scale_makes_mean_confidence_equal_the_past_hit_rate() -> None:
    # Fat tails (Student t, 2 degrees of freedom): a spread-based scale misses the centre.
    rng = np.random.default_rng(5)
    sigmas = np.full(3000, 0.02)
    errors = 0.01 * rng.standard_t(2, 3000)
    tolerance = 0.02
    hit_rate = float(np.mean(np.abs(errors) <= np.log1p(tolerance)))  # nearly symmetric band
    scale = fit_hit_scale(errors, sigmas, tolerance)
    fitted = float(hit_probability(sigmas, tolerance, scale).mean())
    assert fitted == pytest.approx(hit_rate, abs=0.01)
    robust = float(hit_probability(sigmas, tolerance, fit_sigma_scale(errors, sigmas)).mean())
    assert abs(robust - hit_rate) > abs(fitted - hit_rate)


def test_fit_hit_scale_clips_and_needs_five_errors() -> None:
    assert fit_hit_scale(np.full(4, 10.0), np.ones(4), 0.02) == 1.0
    assert fit_hit_scale(np.zeros(10), np.full(10, 0.01), 0.02) == 0.2  # every one a hit
    assert fit_hit_scale(np.full(10, 1.0), np.full(10, 0.01), 0.02) == 5.0  # none
    with pytest.raises(ValueError, match="equal 1-D"):
        fit_hit_scale(np.ones(6), np.ones(5), 0.02)
