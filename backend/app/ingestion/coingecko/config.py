"""How to reach CoinGecko: the plan, its root URL and key header, timeouts and retries.

The keyless public API and the Demo plan share the root ``https://api.coingecko.com/api/v3``
(Demo key in the ``x-cg-demo-api-key`` header); paid plans use
``https://pro-api.coingecko.com/api/v3`` with ``x-cg-pro-api-key``. Keys are sent in headers
only (never in the query string, where they would end up in URLs and logs) and are never logged
or put in an exception message. The Demo plan is documented to serve only the past 365 days of
history.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

__all__ = ["BASE_URLS", "KEY_HEADERS", "CoinGeckoConfig", "Plan"]

Plan = Literal["public", "demo", "pro"]

BASE_URLS: Final[Mapping[Plan, str]] = {
    "public": "https://api.coingecko.com/api/v3",
    "demo": "https://api.coingecko.com/api/v3",
    "pro": "https://pro-api.coingecko.com/api/v3",
}
KEY_HEADERS: Final[Mapping[Plan, str]] = {
    "demo": "x-cg-demo-api-key",
    "pro": "x-cg-pro-api-key",
}
# Above 90 days market_chart/range switches from hourly to daily samples.
_HOURLY_LIMIT_DAYS: Final = 90


@dataclass(frozen=True)
class CoinGeckoConfig:
    """How to reach CoinGecko. ``base_url`` defaults to the plan's documented root."""

    api_key: str | None = field(default=None, repr=False)
    plan: Plan = "public"
    base_url: str | None = None
    timeout_s: float = 10.0
    max_retries: int = 4
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    max_range_days: int = _HOURLY_LIMIT_DAYS

    def __post_init__(self) -> None:
        self._check_access()
        self._check_limits()
        base = (self.base_url or BASE_URLS[self.plan]).rstrip("/")
        object.__setattr__(self, "base_url", base)

    def _check_access(self) -> None:
        """The plan is known and has a key exactly when it needs one."""
        if self.plan not in BASE_URLS:
            raise ValueError(f"plan must be one of {sorted(BASE_URLS)}, not {self.plan!r}")
        if self.plan == "public" and self.api_key:
            raise ValueError("an api_key needs plan='demo' or plan='pro'; 'public' is keyless")
        if self.plan != "public" and not self.api_key:
            raise ValueError(f"plan={self.plan!r} needs an api_key")
        if self.api_key is not None and not _is_header_safe(self.api_key):
            raise ValueError("api_key contains characters that cannot go in an HTTP header")

    def _check_limits(self) -> None:
        if not (math.isfinite(self.timeout_s) and self.timeout_s > 0):
            raise ValueError("timeout_s must be a positive number")
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        for name in ("backoff_base_s", "backoff_max_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0")
        if not 1 <= self.max_range_days <= _HOURLY_LIMIT_DAYS:
            raise ValueError(
                f"max_range_days must be 1..{_HOURLY_LIMIT_DAYS}: longer ranges come back daily"
            )

    @property
    def root_url(self) -> str:
        return self.base_url or BASE_URLS[self.plan]

    def auth_headers(self) -> dict[str, str]:
        """The header carrying the key (empty for the keyless public API)."""
        if self.plan == "public" or self.api_key is None:
            return {}
        return {KEY_HEADERS[self.plan]: self.api_key}


def _is_header_safe(value: str) -> bool:
    return bool(value) and all(" " < ch < "\x7f" for ch in value)
