"""Bulk-ingest benchmark: the project's upsert path against a raw binary COPY and pandas.

One data set, generated once in memory (seeded, deterministic): 10 coins x 100,000 hourly
candles = 1,000,000 rows. A single coin cannot hold a million hourly candles: they would span
114 years, and the validator refuses times before 2009 and in the future. So each coin's
series (2012-01-01 onwards) is one batch of 100,000 rows, the API's maximum batch.

Methods, each into an emptied market_data table (TRUNCATE, VACUUM ANALYZE, CHECKPOINT first):

  (a) copy     one asyncpg ``copy_records_to_table`` stream of prebuilt records: the floor.
  (b) app      validate, then store, per 100,000-row batch (what one API request does),
               all batches in one unit of work (one transaction); per batch:
               ``rows_from_json`` on the dicts ``orjson.loads`` would return (JSON decoding
               itself excluded) + ``validate_batch``, then ``services.market_data.ingest``
               (timeframe check, ``repositories.market_data.upsert_candles``, latest price);
               commit included. "db-only" is everything but parse + validate.
  (c) pandas   ``DataFrame.to_sql(chunksize=10_000)``, default method, sync SQLAlchemy engine
               on psycopg 3 (the DataFrame is built beforehand, untimed).
  (d) rerun    (b) again on the loaded table: every row unchanged (the staging-table path).
  (e) changed  (b) again with 1% of the closes changed (the staging path, 10,000 updates).
  (b*)         the project's pipelined import (services.imports.store_row_chunks, used by
               ``cryptopredict ingest csv``): the next chunk is validated in a worker thread
               while the current one is stored.

Each run is checked: 1,000,000 rows, 1,000,000 distinct (coin, timestamp), and the sum of
closes equal to the data set's (so changed values really landed). Prints a JSON report.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import math
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

from app.cache import CacheManager
from app.cli import upgrade_database
from app.database import Database, create_engine
from app.ingestion.batch import MAX_BATCH_ROWS, validate_batch
from app.ingestion.json_rows import rows_from_json
from app.repositories.market_data_rows import COLUMNS
from app.services import coins
from app.services import market_data as service
from app.services.imports import RowChunk, store_row_chunks

COINS = 10
PER_COIN = 100_000
TOTAL = COINS * PER_COIN
START = datetime(2012, 1, 1, tzinfo=UTC)
SEED = 20_240_601
CHANGE_EVERY = 100  # (e): every 100th candle of each coin gets a different close
SOURCE = "bench"


@dataclass
class Series:
    """One coin's candles as parallel lists (what a loader would hold after parsing)."""

    symbol: str
    stamps: list[datetime]  # naive UTC, as stored
    iso: list[str]  # as a JSON client sends them
    open: list[float]
    high: list[float]
    low: list[float]
    close: list[float]
    volume: list[float]


def generate(seed: int = SEED) -> list[Series]:
    """Seeded geometric random walk per coin, with valid OHLC (low <= open, close <= high)."""
    rng = random.Random(seed)
    gauss, expovariate = rng.gauss, rng.expovariate
    result = []
    for k in range(COINS):
        price = 20.0 * (k + 1)
        o_, h_, l_, c_, v_ = [], [], [], [], []
        for _ in range(PER_COIN):
            open_ = price
            close = open_ * math.exp(gauss(0.0, 0.008))
            high = max(open_, close) * (1.0 + expovariate(400.0))
            low = min(open_, close) * (1.0 - min(expovariate(400.0), 0.5))
            # round() is monotonic, so the OHLC order survives it.
            o_.append(round(open_, 6))
            h_.append(round(high, 6))
            l_.append(round(low, 6))
            c_.append(round(close, 6))
            v_.append(round(expovariate(1.0 / 500.0), 4))
            price = close
        moments = [START + timedelta(hours=i) for i in range(PER_COIN)]
        result.append(
            Series(
                symbol=f"BNCH{k}",
                stamps=[m.replace(tzinfo=None) for m in moments],
                iso=[m.strftime("%Y-%m-%dT%H:%M:%SZ") for m in moments],
                open=o_,
                high=h_,
                low=l_,
                close=c_,
                volume=v_,
            )
        )
    return result


def changed_closes(series: Series) -> list[float]:
    """(e): every CHANGE_EVERY-th close moved to mid-range (still valid OHLC)."""
    closes = list(series.close)
    for i in range(CHANGE_EVERY // 2, PER_COIN, CHANGE_EVERY):
        mid = round((series.low[i] + series.high[i]) / 2.0, 6)
        closes[i] = mid if mid != closes[i] else round(series.low[i], 6)
        assert closes[i] != series.close[i]
    return closes


def json_payload(series: Series, closes: list[float] | None = None) -> dict[str, Any]:
    """What ``orjson.loads`` returns for ``{"candles": [{...}, ...]}``."""
    closes = closes or series.close
    return {
        "candles": [
            {"timestamp": t, "open": o, "high": h, "low": lo, "close": c, "volume": v}
            for t, o, h, lo, c, v in zip(
                series.iso, series.open, series.high, series.low, closes, series.volume, strict=True
            )
        ]
    }


# ------------------------------------------------------------------ database chores


async def prepare_schema(url: str) -> list[int]:
    """Migrate (done by the caller), create the coins, switch autovacuum off for the table."""
    conn = await common.connect(url)
    try:
        # The bench VACUUMs explicitly before each run; autovacuum would add noise mid-run.
        await conn.execute(
            "ALTER TABLE market_data SET (autovacuum_enabled = false, "
            "toast.autovacuum_enabled = false)"
        )
        ids = []
        for k in range(COINS):
            ids.append(
                await conn.fetchval(
                    "INSERT INTO cryptocurrencies (symbol, name, is_active, created_at, "
                    "updated_at) VALUES ($1, $2, true, now(), now()) RETURNING id",
                    f"BNCH{k}",
                    f"Bench coin {k}",
                )
            )
        return ids
    finally:
        await conn.close()


async def reset(url: str, *, truncate: bool) -> None:
    conn = await common.connect(url)
    try:
        if truncate:
            await conn.execute("TRUNCATE market_data RESTART IDENTITY")
        await conn.execute("VACUUM (ANALYZE) market_data")
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()


async def verify(url: str, expected_close_sum: float) -> dict[str, Any]:
    conn = await common.connect(url)
    try:
        rows, distinct, close_sum = await conn.fetchrow(
            "SELECT count(*), count(DISTINCT (cryptocurrency_id, timestamp)), sum(close_price) "
            "FROM market_data"
        )
    finally:
        await conn.close()
    close_ok = math.isclose(close_sum or 0.0, expected_close_sum, rel_tol=1e-9)
    ok = rows == TOTAL and distinct == TOTAL and close_ok
    result = {"rows": rows, "duplicates": rows - distinct, "close_sum_matches": close_ok, "ok": ok}
    if not ok:
        raise SystemExit(f"verification failed: {result}")
    return result


# ------------------------------------------------------------------ the methods


async def method_copy(url: str, records: list[tuple[Any, ...]]) -> dict[str, Any]:
    conn = await common.connect(url)
    try:
        started, cpu = time.perf_counter(), time.process_time()
        await conn.copy_records_to_table("market_data", records=records, columns=list(COLUMNS))
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        await conn.close()
    return {"seconds": seconds, "client_cpu_seconds": cpu}


async def method_app(
    database: Database,
    cache: CacheManager,
    data: list[Series],
    payload_for: Callable[[Series], dict[str, Any]],
) -> dict[str, Any]:
    """Validate, then store, per 100,000-row batch (an API request's work), in one unit of
    work: parse + validate, then ``service.ingest``, which checks the coin's timeframe, calls
    ``upsert_candles`` and reads the new latest price."""
    validate_s = db_s = 0.0
    inserted = updated = unchanged = 0
    t0 = time.perf_counter()
    async with database.unit_of_work() as session:
        for series in data:
            coin = await coins.get_coin(session, cache, series.symbol)
            t1 = time.perf_counter()
            db_s += t1 - t0
            payload = payload_for(series)  # untimed: stands for orjson.loads(body)
            t2 = time.perf_counter()
            rows = rows_from_json(payload, max_rows=MAX_BATCH_ROWS)
            batch = validate_batch(
                rows, timeframe=None, now=datetime.now(UTC), max_rows=MAX_BATCH_ROWS
            )
            t3 = time.perf_counter()
            validate_s += t3 - t2
            result = await service.ingest(session, cache, coin, batch, SOURCE)
            inserted += result.inserted
            updated += result.updated
            unchanged += result.unchanged
            del payload, rows, batch
            t0 = time.perf_counter()
            db_s += t0 - t3
    db_s += time.perf_counter() - t0  # the commit and the after-commit cache refresh
    return {
        "seconds": validate_s + db_s,
        "validate_seconds": validate_s,
        "db_seconds": db_s,
        "inserted": inserted,
        "updated": updated,
        "unchanged": unchanged,
    }


async def method_app_overlapped(
    database: Database, cache: CacheManager, data: list[Series]
) -> dict[str, Any]:
    """(b*): the project's pipelined import, ``services.imports.store_row_chunks`` (also
    behind ``cryptopredict ingest csv``): one unit of work, chunk k+1 parsed
    (``rows_from_json`` via ``RowChunk.parse``) and validated in a worker thread while chunk
    k is stored. The CSV command parses its file before the pipeline starts instead.
    Payloads are built before the timing; ``rows_from_json`` is timed, as in (b)."""
    payloads = [json_payload(series) for series in data]
    gc.collect()
    started = time.perf_counter()
    chunks = [
        RowChunk(series.symbol, parse=partial(rows_from_json, payload, max_rows=MAX_BATCH_ROWS))
        for series, payload in zip(data, payloads, strict=True)
    ]
    reports = await store_row_chunks(database, cache, chunks, source=SOURCE)
    seconds = time.perf_counter() - started
    del payloads, chunks
    return {"seconds": seconds, "inserted": sum(r.inserted for r in reports.values())}


def method_pandas(url: str, frame: Any) -> dict[str, Any]:
    import sqlalchemy
    from sqlalchemy.engine import make_url

    engine = sqlalchemy.create_engine(make_url(url).set(drivername="postgresql+psycopg"))
    try:
        with engine.connect() as probe:  # connect outside the timing
            probe.exec_driver_sql("SELECT 1")
        started = time.perf_counter()
        frame.to_sql("market_data", engine, if_exists="append", index=False, chunksize=10_000)
        seconds = time.perf_counter() - started
    finally:
        engine.dispose()
    return {"seconds": seconds}


def build_frame(coin_ids: list[int], data: list[Series], now: datetime) -> Any:
    import pandas as pd

    return pd.DataFrame(
        {
            "cryptocurrency_id": [cid for cid in coin_ids for _ in range(PER_COIN)],
            "timestamp": pd.to_datetime([t for s in data for t in s.stamps]),
            "open_price": [x for s in data for x in s.open],
            "high_price": [x for s in data for x in s.high],
            "low_price": [x for s in data for x in s.low],
            "close_price": [x for s in data for x in s.close],
            "volume": [x for s in data for x in s.volume],
            "market_cap": [math.nan] * TOTAL,  # float column; pandas sends NULL
            "data_source": [SOURCE] * TOTAL,
            "created_at": pd.to_datetime([now] * TOTAL),
        }
    )


# ------------------------------------------------------------------ driver


def log(message: str) -> None:
    print(f"[ingest {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def rate(run: dict[str, Any], key: str = "seconds") -> float:
    return TOTAL / run[key]


async def run(reps: int, pandas_reps: int, overlapped: bool) -> dict[str, Any]:
    name = common.scratch_name()
    url = await common.create_scratch_db(name)
    log(f"scratch database {name} created; migrating")
    try:
        await asyncio.to_thread(upgrade_database, url)
        coin_ids = await prepare_schema(url)

        t0 = time.perf_counter()
        data = generate()
        now = datetime.now(UTC).replace(tzinfo=None)
        records = [
            (cid, t, o, h, lo, c, v, None, SOURCE, now)
            for cid, s in zip(coin_ids, data, strict=True)
            for t, o, h, lo, c, v in zip(
                s.stamps, s.open, s.high, s.low, s.close, s.volume, strict=True
            )
        ]
        changed = {s.symbol: changed_closes(s) for s in data}
        close_sum = math.fsum(c for s in data for c in s.close)
        changed_sum = math.fsum(c for closes in changed.values() for c in closes)
        frame = build_frame(coin_ids, data, now) if pandas_reps else None
        # The data set is long-lived: keep the cyclic GC from walking it during the runs.
        gc.collect()
        gc.freeze()
        log(f"generated {TOTAL:,} candles in {time.perf_counter() - t0:.1f}s")

        database = Database(create_engine(url, pool_size=1, max_overflow=0))
        cache = CacheManager()  # in-process: the ingest bench measures the database path
        runs: dict[str, list[dict[str, Any]]] = {
            k: [] for k in ("copy", "app", "rerun", "changed", "overlapped", "pandas")
        }
        try:
            for rep in range(reps):
                await reset(url, truncate=True)
                result = await method_copy(url, records)
                result["verify"] = await verify(url, close_sum)
                runs["copy"].append(result)
                log(f"rep {rep + 1}: (a) copy {rate(result):,.0f} rows/s")

                await reset(url, truncate=True)
                result = await method_app(database, cache, data, json_payload)
                assert result["inserted"] == TOTAL, result
                result["verify"] = await verify(url, close_sum)
                runs["app"].append(result)
                log(
                    f"rep {rep + 1}: (b) app {rate(result):,.0f} rows/s total, "
                    f"{rate(result, 'db_seconds'):,.0f} rows/s db-only"
                )

                await reset(url, truncate=False)
                result = await method_app(database, cache, data, json_payload)
                assert result["unchanged"] == TOTAL, result
                result["verify"] = await verify(url, close_sum)
                runs["rerun"].append(result)
                log(f"rep {rep + 1}: (d) rerun {rate(result):,.0f} rows/s")

                await reset(url, truncate=False)
                result = await method_app(
                    database, cache, data, lambda s: json_payload(s, changed[s.symbol])
                )
                expected_updates = COINS * len(range(CHANGE_EVERY // 2, PER_COIN, CHANGE_EVERY))
                assert result["updated"] == expected_updates, result
                assert result["unchanged"] == TOTAL - expected_updates, result
                result["verify"] = await verify(url, changed_sum)
                runs["changed"].append(result)
                log(f"rep {rep + 1}: (e) changed {rate(result):,.0f} rows/s")

                if overlapped:
                    await reset(url, truncate=True)
                    result = await method_app_overlapped(database, cache, data)
                    assert result["inserted"] == TOTAL, result
                    result["verify"] = await verify(url, close_sum)
                    runs["overlapped"].append(result)
                    log(f"rep {rep + 1}: (b*) overlapped {rate(result):,.0f} rows/s")

            for rep in range(pandas_reps):
                await reset(url, truncate=True)
                result = await asyncio.to_thread(method_pandas, url, frame)
                result["verify"] = await verify(url, close_sum)
                runs["pandas"].append(result)
                log(f"rep {rep + 1}: (c) pandas {rate(result):,.0f} rows/s")
        finally:
            await database.dispose()
        facts = await common.postgres_facts(url)
    finally:
        await common.drop_scratch_db(name)
        log(f"scratch database {name} dropped")
    return summarise(runs, reps, pandas_reps, facts)


def summarise(
    runs: dict[str, list[dict[str, Any]]], reps: int, pandas_reps: int, facts: dict[str, Any]
) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for key, items in runs.items():
        if not items:
            continue
        entry: dict[str, Any] = {
            "runs": len(items),
            "seconds": [round(r["seconds"], 3) for r in items],
            "median_seconds": common.median([r["seconds"] for r in items]),
        }
        entry["median_rows_per_s"] = TOTAL / entry["median_seconds"]
        if "db_seconds" in items[0]:
            for part in ("db_seconds", "validate_seconds"):
                entry[f"median_{part}"] = common.median([r[part] for r in items])
                entry[part] = [round(r[part], 3) for r in items]
            entry["median_db_rows_per_s"] = TOTAL / entry["median_db_seconds"]
            entry["median_validate_rows_per_s"] = TOTAL / entry["median_validate_seconds"]
            entry["counts"] = {k: items[-1][k] for k in ("inserted", "updated", "unchanged")}
        if "client_cpu_seconds" in items[0]:
            entry["median_client_cpu_seconds"] = common.median(
                [r["client_cpu_seconds"] for r in items]
            )
        entry["verify"] = items[-1]["verify"]
        summary[key] = entry
    copy_rate = summary["copy"]["median_rows_per_s"]
    ratios = {
        "app_total_vs_copy": summary["app"]["median_rows_per_s"] / copy_rate,
        "app_db_only_vs_copy": summary["app"]["median_db_rows_per_s"] / copy_rate,
        "rerun_vs_copy": summary["rerun"]["median_rows_per_s"] / copy_rate,
        "changed_vs_copy": summary["changed"]["median_rows_per_s"] / copy_rate,
    }
    if "overlapped" in summary:
        ratios["overlapped_vs_copy"] = summary["overlapped"]["median_rows_per_s"] / copy_rate
    if "pandas" in summary:
        ratios["pandas_vs_copy"] = summary["pandas"]["median_rows_per_s"] / copy_rate
    return {
        "rows": TOTAL,
        "coins": COINS,
        "rows_per_coin": PER_COIN,
        "batch_rows": PER_COIN,
        "seed": SEED,
        "reps": reps,
        "pandas_reps": pandas_reps,
        "methods": summary,
        "ratios": ratios,
        "target_app_vs_copy": 0.7,
        "postgres": facts,
    }


def main() -> None:
    global PER_COIN, TOTAL
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3, help="runs of (a), (b), (d), (e)")
    parser.add_argument("--pandas-reps", type=int, default=2, help="runs of (c)")
    parser.add_argument("--output", type=Path, help="write the JSON report here too")
    parser.add_argument("--no-overlapped", action="store_true", help="skip the (b*) pipelined runs")
    parser.add_argument(
        "--rows-per-coin", type=int, default=PER_COIN, help="smaller for a smoke test only"
    )
    args = parser.parse_args()
    if args.reps < 1:
        parser.error("--reps must be at least 1")
    if not 200 <= args.rows_per_coin <= MAX_BATCH_ROWS:
        parser.error(f"--rows-per-coin must be in 200..{MAX_BATCH_ROWS}")
    PER_COIN = args.rows_per_coin
    TOTAL = COINS * PER_COIN
    report = asyncio.run(run(args.reps, args.pandas_reps, not args.no_overlapped))
    common.emit_report(report, args.output)


if __name__ == "__main__":
    main()
