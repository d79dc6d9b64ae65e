"""The ``cryptopredict`` command line."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from app.config import BACKEND_DIR, Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from app.cache import CacheManager
    from app.database import Database
    from app.market import Timeframe
    from app.services.imports import ImportReport

T = TypeVar("T")

cli = typer.Typer(help="Crypto prediction backend: data, forecasts, scores.", no_args_is_help=True)
db_cli = typer.Typer(help="Database schema commands.", no_args_is_help=True)
cli.add_typer(db_cli, name="db")
console = Console()


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as error:
        # One plain line: Rich would wrap it to the terminal width.
        print(f"error: {error}", file=sys.stderr)
        raise typer.Exit(2) from None


def upgrade_database(database_url: str, revision: str = "head") -> None:
    from alembic.config import Config

    from alembic import command

    config = Config(str(BACKEND_DIR / "alembic.ini"))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logger"] = False
    command.upgrade(config, revision)


@db_cli.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    settings = _settings()
    upgrade_database(settings.DATABASE_URL, revision)
    console.print(f"database at revision [bold]{revision}[/bold]")


async def _seed(settings: Settings, *, if_empty: bool) -> None:
    from app.database import Database
    from app.repositories import market_data
    from app.services.seed import seed_demo_data

    database = Database.from_url(settings.DATABASE_URL, pool_size=1, max_overflow=0)
    try:
        async with database.unit_of_work() as session:
            stored = await market_data.count_all(session)
            if if_empty and stored:
                console.print(f"database already holds {stored} candles; demo data not loaded")
                return
            report = await seed_demo_data(session)
    finally:
        await database.dispose()
    table = Table("series loaded", title="demo data")
    for line in report.series_loaded:
        table.add_row(line)
    console.print(table)
    console.print(
        f"coins created: {report.coins_created}, candles inserted: {report.candles_inserted}"
    )
    for name, count in report.candles_skipped.items():
        console.print(f"skipped {count} inconsistent rows in {name}")


@cli.command()
def seed(
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="Do nothing when any candle is already stored.")
    ] = False,
) -> None:
    """Load the bundled real market history; running it twice changes nothing."""
    asyncio.run(_seed(_settings(), if_empty=if_empty))


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    reload: Annotated[bool, typer.Option(help="Restart on code changes.")] = False,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
) -> None:
    """Serve the API with uvicorn."""
    import uvicorn

    _settings()  # fail with a one-line message before uvicorn prints a traceback
    uvicorn.run(
        "app.main:app", host=host, port=port, reload=reload, workers=workers, proxy_headers=True
    )


ingest_cli = typer.Typer(help="Import market data.", no_args_is_help=True)
cli.add_typer(ingest_cli, name="ingest")


def _fail(message: str, code: int = 1) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(code)


def _cache_for(settings: Settings) -> CacheManager:
    from app.cache import CacheManager

    cache = CacheManager()
    cache.configure(settings.REDIS_URL or None, settings.REDIS_MAX_CONNECTIONS)
    return cache


async def _run_with_services(
    settings: Settings, work: Callable[[Database, CacheManager], Awaitable[T]]
) -> T:
    from app.database import Database

    database = Database.from_url(settings.DATABASE_URL, pool_size=1, max_overflow=0)
    cache = _cache_for(settings)
    try:
        return await work(database, cache)
    finally:
        await cache.close()
        await database.dispose()


def _report_table(report: ImportReport) -> Table:
    table = Table("symbol", "timeframe", "received", "inserted", "updated", "unchanged", "skipped")
    table.add_row(
        report.symbol,
        report.timeframe.value if report.timeframe else "-",
        *(str(n) for n in (report.received, report.inserted, report.updated, report.unchanged)),
        str(len(report.skipped)),
    )
    return table


@ingest_cli.command("csv")
def ingest_csv(
    path: Annotated[Path, typer.Argument(help="CSV file: ccxt, CryptoDataDownload or plain.")],
    symbol: Annotated[str, typer.Option("--symbol", "-s", help="Coin to store the candles for.")],
    timeframe: Annotated[
        str | None, typer.Option(help="Candle length (1m..1d); inferred if omitted.")
    ] = None,
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="Import the valid rows, list the others.")
    ] = False,
    source: Annotated[str, typer.Option(help="Stored as data_source.")] = "csv",
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Import a CSV file through the same validation and bulk path as the API."""
    from app.ingestion.batch import BatchRejected, summarise
    from app.services.imports import ImportReport, chunk_rows, read_csv_rows, store_row_chunks

    settings = _settings()
    if not path.is_file():
        _fail(f"no such file: {path}", 2)
    frame = _timeframe_option(timeframe)

    def refuse(rejected: BatchRejected) -> NoReturn:
        hint = "" if skip_invalid else " (--skip-invalid imports the valid rows)"
        _fail(
            f"{path.name}: {summarise(rejected.errors[:1])}; {rejected.total_errors} "
            f"problem(s){hint}"
        )

    try:
        chunks = chunk_rows(symbol, read_csv_rows(path))
    except BatchRejected as rejected:
        refuse(rejected)
    except UnicodeDecodeError:
        _fail(f"{path.name} is not UTF-8 text")

    async def work(database: Database, cache: CacheManager) -> ImportReport:
        with Progress(console=console, transient=True, disable=as_json) as bar:
            task = bar.add_task("storing candles", total=sum(len(c.rows) for c in chunks))
            reports = await store_row_chunks(
                database,
                cache,
                chunks,
                source=source,
                timeframe=frame,
                skip_invalid=skip_invalid,
                progress=lambda done, _total: bar.update(task, completed=done),
            )
        return reports.get(symbol, ImportReport(symbol.upper()))

    try:
        report = _run_guarded(settings, work)
    except BatchRejected as rejected:
        refuse(rejected)
    _print_import(report, as_json)


def _timeframe_option(value: str | None) -> Timeframe | None:
    from app.market import BASE_TIMEFRAMES, Timeframe

    if value is None:
        return None
    try:
        frame = Timeframe(value)
    except ValueError:
        frame = None
    if frame not in BASE_TIMEFRAMES:
        _fail(f"--timeframe must be one of {', '.join(BASE_TIMEFRAMES)}", 2)
    return frame


def _run_guarded(settings: Settings, work: Callable[[Database, CacheManager], Awaitable[T]]) -> T:
    from app.errors import AppError, is_connection_failure

    try:
        return asyncio.run(_run_with_services(settings, work))
    except AppError as error:
        _fail(error.detail)
    except Exception as error:
        if is_connection_failure(error):
            _fail("the database cannot be reached; check DATABASE_URL")
        raise


def _print_import(report: ImportReport, as_json: bool) -> None:
    if as_json:
        payload = {
            "symbol": report.symbol,
            "timeframe": report.timeframe.value if report.timeframe else None,
            "received": report.received,
            "inserted": report.inserted,
            "updated": report.updated,
            "unchanged": report.unchanged,
            "skipped": [error.as_dict() for error in report.skipped],
        }
        print(json.dumps(payload))
        return
    console.print(_report_table(report))
    for error in report.skipped:
        console.print(f"skipped line {error.row}: {error.field}: {error.message}", markup=False)


@cli.command()
def backfill(
    symbol: Annotated[str, typer.Argument(help="Coin whose gaps to fill from CoinGecko.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Fetch from CoinGecko only the ranges the coverage report says are missing."""
    from app.ingestion.coingecko import CoinGeckoClient, CoinGeckoConfig, CoinGeckoError
    from app.services.imports import BackfillReport, backfill_gaps

    settings = _settings()
    config = CoinGeckoConfig(
        api_key=settings.COINGECKO_API_KEY or None, plan=settings.COINGECKO_PLAN
    )

    async def work(database: Database, cache: CacheManager) -> BackfillReport:
        async with CoinGeckoClient(config) as client:
            return await backfill_gaps(database, cache, symbol, client)

    try:
        report = _run_guarded(settings, work)
    except CoinGeckoError as error:
        _fail(f"CoinGecko: {error}")
    stored = report.stored
    summary = {
        "symbol": report.symbol,
        "gaps": len(report.gaps),
        "missing": sum(gap.missing for gap in report.gaps),
        "fetched": report.fetched,
        "rejected": report.rejected,
        "inserted": stored.inserted if stored else 0,
    }
    if as_json:
        print(json.dumps(summary))
    else:
        console.print(", ".join(f"{key}: {value}" for key, value in summary.items()))


def main(argv: Sequence[str] | None = None) -> None:
    cli(args=list(argv) if argv is not None else None, prog_name="cryptopredict")
