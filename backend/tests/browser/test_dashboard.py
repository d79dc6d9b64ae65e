"""The dashboard in headless Chromium, against `cryptopredict serve` on the demo data.

Every count the page shows is compared with the public API's answer to the same request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, ConsoleMessage, Error, Page, Route

from tests.browser.conftest import Server

NOT_FOUND = "Failed to load resource: the server responded with a status of 404"
RANGE = "start=2019-09-01T00%3A00%3A00Z&end=2019-09-15T00%3A00%3A00Z&limit=5000"


class Console:
    """What the page reports as errors. The one 404 the page expects is the leaderboard's
    "no finished backtest yet" answer, which it shows as an empty state: Chromium logs every
    non-2xx response, and the API has no other way to ask whether a leaderboard exists."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        self.missing_leaderboards: list[str] = []
        page.on("console", self._message)
        page.on("pageerror", self._page_error)

    def _message(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        url = message.location.get("url", "")
        if message.text.startswith(NOT_FOUND) and urlsplit(url).path == "/api/v1/leaderboard":
            self.missing_leaderboards.append(urlsplit(url).query)
            return
        self.errors.append(f"{message.text} ({url})")

    def _page_error(self, error: Error) -> None:
        self.errors.append(f"uncaught: {error}")


@pytest.fixture
async def page(browser: Browser, server: Server) -> AsyncIterator[Page]:
    context = await browser.new_context(
        base_url=server.base, viewport={"width": 1440, "height": 900}, color_scheme="dark"
    )
    yield await context.new_page()
    await context.close()


async def ready(page: Page, symbol: str, interval: str) -> None:
    """Wait until the page has drawn ``symbol`` at ``interval`` and finished loading."""
    chart = f'#chart[data-state="ready"][data-symbol="{symbol}"][data-interval="{interval}"]'
    await page.wait_for_selector(chart, state="attached", timeout=20_000)
    await page.wait_for_selector('body[data-state="ready"]', state="attached", timeout=20_000)


async def shown_candles(page: Page) -> tuple[int, str]:
    count = await page.get_attribute("#chart", "data-candles")
    query = await page.get_attribute("#chart", "data-query")
    assert count is not None and query is not None
    return int(count), query


def api_candles(server: Server, symbol: str, query: str) -> int:
    response = server.get(f"/api/v1/cryptocurrencies/{symbol}/ohlcv?{query}")
    assert response.status_code == 200, response.text
    return len(response.json()["candles"])


async def data_models(page: Page, selector: str) -> set[str]:
    names = await page.eval_on_selector_all(selector, "nodes => nodes.map(n => n.dataset.model)")
    return set(names)


async def buttons(page: Page, name: str) -> list[tuple[str, str]]:
    """The value and label of each radio button named ``name``, in page order."""
    shown: list[list[str]] = await page.eval_on_selector_all(
        f'input[name="{name}"]',
        "nodes => nodes.map(n => [n.value, n.nextElementSibling.textContent])",
    )
    return [(value, label) for value, label in shown]


def vocabulary_buttons(meta: dict[str, Any]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The timeframe and horizon buttons the vocabulary calls for."""
    intervals = [(t["name"], t["name"]) for t in meta["timeframes"] if t["queryable"]]
    horizons = [(h["name"], h["name"]) for h in meta["horizons"]]
    return intervals, horizons


async def test_overview_shows_candles_forecasts_leaderboard_and_health(
    page: Page, server: Server, artifacts: Path
) -> None:
    console = Console(page)
    await page.goto("/")
    await ready(page, "BTC", "1h")

    count, query = await shown_candles(page)
    assert query == "interval=1h&limit=1000"
    assert count == api_candles(server, "BTC", query) == 1000

    latest = server.get("/api/v1/predictions/latest?symbol=BTC").json()
    forecast_models = {p["model_name"] for p in latest["predictions"] if p["horizon"] == "24h"}
    assert len(forecast_models) == 5
    assert await data_models(page, "#model-legend .chip") == forecast_models
    assert await page.get_attribute("#chart", "data-forecast-models") == "5"
    assert await data_models(page, "#forecasts tbody tr") == forecast_models
    champion = await page.get_attribute('#forecasts tr[data-champion="true"]', "data-model")
    assert champion == latest["champion"]["24h"]
    assert "champion" in await page.inner_text('#forecasts tr[data-champion="true"]')

    board = server.get("/api/v1/leaderboard?symbol=BTC&horizon=24h").json()
    assert await data_models(page, "#leaderboard tbody tr") == {r["model"] for r in board["rows"]}
    rel = await page.inner_text('#leaderboard tr[data-model="random_walk"] .rel-value')
    assert rel == "1.000"
    headers = await page.eval_on_selector_all(
        "#leaderboard thead th", "nodes => nodes.map(n => n.textContent)"
    )
    assert {"Rel. MAE", "DM p", "Cov. 80%", "Cov. 95%"} <= set(headers)
    assert await page.is_visible("#calibration-plot")
    assert int(await page.get_attribute("#calibration-plot", "data-points") or 0) > 0

    coverage = server.get("/api/v1/cryptocurrencies/BTC/coverage").json()
    assert f"{coverage['count']:,} hourly candles" in await page.inner_text("#coverage-text")
    assert await page.get_attribute("#coverage", "data-gaps") == str(len(coverage["gaps"]))
    assert await page.get_attribute("#health", "data-status") == "healthy"
    assert (await page.inner_text("#health-label")).startswith("Healthy")

    await page.screenshot(path=artifacts / "dashboard.png", full_page=True)
    assert console.errors == []
    assert console.missing_leaderboards == []


async def test_a_known_range_shows_exactly_the_candles_the_api_returns(
    page: Page, server: Server
) -> None:
    console = Console(page)
    await page.goto("/?coin=BTC&tf=1h&from=2019-09-01&to=2019-09-14")
    expected = {"1h": 14 * 24, "4h": 14 * 6, "1d": 14}
    for interval, candles in expected.items():
        if interval != "1h":
            await page.click(f'label[for="tf-{interval}"]')
        await ready(page, "BTC", interval)
        count, query = await shown_candles(page)
        assert query == f"interval={interval}&{RANGE}"
        assert count == api_candles(server, "BTC", query) == candles
        assert f"{candles} candles" in (await page.get_attribute("#chart", "aria-label") or "")
        assert f"tf={interval}" in page.url
    # A range that ends before the newest candle shows history, not the forecasts.
    assert await page.get_attribute("#chart", "data-forecast-models") == "0"
    assert console.errors == []


async def test_switching_coin_horizon_and_timeframe(page: Page, server: Server) -> None:
    console = Console(page)
    await page.goto("/")
    await ready(page, "BTC", "1h")

    # No 7d backtest exists: the leaderboard says how to make one.
    await page.click('label[for="h-7d"]')
    await page.wait_for_selector('#leaderboard[data-state="empty"]', timeout=20_000)
    await ready(page, "BTC", "1h")
    assert "cryptopredict backtest BTC -H 7d" in await page.inner_text("#leaderboard-empty")
    assert (await page.inner_text("#forecasts-title")).endswith("7d")

    # ETH stores daily candles: the page moves to 1d and disables what it cannot show.
    await page.select_option("#coin", "ETH")
    await ready(page, "ETH", "1d")
    for control in ("tf-1h", "tf-4h", "h-1h", "h-4h"):
        assert await page.is_disabled(f"#{control}"), control
    count, query = await shown_candles(page)
    assert count == api_candles(server, "ETH", query) == 787
    latest = server.get("/api/v1/predictions/latest?symbol=ETH").json()
    horizon = (await page.get_attribute('input[name="horizon"]:checked', "value")) or ""
    assert await data_models(page, "#forecasts tbody tr") == {
        p["model_name"] for p in latest["predictions"] if p["horizon"] == horizon
    }
    assert "cryptopredict backtest ETH" in await page.inner_text("#leaderboard-empty")

    # ETH's demo data has one gap: listed under the chart; its button zooms to it, and the
    # chart draws it (the time axis keeps the missing days as empty slots).
    coverage = server.get("/api/v1/cryptocurrencies/ETH/coverage").json()
    assert await page.get_attribute("#coverage", "data-gaps") == str(len(coverage["gaps"])) == "1"
    await page.click("#gap-list button")
    await page.wait_for_selector('#chart[data-query*="start="]', state="attached")
    await ready(page, "ETH", "1d")
    assert await page.get_attribute("#chart", "data-gaps") == "1"
    count, query = await shown_candles(page)
    assert count == api_candles(server, "ETH", query)
    start, end = coverage["gaps"][0]["start"][:10], coverage["gaps"][0]["end"][:10]
    assert await page.input_value("#from") < start and await page.input_value("#to") > end

    await page.click("#latest")
    await page.click('label[for="tf-1w"]')
    await ready(page, "ETH", "1w")
    count, query = await shown_candles(page)
    assert query == "interval=1w&limit=500"
    assert count == api_candles(server, "ETH", query)
    assert "coin=ETH" in page.url and "tf=1w" in page.url

    assert console.errors == []
    assert set(console.missing_leaderboards) <= {
        "symbol=BTC&horizon=7d",
        "symbol=ETH&horizon=24h",
        "symbol=ETH&horizon=7d",
    }


async def test_the_controls_and_page_sizes_come_from_the_vocabulary(
    page: Page, server: Server
) -> None:
    console = Console(page)
    meta = server.get("/api/v1/meta").json()
    await page.goto("/")
    await ready(page, "BTC", "1h")
    intervals, horizons = vocabulary_buttons(meta)
    assert await buttons(page, "interval") == intervals
    assert await buttons(page, "horizon") == horizons
    assert [h for h, _ in horizons] == ["1h", "4h", "24h", "7d"]

    # A service with another vocabulary gets other buttons and other page sizes.
    smaller = {
        **meta,
        "timeframes": [
            {**t, "queryable": t["queryable"] and t["name"] != "4h"} for t in meta["timeframes"]
        ],
        "horizons": [h for h in meta["horizons"] if h["name"] != "4h"],
        "candle_pages": {**meta["candle_pages"], "cached_limits": [100, 500]},
    }
    asked: list[str] = []

    async def answer_smaller(route: Route) -> None:
        asked.append(route.request.url)
        await route.fulfill(json=smaller)

    await page.route("**/api/v1/meta", answer_smaller)
    await page.goto("/")
    await ready(page, "BTC", "1h")
    assert len(asked) == 1
    intervals, horizons = vocabulary_buttons(smaller)
    assert await buttons(page, "interval") == intervals
    assert await buttons(page, "horizon") == horizons
    assert "4h" not in {value for value, _ in intervals + horizons}
    count, query = await shown_candles(page)
    assert query == "interval=1h&limit=500"
    assert count == api_candles(server, "BTC", query) == 500
    assert console.errors == []
