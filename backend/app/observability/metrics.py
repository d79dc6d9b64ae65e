"""The Prometheus metrics behind ``/metrics``.

Requests are counted by `app.middleware.request_context`. Metrics live in a registry per
app (tests build many apps in one process). Besides request counts and latency histograms
per route template, a collector reads, at scrape time, the cache's hit ratio, the database
pool's use and the background jobs' counts.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests",
            "HTTP requests by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time from the request to the end of the response, by route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        # Each label set's child, looked up once: `labels()` validates and locks every time.
        # As many entries as the metrics have children, no more.
        self._counted: dict[tuple[str, str, int], Counter] = {}
        self._timed: dict[tuple[str, str], Histogram] = {}

    def record(self, method: str, route: str, status: int, elapsed: float) -> None:
        counter = self._counted.get((method, route, status))
        if counter is None:
            counter = self.requests.labels(method, route, str(status))
            self._counted[(method, route, status)] = counter
        counter.inc()
        timer = self._timed.get((method, route))
        if timer is None:
            timer = self._timed[(method, route)] = self.latency.labels(method, route)
        timer.observe(elapsed)


class StateCollector(Collector):
    """Cache, database pool and job gauges, read from the app's state at scrape time."""

    def __init__(self, state: Any) -> None:
        self.state = state

    def collect(self) -> Iterator[Any]:
        stats = self.state.cache.stats
        lookups = CounterMetricFamily(
            "crypto_cache_lookups", "Cache reads by result.", labels=["result"]
        )
        lookups.add_metric(["hit"], stats.hits)
        lookups.add_metric(["miss"], stats.misses)
        lookups.add_metric(["error"], stats.errors)
        yield lookups
        yield GaugeMetricFamily(
            "crypto_cache_hit_ratio", "Hits / (hits + misses) since start.", value=stats.hit_ratio
        )
        pool = self.state.database.engine.pool
        if hasattr(pool, "checkedout"):
            in_use = GaugeMetricFamily(
                "crypto_db_pool_connections", "Database pool connections.", labels=["state"]
            )
            in_use.add_metric(["in_use"], pool.checkedout())
            in_use.add_metric(["idle"], pool.checkedin())
            in_use.add_metric(["overflow"], max(pool.overflow(), 0))
            yield in_use
            yield GaugeMetricFamily(
                "crypto_db_pool_size", "Configured pool size.", value=pool.size()
            )
        runner = self.state.backtests
        yield GaugeMetricFamily(
            "crypto_backtests_running", "Backtests running in this process.", value=runner.running
        )
        jobs = CounterMetricFamily(
            "crypto_backtests", "Backtests this process ran, by outcome.", labels=["outcome"]
        )
        for outcome, count in sorted(runner.outcomes.items()):
            jobs.add_metric([outcome], count)
        yield jobs
