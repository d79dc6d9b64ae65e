"""Async CoinGecko client: market_chart/range in chunks that stay hourly, retried with backoff.

httpx only, no web framework, no database. Nothing here was checked against the live API (it
cannot be reached from where this was written); the behaviour follows CoinGecko's published
documentation and should be re-checked live.

``GET /coins/{id}/market_chart/range`` chooses its granularity from the range: a range of one
day ending now gives ~5-minutely samples, 1 to 90 days hourly, above 90 days daily (00:00 UTC).
Long ranges are therefore fetched in chunks of at most ``max_range_days`` (90) days so every
chunk stays hourly; :mod:`app.ingestion.coingecko.payload` reads each answer.

Failures: 429 (rate limited; the response may carry ``Retry-After``, e.g. ``retry-after: 119``
was seen on a real 429), 408, 5xx and transport errors/timeouts are retried with
``Retry-After`` (capped) or exponential backoff with full jitter, then raise
:class:`CoinGeckoRetryable`. Any other non-2xx status (400 bad parameter, 401 missing or bad
key, 403 blocked, 404 unknown coin id) and any malformed payload raise :class:`CoinGeckoFatal`
at once.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from operator import attrgetter
from typing import Final, Self
from urllib.parse import quote

import httpx

from app.ingestion.coingecko.config import CoinGeckoConfig
from app.ingestion.coingecko.errors import CoinGeckoFatal, CoinGeckoRetryable
from app.ingestion.coingecko.payload import MarketPoint, parse_market_chart
from app.market import EPOCH

__all__ = ["CoinGeckoClient"]

log = logging.getLogger(__name__)

_RETRY_STATUSES: Final = frozenset({408, 429})
_COIN_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")
_VS_CURRENCY = re.compile(r"[a-z0-9]{1,20}")
_SHORT_ERROR_CHARS: Final = 120


class CoinGeckoClient:
    """Async CoinGecko client. Use ``async with`` or call :meth:`aclose`.

    ``client`` may be an existing ``httpx.AsyncClient`` (it is then NOT closed here).
    ``sleep`` and ``rng`` are injectable so tests neither wait nor depend on randomness.
    Requests for one range are made one after another, never concurrently, to stay
    inside rate limits.
    """

    def __init__(
        self,
        config: CoinGeckoConfig | None = None,
        *,
        client: httpx.AsyncClient | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._config = config or CoinGeckoConfig()
        self._owns_client = client is None
        self._client = client if client is not None else httpx.AsyncClient()
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()
        self._headers = {"accept": "application/json", **self._config.auth_headers()}
        self._timeout = httpx.Timeout(self._config.timeout_s)

    @property
    def config(self) -> CoinGeckoConfig:
        return self._config

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    # ------------------------------------------------------------------ endpoints

    async def market_chart_range(
        self, coin_id: str, start: datetime, end: datetime, vs_currency: str = "usd"
    ) -> list[MarketPoint]:
        """Samples with ``start <= timestamp < end``, sorted, one per timestamp.

        The range is split into chunks of ``max_range_days`` so each request stays within
        CoinGecko's hourly granularity; chunk borders overlap by one instant (``to`` of one
        chunk is ``from`` of the next), so a sample returned by both is kept once (the first).
        A chunk that ends within a day of now may come back 5-minutely instead of hourly.
        """
        _check_coin_id(coin_id)
        _check_vs_currency(vs_currency)
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("start and end must be timezone-aware")
        if end <= start:
            raise ValueError("end must be after start")
        path = f"/coins/{quote(coin_id, safe='')}/market_chart/range"
        step = timedelta(days=self._config.max_range_days)
        kept: dict[datetime, MarketPoint] = {}
        chunk_start = start
        while chunk_start < end:
            chunk_end = min(chunk_start + step, end)
            params = {
                "vs_currency": vs_currency,
                "from": str(_floor_seconds(chunk_start)),
                "to": str(_ceil_seconds(chunk_end)),
            }
            payload, attempts = await self._get_json(path, params, coin_id=coin_id)
            try:
                points = parse_market_chart(payload)
            except CoinGeckoFatal as exc:
                raise _with_context(exc, coin_id, path, attempts) from exc
            for point in points:
                if start <= point.timestamp < end and point.timestamp not in kept:
                    kept[point.timestamp] = point
            chunk_start = chunk_end
        return sorted(kept.values(), key=attrgetter("timestamp"))

    # ------------------------------------------------------------------ transport

    async def _get_json(
        self, path: str, params: Mapping[str, str], *, coin_id: str
    ) -> tuple[object, int]:
        """The decoded JSON body of a 2xx answer, and how many attempts it took."""
        url = f"{self._config.root_url}{path}"
        attempts = self._config.max_retries + 1
        for attempt in range(1, attempts + 1):
            status: int | None = None
            retry_after: float | None = None
            try:
                response = await self._client.get(
                    url, params=dict(params), headers=self._headers, timeout=self._timeout
                )
            except httpx.TransportError as exc:  # includes every httpx.TimeoutException
                reason = type(exc).__name__
                if attempt == attempts:
                    raise CoinGeckoRetryable(
                        f"CoinGecko {path} for coin {coin_id!r}: {reason} on all "
                        f"{attempts} attempts",
                        coin_id=coin_id,
                        attempts=attempt,
                    ) from exc
            else:
                status = response.status_code
                if 200 <= status < 300:
                    body = _decode_json(response, coin_id=coin_id, path=path, attempts=attempt)
                    return body, attempt
                if status not in _RETRY_STATUSES and status < 500:
                    raise CoinGeckoFatal(
                        f"CoinGecko {path} for coin {coin_id!r} answered HTTP {status}"
                        f"{_short_error(response)}",
                        coin_id=coin_id,
                        status=status,
                        attempts=attempt,
                    )
                reason = f"HTTP {status}"
                retry_after = _parse_retry_after(response.headers.get("retry-after"))
                if attempt == attempts:
                    raise CoinGeckoRetryable(
                        f"CoinGecko {path} for coin {coin_id!r} still answered HTTP {status} "
                        f"after {attempts} attempts{_short_error(response)}",
                        coin_id=coin_id,
                        status=status,
                        attempts=attempt,
                    )
            delay = self._delay(attempt, retry_after)
            log.warning(
                "CoinGecko %s for coin %s: %s (attempt %d of %d), retrying in %.2f s",
                path,
                coin_id,
                reason,
                attempt,
                attempts,
                delay,
            )
            await self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover - the loop always returns/raises

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Retry-After when given (capped), else full jitter: U(0, min(max, base * 2^(n-1)))."""
        cap = self._config.backoff_max_s
        if retry_after is not None:
            return min(retry_after, cap)
        ceiling = min(cap, self._config.backoff_base_s * 2.0 ** min(attempt - 1, 62))
        return self._rng.uniform(0.0, ceiling)


def _with_context(exc: CoinGeckoFatal, coin_id: str, path: str, attempts: int) -> CoinGeckoFatal:
    return CoinGeckoFatal(
        f"CoinGecko {path} for coin {coin_id!r}: malformed payload: {exc}",
        coin_id=coin_id,
        attempts=attempts,
    )


def _decode_json(response: httpx.Response, *, coin_id: str, path: str, attempts: int) -> object:
    try:
        return response.json()
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError both subclass it
        raise CoinGeckoFatal(
            f"CoinGecko {path} for coin {coin_id!r}: HTTP {response.status_code} body is not JSON",
            coin_id=coin_id,
            status=response.status_code,
            attempts=attempts,
        ) from exc


def _short_error(response: httpx.Response) -> str:
    """CoinGecko's own short error string, never the raw body.

    Documented/observed shapes: ``{"error": "coin not found"}`` and
    ``{"status": {"error_code": 429, "error_message": "..."}}``. Anything else (an HTML page
    from the CDN, say) yields nothing.
    """
    try:
        body = response.json()
    except ValueError:
        return ""
    message: object = None
    code: object = None
    if isinstance(body, dict):
        status = body.get("status")
        error = body.get("error")
        if isinstance(error, dict):  # {"error": {"status": {...}}} on some 401s
            status = error.get("status", status)
            error = None
        if isinstance(status, dict):
            message, code = status.get("error_message"), status.get("error_code")
        if isinstance(error, str):
            message = error
    if not isinstance(message, str) or not message.strip():
        return ""
    text = "".join(ch if ch.isprintable() else " " for ch in message).strip()
    if len(text) > _SHORT_ERROR_CHARS:
        text = text[: _SHORT_ERROR_CHARS - 1] + "…"
    prefix = f" (code {code})" if isinstance(code, int) and not isinstance(code, bool) else ""
    return f"{prefix}: {text}"


def _parse_retry_after(value: str | None) -> float | None:
    """Seconds from ``Retry-After`` (delay-seconds or HTTP-date); None if absent or unusable."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - datetime.now(UTC)).total_seconds())
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _floor_seconds(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(seconds=1)


def _ceil_seconds(moment: datetime) -> int:
    return -((EPOCH - moment) // timedelta(seconds=1))


def _check_coin_id(coin_id: str) -> None:
    if not isinstance(coin_id, str) or not _COIN_ID.fullmatch(coin_id):
        raise ValueError("coin_id must be a CoinGecko API id such as 'bitcoin'")


def _check_vs_currency(vs_currency: str) -> None:
    if not isinstance(vs_currency, str) or not _VS_CURRENCY.fullmatch(vs_currency):
        raise ValueError("vs_currency must be a lower-case code such as 'usd'")
