"""Seeded synthetic price series for the forecasting tests."""

from __future__ import annotations

import numpy as np


def geometric_random_walk(
    n: int, *, volatility: float = 0.01, drift: float = 0.0, seed: int = 0, start: float = 100.0
) -> np.ndarray:
    """Prices whose log returns are i.i.d. normal(drift, volatility): a true random walk."""
    rng = np.random.default_rng(seed)
    log_returns = rng.normal(drift, volatility, n - 1)
    prices: np.ndarray = start * np.exp(np.concatenate([[0.0], np.cumsum(log_returns)]))
    return prices
