"""Market data in: ``ingest csv`` from a file, ``backfill`` from CoinGecko."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.progress import Progress

from app.cli.render import import_table
from app.cli.runtime import JsonFlag, console, fail, print_json, run_guarded, settings_or_exit

if TYPE_CHECKING:
    from app.cache import CacheManager
    from app.database import Database
    from app.market import Timeframe
    from app.services.imports import ImportReport

ingest_cli = typer.Typer(help="Import market data.", no_args_is_help=True)


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
    as_json: JsonFlag = False,
) -> None:
    """Import a CSV file through the same validation and bulk path as the API."""
    from app.ingestion.batch import BatchRejected, summarise
    from app.services.imports import ImportReport, chunk_rows, read_csv_rows, store_row_chunks

    settings = settings_or_exit()
    if not path.is_file():
        fail(f"no such file: {path}", 2)
    frame = _timeframe_option(timeframe)

    def refuse(rejected: BatchRejected) -> NoReturn:
        hint = "" if skip_invalid else " (--skip-invalid imports the valid rows)"
        fail(
            f"{path.name}: {summarise(rejected.errors[:1])}; {rejected.total_errors} "
            f"problem(s){hint}"
        )

    try:
        chunks = chunk_rows(symbol, read_csv_rows(path))
    except BatchRejected as rejected:
        refuse(rejected)
    except UnicodeDecodeError:
        fail(f"{path.name} is not UTF-8 text")

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
        report = run_guarded(settings, work)
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
        fail(f"--timeframe must be one of {', '.join(BASE_TIMEFRAMES)}", 2)
    return frame


def _print_import(report: ImportReport, as_json: bool) -> None:
    if as_json:
        print_json(
            {
                "symbol": report.symbol,
                "timeframe": report.timeframe.value if report.timeframe else None,
                "received": report.received,
                "inserted": report.inserted,
                "updated": report.updated,
                "unchanged": report.unchanged,
                "skipped": [error.as_dict() for error in report.skipped],
            }
        )
        return
    console.print(import_table(report))
    for error in report.skipped:
        console.print(f"skipped line {error.row}: {error.field}: {error.message}", markup=False)


def backfill(
    symbol: Annotated[str, typer.Argument(help="Coin whose gaps to fill from CoinGecko.")],
    as_json: JsonFlag = False,
) -> None:
    """Fetch from CoinGecko only the ranges the coverage report says are missing."""
    from app.ingestion.coingecko import CoinGeckoClient, CoinGeckoConfig, CoinGeckoError
    from app.services.imports import BackfillReport, backfill_gaps

    settings = settings_or_exit()
    config = CoinGeckoConfig(
        api_key=settings.COINGECKO_API_KEY or None, plan=settings.COINGECKO_PLAN
    )

    async def work(database: Database, cache: CacheManager) -> BackfillReport:
        async with CoinGeckoClient(config) as client:
            return await backfill_gaps(database, cache, symbol, client)

    try:
        report = run_guarded(settings, work)
    except CoinGeckoError as error:
        fail(f"CoinGecko: {error}")
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
        print_json(summary)
    else:
        console.print(", ".join(f"{key}: {value}" for key, value in summary.items()))
