"""Lagged-return features for machine-learning forecasters, built without look-ahead.

Row ``t`` of the feature matrix describes the market as it was known at the close of step ``t``:
it is computed from ``log_prices[: t + 1]`` only. Changing any later price can therefore never
change rows ``<= t`` — the property that makes a walk-forward backtest honest, and that the unit
tests check directly. Rows without enough history for every feature are NaN (the warm-up);
:func:`warmup_rows` says how many there are.

Returns are 1-step log returns ``r[t] = log_prices[t] - log_prices[t - 1]`` (defined for t >= 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


@dataclass(frozen=True)
class FeatureSpec:
    """Window sizes of the lagged-return features.

    ``lags`` most recent returns; ``volatility_window`` returns in the rolling standard
    deviation; ``short_window`` / ``long_window`` steps in the two cumulative returns (momentum).
    Short series need smaller windows, hence parameters rather than constants.
    """

    lags: int = 24
    volatility_window: int = 24
    short_window: int = 4
    long_window: int = 24

    def __post_init__(self) -> None:
        for field_name in ("lags", "short_window", "long_window"):
            if getattr(self, field_name) < 1:
                raise ValueError(f"{field_name} must be at least 1")
        if self.volatility_window < 2:
            raise ValueError("volatility_window must be at least 2 (a std needs two returns)")

    @property
    def names(self) -> list[str]:
        return [
            *(f"return_lag_{k}" for k in range(1, self.lags + 1)),
            f"volatility_{self.volatility_window}",
            f"return_sum_{self.short_window}",
            f"return_sum_{self.long_window}",
        ]

    @property
    def returns_needed(self) -> int:
        """Returns that row ``t`` looks back over; the first complete row is this index."""
        return max(self.lags, self.volatility_window, self.short_window, self.long_window)


def warmup_rows(spec: FeatureSpec) -> int:
    """Number of leading rows that are NaN (row t holds t returns, the first at index 1)."""
    return spec.returns_needed


def lagged_return_features(
    log_prices: np.ndarray,
    lags: int,
    volatility_window: int = 24,
    short_window: int = 4,
    long_window: int = 24,
) -> tuple[np.ndarray, list[str]]:
    """Feature matrix of shape ``(len(log_prices), n_features)`` and its column names.

    Columns: ``return_lag_1`` (= r[t]) .. ``return_lag_<lags>`` (= r[t - lags + 1]),
    ``volatility_<w>`` (sample std of the last w returns), ``return_sum_<s>`` and
    ``return_sum_<l>`` (log_prices[t] - log_prices[t - s], the cumulative return).
    """
    spec = FeatureSpec(lags, volatility_window, short_window, long_window)
    return feature_matrix(log_prices, spec), spec.names


def feature_matrix(log_prices: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """:func:`lagged_return_features` for a ready-made :class:`FeatureSpec`."""
    log_prices = np.asarray(log_prices, dtype=np.float64)
    if log_prices.ndim != 1:
        raise ValueError(f"log_prices must be 1-D, got shape {log_prices.shape}")
    n = log_prices.shape[0]
    # Index-aligned returns: returns[t] = r[t], returns[0] = NaN (no previous price).
    returns = np.full(n, np.nan)
    returns[1:] = np.diff(log_prices)
    columns = [_lagged(returns, k) for k in range(spec.lags)]
    columns.append(_rolling_std(returns, spec.volatility_window))
    columns.append(_cumulative_return(log_prices, spec.short_window))
    columns.append(_cumulative_return(log_prices, spec.long_window))
    matrix = np.column_stack(columns)
    # Rows without a full look-back are NaN as a whole, so no model trains on partial rows.
    matrix[: min(warmup_rows(spec), n)] = np.nan
    return matrix


def _lagged(series: np.ndarray, shift: int) -> np.ndarray:
    """``out[t] = series[t - shift]`` (NaN where that index is negative)."""
    out = np.full_like(series, np.nan)
    if shift < series.shape[0]:
        out[shift:] = series[: series.shape[0] - shift]
    return out


def _rolling_std(returns: np.ndarray, window: int) -> np.ndarray:
    """``out[t]`` = sample std of ``returns[t - window + 1 : t + 1]`` (trailing, includes t)."""
    out = np.full_like(returns, np.nan)
    if returns.shape[0] >= window:
        out[window - 1 :] = sliding_window_view(returns, window).std(axis=1, ddof=1)
    return out


def _cumulative_return(log_prices: np.ndarray, window: int) -> np.ndarray:
    """``out[t] = log_prices[t] - log_prices[t - window]``."""
    out = np.full_like(log_prices, np.nan)
    if window < log_prices.shape[0]:
        out[window:] = log_prices[window:] - log_prices[:-window]
    return out
