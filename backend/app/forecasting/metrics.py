"""Forecast accuracy metrics and the Diebold-Mariano test against a baseline.

All functions take 1-D float arrays of equal, non-zero length (one entry per forecast window) and
return plain floats. Percent metrics (MAPE, sMAPE) are in percent, shares are in [0, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import t as student_t


def _arrays(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """Validate and convert: 1-D, non-empty, all the same length."""
    converted = tuple(np.asarray(a, dtype=np.float64) for a in arrays)
    first = converted[0]
    if first.ndim != 1 or first.shape[0] == 0:
        raise ValueError(f"expected a non-empty 1-D array, got shape {first.shape}")
    for other in converted[1:]:
        if other.shape != first.shape:
            raise ValueError(f"arrays must have equal shapes, got {first.shape} and {other.shape}")
    return converted


def mae(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Mean absolute error."""
    a, p = _arrays(actual, predicted)
    return float(np.mean(np.abs(a - p)))


def rmse(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Root mean squared error."""
    a, p = _arrays(actual, predicted)
    return float(math.sqrt(np.mean((a - p) ** 2)))


def mape(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Mean absolute percentage error, in percent: 100 * mean(|a - p| / |a|)."""
    a, p = _arrays(actual, predicted)
    return float(100.0 * np.mean(np.abs(a - p) / np.abs(a)))


def smape(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Symmetric MAPE, in percent: 100 * mean(2 |a - p| / (|a| + |p|)), range 0..200."""
    a, p = _arrays(actual, predicted)
    return float(100.0 * np.mean(2.0 * np.abs(a - p) / (np.abs(a) + np.abs(p))))


def mase(actual: np.ndarray, predicted: np.ndarray, scale: np.ndarray) -> float:
    """Mean absolute scaled error: mean(|a - p| / scale), one scale per window.

    ``scale`` is each window's :func:`naive_scale`; MASE < 1 means smaller errors than the
    typical recent naive h-step change.
    """
    a, p, s = _arrays(actual, predicted, scale)
    if np.any(s <= 0):
        raise ValueError("MASE scale must be positive in every window")
    return float(np.mean(np.abs(a - p) / s))


def naive_scale(y_history: np.ndarray, h: int, window: int) -> float:
    """Mean |y[t] - y[t - h]| over the last ``window`` points t of the history.

    Trailing rather than whole-history: a series that grew 100x has tiny early changes, which
    would make the scale (and so MASE) reflect the price level instead of recent behaviour.
    Uses all available changes when the history is shorter than ``window + h``.
    """
    y = np.asarray(y_history, dtype=np.float64)
    if h < 1 or window < 1:
        raise ValueError(f"h and window must be at least 1, got h={h}, window={window}")
    if y.ndim != 1 or y.shape[0] <= h:
        raise ValueError(f"need more than h={h} points of 1-D history, got shape {y.shape}")
    changes = np.abs(y[h:] - y[:-h])
    return float(np.mean(changes[-window:]))


def relative_mae(model_errors_abs: np.ndarray, baseline_errors_abs: np.ndarray) -> float:
    """MAE of the model divided by the baseline's MAE on the same windows (< 1 = better)."""
    m, b = _arrays(model_errors_abs, baseline_errors_abs)
    baseline_mae = float(np.mean(b))
    if baseline_mae == 0:
        return math.nan
    return float(np.mean(m)) / baseline_mae


def directional_accuracy(
    origin_price: np.ndarray, actual: np.ndarray, predicted: np.ndarray
) -> float:
    """Share of windows where the forecast called the direction of the move from the origin.

    A window scores 1 when sign(predicted - origin) == sign(actual - origin), including when both
    are flat; 0 when the signs are opposite; and 0.5 when exactly one of them is flat. A flat
    forecast makes no directional call, so it earns what a coin flip would: the random walk
    scores 0.5 rather than 0, and every score stays comparable to that no-skill level. Read the
    result against :func:`up_share`, the accuracy of always calling "up".
    """
    o, a, p = _arrays(origin_price, actual, predicted)
    predicted_sign = np.sign(p - o)
    actual_sign = np.sign(a - o)
    one_flat = (predicted_sign == 0) != (actual_sign == 0)
    score = np.where(one_flat, 0.5, (predicted_sign == actual_sign).astype(np.float64))
    return float(np.mean(score))


def up_share(origin_price: np.ndarray, actual: np.ndarray) -> float:
    """Share of windows where the price rose (actual > origin)."""
    o, a = _arrays(origin_price, actual)
    return float(np.mean(a > o))


def coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Share of windows whose actual value lies within [lower, upper] (bounds included)."""
    a, lo, hi = _arrays(actual, lower, upper)
    return float(np.mean((a >= lo) & (a <= hi)))


@dataclass(frozen=True)
class DMResult:
    """Diebold-Mariano test result; a negative statistic means the model has the lower loss."""

    statistic: float
    p_value: float
    mean_difference: float


def diebold_mariano(loss_model: np.ndarray, loss_baseline: np.ndarray, h: int) -> DMResult:
    """Diebold-Mariano (1995) test of equal expected loss, with the HLN (1997) correction.

    d_t = loss_model - loss_baseline. h-step forecast errors are autocorrelated up to lag h - 1,
    so the variance of mean(d) uses the autocovariances up to that lag (rectangular kernel, as in
    the original paper). If that estimate is not positive (possible with the rectangular kernel),
    the lag-0 variance is used instead. The Harvey-Leybourne-Newbold factor
    sqrt((n + 1 - 2h + h(h - 1) / n) / n) corrects the small-sample size, and the p-value is
    two-sided from Student's t with n - 1 degrees of freedom.

    Identical losses give statistic 0 and p-value 1. A constant non-zero difference (zero
    variance) gives an infinite statistic of its sign and p-value 0.
    """
    if h < 1:
        raise ValueError(f"h must be at least 1, got {h}")
    lm, lb = _arrays(loss_model, loss_baseline)
    d = lm - lb
    if not np.any(d):
        return DMResult(statistic=0.0, p_value=1.0, mean_difference=0.0)
    n = d.shape[0]
    if n < 2:
        raise ValueError("the Diebold-Mariano test needs at least 2 loss pairs")
    mean_d = float(np.mean(d))
    variance = _long_run_variance(d, max_lag=min(h - 1, n - 1))
    if variance == 0.0:
        return DMResult(
            statistic=math.copysign(math.inf, mean_d), p_value=0.0, mean_difference=mean_d
        )
    hln = math.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    statistic = hln * mean_d / math.sqrt(variance / n)
    p_value = float(2.0 * student_t.sf(abs(statistic), df=n - 1))
    return DMResult(statistic=statistic, p_value=p_value, mean_difference=mean_d)


def _long_run_variance(d: np.ndarray, max_lag: int) -> float:
    """gamma_0 + 2 * sum(gamma_k, k = 1..max_lag), falling back to gamma_0 if not positive."""
    centred = d - d.mean()
    n = centred.shape[0]
    gamma_0 = float(centred @ centred) / n
    long_run = gamma_0 + 2.0 * sum(
        float(centred[k:] @ centred[:-k]) / n for k in range(1, max_lag + 1)
    )
    return float(long_run) if long_run > 0 else gamma_0
