"""PostgreSQL stopped (immediate mode) while a large import is being written.

The import is one transaction, so the crash leaves nothing behind; the client reports the
outage in one line; once the server is back, re-running the same import stores exactly the
file's rows, each (coin, timestamp) once, with the file's prices.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx

from app.cli import upgrade_database
from app.database import Database
from app.models import Cryptocurrency
from tests.faults.conftest import ThrowawayPostgres, app_command, app_server, cli_env
from tests.faults.support import create_write_key

DB_NAME = "crypto"
ROWS = 150_000  # two chunks (100k + 50k) of one transaction: seconds of writing
START = datetime(2020, 1, 1, tzinfo=UTC)
IMPORT_BEGIN_DEADLINE_S = 60.0
CLIENT_EXIT_DEADLINE_S = 30.0
IMPORT_DEADLINE_S = 120.0


@dataclass(frozen=True)
class CsvFile:
    path: Path
    rows: int
    close_sum: Decimal
    first: datetime
    last: datetime


def write_minute_csv(path: Path, rows: int) -> CsvFile:
    """A plain CSV of ``rows`` consistent one-minute candles; prices have two decimals.

    Minutes, not hours: the validation refuses candles before 2009 or in the future, and
    there are not 300,000 hours between 2009 and now.
    """
    lines = ["timestamp,open,high,low,close,volume"]
    total_cents = 0
    previous = 500_000
    naive_start = START.replace(tzinfo=None)
    for n in range(rows):
        close = 100_000 + n * 7_919 % 900_000
        low, high = min(previous, close) - 50, max(previous, close) + 50
        stamp = (naive_start + timedelta(minutes=n)).isoformat()
        lines.append(
            f"{stamp}Z,{previous / 100:.2f},{high / 100:.2f},{low / 100:.2f},{close / 100:.2f},"
            f"{n % 97}.5"
        )
        total_cents += close
        previous = close
    path.write_text("\n".join(lines) + "\n")
    last = START + timedelta(minutes=rows - 1)
    return CsvFile(path, rows, Decimal(total_cents) / 100, START, last)


async def create_coin(url: str) -> None:
    database = Database.from_url(url, pool_size=1, max_overflow=0)
    try:
        async with database.unit_of_work() as session:
            session.add(Cryptocurrency(symbol="BTC", name="Bitcoin"))
    finally:
        await database.dispose()


async def import_has_begun(server: ThrowawayPostgres) -> bool:
    """True once an ingest transaction holds its per-coin lock: candles are being written."""
    rows = await server.fetch(
        "SELECT count(*) AS n FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
        "WHERE l.locktype = 'advisory' AND l.granted AND d.datname = $1",
        DB_NAME,
    )
    return int(rows[0]["n"]) > 0


async def stored_state(server: ThrowawayPostgres) -> tuple[int, int, Decimal | None]:
    """(rows, (coin, timestamp) pairs stored more than once, sum of closes)."""
    rows = await server.fetch(
        "SELECT (SELECT count(*) FROM market_data) AS n, "
        "(SELECT count(*) FROM (SELECT 1 FROM market_data GROUP BY cryptocurrency_id, "
        "timestamp HAVING count(*) > 1) AS d) AS dups, "
        "(SELECT sum(close_price::numeric) FROM market_data) AS closes",
        database=DB_NAME,
    )
    return int(rows[0]["n"]), int(rows[0]["dups"]), rows[0]["closes"]


async def run_cli(*args: str, env: dict[str, str], cwd: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *app_command(*args),
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_cli_import_survives_postgres_stopped_mid_write(
    throwaway_postgres: ThrowawayPostgres, tmp_path: Path
) -> None:
    url = await throwaway_postgres.create_database(DB_NAME)
    await asyncio.to_thread(upgrade_database, url)
    await create_coin(url)
    csv = write_minute_csv(tmp_path / "btc-1m.csv", ROWS)
    env = cli_env(DATABASE_URL=url)
    args = ("ingest", "csv", str(csv.path), "--symbol", "BTC", "--json")

    started = time.monotonic()
    first = await run_cli(*args, env=env, cwd=tmp_path)
    try:
        deadline = time.monotonic() + IMPORT_BEGIN_DEADLINE_S
        while not await import_has_begun(throwaway_postgres):
            assert first.returncode is None, "the import ended before the server was stopped"
            assert time.monotonic() < deadline, "the import never started writing"
            await asyncio.sleep(0.01)
        began_after = time.monotonic() - started
        await asyncio.to_thread(throwaway_postgres.stop, "immediate")
        stopped_at = time.monotonic()
        out, err = await asyncio.wait_for(first.communicate(), CLIENT_EXIT_DEADLINE_S)
    finally:
        if first.returncode is None:
            first.kill()
            await first.communicate()
    client_exit_s = time.monotonic() - stopped_at
    stderr = err.decode()
    assert first.returncode == 1, (first.returncode, out.decode()[-500:], stderr[-2000:])
    assert "Traceback" not in stderr, stderr
    assert stderr.strip().splitlines() == [
        "error: the database cannot be reached; check DATABASE_URL"
    ], stderr

    await asyncio.to_thread(throwaway_postgres.start)  # crash recovery from the WAL
    assert await stored_state(throwaway_postgres) == (0, 0, None)  # all or nothing: nothing

    rerun_started = time.monotonic()
    second = await run_cli(*args, env=env, cwd=tmp_path)
    out, err = await asyncio.wait_for(second.communicate(), IMPORT_DEADLINE_S)
    rerun_s = time.monotonic() - rerun_started
    assert second.returncode == 0, err.decode()[-2000:]
    report = json.loads(out)
    assert (report["received"], report["inserted"], report["updated"]) == (ROWS, ROWS, 0)

    rows, duplicates, close_sum = await stored_state(throwaway_postgres)
    assert (rows, duplicates, close_sum) == (csv.rows, 0, csv.close_sum)
    bounds = await throwaway_postgres.fetch(
        "SELECT min(timestamp) AS first, max(timestamp) AS last FROM market_data",
        database=DB_NAME,
    )
    assert (bounds[0]["first"], bounds[0]["last"]) == (
        csv.first.replace(tzinfo=None),
        csv.last.replace(tzinfo=None),
    )
    print(
        f"\n[pg stop mid-import] {ROWS} rows; writing began {began_after:.2f} s after launch, "
        f"server stopped (immediate); CLI exited 1 with one line {client_exit_s:.2f} s later; "
        f"0 rows after recovery; re-run stored {rows} rows, {duplicates} duplicates, "
        f"sum(close) {close_sum} = file's, in {rerun_s:.2f} s"
    )


API_ROWS = 100_000  # the API's per-request limit


async def test_api_import_survives_postgres_stopped_mid_write(
    throwaway_postgres: ThrowawayPostgres, tmp_path: Path
) -> None:
    url = await throwaway_postgres.create_database(DB_NAME)
    await asyncio.to_thread(upgrade_database, url)
    await create_coin(url)
    database = Database.from_url(url, pool_size=1, max_overflow=0)
    try:
        key = await create_write_key(database)
    finally:
        await database.dispose()
    csv = write_minute_csv(tmp_path / "btc-1m.csv", API_ROWS)
    body = csv.path.read_bytes()
    endpoint = "/api/v1/cryptocurrencies/BTC/ohlcv"
    headers = {"X-API-Key": key, "Content-Type": "text/csv"}

    with app_server(cli_env(DATABASE_URL=url), tmp_path) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as http:
            started = time.monotonic()
            posting = asyncio.create_task(http.post(endpoint, content=body, headers=headers))
            try:
                deadline = time.monotonic() + IMPORT_BEGIN_DEADLINE_S
                while not await import_has_begun(throwaway_postgres):
                    assert not posting.done(), "the request ended before the server was stopped"
                    assert time.monotonic() < deadline, "the import never started writing"
                    await asyncio.sleep(0.01)
                began_after = time.monotonic() - started
                await asyncio.to_thread(throwaway_postgres.stop, "immediate")
                stopped_at = time.monotonic()
                failed = await asyncio.wait_for(posting, CLIENT_EXIT_DEADLINE_S)
            finally:
                posting.cancel()
            answered_s = time.monotonic() - stopped_at
            assert failed.status_code == 503, failed.text
            assert failed.headers["content-type"] == "application/problem+json"
            assert failed.json()["type"].endswith("/database-unavailable")
            assert failed.headers["retry-after"] == "5"

            await asyncio.to_thread(throwaway_postgres.start)
            assert await stored_state(throwaway_postgres) == (0, 0, None)
            again = await http.post(endpoint, content=body, headers=headers)
            assert again.status_code == 200, again.text
            assert (again.json()["inserted"], again.json()["updated"]) == (API_ROWS, 0)
            price = await http.get("/api/v1/cryptocurrencies/BTC/price")
            assert price.json()["timestamp"] == f"{csv.last:%Y-%m-%dT%H:%M:%SZ}"
        stderr = server.stderr()
    assert "Traceback" not in stderr, stderr
    rows, duplicates, close_sum = await stored_state(throwaway_postgres)
    assert (rows, duplicates, close_sum) == (API_ROWS, 0, csv.close_sum)
    print(
        f"\n[pg stop mid-POST] {API_ROWS} rows; writing began {began_after:.2f} s after the "
        f"request, server stopped; answered 503 problem+json {answered_s:.2f} s later; 0 rows "
        f"after recovery; re-sent: {rows} rows, {duplicates} duplicates, sum(close) {close_sum}"
    )
