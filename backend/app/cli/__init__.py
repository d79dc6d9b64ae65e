"""The ``cryptopredict`` command line."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from app.config import BACKEND_DIR, Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from pydantic import BaseModel

    from app.cache import CacheManager
    from app.database import Database
    from app.market import Timeframe
    from app.services.imports import ImportReport

T = TypeVar("T")
M = TypeVar("M", bound="BaseModel")

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


# ---------------------------------------------------------------- forecasts


def _request(model: type[M], **fields: object) -> M:
    """Build a request schema, turning the first validation error into one line."""
    from pydantic import ValidationError

    try:
        return model.model_validate(fields)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "input"
        _fail(f"{where}: {first['msg']}", 2)


def _print_json(payload: object) -> None:
    print(json.dumps(payload, default=str))


@cli.command()
def predict(
    symbols: Annotated[list[str], typer.Argument(help="Coins to forecast, e.g. BTC ETH.")],
    horizon: Annotated[
        list[str] | None, typer.Option("--horizon", "-H", help="1h, 4h, 24h or 7d; repeatable.")
    ] = None,
    model: Annotated[
        list[str] | None, typer.Option("--model", "-m", help="Model name; repeatable.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Forecast from each coin's newest closed candle and store the predictions."""
    from app.schemas.predictions import PredictionRequest, PredictionRun
    from app.services.predictions import make_predictions

    settings = _settings()
    request = _request(
        PredictionRequest, symbols=symbols, horizons=horizon or ["24h"], models=model
    )

    async def work(database: Database, cache: CacheManager) -> PredictionRun:
        with console.status("fitting models", spinner="dots") if not as_json else _quiet():
            return await make_predictions(database, cache, request)

    run = _run_guarded(settings, work)
    if as_json:
        _print_json(run.model_dump(mode="json"))
        return
    table = Table(
        "symbol",
        "horizon",
        "model",
        "target (UTC)",
        "predicted",
        "80% band",
        "confidence",
        title=f"{run.stored} predictions stored",
    )
    for p in run.predictions:
        champion = run.champion.get(p.symbol, {}).get(p.horizon.value) == p.model_name
        table.add_row(
            p.symbol,
            p.horizon.value,
            p.model_name + (" *" if champion else ""),
            f"{p.target_timestamp:%Y-%m-%d %H:%M}",
            f"{p.predicted_price:,.2f}",
            f"{p.lower_80:,.2f} - {p.upper_80:,.2f}" if p.lower_80 and p.upper_80 else "",
            f"{p.confidence_score:.2f} within ±{(p.confidence_tolerance or 0) * 100:g}%"
            if p.confidence_score is not None
            else "",
        )
    console.print(table)
    console.print("* champion: the model the latest backtest recommends for this horizon")
    for skipped in run.skipped:
        console.print(
            f"skipped {skipped.model} for {skipped.symbol} {skipped.horizon.value}: "
            f"{skipped.reason}",
            markup=False,
        )


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    yield


@cli.command()
def score(
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Fill actual price and error for every prediction whose target candle is stored."""
    from app.schemas.predictions import ScoreReport
    from app.services.scoring import score_due

    settings = _settings()

    async def work(database: Database, cache: CacheManager) -> ScoreReport:
        async with database.unit_of_work() as session:
            return await score_due(session, cache)

    report = _run_guarded(settings, work)
    if as_json:
        _print_json(report.model_dump())
    else:
        console.print(f"scored: {report.scored}, waiting for their candle: {report.waiting}")


@cli.command()
def backtest(
    symbol: Annotated[str, typer.Argument(help="Coin to backtest.")],
    horizon: Annotated[str, typer.Option("--horizon", "-H", help="1h, 4h, 24h or 7d.")] = "24h",
    windows: Annotated[int, typer.Option(help="Forecast origins.")] = 30,
    step: Annotated[
        int | None, typer.Option(help="Candles between origins (default: the horizon).")
    ] = None,
    model: Annotated[
        list[str] | None, typer.Option("--model", "-m", help="Model name; repeatable.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Walk-forward backtest of the models against the random walk, stored for the
    leaderboard."""
    from app.schemas.predictions import BacktestOut, BacktestRequest
    from app.services import backtest_runs, backtests

    settings = _settings()
    request = _request(
        BacktestRequest,
        symbol=symbol,
        horizon=horizon,
        windows=windows,
        step=step,
        models=model,
    )

    async def work(database: Database, cache: CacheManager) -> BacktestOut:
        async with database.unit_of_work() as session:
            accepted = await backtests.start(session, cache, request)
        with Progress(console=console, transient=True, disable=as_json) as bar:
            task = bar.add_task(f"backtesting {accepted.symbol}", total=accepted.windows)
            await backtest_runs.execute(
                database,
                cache,
                accepted.id,
                progress=lambda done, _total: bar.update(task, completed=done),
            )
        async with database.unit_of_work() as session:
            return await backtests.get(session, accepted.id)

    result = _run_guarded(settings, work)
    if as_json:
        _print_json(result.model_dump(mode="json"))
        return
    if result.status != "succeeded" or result.result is None:
        _fail(f"backtest {result.id} {result.status}: {result.error}")
    console.print(
        f"backtest [bold]{result.id}[/bold]: {result.windows} windows, "
        f"{result.step} {result.timeframe.value} candles apart"
    )
    _print_leaderboard(result.result.get("leaderboard", []), result.result.get("champion"))


def _print_leaderboard(rows: list[dict[str, object]], champion: object) -> None:
    table = Table(
        "#",
        "model",
        "rel. MAE",
        "MAE",
        "MASE",
        "dir. acc.",
        "up share",
        "cov. 80%",
        "cov. 95%",
        "DM p",
    )

    def number(value: object, spec: str) -> str:
        return format(value, spec) if isinstance(value, int | float) else "-"

    for row in rows:
        table.add_row(
            str(row["rank"]),
            str(row["model"]) + (" *" if row["model"] == champion else ""),
            number(row["relative_mae"], ".3f"),
            number(row["mae"], ",.2f"),
            number(row["mase"], ".3f"),
            number(row["directional_accuracy"], ".1%"),
            number(row["up_share"], ".1%"),
            number(row["coverage_80"], ".1%"),
            number(row["coverage_95"], ".1%"),
            number(row["dm_p_value"], ".3f"),
        )
    console.print(table)
    console.print(f"* champion: {champion} (the random walk unless a model beats it significantly)")


@cli.command()
def leaderboard(
    symbol: Annotated[str, typer.Argument(help="Coin.")],
    horizon: Annotated[str, typer.Option("--horizon", "-H", help="1h, 4h, 24h or 7d.")] = "24h",
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Models ranked by MAE relative to the random walk, from the latest backtest."""
    from app.market import Horizon
    from app.schemas.predictions import Leaderboard
    from app.services.leaderboard import latest as latest_leaderboard

    settings = _settings()
    try:
        chosen = Horizon(horizon)
    except ValueError:
        _fail(f"--horizon must be one of {', '.join(h.value for h in Horizon)}", 2)

    async def work(database: Database, cache: CacheManager) -> Leaderboard:
        async with database.unit_of_work() as session:
            return await latest_leaderboard(session, cache, symbol, chosen)

    board = _run_guarded(settings, work)
    if as_json:
        _print_json(board.model_dump(mode="json"))
        return
    console.print(
        f"{board.symbol} {board.horizon.value}: backtest {board.backtest_id}, "
        f"{board.windows} windows from {board.first_origin} to {board.last_origin}"
    )
    _print_leaderboard([row.model_dump() for row in board.rows], board.champion)


@cli.command()
def worker(
    burst: Annotated[
        bool, typer.Option("--burst", help="Run the queued jobs, then exit (for scripts).")
    ] = False,
) -> None:
    """Run an arq worker: queued jobs plus the periodic ones (scoring every 5 minutes,
    predictions hourly). Start as many as you like, on as many machines: each periodic run
    happens once."""
    from arq.worker import run_worker

    from app.jobs.worker import worker_options

    settings = _settings()
    if not settings.queue_redis_url:
        _fail(
            "the worker needs REDIS_URL or JOBS_REDIS_URL (the queue lives in Redis); without it, "
            "`cryptopredict serve` runs the periodic jobs in-process",
            2,
        )
    from app.observability.logging import configure_logging

    configure_logging(settings.LOG_LEVEL, settings.LOG_FORMAT)
    run_worker(worker_options(settings), burst=burst)


# ---------------------------------------------------------------- API keys

keys_cli = typer.Typer(help="API keys for the write endpoints.", no_args_is_help=True)
cli.add_typer(keys_cli, name="keys")


@keys_cli.command("create")
def keys_create(
    name: Annotated[str, typer.Option("--name", "-n", help="Who or what the key is for.")],
    scope: Annotated[
        list[str] | None,
        typer.Option("--scope", "-s", help="read, write or admin; repeatable (default write)."),
    ] = None,
    expires_days: Annotated[
        int | None, typer.Option(min=1, help="Days until the key stops working.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Create a key. It is printed once: only its hash is stored."""
    from datetime import timedelta

    from app.services.api_keys import KeyScope, create_key

    settings = _settings()
    try:
        scopes = [KeyScope(value) for value in scope or ["write"]]
    except ValueError:
        _fail("--scope must be read, write or admin", 2)
    if not 1 <= len(name.strip()) <= 100:
        _fail("--name must be 1 to 100 characters", 2)
    expires = timedelta(days=expires_days) if expires_days else None

    async def work(database: Database, _cache: CacheManager) -> tuple[str, str, list[str]]:
        async with database.unit_of_work() as session:
            row, key = await create_key(session, name.strip(), scopes, expires_in=expires)
            return row.prefix, key, list(row.scopes)

    prefix, key, stored = _run_guarded(settings, work)
    if as_json:
        _print_json({"prefix": prefix, "key": key, "scopes": stored})
        return
    console.print(
        f"key [bold]{prefix}[/bold] ({', '.join(stored)}); store it now, it is not shown again:"
    )
    print(key)


@keys_cli.command("revoke")
def keys_revoke(
    prefix: Annotated[str, typer.Argument(help="The key's prefix (the 8 characters after cp_).")],
) -> None:
    """Revoke a key at once (cached verifications are dropped too)."""
    from app.services.api_keys import revoke_key

    settings = _settings()

    async def work(database: Database, cache: CacheManager) -> None:
        async with database.unit_of_work() as session:
            await revoke_key(session, cache, prefix)

    _run_guarded(settings, work)
    console.print(f"key {prefix} revoked")


@keys_cli.command("list")
def keys_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Every key's prefix, name, scopes and state (never the key itself)."""
    from app.repositories import api_keys

    settings = _settings()

    async def work(database: Database, _cache: CacheManager) -> list[dict[str, object]]:
        async with database.unit_of_work() as session:
            return [
                {
                    "prefix": row.prefix,
                    "name": row.name,
                    "scopes": list(row.scopes),
                    "created_at": row.created_at.isoformat(),
                    "expires_at": row.expires_at.isoformat() if row.expires_at else None,
                    "revoked": row.revoked_at is not None,
                    "last_used_at": row.last_used_at.isoformat() if row.last_used_at else None,
                }
                for row in await api_keys.list_all(session)
            ]

    rows = _run_guarded(settings, work)
    if as_json:
        _print_json(rows)
        return
    table = Table("prefix", "name", "scopes", "created", "expires", "state", "last used")
    for row in rows:
        table.add_row(
            str(row["prefix"]),
            str(row["name"]),
            ", ".join(row["scopes"]),  # type: ignore[arg-type]
            str(row["created_at"])[:16],
            str(row["expires_at"] or "never")[:16],
            "revoked" if row["revoked"] else "active",
            str(row["last_used_at"] or "-")[:16],
        )
    console.print(table)


def main(argv: Sequence[str] | None = None) -> None:
    cli(args=list(argv) if argv is not None else None, prog_name="cryptopredict")
