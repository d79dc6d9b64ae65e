"""Async CoinGecko client for historical prices, plus candles built from its price samples.

Pure ingestion code: httpx only, no web framework, no database. Nothing here was checked
against the live API (it cannot be reached from where this was written); the behaviour
follows CoinGecko's published documentation, cited below, and should be re-checked live.

Endpoints (docs.coingecko.com, "Coin Historical Chart Data within Time Range by ID" and
"Coin OHLC Chart by ID"):

* ``GET /coins/{id}/market_chart/range?vs_currency=usd&from=<unix s>&to=<unix s>`` answers
  ``{"prices": [[ms, price], ...], "market_caps": [[ms, cap], ...],
  "total_volumes": [[ms, volume_24h], ...]}``. Granularity is automatic: a range of one day
  ending now gives ~5-minutely samples, 1 to 90 days hourly, above 90 days daily (00:00 UTC).
  Long ranges are therefore fetched in chunks of at most ``max_range_days`` (90) days so
  every chunk stays hourly. These are price *samples* (snapshots), not candles, and
  ``total_volumes`` is a rolling 24-hour total in the quote currency, not a per-sample volume.
* ``GET /coins/{id}/ohlc?vs_currency=usd&days=N`` answers ``[[ms, open, high, low, close],
  ...]`` where the timestamp is the candle's CLOSE time. ``days`` is one of 1, 7, 14, 30,
  90, 180, 365 (``max`` is listed for the paid Pro API only). Candle length is automatic:
  1-2 days -> 30 minutes, 3-30 days -> 4 hours, 31 days and beyond -> 4 days. There is no
  volume in this endpoint.

Plans and authentication: the keyless public API and the Demo plan share the root
``https://api.coingecko.com/api/v3`` (Demo key in the ``x-cg-demo-api-key`` header); paid
plans use ``https://pro-api.coingecko.com/api/v3`` with ``x-cg-pro-api-key``. Keys are sent
in headers only (never in the query string, where they would end up in URLs and logs) and are
never logged or put in an exception message. The Demo plan is documented to serve only the
past 365 days of history.

Failures: 429 (rate limited; the response may carry ``Retry-After``, e.g. ``retry-after: 119``
was seen on a real 429), 408, 5xx and transport errors/timeouts are retried with
``Retry-After`` (capped) or exponential backoff with full jitter, then raise
:class:`CoinGeckoRetryable`. Any other non-2xx status (400 bad parameter, 401 missing or bad
key, 403 blocked, 404 unknown coin id) and any malformed payload raise :class:`CoinGeckoFatal`
at once. Upstream data is validated like user input: every number finite and non-negative,
timestamps integer milliseconds, rows of the right length, timestamps strictly increasing.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from operator import attrgetter
from types import TracebackType
from typing import Final, Literal, Self
from urllib.parse import quote

import httpx

from app.market import EPOCH, Candle, Timeframe

__all__ = [
    "BASE_URLS",
    "KEY_HEADERS",
    "OHLC_DAYS",
    "CoinGeckoClient",
    "CoinGeckoConfig",
    "CoinGeckoError",
    "CoinGeckoFatal",
    "CoinGeckoRetryable",
    "MarketPoint",
    "OhlcBar",
    "Plan",
    "hourly_candles_from_points",
    "ohlc_candle_length",
    "parse_market_chart",
    "parse_ohlc",
]

log = logging.getLogger(__name__)

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
# Values the docs list for /ohlc's ``days``; "max" is only listed for the Pro API.
OHLC_DAYS: Final[frozenset[int]] = frozenset({1, 7, 14, 30, 90, 180, 365})
# Above 90 days market_chart/range switches from hourly to daily samples.
_HOURLY_LIMIT_DAYS: Final = 90

_RETRY_STATUSES: Final = frozenset({408, 429})
# Plausible millisecond timestamps: 2001-09-09 .. 2286-11-20. A value in seconds (~1.7e9)
# or microseconds (~1.7e15) falls outside, so a unit mix-up is caught instead of stored.
_MIN_MS: Final = 10**12
_MAX_MS: Final = 10**13
_COIN_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")
_VS_CURRENCY = re.compile(r"[a-z0-9]{1,20}")
_SHORT_ERROR_CHARS: Final = 120


# --------------------------------------------------------------------------- errors


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


# --------------------------------------------------------------------------- data types


@dataclass(frozen=True, slots=True)
class MarketPoint:
    """One market_chart sample. ``volume`` is CoinGecko's rolling 24 h total in the quote
    currency at that instant, NOT the volume traded since the previous sample."""

    timestamp: datetime  # tz-aware UTC, millisecond precision, as sent by CoinGecko
    price: float
    market_cap: float | None  # None when the response had no market cap for this instant
    volume: float | None  # None when the response had no total_volume for this instant


@dataclass(frozen=True, slots=True)
class OhlcBar:
    """One /ohlc row. CoinGecko documents its timestamp as the candle's CLOSE time, so it is
    named ``close_time`` here (our :class:`Candle` is keyed by open time). The candle length
    depends on ``days`` (see :func:`ohlc_candle_length`). /ohlc carries no volume, so this is
    not a :class:`Candle`: callers choose what to do rather than store an invented volume."""

    close_time: datetime  # tz-aware UTC
    open: float
    high: float
    low: float
    close: float


# --------------------------------------------------------------------------- config


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


# --------------------------------------------------------------------------- client


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

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
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

    async def ohlc(self, coin_id: str, days: int | str, vs_currency: str = "usd") -> list[OhlcBar]:
        """CoinGecko's own OHLC bars for the last ``days`` days (see :func:`ohlc_candle_length`).

        ``days`` must be one of :data:`OHLC_DAYS` (as int or digit string), or ``"max"`` on
        the Pro plan. Bars carry no volume and are keyed by close time.
        """
        _check_coin_id(coin_id)
        _check_vs_currency(vs_currency)
        days_param = _ohlc_days_param(days, self._config.plan)
        path = f"/coins/{quote(coin_id, safe='')}/ohlc"
        params = {"vs_currency": vs_currency, "days": days_param}
        payload, attempts = await self._get_json(path, params, coin_id=coin_id)
        try:
            return parse_ohlc(payload)
        except CoinGeckoFatal as exc:
            raise _with_context(exc, coin_id, path, attempts) from exc

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


# --------------------------------------------------------------------------- parsing


def parse_market_chart(payload: object) -> list[MarketPoint]:
    """Validate a market_chart(/range) body and join its three series by timestamp.

    ``prices`` is required; ``market_caps`` / ``total_volumes`` may be missing, and a
    ``null`` value in them becomes None. Raises :class:`CoinGeckoFatal` naming the first bad
    element, e.g. ``prices[3][1]``.
    """
    if not isinstance(payload, dict):
        raise CoinGeckoFatal(f"expected a JSON object, got {_json_type(payload)}")
    if "prices" not in payload:
        raise CoinGeckoFatal("the response has no 'prices'")
    prices = _pairs(payload["prices"], "prices", nullable=False)
    caps = _pairs(payload.get("market_caps", []), "market_caps", nullable=True)
    volumes = _pairs(payload.get("total_volumes", []), "total_volumes", nullable=True)
    cap_at = dict(caps)
    volume_at = dict(volumes)
    points = []
    for ms, price in prices:
        assert price is not None  # nullable=False
        points.append(MarketPoint(_from_ms(ms), price, cap_at.get(ms), volume_at.get(ms)))
    return points


def parse_ohlc(payload: object) -> list[OhlcBar]:
    """Validate an /ohlc body: rows ``[ms, open, high, low, close]``, strictly increasing
    time, finite non-negative prices, and ``low <= open, close <= high``."""
    rows = _rows(payload, "ohlc")
    bars: list[OhlcBar] = []
    previous: int | None = None
    for i, row in enumerate(rows):
        where = f"ohlc[{i}]"
        if not isinstance(row, list) or len(row) != 5:
            raise CoinGeckoFatal(
                f"{where}: expected [ms, open, high, low, close], got {_shape(row)}"
            )
        ms = _timestamp(row[0], f"{where}[0]", previous)
        open_, high, low, close = (
            _number(value, f"{where}[{j}]") for j, value in enumerate(row[1:], start=1)
        )
        if not low <= min(open_, close) <= max(open_, close) <= high:
            raise CoinGeckoFatal(f"{where}: inconsistent bar (low <= open, close <= high fails)")
        bars.append(OhlcBar(_from_ms(ms), open_, high, low, close))
        previous = ms
    return bars


def _pairs(value: object, name: str, *, nullable: bool) -> list[tuple[int, float | None]]:
    rows = _rows(value, name)
    pairs: list[tuple[int, float | None]] = []
    previous: int | None = None
    for i, row in enumerate(rows):
        where = f"{name}[{i}]"
        if not isinstance(row, list) or len(row) != 2:
            raise CoinGeckoFatal(f"{where}: expected [ms, value], got {_shape(row)}")
        ms = _timestamp(row[0], f"{where}[0]", previous)
        number = None if nullable and row[1] is None else _number(row[1], f"{where}[1]")
        pairs.append((ms, number))
        previous = ms
    return pairs


def _rows(value: object, name: str) -> list[object]:
    if not isinstance(value, list):
        raise CoinGeckoFatal(f"{name}: expected a list, got {_json_type(value)}")
    return value


def _timestamp(value: object, where: str, previous: int | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise CoinGeckoFatal(
            f"{where}: timestamp must be integer milliseconds, got {_json_type(value)}"
        )
    if not _MIN_MS <= value < _MAX_MS:
        raise CoinGeckoFatal(f"{where}: timestamp {value} is not a plausible millisecond time")
    if previous is not None and value <= previous:
        raise CoinGeckoFatal(f"{where}: timestamp {value} is not after the previous row's")
    return value


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CoinGeckoFatal(f"{where}: expected a number, got {_json_type(value)}")
    try:
        number = float(value)
    except OverflowError:  # an integer beyond float range, e.g. 10**400
        raise CoinGeckoFatal(f"{where}: number is not finite") from None
    if not math.isfinite(number):
        raise CoinGeckoFatal(f"{where}: number is not finite")
    if number < 0:
        raise CoinGeckoFatal(f"{where}: number is negative")
    return number


def _from_ms(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def _json_type(value: object) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", float: "float"}
    if value is None:
        return "null"
    return names.get(type(value), type(value).__name__)


def _shape(row: object) -> str:
    return f"an array of {len(row)}" if isinstance(row, list) else _json_type(row)


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


def _ohlc_days_param(days: int | str, plan: Plan) -> str:
    if days == "max":
        if plan != "pro":
            raise ValueError("days='max' is only documented for the Pro API")
        return "max"
    if isinstance(days, str) and days.isdecimal():
        days = int(days)
    if isinstance(days, bool) or not isinstance(days, int) or days not in OHLC_DAYS:
        raise ValueError(f"days must be one of {sorted(OHLC_DAYS)} (or 'max' on Pro)")
    return str(days)


def ohlc_candle_length(days: int | str) -> timedelta:
    """The documented automatic /ohlc candle length for a ``days`` value.

    1-2 days: 30 minutes; 3-30 days: 4 hours; 31 days and beyond (and "max"): 4 days.
    """
    if days == "max":
        return timedelta(days=4)
    count = int(days)
    if count < 1:
        raise ValueError("days must be >= 1")
    if count <= 2:
        return timedelta(minutes=30)
    if count <= 30:
        return timedelta(hours=4)
    return timedelta(days=4)


# --------------------------------------------------------------------------- candles


def hourly_candles_from_points(
    points: Sequence[MarketPoint],
    timeframe: Timeframe = Timeframe.H1,
    *,
    complete_before: datetime | None = None,
) -> list[Candle]:
    """Candles per aligned ``timeframe`` bucket, built from price samples.

    open = first sample's price in the bucket, high = max, low = min, close = last.
    These are sampled prices, not trades: high/low are the extremes of the samples and
    understate the real range; with hourly samples an H1 candle has a single sample
    (open = high = low = close). Buckets with no sample produce no candle (gaps stay gaps).

    ``volume`` is always 0.0 and must be read as "unknown": CoinGecko's ``total_volumes`` is a
    rolling 24-hour total in the QUOTE currency, which cannot be turned into a per-candle
    base-currency volume (what :class:`Candle.volume` means), so nothing is derived from it.
    Market cap has no place in :class:`Candle` and is dropped.

    ``complete_before`` drops buckets that end after that instant (e.g. pass the fetch time
    so the still-open bucket is not stored as if it were final). Points need not be sorted.
    """
    buckets: dict[datetime, list[float]] = {}
    for point in sorted(points, key=attrgetter("timestamp")):
        buckets.setdefault(timeframe.floor(point.timestamp), []).append(point.price)
    candles = []
    for opened, prices in buckets.items():
        if complete_before is not None and opened + timeframe.delta > complete_before:
            continue
        candles.append(
            Candle(
                timestamp=opened,
                open=prices[0],
                high=max(prices),
                low=min(prices),
                close=prices[-1],
                volume=0.0,
            )
        )
    return candles
