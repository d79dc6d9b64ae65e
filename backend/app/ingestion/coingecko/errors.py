"""What can go wrong talking to CoinGecko: a failure that retrying may cure, or one it cannot."""

from __future__ import annotations

__all__ = ["CoinGeckoError", "CoinGeckoFatal", "CoinGeckoRetryable"]


class CoinGeckoError(Exception):
    """Base class. ``status`` is the last HTTP status seen (None for transport errors)."""

    def __init__(
        self,
        message: str,
        *,
        coin_id: str | None = None,
        status: int | None = None,
        attempts: int = 0,
    ) -> None:
        super().__init__(message)
        self.coin_id = coin_id
        self.status = status
        self.attempts = attempts


class CoinGeckoRetryable(CoinGeckoError):
    """429 / 408 / 5xx / timeout / transport error that persisted through every retry."""


class CoinGeckoFatal(CoinGeckoError):
    """A request that cannot succeed by repeating it: 4xx other than 408/429, or bad data."""
