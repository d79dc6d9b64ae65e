"""The CoinGecko client against hand-written responses in CoinGecko's documented format.

No test reaches the network: respx intercepts every request. The fixture files are NOT
recordings of live responses; tests/fixtures/coingecko/README.md says where their format
comes from.
"""

from __future__ import annotations

import json
import logging
import math
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from app.ingestion.batch import validate_batch
from app.ingestion.coingecko import (
    CoinGeckoClient,
    CoinGeckoConfig,
    CoinGeckoError,
    CoinGeckoFatal,
    CoinGeckoRetryable,
    MarketPoint,
    candle_rows_from_points,
    parse_market_chart,
)
from app.market import Candle, Timeframe

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "coingecko"
PUBLIC = "https://api.coingecko.com/api/v3"
PRO = "https://pro-api.coingecko.com/api/v3"
RANGE = f"{PUBLIC}/coins/bitcoin/market_chart/range"
SECRET = "CG-s3cr3t-t3st-k3y"

FIVE_MIN = "market_chart_range_bitcoin_usd_5m.json"
# The 5-minute fixture covers 2024-03-02 14:00:27 .. 16:00:24 UTC.
FIVE_MIN_START = datetime(2024, 3, 2, 14, tzinfo=UTC)
FIVE_MIN_END = datetime(2024, 3, 2, 16, 5, tzinfo=UTC)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def fixture_response(name: str, status: int = 200, **headers: str) -> httpx.Response:
    """The stored bytes, served as-is (not re-serialised)."""
    return httpx.Response(
        status,
        content=fixture_text(name).encode(),
        headers={"content-type": "application/json; charset=utf-8", **headers},
    )


def json_response(body: Any, status: int = 200) -> httpx.Response:
    # json.dumps writes inf/nan as the (non-standard) Infinity/NaN literals, which is the point.
    return httpx.Response(
        status, content=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )


class Sleeps:
    """Stands in for asyncio.sleep and records what it was asked to wait."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


class MaxJitter(random.Random):
    """Full jitter that always picks the top of its range, so backoff steps are exact."""

    def uniform(self, a: float, b: float) -> float:
        return b


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as mock:
        yield mock


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def make_client(sleeps: Sleeps, **config: Any) -> CoinGeckoClient:
    return CoinGeckoClient(CoinGeckoConfig(**config), sleep=sleeps, rng=MaxJitter())


def query(request: httpx.Request) -> dict[str, str]:
    return dict(request.url.params)


# --------------------------------------------------------------------------- config & auth


async def test_public_plan_sends_no_key_header(router: respx.MockRouter, sleeps: Sleeps) -> None:
    route = router.get(RANGE).mock(return_value=fixture_response(FIVE_MIN))
    async with make_client(sleeps) as client:
        await client.market_chart_range("bitcoin", FIVE_MIN_START, FIVE_MIN_END)
    request = route.calls.last.request
    assert request.url.host == "api.coingecko.com"
    assert "x-cg-demo-api-key" not in request.headers
    assert "x-cg-pro-api-key" not in request.headers
    assert request.headers["accept"] == "application/json"


@pytest.mark.parametrize(
    ("plan", "root", "header", "absent"),
    [
        ("demo", PUBLIC, "x-cg-demo-api-key", "x-cg-pro-api-key"),
        ("pro", PRO, "x-cg-pro-api-key", "x-cg-demo-api-key"),
    ],
)
async def test_key_header_and_root_follow_the_plan(
    router: respx.MockRouter, sleeps: Sleeps, plan: str, root: str, header: str, absent: str
) -> None:
    route = router.get(f"{root}/coins/bitcoin/market_chart/range").mock(
        return_value=fixture_response(FIVE_MIN)
    )
    async with make_client(sleeps, plan=plan, api_key=SECRET) as client:
        await client.market_chart_range("bitcoin", FIVE_MIN_START, FIVE_MIN_END)
    request = route.calls.last.request
    assert request.headers[header] == SECRET
    assert absent not in request.headers
    assert SECRET not in str(request.url)  # header only, never the query string


def test_config_checks_key_against_plan_and_hides_it() -> None:
    with pytest.raises(ValueError, match="needs an api_key"):
        CoinGeckoConfig(plan="demo")
    with pytest.raises(ValueError, match="keyless"):
        CoinGeckoConfig(api_key=SECRET)
    with pytest.raises(ValueError, match="max_range_days"):
        CoinGeckoConfig(max_range_days=91)
    config = CoinGeckoConfig(plan="pro", api_key=SECRET)
    assert config.base_url == PRO
    assert SECRET not in repr(config)
    assert CoinGeckoConfig(base_url="http://proxy.local/api/v3/").base_url == (
        "http://proxy.local/api/v3"
    )


async def test_injected_client_is_left_open_and_own_client_is_closed(sleeps: Sleeps) -> None:
    async with httpx.AsyncClient() as shared:
        async with CoinGeckoClient(client=shared, sleep=sleeps):
            pass
        assert not shared.is_closed
    own = CoinGeckoClient(sleep=sleeps)
    await own.aclose()
    assert own._client.is_closed


# --------------------------------------------------------------------------- market_chart/range


async def test_market_chart_range_parses_the_documented_shape(
    router: respx.MockRouter, sleeps: Sleeps
) -> None:
    route = router.get(RANGE).mock(return_value=fixture_response(FIVE_MIN))
    async with make_client(sleeps) as client:
        points = await client.market_chart_range("bitcoin", FIVE_MIN_START, FIVE_MIN_END)

    assert query(route.calls.last.request) == {
        "vs_currency": "usd",
        "from": "1709388000",
        "to": "1709395500",
    }
    raw = json.loads(fixture_text(FIVE_MIN))
    assert len(points) == len(raw["prices"]) == 25
    first = points[0]
    assert first.timestamp == datetime(2024, 3, 2, 14, 0, 27, 118000, tzinfo=UTC)
    assert first.timestamp.tzinfo is UTC
    assert first.price == 61985.42
    assert first.market_cap == raw["market_caps"][0][1]
    assert first.volume == raw["total_volumes"][0][1]
    assert [p.timestamp for p in points] == sorted({p.timestamp for p in points})
    assert sleeps.calls == []


async def test_a_200_day_range_is_fetched_in_three_chunks_and_deduplicated(
    router: respx.MockRouter, sleeps: Sleeps
) -> None:
    route = router.get(RANGE).mock(
        side_effect=[
            fixture_response("market_chart_range_bitcoin_usd_chunk1.json"),
            fixture_response("market_chart_range_bitcoin_usd_chunk2.json"),
            fixture_response("market_chart_range_bitcoin_usd_chunk3.json"),
        ]
    )
    start, end = utc(2023, 6, 1), utc(2023, 12, 18)  # 200 days
    async with make_client(sleeps) as client:
        points = await client.market_chart_range("bitcoin", start, end)

    assert route.call_count == 3
    assert [query(call.request) for call in route.calls] == [
        {"vs_currency": "usd", "from": "1685577600", "to": "1693353600"},  # 06-01 -> 08-30
        {"vs_currency": "usd", "from": "1693353600", "to": "1701129600"},  # 08-30 -> 11-28
        {"vs_currency": "usd", "from": "1701129600", "to": "1702857600"},  # 11-28 -> 12-18
    ]
    # 6 + 6 + 6 rows; the two border rows come twice, and 12-18 00:00 is outside [start, end).
    assert len(points) == 15
    stamps = [p.timestamp for p in points]
    assert stamps == sorted(set(stamps))
    assert stamps.count(utc(2023, 8, 30)) == 1
    assert stamps.count(utc(2023, 11, 28)) == 1
    assert stamps[0] == start
    assert stamps[-1] == datetime(2023, 12, 17, 23, 0, 30, 882000, tzinfo=UTC)
    assert all(start <= s < end for s in stamps)
    assert points[5].price == 27726.0840156793  # the 08-30 border row, kept once


async def test_range_arguments_are_checked_before_any_request(
    router: respx.MockRouter, sleeps: Sleeps
) -> None:
    route = router.get(url__startswith=PUBLIC)
    async with make_client(sleeps) as client:
        with pytest.raises(ValueError, match="timezone-aware"):
            await client.market_chart_range("bitcoin", datetime(2024, 1, 1), FIVE_MIN_END)
        with pytest.raises(ValueError, match="after start"):
            await client.market_chart_range("bitcoin", FIVE_MIN_END, FIVE_MIN_START)
        with pytest.raises(ValueError, match="coin_id"):
            await client.market_chart_range("../simple", FIVE_MIN_START, FIVE_MIN_END)
        with pytest.raises(ValueError, match="vs_currency"):
            await client.market_chart_range("bitcoin", FIVE_MIN_START, FIVE_MIN_END, "US D")
    assert route.call_count == 0


# --------------------------------------------------------------------------- retries


async def test_429_waits_retry_after_capped_then_succeeds(
    router: respx.MockRouter, sleeps: Sleeps, caplog: pytest.LogCaptureFixture
) -> None:
    route = router.get(RANGE).mock(
        side_effect=[
            fixture_response("error_429_rate_limited.json", 429, **{"retry-after": "119"}),
            fixture_response("error_429_rate_limited.json", 429, **{"retry-after": "2"}),
            fixture_response(FIVE_MIN),
        ]
    )
    caplog.set_level(logging.DEBUG)
    async with make_client(sleeps, plan="demo", api_key=SECRET) as client:
        points = await client.market_chart_range("bitcoin", FIVE_MIN_START, FIVE_MIN_END)
    assert len(points) == 25
    assert route.call_count == 3
    assert sleeps.calls == [60.0, 2.0]  # 119 s capped at backoff_max_s
    assert "HTTP 429" in caplog.text
    assert SECRET not in caplog.text


async def test_retry_after_as_http_date_is_honoured_and_capped(
    router: respx.MockRouter, sleeps: Sleeps
) -> None:
    router.get(RANGE).mock(
        side_effect=[
            httpx.Response(429, headers={"retry-after": "Fri, 31 Dec 2999 23:59:59 GMT"}),
            fixture_response(FIVE_MIN),
        ]
    )
    async with make_client(sleeps, backoff_max_s=30) as client:
        await client.market_chart_range("bitcoin", FIVE_MIN_START, FIVE_MIN_END)
    assert sleeps.calls == [30.0]


async def test_429_forever_raises_retryable_after_max_retries_plus_one(
    router: respx.MockRouter, sleeps: Sleeps
) -> None:
    route = router.get(RANGE).mock(
        return_value=fixture_response("error_429_rate_limited.json", 429)
    )
    async with make_client(sleeps, max_retries=4, backoff_base_s=1, backoff_max_s=5) as client:
        with pytest.raises(CoinGeckoRetryable) as caught:
            await client.market_chart_range("bitcoin", FIVE_MIN_START, FIVE_MIN_END)
    assert route.call_count == 5
    # No Retry-After: exponential full jitter; MaxJitter takes the top, capped at 5 s.
    assert sleeps.calls == [1.0, 2.0, 4.0, 5.0]
    error = caught.value
    assert (error.status, error.attempts, error.coin_id) == (429, 5, "bitcoin")
    assert "'bitcoin'" in str(error) and "429" in str(error)
    assert "exceeded the Rate Limit" in str(error)  # CoinGecko's short error string


async def test_full_jitter_stays_inside_the_exponential_envelope(
    router: respx.MockRouter, sleeps: Sleeps
) -> None:
    router.get(RANGE).mock(return_value=httpx.Response(503))
    config = CoinGeckoConfig(max_retries=6, backoff_base_s=0.5, backoff_max_s=8)
    async with CoinGeckoClient(config, sleep=sleeps, rng=random.Random(1234)) as client:
        with pytest.raises(CoinGeckoRetryable):
            await client.market_chart_range("bitcoin", FIVE_MIN_START, FIVE_MIN_END)
    ceilings = [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert len(sleeps.calls) == 6
    assert all(0.0 <= s <= c for s, c in zip(sleeps.calls, ceilings, strict=True))
    assert len(set(sleeps.calls)) == 6  # really jittered, not a fixed schedule


@pytest.mark.parametrize("status", [500, 502, 503, 408])
async def test_server_error_then_success(
    router: respx.MockRouter, sleeps: Sleeps, status: int
) -> None:
    route = router.get(RANGE).mock(
        side_effect=[
            httpx.Response(status, text="<html>upstream trouble</html>"),
            fixture_response(FIVE_MIN),
        ]
    )
    async with make_client(sleeps) as client:
        points = await client.market_chart_range("bitcoin", FIVE_MIN_START, FIVE_MIN_END)
    assert len(points) == 25
    assert route.call_count == 2
    assert sleeps.calls == [1.0]


@pytest.mark.parametrize(
    "error",
    [
        httpx.ReadTimeout("read timed out"),
        httpx.ConnectTimeout("connect timed out"),
        httpx.ConnectError("connection refused"),
        httpx.RemoteProtocolError("server disconnected"),
    ],
)
async def test_timeout_or_transport_error_then_success(
    router: respx.MockRouter, sleeps: Sleeps, error: httpx.TransportError
) -> None:
    route = router.get(RANGE).mock(side_effect=[error, fixture_response(FIVE_MIN)])
    async with make_client(sleeps) as client:
        points = await client.market_chart_range("bitcoin", FIVE_MIN_START, FIVE_MIN_END)
    assert len(points) == 25
    assert route.call_count == 2
    assert sleeps.calls == [1.0]


async def test_timeouts_forever_raise_retryable_chained_to_the_last_error(
    router: respx.MockRouter, sleeps: Sleeps
) -> None:
    route = router.get(RANGE).mock(side_effect=httpx.ReadTimeout("read timed out"))
    async with make_client(sleeps, max_retries=2) as client:
        with pytest.raises(CoinGeckoRetryable) as caught:
            await client.market_chart_range("bitcoin", FIVE_MIN_START, FIVE_MIN_END)
    assert route.call_count == 3
    assert len(sleeps.calls) == 2
    assert caught.value.status is None
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)
    assert "ReadTimeout" in str(caught.value)


# --------------------------------------------------------------------------- fatal statuses


async def test_404_unknown_coin_is_fatal_after_one_attempt(
    router: respx.MockRouter, sleeps: Sleeps
) -> None:
    route = router.get(f"{PUBLIC}/coins/no-such-coin/market_chart/range").mock(
        return_value=fixture_response("error_404_coin_not_found.json", 404)
    )
    async with make_client(sleeps) as client:
        with pytest.raises(CoinGeckoFatal) as caught:
            await client.market_chart_range("no-such-coin", FIVE_MIN_START, FIVE_MIN_END)
    assert route.call_count == 1
    assert sleeps.calls == []
    message = str(caught.value)
    assert "'no-such-coin'" in message and "HTTP 404" in message
    assert message.endswith(": coin not found")
    assert (caught.value.status, caught.value.attempts) == (404, 1)


@pytest.mark.parametrize(
    ("status", "body", "hint"),
    [
        (401, fixture_text("error_401_missing_api_key.json"), "(code 10002): API Key Missing"),
        (400, '{"error":"invalid vs_currency"}', ": invalid vs_currency"),
        (403, "<html><body>" + "Access denied " * 200 + "</body></html>", ""),
        (422, '{"error":"' + "x" * 5000 + '"}', "…"),
    ],
)
async def test_other_4xx_are_fatal_at_once_without_echoing_the_body(
    router: respx.MockRouter, sleeps: Sleeps, status: int, body: str, hint: str
) -> None:
    route = router.get(RANGE).mock(return_value=httpx.Response(status, text=body))
    async with make_client(sleeps, plan="demo", api_key=SECRET) as client:
        with pytest.raises(CoinGeckoFatal) as caught:
            await client.market_chart_range("bitcoin", FIVE_MIN_START, FIVE_MIN_END)
    assert route.call_count == 1
    assert sleeps.calls == []
    message = str(caught.value)
    assert f"HTTP {status}" in message and "'bitcoin'" in message
    assert message.endswith(hint)
    assert len(message) < 250  # a short error string at most, never the whole body
    assert "Access denied" not in message
    assert SECRET not in message


# --------------------------------------------------------------------------- malformed payloads


def five_min_payload() -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(fixture_text(FIVE_MIN))
    return payload


def mutate(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    payload = five_min_payload()
    target: Any = payload
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return payload


MALFORMED = {
    "nan string price": (mutate(("prices", 3, 1), "NaN"), "prices[3][1]: expected a number"),
    "string price": (mutate(("prices", 3, 1), "61985.42"), "prices[3][1]: expected a number"),
    "negative price": (mutate(("prices", 4, 1), -1.5), "prices[4][1]: number is negative"),
    "null price": (mutate(("prices", 2, 1), None), "prices[2][1]: expected a number, got null"),
    "bool price": (mutate(("prices", 2, 1), True), "prices[2][1]: expected a number"),
    "short row": (mutate(("prices", 5), [1709389527118]), "prices[5]: expected [ms, value]"),
    "long row": (mutate(("prices", 5), [1709389527118, 1.0, 2.0]), "prices[5]: expected"),
    "row not a list": (mutate(("prices", 6), {"t": 1, "p": 2}), "prices[6]: expected [ms"),
    "prices not a list": (mutate(("prices",), {"0": [1, 2]}), "prices: expected a list"),
    "float timestamp": (
        mutate(("prices", 1, 0), 1709388331402.5),
        "prices[1][0]: timestamp must be integer milliseconds",
    ),
    "seconds timestamp": (
        mutate(("prices", 0, 0), 1709388027),
        "prices[0][0]: timestamp 1709388027 is not a plausible millisecond time",
    ),
    "out of order": (mutate(("prices", 7, 0), 1709388027118), "prices[7][0]: timestamp"),
    "duplicate timestamp": (
        mutate(("prices", 1, 0), 1709388027118),
        "prices[1][0]: timestamp 1709388027118 is not after",
    ),
    "infinite volume": (
        mutate(("total_volumes", 9, 1), math.inf),
        "total_volumes[9][1]: number is not finite",
    ),
    "huge integer": (mutate(("prices", 9, 1), 10**400), "prices[9][1]: number is not finite"),
    "negative market cap": (mutate(("market_caps", 8, 1), -2), "market_caps[8][1]: number is"),
    "missing prices": ({"market_caps": [], "total_volumes": []}, "no 'prices'"),
    "not an object": ([[1709388027118, 61985.42]], "expected a JSON object, got array"),
}


@pytest.mark.parametrize(
    ("payload", "expected"), list(MALFORMED.values()), ids=list(MALFORMED.keys())
)
async def test_malformed_payload_is_fatal_and_names_the_element(
    router: respx.MockRouter, sleeps: Sleeps, payload: Any, expected: str
) -> None:
    route = router.get(RANGE).mock(return_value=json_response(payload))
    async with make_client(sleeps) as client:
        with pytest.raises(CoinGeckoFatal) as caught:
            await client.market_chart_range("bitcoin", FIVE_MIN_START, FIVE_MIN_END)
    assert expected in str(caught.value)
    assert "'bitcoin'" in str(caught.value)
    assert route.call_count == 1  # bad data is not retried
    assert sleeps.calls == []


async def test_nan_literal_and_non_json_bodies_are_fatal(
    router: respx.MockRouter, sleeps: Sleeps
) -> None:
    # Python's json module accepts bare NaN / -Infinity literals and turns 1e400 into inf:
    # all must still be refused as not finite.
    text = fixture_text(FIVE_MIN)
    router.get(RANGE).mock(
        side_effect=[
            httpx.Response(200, content=text.replace("61985.42", "NaN", 1).encode()),
            httpx.Response(200, content=text.replace("62011.87", "-Infinity", 1).encode()),
            httpx.Response(200, content=text.replace("62047.15", "1e400", 1).encode()),
            httpx.Response(200, text="<html>Just a moment...</html>"),
        ]
    )
    async with make_client(sleeps) as client:
        for index in range(3):
            with pytest.raises(CoinGeckoFatal, match=rf"prices\[{index}\]\[1\]: number is not"):
                await client.market_chart_range("bitcoin", FIVE_MIN_START, FIVE_MIN_END)
        with pytest.raises(CoinGeckoFatal, match="body is not JSON"):
            await client.market_chart_range("bitcoin", FIVE_MIN_START, FIVE_MIN_END)
    assert sleeps.calls == []


def test_optional_series_may_be_missing_or_hold_nulls() -> None:
    payload = five_min_payload()
    del payload["market_caps"]
    payload["total_volumes"][0][1] = None
    points = parse_market_chart(payload)
    assert all(p.market_cap is None for p in points)
    assert points[0].volume is None
    assert points[1].volume == payload["total_volumes"][1][1]
    assert parse_market_chart({"prices": [], "market_caps": [], "total_volumes": []}) == []


def test_every_error_class_shares_the_base() -> None:
    assert issubclass(CoinGeckoRetryable, CoinGeckoError)
    assert issubclass(CoinGeckoFatal, CoinGeckoError)
    assert not issubclass(CoinGeckoFatal, CoinGeckoRetryable)


# --------------------------------------------------------------------------- candles from samples


def five_min_points() -> list[MarketPoint]:
    return parse_market_chart(five_min_payload())


def candles_from_points(
    points: list[MarketPoint],
    timeframe: Timeframe = Timeframe.H1,
    *,
    complete_before: datetime | None = None,
) -> list[Candle]:
    """The candles the rows become, validated as a backfill validates them."""
    rows = candle_rows_from_points(points, timeframe, complete_before=complete_before)
    now = datetime(2024, 3, 3, tzinfo=UTC)
    return validate_batch(rows, timeframe=timeframe, now=now).candles


def test_hourly_candles_match_hand_computed_values() -> None:
    candles = candles_from_points(five_min_points())
    # Worked out by hand from the "prices" column of market_chart_range_bitcoin_usd_5m.json:
    # 14:00 bucket = 12 samples 61985.42 .. 62098.13, max 62126.58 (14:35), min 61985.42 (14:00)
    # 15:00 bucket = 12 samples 62121.77 .. 62066.85, max 62150.06 (15:05), min 61996.83 (15:35)
    # 16:00 bucket = the single sample at 16:00:24.
    assert candles == [
        Candle(utc(2024, 3, 2, 14), 61985.42, 62126.58, 61985.42, 62098.13, 0.0),
        Candle(utc(2024, 3, 2, 15), 62121.77, 62150.06, 61996.83, 62066.85, 0.0),
        Candle(utc(2024, 3, 2, 16), 62080.50, 62080.50, 62080.50, 62080.50, 0.0),
    ]


def test_candles_drop_the_unfinished_bucket_and_accept_unsorted_points() -> None:
    points = five_min_points()
    shuffled = points[::-1]
    candles = candles_from_points(shuffled, complete_before=utc(2024, 3, 2, 16, 5))
    assert [c.timestamp for c in candles] == [utc(2024, 3, 2, 14), utc(2024, 3, 2, 15)]
    assert candles[0].open == 61985.42 and candles[0].close == 62098.13


def test_four_hour_candles_from_the_same_samples() -> None:
    candles = candles_from_points(five_min_points(), Timeframe.H4)
    assert candles == [
        Candle(utc(2024, 3, 2, 12), 61985.42, 62150.06, 61985.42, 62066.85, 0.0),
        Candle(utc(2024, 3, 2, 16), 62080.50, 62080.50, 62080.50, 62080.50, 0.0),
    ]


def test_hourly_samples_give_flat_candles_and_gaps_stay_gaps() -> None:
    points = [
        MarketPoint(utc(2023, 6, 1, 0), 27210.64, None, None),
        MarketPoint(datetime(2023, 6, 1, 1, 0, 31, 862000, tzinfo=UTC), 27174.97, None, None),
        MarketPoint(datetime(2023, 6, 1, 3, 0, 44, 105000, tzinfo=UTC), 27098.44, None, None),
    ]
    candles = candles_from_points(points)
    assert [c.timestamp.hour for c in candles] == [0, 1, 3]
    assert all(c.open == c.high == c.low == c.close for c in candles)
    assert all(c.volume == 0.0 and not math.isnan(c.volume) for c in candles)
    assert candle_rows_from_points([], Timeframe.H1) == []
