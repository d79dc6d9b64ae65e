"""Request ids, JSON log lines without secrets, and the Prometheus metrics."""

from __future__ import annotations

import json
import logging

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.observability.logging import RequestIdFilter, _formatter

COINS = "/api/v1/cryptocurrencies"


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def test_a_request_id_is_returned_and_a_good_one_is_kept(client: httpx.AsyncClient) -> None:
    made = await client.get(COINS)
    assert len(made.headers["x-request-id"]) == 32
    kept = await client.get(COINS, headers={"X-Request-ID": "trace-42.a"})
    assert kept.headers["x-request-id"] == "trace-42.a"
    forged = await client.get(COINS, headers={"X-Request-ID": "} INFO fake line {" + "x" * 200})
    assert len(forged.headers["x-request-id"]) == 32  # replaced, not echoed
    # Errors carry it too.
    missing = await client.get(f"{COINS}/NOPE", headers={"X-Request-ID": "err-1"})
    assert missing.status_code == 404 and missing.headers["x-request-id"] == "err-1"


async def test_each_request_logs_one_json_line_with_its_id_and_no_key(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, write_key: str
) -> None:
    with caplog.at_level(logging.INFO, logger="app.requests"):
        await client.post(COINS, json={"symbol": "ADA", "name": "Cardano"},
                          headers={"X-Request-ID": "req-7"})  # fmt: skip
    records = [r for r in caplog.records if r.name == "app.requests"]
    assert len(records) == 1
    formatter, id_filter = _formatter("json"), RequestIdFilter()
    record = records[0]
    record.request_id = "req-7"  # the filter adds it inside the request; caplog's copy lacks it
    line = json.loads(formatter.format(record))
    assert line["request_id"] == "req-7"
    assert (line["method"], line["route"], line["status"]) == ("POST", COINS, 201)
    assert line["level"] == "INFO" and line["duration_ms"] >= 0
    assert write_key not in formatter.format(record)
    assert id_filter.filter(record) is True


async def test_metrics_count_requests_by_route_template(client: httpx.AsyncClient) -> None:
    await client.post(COINS, json={"symbol": "ADA", "name": "Cardano"})
    for _ in range(3):
        await client.get(f"{COINS}/ADA")
    await client.get("/no/such/path")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = _samples(response.text)
    route = f"{COINS}/{{symbol}}"
    assert (
        samples[("http_requests_total", (("method", "GET"), ("route", route), ("status", "200")))]
        == 3
    )
    assert (
        samples[("http_request_duration_seconds_count", (("method", "GET"), ("route", route)))] == 3
    )
    unmatched = (("method", "GET"), ("route", "unmatched"), ("status", "404"))
    assert samples[("http_requests_total", unmatched)] == 1
    # Cache: the second and third reads of the coin were hits.
    assert samples[("crypto_cache_lookups_total", (("result", "hit"),))] >= 2
    assert 0 < samples[("crypto_cache_hit_ratio", ())] <= 1
    assert samples[("crypto_backtests_running", ())] == 0
    assert "/metrics" not in (await client.get("/openapi.json")).text
