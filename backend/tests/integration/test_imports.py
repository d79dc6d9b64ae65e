"""CSV file imports and CoinGecko gap backfills through the shared bulk path."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import respx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.cache import CacheManager
from app.ingestion.batch import BatchRejected, RawRow, validate_batch
from app.ingestion.coingecko import CoinGeckoClient, CoinGeckoConfig
from app.market import Candle, Timeframe
from app.models import MarketData
from app.repositories import market_data
from app.services import imports
from app.services.imports import backfill_gaps, read_csv_rows
from tests.conftest import TransactionalDatabase
from tests.integration.factories import make_coin

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "coingecko"
DEMO = Path(__file__).resolve().parents[2] / "app" / "data" / "demo"
PLAIN = """timestamp,open,high,low,close,volume
2024-03-01T00:00:00Z,100,110,90,105,10
2024-03-01T01:00:00Z,105,111,101,108,11
2024-03-01T02:00:00Z,108,109,80,85,12
"""


async def _count(session: AsyncSession, coin_id: int) -> int:
    statement = select(func.count()).where(MarketData.cryptocurrency_id == coin_id)
    return int((await session.execute(statement)).scalar_one())


async def test_real_cryptodatadownload_file_imports_once(
    engine: AsyncEngine, db_session: AsyncSession, cache: CacheManager
) -> None:
    coin = await make_coin(db_session, symbol="BTC")
    database = TransactionalDatabase(engine, db_session)
    rows = read_csv_rows(DEMO / "Coinbase_BTCUSD_1h.csv")
    seen: list[tuple[int, int]] = []
    reports = await imports.store_row_chunks(
        database,
        cache,
        imports.chunk_rows("btc", rows),
        source="csv",
        progress=lambda d, t: seen.append((d, t)),
    )
    first = reports["btc"]
    assert (first.received, first.inserted, first.updated) == (6000, 6000, 0)
    assert first.timeframe is not None and first.timeframe.value == "1h"
    assert seen[-1] == (6000, 6000)
    again = await imports.store_row_chunks(
        database, cache, imports.chunk_rows("BTC", rows), source="csv"
    )
    assert (again["BTC"].inserted, again["BTC"].unchanged) == (0, 6000)
    assert await _count(db_session, coin.id) == 6000


def test_inconsistent_rows_reject_the_file_unless_skipped(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    path.write_text(PLAIN.replace("108,109,80,85,12", "108,100,80,85,12"))  # high < open
    now = datetime.now(UTC)
    with pytest.raises(BatchRejected) as caught:
        validate_batch(read_csv_rows(path), timeframe=None, now=now, skip_invalid=False)
    assert (caught.value.errors[0].row, caught.value.errors[0].field) == (4, "high")
    batch = validate_batch(read_csv_rows(path), timeframe=None, now=now, skip_invalid=True)
    assert [c.close for c in batch.candles] == [105.0, 108.0]
    assert [(e.row, e.field) for e in batch.skipped] == [(4, "high")]


T_GAP = datetime(2024, 3, 2, 13, tzinfo=UTC)


@respx.mock
async def test_backfill_fetches_only_the_gap(
    engine: AsyncEngine, db_session: AsyncSession, cache: CacheManager
) -> None:
    coin = await make_coin(db_session, symbol="BTC", coin_gecko_id="bitcoin")
    # Stored: 12:00, 13:00 and 16:00, so 14:00 and 15:00 are missing.
    stored = [Candle(T_GAP + timedelta(hours=h), 1, 1, 1, 1, 1) for h in (-1, 0, 3)]
    await market_data.upsert_candles(db_session, coin.id, stored, "test")
    body = json.loads((FIXTURES / "market_chart_range_bitcoin_usd_5m.json").read_text())
    route = respx.get("https://api.coingecko.com/api/v3/coins/bitcoin/market_chart/range").mock(
        return_value=httpx.Response(200, json=body)
    )
    database = TransactionalDatabase(engine, db_session)
    async with CoinGeckoClient(CoinGeckoConfig()) as client:
        report = await backfill_gaps(database, cache, "BTC", client, now=datetime.now(UTC))

    assert route.call_count == 1
    params = route.calls[0].request.url.params
    assert int(params["from"]) == int((T_GAP + timedelta(hours=1)).timestamp())
    assert int(params["to"]) == int((T_GAP + timedelta(hours=3)).timestamp())
    assert [g.missing for g in report.gaps] == [2]
    assert report.stored is not None and report.stored.inserted == 2
    assert await _count(db_session, coin.id) == 5
    prices = [p for t, p in body["prices"] if t < (T_GAP + timedelta(hours=2)).timestamp() * 1000]
    filled = await market_data.candles_between(
        db_session,
        coin.id,
        report.stored.timeframe,  # type: ignore[arg-type]
        start=T_GAP + timedelta(hours=1),
        end=T_GAP + timedelta(hours=2),
        limit=5,
        resample=False,
    )
    assert (filled[0].open, filled[0].high, filled[0].close) == (prices[0], max(prices), prices[-1])

    second = await backfill_gaps(database, cache, "BTC", CoinGeckoClient(CoinGeckoConfig()))
    assert second.gaps == [] and route.call_count == 1  # nothing missing: no request


def _rows(hours: list[int], bad: int | None = None) -> list[RawRow]:
    rows = []
    for line, hour in enumerate(hours, start=2):
        moment = datetime(2024, 3, 1, tzinfo=UTC) + timedelta(hours=hour)
        high = 90 if line - 2 == bad else 110  # high below open: invalid
        values = {
            "timestamp": moment.isoformat(),
            "open": 100,
            "high": high,
            "low": 90,
            "close": 105,
            "volume": 1,
        }
        rows.append(RawRow(line, values))
    return rows


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imports, "CHUNK_ROWS", 3)


@pytest.mark.usefixtures("small_chunks")
async def test_chunks_are_validated_ahead_and_stored_in_one_unit(
    engine: AsyncEngine, db_session: AsyncSession, cache: CacheManager
) -> None:
    coin = await make_coin(db_session, symbol="BTC")
    database = TransactionalDatabase(engine, db_session)
    chunks = imports.chunk_rows("BTC", _rows(list(range(8))))
    assert [len(c.rows) for c in chunks] == [3, 3, 2]
    seen: list[int] = []
    reports = await imports.store_row_chunks(
        database, cache, chunks, source="csv", progress=lambda d, _t: seen.append(d)
    )
    assert (reports["BTC"].inserted, reports["BTC"].timeframe) == (8, Timeframe.H1)
    assert seen == [3, 6, 8]
    assert await _count(db_session, coin.id) == 8

    # Chunks may also arrive unparsed: parsing then happens in the worker thread.
    later = _rows(list(range(8, 12)))
    lazy = [
        imports.RowChunk("BTC", parse=lambda: later[:2]),
        imports.RowChunk("BTC", parse=lambda: later[2:]),
    ]
    more = await imports.store_row_chunks(database, cache, lazy, source="csv")
    assert more["BTC"].inserted == 4
    assert await _count(db_session, coin.id) == 12


@pytest.mark.usefixtures("small_chunks")
@pytest.mark.parametrize(
    ("hours", "bad", "field"),
    [
        ([0, 1, 2, 3, 4, 5, 6], 5, "high"),  # the bad row is in a later chunk
        ([0, 1, 2, 3, 1, 5], None, "timestamp"),  # hour 1 again, in the second chunk
    ],
)
async def test_a_bad_row_in_any_chunk_stores_nothing(
    engine: AsyncEngine,
    db_session: AsyncSession,
    cache: CacheManager,
    hours: list[int],
    bad: int | None,
    field: str,
) -> None:
    coin = await make_coin(db_session, symbol="BTC")
    database = TransactionalDatabase(engine, db_session)
    chunks = imports.chunk_rows("BTC", _rows(hours, bad))
    with pytest.raises(BatchRejected) as caught:
        await imports.store_row_chunks(database, cache, chunks, source="csv")
    assert caught.value.errors[0].field == field
    assert await _count(db_session, coin.id) == 0
    skipped = await imports.store_row_chunks(
        database, cache, chunks, source="csv", skip_invalid=True
    )
    assert skipped["BTC"].inserted == len(hours) - 1
    assert [e.field for e in skipped["BTC"].skipped] == [field]
