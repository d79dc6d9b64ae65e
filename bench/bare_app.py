"""The floor for bench/read.py: a bare FastAPI app doing the least the real endpoints must do.

* ``/bare/bytes/price`` and ``/bare/bytes/ohlcv500`` return constant bytes, identical to what
  the real ``/price`` and ``/ohlcv?limit=500`` returned at start-up (files named by
  ``BARE_PRICE_FILE`` and ``BARE_OHLCV500_FILE``).
* ``/bare/asyncpg/ohlcv1000?start=...`` runs the real uncached query's SQL (taken from
  ``app.repositories.sql_time.bucket_query`` for stored candles with a start, renumbered for
  asyncpg) on a module-level asyncpg pool, and encodes the same JSON shape with orjson,
  next_cursor included, so its body is byte-identical to the real endpoint's.

Configured by environment: BARE_DATABASE_URL, BARE_COIN_ID, BARE_SYMBOL (default BTC).
Run: ``uvicorn bare_app:app`` from bench/.
"""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import asyncpg
import orjson
from fastapi import FastAPI, Query
from fastapi.responses import Response

from app.repositories.sql_time import bucket_query

PRICE_BODY = Path(os.environ["BARE_PRICE_FILE"]).read_bytes()
OHLCV500_BODY = Path(os.environ["BARE_OHLCV500_FILE"]).read_bytes()
DATABASE_URL = os.environ["BARE_DATABASE_URL"]
COIN_ID = int(os.environ["BARE_COIN_ID"])
SYMBOL = os.environ.get("BARE_SYMBOL", "BTC")
POOL_SIZE = int(os.environ.get("BARE_POOL_SIZE", "20"))  # the app's DATABASE_POOL_SIZE
STEP = timedelta(hours=1)

_sql, _ = bucket_query("postgresql", None, newest_first=False, has_start=True, has_end=False)
SQL = _sql.replace(":coin", "$1").replace(":start", "$2").replace(":limit", "$3")

pool: asyncpg.Pool | None = None


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    global pool
    pool = await asyncpg.create_pool(DATABASE_URL, min_size=1, max_size=POOL_SIZE)
    yield
    await pool.close()


app = FastAPI(lifespan=lifespan)


def _json(body: bytes) -> Response:
    return Response(body, media_type="application/json")


@app.get("/bare/bytes/price")
async def bytes_price() -> Response:
    return _json(PRICE_BODY)


@app.get("/bare/bytes/ohlcv500")
async def bytes_ohlcv500() -> Response:
    return _json(OHLCV500_BODY)


def _cursor(after: datetime) -> str:
    raw = f"1h:{int(after.replace(tzinfo=UTC).timestamp())}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@app.get("/bare/asyncpg/ohlcv1000")
async def asyncpg_ohlcv1000(
    start: datetime, limit: Annotated[int, Query(ge=1, le=5000)] = 1000
) -> Response:
    naive = start.astimezone(UTC).replace(tzinfo=None) if start.tzinfo else start
    assert pool is not None
    rows = await pool.fetch(SQL, COIN_ID, naive, limit + 1)
    next_cursor = _cursor(rows[limit - 1][0] + STEP) if len(rows) > limit else None
    candles = [
        {
            "timestamp": row[0].strftime("%Y-%m-%dT%H:%M:%SZ"),
            "open": row[1],
            "high": row[2],
            "low": row[3],
            "close": row[4],
            "volume": row[5],
            "forming": False,  # every candle of a page with a next page is final
        }
        for row in rows[:limit]
    ]
    page = {
        "symbol": SYMBOL,
        "interval": "1h",
        "base_timeframe": "1h",
        "candles": candles,
        "next_cursor": next_cursor,
    }
    return _json(orjson.dumps(page))
