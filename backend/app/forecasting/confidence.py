"""The confidence score: how likely a forecast is to land close to the actual price.

Definition: the confidence score of a forecast is the model's probability that the actual price
lands within ±``tolerance`` (a fraction, e.g. 0.02 = 2 %) of the predicted price, under its
log-normal predictive distribution with median = the predicted price and log-sigma =
``sigma * scale``. ``sigma`` is the model's own standard deviation of the log-price error at that
step; ``scale`` recalibrates it on the model's past walk-forward errors
(:func:`fit_hit_scale`: the scale at which the past scores' average equals the share of past
forecasts that did land within the tolerance), so an overconfident model gets a scale above 1
and lower scores:

    confidence = Φ(log(1 + tolerance) / (scale·sigma)) - Φ(log(1 - tolerance) / (scale·sigma))

A well-calibrated score means: of all forecasts given confidence ≈ 0.6, about 60 % land within
the tolerance. :func:`calibration_table` checks exactly that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from scipy.stats import norm

# median(|Z|) of a standard normal: turns a median absolute deviation into a standard deviation.
MAD_TO_SD = 0.67449
MIN_SCALE = 0.2
MAX_SCALE = 5.0
# Below this many errors a robust scale is noise; trust the model's own sigma instead.
MIN_ERRORS_FOR_SCALE = 5
DEFAULT_EDGES: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def hit_probability(sigma: np.ndarray | float, tolerance: float, scale: float = 1.0) -> np.ndarray:
    """Probability that the actual price is within ±tolerance of the predicted (median) price."""
    if not 0 < tolerance < 1:
        raise ValueError(f"tolerance must be a fraction strictly between 0 and 1, got {tolerance}")
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale}")
    spread = scale * np.asarray(sigma, dtype=np.float64)
    if np.any(spread <= 0):
        raise ValueError("sigma must be positive")
    probability = norm.cdf(np.log1p(tolerance) / spread) - norm.cdf(np.log1p(-tolerance) / spread)
    return np.asarray(probability, dtype=np.float64)


def is_hit(actual: np.ndarray, predicted: np.ndarray, tolerance: float) -> np.ndarray:
    """Whether each actual price is within ±tolerance of its predicted price (the scored event).

    predicted·(1 - tolerance) <= actual <= predicted·(1 + tolerance): the event whose probability
    :func:`hit_probability` gives.
    """
    actual_arr = np.asarray(actual, dtype=np.float64)
    predicted_arr = np.asarray(predicted, dtype=np.float64)
    within = (actual_arr >= predicted_arr * (1.0 - tolerance)) & (
        actual_arr <= predicted_arr * (1.0 + tolerance)
    )
    return np.asarray(within, dtype=np.bool_)


def _paired(log_errors: np.ndarray, sigmas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    errors = np.asarray(log_errors, dtype=np.float64)
    spreads = np.asarray(sigmas, dtype=np.float64)
    if errors.shape != spreads.shape or errors.ndim != 1:
        raise ValueError(f"log_errors {errors.shape} and sigmas {spreads.shape} must be equal 1-D")
    return errors, spreads


def fit_sigma_scale(log_errors: np.ndarray, sigmas: np.ndarray) -> float:
    """Robust ratio of actual log errors to the model's sigma: median(|e / sigma|) / 0.67449.

    The median makes one crash window unable to blow up every later score. Clipped to
    [0.2, 5.0]; with fewer than 5 errors returns 1.0 (the model's sigma as is).
    """
    errors, spreads = _paired(log_errors, sigmas)
    if errors.shape[0] < MIN_ERRORS_FOR_SCALE:
        return 1.0
    if np.any(spreads <= 0):
        raise ValueError("sigmas must be positive")
    scale = float(np.median(np.abs(errors / spreads))) / MAD_TO_SD
    return float(np.clip(scale, MIN_SCALE, MAX_SCALE))


def fit_hit_scale(log_errors: np.ndarray, sigmas: np.ndarray, tolerance: float) -> float:
    """The sigma scale that makes past confidence scores match how often forecasts were hit.

    Solves mean(hit_probability(sigma_i, tolerance, scale)) = observed share of past errors
    within the tolerance. Crypto errors are fat-tailed: a scale fitted to their spread as a
    whole (:func:`fit_sigma_scale`) describes the tails and the centre badly at once, while
    this one calibrates exactly the event the confidence score is about. Clipped to
    [0.2, 5.0]; with fewer than 5 errors returns 1.0 (the model's sigma as is).
    """
    errors, spreads = _paired(log_errors, sigmas)
    if errors.shape[0] < MIN_ERRORS_FOR_SCALE:
        return 1.0
    hits = (errors >= np.log1p(-tolerance)) & (errors <= np.log1p(tolerance))
    target = float(hits.mean())

    def excess(scale: float) -> float:  # decreasing in scale: wider spread, fewer hits
        return float(hit_probability(spreads, tolerance, scale).mean()) - target

    low, high = np.log(MIN_SCALE), np.log(MAX_SCALE)
    if excess(MIN_SCALE) <= 0:
        return MIN_SCALE
    if excess(MAX_SCALE) >= 0:
        return MAX_SCALE
    for _ in range(60):  # bisection on log(scale): 60 halvings reach float precision
        middle = (low + high) / 2
        if excess(float(np.exp(middle))) > 0:
            low = middle
        else:
            high = middle
    return float(np.exp((low + high) / 2))


@dataclass(frozen=True)
class CalibrationBucket:
    """Forecasts whose confidence fell in [lower, upper): how confident, how often right."""

    lower: float
    upper: float
    count: int
    mean_confidence: float | None
    hit_rate: float | None


def calibration_table(
    confidences: np.ndarray, hits: np.ndarray, edges: Sequence[float] = DEFAULT_EDGES
) -> list[CalibrationBucket]:
    """Bucket forecasts by confidence; compare mean confidence with the observed hit rate.

    Buckets are [edges[i], edges[i + 1]), the last one closed so a confidence of exactly 1.0
    counts. Confidences outside [edges[0], edges[-1]] are left out. Empty buckets have count 0
    and None for both rates.
    """
    conf = np.asarray(confidences, dtype=np.float64)
    hit = np.asarray(hits, dtype=np.bool_)
    if conf.shape != hit.shape or conf.ndim != 1:
        raise ValueError(f"confidences {conf.shape} and hits {hit.shape} must be equal 1-D")
    bounds = [float(e) for e in edges]
    if len(bounds) < 2 or any(hi <= lo for lo, hi in pairwise(bounds)):
        raise ValueError(f"edges must be at least two strictly increasing values, got {edges}")
    buckets = []
    for i, (lower, upper) in enumerate(pairwise(bounds)):
        last = i == len(bounds) - 2
        inside = (conf >= lower) & ((conf <= upper) if last else (conf < upper))
        buckets.append(_bucket(lower, upper, conf[inside], hit[inside]))
    return buckets


def _bucket(lower: float, upper: float, conf: np.ndarray, hit: np.ndarray) -> CalibrationBucket:
    count = int(conf.shape[0])
    if count == 0:
        return CalibrationBucket(lower, upper, 0, None, None)
    return CalibrationBucket(lower, upper, count, float(conf.mean()), float(hit.mean()))
