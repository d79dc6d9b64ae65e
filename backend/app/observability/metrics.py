"""Request ids, one log line per request, and the Prometheus metrics behind ``/metrics``.

Metrics live in a registry per app (tests build many apps in one process). Besides request
counts and latency histograms per route template, a collector reads, at scrape time, the
cache's hit ratio, the database pool's use and the background jobs' counts.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import secrets
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.observability.logging import request_id_var

logger = logging.getLogger("app.requests")
# Accepted from clients as is; anything else is replaced, so logs cannot be forged or flooded.
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
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


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    # Unmatched paths share one label: raw paths would let clients mint label values.
    return str(path) if isinstance(path, str) else "unmatched"


# Made-up request ids: 16 random hex digits per process, then this process's count of ids in
# 16 more (32, as a uuid4's hex had). Unique across processes and restarts without a syscall
# per request; ids from one process are sequential, which is all log correlation needs.
_id_prefix = secrets.token_hex(8)
_id_count = itertools.count()


def _reset_request_ids() -> None:
    """A new prefix and count, for a forked child (which would repeat its parent's ids)."""
    global _id_prefix, _id_count
    _id_prefix = secrets.token_hex(8)
    _id_count = itertools.count()


os.register_at_fork(after_in_child=_reset_request_ids)


def _new_request_id() -> str:
    return f"{_id_prefix}{next(_id_count):016x}"


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate = str(value.decode("latin-1"))
            if REQUEST_ID.match(candidate):
                return candidate
            break
    return _new_request_id()


class RequestContextMiddleware:
    """Outermost: gives each request its id, times it, logs it once, counts it."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500  # what the client sees if the app fails before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            self._record(scope, status, elapsed)
            request_id_var.reset(token)

    def _record(self, scope: Scope, status: int, elapsed: float) -> None:
        route, method = _route_template(scope), scope["method"]
        self.metrics.record(method, route, status, elapsed)
        if not logger.isEnabledFor(logging.INFO):
            return  # LOG_LEVEL above INFO: skip building the line's fields
        logger.info(
            "%s %s %d %.1f ms",
            method,
            route,
            status,
            elapsed * 1000,
            extra={
                "method": method,
                "path": scope["path"],
                "route": route,
                "status": status,
                "duration_ms": round(elapsed * 1000, 2),
            },
        )
