"""The ``cryptopredict`` command line."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from app.config import BACKEND_DIR, Settings, SettingsError, load_settings

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
        async for session in database.unit_of_work():
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


def main(argv: Sequence[str] | None = None) -> None:
    cli(args=list(argv) if argv is not None else None, prog_name="cryptopredict")
